#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run-vm-tests.sh [BUILD_DIR]: build physmem.ko and the test helpers, boot
# Debian's kernel in QEMU (TCG) with the host's root shared read-only over
# 9p, run tests/vm/cases/*.sh inside it, and judge the console output.
#
# BUILD_DIR (default $TMPDIR/physmem-vm-tests.$UID) receives the module
# build, the static helpers, the initramfs, disk.img and console.log.
#
# Exit 0: all passed.  1: a FAIL, a missing case line, no final line, a
# timeout, or a kernel warning/oops/memory-corruption report.  The guest
# kernel runs with page poisoning and SLUB debugging (sanity checks, red
# zones, poisoning, user tracking) on, which Debian's kernel supports at
# boot (it has neither DEBUG_PAGEALLOC nor KFENCE), so a page or slab
# object used after free is reported on the console.  Poisoning every freed
# page is slow under TCG: evicting the 9p root's page cache at the end took
# 20-70 s of kernel time and tripped the soft-lockup detector, so that one
# is off (nosoftlockup; a real hang still ends in a timeout); adding
# init_on_free=1 doubled that and pushed the run past 7 minutes.  On 6.1
# that eviction also shows as an RCU stall report after the last result line
# (seen in every 6.1 run; the guest then exits); on a loaded 2-core host it
# took long enough to pass the old 420 s limit, hence 720 s.  77: QEMU or a
# kernel image+headers pair is missing (reason printed).
#
# Environment:
#   KVER                     kernel to use (default: newest with build/ and
#                            /boot/vmlinuz-*)
#   PHYSMEM_VM_TIMEOUT       seconds for the whole VM run (default 720)
#   PHYSMEM_VM_FIRST_OUTPUT  seconds the console may stay empty before the VM is
#                            stopped and booted once more (default 240)
#   PHYSMEM_VM_CASE_DIRS     colon-separated extra directories of case
#                            scripts (*.sh), run after tests/vm/cases in order;
#                            host paths, seen at the same paths in the guest
#   PHYSMEM_VM_ONLY          run only case scripts whose name matches this
#                            shell glob (e.g. '*dma*'); expectations follow
#   PHYSMEM_PROJECT_BUILD_DIR  the project's build directory, passed to the
#                            guest for cases that run project binaries
#                            (cases/60-daemon.sh: physmemd, physmemctl,
#                            tests/vm/physmem-vm-client; SKIP without it)
#   PHYSMEM_VM_QEMU_ARGS     extra QEMU arguments (word-split)
#   PHYSMEM_VM_MEM           guest memory in MiB (default 1024)
#   PHYSMEM_VM_KDEBUG        kernel debugging arguments (default
#                            "page_poison=1 slub_debug=FZPU nosoftlockup")
#   PHYSMEM_VM_MACHINE       QEMU machine type (default: QEMU's, i440fx "pc");
#                            q35 for an emulated IOMMU
#   PHYSMEM_VM_IOMMU         translate: an emulated Intel IOMMU (q35 only;
#                            added before edu, so edu sits behind it) and
#                            intel_iommu=on iommu.strict=1; pt: the same in
#                            pass-through (iommu=pt); empty: no IOMMU.  With
#                            it, a PCIe-to-PCI bridge (00:10.0) with two more
#                            edu devices behind it: one IOMMU group of two
#                            (bind-vfio-group); the first edu keeps the lowest
#                            PCI address, which the cases use
#   PHYSMEM_VM_APPEND        extra kernel command-line arguments (e.g. a
#                            memmap= or reserve_mem= pool reservation)
#   PHYSMEM_VM_KMOD_ARGS     module parameters for loading physmem.ko in the
#                            guest (word-split; e.g. pool_memmap=384M@256M)
#   PHYSMEM_VM_BOUNCE        1: the bounce-buffer layout for the test
#                            importer (tests/vm/cases-bounce): swiotlb
#                            (iommu=soft) and only 256 MiB of RAM below 4 GiB
#
# Every case script may declare the result lines it must print with comment
# lines "# PHYSMEM-EXPECT: <case-name>"; a declared case whose line is missing
# fails the run.
set -u
set -o pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-${TMPDIR:-/tmp}/physmem-vm-tests.$(id -u)}
BUILD=$(mkdir -p "$BUILD" && cd "$BUILD" && pwd) || { echo "run-vm-tests: bad build dir" >&2; exit 1; }
TIMEOUT=${PHYSMEM_VM_TIMEOUT:-720}
MEM=${PHYSMEM_VM_MEM:-1024}
CASE_DIRS="$SRC/tests/vm/cases${PHYSMEM_VM_CASE_DIRS:+:$PHYSMEM_VM_CASE_DIRS}"
ONLY=${PHYSMEM_VM_ONLY:-*}

