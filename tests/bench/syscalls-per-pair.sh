#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The daemon's and the client's syscalls per 4 KiB Allocate + Free pair
# (memfd backend): strace -f -c on physmemd and on physmem-bench for two runs
# of physmem-bench --pairs (N1 and N2 pairs); the difference divided by
# N2 - N1 cancels start-up and shutdown.
#   tests/bench/syscalls-per-pair.sh BUILD_DIR [N1 N2]
set -eu
build=${1:?usage: $0 BUILD_DIR [N1 N2]}
n1=${2:-200}
n2=${3:-2200}
command -v strace >/dev/null || { echo "SKIP: strace is not installed"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# Total calls and per-syscall counts of one daemon run with n pairs.
count() {
	local n=$1 out=$dir/strace.$1 pid
	strace -f -c -o "$out" "$build/daemon/physmemd" --socket "$dir/s" --backend memfd \
		--set log-level=warning >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 200); do [ -S "$dir/s" ] && break; sleep 0.05; done
	strace -f -c -o "$out.client" "$build/tests/integration/physmem-bench" --socket "$dir/s" --pairs "$n"
	# strace holds on to SIGTERM: the daemon (its child) gets it.
	kill -TERM "$(ps -o pid= --ppid "$pid")"
	wait "$pid" || true
	rm -f "$dir/s"
}
count "$n1"
count "$n2"
python3 - "$dir/strace.$n1" "$dir/strace.$n2" "$n1" "$n2" <<'PY'
import sys
def parse(path):
    calls = {}
    for line in open(path):
        f = line.split()
        if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
            calls[f[-1]] = int(f[3])
    return calls
pairs = int(sys.argv[4]) - int(sys.argv[3])
for suffix, who in (("", "daemon, all threads"), (".client", "client, libphysmem")):
    a, b = parse(sys.argv[1] + suffix), parse(sys.argv[2] + suffix)
    per = {k: (b.get(k, 0) - a.get(k, 0)) / pairs for k in set(a) | set(b)}
    for k, v in sorted(per.items(), key=lambda kv: -kv[1]):
        if v >= 0.05:
            print(f"  {k:20s} {v:6.2f}")
    print(f"PHYSMEM-SYSCALLS per Allocate+Free pair: {sum(per.values()):.2f} ({who})")
PY
