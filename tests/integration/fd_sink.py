#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""No fd a client sends can block physmemd.

A client chooses what the last close of an fd it sends does. A TCP socket
with unsent data, a peer that never reads and SO_LINGER {1, 3600} makes
close() wait for an hour; closed on the daemon's event loop it would freeze
the daemon for every user. Each case here hands the daemon such an fd in a
different way and then checks that:
  - another client's Status is answered (a generous liveness timeout: a
    daemon that blocked never answers; nothing here asserts on speed);
  - the stuck sink process is killed (its log line) and replaced by a new
    one that works (a pipe sent later is closed), and the killed one is
    reaped;
  - the blocking sockets were really closed in the end (their peers read
    all the data, then EOF);
  - the daemon's open fds are back to where they started.

Cases (one per run):
  linger   the fd attached to a Status call (refused: Status takes no fds)
  dropped  the fd left in a connection the daemon drops: in half a message
           (stall timeout), queued unread behind a message that is not JSON,
           and queued on a connection refused at the per-uid limit
  fuse     a file on a FUSE mount served here that never answers FLUSH
           (from anyone but this test), attached to a call; needs root and
           /dev/fuse, else it is skipped
  fuse-uid uid A (root, serving FUSE) wedges closer threads with 70 files
           whose FLUSH it never answers and floods /dev/null fds; uid B
           (nobody) must still connect, call, and have its fds closed
  emfile   the daemon runs with a hard fd limit of 1024; while a lingering
           socket wedges the sink, junk fds are sent as fast as the daemon
           takes them: its fd table must never fill, so the stuck sink is
           replaced and everything queued gets closed

Usage: fd_sink.py --daemon PATH/TO/physmemd CASE
Only the Python standard library is used.
"""
import array
import faulthandler
import fcntl
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

IFACE = "io.physmem.Manager"
E_INVALID = "org.varlink.service.InvalidParameter"
SIOCOUTQ = 0x5411
STALL_MS = 1000
MAX_CONN_PER_UID = 4
# Hang detection only: a daemon that blocked in close() never answers.
WAIT = 10.0
# The sink is killed after sink-timeout-ms (default 2 s) without progress.
KILL_WAIT = 30.0


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def send_msg(s, data, fds=()):
    if fds:
        n = s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        if n < len(data):
            s.sendall(data[n:])
    else:
        s.sendall(data)


def call_bytes(method, params=None):
    return json.dumps({"method": method, "parameters": params or {}}).encode() + b"\0"


def read_reply(s, what):
    buf = b""
    s.settimeout(WAIT)
    try:
        while b"\0" not in buf:
            data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(4 * 253))
            for level, typ, payload in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(payload[:len(payload) - len(payload) % 4])
                    for fd in a:
                        os.close(fd)
            check(data, "%s: the daemon closed the connection" % what)
            buf += data
    except socket.timeout:
        raise Failure("%s: no reply within %gs: the daemon is blocked" % (what, WAIT))
    return json.loads(buf.split(b"\0", 1)[0])


def expect_disconnect(s, what):
    s.settimeout(WAIT)
    try:
        while s.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise Failure("%s: the daemon did not drop the connection within %gs" % (what, WAIT))


class Blocker:
    """TCP connections whose close blocks: the listener never accepts or reads."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.made = 0

    def socket(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(self.listener.getsockname())
        s.setblocking(False)
        chunk = b"x" * 65536
        try:
            while True:
                s.send(chunk)
        except BlockingIOError:
            pass
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 3600))
        unsent = array.array("i", [0])
        fcntl.ioctl(s.fileno(), SIOCOUTQ, unsent, True)
        check(unsent[0] > 0, "test setup: the TCP socket has no unsent data, its close would not block")
        self.made += 1
        return s

    def check_all_closed(self):
        """Each blocking socket was closed in the end: its peer reads EOF."""
        self.listener.settimeout(WAIT)
        for i in range(self.made):
            try:
                peer, _ = self.listener.accept()
            except socket.timeout:
                raise Failure("test setup: blocking connection %d is not in the backlog" % i)
            peer.settimeout(KILL_WAIT)
            try:
                while peer.recv(1 << 20):
                    pass
            except socket.timeout:
                raise Failure("a blocking socket the daemon got was never closed")
            except ConnectionResetError:
                pass
            peer.close()


