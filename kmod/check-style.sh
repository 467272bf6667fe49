#!/bin/bash
# Static checks of physmem.ko against one kernel's headers, each reported as
# "clean", "FAIL" or "SKIPPED (why)", never "clean" for a check that did not
# run:
#   w1          make W=1 prints no warning;
#   sparse      make W=1 C=2 with sparse prints no warning or error.  The
#               checker is a wrapper that records each call, so a kbuild that
#               silently drops C= (7.x kbuild without scripts/checker-valid.sh)
#               is caught; KBUILD_CHECKSRC is forced on the command line.  A
#               probe module with nothing but kernel headers is checked first:
#               when sparse cannot parse the kernel's own headers (sparse 0.6.4
#               and __typeof_unqual__ in 7.x) the check is SKIPPED with the
#               first error, as physmem's code was not checked;
#   checkpatch  checkpatch.pl from the linux-source of the same kernel line
#               (/usr/src/linux-source-X.Y.tar.xz) reports no error or warning.
#               The version checks that keep the module building on older and
#               newer kernels are the only findings allowed.
# Usage: check-style.sh KVER SCRATCH_DIR
# Environment: PHYSMEM_SPARSE, the sparse to use (default: sparse on PATH).
# Exit 0: every check ran and is clean.  1: a check failed.  77: none failed
# but at least one was skipped.
set -uo pipefail
src=$(cd "$(dirname "$0")" && pwd)
kver=$1
work=$2
kdir=/lib/modules/$kver/build
rm -rf "$work" && mkdir -p "$work/src" "$work/probe"
cp "$src"/Makefile "$src"/physmem-*.[ch] "$work/src/"
cp -r "$src/uapi" "$work/src/"

declare -A res
fail=0
skipped=0
result() {	# result CHECK clean|FAIL|SKIPPED [why]
	res[$1]="$2${3:+ ($3)}"
	case $2 in FAIL) fail=1 ;; SKIPPED) skipped=1 ;; esac
	echo "kmod-style $kver: $1: ${res[$1]}"
}

# ---- W=1 ----
if ! make -s -C "$kdir" M="$work/src" W=1 modules >"$work/w1.log" 2>&1; then
	cat "$work/w1.log"
	result w1 FAIL "build failed"
elif grep -E "(warning|error):" "$work/w1.log"; then
	result w1 FAIL "warnings"
else
	result w1 clean
fi

# ---- sparse ----
sparse_check() {	# sparse_check DIR LOG: W=1 C=2 through the recording wrapper
	: >"$work/sparse-calls"
	make -s -C "$kdir" M="$1" W=1 C=2 KBUILD_CHECKSRC=2 CHECK="$work/sparse-wrap" modules \
		>"$2" 2>&1
}
sparse=${PHYSMEM_SPARSE:-sparse}
if ! command -v "$sparse" >/dev/null; then
	result sparse SKIPPED "$sparse is not installed"
else
	printf '#!/bin/sh\necho "$@" >>"%s"\nexec "%s" "$@"\n' "$work/sparse-calls" "$sparse" >"$work/sparse-wrap"
	chmod 755 "$work/sparse-wrap"
	cat >"$work/probe/probe.c" <<-'EOF'
		// SPDX-License-Identifier: GPL-2.0
		#include <linux/module.h>
		#include <linux/dma-buf.h>
		#include <linux/dma-mapping.h>
		#include <linux/miscdevice.h>
		#include <linux/mm.h>
		#include <linux/pagemap.h>
		MODULE_LICENSE("GPL");
	EOF
	echo 'obj-m := probe.o' >"$work/probe/Makefile"
	sparse_check "$work/probe" "$work/sparse-probe.log"
	if [ ! -s "$work/sparse-calls" ]; then
		grep -i "checker\|C=" "$work/sparse-probe.log" | head -3
		result sparse SKIPPED "kbuild of $kver did not run sparse"
	elif grep -q "error:" "$work/sparse-probe.log"; then
		first=$(grep -m1 "error:" "$work/sparse-probe.log" | sed "s|^$kdir/||; s|^/usr/src/||")
		result sparse SKIPPED "$("$sparse" --version 2>/dev/null) cannot parse the headers of $kver: $first"
	else
		sparse_check "$work/src" "$work/sparse.log"
		rc=$?
		missing=
		# The file is each call's last argument (a relative path on 7.x).
		checked=$(awk '{ n = split($NF, p, "/"); print p[n] }' "$work/sparse-calls")
		for f in "$work"/src/physmem-*.c; do
			echo "$checked" | grep -qxF "$(basename "$f")" || missing+=" $(basename "$f")"
		done
		if [ $rc -ne 0 ]; then
			cat "$work/sparse.log"
			result sparse FAIL "build failed"
		elif grep -E "(warning|error):" "$work/sparse.log"; then
			result sparse FAIL "sparse or W=1 warnings"
		elif [ -n "$missing" ]; then
			result sparse FAIL "sparse did not check$missing"
		else
			result sparse clean "$("$sparse" --version 2>/dev/null), $(grep -c . "$work/sparse-calls") files"
		fi
	fi
fi

# ---- checkpatch.pl from the same kernel line's source ----
line=$(echo "$kver" | sed -n 's/^\([0-9]*\.[0-9]*\).*/\1/p')
tarball=/usr/src/linux-source-$line.tar.xz
if [ ! -r "$tarball" ]; then
	result checkpatch SKIPPED "$tarball is not installed (apt-get install linux-source-$line)"
else
	top=linux-source-$line
	if ! tar -xJf "$tarball" -C "$work" "$top/scripts/checkpatch.pl" "$top/scripts/spelling.txt" \
		"$top/scripts/const_structs.checkpatch" 2>"$work/tar.log"; then
		cat "$work/tar.log"
		result checkpatch FAIL "cannot extract checkpatch.pl from $tarball"
	else
		files=("$src"/physmem-*.[ch] "$src/uapi/physmem.h")
		perl "$work/$top/scripts/checkpatch.pl" --no-tree --show-types \
			--ignore LINUX_VERSION_CODE,CONSTANT_COMPARISON,FILE_PATH_CHANGES \
			-f "${files[@]}" >"$work/checkpatch.log" 2>&1
		nclean=$(grep -c "^total: 0 errors, 0 warnings," "$work/checkpatch.log")
		if [ "$nclean" -ne ${#files[@]} ]; then
			cat "$work/checkpatch.log"
			result checkpatch FAIL "$top: $nclean of ${#files[@]} files clean"
		else
			result checkpatch clean "$top, ${#files[@]} files"
		fi
	fi
fi

echo "kmod-style $kver: w1 ${res[w1]}; sparse ${res[sparse]}; checkpatch ${res[checkpatch]}"
[ $fail -ne 0 ] && exit 1
[ $skipped -ne 0 ] && exit 77
exit 0
