#!/bin/bash
# Contiguous pools through the daemon: physmemd (kmod backend, pool-users =
# uid:65534) serves an unprivileged physmemctl. From every pool the module
# has, a 64 MiB buffer is one segment (one contiguous run). For the first:
# status shows the pool's free bytes 64 MiB lower while it lives and back
# after Free; a buffer larger than the pool is PoolUnavailable "exhausted"
# (a pool the module cannot size, CMA: exhausted or busy) in one line with
# exit status 1, an unknown pool "none"; a uid pool-users does not name is
# refused (exit 4) and nothing of the pool is taken.
#
# Needs the project's build (PHYSMEM_PROJECT_BUILD_DIR, which ctest passes).
# PHYSMEM-EXPECT: daemon-pool-alloc
# PHYSMEM-EXPECT: daemon-pool-status
# PHYSMEM-EXPECT: daemon-pool-exhausted
# PHYSMEM-EXPECT: daemon-pool-policy
set -u
CASES="daemon-pool-alloc daemon-pool-status daemon-pool-exhausted daemon-pool-policy"
T=$PHYSMEM_TMP/daemon-pool
SOCK=$PHYSMEM_TMP/physmemd-pool.sock
DLOG=$T/physmemd.log
PB=${PHYSMEM_PROJECT_BUILD_DIR:-}
MIB=1048576
. "$PHYSMEM_SRC/tests/vm/daemon-lib.sh"
OTHER=(setpriv --reuid=65533 --regid=65533 --clear-groups)

need_built daemon/physmemd client/physmemctl
mkdir -p "$T"
copy_clients client/physmemctl

start_daemon /dev/null --set pool-users=uid:65534

# The first pool, as uid 65534 sees it.
st=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" --socket "$SOCK" --json status 2>&1)
pool=$(echo "$st" | jq -r '.pools[0].name // empty' 2>/dev/null)
kind=$(echo "$st" | jq -r '.pools[0].kind // empty' 2>/dev/null)
if [ -z "$pool" ]; then
	all FAIL "status lists no pool: $(echo "$st" | tr '\n' ' ' | cut -c1-300)"
	exit 0
fi
# free of pool 0 now ("null" when the module cannot tell)
pool_free() { "${U[@]}" "$PHYSMEM_BIN/physmemctl" --socket "$SOCK" --json status | jq -r '.pools[0].free'; }
free0=$(pool_free)
size0=$(echo "$st" | jq -r '.pools[0].size')

# ---- daemon-pool-alloc, daemon-pool-status ----
"${U[@]}" "$PHYSMEM_BIN/physmemctl" --socket "$SOCK" --json alloc --pool "$pool" 64M --hold \
	>"$T/hold.out" 2>"$T/hold.err" &
hpid=$!
if ! wait_for 120 test -s "$T/hold.out"; then
	res daemon-pool-alloc FAIL "alloc --pool $pool 64M --hold: no ready line: $(head -c 300 "$T/hold.err")"
	res daemon-pool-status FAIL "no buffer"
