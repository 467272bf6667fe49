#!/bin/bash
# Runs inside the packaging test VM (Debian 12, systemd as PID 1) as the
# oneshot physmem-pkg-test.service, after multi-user.target. Checks the
# installed .debs under real systemd and prints, on the console:
#   PHYSMEM-PKG-TEST <name> PASS|FAIL <detail>
#   PHYSMEM-PKG-RESULT pass=N fail=M
# The host script (run-packaging-vm-test.sh) lists the names it expects.
#
# Users (made at image build time): pmuser and pmpeer are in group physmem,
# pmother is not.
set -u
export LC_ALL=C SYSTEMD_PAGER='' SYSTEMD_COLORS=0

HELPER=/usr/local/libexec/physmem-pkg-test/pm-share
T=60			# seconds for any one client command
pass=0
fail=0

result() {		# name PASS|FAIL detail...
	local name=$1 verdict=$2
	shift 2
	local detail
	detail=$(printf '%s' "$*" | tr '\n' ' ' | cut -c1-600)
	echo "PHYSMEM-PKG-TEST $name $verdict $detail"
	if [ "$verdict" = PASS ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
}
check() {		# name detail-on-failure command...: PASS if the command succeeds
	local name=$1 detail=$2
	shift 2
	if "$@"; then result "$name" PASS "$detail"; else result "$name" FAIL "$detail"; fi
}
info() { echo "PHYSMEM-PKG-INFO $*"; }
as() {			# user command...: run as user with its groups (initgroups)
	local u=$1
	shift
	timeout -k 5 "$T" runuser -u "$u" -- "$@"
}

info "kernel $(uname -r), $(systemctl --version | head -1)"
info "users: $(id pmuser) / $(id pmpeer) / $(id pmother)"
udevadm settle -t 60 || info "udevadm settle timed out"

# ---- a. before any client: socket listening, service not started, module + node
sock_active=$(systemctl is-active physmemd.socket)
sock_sub=$(systemctl show -P SubState physmemd.socket)
sock_stat=$(stat -c '%a %U:%G %F' /run/physmem/physmemd.sock 2>&1)
[ "$sock_active" = active ] && [ "$sock_sub" = listening ] && [ "$sock_stat" = "660 root:physmem socket" ]
check socket-listening "physmemd.socket is-active=$sock_active sub=$sock_sub; socket: $sock_stat" [ $? -eq 0 ]

svc_before=$(systemctl is-active physmemd.service)
svc_enabled=$(systemctl is-enabled physmemd.socket 2>&1)
[ "$svc_before" = inactive ]
check service-on-demand "before the first client: physmemd.service is-active=$svc_before (want inactive); physmemd.socket is-enabled=$svc_enabled" [ $? -eq 0 ]

ml_state=$(systemctl is-active systemd-modules-load.service)
ko=$(modinfo -F filename physmem 2>&1)
ko_ver=$(modinfo -F version physmem 2>&1)
dkms_st=$(dkms status physmem 2>/dev/null | tr '\n' ';')
loaded=no
[ -d /sys/module/physmem ] && loaded=yes
case $ko in /lib/modules/"$(uname -r)"/updates/dkms/physmem.ko*) ko_dkms=yes ;; *) ko_dkms=no ;; esac
[ "$loaded" = yes ] && [ "$ko_dkms" = yes ] && [ "$ml_state" = active ]
check module-dkms "loaded=$loaded file=$ko version=$ko_ver from-dkms=$ko_dkms systemd-modules-load=$ml_state; dkms: $dkms_st" [ $? -eq 0 ]

dev_stat=$(stat -c '%a %U:%G %F' /dev/physmem 2>&1)
[ "$dev_stat" = "600 root:root character special file" ]
check dev-node "/dev/physmem: $dev_stat (want 600 root:root character special file)" [ $? -eq 0 ]

# ---- b. allowed user: selftest, service now running, kmod backend; outsider refused
out=$(as pmuser physmemctl selftest 2>&1)
rc=$?
check selftest-allowed "pmuser (group physmem): physmemctl selftest rc=$rc: $out" [ "$rc" -eq 0 ]

