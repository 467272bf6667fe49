#!/bin/bash
# A standard Varlink client, systemd's varlinkctl, against physmemd.
#
# Debian 12's systemd (252) predates varlinkctl, so this takes Debian 13's
# (systemd 257) from the Debian archive into a private cache, apt state and
# all, without touching the system's apt configuration, and runs it with
# Debian 13's own dynamic loader and libraries.
#
# usage: varlinkctl.sh PHYSMEMD IDL_FILE
set -euo pipefail
daemon=$1
idl=$2
cache=${PHYSMEM_VARLINKCTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/physmem-varlinkctl}
suite=trixie
pkgs=(systemd libsystemd-shared libc6 libssl3t64)
fails=0
passes=0
ok() { echo "ok - $*"; passes=$((passes + 1)); }
bad() { echo "not ok - $*"; fails=$((fails + 1)); }

root=$cache/root
if [ ! -x "$root/usr/bin/varlinkctl" ]; then
	rm -rf "$cache" && mkdir -p "$cache"/{lists/partial,archives/partial,dl}
	echo "deb http://deb.debian.org/debian $suite main" >"$cache/sources.list"
	: >"$cache/status"
	apt=(-o Dir::Etc::sourcelist="$cache/sources.list" -o Dir::Etc::sourceparts=/dev/null
	     -o Dir::State::Lists="$cache/lists" -o Dir::Cache::Archives="$cache/archives"
	     -o Dir::State::status="$cache/status" -o APT::Sandbox::User="$(id -un)")
	if ! apt-get -qq "${apt[@]}" update >"$cache/apt.log" 2>&1; then
		cat "$cache/apt.log"
		echo "SKIP: the Debian archive ($suite) is not reachable, so varlinkctl cannot be fetched"
		exit 77
	fi
	(cd "$cache/dl" && apt-get -qq "${apt[@]}" download "${pkgs[@]}") >>"$cache/apt.log" 2>&1 ||
		{ cat "$cache/apt.log"; echo "FAIL: cannot download ${pkgs[*]} from $suite"; exit 1; }
	mkdir -p "$root.tmp"
	for f in "$cache"/dl/*.deb; do dpkg-deb -x "$f" "$root.tmp"; done
	mv "$root.tmp" "$root"
fi
lib=$root/usr/lib/x86_64-linux-gnu
vctl() { "$lib/ld-linux-x86-64.so.2" --library-path "$lib:$lib/systemd" "$root/usr/bin/varlinkctl" "$@"; }
echo "# $(vctl --version | head -1)"

dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
sock=$dir/physmemd.sock
"$daemon" --socket "$sock" --backend memfd >"$dir/log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done

out=$(vctl info "$sock") && grep -q "io.physmem.Manager" <<<"$out" && grep -q "Product: physmemd" <<<"$out" &&
	ok "varlinkctl info lists io.physmem.Manager" || bad "varlinkctl info: $out"
vctl validate-idl "$idl" >/dev/null && ok "varlinkctl validate-idl accepts the interface file" ||
	bad "validate-idl rejects $idl"
out=$(vctl introspect "$sock" io.physmem.Manager) && grep -q "^method Allocate(" <<<"$out" &&
	grep -q "^error QuotaExceeded(" <<<"$out" && ok "varlinkctl introspect parses what the daemon serves" ||
	bad "introspect: $out"
out=$(vctl list-methods "$sock" io.physmem.Manager) && [ "$(wc -l <<<"$out")" -eq 10 ] &&
	ok "list-methods: 10 methods" || bad "list-methods: $out"
out=$(vctl call "$sock" io.physmem.Manager.Status '{}') && grep -q '"backend":"memfd"' <<<"$out" &&
	ok "call Status" || bad "call Status: $out"
out=$(vctl call "$sock" io.physmem.Manager.Allocate '{"size": 65536, "name": "viavarlinkctl"}') &&
	grep -q '"bufferFileDescriptor":0' <<<"$out" && grep -q '"size":65536' <<<"$out" &&
	ok "call Allocate returns the buffer and its fd index" || bad "call Allocate: $out"
id=$(sed -n 's/.*"buffer":{"id":\([0-9]*\).*/\1/p' <<<"$out")
out=$(vctl call "$sock" io.physmem.Manager.Free "{\"id\": ${id:-0}}") && ok "call Free of the named buffer" ||
	bad "call Free: $out"
if out=$(vctl call "$sock" io.physmem.Manager.Free '{"id": 424242}' 2>&1); then
	bad "Free of an unknown id succeeded: $out"
else
	grep -q "io.physmem.Manager.NoSuchBuffer" <<<"$out" && ok "a named error comes back as such" ||
		bad "unknown id: $out"
fi
if out=$(vctl call "$sock" io.physmem.Manager.Allocate '{"size": "big"}' 2>&1); then
	bad "Allocate with a string size succeeded"
else
	grep -q "InvalidParameter" <<<"$out" && ok "a mistyped parameter: InvalidParameter" || bad "mistyped: $out"
fi
kill "$pid"
wait "$pid" && ok "physmemd exits 0" || bad "physmemd exit status $?"
echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
