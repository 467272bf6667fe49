#!/bin/bash
# Device bindings (PHYSMEM_IOC_BIND) with edu behind the emulated Intel
# IOMMU (PHYSMEM_VM_IOMMU=translate: IOVAs; pt: identity).  Run in their own
# boots (ctest vm-iommu, vm-iommu-pt, vm-iommu-debian13, vm-iommu-newest).
# The device-changing cases (revoke and the BIND/removal race: sysfs remove
# + rescan; vfio) run last.
# PHYSMEM-EXPECT: bind-dma
# PHYSMEM-EXPECT: bind-access
# PHYSMEM-EXPECT: bind-errors
# PHYSMEM-EXPECT: bind-release
# PHYSMEM-EXPECT: bind-revoke
# PHYSMEM-EXPECT: bind-remove-race
# PHYSMEM-EXPECT: bind-vfio
# PHYSMEM-EXPECT: bind-vfio-group
# PHYSMEM-EXPECT: bind-race-threads
# PHYSMEM-EXPECT: bind-rmmod
mode=direct
case " $(cat /proc/cmdline) " in
*" intel_iommu=on "*" iommu=pt "*) mode=identity ;;
*" intel_iommu=on "*) mode=iommu ;;
esac
"$PHYSMEM_BIN/physmem-vmtest" bind-dma "$mode"
"$PHYSMEM_BIN/physmem-vmtest" bind-access
"$PHYSMEM_BIN/physmem-vmtest" bind-errors
"$PHYSMEM_BIN/physmem-vmtest" bind-release
"$PHYSMEM_BIN/physmem-vmtest" bind-revoke
"$PHYSMEM_BIN/physmem-vmtest" bind-remove-race 5
"$PHYSMEM_BIN/physmem-vmtest" bind-vfio
"$PHYSMEM_BIN/physmem-vmtest" bind-vfio-group
# BIND/UNBIND/SEGMENTS/close threads while edu is removed and rescanned: no
# dma-direct mapping reported as translated, no kernel warning (the unmap of
# such a mapping through the IOMMU warned in __iommu_dma_unmap), counters 0.
t=bind-race-threads
edu=$(for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11e8 ] && { echo "${d##*/}"; break; }
done)
w0=$(dmesg | grep -c -E 'WARNING|BUG|Oops|general protection')
out=$(timeout 300 "$PHYSMEM_BIN/physmem-bind-race" "$edu" 15 2>&1); rc=$?
sleep 1
w1=$(dmesg | grep -c -E 'WARNING|BUG|Oops|general protection')
S=/sys/class/misc/physmem/stats
c="bindings=$(cat $S/bindings) revoked=$(cat $S/bindings_revoked) bound=$(cat $S/bound_bytes) buffers=$(cat $S/buffers)"
if [ -n "$edu" ] && [ "$rc" -eq 0 ] && [ "$w1" = "$w0" ] && [ "$c" = "bindings=0 revoked=0 bound=0 buffers=0" ]; then
	echo "PHYSMEM-TEST $t PASS $(echo "$out" | tail -1); $c"
else
	echo "PHYSMEM-TEST $t FAIL edu=$edu rc=$rc warnings $w0->$w1 $c $(echo "$out" | tr '\n' ' ' | cut -c1-300)"
fi

# Unload after the removals and vfio above (the notifier goes; removal marks
# not yet dropped go with their PCI device references), then load again for
# later cases.
t=bind-rmmod
if ! out=$(rmmod physmem 2>&1); then
	echo "PHYSMEM-TEST $t FAIL rmmod: $out"
elif ! out=$(insmod "$PHYSMEM_KO" 2>&1); then
	echo "PHYSMEM-TEST $t FAIL reload: $out"
else
	echo "PHYSMEM-TEST $t PASS unloaded after removals and vfio, reloaded"
fi