svc_after=$(systemctl is-active physmemd.service)
check service-activated "after the first client: physmemd.service is-active=$svc_after" [ "$svc_after" = active ]

json=$(as pmuser physmemctl --json status 2>&1)
rc=$?
backend=$(printf '%s' "$json" | jq -r .backend 2>/dev/null)
why=
[ "$backend" = kmod ] || why=": $json"
[ "$rc" -eq 0 ] && [ "$backend" = kmod ]
check backend-kmod "physmemctl --json status rc=$rc backend=$backend$why" [ $? -eq 0 ]

# python3-physmem: a numpy array over a kmod buffer, as pmuser on the system
# socket; the owner sees its DMA address (address-policy owner).
py=$(as pmuser python3 -c 'import physmem
a = physmem.allocate((1024,), "u4"); a[:] = 7; a.flush(); a.invalidate()
s = a.segments
print(a.backend, a.dma_safe, int(a.sum()), len(s), s[0][1] == 4096, a.physical_address == s[0][0] > 0)
a.free()' 2>&1)
rc=$?
[ "$rc" -eq 0 ] && [ "$py" = "kmod True 7168 1 True True" ]
check python-import "pmuser: python3 -c 'import physmem; physmem.allocate(...)' rc=$rc: $py (want: kmod True 7168 1 True True)" [ $? -eq 0 ]

# The outsider: connect() is refused by the socket's mode (EACCES). physmemctl
# documents exit status 4 "permission denied" (3 is "not reachable").
errf=$(mktemp)
as pmother physmemctl status >/dev/null 2>"$errf"
rc=$?
err=$(cat "$errf")
nl=$(grep -c . "$errf")
rm -f "$errf"
[ "$rc" -eq 4 ] && [ "$nl" -eq 1 ] && printf '%s' "$err" | grep -q '^physmemctl: .*Permission denied$'
check outsider-refused "pmother (not in physmem): rc=$rc (want 4), $nl stderr line(s): $err" [ $? -eq 0 ]

pid=$(systemctl show -P MainPID physmemd.service)
caps=$(awk '/^CapEff|^CapBnd/ { printf "%s=%s ", $1, $2 }' /proc/"$pid"/status 2>&1)
uid=$(awk '/^Uid:/ { print $2 }' /proc/"$pid"/status 2>&1)
nnp=$(awk '/^NoNewPrivs:/ { print $2 }' /proc/"$pid"/status 2>&1)
seccomp=$(awk '/^Seccomp:/ { print $2 }' /proc/"$pid"/status 2>&1)
[ "$uid" = 0 ] && [ "$caps" = "CapEff:=0000000000000000 CapBnd:=0000000000000000 " ] && [ "$nnp" = 1 ] && [ "$seccomp" = 2 ]
check sandbox "physmemd pid $pid uid=$uid ${caps}NoNewPrivs=$nnp Seccomp=$seccomp" [ $? -eq 0 ]

# Under the unit's filter the large lane's workers lowered their priority (setpriority); the rest did not.
prio=$(for t in /proc/"$pid"/task/*; do
	printf '%s:%s ' "$(cat "$t"/comm)" "$(sed 's/.*) //' "$t"/stat | awk '{ print $17 }')"
done)
want_large=$(printf '%s\n' $prio | grep -c '^physmemd-large:10$')
others=$(printf '%s\n' $prio | grep -v '^physmemd-large:' | grep -vc ':0$')
[ "$want_large" -eq 2 ] && [ "$others" -eq 0 ]
check worker-priority "threads (name:nice): $prio(want 2 physmemd-large:10, every other at 0)" [ $? -eq 0 ]

# The sink (a child that closes client fds, docs/SECURITY.md) started under the same filter.
sink_comm=$(for p in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do cat /proc/"$p"/comm; done | tr '\n' ' ')
check sink-process "children of physmemd $pid: ${sink_comm:-(none)} (want physmemd-sink)" [ "$sink_comm" = "physmemd-sink " ]

# ---- c. a named buffer survives systemctl restart physmemd (fd store)
# pmuser's producer allocates "keep" (shared with pmpeer), fills it with
# pattern A through its mapping and keeps the mapping; physmemd restarts; the
# producer's mapping must still hold A; pmpeer imports "keep" from the new
# daemon, finds A and writes B; the producer must see B through its mapping
# (the same memory, not a copy).
SIZE=$((1 << 20))
peer_uid=$(id -u pmpeer)
coproc PROD { timeout -k 5 600 runuser -u pmuser -- "$HELPER" produce keep "$SIZE" "$peer_uid" 2>&1; }
prod_in=${PROD[1]}
prod_out=${PROD[0]}
ready=
read -r -t "$T" -u "$prod_out" ready
info "producer: $ready"
buf_id=${ready#ready }
listed=
if [ "${ready%% *}" != ready ]; then
	result fdstore-restart FAIL "producer did not start: $ready"
	result fdstore-producer-mapping FAIL "producer did not start"
	result status-line FAIL "no buffer to report (producer did not start)"
	result fdstore-ids FAIL "producer did not start"
else
	pid_before=$(systemctl show -P MainPID physmemd.service)
	rs_out=$(timeout -k 5 120 systemctl restart physmemd.service 2>&1)
	rs_rc=$?
	pid_after=$(systemctl show -P MainPID physmemd.service)
	state_after=$(systemctl is-active physmemd.service)
	echo check-a >&"$prod_in"
	r1=
	read -r -t "$T" -u "$prod_out" r1
	restored=$(journalctl -b -u physmemd.service -o cat --no-pager | grep "fd store: buffer $buf_id 'keep'" | tail -1)
	list=$(as pmuser physmemctl --json list 2>&1)
	listed=$(printf '%s' "$list" | jq -r '.. | objects | select(.name? == "keep") | .id' 2>/dev/null | head -1)
	cons=$(as pmpeer "$HELPER" consume keep "$SIZE" 2>&1)
	cons_rc=$?
	ok=no
	[ "$rs_rc" -eq 0 ] && [ "$state_after" = active ] && [ -n "$pid_after" ] &&
		[ "$pid_after" != 0 ] && [ "$pid_after" != "$pid_before" ] && [ "$cons_rc" -eq 0 ] &&
		[ "$listed" = "$buf_id" ] && ok=yes
	check fdstore-restart "buffer $buf_id 'keep' 1 MiB: restart rc=$rs_rc $rs_out pid $pid_before -> $pid_after ($state_after); owner's list after restart shows id '$listed'; daemon log: ${restored:-(no restore line)}; pmpeer import rc=$cons_rc: $cons" [ "$ok" = yes ]

	echo check-b >&"$prod_in"
	r2=
	read -r -t "$T" -u "$prod_out" r2
	[ "$r1" = "ok check-a" ] && [ "$r2" = "ok check-b" ]
	check fdstore-producer-mapping "producer's own mapping after the restart: check-a -> '$r1'; after pmpeer wrote pattern B through its import: check-b -> '$r2'" [ $? -eq 0 ]

	# ---- d. the daemon's STATUS= line, with the restored buffer in it
	st=$(systemctl status --no-pager physmemd.service 2>&1)
	st_line=$(printf '%s\n' "$st" | grep -m1 'Status: ')
	printf '%s' "$st_line" | grep -Eq 'Status: "Serving 1 buffers \(1048576 bytes\) to [0-9]+ clients on the kmod backend"'
	check status-line "systemctl status (after the restart, 'keep' restored): ${st_line:-(no Status: line)}" [ $? -eq 0 ]

	# A new buffer after the restart must not reuse the restored one's id.
	nj=$(as pmuser physmemctl --json alloc 4K --name probe 2>&1)
	nrc=$?
	new_id=$(printf '%s' "$nj" | jq -r '.id // empty' 2>/dev/null)
	why=
	[ -n "$new_id" ] || why=": $nj"
	[ "$nrc" -eq 0 ] && [ -n "$new_id" ] && [ "$new_id" != "$buf_id" ]
	check fdstore-ids "after the restart a new named buffer got id '$new_id' (restored one: $buf_id); alloc rc=$nrc$why" [ $? -eq 0 ]
	[ -n "$new_id" ] && info "free probe: $(as pmuser physmemctl free "$new_id" 2>&1)"
fi
echo quit >&"$prod_in"
exec {prod_in}>&- 2>/dev/null
wait "${PROD_PID:-}" 2>/dev/null
if [ -n "$listed" ]; then
	fr=$(as pmuser physmemctl free "$buf_id" 2>&1)
	info "owner frees buffer $buf_id after the restart: rc=$? $fr"
fi

# ---- socket activation again after a stop (fd store is not kept across stop)
stop_rc=0
systemctl stop physmemd.service || stop_rc=$?
s1=$(systemctl is-active physmemd.service)
k1=$(systemctl show -P SubState physmemd.socket)
out=$(as pmuser physmemctl status 2>&1)
rc=$?
s2=$(systemctl is-active physmemd.service)
[ "$stop_rc" -eq 0 ] && [ "$s1" = inactive ] && [ "$k1" = listening ] && [ "$rc" -eq 0 ] && [ "$s2" = active ]
check reactivation "systemctl stop physmemd rc=$stop_rc -> $s1, socket $k1; next client rc=$rc -> service $s2" [ $? -eq 0 ]

# ---- the watchdog (WatchdogSec=30s, the daemon pings every 15s) under the sandbox
wpid=$(systemctl show -P MainPID physmemd.service)
sleep 40
wpid2=$(systemctl show -P MainPID physmemd.service)
nrestarts=$(systemctl show -P NRestarts physmemd.service)
wd_usec=$(systemctl show -P WatchdogUSec physmemd.service)
wd_ts=$(systemctl show -P WatchdogTimestampMonotonic physmemd.service)
up_us=$(awk '{ printf "%d", $1 * 1000000 }' /proc/uptime)
age=$(( (up_us - ${wd_ts:-0}) / 1000000 ))
wd_log=$(journalctl -b -u physmemd.service -o cat --no-pager | grep -i 'watchdog' | tail -2)
[ "$wpid" = "$wpid2" ] && [ "$nrestarts" = 0 ] && [ "${wd_ts:-0}" -gt 0 ] && [ "$age" -le 20 ] && [ -z "$wd_log" ] &&
	[ "$(systemctl is-active physmemd.service)" = active ]
check watchdog "40s later: pid $wpid -> $wpid2, NRestarts=$nrestarts, WatchdogUSec=$wd_usec, last ping ${age}s ago; watchdog log: ${wd_log:-(none)}" [ $? -eq 0 ]

# ---- e. no errors in physmemd's journal, no kernel warnings
errs=$(journalctl -b -u physmemd.service -u physmemd.socket -p err --no-pager -q 2>&1)
check journal-no-errors "journalctl -u physmemd -p err: ${errs:-(empty)}" [ -z "$errs" ]

kbad=$(journalctl -b -k --no-pager -q -o cat 2>&1 |
	grep -E 'WARNING:|BUG:|Oops|general protection|KASAN|UBSAN|Call Trace' | head -5)
check kernel-clean "kernel log: ${kbad:-no WARNING/BUG/Oops}" [ -z "$kbad" ]

info "failed units: $(systemctl --failed --plain --no-legend | awk '{ print $1 }' | tr '\n' ' ')"
info "physmemd journal follows"
journalctl -b -u physmemd.service -u physmemd.socket --no-pager -o short-monotonic | sed 's/^/PHYSMEM-PKG-LOG /' | tail -40

echo "PHYSMEM-PKG-RESULT pass=$pass fail=$fail"
journalctl --sync 2>/dev/null
sync
exit 0