say() { echo "run-vm-tests: $*"; }
skip() { say "SKIP: $*"; exit 77; }
die() { say "ERROR: $*"; exit 1; }

find_kver() {
	local d v
	for d in $(ls -1d /lib/modules/*/build 2>/dev/null | sort -rV); do
		v=$(basename "$(dirname "$d")")
		if [ -e "/boot/vmlinuz-$v" ]; then
			echo "$v"
			return 0
		fi
	done
	return 1
}

# ---- prerequisites ----
QEMU=$(command -v qemu-system-x86_64) || skip "qemu-system-x86_64 not installed"
KVER=${KVER:-$(find_kver)} || skip "no kernel with both /lib/modules/*/build and /boot/vmlinuz-*"
KIMG=/boot/vmlinuz-$KVER
KDIR=/lib/modules/$KVER/build
[ -r "$KIMG" ] || skip "$KIMG missing or unreadable"
[ -d "$KDIR" ] || skip "$KDIR missing"
BUSYBOX=$(command -v busybox) || die "busybox (busybox-static) not installed"
file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' ||
	say "warning: $BUSYBOX may not be static"
for t in cpio gzip gcc make modprobe timeout; do
	command -v $t >/dev/null || die "$t not installed"
done
say "kernel $KVER, build dir $BUILD"

# ---- module ----
rm -rf "$BUILD/kmod"
mkdir -p "$BUILD/kmod/uapi" "$BUILD/bin"
cp "$SRC"/kmod/Makefile "$SRC"/kmod/*.c "$SRC"/kmod/*.h "$BUILD/kmod/"
cp "$SRC"/kmod/uapi/*.h "$BUILD/kmod/uapi/"
make -s -C "$KDIR" M="$BUILD/kmod" modules >"$BUILD/kmod-build.log" 2>&1 || {
	cat "$BUILD/kmod-build.log"; die "module build failed"; }
[ -f "$BUILD/kmod/physmem.ko" ] || die "physmem.ko not built"
# the test importer (cases-bounce/78-importer-sync.sh), same kernel
rm -rf "$BUILD/edu-importer"
mkdir -p "$BUILD/edu-importer"
cp "$SRC"/tests/vm/edu-importer/Kbuild "$SRC"/tests/vm/edu-importer/*.[ch] \
	"$BUILD/edu-importer/"
make -s -C "$KDIR" M="$BUILD/edu-importer" modules >"$BUILD/edu-importer-build.log" 2>&1 || {
	cat "$BUILD/edu-importer-build.log"; die "edu-importer build failed"; }
[ -f "$BUILD/edu-importer/physmem_edu_importer.ko" ] || die "physmem_edu_importer.ko not built"

# ---- helpers (static, so they run the same in any root) ----
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -static -I"$SRC/kmod" \
	-o "$BUILD/bin/physmem-vmtest" \
	"$SRC/tests/vm/physmem-vmtest.c" "$SRC/tests/vm/edu-dma.c" ||
	die "helper build failed"
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -static -I"$SRC/kmod" \
	-o "$BUILD/bin/physmem-vivid" "$SRC/tests/vm/physmem-vivid.c" ||
	die "helper build failed"
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -static -pthread -I"$SRC/kmod" \
	-o "$BUILD/bin/physmem-bind-race" "$SRC/tests/vm/physmem-bind-race.c" ||
	die "helper build failed"
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -static -I"$SRC/kmod" \
	-o "$BUILD/bin/physmem-users" "$SRC/tests/vm/physmem-users.c" ||
	die "helper build failed"
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -static -I"$SRC/kmod" -I"$SRC/tests/vm" \
	-o "$BUILD/bin/physmem-importer-sync" "$SRC/tests/vm/physmem-importer-sync.c" ||
	die "helper build failed"
# <drm/*.h>: the C library's kernel headers, else (Debian 12's have none)
# the kernel's own uapi ones, whose __user annotations need defining away.
DRMINC=()
[ -e /usr/include/drm/drm_mode.h ] ||
	DRMINC=(-D__user= -idirafter "/lib/modules/$KVER/source/include/uapi")
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -static -I"$SRC/kmod" "${DRMINC[@]}" \
	-o "$BUILD/bin/physmem-kms" "$SRC/tests/vm/physmem-kms.c" ||
	die "helper build failed"
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -static -I"$SRC/kmod" \
	-o "$BUILD/bin/physmem-map-bench" "$SRC/tests/bench/physmem-map-bench.c" ||
	die "helper build failed"
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -static -I"$SRC/kmod" -I"$SRC/tests/vm" \
	-o "$BUILD/bin/physmem-attack" "$SRC/tests/vm/physmem-attack.c" -lpthread ||
	die "helper build failed"

# ---- disk for the O_DIRECT case ----
"$BUILD/bin/physmem-vmtest" mkdisk "$BUILD/disk.img" 16 || die "mkdisk failed"

# ---- initramfs ----
IRD=$BUILD/initramfs
rm -rf "$IRD"
mkdir -p "$IRD"/{bin,sbin,proc,sys,dev,mnt,modules,tmp}
cp "$BUSYBOX" "$IRD/bin/busybox"
: >"$IRD/modules.list"
for m in virtio_pci 9pnet_virtio 9p; do
	modprobe -S "$KVER" --show-depends $m | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r ko; do
	base=$(basename "$ko")
	case $ko in
	*.ko) cp "$ko" "$IRD/modules/$base" ;;
	*.ko.xz) xz -dc "$ko" >"$IRD/modules/${base%.xz}"; base=${base%.xz} ;;
	*.ko.zst) zstd -qdc "$ko" >"$IRD/modules/${base%.zst}"; base=${base%.zst} ;;
	*.ko.gz) gzip -dc "$ko" >"$IRD/modules/${base%.gz}"; base=${base%.gz} ;;
	esac
	echo "$base" >>"$IRD/modules.list"
done
[ -s "$IRD/modules.list" ] || die "could not resolve the 9p/virtio modules"
cp "$SRC/tests/vm/guest-init.sh" "$IRD/init"
chmod 755 "$IRD/init"
{
	printf 'PHYSMEM_SRC=%q\n' "$SRC"
	printf 'PHYSMEM_BUILD=%q\n' "$BUILD"
	printf 'PHYSMEM_KVER=%q\n' "$KVER"
	printf 'PHYSMEM_VM_CASE_DIRS=%q\n' "$CASE_DIRS"
	printf 'PHYSMEM_VM_ONLY=%q\n' "$ONLY"
	printf 'PHYSMEM_PROJECT_BUILD_DIR=%q\n' "${PHYSMEM_PROJECT_BUILD_DIR:-}"
	printf 'PHYSMEM_VM_KMOD_ARGS=%q\n' "${PHYSMEM_VM_KMOD_ARGS:-}"
} >"$IRD/physmem-vm.conf"
(cd "$IRD" && find . | cpio -o -H newc --quiet | gzip -1) >"$BUILD/initramfs.gz" ||
	die "initramfs failed"

# ---- expected cases ----
EXPECTED=(module-load counters-zero kernel-log)
IFS=: read -ra dirs <<<"$CASE_DIRS"
for d in "${dirs[@]}"; do
	for f in "$d"/*.sh; do
		[ -e "$f" ] || continue
		case $(basename "$f") in $ONLY) ;; *) continue ;; esac
		while read -r name; do
			EXPECTED+=("$name")
		done < <(sed -n 's/^# PHYSMEM-EXPECT: *\([^ ]*\).*/\1/p' "$f")
	done
done

# ---- boot ----
# Memory debugging the distribution kernel supports without a rebuild.
# PHYSMEM_VM_BOUNCE=1: iommu=soft sets up swiotlb (64 MiB, unused by every
# device whose mask covers all RAM, as physmem_dev's 64-bit one does).  The
# test importer (cases-bounce/78) has edu's 28-bit mask, so its mappings of
# pages above 256 MiB bounce through swiotlb; swiotlb is allocated at the
# top of the RAM below 4 GiB, so only 256 MiB of the guest's RAM lie below
# 4 GiB (the rest above it) to put swiotlb where edu reaches it (QEMU warns
# that 256 MiB is not a multiple of 1 GiB: harmless).  Not the default
# layout: vivid's 32-bit mask would then bounce too, and vb2-dma-contig's
# CPU writes through the vmap would be overwritten by the bounce buffer at
# unmap (the importer cases in cases/70 need RAM below 4 GiB).
# iomem=relaxed: Debian's CONFIG_IO_STRICT_DEVMEM refuses to mmap a PCI BAR
# that a driver holds; cases/72-kms.sh reads the cirrus VRAM that way.
KDEBUG=${PHYSMEM_VM_KDEBUG-"page_poison=1 slub_debug=FZPU nosoftlockup"}
BOUNCE_QEMU=()
BOUNCE_APPEND=
if [ "${PHYSMEM_VM_BOUNCE:-0}" = 1 ]; then
	BOUNCE_QEMU=(-machine max-ram-below-4g=256M)
	BOUNCE_APPEND="iommu=soft "
fi
MACHINE_QEMU=()
[ -n "${PHYSMEM_VM_MACHINE:-}" ] && MACHINE_QEMU=(-machine "$PHYSMEM_VM_MACHINE")
# Under TCG QEMU 7.2's intel-iommu needs intremap=off (interrupt remapping
# wants a split irqchip, which only KVM has).  It must come before edu.
IOMMU_QEMU=()
IOMMU_GROUP_QEMU=()
IOMMU_APPEND=
case ${PHYSMEM_VM_IOMMU:-} in
'') ;;
translate|pt)
	[ "${PHYSMEM_VM_MACHINE:-}" = q35 ] || die "PHYSMEM_VM_IOMMU needs PHYSMEM_VM_MACHINE=q35"
	IOMMU_QEMU=(-device intel-iommu,intremap=off)
	IOMMU_GROUP_QEMU=(-device pcie-pci-bridge,id=physmem_br,bus=pcie.0,addr=0x10
		-device edu,bus=physmem_br,addr=1,dma_mask=0xffffffffffffffff
		-device edu,bus=physmem_br,addr=2,dma_mask=0xffffffffffffffff)
	IOMMU_APPEND="intel_iommu=on iommu.strict=1 "
	[ "$PHYSMEM_VM_IOMMU" = pt ] && IOMMU_APPEND+="iommu=pt "
	;;
