#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run-packaging-vm-test.sh [WORK_DIR]: the Debian packages under real systemd.
#
#  1. builds the .debs from this tree (packaging/build-debs.sh WORK_DIR/debs on
#     this Debian 12 host; for Debian 13, in the Debian 13 root of
#     tests/kernels/kernel-line.sh debs);
#  2. makes (or reuses from the cache) a debootstrapped root file system of the
#     release (Debian 12 bookworm by default, Debian 13 trixie with
#     PHYSMEM_PKG_VM_SUITE=trixie) with systemd, Debian's kernel + headers,
#     DKMS and a compiler; on Debian 13 also the newest kernel of
#     trixie-backports (7.x) with its headers, for which DKMS must build the
#     module too (checked by its vermagic; the VM boots Debian 13's own 6.12);
#  3. copies it, installs the fresh .debs in a chroot (dpkg -i; the -dkms
#     postinst builds physmem.ko for the image's kernel, or dkms install -k
#     does), builds the test helper against the installed libphysmem-dev,
#     adds the test users and the test unit;
#  4. makes an ext4 image of it and boots the image's own kernel and initrd
#     in QEMU (TCG) with systemd as init; physmem-pkg-test.service runs
#     guest-test.sh, which prints "PHYSMEM-PKG-TEST <name> PASS|FAIL ..."
#     lines and "PHYSMEM-PKG-RESULT pass=N fail=M" and powers off.
#
# Exit 0: every expected check passed.  1: a FAIL, a missing check line, no
# final line, a timeout, a kernel warning, or a build step failed.  77: QEMU
# or debootstrap cannot work here (not root, not installed, or no cached root
# file system and the mirror is unreachable); the reason is printed.
#
# Environment:
#   PHYSMEM_PKG_VM_SUITE     bookworm (default) or trixie
#   PHYSMEM_PKG_VM_CACHE     cache directory (default /var/cache/physmem-vm):
#                            rootfs-<suite>-<hash>/ (the debootstrapped tree, keyed
#                            by a hash of the recipe and package list) and debs/
#                            (debootstrap's downloads)
#   PHYSMEM_PKG_VM_MIRROR    Debian mirror (default http://deb.debian.org/debian)
#   PHYSMEM_PKG_VM_SECURITY  security mirror (default http://deb.debian.org/debian-security)
#   PHYSMEM_PKG_VM_TIMEOUT   seconds for the VM run (default 600)
#   PHYSMEM_PKG_VM_KEEP      1: keep WORK_DIR/root (the installed tree) and, after a
#                            pass, WORK_DIR/disk.img (kept anyway after a failure)
set -u
set -o pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$SRC/tests/packaging-vm
WORK=${1:-${TMPDIR:-/tmp}/physmem-pkg-vm.$(id -u)}
CACHE=${PHYSMEM_PKG_VM_CACHE:-/var/cache/physmem-vm}
MIRROR=${PHYSMEM_PKG_VM_MIRROR:-http://deb.debian.org/debian}
SECURITY=${PHYSMEM_PKG_VM_SECURITY:-http://deb.debian.org/debian-security}
TIMEOUT=${PHYSMEM_PKG_VM_TIMEOUT:-600}
SUITE=${PHYSMEM_PKG_VM_SUITE:-bookworm}

# What the image holds. Changing any of this (or RECIPE) makes a new cache key.
RECIPE=physmem-pkg-vm-rootfs-3
INCLUDE=systemd,systemd-sysv,udev,dbus,kmod,linux-image-amd64,linux-headers-amd64,initramfs-tools,dkms,gcc,make,libc6-dev,pkg-config,util-linux,libjson-c5,libjson-c-dev,libsystemd0,jq,procps,python3-numpy
case $SUITE in
bookworm) INCLUDE+=,libevent-2.1-7 ;;
trixie) INCLUDE+=,libevent-2.1-7t64 ;;
*) echo "packaging-vm: ERROR: PHYSMEM_PKG_VM_SUITE must be bookworm or trixie" >&2; exit 1 ;;
esac

