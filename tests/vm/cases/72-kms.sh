#!/bin/bash
# A DRM KMS importer: QEMU's Cirrus card (-vga cirrus) scans out physmem
# dma-bufs.  The cirrus driver (module cirrus-qemu on 7.3) imports the
# buffer as a GEM object and copies it into its VRAM with the CPU through
# dma_buf_vmap(); physmem-kms reads the pixels back from VRAM (BAR0), also
# after DIRTYFB with new contents, and checks the importer lets go.
# PHYSMEM-EXPECT: importer-kms-cirrus-contig-cached
# PHYSMEM-EXPECT: importer-kms-cirrus-contig-wc
# PHYSMEM-EXPECT: importer-kms-cirrus-contig-uc
# PHYSMEM-EXPECT: importer-kms-cirrus-sg-cached
# PHYSMEM-EXPECT: importer-kms-cirrus-sg-wc
# PHYSMEM-EXPECT: importer-kms-cirrus-sg-uc
# PHYSMEM-EXPECT: importer-kms-cirrus-pin
kinds="contig-cached contig-wc contig-uc sg-cached sg-wc sg-uc pin"
all() {	# print one line with verdict $1 and detail $2 for every kind
	for k in $kinds; do echo "PHYSMEM-TEST importer-kms-cirrus-$k $1 $2"; done
}
pci=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor")" = 0x1013 ] && [ "$(cat "$d/device")" = 0x00b8 ] &&
		{ pci=$d; break; }
done
[ -n "$pci" ] || { all SKIP "no Cirrus card (PCI 1013:00b8) in this VM"; exit 0; }
drv= why=
for m in cirrus-qemu cirrus; do
	if out=$(modprobe "$m" 2>&1); then drv=$m; break; fi
	why="${why:+$why; }modprobe $m: $(echo "$out" | head -1)"
done
[ -n "$drv" ] || { all SKIP "cirrus DRM driver not available: $why"; exit 0; }
card=
for _ in $(seq 50); do
	for c in "$pci"/drm/card*; do
		[ -e "$c" ] && [ -c "/dev/dri/$(basename "$c")" ] &&
			{ card=/dev/dri/$(basename "$c"); break 2; }
	done
	sleep 0.1
done
[ -n "$card" ] || { all FAIL "$drv loaded but no DRM card for $pci"; ls "$pci"; exit 0; }
echo "kms: driver $drv, $card, $pci"
for k in $kinds; do
	"$PHYSMEM_BIN/physmem-kms" "importer-kms-cirrus-$k" "$card" "$pci/resource0" "$k"
done
