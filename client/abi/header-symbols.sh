#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# header-symbols.sh SRC: every function client/physmem.h declares is in the
# version script (client/libphysmem.sym) and in the Debian symbols file
# (packaging/debian/libphysmem0.symbols), and neither lists one the header
# does not declare.  (A function missing from the version script is not
# exported; the .debs then fail to build, as they did once.)
set -eu
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# declarations: "type physmem_name(" at the start of a line or after a '*'
sed -n 's/^[a-z].*[ *]\(physmem_[a-z0-9_]*\)(.*/\1/p' "$src/client/physmem.h" | sort -u >"$tmp/header"
sed -n 's/^[[:space:]]*\(physmem_[a-z0-9_]*\);.*/\1/p' "$src/client/libphysmem.sym" | sort -u >"$tmp/sym"
sed -n 's/^ \(physmem_[a-z0-9_]*\)@.*/\1/p' "$src/packaging/debian/libphysmem0.symbols" | sort -u >"$tmp/deb"
[ -s "$tmp/header" ] || { echo "header-symbols: no declarations found in physmem.h"; exit 1; }
rc=0
if ! diff -u "$tmp/header" "$tmp/sym"; then
	echo "header-symbols: physmem.h and libphysmem.sym differ (- header only, + version script only)"
	rc=1
fi
if ! diff -u "$tmp/header" "$tmp/deb"; then
	echo "header-symbols: physmem.h and libphysmem0.symbols differ (- header only, + symbols file only)"
	rc=1
fi
[ "$rc" = 0 ] && echo "header-symbols: $(wc -l <"$tmp/header") functions, all exported and in the symbols file"
exit $rc