class Daemon:
    def __init__(self, path, settings=(), nofile=None):
        self.dir = tempfile.mkdtemp(prefix="physmem-fd-sink-")
        self.sock = os.path.join(self.dir, "physmemd.sock")
        self.log = open(os.path.join(self.dir, "physmemd.log"), "w+")
        self.proc = subprocess.Popen(
            [path, "--socket", self.sock, "--backend", "memfd",
             "--set", "stall-timeout-ms=%d" % STALL_MS,
             "--set", "max-connections-per-uid=%d" % MAX_CONN_PER_UID] + [a for kv in settings for a in ("--set", kv)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))) if nofile else None)
        deadline = time.monotonic() + WAIT
        while True:
            check(self.proc.poll() is None, "physmemd exited at start:\n" + self.log_text())
            try:
                self.status("start")
                return
            except (FileNotFoundError, ConnectionRefusedError):
                check(time.monotonic() < deadline, "physmemd did not start listening")
                time.sleep(0.05)

    def log_text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(WAIT)
        s.connect(self.sock)
        return s

    def status(self, what):
        s = self.connect()
        try:
            send_msg(s, call_bytes(IFACE + ".Status"))
            r = read_reply(s, what)
            check("error" not in r, "%s: Status failed: %r" % (what, r))
            return r["parameters"]
        finally:
            s.close()

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def children(self):
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                return [int(p) for p in f.read().split()]
        except FileNotFoundError:
            return None

    def idle_fds(self):
        """Open fds with no client connected: counted while only our own
        (accepted, answered) connection is open, minus that one."""
        s = self.connect()
        try:
            deadline = time.monotonic() + WAIT
            while True:
                send_msg(s, call_bytes(IFACE + ".Status"))
                if read_reply(s, "idle")["parameters"]["connections"] == 1:
                    return self.fd_count() - 1
                check(time.monotonic() < deadline, "connections of the case never went away")
                time.sleep(0.05)
        finally:
            s.close()

    def wait_killed_sinks(self, n):
        """Wait for n 'sink ... killed it' lines; returns the killed pids."""
        deadline = time.monotonic() + KILL_WAIT
        while True:
            pids = [int(p) for p in re.findall(r"sink: process (\d+) made no progress .* killed it", self.log_text())]
            if len(pids) >= n:
                return pids
            check(time.monotonic() < deadline, "no stuck sink was killed within %gs" % KILL_WAIT)
            time.sleep(0.1)

    def stop(self):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


def pipe_is_closed_by(d, what):
    """A pipe's write end sent to the daemon gets closed (by a working sink)."""
    r, w = os.pipe()
    s = d.connect()
    try:
        send_msg(s, call_bytes(IFACE + ".Status"), [w])
        os.close(w)
        w = -1
        reply = read_reply(s, what)
        check(reply.get("error") == E_INVALID, "%s: expected InvalidParameter, got %r" % (what, reply))
        os.set_blocking(r, False)
        deadline = time.monotonic() + KILL_WAIT
        while True:
            try:
                if os.read(r, 1) == b"":
                    return
            except BlockingIOError:
                pass
            check(time.monotonic() < deadline, "%s: the pipe sent to the daemon was never closed" % what)
            time.sleep(0.05)
    finally:
        s.close()
        os.close(r)
        if w >= 0:
            os.close(w)


def hand_over(d, s, data, t, before=b""):
    """Send data with t attached (after before, if any) and close our copy of t
    while the daemon is stopped: then the daemon's is the last reference, and
    closing ours can never be the close that blocks (which would hang us)."""
    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        if before:
            send_msg(s, before)
        send_msg(s, data, [t.fileno()])
        t.close()
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)


def case_linger(d, b):
    """The blocking fd attached to a call that takes none."""
    t = b.socket()
    s = d.connect()
    hand_over(d, s, call_bytes(IFACE + ".Status"), t)
    reply = read_reply(s, "the attacker's own call")
    check(reply.get("error") == E_INVALID and reply.get("parameters", {}).get("parameter") == "fileDescriptors",
          "expected InvalidParameter fileDescriptors, got %r" % reply)
    d.status("another client, right after")
    s.close()
    return 1