# The checks guest-test.sh must report.
EXPECTED=(socket-listening service-on-demand module-dkms dev-node selftest-allowed
	service-activated backend-kmod python-import outsider-refused sandbox worker-priority sink-process fdstore-restart
	fdstore-producer-mapping status-line fdstore-ids reactivation watchdog journal-no-errors
	kernel-clean)

say() { echo "packaging-vm: $*"; }
skip() { say "SKIP: $*"; exit 77; }
die() { say "ERROR: $*"; exit 1; }
now() { date +%s; }
T0=$(now)
lap() { say "[$(( $(now) - T0 ))s] $*"; }

# ---- prerequisites ----
[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, chroot, dpkg -i into the image)"
QEMU=$(command -v qemu-system-x86_64) || skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
DEBOOTSTRAP=$(command -v debootstrap) || skip "debootstrap not installed (apt-get install debootstrap)"
for t in chroot mke2fs dpkg-buildpackage dh_dkms flock timeout sha256sum mount umount; do
	command -v $t >/dev/null ||
		die "$t not installed (the .deb build needs debhelper dh-dkms dkms cmake pkg-config libevent-dev libjson-c-dev libsystemd-dev; the image e2fsprogs)"
done

mkdir -p "$WORK" "$CACHE" || die "cannot create $WORK or $CACHE"
WORK=$(cd "$WORK" && pwd)
ROOT=$WORK/root
LOG=$WORK/console.log

