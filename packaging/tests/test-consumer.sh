#!/bin/sh
# Usage: test-consumer.sh BUILD_DIR
# Installs BUILD_DIR into a temporary prefix, builds packaging/tests/consumer
# against it once with pkg-config and once with find_package(physmem), and
# runs both on a socket that does not exist: each must say so and exit 3.
# Exit 77 (skipped) for a build configured with prefix /usr, whose system
# directories (units, udev) are absolute and would be written outside TMP.
set -eu

build=${1:?usage: test-consumer.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd)

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
if [ "$prefix" = /usr ]; then
	echo "test-consumer: $build is configured for /usr (a system install); skipped" >&2
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/physmem-consumer.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 || {
	cat "$tmp/install.log" >&2
	echo "test-consumer: cmake --install failed" >&2
	exit 1
}

# The installed pkg-config file may be under lib/ or lib/<multiarch>/.
pc=$(find "$tmp/prefix" -name physmem.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || { echo "test-consumer: physmem.pc was not installed" >&2; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pc")"
echo "pkg-config --cflags --libs physmem: $(pkg-config --cflags --libs physmem)"

check() {	# check NAME BINARY
	rc=0
	"$2" "$tmp/no-such-dir/physmemd.sock" >"$tmp/$1.out" 2>"$tmp/$1.err" || rc=$?
	cat "$tmp/$1.err"
	if [ "$rc" -ne 3 ] || ! grep -q "No such file or directory" "$tmp/$1.err"; then
		echo "test-consumer: $1: expected exit 3 and 'No such file or directory', got $rc" >&2
		exit 1
	fi
	# Linked (build-tree RPATH) against the installed library, not the build tree's.
	ldd "$2" | grep -q "libphysmem.so.0 => $tmp/prefix/" || {
		echo "test-consumer: $1 does not use the installed libphysmem.so.0" >&2
		ldd "$2" >&2
		exit 1
	}
}

for how in pkg-config find_package; do
	if [ $how = pkg-config ]; then
		opts="-DCONSUMER_USE_PKG_CONFIG=ON"
	else
		opts="-DCMAKE_PREFIX_PATH=$tmp/prefix"
	fi
	if ! cmake -S "$here/consumer" -B "$tmp/$how" $opts >"$tmp/$how.log" 2>&1 ||
	   ! cmake --build "$tmp/$how" >>"$tmp/$how.log" 2>&1; then
		cat "$tmp/$how.log" >&2
		echo "test-consumer: building the consumer with $how failed" >&2
		exit 1
	fi
	check $how "$tmp/$how/physmem-consumer"
	echo "test-consumer: $how: ok"
done