def case_dropped(d, b):
    """The blocking fd left in a connection the daemon drops, three ways."""
    # 1. Half a message: the fds wait in the daemon for the rest; the stall
    #    timeout drops the connection.
    t = b.socket()
    s = d.connect()
    hand_over(d, s, b'{"method":"' + IFACE.encode() + b'.Status"', t)
    d.status("another client, while half a message waits")
    expect_disconnect(s, "half a message")
    s.close()
    d.status("another client, after the stalled connection was dropped")

    # 2. Queued unread behind a message that is not JSON: the daemon hangs up
    #    after the first, with the fd still in the socket's receive queue.
    #    hand_over() stops the daemon meanwhile, so both are queued first.
    t = b.socket()
    s = d.connect()
    d.status("connection accepted")        # s is accepted by now (FIFO)
    hand_over(d, s, call_bytes(IFACE + ".Status"), t, before=b"{not json\0")
    expect_disconnect(s, "bad message")
    s.close()
    d.status("another client, after the bad message")

    # 3. Queued on a connection refused at the per-uid limit.
    held = [d.connect() for _ in range(MAX_CONN_PER_UID)]
    for h in held:
        send_msg(h, call_bytes(IFACE + ".Status"))
        read_reply(h, "filling the per-uid limit")
    t = b.socket()
    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        s = d.connect()             # in the backlog: the daemon is stopped
        send_msg(s, call_bytes(IFACE + ".Status"), [t.fileno()])
        t.close()                   # while stopped, as in hand_over()
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)
    expect_disconnect(s, "connection over the limit")
    s.close()
    for h in held:
        h.close()
    d.status("another client, after the refused connection")
    return 1


class FuseStall:
    """A one-file FUSE mount served here that never answers FLUSH: the last
    close of that file waits for the answer. Needs root and /dev/fuse."""
    HDR_IN = struct.Struct("IIQQIIIHH")
    HDR_OUT = struct.Struct("IiQ")
    ATTR = struct.Struct("QQQQQQIIIIIIIIII")

    def __init__(self):
        import ctypes
        import threading
        self.mnt = tempfile.mkdtemp(prefix="physmem-fuse-")
        self.dev = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        libc = ctypes.CDLL(None, use_errno=True)
        opts = "fd=%d,rootmode=40000,user_id=0,group_id=0" % self.dev
        if libc.mount(b"physmem-test", self.mnt.encode(), b"fuse", 0, opts.encode()) != 0:
            err = ctypes.get_errno()
            os.close(self.dev)
            os.rmdir(self.mnt)
            raise OSError(err, "mount fuse")
        self.libc = libc
        self.flushes = 0
        self.done = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def attr(self, ino):
        mode = 0o40755 if ino == 1 else 0o100644
        return self.ATTR.pack(ino, 4096 if ino != 1 else 0, 8, 0, 0, 0, 0, 0, 0, mode, 1, 0, 0, 0, 4096, 0)

    def reply(self, unique, body=b"", error=0):
        try:
            os.write(self.dev, self.HDR_OUT.pack(16 + len(body), error, unique) + body)
        except OSError:
            pass    # the request was interrupted meanwhile

    def serve(self):
        while not self.done:
            # Never block in read: the device is released (and the
            # connection aborted) only once no read holds it.
            if not select.select([self.dev], [], [], 0.1)[0]:
                continue
            try:
                req = os.read(self.dev, 1 << 20)
            except OSError:
                return          # unmounted
            _, op, unique, node, _, _, pid, _, _ = self.HDR_IN.unpack_from(req)
            if op == 26:        # INIT
                self.reply(unique, struct.pack("IIIIHHIIHHII", 7, 31, 0, 0, 16, 12, 65536, 1, 0, 0, 0, 0)
                           .ljust(64, b"\0"))
            elif op == 1:       # LOOKUP
                name = req[self.HDR_IN.size:].split(b"\0")[0]
                if name == b"f":
                    self.reply(unique, struct.pack("QQQQII", 2, 0, 0, 0, 0, 0) + self.attr(2))
                else:
                    self.reply(unique, error=-2)
            elif op == 3:       # GETATTR
                self.reply(unique, struct.pack("QII", 0, 0, 0) + self.attr(node))
            elif op == 14:      # OPEN
                self.reply(unique, struct.pack("QII", 1, 0, 0))
            elif op == 25 and pid == os.getpid():
                self.reply(unique)  # our own close
            elif op == 25:      # FLUSH from anybody else: never answered
                self.flushes += 1
            elif op == 18:      # RELEASE
                self.reply(unique)
            elif op == 36:      # INTERRUPT: ignored, the FLUSH stays unanswered
                pass
            else:
                self.reply(unique, error=-38)

    def open(self):
        return os.open(os.path.join(self.mnt, "f"), os.O_RDONLY | os.O_CLOEXEC)

    def stop(self):
        """Unmount: the connection aborts and every waiter on it wakes."""
        self.done = True
        self.thread.join()
        self.libc.umount2(self.mnt.encode(), 2)     # MNT_DETACH
        os.close(self.dev)
        os.rmdir(self.mnt)


