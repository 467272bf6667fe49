# shellcheck shell=bash
# What the guest case scripts that run physmemd share (cases/60-daemon.sh,
# cases-iommu/85-daemon-bind.sh, cases-pool/85-daemon-pool.sh): sourced
# from $PHYSMEM_SRC/tests/vm after the script set CASES (its case names),
# T (its scratch directory), SOCK, DLOG (the daemon's log) and PB
# (PHYSMEM_PROJECT_BUILD_DIR). Not a case itself: guest-run.sh runs only
# the cases* directories.
failed=0

# res CASE PASS|FAIL|SKIP [DETAIL]: one result line; a FAIL fails the script.
res() {
	[ "$2" = FAIL ] && failed=1
	echo "PHYSMEM-TEST $1 $2 ${3:--}"
}
# all PASS|FAIL|SKIP DETAIL: the same result for every case.
all() { for c in $CASES; do res "$c" "$1" "$2"; done; }
# Run as the unprivileged user ("${U[@]}" CMD: setpriv execs CMD, so $! of
# "${U[@]}" CMD & is the client's own pid).
# shellcheck disable=SC2034  # used by the scripts that source this
U=(setpriv --reuid=65534 --regid=65534 --clear-groups)
# wait_for SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
	local end=$(( $(date +%s%N) / 1000000 + $1 * 1000 ))
	shift
	until "$@"; do
		[ $(( $(date +%s%N) / 1000000 )) -ge "$end" ] && return 1
		sleep 0.05
	done
}
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
	local p
	for p in $(jobs -p); do
		kill -9 "$p" 2>/dev/null
	done
}
trap cleanup EXIT

# need_built FILE...: each FILE (under $PB) built, else every case SKIPs
# (no $PB: not run through ctest) or FAILs, and the script ends.
need_built() {
	local f
	if [ -z "$PB" ]; then
		all SKIP "PHYSMEM_PROJECT_BUILD_DIR empty: run through ctest to test the daemon"
		exit 0
	fi
	for f in "$@"; do
		if [ ! -x "$PB/$f" ]; then
			all FAIL "$PB/$f not built"
			exit 0
		fi
	done
}

# copy_clients FILE...: copies of these (under $PB) in $PHYSMEM_BIN, which
# uid 65534 may run whatever the build dir's permissions; else every case
# FAILs and the script ends.
copy_clients() {
	local f out
	for f in "$@"; do
		if ! out=$(cp "$PB/$f" "$PHYSMEM_BIN/" 2>&1 && chmod 755 "$PHYSMEM_BIN/${f##*/}" 2>&1); then
			all FAIL "copying the clients: $out"
			exit 0
		fi
	done
}

# start_daemon CONFIG [ARG...]: physmemd with the kmod backend on $SOCK,
# its log in $DLOG and its pid in DPID; every case FAILs and the script
# ends when it does not come up.
start_daemon() {
	"$PB/daemon/physmemd" --config "$1" --backend kmod --socket "$SOCK" -v "${@:2}" 2>"$DLOG" &
	DPID=$!
	if ! wait_for 10 test -S "$SOCK" || ! kill -0 "$DPID" 2>/dev/null; then
		all FAIL "physmemd did not start: $(tr '\n' ' ' <"$DLOG" | cut -c1-300)"
		exit 0
	fi
}
