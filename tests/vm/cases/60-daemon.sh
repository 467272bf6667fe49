#!/bin/bash
# The whole product in the real kernel: physmemd (kmod backend) runs as root,
# an unprivileged libphysmem client (uid 65534, physmem-vm-client) gets
# buffers from it, and root drives the edu DMA engine with the bus addresses
# the client got from the daemon (physmem-vmtest edu-copy): A -> edu -> B,
# then the client checks B through its own mapping.
#
# Needs the project's build (PHYSMEM_PROJECT_BUILD_DIR, which ctest passes):
# daemon/physmemd, client/physmemctl, tests/vm/physmem-vm-client.
# PHYSMEM-EXPECT: daemon-status
# PHYSMEM-EXPECT: daemon-one-ioctl
# PHYSMEM-EXPECT: daemon-dma-contig
# PHYSMEM-EXPECT: daemon-dma-sg
# PHYSMEM-EXPECT: daemon-dma-pin
# PHYSMEM-EXPECT: daemon-isolation
# PHYSMEM-EXPECT: daemon-reclaim
# PHYSMEM-EXPECT: daemon-held-quota
# PHYSMEM-EXPECT: daemon-pin-bad-fd
# PHYSMEM-EXPECT: daemon-pin-memfd-close-keeps-pages
# PHYSMEM-EXPECT: daemon-pin-sparse-refused
# PHYSMEM-EXPECT: daemon-vmsplice-held-quota
# PHYSMEM-EXPECT: daemon-log
# PHYSMEM-EXPECT: daemon-held-restart
set -u
CASES="daemon-status daemon-one-ioctl daemon-dma-contig daemon-dma-sg daemon-dma-pin daemon-isolation daemon-reclaim daemon-held-quota daemon-pin-bad-fd daemon-pin-memfd-close-keeps-pages daemon-pin-sparse-refused daemon-vmsplice-held-quota daemon-log daemon-held-restart"
STATS=/sys/class/misc/physmem/stats
T=$PHYSMEM_TMP/daemon
SOCK=$PHYSMEM_TMP/physmemd.sock
DLOG=$T/physmemd.log
PB=${PHYSMEM_PROJECT_BUILD_DIR:-}
DPID=
. "$PHYSMEM_SRC/tests/vm/daemon-lib.sh"
CTL() { "$PHYSMEM_BIN/physmemctl" "$@"; }
counters() { echo "$(cat $STATS/buffers)/$(cat $STATS/bytes)"; }
counters_are() { [ "$(counters)" = "$1" ]; }
trap '' PIPE	# a client that died must not take the script with it

need_built daemon/physmemd client/physmemctl tests/vm/physmem-vm-client
if [ ! -c /dev/physmem ]; then
	all FAIL "no /dev/physmem"
	exit 0
fi
mkdir -p "$T"
copy_clients client/physmemctl tests/vm/physmem-vm-client
export PHYSMEM_SOCKET=$SOCK

# ---- the daemon ----
# The socket's directory ($PHYSMEM_TMP) is 0755; the socket gets the default
# mode 0666.  No configuration file: the host's /etc must not change the test.
c0=$(counters)
start_daemon /dev/null
smode=$(stat -c %a "$SOCK")

# ---- daemon-status ----
t=daemon-status
out=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" --json status 2>&1)
if echo "$out" | jq -e '.backend == "kmod" and .dmaSafe == true and .quota.uid == 65534' >/dev/null 2>&1; then
	res $t PASS "uid 65534 sees backend kmod, dmaSafe true, quota uid 65534, addressPolicy $(echo "$out" | jq -r .addressPolicy); socket mode $smode, counters before $c0"
else
	res $t FAIL "physmemctl --json status as uid 65534: $(echo "$out" | tr '\n' ' ' | cut -c1-400)"
fi

