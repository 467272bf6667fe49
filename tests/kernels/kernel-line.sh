#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# kernel-line.sh ACTION [LINE] WORK_DIR: the kernel-module tests on the
# Debian kernel lines newer than the host's (Debian 12's 6.1 is tested on
# the host itself by kmod-style and vm-kernel).
#
# Those kernels' kbuild tools need glibc >= 2.38 and gcc-14, so physmem.ko
# cannot be built for them on a Debian 12 host.  This script keeps a Debian 13
# ("trixie") root file system made with debootstrap, with the kernel image and
# headers of each line installed side by side, and runs the same tests inside
# it that the host runs for 6.1: the project is built there with cmake
# (PHYSMEM_TEST_SET=kernel) and tests/vm/run-vm-tests.sh boots that kernel in
# QEMU with the trixie root as the guest's root over 9p.
#
# LINE
#   debian13   the newest kernel of the Debian 13 release (trixie,
#              trixie-updates, trixie-security: 6.12.x)
#   newest     the newest non-rc kernel of trixie-backports (7.x)
# Both are found from Debian's archive when the root is made, never named here.
#
# ACTION
#   root       make the root (or reuse the cached one) and print its kernels
#   style      kmod/check-style.sh for LINE's kernel (W=1, sparse, checkpatch.pl
#              from that line's linux-source); the newest line uses the newest
#              sparse in Debian (sid's), as Debian 13's cannot parse its headers
#   vm         the whole VM suite (daemon cases included) on LINE's kernel
#   bench      the mapping benchmark (tests/bench/vm/90-map-bench.sh) on
#              LINE's kernel, in its own boot: no memory debugging options
#              (PHYSMEM_VM_KDEBUG empty), PHYSMEM_VM_MEM 3072 unless set
#   pool       the contiguous-pool cases (tests/vm/cases-pool) on LINE's
#              kernel, in its own boot with 1536 MiB: reserve_mem=384M:2M:physmem
#              and the module's pool_reserve_mem=physmem; the newest line also
#              reserves cma=320M and adds pool_cma=default
#   bounce     the bounce-buffer importer case (tests/vm/cases-bounce) on
#              LINE's kernel, in its own boot (PHYSMEM_VM_BOUNCE=1: swiotlb,
#              most RAM above 4 GiB)
#   debs       build the Debian packages for Debian 13 in the root
#              (packaging/build-debs.sh) into WORK_DIR/debs, for the Debian 13
#              packaging VM test (tests/packaging-vm)
#
# Exit 0: passed.  1: failed.  77: cannot run here (not root, no debootstrap,
# no archive and no cached root), or a check was skipped (style: reason
# printed).
#
# The mounts the tests need inside the root (proc, sys, dev, this source tree
# and WORK_DIR at their own paths) are made in a private mount namespace
# (unshare -m), so they vanish with the command and never touch the cache.
#
# Environment:
#   PHYSMEM_KERNELS_CACHE      cache directory (default /var/cache/physmem-vm):
#                              trixie-<hash>/ is the root, rebuilt when the
#                              recipe changes or it is older than
#                              PHYSMEM_KERNELS_MAX_AGE_DAYS (default 7)
#   PHYSMEM_KERNELS_MIRROR     Debian mirror (default http://deb.debian.org/debian)
#   PHYSMEM_KERNELS_SECURITY   security mirror (default http://deb.debian.org/debian-security)
#   PHYSMEM_VM_TIMEOUT, PHYSMEM_VM_ONLY, PHYSMEM_VM_KDEBUG, PHYSMEM_VM_MEM
#                              passed to run-vm-tests.sh
set -u
set -o pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${PHYSMEM_KERNELS_CACHE:-/var/cache/physmem-vm}
MIRROR=${PHYSMEM_KERNELS_MIRROR:-http://deb.debian.org/debian}
SECURITY=${PHYSMEM_KERNELS_SECURITY:-http://deb.debian.org/debian-security}
MAX_AGE=${PHYSMEM_KERNELS_MAX_AGE_DAYS:-7}
SUITE=trixie

# What the root holds besides the kernels.  Changing it (or RECIPE) makes a
# new cache key.
RECIPE=physmem-kernels-root-2
PKGS="gcc libc6-dev make cmake pkg-config libevent-dev libjson-c-dev libsystemd-dev
libcmocka-dev python3 busybox-static cpio kmod qemu-system-x86 util-linux sparse
xz-utils zstd gzip file procps jq perl strace
build-essential debhelper dh-dkms dkms fakeroot dpkg-dev bash-completion udev systemd systemd-dev"

say() { echo "kernel-line: $*"; }
skip() { say "SKIP: $*"; exit 77; }
die() { say "ERROR: $*"; exit 1; }
T0=$(date +%s)
lap() { say "[$(( $(date +%s) - T0 ))s] $*"; }

usage() { echo "usage: $0 root|debs WORK_DIR | $0 style|vm|bench|bounce|pool debian13|newest WORK_DIR" >&2; exit 2; }
ACTION=${1:-}
case $ACTION in
root|debs) [ $# -eq 2 ] || usage; LINE=; WORK=$2 ;;
style|vm|bench|bounce|pool) [ $# -eq 3 ] || usage; LINE=$2; WORK=$3
	case $LINE in debian13|newest) ;; *) usage ;; esac ;;
