#!/bin/bash
# Device bindings through physmemd (kmod backend): physmemd.conf lets uid
# 65534 bind edu (bind-device = <edu's BDF> uid:65534). As uid 65534 the
# client allocates with --device and gets edu's addresses of its buffers;
# root drives edu with the addresses the client printed (physmem-vmtest
# edu-copy) and the client checks what arrived (physmem-vm-client bind):
# physical addresses do not reach memory under a translating IOMMU, the
# bound ones do, and after Unbind the old ones no longer do. Free with a live
# binding leaves no binding in the module, although the client still holds
# the buffer. Another uid is refused (PermissionDenied), an absent device is
# NoSuchDevice, a bind of a buffer twice DeviceBusy, physmemctl
# bind/show/unbind round-trip, max-bindings-per-uid holds, and a removed
# device shows as revoked (last: it removes and rescans edu).
#
# Needs the project's build (PHYSMEM_PROJECT_BUILD_DIR, which ctest passes).
# PHYSMEM-EXPECT: daemon-bind-status
# PHYSMEM-EXPECT: daemon-bind-dma
# PHYSMEM-EXPECT: daemon-bind-free-unbinds
# PHYSMEM-EXPECT: daemon-bind-errors
# PHYSMEM-EXPECT: daemon-bind-ctl
# PHYSMEM-EXPECT: daemon-bind-quota
# PHYSMEM-EXPECT: daemon-bind-revoked
set -u
CASES="daemon-bind-status daemon-bind-dma daemon-bind-free-unbinds daemon-bind-errors daemon-bind-ctl daemon-bind-quota daemon-bind-revoked"
STATS=/sys/class/misc/physmem/stats
T=$PHYSMEM_TMP/daemon-bind
SOCK=$PHYSMEM_TMP/physmemd-bind.sock
DLOG=$T/physmemd.log
PB=${PHYSMEM_PROJECT_BUILD_DIR:-}
. "$PHYSMEM_SRC/tests/vm/daemon-lib.sh"
U2=(setpriv --reuid=65533 --regid=65533 --clear-groups)
bindings_are() { [ "$(cat $STATS/bindings)" = "$1" ]; }
trap '' PIPE

need_built daemon/physmemd client/physmemctl tests/vm/physmem-vm-client
if [ ! -c /dev/physmem ] || [ ! -r $STATS/bindings ]; then
	all FAIL "no /dev/physmem or no binding counters"
	exit 0
fi
edu=
for d in /sys/bus/pci/devices/*; do
	if [ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11e8 ]; then
		edu=${d##*/}
		break
	fi
done
if [ -z "$edu" ]; then
	all FAIL "no edu device"
	exit 0
fi
translation=direct
if [ -e "/sys/bus/pci/devices/$edu/iommu_group" ]; then
	case $(cat "/sys/bus/pci/devices/$edu/iommu_group/type") in
	identity) translation=passthrough ;;
	DMA|DMA-FQ) translation=iommu ;;
	esac
fi
mkdir -p "$T"
copy_clients client/physmemctl tests/vm/physmem-vm-client
export PHYSMEM_SOCKET=$SOCK
CTL() { "$PHYSMEM_BIN/physmemctl" "$@"; }

cat >"$T/physmemd.conf" <<EOF
bind-device = $edu uid:65534
max-bindings-per-uid = 4
EOF
b0=$(cat $STATS/bindings)
start_daemon "$T/physmemd.conf"

# ---- daemon-bind-status ----
t=daemon-bind-status
out=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" --json status 2>&1)
if echo "$out" | jq -e --arg d "$edu" --arg tr "$translation" \
	'[.bindableDevices[] | select(.device == $d)] | length == 1 and .[0].vendor == 4660 and
	 .[0].product == 4584 and .[0].bindable == true and .[0].translation == $tr' >/dev/null 2>&1 &&
	[ "$(echo "$out" | jq '.bindableDevices | length')" = 1 ]; then
	res $t PASS "uid 65534 may bind only $edu ($translation)"
else
	res $t FAIL "status as uid 65534: $(echo "$out" | jq -c .bindableDevices 2>/dev/null || echo "$out" | cut -c1-300)"
fi

# ---- daemon-bind-dma ----
t=daemon-bind-dma
d=$T/dma
mkdir -p "$d"
mkfifo "$d/in" "$d/out"
"${U[@]}" "$PHYSMEM_BIN/physmem-vm-client" bind "$edu" "$translation" <"$d/in" >"$d/out" 2>"$d/err" &
cpid=$!
exec {win}>"$d/in" {rout}<"$d/out"
result=
rounds=
freed="the client never reached the Free of A"
freed_bad=1
while :; do
	: >"$d/xfers"
	ready=
	while IFS= read -r -t 60 line <&"$rout"; do
		case $line in
		xfer\ *) echo "$line" >>"$d/xfers" ;;
		ready-*) ready=$line; break ;;
		result\ *) result=$line; break ;;
		esac
	done
	[ -n "$ready" ] || break
	if [ "${ready%% *}" = ready-freed ]; then
		# A freed with its binding live, its memory still held by the client's dup.
		if wait_for 10 bindings_are "$b0"; then
			freed="module bindings back to $b0 while the client still holds A ($(cat $STATS/buffers) buffers live)"
			freed_bad=
		else
			freed="module bindings $(cat $STATS/bindings), were $b0 before"
			freed_bad=1
		fi
		echo go >&"$win"
		continue
	fi
	# Copies through blocked addresses may fail or fault: the client judges what arrived.
	copy=$("$PHYSMEM_BIN/physmem-vmtest" edu-copy <"$d/xfers" 2>&1)
	rounds="$rounds ${ready%% *}: $copy;"
	echo go >&"$win"
