#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run-attack-line.sh LINE WORK_DIR: the attack cases (9[5-9]*.sh here) on a
# newer kernel line (LINE: debian13 or newest), in the trixie root that
# tests/kernels/kernel-line.sh keeps cached.
#
# Why not "kernel-line.sh vm": its chroot gets a clean environment without
# PHYSMEM_VM_CASE_DIRS, so extra case directories never reach
# run-vm-tests.sh; and 7.x packages install the image only as
# /lib/modules/$KVER/vmlinuz, where run-vm-tests.sh (which wants
# /boot/vmlinuz-$KVER) does not look.  This script makes the same private
# mounts, adds a tmpfs /boot view holding that image (the cached root is not
# written), and runs run-vm-tests.sh with this directory as a case dir.
# Needs root.  Exit status: run-vm-tests.sh's.
set -u
LINE=${1:?usage: $0 debian13|newest WORK_DIR}
WORK=${2:?usage: $0 debian13|newest WORK_DIR}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../../.." && pwd)
CACHE=${PHYSMEM_KERNELS_CACHE:-/var/cache/physmem-vm}
ROOT=$(ls -1dt "$CACHE"/trixie-*/.physmem-kernels 2>/dev/null | head -1)
[ -n "$ROOT" ] || { echo "run-attack-line: no cached trixie root (run kernel-line.sh root)"; exit 77; }
ROOT=$(dirname "$ROOT")
KVER=$(awk -v l="$LINE" '$1 == l { print $2 }' "$ROOT/.physmem-kernels")
[ -n "$KVER" ] || { echo "run-attack-line: no $LINE kernel in $ROOT"; exit 77; }
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
echo "run-attack-line: root $ROOT, kernel $KVER"
unshare --mount --propagation private /bin/sh -ec '
	r=$1; src=$2; work=$3; kver=$4; shift 4
	mount -t proc proc "$r/proc"
	mount -t sysfs sysfs "$r/sys"
	mount --rbind /dev "$r/dev"
	for p in "$src" "$work"; do
		mkdir -p "$r$p"
		mount --bind "$p" "$r$p"
	done
	if [ ! -e "$r/boot/vmlinuz-$kver" ]; then
		mount -t tmpfs tmpfs "$r/boot"
		ln -s "/lib/modules/$kver/vmlinuz" "$r/boot/vmlinuz-$kver"
	fi
	exec chroot "$r" "$@"' sh "$ROOT" "$SRC" "$WORK" "$KVER" /usr/bin/env -i \
	PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 TMPDIR=/tmp \
	KVER="$KVER" PHYSMEM_VM_CASE_DIRS="$HERE" PHYSMEM_VM_ONLY="${PHYSMEM_VM_ONLY:-9[5-9]*}" \
	PHYSMEM_VM_TIMEOUT="${PHYSMEM_VM_TIMEOUT:-1500}" \
	"$SRC/tests/vm/run-vm-tests.sh" "$WORK/vm"
