#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# physmem-conns-bench with a fresh daemon of its own per run (memfd backend,
# no root needed; its connection limits are set above the connections made).
#   tests/bench/conns-bench.sh BUILD_DIR [physmem-conns-bench options]
# The fd limit, which the daemon inherits, is raised to the hard limit (as
# root to at least 32768 first): 10,000 connections need 10,000 fds a side.
set -eu
build=${1:?usage: $0 BUILD_DIR [physmem-conns-bench options]}
shift
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt 32768 ]; then
	ulimit -Hn 32768 2>/dev/null || true
fi
ulimit -n "$(ulimit -Hn)"
exec "$build/tests/integration/physmem-conns-bench" --daemon "$build/daemon/physmemd" "$@"
