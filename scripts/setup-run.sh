#!/usr/bin/env bash
# Set up, build, and start physmemd on the memfd backend on this user's own
# socket, in the background, ready for physmemctl. Run again to restart it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${PHYSMEM_BUILD_DIR:-$top/build}

"$top/scripts/setup-deps.sh" run
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF -DPHYSMEM_BUILD_KMOD=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null

base=${XDG_RUNTIME_DIR:-/tmp/physmem-$(id -u)}
mkdir -p -m 0700 "$base"
state=$base/physmem-dev
mkdir -p "$state"
if [ -f "$state/physmemd.pid" ] && kill -0 "$(cat "$state/physmemd.pid")" 2>/dev/null; then
	kill "$(cat "$state/physmemd.pid")"
	sleep 0.5
fi
setsid "$build/daemon/physmemd" --backend memfd >"$state/physmemd.log" 2>&1 </dev/null &
echo $! >"$state/physmemd.pid"

# The dev daemon's own socket (physmem_user_socket_path); named explicitly,
# since clients prefer the system socket when one exists.
if [ "$(id -u)" = 0 ]; then
	sock=/run/physmem/physmemd.sock
elif [ -n "${XDG_RUNTIME_DIR:-}" ]; then
	sock=$XDG_RUNTIME_DIR/physmem/physmemd.sock
else
	sock=/tmp/physmem-$(id -u)/physmemd.sock
fi
ctl=("$build/client/physmemctl" --socket "$sock")
for _ in $(seq 50); do
	"${ctl[@]}" status >/dev/null 2>&1 && break
	sleep 0.1
done
"${ctl[@]}" status
cat <<MSG

physmemd is running (pid $(cat "$state/physmemd.pid"), log: $state/physmemd.log).
Try:  ${ctl[*]} alloc 16M --hold
      ${ctl[*]} list
      ${ctl[*]} selftest
      PHYSMEM_SOCKET=$sock PYTHONPATH=$top/client/python python3 -c 'import physmem; a = physmem.allocate((1024,), "u4"); a[:] = 7; print(a.segments)'
Stop: kill \$(cat $state/physmemd.pid)
MSG
