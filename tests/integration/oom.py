#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Bad luck with memory gets a clear error and loses nothing either.

physmemd runs with failmalloc.so preloaded: for four seconds one allocation
in 20 fails, in the daemon, in json-c (outside its parser, see failmalloc.c),
in libevent and in glibc. Meanwhile eight connections make random calls
(Allocate, named Allocate, Free, List, Status, Describe, Import, Share,
mistyped and oversized calls, closes). Checked:
- the daemon never dies, and exits 0 on SIGTERM after;
- every reply is a whole JSON object with parameters or a named error (json-c's
  printer left text out without saying so when an allocation failed; replies
  went out as {"error":""} or cut short), and a success has every member its
  method always answers (GetInfo, Status and GetInterfaceDescription answered
  {"parameters":{}} when their first object could not be made: helper-64);
- a reply it could not build is AllocationFailed "the daemon is out of memory"
  (before, json-c aborted on the container it could not make);
- a call is answered, or its connection closed: never left waiting;
- once allocations succeed again, Status, Allocate and Free work.

With --ctl: physmemctl itself under the shim (from its first allocation,
one in 5 to 44), against a daemon that is not: 600 commands (list, status,
alloc, show, selftest, with and without --json); each exits 0 or with a one-line
"physmemctl: ..." message and a code under 128, never on a signal (--json
aborted on the object json-c could not make).

With --lib: physmem-oom-client under the shim, on a long-lived connection: each
allocation inside an Allocate (unnamed, then named) failed in turn; each
call fails with an errno and a message or succeeds, and the daemon keeps
no buffer of the caller's that the caller did not get.