*) usage ;;
esac

[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, chroot, mounts)"
DEBOOTSTRAP=$(command -v debootstrap) || skip "debootstrap not installed (apt-get install debootstrap)"
for t in chroot unshare flock sha256sum mount timeout; do
	command -v $t >/dev/null || die "$t not installed"
done
mkdir -p "$WORK" "$CACHE" || die "cannot create $WORK or $CACHE"
WORK=$(cd "$WORK" && pwd)

KEY=$(printf '%s\n' "$RECIPE" "$SUITE" "$MIRROR" "$SECURITY" $PKGS | sha256sum | cut -c1-16)
ROOT=$CACHE/trixie-$KEY

# Run a command in the root: proc, sys and dev mounted, the source tree and
# WORK bound at their own paths, all in a private mount namespace.
in_root() {
	local env=(PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 TMPDIR=/tmp
		DEBIAN_FRONTEND=noninteractive)
	while [ $# -gt 0 ] && [[ $1 == *=* ]]; do env+=("$1"); shift; done
	unshare --mount --propagation private /bin/sh -ec '
		r=$1; src=$2; work=$3; shift 3
		mount -t proc proc "$r/proc"
		mount -t sysfs sysfs "$r/sys"
		mount --rbind /dev "$r/dev"
		for p in "$src" "$work"; do
			mkdir -p "$r$p"
			mount --bind "$p" "$r$p"
		done
		exec chroot "$r" "$@"' sh "$ROOT" "$SRC" "$WORK" /usr/bin/env -i "${env[@]}" "$@"
}

# Build the root (debootstrap, the three trixie suites plus backports, both
# kernels and everything the tests need) unless a fresh one is cached.
make_root() {
	local tmp newest_v d13_v pkg v img hdr src
	exec 9>"$CACHE/trixie-root.lock"
	flock 9 || die "cannot lock $CACHE/trixie-root.lock"
	if [ -f "$ROOT/.physmem-kernels" ] &&
	   [ -z "$(find "$ROOT/.physmem-kernels" -mtime +"$MAX_AGE")" ]; then
		lap "reusing the cached root $ROOT"
		flock -u 9
		return 0
	fi
	if command -v wget >/dev/null; then
		wget -q -T 30 -t 2 -O /dev/null "$MIRROR/dists/$SUITE/Release" ||
			skip "no cached root and $MIRROR is unreachable"
	fi
	tmp=$ROOT.tmp.$$
	rm -rf --one-file-system "$tmp"
	lap "making a $SUITE root in $tmp (debootstrap)"
	"$DEBOOTSTRAP" --variant=minbase "$SUITE" "$tmp" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
		tail -n 30 "$WORK/debootstrap.log"; rm -rf --one-file-system "$tmp"
		die "debootstrap failed (log: $WORK/debootstrap.log)"; }
	cat >"$tmp/etc/apt/sources.list" <<-EOT
		deb $MIRROR $SUITE main
		deb $MIRROR $SUITE-updates main
		deb $SECURITY $SUITE-security main
		deb $MIRROR $SUITE-backports main
	EOT
	# The archive may serve Release files past their Valid-Until date.
	echo 'Acquire::Check-Valid-Until "false";' >"$tmp/etc/apt/apt.conf.d/99physmem"
	printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
	chmod 755 "$tmp/usr/sbin/policy-rc.d"
	local old=$ROOT
	ROOT=$tmp
	in_root apt-get -q update >"$WORK/root-apt.log" 2>&1 || {
		tail -n 20 "$WORK/root-apt.log"; die "apt-get update in the root failed"; }
	# The newest kernel of each line, from the archive's own lists.
	d13_v=$(in_root apt-cache madison linux-image-amd64 | awk -F' *\\| *' \
		'$3 !~ /backports/ && $2 !~ /~rc|~exp/ { print $2 }' | sort -V | tail -1)
	newest_v=$(in_root apt-cache madison linux-image-amd64 | awk -F' *\\| *' \
		'$3 ~ /backports/ && $2 !~ /~rc|~exp/ { print $2 }' | sort -V | tail -1)
	[ -n "$d13_v" ] || die "no linux-image-amd64 in $SUITE"
	local want=() lines=
	for line in debian13 newest; do
		if [ $line = debian13 ]; then v=$d13_v; else v=$newest_v; fi
		if [ -z "$v" ]; then
			lines+="$line none no-non-rc-kernel-in-$SUITE-backports"$'\n'
			continue
		fi
		img=$(in_root apt-cache depends "linux-image-amd64=$v" |
			sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1)
		hdr=$(in_root apt-cache depends "linux-headers-amd64=$v" |
			sed -n 's/^ *Depends: \(linux-headers-[0-9].*\)$/\1/p' | head -1)
		src=$(in_root apt-cache depends "linux-source=$v" |
			sed -n 's/^ *Depends: \(linux-source-[0-9].*\)$/\1/p' | head -1)
		[ -n "$img" ] && [ -n "$hdr" ] || die "cannot resolve linux-image/headers-amd64=$v"
		pkg="${img#linux-image-}"
		if [ $line = newest ]; then
			want+=("$img/$SUITE-backports" "$hdr/$SUITE-backports" "linux-base/$SUITE-backports")
			[ -n "$src" ] && want+=("$src/$SUITE-backports")
		else
			want+=("$img" "$hdr")
			[ -n "$src" ] && want+=("$src")
		fi
		lines+="$line $pkg $v"$'\n'
	done
	lap "kernels: $(echo "$lines" | awk 'NF { printf "%s %s (%s); ", $1, $2, $3 }')installing"
	# No initrd is needed (the VM boots its own initramfs): the kernels'
	# postinst hooks find a no-op update-initramfs.
	in_root dpkg-divert --local --rename --add /usr/sbin/update-initramfs >/dev/null &&
	ln -s /bin/true "$tmp/usr/sbin/update-initramfs" || die "cannot divert update-initramfs"
	# shellcheck disable=SC2086
	in_root apt-get -q -y --no-install-recommends install $PKGS "${want[@]}" \
		>>"$WORK/root-apt.log" 2>&1 || {
		tail -n 30 "$WORK/root-apt.log"; die "installing the root's packages failed"; }
	# Debian 13's sparse (0.6.4) cannot parse 7.x headers (__typeof_unqual__);
	# the newest sparse in Debian (sid's, which needs nothing but libc) is
	# unpacked beside it for the newest line.  A private apt state keeps sid's
	# lists out of the root's own.
	echo "deb $MIRROR sid main" >"$tmp/etc/apt/physmem-sid.list"
	local sidapt=(-o Dir::Etc::SourceList=/etc/apt/physmem-sid.list -o Dir::Etc::SourceParts=-
		-o Dir::State::Lists=/var/lib/apt/physmem-sid-lists -o Dir::Cache=/var/cache/apt/physmem-sid)
	mkdir -p "$tmp/var/lib/apt/physmem-sid-lists/partial" "$tmp/var/cache/apt/physmem-sid/archives/partial"
	in_root apt-get -q "${sidapt[@]}" update >>"$WORK/root-apt.log" 2>&1 &&
	in_root sh -c 'cd /tmp && apt-get -q "$@" download sparse && dpkg -x sparse_*.deb /opt/physmem-sparse &&
		rm -f sparse_*.deb' sh "${sidapt[@]}" >>"$WORK/root-apt.log" 2>&1 &&
	in_root /opt/physmem-sparse/usr/bin/sparse --version >/dev/null 2>&1 || {
		tail -n 20 "$WORK/root-apt.log"; die "cannot unpack sid's sparse into the root"; }
	rm -rf "$tmp/var/lib/apt/physmem-sid-lists" "$tmp/var/cache/apt/physmem-sid" "$tmp/etc/apt/physmem-sid.list"
	in_root apt-get clean
	echo "$lines" | awk NF >"$tmp/.physmem-kernels"
	ROOT=$old
	rm -rf --one-file-system "$ROOT"
	for d in "$CACHE"/trixie-*; do
		[ "$d" = "$tmp" ] && continue
		[ -d "$d" ] || continue
		say "removing the stale cache entry $d"
		rm -rf --one-file-system "$d"
	done
	mv "$tmp" "$ROOT" || die "cannot move the new root into the cache"
	lap "cached the root as $ROOT ($(du -sh --one-file-system "$ROOT" | cut -f1))"
	flock -u 9
}