def case_fuse(d, b):
    """A file whose FLUSH is never answered, attached to a call."""
    if not os.path.exists("/dev/fuse") or os.geteuid() != 0:
        raise Skip("needs root and /dev/fuse to serve a FUSE mount")
    try:
        f = FuseStall()
    except OSError as e:
        raise Skip("cannot mount FUSE here: %s" % e)
    d.cleanups.append(f.stop)
    fd = f.open()
    s = d.connect()
    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        send_msg(s, call_bytes(IFACE + ".Status"), [fd])
        os.close(fd)        # FLUSH goes out on every close; ours is answered
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)
    reply = read_reply(s, "the attacker's own call")
    check(reply.get("error") == E_INVALID, "expected InvalidParameter, got %r" % reply)
    d.status("another client, right after")
    deadline = time.monotonic() + WAIT
    while f.flushes == 0:
        check(time.monotonic() < deadline, "test setup: the daemon's close never sent FLUSH")
        time.sleep(0.05)
    d.status("another client, while the FLUSH is unanswered")
    s.close()
    # The daemon's own copy waits in a closer thread, so the sink is never
    # told to close its copy and is not stuck: nothing to kill.
    return 0


EMFILE_LIMIT = 1024
EMFILE_JUNK = 60 * EMFILE_LIMIT
EMFILE_CONNS = 10


def case_emfile(d, b):
    """Junk fds pile up while a lingering socket wedges the sink."""
    check(open("/proc/%d/limits" % d.proc.pid).read().count("%d" % EMFILE_LIMIT) >= 2,
          "test setup: the daemon does not run with an fd limit of %d" % EMFILE_LIMIT)
    t = b.socket()
    s = d.connect()
    hand_over(d, s, call_bytes(IFACE + ".Status"), t)
    read_reply(s, "the wedging call")
    nul = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    junk = [d.connect() for _ in range(EMFILE_CONNS)]
    for j in junk:
        j.setblocking(False)
    msg = call_bytes(IFACE + ".Status")
    sent = 0
    deadline = time.monotonic() + 8
    try:
        # As fast as the daemon takes them, for longer than sink-timeout-ms.
        while sent < EMFILE_JUNK and time.monotonic() < deadline:
            progress = False
            for j in junk:
                try:
                    j.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [nul] * 253))])
                    sent += 253
                    progress = True
                except (BlockingIOError, OSError):
                    pass
            if not progress:
                time.sleep(0.01)
    finally:
        os.close(nul)
    s.close()
    for j in junk:
        j.close()
    # A daemon whose fd table filled cannot start a new sink: it stays stuck.
    d.wait_killed_sinks(1)
    d.status("another client, after the flood")
    return 1


