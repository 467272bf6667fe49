#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Nothing a client sends can block the daemon, its logging included.

At log-level=debug every call logs its method, and every Allocate and Free
its buffer. The daemon's stderr here is a socket (as under systemd, where it
is journald's stream) or a pipe, with a small buffer, that this test does not
read while one client makes 400 Allocate + Free pairs and a Status. Every call
must still be answered. Then the test reads what reached the reader: whole
lines only, in the expected format, and a warning that counts the lines that
were dropped, so that lines written plus lines counted as dropped are exactly
the lines logged.

Cases "pipe-other-owner" (the daemon as another user than the pipe's, which
it cannot open again non-blocking) and "fifo-reader-late" (a FIFO with no
reader when the daemon starts) are the pipe case where that reopening is
not simple. Case "pty-other-owner": the same with a terminal, which then
gets one line that says why it gets no more.

Case "default-level": at the default level (info) those calls log nothing, so
that a client cannot spend journald's rate limit for the daemon (10,000 lines
in 30 s by default), after which its warnings would be dropped too.

Case "client-lines-limited": lines a client causes at will at the default
level (here: refused connections) are at most 20 a second; the next line
after that second says how many were not logged, exactly.

usage: log_stall.py --daemon PHYSMEMD {socket,journal,pipe,pipe-other-owner,fifo-reader-late,
                                      pty-other-owner,default-level,client-lines-limited}
"""
import argparse
import fcntl
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import shutil
import time

from clients import Failure, check, NOBODY
from varlink_raw import call, connect

MANAGER = "io.physmem.Manager."
PAIRS = 400
CALL_TIMEOUT = 30       # seconds; a blocked daemon never answers
F_SETPIPE_SZ = 1031


class LogDaemon:
    """physmemd (memfd backend) on a socket in a directory of its own, its
    stderr on the fd err; as uid 65534 when other_user. cleanup() always."""

    def __init__(self, daemon, err, settings=(), other_user=False, env=None):
        self.tmp = tempfile.mkdtemp(prefix="physmem-log-")
        self.path = os.path.join(self.tmp, "s")
        prefix = []
        if other_user:
            os.chown(self.tmp, NOBODY, NOBODY)
            os.chmod(self.tmp, 0o755)
            prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        args = prefix + [daemon, "--socket", self.path, "--backend", "memfd"]
        for setting in settings:
            args += ["--set", setting]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                     env=env)

    def connect(self):
        deadline = time.monotonic() + 20
        while not os.path.exists(self.path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise Failure("physmemd did not start")
            time.sleep(0.05)
        s = connect(self.path)
        s.settimeout(CALL_TIMEOUT)
        return s

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=20)
        check(rc == 0, f"physmemd exits 0 on SIGTERM (got {rc})")

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def pair(s, i):
    try:
        r, fds = call(s, MANAGER + "Allocate", {"size": 4096})
        for fd in fds:
            os.close(fd)
        if "error" in r:
            raise Failure(f"Allocate {i}: {r['error']}")
        f, _ = call(s, MANAGER + "Free", {"id": r["parameters"]["buffer"]["id"]})
        if "error" in f:
            raise Failure(f"Free {i}: {f['error']}")
    except socket.timeout:
        raise Failure(f"pair {i}: no answer in {CALL_TIMEOUT} s while nobody reads the daemon's stderr")


def read_available(fd):
    data = b""
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        data += chunk
    return data


def pty_other_owner(daemon):
    """The daemon as uid 65534 on root's terminal, which nobody reads: it
    cannot open it again non-blocking, and poll() on a terminal promises room
    for one byte, not a line; so it says so once, at start, and writes no
    more to it (helper-65: it stopped the loop after 15 s before)."""
    master, slave = os.openpty()
    os.fchmod(slave, 0o620)
    d = LogDaemon(daemon, slave, ["log-level=debug"], other_user=True)
    os.close(slave)
    try:
        s = d.connect()
        for i in range(PAIRS):
            pair(s, i)
        s.close()
        check(True, f"{PAIRS} pairs answered with stderr on a terminal nobody reads")
        data = read_available(master)
        d.stop()
    finally:
        d.cleanup()
        os.close(master)
    lines = data.decode(errors="replace").splitlines()
    check(len(lines) == 1 and "cannot be opened again non-blocking (Permission denied): no further line" in lines[0],
          f"the terminal got one line, which says why ({lines[:3]})")


def log_lines(d, log):
    d.stop()
    log.seek(0)
    return log.read().splitlines()


def default_level(daemon):
    log = tempfile.TemporaryFile("w+")
    d = LogDaemon(daemon, log)
    try:
        s = d.connect()
        for i in range(PAIRS):
            pair(s, i)
        call(s, MANAGER + "Status")
        s.close()
        lines = log_lines(d, log)
    finally:
        d.cleanup()
    per_call = [l for l in lines if re.search(r"buffer \d+:|io\.physmem\.Manager|connection \d+", l)]
    check(lines and not per_call,
          f"at the default level {PAIRS} pairs log no line of their own ({len(lines)} lines; first: {per_call[:1]})")


def client_lines_limited(daemon):
    log = tempfile.TemporaryFile("w+")
    d = LogDaemon(daemon, log, ["max-connections-per-uid=1"])
    refused = 0

    def refuse():
        nonlocal refused
        c = connect(d.path)
        c.settimeout(CALL_TIMEOUT)
        closed = c.recv(1) == b""
        c.close()
        if not closed:
            raise Failure("a connection over the per-uid limit is closed")
        refused += 1

    try:
        s = d.connect()
        call(s, MANAGER + "Status")
        for _ in range(100):
            refuse()
        time.sleep(1.2)         # the second of the last suppressed line is over
        refuse()
        s.close()
        lines = log_lines(d, log)
    finally:
        d.cleanup()
    written = sum(1 for l in lines if "refusing connection from uid" in l)
    notes = [int(m.group(1)) for l in lines if (m := re.search(r"(\d+) log lines about clients not logged", l))]
    check(written <= 2 * 20 + 1, f"{refused} refused connections logged at most 20 lines a second ({written})")
    check(notes and written + sum(notes) == refused,
          f"the rest were counted: {written} written + {sum(notes)} not logged = {refused}")


def stderr_for(kind, env):
    """(the reader's fd or None until it opens, the daemon's fd, the FIFO's path or None)."""
    if kind == "fifo-reader-late":
        # A FIFO whose reader comes after the daemon starts (opening it
        # write-only and non-blocking fails then).
        fifo = os.path.join(tempfile.mkdtemp(prefix="physmem-fifo-"), "fifo")
        os.mkfifo(fifo)
        first = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        wfd = os.open(fifo, os.O_WRONLY)
        os.close(first)
        return None, wfd, fifo
    if kind in ("socket", "journal"):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # The kernel's smallest send buffer: a few dozen lines fill it.
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)
        rfd, wfd = ours.detach(), theirs.detach()
        if kind == "journal":
            st = os.fstat(wfd)
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        return rfd, wfd, None
    # A pipe; for "pipe-other-owner" the daemon runs as uid 65534 on this
    # pipe root made: it cannot open it again (EACCES), so it writes only
    # when poll() finds room.
    rfd, wfd = os.pipe()
    fcntl.fcntl(wfd, F_SETPIPE_SZ, 4096)
    return rfd, wfd, None


