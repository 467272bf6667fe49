#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# physmem-bench against a daemon of its own (memfd backend, no root needed).
#   [PIN=CPU] tests/bench/call-bench.sh BUILD_DIR [physmem-bench options]
# PIN=CPU runs the daemon and the benchmark (and its floor peer) on that CPU.
# PHYSMEMD=PATH runs that daemon binary instead of the build's (before/after comparisons).
# PHYSMEMD_SET="key=value ..." adds daemon settings (e.g. max-buffers-per-uid=20000 for --live).
set -eu
build=${1:?usage: $0 BUILD_DIR [physmem-bench options]}
shift
dir=$(mktemp -d)
pin=()
[ -n "${PIN:-}" ] && pin=(taskset -c "$PIN")
set_args=()
for s in ${PHYSMEMD_SET:-}; do set_args+=(--set "$s"); done
"${pin[@]}" "${PHYSMEMD:-$build/daemon/physmemd}" --socket "$dir/s" --backend memfd --set log-level=warning \
	"${set_args[@]}" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do [ -S "$dir/s" ] && break; sleep 0.05; done
"${pin[@]}" "$build/tests/integration/physmem-bench" --socket "$dir/s" "$@"