*) die "PHYSMEM_VM_IOMMU must be translate, pt or empty" ;;
esac
EXTRA_APPEND=${PHYSMEM_VM_APPEND:+$PHYSMEM_VM_APPEND }
LOG=$BUILD/console.log
# QEMU under TCG has been seen to hang before the firmware printed anything
# (7.3 on q35 with the IOMMU, once in many boots): no test ran. A VM whose
# console is still empty after FIRST_OUTPUT seconds is stopped and booted
# once more; any output at all, and the run is judged as it is.
FIRST_OUTPUT=${PHYSMEM_VM_FIRST_OUTPUT:-240}
boot() {
	# shellcheck disable=SC2086
	sh -c 'echo $$ >"$0"; exec "$@"' "$BUILD/qemu.pid" \
	timeout --foreground -k 10 "$TIMEOUT" "$QEMU" -accel tcg -m "$MEM" -smp 2 \
		-kernel "$KIMG" -initrd "$BUILD/initramfs.gz" \
		"${MACHINE_QEMU[@]}" "${BOUNCE_QEMU[@]}" \
		-append "console=ttyS0 quiet panic=-1 oops=panic iomem=relaxed $IOMMU_APPEND$EXTRA_APPEND$BOUNCE_APPEND$KDEBUG" \
		-nographic -no-reboot -monitor none -serial stdio \
		-vga cirrus "${IOMMU_QEMU[@]}" -device edu,dma_mask=0xffffffffffffffff \
		"${IOMMU_GROUP_QEMU[@]}" \
		-virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
		-drive file="$BUILD/disk.img",if=virtio,format=raw,readonly=on \
		${PHYSMEM_VM_QEMU_ARGS:-} </dev/null 2>&1 | tr -d '\r' | tee "$LOG"
}
attempt=1
while :; do
	say "booting (timeout ${TIMEOUT}s), console in $LOG"
	rm -f "$BUILD/qemu.pid" "$BUILD/no-output" "$LOG"
	: >"$LOG"
	start=$(date +%s)
	(
		for _ in $(seq "$FIRST_OUTPUT"); do
			sleep 1
			[ -s "$LOG" ] && exit 0
		done
		touch "$BUILD/no-output"
		[ -s "$BUILD/qemu.pid" ] && kill -TERM "$(cat "$BUILD/qemu.pid")" 2>/dev/null
	) &
	watcher=$!
	boot
	rc=$?
	kill "$watcher" 2>/dev/null
	wait "$watcher" 2>/dev/null
	elapsed=$(( $(date +%s) - start ))
	say "VM ran ${elapsed}s (qemu exit $rc)"
	if [ -e "$BUILD/no-output" ] && [ "$attempt" -eq 1 ]; then
		say "qemu printed nothing in ${FIRST_OUTPUT}s (not even the firmware): no test ran; booting once more"
		attempt=2
		continue
	fi
	break
