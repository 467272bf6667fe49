#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Named buffers survive a daemon restart through the fd store.

This plays systemd's side of the protocol as sd_notify(3) and
sd_listen_fds_with_names(3) define it: a NOTIFY_SOCKET datagram socket that
keeps fds sent with FDSTORE=1/FDNAME= (and drops them on FDSTOREREMOVE=1),
and a restart that hands the listening socket plus the stored fds back with
LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID. The same behaviour under a real systemd
is proved by the packaging VM test.

usage: fdstore.py --daemon PATH [--case restart|ids]
"""
import argparse
import array
import mmap
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from varlink_raw import call as call_on, connect

failures = 0
passes = 0
NOBODY = 65534


def check(cond, what):
    global failures, passes
    print(("ok - " if cond else "not ok - ") + what)
    if cond:
        passes += 1
    else:
        failures += 1
    return cond


class FakeSystemd:
    def __init__(self, d):
        self.notify_path = os.path.join(d, "notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.listen_path = os.path.join(d, "physmemd.sock")
        self.listen = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listen.bind(self.listen_path)
        self.listen.listen(16)
        self.store = {}          # name -> our dup of the fd
        self.states = []
        self.lock = threading.Lock()
        self.received = 0
        # Like systemd, read notifications at once: a full datagram queue
        # would block the daemon in sd_notify().
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            data, anc, _, _ = self.notify.recvmsg(4096, socket.CMSG_SPACE(4 * 16))
            with self.lock:
                self.handle(data, anc)
                self.received += 1

    def pump(self, timeout=0.3):
        """Wait until no notification has arrived for `timeout` seconds."""
        while True:
            before = self.received
            time.sleep(timeout)
            if self.received == before:
                return

    def handle(self, data, anc):
        if True:
            fds = []
            for level, typ, payload in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(payload[:len(payload) - len(payload) % 4])
                    fds += list(a)
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            self.states.append(fields)
            name = fields.get("FDNAME", "stored")
            if fields.get("FDSTOREREMOVE") == "1":
                old = self.store.pop(name, None)
                if old is not None:
                    os.close(old)
            if fields.get("FDSTORE") == "1":
                for fd in fds:
                    old = self.store.pop(name, None)   # one fd per name, as we use it
                    if old is not None:
                        os.close(old)
                    self.store[name] = fd
            elif fds:
                for fd in fds:
                    os.close(fd)

    def wait_for(self, key, value, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if any(s.get(key) == value for s in self.states):
                    return True
            time.sleep(0.05)
        return False

    def start(self, daemon):
        """Start the daemon as systemd would: socket first, then the stored fds."""
        with self.lock:
            names = ["physmemd.socket"] + list(self.store)
            srcs = [self.listen.fileno()] + list(self.store.values())
            self.states = []

        def place_fds():
            # Move the fds to 3, 4, ... in order, via high numbers to avoid clashes.
            tmp = [os.dup2(fd, 100 + i) for i, fd in enumerate(srcs)]
            for i, fd in enumerate(tmp):
                os.dup2(fd, 3 + i)
                os.close(fd)

        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path, LISTEN_FDS=str(len(srcs)),
                   LISTEN_FDNAMES=":".join(names))
        return subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ exec "$0" -v', daemon], env=env,
                                preexec_fn=place_fds, pass_fds=tuple(range(3, 3 + len(srcs))))


def call(path, method, params=None):
    s = connect(path)
    return s, call_on(s, method, params)


def allocate_as(uid, path, params):
    """Allocate as another uid (a forked child that drops to it); the buffer's id."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            s, (r, fds) = call(path, "io.physmem.Manager.Allocate", params)
            os.write(wr, str(r["parameters"]["buffer"]["id"]).encode())
        finally:
            os._exit(0)
    os.close(wr)
    out = os.read(rd, 64)
    os.close(rd)
    os.waitpid(pid, 0)
    return int(out) if out else None


def stop(p):
    p.send_signal(signal.SIGTERM)
    return p.wait(timeout=20)


