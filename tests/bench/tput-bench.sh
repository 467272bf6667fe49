#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# physmem-tput against a daemon of its own (memfd backend, no root needed),
# its connection and buffer limits raised for the benchmark's clients.
#   [PHYSMEMD=path] tests/bench/tput-bench.sh BUILD_DIR [physmem-tput options]
# PHYSMEMD runs another daemon binary (a before/after comparison in one session).
# Fails unless the benchmark printed a PHYSMEM-BENCH tput line.
set -eu -o pipefail
build=${1:?usage: $0 BUILD_DIR [physmem-tput options]}
shift
dir=$(mktemp -d)
"${PHYSMEMD:-$build/daemon/physmemd}" --socket "$dir/s" --backend memfd --set log-level=warning \
	--set max-connections=4096 --set max-connections-per-uid=4096 --set max-buffers-per-uid=65536 \
	--set max-buffers=65536 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do [ -S "$dir/s" ] && break; sleep 0.05; done
"$build/tests/integration/physmem-tput" --socket "$dir/s" "$@" | tee "$dir/out"
grep -q '^PHYSMEM-BENCH tput clients=[0-9]* physmem-pairs/s=[0-9]' "$dir/out" ||
	{ echo "tput-bench: physmem-tput printed no PHYSMEM-BENCH tput line" >&2; exit 1; }