# Unmount everything below a directory (deepest first); fail if anything stays.
umount_below() {
	local d=$1 m
	for m in $(awk -v d="$d" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" || return 1
	done
	! awk -v d="$d" '$2 == d || index($2, d "/") == 1 { f = 1 } END { exit !f }' /proc/mounts
}
# Remove a tree that may have had proc mounted in it, never across a mount.
remove_tree() {
	[ -e "$1" ] || return 0
	umount_below "$1" || die "cannot unmount below $1; not removing it"
	rm -rf --one-file-system "$1"
}
cleanup() {
	umount_below "$ROOT" 2>/dev/null
	[ -n "${BASE_TMP:-}" ] && { umount_below "$BASE_TMP"; rm -rf --one-file-system "$BASE_TMP"; }
}
trap cleanup EXIT
trap 'exit 1' INT TERM

in_chroot() {		# dir command...: with /proc mounted, services denied
	local d=$1
	shift
	mountpoint -q "$d/proc" || mount -t proc proc "$d/proc" || return 1
	chroot "$d" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive "$@"
}

# ---- 1. the packages ----
rm -rf "$WORK/debs"
if [ "$SUITE" = bookworm ]; then
	lap "building the .debs (packaging/build-debs.sh $WORK/debs)"
	"$SRC/packaging/build-debs.sh" "$WORK/debs" >"$WORK/build-debs.out" 2>&1 || {
		cat "$WORK/build-debs.out"; die "packaging/build-debs.sh failed"; }
else
	lap "building the .debs in a $SUITE root (tests/kernels/kernel-line.sh debs $WORK/kl)"
	"$SRC/tests/kernels/kernel-line.sh" debs "$WORK/kl" >"$WORK/build-debs.out" 2>&1
	rc=$?
	[ $rc -eq 77 ] && { cat "$WORK/build-debs.out"; skip "no $SUITE root to build the packages in"; }
	[ $rc -eq 0 ] || { cat "$WORK/build-debs.out"; die "building the .debs for $SUITE failed"; }
	mv "$WORK/kl/debs" "$WORK/debs" || die "no $WORK/kl/debs"
fi
DEBS=()
for p in physmemd libphysmem0 libphysmem-dev physmemctl physmem-dkms python3-physmem; do
	f=
	for g in "$WORK/debs/${p}"_*.deb; do
		[ -e "$g" ] && f=$g && break
	done
	[ -n "$f" ] || die "build-debs.sh made no ${p}_*.deb"
	DEBS+=("$f")
done
VERSION=$(dpkg-deb -f "${DEBS[4]}" Version)
VERSION=${VERSION%-*}
lap "built: $(cd "$WORK/debs" && ls -1 "${DEBS[@]##*/}" | tr '\n' ' ')(version $VERSION)"

# ---- 2. the base root file system (cached) ----
KEY=$(printf '%s\n' "$RECIPE" "$SUITE" "$MIRROR" "$SECURITY" "$INCLUDE" | sha256sum | cut -c1-16)
BASE=$CACHE/rootfs-$SUITE-$KEY
exec 9>"$CACHE/lock"
flock 9 || die "cannot lock $CACHE/lock"
if [ -f "$BASE/.physmem-base-ok" ]; then
	lap "reusing the cached root file system $BASE"
else
	lap "no cached root file system for key $KEY: building it (debootstrap + security updates)"
	if command -v wget >/dev/null; then
		wget -q -T 30 -t 2 -O /dev/null "$MIRROR/dists/$SUITE/Release" ||
			skip "no cached root file system and $MIRROR is unreachable"
	fi
	BASE_TMP=$CACHE/rootfs-$SUITE-$KEY.tmp.$$
	mkdir -p "$CACHE/debs"
	"$DEBOOTSTRAP" --variant=minbase --cache-dir="$CACHE/debs" --include="$INCLUDE" \
		"$SUITE" "$BASE_TMP" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
		tail -n 30 "$WORK/debootstrap.log"
		die "debootstrap failed (log: $WORK/debootstrap.log)"; }
	lap "debootstrap done; upgrading to $SUITE-updates and $SUITE-security"
	cat >"$BASE_TMP/etc/apt/sources.list" <<-EOT
		deb $MIRROR $SUITE main
		deb $MIRROR $SUITE-updates main
		deb $SECURITY $SUITE-security main
	EOT
	[ "$SUITE" = bookworm ] || echo "deb $MIRROR $SUITE-backports main" >>"$BASE_TMP/etc/apt/sources.list"
	# The archive may serve Release files past their Valid-Until date.
	echo 'Acquire::Check-Valid-Until "false";' >"$BASE_TMP/etc/apt/apt.conf.d/99physmem"
	printf '#!/bin/sh\nexit 101\n' >"$BASE_TMP/usr/sbin/policy-rc.d"
	chmod 755 "$BASE_TMP/usr/sbin/policy-rc.d"
	{
		in_chroot "$BASE_TMP" apt-get -q update &&
		in_chroot "$BASE_TMP" apt-get -q -y -o Dpkg::Options::=--force-confold dist-upgrade
	} >"$WORK/base-upgrade.log" 2>&1 || {
		tail -n 30 "$WORK/base-upgrade.log"; die "upgrading the base system failed"; }
	# Keep only the newest kernel (the one the headers meta-package points at).
	newest=$(ls -1 "$BASE_TMP/boot" | sed -n 's/^vmlinuz-//p' | sort -V | tail -1)
	old=$(in_chroot "$BASE_TMP" dpkg-query -W -f '${Package}\n' 'linux-image-[0-9]*' 'linux-headers-[0-9]*' 2>/dev/null |
		grep -E -- '-amd64$' | grep -v -- "-$newest\$" | tr '\n' ' ')
	if [ -n "$old" ]; then
		# shellcheck disable=SC2086
		in_chroot "$BASE_TMP" apt-get -q -y purge $old >>"$WORK/base-upgrade.log" 2>&1 ||
			die "purging old kernels ($old) failed"
	fi
	in_chroot "$BASE_TMP" apt-get -q -y autoremove --purge >>"$WORK/base-upgrade.log" 2>&1
	: >"$BASE_TMP/.physmem-extra-kernels"
	if [ "$SUITE" != bookworm ]; then
		# The newest non-rc kernel of the release's backports, beside its own.
		bv=$(in_chroot "$BASE_TMP" apt-cache madison linux-image-amd64 | awk -F' *\\| *' \
			'$3 ~ /backports/ && $2 !~ /~rc|~exp/ { print $2 }' | sort -V | tail -1)
		[ -n "$bv" ] || die "no linux-image-amd64 in $SUITE-backports"
		bimg=$(in_chroot "$BASE_TMP" apt-cache depends "linux-image-amd64=$bv" |
			sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1)
		bhdr=$(in_chroot "$BASE_TMP" apt-cache depends "linux-headers-amd64=$bv" |
			sed -n 's/^ *Depends: \(linux-headers-[0-9].*\)$/\1/p' | head -1)
		[ -n "$bimg" ] && [ -n "$bhdr" ] || die "cannot resolve the $SUITE-backports kernel $bv"
		lap "adding $bimg and $bhdr from $SUITE-backports"
		in_chroot "$BASE_TMP" apt-get -q -y --no-install-recommends install "$bimg/$SUITE-backports" \
			"$bhdr/$SUITE-backports" "linux-base/$SUITE-backports" >>"$WORK/base-upgrade.log" 2>&1 ||
			die "installing the $SUITE-backports kernel failed"
		echo "${bimg#linux-image-}" >"$BASE_TMP/.physmem-extra-kernels"
	fi
	in_chroot "$BASE_TMP" apt-get clean
	umount_below "$BASE_TMP" || die "cannot unmount below $BASE_TMP"
	rm -f "$BASE_TMP/usr/sbin/policy-rc.d"
	[ -e "$BASE_TMP/boot/vmlinuz-$newest" ] && [ -e "$BASE_TMP/boot/initrd.img-$newest" ] &&
		[ -d "$BASE_TMP/lib/modules/$newest/build" ] ||
		die "the base system lacks kernel, initrd or headers for $newest"
	printf '%s\n' "$newest" >"$BASE_TMP/.physmem-base-ok"
	for d in "$CACHE"/rootfs-"$SUITE"-* "$CACHE"/rootfs-????????????????; do
		[ "$d" = "$BASE_TMP" ] && continue
		[ -d "$d" ] || continue
		say "removing the stale cache entry $d"
		rm -rf --one-file-system "$d"
	done
	mv "$BASE_TMP" "$BASE" || die "cannot move the new root file system into the cache"
	BASE_TMP=
	lap "cached the root file system as $BASE ($(du -sh "$BASE" | cut -f1))"
fi
KVER=$(cat "$BASE/.physmem-base-ok")
HOST_KVER=$(ls -1 /boot 2>/dev/null | sed -n 's/^vmlinuz-//p' | sort -V | tail -1)
if [ "$KVER" = "$HOST_KVER" ]; then
	lap "image kernel $KVER (same version as the host's /boot kernel)"
else
	lap "image kernel $KVER (the host's /boot has ${HOST_KVER:-none}; booting the image's own)"
fi

# ---- 3. install the packages into a copy ----
remove_tree "$ROOT"
cp -a "$BASE" "$ROOT" || die "copying the cached root file system failed"
flock -u 9
exec 9>&-
rm -f "$ROOT/.physmem-base-ok"
lap "copied the base tree; installing the packages"
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
mkdir -p "$ROOT/tmp/physmem-debs"
cp "${DEBS[@]}" "$ROOT/tmp/physmem-debs/"
in_chroot "$ROOT" sh -c 'dpkg -i /tmp/physmem-debs/*.deb' >"$WORK/dpkg-install.log" 2>&1 || {
	cat "$WORK/dpkg-install.log"; die "dpkg -i of the packages failed in the image"; }
grep -iE 'dkms|physmem|warning|error' "$WORK/dpkg-install.log" | grep -v '^Unpacking\|^Selecting\|^Preparing' |
	sed 's/^/  dpkg: /' | head -30
KO=$(ls -1 "$ROOT/lib/modules/$KVER/updates/dkms/physmem.ko"* 2>/dev/null | head -1)
if [ -n "$KO" ]; then
	DKMS_HOW="the physmem-dkms postinst (dkms autoinstall in the chroot)"
else
	lap "the postinst did not build physmem.ko for $KVER (in the chroot uname -r is $(uname -r)); dkms install -k $KVER"
	in_chroot "$ROOT" dkms install "physmem/$VERSION" -k "$KVER" >"$WORK/dkms-install.log" 2>&1
	sed 's/^/  dkms: /' "$WORK/dkms-install.log" | tail -20
	KO=$(ls -1 "$ROOT/lib/modules/$KVER/updates/dkms/physmem.ko"* 2>/dev/null | head -1)
	DKMS_HOW="an explicit dkms install physmem/$VERSION -k $KVER"
fi
if [ -n "$KO" ]; then
	lap "physmem.ko for $KVER built by $DKMS_HOW: ${KO#"$ROOT"}"
else
	say "physmem.ko was NOT built for $KVER; the guest's module-dkms check will fail"
fi
# The other installed kernels (Debian 13: the backports kernel) get theirs
# from DKMS too; checked here by the module's vermagic, as the VM boots one.
for xk in $(cat "$ROOT/.physmem-extra-kernels" 2>/dev/null); do
	XKO=$(ls -1 "$ROOT/lib/modules/$xk/updates/dkms/physmem.ko"* 2>/dev/null | head -1)
	if [ -z "$XKO" ]; then
		in_chroot "$ROOT" dkms install "physmem/$VERSION" -k "$xk" >"$WORK/dkms-install-$xk.log" 2>&1
		XKO=$(ls -1 "$ROOT/lib/modules/$xk/updates/dkms/physmem.ko"* 2>/dev/null | head -1)
	fi
	[ -n "$XKO" ] || { sed 's/^/  dkms: /' "$WORK/dkms-install-$xk.log" | tail -30
		die "DKMS did not build physmem.ko for $xk"; }
	vm=$(in_chroot "$ROOT" modinfo -F vermagic "${XKO#"$ROOT"}")
	case $vm in "$xk "*) ;; *) die "physmem.ko for $xk has vermagic '$vm'" ;; esac
	lap "physmem.ko for $xk built by DKMS too: ${XKO#"$ROOT"} (vermagic $vm)"
	DKMS_HOW+="; also built for $xk"