done

# ---- verdict ----
fail=0
reasons=()
if [ -e "$BUILD/no-output" ]; then
	say "FAIL: qemu printed nothing in ${FIRST_OUTPUT}s, twice"
	reasons+=("qemu printed nothing in ${FIRST_OUTPUT}s, twice")
	fail=1
fi
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	say "FAIL: timeout after ${TIMEOUT}s"
	reasons+=("timeout after ${TIMEOUT}s")
	fail=1
fi
# Oopses and warnings, and the reports of the mm and slab debugging checks.
KERNEL_BAD='WARNING:|BUG:|Oops|general protection|KASAN|UBSAN|Kernel panic|Bad page|list_del corruption|list_add corruption|Bad rss-counter|page dumped because|Poison overwritten|Redzone|Object padding|refcount_t:|KFENCE|pagealloc: '
bad=$(grep -E "$KERNEL_BAD" "$LOG" | grep -v 'PHYSMEM-TEST')
if [ -n "$bad" ]; then
	say "FAIL: kernel log:"
	echo "$bad" | head -20
	mapfile -t -O "${#reasons[@]}" reasons < <(echo "$bad" | head -20 | sed 's/^/kernel log: /')
	fail=1
fi
results=$(grep -o 'PHYSMEM-TEST [^ ]* [A-Z]*.*' "$LOG")
nfail=$(echo "$results" | awk '$3 == "FAIL"' | grep -c . || true)
if [ "$nfail" -ne 0 ]; then
	say "FAIL: $nfail case(s) failed:"
	echo "$results" | awk '$3 == "FAIL"'
	mapfile -t -O "${#reasons[@]}" reasons < <(echo "$results" | awk '$3 == "FAIL"' | cut -c1-300)
	fail=1
