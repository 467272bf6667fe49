#!/bin/sh
# Usage: packaging/build-debs.sh OUTDIR
# Builds the Debian binary packages (physmemd, libphysmem0, libphysmem-dev,
# physmemctl, python3-physmem, physmem-dkms) from this source tree: copies
# the tree (tracked and untracked files, not ignored ones) into a temporary
# directory, puts packaging/debian/ at ./debian there, writes
# debian/changelog with the project version from CMakeLists.txt, and runs
# dpkg-buildpackage -b.
# The .deb, .buildinfo and .changes files end up in OUTDIR.
set -eu

out=${1:?usage: build-debs.sh OUTDIR}
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

version=$(sed -n 's/^project(physmem VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[ -n "$version" ] || { echo "build-debs: no project(physmem VERSION ...) in CMakeLists.txt" >&2; exit 1; }
grep -q '^add_subdirectory(packaging)' "$src/CMakeLists.txt" || {
	echo "build-debs: CMakeLists.txt lacks add_subdirectory(packaging); units, man pages and completion would be missing" >&2
	exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/physmem-debs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tree="$tmp/physmem-$version"
mkdir "$tree"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git -C "$src" ls-files -z --cached --others --exclude-standard |
		(cd "$src" && xargs -0 tar -cf - --no-recursion --) | tar -xf - -C "$tree"
else
	tar -C "$src" --exclude=.git -cf - . | tar -xf - -C "$tree"
fi
rm -rf "$tree/debian"
cp -a "$tree/packaging/debian" "$tree/debian"

# The package version is the project version; the revision is 1 unless
# DEB_REVISION says otherwise.
cat >"$tree/debian/changelog" <<EOT
physmem ($version-${DEB_REVISION:-1}) unstable; urgency=medium

  * Built from the physmem source tree by packaging/build-debs.sh.

 -- physmem developers <physmem-devel@lists.example.org>  $(date -R)
EOT

(cd "$tree" && dpkg-buildpackage -b -us -uc) >"$tmp/build.log" 2>&1 || {
	tail -n 60 "$tmp/build.log" >&2
	echo "build-debs: dpkg-buildpackage failed (last lines above)" >&2
	exit 1
}
cp "$tmp/build.log" "$out/build.log"
for f in "$tmp"/*.deb "$tmp"/*.buildinfo "$tmp"/*.changes; do
	[ -e "$f" ] && cp "$f" "$out/"
done
ls -1 "$out"/*.deb