done
rm -f "$ROOT/.physmem-extra-kernels"

install -d "$ROOT/usr/local/libexec/physmem-pkg-test"
cp "$HERE/pm-share.c" "$ROOT/tmp/pm-share.c"
in_chroot "$ROOT" sh -c 'gcc -std=gnu11 -O2 -Wall -Wextra -Werror -o /usr/local/libexec/physmem-pkg-test/pm-share /tmp/pm-share.c $(pkg-config --cflags --libs physmem)' \
	>"$WORK/helper-build.log" 2>&1 || {
	cat "$WORK/helper-build.log"; die "building pm-share against the installed libphysmem-dev failed"; }
install -m 0755 "$HERE/guest-test.sh" "$ROOT/usr/local/libexec/physmem-pkg-test/guest-test"
in_chroot "$ROOT" getent group physmem >/dev/null || die "the physmemd package did not create group physmem"
in_chroot "$ROOT" useradd -m -s /bin/bash -G physmem pmuser || die "useradd pmuser"
in_chroot "$ROOT" useradd -m -s /bin/bash -G physmem pmpeer || die "useradd pmpeer"
in_chroot "$ROOT" useradd -m -s /bin/bash pmother || die "useradd pmother"

cat >"$ROOT/etc/systemd/system/physmem-pkg-test.service" <<'EOT'
[Unit]
Description=physmem packaging test (prints PHYSMEM-PKG-TEST lines, then powers off)
After=multi-user.target physmemd.socket systemd-modules-load.service systemd-udev-trigger.service
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/usr/local/libexec/physmem-pkg-test/guest-test
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity
EOT
cat >"$ROOT/etc/systemd/system/physmem-pkg-test.target" <<'EOT'
[Unit]
Description=physmem packaging test
Requires=multi-user.target physmem-pkg-test.service
After=multi-user.target
AllowIsolate=yes
EOT
# No login prompts on the console.
ln -sf /dev/null "$ROOT/etc/systemd/system/serial-getty@ttyS0.service"
ln -sf /dev/null "$ROOT/etc/systemd/system/getty@tty1.service"
echo physmem-pkg-vm >"$ROOT/etc/hostname"
echo '/dev/vda / ext4 rw,errors=remount-ro 0 0' >"$ROOT/etc/fstab"
rm -rf "$ROOT/tmp/physmem-debs" "$ROOT/tmp/pm-share.c" "$ROOT/usr/sbin/policy-rc.d"
umount_below "$ROOT" || die "cannot unmount below $ROOT"
cp "$ROOT/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
cp "$ROOT/boot/initrd.img-$KVER" "$WORK/initrd.img"