done
exec {win}>&- {rout}<&-
wait "$cpid"
rc=$?
if [ "${result%% *}" = result ] && [ "$(echo "$result" | cut -d' ' -f2)" = PASS ] && [ $rc -eq 0 ]; then
	res $t PASS "${result#result PASS }; root:$rounds"
else
	res $t FAIL "client: ${result:-no result} (exit $rc) $(tr '\n' ' ' <"$d/err" | cut -c1-200); root:$rounds"
fi

# ---- daemon-bind-free-unbinds ----
# The client freed A with its binding live but kept a dup of its fd: the
# buffer lives on in the kernel, so only the daemon's explicit unbind can have
# removed the binding.
t=daemon-bind-free-unbinds
if [ -z "$freed_bad" ] && wait_for 10 bindings_are "$b0"; then
	res $t PASS "$freed"
else
	res $t FAIL "$freed"
fi

# ---- daemon-bind-errors ----
t=daemon-bind-errors
errs=
o1=$("${U2[@]}" "$PHYSMEM_BIN/physmemctl" alloc 4096 --device "$edu" 2>&1)
r1=$?
[ $r1 -eq 4 ] && [[ $o1 == *"permission denied"* ]] || errs="$errs uid 65533: rc $r1 '$o1';"
o2=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" alloc 4096 --device 0000:7f:1f.7 2>&1)
r2=$?
[ $r2 -ne 0 ] && [[ $o2 == *"no such device: 0000:7f:1f.7"* ]] || errs="$errs bogus BDF: rc $r2 '$o2';"
o3=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" alloc 4096 --device 0000:00:00.0 2>&1)
r3=$?
[ $r3 -eq 4 ] || errs="$errs host bridge not in policy: rc $r3 '$o3';"
if [ -z "$errs" ] && wait_for 10 bindings_are "$b0"; then
	res $t PASS "PermissionDenied for uid 65533 and for a device not named, NoSuchDevice for a bogus BDF"
else
	res $t FAIL "${errs:-bindings $(cat $STATS/bindings), were $b0}"
fi

# ---- daemon-bind-ctl ----
# physmemctl alloc --name, bind, show, bind again (DeviceBusy), unbind (not by
# another uid), root binds the buffer and its owner removes that binding, free.
t=daemon-bind-ctl
errs=
id=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" --json alloc 256K --name bindctl 2>&1 | jq -r .id)
if [ -z "$id" ] || [ "$id" = null ]; then
	errs="alloc failed;"
else
	o=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" --json bind "$id" "$edu" --access to-device 2>&1)
	echo "$o" | jq -e --arg d "$edu" --arg tr "$translation" \
		'.devices | length == 1 and .[0].device == $d and .[0].translation == $tr and
		 .[0].access == "toDevice" and .[0].revoked == false and
		 ([.[0].segments[].length] | add) == 262144' >/dev/null 2>&1 || errs="$errs bind: $o;"
	bindings_are $((b0 + 1)) || errs="$errs module bindings $(cat $STATS/bindings) after bind;"
	o=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" show "$id" 2>&1)
	[[ $o == *"device:       $edu, $translation, to-device"* ]] || errs="$errs show: $o;"
	o=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" bind "$id" "$edu" 2>&1)
	[[ $o == *"device busy: $edu (bound)"* ]] || errs="$errs second bind: $o;"
	o=$("${U2[@]}" "$PHYSMEM_BIN/physmemctl" unbind "$id" "$edu" 2>&1)
	[ $? -eq 6 ] || errs="$errs unbind by uid 65533: $o;"
	o=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" unbind "$id" "$edu" 2>&1) || errs="$errs unbind: $o;"
	bindings_are "$b0" || errs="$errs module bindings $(cat $STATS/bindings) after unbind;"
	o=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" unbind "$id" "$edu" 2>&1)
	[[ $o == *"no such device: $edu"* ]] || errs="$errs unbind twice: $o;"
	# Root binds uid 65534's buffer; the owner may remove that binding.
	o=$(CTL --json bind "$id" "$edu" 2>&1)
	echo "$o" | jq -e '.devices | length == 1' >/dev/null 2>&1 || errs="$errs root bind: $o;"
	bindings_are $((b0 + 1)) || errs="$errs module bindings $(cat $STATS/bindings) after root's bind;"
	o=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" unbind "$id" "$edu" 2>&1) || errs="$errs owner unbind of root's binding: $o;"
	bindings_are "$b0" || errs="$errs module bindings $(cat $STATS/bindings) after the owner's unbind;"
	"${U[@]}" "$PHYSMEM_BIN/physmemctl" free "$id" >/dev/null 2>&1 || errs="$errs free failed;"
