#!/usr/bin/env bash
# Run one libFuzzer target for a bounded time on a copy of its seed corpus
# (the source tree is never written). Fails on any crash, leak, timeout or
# sanitizer report; the input that caused it is left in the work directory.
# Usage: run-fuzzer.sh FUZZER SEED-CORPUS WORK-DIR SECONDS [WHY-NOT-BUILT]
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 seconds=$4 why=${5:-}

if [ -n "$why" ] || [ ! -x "$fuzzer" ]; then
	echo "SKIP: ${why:-$fuzzer was not built}"
	exit 77
fi
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp -r "$seeds/." "$work/corpus/"
dict=()
[ -f "$seeds.dict" ] && dict=(-dict="$seeds.dict")

# -timeout: one input running this long is a hang. Leaks fail too (ASan's
# LeakSanitizer runs after each input that allocated).
status=0
"$fuzzer" "${dict[@]}" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
	-max_len=8192 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
	"$work/corpus" >"$work/log" 2>&1 || status=$?
tail -n 25 "$work/log"
if [ "$status" -ne 0 ] || [ -n "$(ls -A "$work/artifacts")" ]; then
	echo "FAIL: $(basename "$fuzzer") exited $status; reproduce with: $fuzzer $work/artifacts/*"
	ls -l "$work/artifacts"
	exit 1
fi
echo "ok: $(basename "$fuzzer") ran ${seconds}s without a finding"