# ---- 4. the disk image and the boot ----
size_mb=$(( $(du -sm "$ROOT" | cut -f1) + 768 ))
rm -f "$WORK/disk.img"
mke2fs -q -t ext4 -L physmem-root -d "$ROOT" "$WORK/disk.img" "${size_mb}M" >"$WORK/mke2fs.log" 2>&1 || {
	cat "$WORK/mke2fs.log"; die "mke2fs -d failed"; }
[ "${PHYSMEM_PKG_VM_KEEP:-0}" = 1 ] || remove_tree "$ROOT"
lap "disk image $WORK/disk.img (${size_mb} MiB); booting $KVER under TCG (timeout ${TIMEOUT}s), console in $LOG"

vm_start=$(now)
timeout --foreground -k 10 "$TIMEOUT" "$QEMU" -accel tcg -m 2048 -smp 2 \
	-kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img" \
	-append "root=/dev/vda rw rootfstype=ext4 console=ttyS0 panic=-1 systemd.unit=physmem-pkg-test.target systemd.firstboot=off systemd.show_status=1" \
	-nographic -no-reboot -monitor none -serial stdio \
	-drive file="$WORK/disk.img",if=virtio,format=raw \
	-device virtio-rng-pci </dev/null 2>&1 | tr -d '\r' | tee "$LOG" |
	grep --line-buffered -E 'PHYSMEM-PKG-|Kernel panic|WARNING:|BUG:|Oops'