usage: oom.py --build BUILD_DIR [--seed N] [--rounds N] [--ctl | --lib]
"""
import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from clients import Failure, check
from varlink_raw import Closed

MANAGER = "io.physmem.Manager."
FAIL_FROM_MS, FAIL_TO_MS, FAIL_EVERY = 1000, 5000, 20
CALL_TIMEOUT = 20


def receive(sock):
    """One reply, as bytes without its NUL (the check is on the text itself)."""
    buf, fds = b"", []
    while not buf.endswith(b"\0"):
        data, anc, _, _ = sock.recvmsg(1 << 16, socket.CMSG_SPACE(4 * 253))
        for level, typ, payload in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds += [int.from_bytes(payload[i:i + 4], sys.byteorder) for i in range(0, len(payload) - 3, 4)]
        if not data:
            for fd in fds:
                os.close(fd)
            raise Closed("closed")
        buf += data
    for fd in fds:
        os.close(fd)
    return buf[:-1]


def send(sock, method, params=None):
    sock.sendall(json.dumps({"method": method, "parameters": params or {}}).encode() + b"\0")


class Load:
    def __init__(self, path, seed):
        self.path = path
        self.rnd = random.Random(seed)
        self.conns = []
        self.ids = []
        self.counts = {}
        self.bad = []

    def count(self, what):
        self.counts[what] = self.counts.get(what, 0) + 1

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(CALL_TIMEOUT)
        try:
            s.connect(self.path)
        except OSError:
            s.close()
            self.count("connect failed")
            return
        self.conns.append(s)

    def drop(self, s):
        self.conns.remove(s)
        s.close()

    def one(self):
        if len(self.conns) < 8:
            self.connect()
            return
        s = self.rnd.choice(self.conns)
        op = self.rnd.choice(["alloc", "alloc", "named", "free", "list", "status", "describe", "getinfo",
                              "import", "share", "mistyped", "oversized", "close"])
        if op == "close":
            self.drop(s)
            return
        try:
            if op == "alloc":
                send(s, MANAGER + "Allocate", {"size": self.rnd.choice([4096, 65536, 1 << 20])})
            elif op == "named":
                send(s, MANAGER + "Allocate", {"size": 4096, "name": "n%d" % self.rnd.randrange(40),
                                               "allowUids": [65534, 1, 2]})
            elif op == "free":
                send(s, MANAGER + "Free", {"id": self.ids.pop(self.rnd.randrange(len(self.ids))) if self.ids else 1})
            elif op == "list":
                send(s, MANAGER + "List", {"all": True})
            elif op == "status":
                send(s, MANAGER + "Status")
            elif op == "describe":
                send(s, "org.varlink.service.GetInterfaceDescription", {"interface": "io.physmem.Manager"})
            elif op == "getinfo":
                send(s, "org.varlink.service.GetInfo")
            elif op == "import":
                send(s, MANAGER + "Import", {"name": "n%d" % self.rnd.randrange(40), "ownerUid": 0})
            elif op == "share":
                send(s, MANAGER + "Share", {"id": self.rnd.choice(self.ids) if self.ids else 1, "allowUids": [3]})
            elif op == "mistyped":
                send(s, MANAGER + "Allocate", {"size": "big"})
            elif op == "oversized":
                send(s, MANAGER + "Status", {"x": list(range(3000))})
            text = receive(s)
        except socket.timeout:
            raise Failure(f"{op}: neither answered nor closed in {CALL_TIMEOUT} s")
        except (Closed, OSError):
            self.count("closed")
            if s in self.conns:
                self.drop(s)
            return
        try:
            r = json.loads(text)
        except ValueError:
            self.bad.append(text[:200])
            return
        if not isinstance(r, dict) or not ("parameters" in r or "error" in r) or \
                ("error" in r and not re.fullmatch(r"[A-Za-z0-9_.]+\.[A-Z][A-Za-z0-9]*", str(r["error"]))):
            self.bad.append(text[:200])
            return
        if "error" in r:
            self.count(r["error"])
            if r["error"] == MANAGER + "AllocationFailed" and \
                    r.get("parameters", {}).get("reason") == "the daemon is out of memory":
                self.count("out of memory")
            if op == "oversized":
                self.drop(s)       # the daemon hangs up after that one
            return
        # A reply must be whole: what each method always answers is there.
        need = {"status": ("version", "quota", "connections"), "describe": ("description",),
                "getinfo": ("vendor", "interfaces"), "list": ("buffers",),
                "alloc": ("buffer",), "named": ("buffer",)}.get(op, ())
        missing = [k for k in need if k not in r.get("parameters", {})]
        if missing:
            self.bad.append(f"{op} answered without {missing}: {text[:120]!r}")
            return
        self.count("ok")
        if op in ("alloc", "named") and "buffer" in r.get("parameters", {}):
            self.ids.append(r["parameters"]["buffer"]["id"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--ctl", action="store_true")
    ap.add_argument("--lib", action="store_true")
    args = ap.parse_args()
    shim = os.path.join(args.build, "tests", "integration", "libfailmalloc.so")
    if not os.path.exists(shim):
        print(f"SKIP: no {shim}: sanitizer builds leave it out (their allocator cannot be preloaded over)")
        return 77
    if args.ctl:
        return ctl_rounds(args.build, shim)
    if args.lib:
        return lib_sweep(args.build, shim)
    for seed in range(args.seed, args.seed + args.rounds):
        print(f"# round {seed}: a fresh daemon, workload seed {seed}")
        rc = one_round(args.build, shim, seed)
        if rc:
            return rc
    return 0


@contextlib.contextmanager
def plain_daemon(build, prefix):
    """A daemon without the shim, on a socket of its own: yields the socket's path."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    path = os.path.join(tmp, "s")
    log = open(os.path.join(tmp, "log"), "w+")
    daemon = subprocess.Popen([os.path.join(build, "daemon", "physmemd"), "--socket", path, "--backend", "memfd"],
                              stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(path):
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise Failure("physmemd did not start")
            time.sleep(0.02)
        yield path
        if daemon.poll() is not None:
            raise Failure(f"physmemd died (status {daemon.returncode})")
    except Failure:
        log.seek(0)
        print("---- physmemd log (end) ----\n" + log.read()[-3000:])
        raise
    finally:
        daemon.kill()
        daemon.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def lib_sweep(build, shim):
    """physmem-oom-client under the shim, against a daemon that is not."""
    try:
        with plain_daemon(build, "physmem-oom-lib-") as path:
            env = dict(os.environ, LD_PRELOAD=shim, PHYSMEM_FAILMALLOC_EVERY="0")
            r = subprocess.run([os.path.join(build, "tests", "integration", "physmem-oom-client"), "--socket", path],
                               capture_output=True, text=True, env=env, timeout=100)
            print(r.stdout, end="")
            print(r.stderr, end="")
            if r.returncode != 0:
                raise Failure(f"physmem-oom-client exited {r.returncode}")
    except Failure as e:
        print(f"not ok - {e}")
        return 1
    return 0


def ctl_rounds(build, shim):
    try:
        with plain_daemon(build, "physmem-oom-ctl-") as path:
            ctl_commands(os.path.join(build, "client", "physmemctl"), path, shim)
    except Failure as e:
        print(f"not ok - {e}")
        return 1
    return 0


def ctl_commands(ctl, path, shim):
    """600 physmemctl commands under the shim against the daemon at path."""
    counts, json_ok = {}, 0
    keep = subprocess.run([ctl, "--socket", path, "--json", "alloc", "4096", "--name", "keep"],
                          capture_output=True, text=True, timeout=CALL_TIMEOUT)
    check(keep.returncode == 0, f"a named buffer to describe ({keep.stderr.strip()})")
    kept = json.loads(keep.stdout)["id"]
    commands = [["list"], ["status"], ["alloc", "8192"], ["show", str(kept)], ["selftest", "64K"]]
    for i in range(600):
        argv = [ctl, "--socket", path] + (["--json"] if i % 2 else []) + commands[(i // 2) % len(commands)]
        env = dict(os.environ, LD_PRELOAD=shim, PHYSMEM_FAILMALLOC_FROM_MS="0",
                   PHYSMEM_FAILMALLOC_TO_MS="100000", PHYSMEM_FAILMALLOC_EVERY=str(5 + i % 40))
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=CALL_TIMEOUT)
        err = [l for l in r.stderr.splitlines() if not l.startswith("failmalloc:")]
        if r.returncode < 0 or r.returncode >= 128:
            raise Failure(f"{' '.join(argv[3:])}: physmemctl died (status {r.returncode}): {err[-2:]}")
        if r.returncode != 0 and (len(err) != 1 or not err[0].startswith("physmemctl: ")):
            raise Failure(f"{' '.join(argv[3:])}: exit {r.returncode} without one line saying why: {err}")
        if r.returncode == 0 and "--json" in argv:
            try:
                json.loads(r.stdout)
            except ValueError:
                raise Failure(f"{' '.join(argv[3:])}: exit 0 with output that is not whole JSON: {r.stdout!r}")
            json_ok += 1
        counts[r.returncode] = counts.get(r.returncode, 0) + 1
    print("# exit codes:", counts, "; whole JSON outputs:", json_ok)
    check(counts.get(0, 0) > 0 and sum(n for c, n in counts.items() if c) > 0,
          "600 physmemctl commands under failing allocations: each succeeded or said why in one line")
    check(json_ok > 0, "every --json command that succeeded printed whole JSON")


def one_round(build, shim, seed):
    tmp = tempfile.mkdtemp(prefix="physmem-oom-")
    path = os.path.join(tmp, "s")
    log = open(os.path.join(tmp, "log"), "w+")
    env = dict(os.environ, LD_PRELOAD=shim, PHYSMEM_FAILMALLOC_FROM_MS=str(FAIL_FROM_MS),
               PHYSMEM_FAILMALLOC_TO_MS=str(FAIL_TO_MS), PHYSMEM_FAILMALLOC_EVERY=str(FAIL_EVERY))
    proc = subprocess.Popen([os.path.join(build, "daemon", "physmemd"), "--socket", path, "--backend", "memfd"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    started = time.monotonic()
    load = Load(path, seed)
    try:
        while not os.path.exists(path):
            if proc.poll() is not None or time.monotonic() - started > 20:
                raise Failure("physmemd did not start")
            time.sleep(0.02)
        if time.monotonic() - started > FAIL_FROM_MS / 1000:
            print("SKIP: physmemd took longer to start than the shim waits before failing allocations")
            return 77
        while time.monotonic() - started < FAIL_TO_MS / 1000 + 0.5:
            load.one()
            check_alive = proc.poll()
            if check_alive is not None:
                raise Failure(f"physmemd died (status {check_alive}) while allocations failed")
        print("# replies:", load.counts)
        check(not load.bad, f"every reply is a JSON object with parameters or a named error ({load.bad[:3]})")
        check(load.counts.get("out of memory", 0) > 0,
              "replies that could not be built are AllocationFailed 'the daemon is out of memory'")
        for s in list(load.conns):
            load.drop(s)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(CALL_TIMEOUT)
        try:
            s.connect(path)
            send(s, MANAGER + "Status")
            st = json.loads(receive(s))
            send(s, MANAGER + "Allocate", {"size": 4096})
            a = json.loads(receive(s))
            check("parameters" in st and "parameters" in a, "after it, a new connection's Status and Allocate work")
            send(s, MANAGER + "Free", {"id": a["parameters"]["buffer"]["id"]})
            check("parameters" in json.loads(receive(s)), "and Free")
        except (socket.timeout, Closed, OSError) as e:
            raise Failure(f"after it, a new connection is not served: {e!r}")
        s.close()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        check(rc == 0, f"physmemd exits 0 on SIGTERM (got {rc})")
        log.seek(0)
        text = log.read()
        m = re.search(r"failmalloc: (\d+) failures", text)
        check(m and int(m.group(1)) >= 100, f"allocations did fail ({m.group(1) if m else 'no report'})")
    except Failure as e:
        print(f"not ok - {e}")
        log.seek(0)
        print("---- physmemd log (end) ----\n" + log.read()[-3000:])
        return 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
