#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# abi-check: compare the built libphysmem.so.0 with the committed ABI baseline
# (client/abi/libphysmem.so.0.abi) using libabigail (Debian: abigail-tools).
#
# usage: abi-check.sh SOURCE_DIR LIBRARY            check (the ctest test abi-check)
#        abi-check.sh SOURCE_DIR LIBRARY --update   rewrite the baseline, deliberately
#
# Only what physmem.h declares counts (--header-file): the structs behind its
# opaque types may change freely. Fails (exit 1, report printed) when a
# function or variable was removed (abidiff bit 8, ABIDIFF_ABI_INCOMPATIBLE_CHANGE)
# or an existing one changed type (bit 4, ABIDIFF_ABI_CHANGE, with added
# symbols ignored); added functions only print a note asking for --update.
# Exits 77 when abigail-tools is missing or the library has no debug info.
set -u

src=$1
lib=$2
baseline=$src/client/abi/libphysmem.so.0.abi
header=$(cd "$src/client" && pwd)/physmem.h

for tool in abidw abidiff readelf; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: $tool not found (install abigail-tools and binutils)"
		exit 77
	fi
done
if ! readelf -S "$lib" | grep -q '\.debug_info'; then
	echo "SKIP: $lib has no debug info (build with -g, e.g. CMAKE_BUILD_TYPE=Debug)"
	exit 77
fi

tmp=$(mktemp -d /tmp/physmem-abi.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

# The ABI of the library as built. Paths of the source tree are stripped, so
# that the baseline does not depend on where it was built.
if ! abidw --no-corpus-path --no-comp-dir-path --no-show-locs --header-file "$header" --drop-private-types \
	--out-file "$tmp/new.abi" "$lib"; then
	echo "abi-check: abidw failed on $lib"
	exit 1
fi
srcabs=$(cd "$src" && pwd)
sed "s|path='$srcabs/|path='|" "$tmp/new.abi" >"$tmp/new-clean.abi"

if [ "${3:-}" = --update ]; then
	cp "$tmp/new-clean.abi" "$baseline"
	echo "abi-check: wrote $baseline"
	exit 0
fi
if [ ! -f "$baseline" ]; then
	echo "abi-check: no baseline $baseline (write one with --update)"
	exit 1
fi

abidiff --no-added-syms "$baseline" "$tmp/new-clean.abi" >"$tmp/report" 2>&1
rc=$?
cat "$tmp/report"
if [ $((rc & 3)) -ne 0 ]; then
	echo "abi-check: abidiff could not compare (exit $rc)"
	exit 1
fi
if [ $((rc & 8)) -ne 0 ]; then
	echo "abi-check: INCOMPATIBLE: libphysmem.so.0 lost or broke what the baseline has (abidiff exit $rc)"
	exit 1
fi
if [ $((rc & 4)) -ne 0 ]; then
	echo "abi-check: CHANGED: a function or type of libphysmem.so.0 changed (abidiff exit $rc)."
	echo "abi-check: a compatible change (e.g. a new enumerator) needs a deliberate baseline update:"
	echo "abi-check:   cmake --build BUILD --target abi-baseline; then commit client/abi/libphysmem.so.0.abi"
	exit 1
fi

abidiff "$baseline" "$tmp/new-clean.abi" >"$tmp/added" 2>&1
if [ $(($? & 4)) -ne 0 ]; then
	cat "$tmp/added"
	echo "abi-check: note: functions were added; update the baseline so that they are guarded too"
	echo "abi-check:   cmake --build BUILD --target abi-baseline; then commit client/abi/libphysmem.so.0.abi"
fi
echo "abi-check: libphysmem.so.0 is compatible with $baseline"
exit 0