make_root
[ "$ACTION" = root ] && { cat "$ROOT/.physmem-kernels"; exit 0; }
if [ "$ACTION" = debs ]; then
	# build-debs.sh copies what git tracks (and untracked, not ignored
	# files); git is not in the root, so the copy is made here and the root
	# builds from it.
	rm -rf "$WORK/src" "$WORK/debs"
	mkdir -p "$WORK/src"
	if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git -C "$SRC" ls-files -z --cached --others --exclude-standard |
			(cd "$SRC" && xargs -0 tar -cf - --no-recursion --) | tar -xf - -C "$WORK/src"
	else
		tar -C "$SRC" --exclude=.git -cf - . | tar -xf - -C "$WORK/src"
	fi || die "cannot copy the source tree"
	lap "building the .debs for Debian 13 in the root"
	in_root "$WORK/src/packaging/build-debs.sh" "$WORK/debs" >"$WORK/build-debs.out" 2>&1 || {
		cat "$WORK/build-debs.out"; die "build-debs.sh failed in the root"; }
	lap "built: $(cd "$WORK/debs" && ls -1 ./*.deb | tr '\n' ' ')"
	exit 0
fi

read -r _ KVER VERSION < <(awk -v l="$LINE" '$1 == l' "$ROOT/.physmem-kernels")
[ -n "${KVER:-}" ] || die "the root lists no kernel for line $LINE"
[ "$KVER" = none ] && skip "line $LINE: $VERSION"
[ -d "$ROOT/lib/modules/$KVER/build" ] || die "$KVER: no headers in the root"
say "line $LINE: kernel $KVER (package version $VERSION)"