rc=${PIPESTATUS[0]}
vm_s=$(( $(now) - vm_start ))
lap "VM ran ${vm_s}s (qemu exit $rc)"

# ---- verdict ----
fail=0
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	say "FAIL: timeout after ${TIMEOUT}s"
	fail=1
elif [ "$rc" -ne 0 ]; then
	say "FAIL: qemu exited with $rc"
	fail=1
fi
bad=$(grep -E 'WARNING:|BUG:|Oops|general protection|KASAN|UBSAN|Kernel panic' "$LOG" | grep -v 'PHYSMEM-PKG-')
if [ -n "$bad" ]; then
	say "FAIL: kernel log:"
	echo "$bad" | head -20
	fail=1
fi
results=$(grep -o 'PHYSMEM-PKG-TEST [^ ]* [A-Z]*.*' "$LOG")
nfail=$(echo "$results" | awk '$3 != "PASS"' | grep -c . || true)
if [ "$nfail" -ne 0 ]; then
	say "FAIL: $nfail check(s) failed:"
	echo "$results" | awk '$3 != "PASS"'
	fail=1
fi
for name in "${EXPECTED[@]}"; do
	echo "$results" | awk -v n="$name" '$2 == n { f = 1 } END { exit !f }' || {
		say "FAIL: no result line for check $name"; fail=1; }
done
final=$(grep -o 'PHYSMEM-PKG-RESULT pass=[0-9]* fail=[0-9]*' "$LOG" | tail -1)
if [ -z "$final" ]; then
	say "FAIL: no PHYSMEM-PKG-RESULT line"
	fail=1
elif [ "${final##*fail=}" != 0 ]; then
	fail=1
fi
lap "summary: ${final:-no final line}; $(echo "$results" | grep -c . || true) check lines, ${#EXPECTED[@]} expected; VM ${vm_s}s; module built by ${DKMS_HOW}"
if [ "$fail" -eq 0 ]; then
	[ "${PHYSMEM_PKG_VM_KEEP:-0}" = 1 ] || rm -f "$WORK/disk.img"
	say OK
	exit 0
fi
say "kept for inspection: $WORK/disk.img (boot it with the same QEMU command), $LOG"
exit 1
