#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# physmem-huge-bench in three daemons of its own, in one session (root: it
# sets the hugetlb pool and shmem THP, and puts both back on exit, always):
#   1. hugepages = auto (the default) with enough free 2 MiB pages reserved,
#   2. hugepages = 0 with the same pool (the daemon before hugepages = auto),
#   3. hugepages = auto with no huge pages at all: nr_hugepages 0, shmem THP never.
# With BEFORE_BUILD=DIR (an older tree's build holding physmemd and a
# physmem-huge-bench linked with that tree's libphysmem), 2 runs that build's
# daemon and client, and 4 does too after 3.
#   [BEFORE_BUILD=DIR] tests/bench/huge-bench.sh BUILD_DIR [physmem-huge-bench options, e.g. --size 64 --runs 5]
set -eu
build=${1:?usage: $0 BUILD_DIR [physmem-huge-bench options]}
shift
[ "$(id -u)" = 0 ] || { echo "huge-bench.sh: needs root (nr_hugepages, shmem_enabled)" >&2; exit 77; }
nr=/proc/sys/vm/nr_hugepages
thp=/sys/kernel/mm/transparent_hugepage/shmem_enabled
old_nr=$(cat $nr)
old_thp=$(sed -n 's/.*\[\([a-z_]*\)\].*/\1/p' $thp)
dir=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
	echo "$old_nr" > $nr
	echo "$old_thp" > $thp
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The largest --size (MiB), default 64: that many MiB of 2 MiB pages for one buffer at a time.
max=64
prev=
for a in "$@"; do
	[ "$prev" = --size ] && [ "$a" -gt "$max" ] 2>/dev/null && max=$a
	prev=$a
done
need=$((max / 2))

# Run build $1's bench against its daemon started with settings $2...
run() {
	local b=$1
	shift
	"$b/daemon/physmemd" --socket "$dir/s" --backend memfd --set log-level=warning \
		--set max-buffer-size=2G --set max-bytes-per-uid=4G "$@" &
	pid=$!
	for _ in $(seq 200); do [ -S "$dir/s" ] && break; sleep 0.05; done
	"$b/tests/integration/physmem-huge-bench" --socket "$dir/s" "${bench_args[@]}"
	kill -TERM "$pid"
	wait "$pid" || true
	pid=
	rm -f "$dir/s"
}
bench_args=("$@")

echo $((old_nr + need)) > $nr
echo "== 1. hugepages = auto, $(cat $nr) 2 MiB pages in the pool; loadavg $(cat /proc/loadavg)"
run "$build" --set hugepages=auto
if [ -n "${BEFORE_BUILD:-}" ]; then
	echo "== 2. before: $BEFORE_BUILD (its default, hugepages = 0), same pool; loadavg $(cat /proc/loadavg)"
	run "$BEFORE_BUILD"
else
	echo "== 2. hugepages = 0 (the old default), same pool; loadavg $(cat /proc/loadavg)"
	run "$build" --set hugepages=0
fi
echo 0 > $nr
echo never > $thp
echo "== 3. hugepages = auto, no huge pages (nr_hugepages 0, shmem_enabled never); loadavg $(cat /proc/loadavg)"
run "$build" --set hugepages=auto
if [ -n "${BEFORE_BUILD:-}" ]; then
	echo "== 4. before: $BEFORE_BUILD, no huge pages; loadavg $(cat /proc/loadavg)"
	run "$BEFORE_BUILD"
fi
echo "== loadavg $(cat /proc/loadavg)"