case $ACTION in
style)
	sparse=
	[ "$LINE" = newest ] && sparse=PHYSMEM_SPARSE=/opt/physmem-sparse/usr/bin/sparse
	in_root $sparse "$SRC/kmod/check-style.sh" "$KVER" "$WORK/style"
	exit $?
	;;
vm)
	lap "building the project in the root for $KVER"
	in_root cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Debug -DPHYSMEM_WERROR=ON \
		-DPHYSMEM_TEST_SET=kernel -DPHYSMEM_BUILD_KMOD=OFF -DPHYSMEM_KVER="$KVER" \
		>"$WORK/cmake.log" 2>&1 &&
	in_root cmake --build "$WORK/build" -j"$(nproc)" --target physmemd physmemctl physmem-vm-client \
		>>"$WORK/cmake.log" 2>&1 || { tail -n 40 "$WORK/cmake.log"; die "build in the root failed"; }
	lap "running the VM suite on $KVER"
	in_root KVER="$KVER" PHYSMEM_PROJECT_BUILD_DIR="$WORK/build" \
		${PHYSMEM_VM_TIMEOUT:+PHYSMEM_VM_TIMEOUT="$PHYSMEM_VM_TIMEOUT"} \
		${PHYSMEM_VM_ONLY:+PHYSMEM_VM_ONLY="$PHYSMEM_VM_ONLY"} \
		${PHYSMEM_VM_KDEBUG+PHYSMEM_VM_KDEBUG="$PHYSMEM_VM_KDEBUG"} \
		${PHYSMEM_VM_MEM:+PHYSMEM_VM_MEM="$PHYSMEM_VM_MEM"} \
		"$SRC/tests/vm/run-vm-tests.sh" "$WORK/vm"
	rc=$?
	lap "VM suite on $KVER: exit $rc"
	exit $rc
	;;