fi
if [ -z "$errs" ]; then
	res $t PASS "bind --access to-device, show, DeviceBusy on a second bind, unbind (not by another uid), NoSuchDevice after; the owner unbinds root's binding"
else
	res $t FAIL "$(echo "$errs" | cut -c1-500)"
fi

# ---- daemon-bind-quota ----
# max-bindings-per-uid = 4: four named buffers bound at allocation, the
# fifth Allocate with device is QuotaExceeded (exit 5) and leaves no buffer;
# after one Free it works.
t=daemon-bind-quota
errs=
ids=
for i in 1 2 3 4; do
	id=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" --json alloc 64K --name "q$i" --device "$edu" 2>&1 | jq -r .id)
	ids="$ids $id"
done
bindings_are $((b0 + 4)) || errs="$errs module bindings $(cat $STATS/bindings) after 4 (ids$ids);"
n0=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" --json list | jq '.buffers | length')
o=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" alloc 64K --name q5 --device "$edu" 2>&1)
r=$?
[ $r -eq 5 ] && [[ $o == *"quota exceeded: bindings limit 4"* ]] || errs="$errs fifth: rc $r '$o';"
n1=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" --json list | jq '.buffers | length')
[ "$n0" = 4 ] && [ "$n1" = 4 ] || errs="$errs buffers $n0 before, $n1 after the refused one;"
# shellcheck disable=SC2086
set -- $ids
"${U[@]}" "$PHYSMEM_BIN/physmemctl" free "$1" >/dev/null 2>&1 || errs="$errs free $1 failed;"
id=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" --json alloc 64K --name q5 --device "$edu" 2>&1 | jq -r .id)
[ -n "$id" ] && [ "$id" != null ] || errs="$errs fifth after a Free refused;"
for i in $2 $3 $4 $id; do
	"${U[@]}" "$PHYSMEM_BIN/physmemctl" free "$i" >/dev/null 2>&1 || errs="$errs free $i failed;"
done
if [ -z "$errs" ] && wait_for 10 bindings_are "$b0"; then
	res $t PASS "4 bindings, the fifth QuotaExceeded (no buffer left), allowed again after a Free"
else
	res $t FAIL "${errs:-bindings $(cat $STATS/bindings), were $b0}"
fi

# ---- daemon-bind-revoked ----
# edu removed (sysfs) under a live binding: Describe marks it revoked, with no
# segments; a new Bind is NoSuchDevice; after a rescan the owner unbinds the
# revoked binding and frees the buffer. Last: it changes the device.
t=daemon-bind-revoked
errs=
id=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" --json alloc 64K --name rev --device "$edu" 2>&1 | jq -r .id)
if [ -z "$id" ] || [ "$id" = null ]; then
	errs="alloc --device failed;"
else
	echo 1 >"/sys/bus/pci/devices/$edu/remove"
	o=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" --json show "$id" 2>&1)
	echo "$o" | jq -e '.devices | length == 1 and .[0].revoked == true and .[0].segments == null' >/dev/null 2>&1 ||
		errs="$errs show after remove: $(echo "$o" | jq -c .devices 2>/dev/null || echo "$o");"
	o=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" show "$id" 2>&1)
	[[ $o == *"REVOKED"* ]] || errs="$errs show (text) after remove: no REVOKED;"
	o=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" alloc 4096 --device "$edu" 2>&1)
	[[ $o == *"no such device: $edu"* ]] || errs="$errs alloc --device of the removed device: $o;"
	echo 1 >/sys/bus/pci/rescan
	wait_for 10 test -e "/sys/bus/pci/devices/$edu" || errs="$errs $edu not back after rescan;"
	o=$("${U[@]}" "$PHYSMEM_BIN/physmemctl" unbind "$id" "$edu" 2>&1) || errs="$errs unbind of the revoked binding: $o;"
	"${U[@]}" "$PHYSMEM_BIN/physmemctl" free "$id" >/dev/null 2>&1 || errs="$errs free failed;"
fi
if [ -z "$errs" ] && wait_for 10 bindings_are "$b0"; then
	res $t PASS "revoked: true and no segments after remove, NoSuchDevice while gone, unbound after rescan"
else
	res $t FAIL "$(echo "${errs:-bindings $(cat $STATS/bindings), were $b0}" | cut -c1-500)"
fi

kill -TERM "$DPID"
wait "$DPID"
drc=$?
if [ $drc -ne 0 ] || grep -q '^physmemd: error:' "$DLOG"; then
	failed=1
	echo "physmemd exit $drc"
fi
if [ $failed -ne 0 ]; then
	echo "---- physmemd log ----"
	tail -n 80 "$DLOG" | sed 's/^/physmemd-log: /'
fi
exit 0