# ---- daemon-one-ioctl ----
# An Allocate costs the daemon one ioctl on /dev/physmem: ALLOC writes the
# segment list itself (no SEGMENTS count query and fill after it). strace
# follows every thread of the daemon while uid 65534 allocates a small
# buffer (on the event loop or a worker) and a 12 MiB scatter-gather one.
t=daemon-one-ioctl
tracer_on() {
	local f
	for f in /proc/"$DPID"/task/*/status; do
		grep -q '^TracerPid:[[:space:]]*[1-9]' "$f" || return 1
	done
}
if ! command -v strace >/dev/null; then
	res $t FAIL "strace is not installed (scripts/setup-deps.sh test installs it)"
else
	strace -qq -f -e trace=ioctl -o "$T/strace.out" -p "$DPID" 2>"$T/strace.err" &
	spid=$!
	if ! wait_for 20 tracer_on; then
		res $t FAIL "strace did not attach to every daemon thread: $(head -c 300 "$T/strace.err")"
	else
		o1=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" alloc 64K 2>&1)
		r1=$?
		o2=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" alloc 12M 2>&1)
		r2=$?
		# the Frees of both run after the replies: let them finish
		sleep 1
		kill -INT "$spid"
		wait "$spid"
		n_alloc=$(grep -c '0xb9, 0x1,' "$T/strace.out")
		n_seg=$(grep -c '0xb9, 0x3,' "$T/strace.out")
		n_query=$(grep -c '0xb9, 0x5,' "$T/strace.out")
		n_all=$(grep -c '0xb9,' "$T/strace.out")
		# Free asks QUERY once whether a client still holds the buffer
		# (then it stays charged as held): a new question, allowed.
		if [ $r1 -ne 0 ] || [ $r2 -ne 0 ]; then
			res $t FAIL "physmemctl alloc as uid 65534: exit $r1/$r2: $o1 $o2"
		elif [ "$n_alloc" -eq 2 ] && [ "$n_seg" -eq 0 ] && [ "$n_query" -le 2 ] &&
		     [ "$n_all" -eq $((n_alloc + n_query)) ]; then
			res $t PASS "2 Allocates (64 KiB, 12 MiB) + Frees: $n_all ioctls on /dev/physmem: 2 ALLOC (one per Allocate), no SEGMENTS, $n_query QUERY (Free's held check)"
		else
			res $t FAIL "2 Allocates + Frees: $n_all physmem ioctls ($n_alloc ALLOC, $n_seg SEGMENTS, $n_query QUERY), want 2 ALLOC, no SEGMENTS, at most one QUERY per Free: $(grep '0xb9,' "$T/strace.out" | head -8 | tr '\n' ' ' | cut -c1-500)"
		fi
	fi
fi
spid=

# ---- DMA cases ----
# dma_case NAME MODE [frag]: run the client (uid 65534) in MODE, copy its
# chunks with the edu device as root, let it check B.
dma_case() {
	local t=$1 mode=$2 frag=${3:-} d=$T/$1 line ready='' result='' fpid='' win rout cpid copy crc rc
	local t0=$SECONDS
	mkdir -p "$d"
	mkfifo "$d/in" "$d/out"
	if [ -n "$frag" ]; then
		# Free 4 MiB holes between held blocks (until SIGTERM), so that A
		# is built from separate runs, as in the dma-sg case.
		"$PHYSMEM_BIN/physmem-vmtest" frag-hold </dev/null >"$d/frag.out" 2>&1 &
		fpid=$!
		wait_for 20 grep -q '^ready' "$d/frag.out"
	fi
	"${U[@]}" "$PHYSMEM_BIN/physmem-vm-client" dma "$mode" <"$d/in" >"$d/out" 2>"$d/err" &
	cpid=$!
	exec {win}>"$d/in" {rout}<"$d/out"
	: >"$d/xfers"
	while IFS= read -r -t 60 line <&"$rout"; do
		case $line in
		xfer\ *) echo "$line" >>"$d/xfers" ;;
		ready\ *) ready=$line; break ;;
		result\ *) result=$line; break ;;
		esac
	done
	if [ -n "$fpid" ]; then
		kill -TERM "$fpid"
		wait "$fpid"
	fi
	if [ -n "$ready" ]; then
		copy=$("$PHYSMEM_BIN/physmem-vmtest" edu-copy <"$d/xfers" 2>&1)
		crc=$?
		if [ $crc -eq 0 ]; then
			echo go >&"$win"
		else
			echo abort >&"$win"
		fi
		IFS= read -r -t 60 result <&"$rout"
	fi
	exec {win}>&- {rout}<&-
	wait "$cpid"
	rc=$?
	# shellcheck disable=SC2086
	set -- $ready
	if [ -z "$ready" ]; then
		res "$t" FAIL "client: ${result:-no output} (exit $rc) $(tr '\n' ' ' <"$d/err" | cut -c1-200)"
	elif [ "$crc" -ne 0 ]; then
		res "$t" FAIL "root DMA: $copy; client: ${result:-none}"
	elif [ "${result%% *}" != result ] || [ "$(echo "$result" | cut -d' ' -f2)" != PASS ] || [ $rc -ne 0 ]; then
		res "$t" FAIL "client: ${result:-no result} (exit $rc) $(tr '\n' ' ' <"$d/err" | cut -c1-200)"
	else
		local extra=
		if [ "$mode" = sg ] && [ "$2" -lt 2 ]; then
			extra=" (note: A came as one segment, memory not fragmented)"
		fi
		res "$t" PASS "${result#result PASS }; root: $copy$extra; $((SECONDS - t0))s"
	fi
}
dma_case daemon-dma-contig contig
dma_case daemon-dma-sg sg frag
dma_case daemon-dma-pin pin

# ---- daemon-isolation ----
t=daemon-isolation
sec=$(CTL --json alloc 64K --name secret 2>&1)
sid=$(echo "$sec" | jq -r .id 2>/dev/null)
if ! [ "$sid" -gt 0 ] 2>/dev/null; then
	res $t FAIL "root could not allocate the named buffer: $(echo "$sec" | tr '\n' ' ' | cut -c1-200)"
else
	c1=$(counters)
	out=$("${U[@]}" "$PHYSMEM_BIN/physmem-vm-client" isolation secret "$sid" 2>&1)
	crc=$?
	lout=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" list --all 2>&1)
	lrc=$?
	CTL show "$sid" >/dev/null 2>&1
	src=$?
	fout=$(CTL free "$sid" 2>&1)
	frc=$?
	if [ $crc -ne 0 ] || [ "${out#result PASS}" = "$out" ]; then
		res $t FAIL "client: $(echo "$out" | tr '\n' ' ' | cut -c1-400)"
	elif [ $lrc -ne 4 ]; then
		res $t FAIL "physmemctl list --all as uid 65534: exit $lrc, want 4: $lout"
	elif [ "$c1" != "1/65536" ]; then
		res $t FAIL "counters with root's named buffer alive after physmemctl exited: $c1, want 1/65536"
	elif [ $src -ne 0 ] || [ $frc -ne 0 ]; then
		res $t FAIL "root's buffer $sid: show exit $src, free exit $frc: $fout"
	elif ! wait_for 5 counters_are 0/0; then
		res $t FAIL "counters after root freed the named buffer: $(counters)"
	else
		res $t PASS "${out#result PASS }; physmemctl list --all: exit 4; named buffer survived its physmemctl and the attempts (counters $c1), freed by root"
	fi
fi

# ---- daemon-reclaim ----
t=daemon-reclaim
reclaim() {
	local d=$T/reclaim hpid n bytes c1 st1 st2 nid c2 out
	mkdir -p "$d"
	counters_are 0/0 || { res $t FAIL "counters not zero before: $(counters)"; return; }
	"${U[@]}" "$PHYSMEM_BIN/physmem-vm-client" hold >"$d/hold.out" 2>&1 </dev/null &
	hpid=$!
	if ! wait_for 30 grep -q '^ready' "$d/hold.out"; then
		res $t FAIL "holder: $(tr '\n' ' ' <"$d/hold.out" | cut -c1-300)"
		kill -9 "$hpid" 2>/dev/null
		return
	fi
	read -r _ n bytes <"$d/hold.out"
	c1=$(counters)
	st1=$(CTL --json status | jq -r '"\(.buffers)/\(.bytes)"')
	if [ "$c1" != "$n/$bytes" ] || [ "$st1" != "$n/$bytes" ]; then
		res $t FAIL "while held: module $c1, daemon $st1, want $n/$bytes"
		kill -9 "$hpid" 2>/dev/null
		return
	fi
	kill -9 "$hpid"
	wait "$hpid" 2>/dev/null
	if ! wait_for 10 counters_are 0/0; then
		res $t FAIL "after SIGKILL of the holder: module counters $(counters) after 10s (daemon $(CTL --json status | jq -r '"\(.buffers)/\(.bytes)"'))"
		return
	fi
	st2=$(CTL --json status | jq -r '"\(.buffers)/\(.bytes)/\(.connections)"')
	if [ "$st2" != 0/0/1 ]; then
		res $t FAIL "after SIGKILL: daemon buffers/bytes/connections $st2, want 0/0/1"
		return
	fi
	# A named buffer: after its physmemctl exits only the daemon holds it.
	out=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" --json alloc 256K --name reclaim-named 2>&1)
	nid=$(echo "$out" | jq -r .id 2>/dev/null)
	c2=$(counters)
	if ! [ "$nid" -gt 0 ] 2>/dev/null || [ "$c2" != 1/262144 ]; then
		res $t FAIL "named buffer as uid 65534: id '$nid', counters $c2, want 1/262144: $(echo "$out" | tr '\n' ' ' | cut -c1-200)"
		return
	fi
	if ! out=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" free "$nid" 2>&1); then
		res $t FAIL "uid 65534 could not free its named buffer $nid: $out"
		return
	fi
	if ! wait_for 5 counters_are 0/0; then
		res $t FAIL "named buffer freed via the daemon, module counters still $(counters)"
		return
	fi
	res $t PASS "holder of $n buffers ($bytes bytes, module and daemon agreed) SIGKILLed: counters 0/0, daemon 0 buffers; named buffer ($c2) freed via the daemon: 0/0"
}
reclaim

# ---- daemon-held-quota ----
# Keeping the dma-buf after Free or after disconnecting keeps the memory, so
# it must stay charged to the owner until the kernel really frees it.
t=daemon-held-quota
cp "$PHYSMEM_SRC/tests/vm/held-quota.py" "$PHYSMEM_SRC/tests/vm/pin-bad-fd.py" \
	"$PHYSMEM_SRC/tests/vm/page-lifetime.py" \
	"$PHYSMEM_SRC/tests/integration/varlink_raw.py" "$PHYSMEM_BIN/" &&
	chmod 755 "$PHYSMEM_BIN/held-quota.py" "$PHYSMEM_BIN/pin-bad-fd.py" \
		"$PHYSMEM_BIN/page-lifetime.py"
if out=$("${U[@]}" /usr/bin/python3 "$PHYSMEM_BIN/held-quota.py" "$SOCK" "$STATS" 2>&1); then
	res $t PASS "$(echo "$out" | sed -n 's/^PASS //p')"
else
	res $t FAIL "$(echo "$out" | tail -3 | tr '\n' ' ' | cut -c1-400)"
fi

# ---- daemon-pin-bad-fd ----
t=daemon-pin-bad-fd
if out=$("${U[@]}" /usr/bin/python3 "$PHYSMEM_BIN/pin-bad-fd.py" "$SOCK" 2>&1); then
	res $t PASS "$(echo "$out" | sed -n 's/^PASS //p')"
else
	res $t FAIL "$(echo "$out" | tail -3 | tr '\n' ' ' | cut -c1-400)"
fi

# ---- page lifetime through the daemon (uid 65534) ----
# page_lifetime NAME CASE: run page-lifetime.py CASE; any new kernel report
# of memory corruption fails it too.
kbad() { dmesg | grep -cE 'BUG:|Bad page|list_(del|add) corruption|Bad rss-counter|page dumped because'; }
page_lifetime() {
	local t=$1 k0 k1 out
	k0=$(kbad)
	out=$("${U[@]}" /usr/bin/python3 "$PHYSMEM_BIN/page-lifetime.py" "$SOCK" "$STATS" "$2" 2>&1)
	local rc=$?
	k1=$(kbad)
	if [ $rc -ne 0 ]; then
		res "$t" FAIL "$(echo "$out" | tail -3 | tr '\n' ' ' | cut -c1-400)"
	elif [ "$k1" != "$k0" ]; then
		res "$t" FAIL "kernel reported $((k1 - k0)) memory error line(s): $(dmesg | grep -E 'BUG:|Bad page' | tail -2 | tr '\n' ' ')"
	else
		res "$t" PASS "$(echo "$out" | sed -n 's/^PASS //p')"
	fi
}
page_lifetime daemon-pin-memfd-close-keeps-pages pin-close
page_lifetime daemon-pin-sparse-refused pin-sparse
page_lifetime daemon-vmsplice-held-quota vmsplice

# ---- daemon-log ----
t=daemon-log
kill -TERM "$DPID"
wait "$DPID"
drc=$?
DPID=
# Errors the cases above provoke on purpose (none so far).
expected_errors='^$'
errs=$(grep -E '^physmemd: error:' "$DLOG" | grep -vE "$expected_errors")
nwarn=$(grep -c '^physmemd: warning:' "$DLOG")
if [ $drc -ne 0 ]; then
	res $t FAIL "physmemd exit $drc on SIGTERM"
elif [ -n "$errs" ]; then
	res $t FAIL "$(echo "$errs" | head -3 | tr '\n' ' ')"
elif [ -e "$SOCK" ]; then
	res $t FAIL "exit 0, but the socket $SOCK is left behind"
else
	res $t PASS "exit 0 on SIGTERM, socket removed, $(grep -c . "$DLOG") log lines, no error lines, $nwarn warning(s)"
fi
# ---- daemon-held-restart ----
# Held memory stays charged across a restart with the fd store (systemd's
# side played by tests/integration/fdstore.py).
t=daemon-held-restart
printf '#!/bin/sh\nexec "%s" --config /dev/null --backend kmod "$@" >>"%s" 2>&1\n' "$PB/daemon/physmemd" "$T/restart.log" \
	>"$T/physmemd-kmod" && chmod 755 "$T/physmemd-kmod"
if out=$(/usr/bin/python3 "$PHYSMEM_SRC/tests/vm/held-restart.py" "$T/physmemd-kmod" "$STATS" 2>&1); then
	res $t PASS "$(echo "$out" | sed -n 's/^PASS //p')"
else
	res $t FAIL "$(echo "$out" | grep -v '^physmemd' | tail -3 | tr '\n' ' ' | cut -c1-400)"
	tail -n 40 "$T/restart.log" | sed 's/^/physmemd-restart-log: /'
fi

if [ $failed -ne 0 ]; then
	echo "---- physmemd log ----"
	tail -n 150 "$DLOG" | sed 's/^/physmemd-log: /'
fi
exit 0