else
	b=$(head -1 "$T/hold.out")
	one_run() {
		echo "$1" | jq -e --arg p "$2" --argjson n $((64 * MIB)) \
			'.pool == $p and .contiguous == true and .size == $n and (.segments | length) == 1 and
			 .segments[0].length == $n and .ownerUid == 65534' >/dev/null
	}
	if one_run "$b" "$pool"; then
		msg="uid 65534: 64 MiB from pool $pool ($kind): one segment at $(echo "$b" | jq -r '.segments[0].address')"
		# The other pools (a CMA area on the newest line): one run each too.
		for p in $(echo "$st" | jq -r '.pools[1:][].name'); do
			o=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" --socket "$SOCK" --json alloc --pool "$p" 64M 2>&1)
			if ! one_run "$o" "$p"; then
				msg="FAIL pool $p: $(echo "$o" | tr '\n' ' ' | cut -c1-300)"
				break
			fi
			msg+="; pool $p: one segment at $(echo "$o" | jq -r '.segments[0].address')"
		done
		case $msg in
		FAIL*) res daemon-pool-alloc FAIL "${msg#FAIL }" ;;
		*) res daemon-pool-alloc PASS "$msg" ;;
		esac
	else
		res daemon-pool-alloc FAIL "buffer: $(echo "$b" | cut -c1-400)"
	fi
	during=$(pool_free)
	human=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" --socket "$SOCK" status | grep "^pool $pool ")
	kill -TERM "$hpid"
	wait "$hpid"
	hrc=$?
	# shellcheck disable=SC2317  # run by wait_for
	back_is() { [ "$(pool_free)" = "$1" ]; }
	if [ "$free0" = null ]; then
		res daemon-pool-status PASS "pool $pool ($kind) has no free figure (shared with the kernel): $human"
	elif [ $hrc -ne 0 ]; then
		res daemon-pool-status FAIL "physmemctl --hold exit $hrc after SIGTERM: $(head -c 300 "$T/hold.err")"
	elif [ "$during" != $((free0 - 64 * MIB)) ]; then
		res daemon-pool-status FAIL "free $free0 before, $during with the 64 MiB buffer"
	elif [ -z "$human" ]; then
		res daemon-pool-status FAIL "physmemctl status prints no line for pool $pool"
	elif ! wait_for 60 back_is "$free0"; then
		res daemon-pool-status FAIL "free $free0 before, $during with the buffer, $(pool_free) 60 s after Free"
	else
		res daemon-pool-status PASS "free $free0 -> $during with the buffer -> $free0 after Free; '$human'"
	fi
fi

# ---- daemon-pool-exhausted ----
t=daemon-pool-exhausted
if [ "$size0" = null ]; then
	big=$((1024 * MIB))		# a CMA area: more than these guests have
else
	big=$((size0 + 64 * MIB))
fi
out=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" --socket "$SOCK" alloc --pool "$pool" "$big" 2>&1)
rc=$?
out2=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" --socket "$SOCK" alloc --pool no-such-pool 64M 2>&1)
rc2=$?
want="pool '$pool' unavailable: exhausted"
[ "$size0" = null ] && want="pool '$pool' unavailable: \(exhausted\|busy\)"
if [ $rc -ne 1 ] || [ "$(echo "$out" | wc -l)" -ne 1 ] || ! echo "$out" | grep -q "^physmemctl: alloc: $want"; then
	res $t FAIL "alloc --pool $pool $big: exit $rc (want 1, one line): $(echo "$out" | tr '\n' ' ' | cut -c1-300)"
elif [ $rc2 -ne 1 ] || ! echo "$out2" | grep -q "^physmemctl: alloc: pool 'no-such-pool' unavailable: none"; then
	res $t FAIL "alloc --pool no-such-pool: exit $rc2: $out2"
elif [ "$(pool_free)" != "$free0" ]; then
	res $t FAIL "free $(pool_free) after the refused calls, $free0 before"
else
	res $t PASS "'$out' (exit 1); '$out2'"
fi

# ---- daemon-pool-policy ----
t=daemon-pool-policy
out=$("${OTHER[@]}" "$PHYSMEM_BIN/physmemctl" --socket "$SOCK" alloc --pool "$pool" 64M 2>&1)
rc=$?
if [ $rc -ne 4 ] || ! echo "$out" | grep -q "permission denied: pool-users"; then
	res $t FAIL "uid 65533 (not in pool-users): exit $rc: $out"
elif [ "$(pool_free)" != "$free0" ]; then
	res $t FAIL "free $(pool_free) after the refusal, $free0 before"
else
	res $t PASS "uid 65533: '$out' (exit 4)"
fi

kill -TERM "$DPID"
wait "$DPID"
if [ $failed -ne 0 ]; then
	echo "---- physmemd log ----"
	tail -n 80 "$DLOG" | sed 's/^/physmemd-pool-log: /'
fi
exit 0
