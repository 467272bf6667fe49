#!/bin/bash
# Static checks of physmem.ko: a W=1 build with sparse (C=1) must print no
# warning, and checkpatch.pl (from Debian's linux-source-6.1) must report no
# error or warning. The version checks that keep the module building on
# older and newer kernels are the only checkpatch findings allowed.
# Usage: check-style.sh KVER SCRATCH_DIR
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
kver=$1
work=$2
rm -rf "$work" && mkdir -p "$work/src"
cp "$src"/Makefile "$src"/physmem-*.[ch] "$work/src/"
cp -r "$src/uapi" "$work/src/"

command -v sparse >/dev/null || { echo "sparse is not installed"; exit 1; }
make -s -C "/lib/modules/$kver/build" M="$work/src" W=1 C=1 modules >"$work/build.log" 2>&1 || {
	cat "$work/build.log"; exit 1; }
if grep -E "(warning|error):" "$work/build.log"; then
	echo "FAIL: W=1 C=1 build is not clean"
	exit 1
fi
echo "ok: make W=1 C=1 (sparse) is clean"

tarball=$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -1)
[ -n "$tarball" ] || { echo "linux-source-* is not installed (checkpatch.pl)"; exit 1; }
top=$(basename "$tarball" .tar.xz)
tar -xJf "$tarball" -C "$work" "$top/scripts/checkpatch.pl" "$top/scripts/spelling.txt" \
	"$top/scripts/const_structs.checkpatch"
perl "$work/$top/scripts/checkpatch.pl" --no-tree --terse --show-types \
	--ignore LINUX_VERSION_CODE,CONSTANT_COMPARISON,FILE_PATH_CHANGES \
	-f "$src"/physmem-*.[ch] "$src/uapi/physmem.h" >"$work/checkpatch.log" 2>&1 || true
if grep -E ": (ERROR|WARNING):" "$work/checkpatch.log"; then
	echo "FAIL: checkpatch.pl"
	exit 1
fi
echo "ok: checkpatch.pl reports no error or warning"