def call_as(d, uid, what):
    """In a child running as uid: connect, Status with a pipe attached, and
    see the pipe closed by the daemon. Returns an error text or None."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(rd)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            try:
                pipe_is_closed_by(d, what)
                code = 0
            except Failure as e:
                os.write(wr, str(e).encode())
            except OSError as e:
                os.write(wr, ("%s: %s" % (what, e)).encode())
        finally:
            os._exit(code)
    os.close(wr)
    try:
        _, st = os.waitpid(pid, 0)
        msg = os.read(rd, 4096).decode()
    finally:
        os.close(rd)
    return None if st == 0 else msg or "%s: the child failed (%d)" % (what, st)


def case_fuse_uid(d, b):
    """One uid wedges closer threads and floods fds: another still gets served."""
    if not os.path.exists("/dev/fuse") or os.geteuid() != 0:
        raise Skip("needs root and /dev/fuse to serve a FUSE mount")
    try:
        f = FuseStall()
    except OSError as e:
        raise Skip("cannot mount FUSE here: %s" % e)
    d.cleanups.append(f.stop)
    os.chmod(d.dir, 0o755)
    s = d.connect()
    for i in range(70):
        fd = f.open()
        send_msg(s, call_bytes(IFACE + ".Status"), [fd])
        os.close(fd)        # our FLUSH is answered
    # No waiting for the answers: the daemon may pause this uid by now.
    deadline = time.monotonic() + WAIT
    while f.flushes < 8:
        check(time.monotonic() < deadline, "test setup: only %d FLUSH requests came" % f.flushes)
        time.sleep(0.05)
    nul = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    junk = [d.connect() for _ in range(MAX_CONN_PER_UID - 1)]
    sent = 0
    deadline = time.monotonic() + 5
    try:
        for j in junk:
            j.setblocking(False)
        while sent < 3000 and time.monotonic() < deadline:
            progress = False
            for j in junk:
                try:
                    j.sendmsg([call_bytes(IFACE + ".Status")],
                              [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [nul] * 253))])
                    sent += 253
                    progress = True
                except (BlockingIOError, OSError):
                    pass
                try:
                    while j.recv(1 << 16):
                        pass
                except (BlockingIOError, OSError):
                    pass
            if not progress:
                time.sleep(0.01)
    finally:
        os.close(nul)
    print("# %d junk fds sent, %d FLUSH requests unanswered" % (sent, f.flushes))
    err = call_as(d, 65534, "uid 65534 while uid 0 wedges its closes")
    check(err is None, err)
    s.close()
    for j in junk:
        j.close()
    # Uid 0 stays paused (its hang-ups unread) until its closes end: unmount.
    d.cleanups.remove(f.stop)
    f.stop()
    # Its closes can end now; until the daemon has read its hang-ups, its
    # connection slots are still taken and a new uid-0 connection is refused
    # at max-connections-per-uid. Wait (bounded) for that to clear.
    deadline = time.monotonic() + WAIT
    while True:
        try:
            d.status("uid 0 after its FUSE server went away")
            break
        except (ConnectionResetError, BrokenPipeError):
            check(time.monotonic() < deadline, "uid 0 is still refused %ds after its closes could end" % WAIT)
            time.sleep(0.1)
    return 0


CASES = {"linger": case_linger, "fuse-uid": case_fuse_uid, "dropped": case_dropped, "fuse": case_fuse, "emfile": case_emfile}


def main(argv):
    if len(argv) != 4 or argv[1] != "--daemon" or argv[3] not in CASES:
        print("usage: %s --daemon PATH/TO/physmemd {%s}" % (argv[0], "|".join(CASES)), file=sys.stderr)
        return 2
    faulthandler.dump_traceback_later(150)     # a hang of the test itself says where
    if argv[3] == "emfile":
        d = Daemon(argv[2], settings=["max-connections-per-uid=%d" % (EMFILE_CONNS + 2)], nofile=EMFILE_LIMIT)
    else:
        d = Daemon(argv[2])
    d.cleanups = []
    b = Blocker()
    try:
        # Closed connections go through the sink too, so the daemon's copy of
        # the ones before this may still be on their way out: take the lowest.
        base_fds = d.idle_fds()
        for _ in range(10):
            time.sleep(0.05)
            base_fds = min(base_fds, d.idle_fds())
        sinks = d.children()
        kills = CASES[argv[3]](d, b)
        check(sinks is None or len(sinks) == 1, "expected one sink process at the start, found %r" % sinks)
        killed = d.wait_killed_sinks(kills)
        d.status("another client, after the sink was killed")
        pipe_is_closed_by(d, "after the sink was replaced")
        # FUSE: a killed sink (and a closer thread) wait until the server
        # answers; unmounting aborts the connection, and then all must go.
        while d.cleanups:
            d.cleanups.pop()()
        b.check_all_closed()
        deadline = time.monotonic() + WAIT
        while d.idle_fds() != base_fds:
            check(time.monotonic() < deadline, "daemon has %d fds open with no client, %d at the start" %
                  (d.idle_fds(), base_fds))
            time.sleep(0.1)
        if sinks is not None:
            while True:
                now = d.children()
                if len(now) == 1 and not set(now) & set(killed):
                    break
                check(time.monotonic() < deadline, "sinks: %r, killed %r (not reaped or not replaced)" % (now, killed))
                time.sleep(0.1)
        check(d.proc.poll() is None, "physmemd died")
        log = d.log_text()
        rc = d.stop()
        check(rc == 0, "physmemd exited with %s on SIGTERM:\n%s" % (rc, log[-3000:]))
    except Skip as e:
        killed = []
        print("SKIP: %s" % e)
        return 77
    except Failure as e:
        print("FAIL: %s" % e)
        print("# daemon log (tail):")
        for line in d.log_text().splitlines()[-30:]:
            print("#   " + line)
        return 1
    finally:
        for fn in d.cleanups:       # first: unmounting wakes whatever waits on FUSE
            fn()
        d.stop()
    print("ok - %s: the daemon kept serving, killed %d stuck sink(s), fds back to %d" % (argv[3], len(killed), base_fds))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
