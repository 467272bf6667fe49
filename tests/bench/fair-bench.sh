#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# physmem-fair-bench against a daemon of its own (memfd backend, as root).
#   tests/bench/fair-bench.sh BUILD_DIR [physmem-fair-bench options]
#   tests/bench/fair-bench.sh BUILD_DIR --smoke   # small and short; checks the lines
# PHYSMEMD=PATH runs that daemon binary instead of the build's (before/after comparisons);
# PHYSMEMD_SET="key=value ..." adds settings (e.g. loop-budget-us=0 for the flood without the budget).
# The daemon's per-uid limits are raised so that a 1 GiB buffer and 64 load
# uids fit (2 GiB per uid, 4096 buffers in all), and its fd store is on
# (fdstore=yes; without systemd nothing receives the stores, but each is made
# and written as under systemd); everything else is default.
set -eu
build=${1:?usage: $0 BUILD_DIR [--smoke | physmem-fair-bench options]}
shift
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: needs root (the victim and the load run as other uids)"
	exit 77
fi
smoke=
if [ "${1:-}" = --smoke ]; then
	smoke=1
	shift
	set -- --seconds 0.5 --runs 1 --hog-size 64M --busy 8 --busy-size 1M --flood 8 --flood-size 8K \
		--named 4 --named-keep 8 "$@"
fi
dir=$(mktemp -d)
chmod 755 "$dir"
out=$dir/out
set_args=()
for s in ${PHYSMEMD_SET:-}; do set_args+=(--set "$s"); done
"${PHYSMEMD:-$build/daemon/physmemd}" --socket "$dir/s" --backend memfd --set log-level=warning \
	--set max-bytes-per-uid=2G --set max-buffer-size=1G --set max-buffers=4096 --set fdstore=yes \
	"${set_args[@]}" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do [ -S "$dir/s" ] && break; sleep 0.05; done
echo "# load average before: $(cat /proc/loadavg)"
"$build/tests/integration/physmem-fair-bench" --socket "$dir/s" "$@" | tee "$out"
echo "# load average after: $(cat /proc/loadavg)"
[ -z "$smoke" ] && exit 0
# The smoke test: every scenario printed its line with its figures (never judged).
for sc in alone hog busy flood named; do
	grep -Eq "^PHYSMEM-BENCH fair scenario=$sc .*status-p99-ms=[0-9.]+/.* alloc4k-p99-ms=[0-9.]+/.*floor-status-p99-ms=" "$out" ||
		{ echo "not ok - no PHYSMEM-BENCH line for scenario $sc"; exit 1; }
done
grep -Eq "^PHYSMEM-BENCH fair scenario=busy .*status-p99-vs-alone=.*load-cycles=[1-9]" "$out" ||
	{ echo "not ok - the busy line has no ratio to alone or no load cycles"; exit 1; }
echo "ok - physmem-fair-bench printed its five lines"