def case_ids(daemon):
    """Ids given out before a restart (or a crash), named or not, never come back after it."""
    sd = FakeSystemd(tempfile.mkdtemp(prefix="physmem-fdstore-ids-"))
    seen = set()

    def alloc(conn, name=None):
        params = {"size": 4096}
        if name:
            params["name"] = name
        r, fds = call_on(conn, "io.physmem.Manager.Allocate", params)
        for fd in fds:
            os.close(fd)
        return r["parameters"]["buffer"]["id"]

    def restart(p, how):
        if how == "crash":
            p.kill()
            p.wait(timeout=20)
        else:
            check(stop(p) == 0, "the daemon exits 0 on SIGTERM")
        sd.pump()
        p = sd.start(daemon)
        check(sd.wait_for("READY", "1"), f"the daemon is ready again after a {how}")
        return p

    p = sd.start(daemon)
    check(sd.wait_for("READY", "1"), "first daemon is ready (READY=1)")
    conn = connect(sd.listen_path)
    # Named buffers change the metadata; unnamed ones given out after the
    # last such change must not be forgotten either.
    seen.add(alloc(conn, "first"))
    seen.update(alloc(conn) for _ in range(5))
    tmp = alloc(conn, "tmp")
    seen.add(tmp)
    call_on(conn, "io.physmem.Manager.Free", {"id": tmp})
    seen.update(alloc(conn) for _ in range(3))
    check(len(seen) == 10, f"ten distinct ids before the restart: {sorted(seen)}")
    conn.close()
    p = restart(p, "restart")

    conn = connect(sd.listen_path)
    new = [alloc(conn) for _ in range(10)] + [alloc(conn, "second")]
    check(not set(new) & seen, f"no id comes back after a restart: before {sorted(seen)}, after {new}")
    seen.update(new)
    seen.update(alloc(conn) for _ in range(3))
    p = restart(p, "crash")
    conn.close()

    conn = connect(sd.listen_path)
    new = [alloc(conn) for _ in range(10)]
    check(not set(new) & seen, f"no id comes back after a crash (SIGKILL): before {sorted(seen)}, after {new}")
    conn.close()
    check(stop(p) == 0, "last daemon exits 0 on SIGTERM")
    print(f"{passes} passed, {failures} failed")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--case", choices=("restart", "ids"), default="restart")
    args = ap.parse_args()
    if args.case == "ids":
        return case_ids(args.daemon)
    d = tempfile.mkdtemp(prefix="physmem-fdstore-")
    sd = FakeSystemd(d)

    p = sd.start(args.daemon)
    check(sd.wait_for("READY", "1"), "first daemon is ready (READY=1)")
    path = sd.listen_path

    conn, (r, fds) = call(path, "io.physmem.Manager.Allocate", {"size": 1 << 20, "name": "keep"})
    keep_id = r["parameters"]["buffer"]["id"]
    mapping = mmap.mmap(fds[0], 1 << 20)
    os.close(fds[0])
    pattern = bytes((i * 7) & 0xff for i in range(1 << 20))
    mapping[:] = pattern
    r, fds = call_on(conn, "io.physmem.Manager.Allocate", {"size": 8192, "name": "gone"})
    gone_id = r["parameters"]["buffer"]["id"]
    os.close(fds[0])
    call_on(conn, "io.physmem.Manager.Free", {"id": gone_id})
    r, fds = call_on(conn, "io.physmem.Manager.Allocate", {"size": 8192})
    os.close(fds[0])
    # Names are per owner: another uid's "keep" is stored and restored too.
    other_id = None
    if os.geteuid() == 0:
        os.chmod(d, 0o755)                          # as physmemd.socket: anyone may connect
        os.chmod(path, 0o666)
        other_id = allocate_as(NOBODY, path, {"size": 4096, "name": "keep"})
    if os.geteuid() == 0:
        check(other_id is not None, f"uid {NOBODY} has its own buffer named 'keep'")
    conn.close()
    sd.pump()
    check(f"buf-{keep_id}" in sd.store, "the named buffer's fd is in the store")
    check(f"buf-{gone_id}" not in sd.store, "a freed named buffer was taken out (FDSTOREREMOVE)")
    check(len([n for n in sd.store if n.startswith("buf-")]) == (2 if other_id else 1),
          "unnamed buffers are not stored")
    check("registry" in sd.store, "the registry's metadata is stored")

    check(stop(p) == 0, "first daemon exits 0 on SIGTERM")
    sd.pump()
    check(any(st.get("STOPPING") == "1" for st in sd.states), "the daemon said STOPPING=1")
    check(mapping[:] == pattern, "the client's mapping kept its data while no daemon ran")

    p = sd.start(args.daemon)
    check(sd.wait_for("READY", "1"), "second daemon is ready with the stored fds")
    conn, (r, fds) = call(path, "io.physmem.Manager.Import", {"name": "keep", "owner": 0})
    check("error" not in r and len(fds) == 1, "the buffer can be imported again after the restart")
    if fds:
        buf = r["parameters"]["buffer"]
        check(buf["id"] == keep_id and buf["size"] == 1 << 20, "with its id and size")
        m2 = mmap.mmap(fds[0], 1 << 20)
        os.close(fds[0])
        check(m2[:] == pattern, "and its data")
        m2[:5] = b"hello"
        check(mapping[:5] == b"hello", "the old mapping and the new one share the same memory")
        m2.close()
    # Restored buffers are their owners' again: root's List has root's (uid 65534's is not root's).
    r, _ = call_on(conn, "io.physmem.Manager.List")
    check([b["id"] for b in r["parameters"]["buffers"]] == [keep_id], "root's List has its restored buffer alone")
    if other_id:
        r, fds = call_on(conn, "io.physmem.Manager.Import", {"name": "keep", "owner": NOBODY})
        check(len(fds) == 1 and r["parameters"]["buffer"]["id"] == other_id and
              r["parameters"]["buffer"]["ownerUid"] == NOBODY, f"so is uid {NOBODY}'s 'keep', under its owner")
        for fd in fds:
            os.close(fd)
        r, _ = call_on(conn, "io.physmem.Manager.Free", {"id": other_id})
    # Free replies before its release job ran: wait (bounded) for it.
    for _ in range(100):
        r, _ = call_on(conn, "io.physmem.Manager.Status")
        if r["parameters"]["buffers"] == 1:
            break
        time.sleep(0.05)
    check(r["parameters"]["buffers"] == 1, "only the named buffers came back")
    r, fds = call_on(conn, "io.physmem.Manager.Allocate", {"size": 4096})
    check(r["parameters"]["buffer"]["id"] > gone_id, "new ids do not reuse old ones")
    for fd in fds:
        os.close(fd)
    r, _ = call_on(conn, "io.physmem.Manager.Free", {"id": keep_id})
    check("error" not in r, "its owner can free it")
    conn.close()
    sd.pump()
    check(not [n for n in sd.store if n.startswith("buf-")], "and it left the store")
    check(stop(p) == 0, "second daemon exits 0 on SIGTERM")
    mapping.close()
    print(f"{passes} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