bench)
	# Only the bench case (no daemon: the project need not be built), in a
	# boot without page poisoning and slub debugging.
	lap "running the mapping benchmark on $KVER"
	in_root KVER="$KVER" PHYSMEM_VM_CASE_DIRS="$SRC/tests/bench/vm" PHYSMEM_VM_ONLY='9*' \
		PHYSMEM_VM_KDEBUG= PHYSMEM_VM_MEM="${PHYSMEM_VM_MEM:-3072}" \
		${PHYSMEM_VM_TIMEOUT:+PHYSMEM_VM_TIMEOUT="$PHYSMEM_VM_TIMEOUT"} \
		"$SRC/tests/vm/run-vm-tests.sh" "$WORK/vm-bench"
	rc=$?
	lap "mapping benchmark on $KVER: exit $rc"
	exit $rc
	;;
pool)
	# The pool cases (and the daemon's, hence the build) in their own boot.
	append="reserve_mem=384M:2M:physmem"
	kargs="pool_reserve_mem=physmem"
	if [ "$LINE" = newest ]; then
		append+=" cma=320M"
		kargs+=" pool_cma=default"
	fi
	lap "building the project in the root for $KVER"
	in_root cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Debug -DPHYSMEM_WERROR=ON \
		-DPHYSMEM_TEST_SET=kernel -DPHYSMEM_BUILD_KMOD=OFF -DPHYSMEM_KVER="$KVER" \
		>"$WORK/cmake.log" 2>&1 &&
	in_root cmake --build "$WORK/build" -j"$(nproc)" --target physmemd physmemctl physmem-vm-client \
		>>"$WORK/cmake.log" 2>&1 || { tail -n 40 "$WORK/cmake.log"; die "build in the root failed"; }
	lap "running the pool cases on $KVER ($append)"
	in_root KVER="$KVER" PHYSMEM_PROJECT_BUILD_DIR="$WORK/build" \
		PHYSMEM_VM_CASE_DIRS="$SRC/tests/vm/cases-pool" PHYSMEM_VM_ONLY='8*' \
		PHYSMEM_VM_MEM="${PHYSMEM_VM_MEM:-1536}" PHYSMEM_VM_APPEND="$append" \
		PHYSMEM_VM_KMOD_ARGS="$kargs" \
		${PHYSMEM_VM_TIMEOUT:+PHYSMEM_VM_TIMEOUT="$PHYSMEM_VM_TIMEOUT"} \
		${PHYSMEM_VM_KDEBUG+PHYSMEM_VM_KDEBUG="$PHYSMEM_VM_KDEBUG"} \
		"$SRC/tests/vm/run-vm-tests.sh" "$WORK/vm-pool"
	rc=$?
	lap "pool cases on $KVER: exit $rc"
	exit $rc
	;;
bounce)
	# Only the test importer's case (no daemon), in its own memory layout.
	lap "running the bounce-buffer importer case on $KVER"
	in_root KVER="$KVER" PHYSMEM_VM_CASE_DIRS="$SRC/tests/vm/cases-bounce" \
		PHYSMEM_VM_ONLY='7[89]*' PHYSMEM_VM_BOUNCE=1 \
		${PHYSMEM_VM_TIMEOUT:+PHYSMEM_VM_TIMEOUT="$PHYSMEM_VM_TIMEOUT"} \
		${PHYSMEM_VM_KDEBUG+PHYSMEM_VM_KDEBUG="$PHYSMEM_VM_KDEBUG"} \
		"$SRC/tests/vm/run-vm-tests.sh" "$WORK/vm-bounce"
	rc=$?
	lap "bounce-buffer importer case on $KVER: exit $rc"
	exit $rc
	;;
esac
