#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
# /init of the test VM's initramfs: mount the host's root (read-only, 9p),
# chroot into it and run tests/vm/guest-run.sh, then power off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.list); do
	insmod "/modules/$m" || echo "PHYSMEM-VM-INIT insmod $m failed"
done
. /physmem-vm.conf
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro host /mnt; then
	mount -t proc proc /mnt/proc
	mount -t sysfs sysfs /mnt/sys
	mount -t devtmpfs devtmpfs /mnt/dev
	# The guest gets fresh tmpfs /tmp and /run; host paths under them that
	# the tests need (a build dir in /tmp, say) are bound back in.
	mkdir -p /host-tmp /host-run
	mount --bind /mnt/tmp /host-tmp
	mount --bind /mnt/run /host-run
	mount -t tmpfs tmpfs /mnt/tmp
	mount -t tmpfs tmpfs /mnt/run
	for p in "$PHYSMEM_SRC" "$PHYSMEM_BUILD" "$PHYSMEM_PROJECT_BUILD_DIR" \
		$(echo "$PHYSMEM_VM_CASE_DIRS" | tr : ' '); do
		case $p in
		/tmp/?*) h=/host-tmp/${p#/tmp/} ;;
		/run/?*) h=/host-run/${p#/run/} ;;
		*) continue ;;
		esac
		[ -d "$h" ] || continue
		mkdir -p "/mnt$p" && mount --bind "$h" "/mnt$p"
	done
	chroot /mnt /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		PHYSMEM_SRC="$PHYSMEM_SRC" PHYSMEM_BUILD="$PHYSMEM_BUILD" \
		PHYSMEM_KVER="$PHYSMEM_KVER" PHYSMEM_VM_CASE_DIRS="$PHYSMEM_VM_CASE_DIRS" \
		PHYSMEM_VM_ONLY="$PHYSMEM_VM_ONLY" \
		PHYSMEM_PROJECT_BUILD_DIR="$PHYSMEM_PROJECT_BUILD_DIR" \
		PHYSMEM_VM_KMOD_ARGS="${PHYSMEM_VM_KMOD_ARGS:-}" \
		/bin/bash "$PHYSMEM_SRC/tests/vm/guest-run.sh"
	echo "PHYSMEM-VM-GUEST-EXIT $?"
else
	echo "PHYSMEM-VM-INIT 9p mount failed"
fi
sync
poweroff -f