fi
for name in "${EXPECTED[@]}"; do
	if ! echo "$results" | awk -v n="$name" '$2 == n { found = 1 } END { exit !found }'; then
		say "FAIL: no result line for case $name"
		reasons+=("no result line for case $name")
		fail=1
	fi
done
final=$(grep -o 'PHYSMEM-VM-RESULT pass=[0-9]* fail=[0-9]*' "$LOG" | tail -1)
if [ -z "$final" ]; then
	say "FAIL: no PHYSMEM-VM-RESULT line"
	reasons+=("no PHYSMEM-VM-RESULT line")
	fail=1
elif [ "${final##*fail=}" != 0 ]; then
	reasons+=("the guest counted failures: $final")
	fail=1
fi
say "summary: ${final:-none}; $(echo "$results" | grep -c . || true) result lines, ${#EXPECTED[@]} expected, ${elapsed}s"
[ "$fail" -eq 0 ] && say "OK" && exit 0
# The reasons again, last: CI shows the head and the tail of a failing
# test's output, and the console between them may be cut.
say "FAILED because:"
printf '%s\n' "${reasons[@]}" | head -40 | sed 's/^/run-vm-tests:   /'
if [ -n "$bad" ]; then
	say "the console around the first kernel report:"
	grep -v 'PHYSMEM-TEST' "$LOG" | grep -m1 -B 5 -A 40 -E "$KERNEL_BAD" | cut -c1-240 |
		sed 's/^/run-vm-tests:   | /'
fi
exit 1