def run(daemon, kind):
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    rfd, wfd, fifo = stderr_for(kind, env)
    d = LogDaemon(daemon, wfd, ["log-level=debug"], other_user=kind == "pipe-other-owner", env=env)
    os.close(wfd)
    data = b""
    try:
        s = d.connect()
        for i in range(PAIRS):
            pair(s, i)
        if fifo:
            rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            r, _ = call(s, MANAGER + "Status")
        except socket.timeout:
            raise Failure("Status: no answer while nobody reads the daemon's stderr")
        check("error" not in r, f"{PAIRS} Allocate + Free pairs and a Status answered with stderr unread ({kind})")
        # The reader catches up; the next line says how many were dropped.
        data = read_available(rfd)
        pair(s, PAIRS)
        s.close()
        d.stop()
        if fifo:
            # The daemon held the FIFO open read-write: no end of file to wait for.
            data += read_available(rfd)
        else:
            while chunk := os.read(rfd, 1 << 16):
                data += chunk
    finally:
        d.cleanup()
        if rfd is not None:
            os.close(rfd)
        if fifo:
            shutil.rmtree(os.path.dirname(fifo), ignore_errors=True)

    text = data.decode()
    check(text.endswith("\n"), "the log ends with a whole line")
    lines = text[:-1].split("\n")
    form = re.compile(r"<[3-7]>\S" if kind == "journal" else r"physmemd: (error|warning|notice|info|debug): \S")
    bad = [l for l in lines if not form.match(l)]
    check(not bad, f"every line is whole and has its prefix ({len(lines)} lines; first bad: {bad[:1]})")
    # At debug the connection logs its peer, each call its method, and each pair its buffer's two lines.
    calls = sum(1 for l in lines if re.search(r"connection \d+: (io\.physmem\.Manager\.\w+|uid \d+ gid \d+ pid \d+)$", l))
    allocs = sum(1 for l in lines if re.search(r"buffer \d+: 4096 bytes for uid \d+ pid", l))
    frees = sum(1 for l in lines if re.search(r"buffer \d+: freed \(4096 bytes", l))
    dropped = [int(m.group(1)) for l in lines if (m := re.search(r"(\d+) log lines dropped", l))]
    check(dropped and sum(dropped) > 0, f"the stall dropped lines and said so ({sum(dropped)} in {len(dropped)} warnings)")
    logged = 4 * (PAIRS + 1) + 1 + 1
    if kind == "pipe-other-owner":
        check(any("cannot be opened again non-blocking (Permission denied)" in l for l in lines),
              "the daemon says it writes after poll(), the pipe being another user's")
    check(calls + allocs + frees + sum(dropped) == logged,
          f"written + dropped = logged: {calls} + {allocs} + {frees} + {sum(dropped)} = {logged}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True)
    ap.add_argument("kind", choices=["socket", "journal", "pipe", "pipe-other-owner", "fifo-reader-late",
                                     "pty-other-owner", "default-level", "client-lines-limited"])
    args = ap.parse_args()
    try:
        if args.kind == "pty-other-owner":
            pty_other_owner(args.daemon)
        elif args.kind == "default-level":
            default_level(args.daemon)
        elif args.kind == "client-lines-limited":
            client_lines_limited(args.daemon)
        else:
            run(args.daemon, args.kind)
    except Failure as e:
        print(f"not ok - {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
