#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Bad input against the real physmemd.

Starts physmemd on a private socket with small limits and throws malformed,
mistyped, oversized, out-of-place and unauthorised messages at it over raw
sockets. Each case checks the exact Varlink error (or the disconnect the
protocol requires); after each case a fresh client must still get a correct
GetInfo reply. At the end the daemon's open fds and its buffer registry must
be back to their baseline, and SIGTERM must stop it with exit code 0.

Output is TAP-like: one "ok N - name" / "not ok N - name: reason" per case,
then "N passed, M failed". Exit status 1 if anything failed.

Usage: bad_input.py --daemon PATH/TO/physmemd [--only TITLE-PREFIX]   (or $PHYSMEMD)
Internal: bad_input.py --client SOCKET JSON       (unprivileged helper mode)

Only the Python standard library is used.
"""
import array
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

IFACE = "io.physmem.Manager"
SVC = "org.varlink.service"
E_INVALID = SVC + ".InvalidParameter"
E_IFACE = SVC + ".InterfaceNotFound"
E_METHOD = SVC + ".MethodNotFound"
E_NOSUCH = IFACE + ".NoSuchBuffer"
E_QUOTA = IFACE + ".QuotaExceeded"
E_PERM = IFACE + ".PermissionDenied"
E_SIZE = IFACE + ".SizeOutOfRange"
E_NOTSUP = IFACE + ".NotSupported"
E_NAMEINUSE = IFACE + ".NameInUse"

# The daemon's limits for this test.
MAX_MESSAGE = 4096
STALL_MS = 1000
MAX_CONN_PER_UID = 8
MAX_BUFFERS = 4
MAX_BYTES = 1 << 20
MAX_BUFFER_SIZE = 64 << 20
MAX_OUTPUT = 64 << 10
PAGE = os.sysconf("SC_PAGESIZE")
SIOCOUTQ = 0x5411
SCM_MAX_FD = 253

# Generous: nothing below asserts on how fast the daemon is.
WAIT = 10.0


class Disconnected(Exception):
    pass


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


class Conn:
    """One raw Varlink connection: NUL-framed JSON, fds via SCM_RIGHTS."""

    def __init__(self, path, timeout=WAIT):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.fds = []          # fds received, not yet handed out with a message
        self.eof = False

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        if self.s is not None:
            self.s.close()
            self.s = None

    def send_raw(self, data, fds=()):
        if fds:
            # All fds go with the first byte of data.
            n = self.s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
            if n < len(data):
                self.s.sendall(data[n:])
        else:
            self.s.sendall(data)

    def send(self, method, params=None, fds=(), **extra):
        msg = {"method": method}
        if params is not None:
            msg["parameters"] = params
        msg.update(extra)
        self.send_raw(json.dumps(msg).encode() + b"\0", fds)

    def _fill(self):
        try:
            data, anc, flags, _ = self.s.recvmsg(65536, socket.CMSG_SPACE(4 * SCM_MAX_FD))
        except ConnectionResetError:
            data, anc = b"", []
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(cdata[: len(cdata) - len(cdata) % a.itemsize])
                self.fds.extend(a)
        if not data:
            self.eof = True
            raise Disconnected()
        self.buf += data

    def recv(self):
        """Next reply as (dict, [fds]); raises Disconnected on EOF."""
        while b"\0" not in self.buf:
            if self.eof:
                raise Disconnected()
            self._fill()
        raw, self.buf = self.buf.split(b"\0", 1)
        fds, self.fds = self.fds, []
        return json.loads(raw), fds

    def reply(self, keep_fds=False):
        msg, fds = self.recv()
        if keep_fds:
            return msg, fds
        for fd in fds:
            os.close(fd)
        return msg

    def call(self, method, params=None, fds=(), **extra):
        self.send(method, params, fds, **extra)
        return self.reply()

    def expect_disconnect(self, timeout=WAIT):
        """Read until EOF; returns the replies that came first. Fails on timeout."""
        self.s.settimeout(timeout)
        replies = []
        try:
            while True:
                replies.append(self.reply())
        except Disconnected:
            return replies
        except socket.timeout:
            raise Failure("expected a disconnect, connection still open after %gs (replies: %r)" %
                          (timeout, replies))


def err_of(reply):
    return reply.get("error"), reply.get("parameters", {})


def expect_error(reply, error, parameter=None, **fields):
    e, p = err_of(reply)
    check(e == error, "expected %s, got %s" % (error, json.dumps(reply)[:300]))
    if parameter is not None:
        check(p.get("parameter") == parameter, "expected parameter %r, got %s" % (parameter, json.dumps(reply)[:300]))
    for k, v in fields.items():
        check(p.get(k) == v, "expected %s=%r, got %s" % (k, v, json.dumps(reply)[:300]))


def expect_ok(reply):
    check("error" not in reply and isinstance(reply.get("parameters"), dict),
          "expected a successful reply, got %s" % json.dumps(reply)[:300])
    return reply["parameters"]


def check_getinfo(reply):
    p = expect_ok(reply)
    check(p.get("product") == "physmemd" and SVC in p.get("interfaces", []) and IFACE in p.get("interfaces", []),
          "bad GetInfo reply %r" % p)


# ---------------------------------------------------------------- helper mode
def client_mode(sock, spec_json):
    """Run as an unprivileged user: do the calls in spec and print their replies."""
    spec = json.loads(spec_json)
    out = []
    c = Conn(sock)
    try:
        for method, params in spec:
            try:
                c.send(method, params)
                r, fds = c.recv()
                out.append({"reply": r, "nfds": len(fds)})
                for fd in fds:
                    os.close(fd)
            except Disconnected:
                out.append({"reply": None, "nfds": 0})
                break
    finally:
        c.close()
    print(json.dumps(out))
    return 0


# ---------------------------------------------------------------- the harness
class Harness:
    def __init__(self, daemon):
        self.daemon = daemon
        self.dir = tempfile.mkdtemp(prefix="physmem-bad-input-")
        os.chmod(self.dir, 0o755)      # the unprivileged helper must reach the socket
        self.sock = os.path.join(self.dir, "physmemd.sock")
        self.proc = None
        self.conns = []
        self.n = 0
        self.failed = 0

    def start(self):
        args = [self.daemon, "--socket", self.sock, "--backend", "memfd",
                "--set", "max-message-size=%d" % MAX_MESSAGE,
                "--set", "stall-timeout-ms=%d" % STALL_MS,
                "--set", "max-connections-per-uid=%d" % MAX_CONN_PER_UID,
                "--set", "max-buffers-per-uid=%d" % MAX_BUFFERS,
                "--set", "max-bytes-per-uid=1M",
                "--set", "max-buffer-size=64M",
                "--set", "max-output-per-connection=64K",
                "--set", "log-level=warning"]
        self.log = open(os.path.join(self.dir, "physmemd.log"), "w+")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("physmemd exited at start with %d:\n%s" % (self.proc.returncode, self.daemon_log()))
            try:
                c = Conn(self.sock)
                check_getinfo(c.call(SVC + ".GetInfo"))
                c.close()
                return
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.05)
        raise SystemExit("physmemd did not start listening on %s" % self.sock)

    def daemon_log(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def connect(self, timeout=WAIT):
        c = Conn(self.sock, timeout)
        self.conns.append(c)
        return c

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def fd_count_settled(self):
        """fd_count() once it stopped changing: sockets of connections that
        earlier cases closed may still be passing through the sink."""
        deadline = time.monotonic() + WAIT
        last, same = self.fd_count(), 0
        while same < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
            n = self.fd_count()
            same = same + 1 if n == last else 0
            last = n
        return last

    def fd_count_idle(self):
        """The daemon's open fds with no client connected: counted while only
        our own (accepted, answered) connection is open, minus that one."""
        c = Conn(self.sock)
        try:
            check_getinfo(c.call(SVC + ".GetInfo"))
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                if expect_ok(c.call(IFACE + ".Status"))["connections"] == 1:
                    break
                time.sleep(0.05)
            # Closed connections' sockets pass through the sink's closer
            # threads: wait until the count has settled.
            last, same = self.fd_count(), 0
            while same < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
                n = self.fd_count()
                same = same + 1 if n == last else 0
                last = n
            return last - 1
        finally:
            c.close()

    def status(self):
        c = Conn(self.sock)
        try:
            return expect_ok(c.call(IFACE + ".Status"))
        finally:
            c.close()

    def wait_quiet(self):
        """Wait until the daemon has torn down every connection of a case."""
        deadline = time.monotonic() + WAIT
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.status()
                if last["connections"] == 1:
                    return
            except (Disconnected, OSError):
                pass
            time.sleep(0.05)
        raise Failure("daemon still counts connections after the case: %r" % (last,))

    def run(self, name, fn):
        self.n += 1
        reason = None
        try:
            res = fn(self)
            if isinstance(res, str) and res.startswith("SKIP"):
                print("ok %d - %s # %s" % (self.n, name, res))
                reason = "skip"
        except Failure as e:
            reason = str(e)
        except Exception as e:         # a crash of the test itself is a failure too
            reason = "%s: %s" % (type(e).__name__, e)
        for c in self.conns:
            c.close()
        self.conns = []
        # The daemon must survive every case and still answer a fresh client.
        try:
            check(self.proc.poll() is None, "daemon died (exit %s)" % self.proc.returncode)
            self.wait_quiet()
            c = Conn(self.sock)
            try:
                check_getinfo(c.call(SVC + ".GetInfo"))
            finally:
                c.close()
        except (Failure, OSError, Disconnected, ValueError) as e:
            reason = (reason + "; " if reason and reason != "skip" else "") + \
                "after the case, a fresh GetInfo failed: %s: %s" % (type(e).__name__, e)
        if reason is None:
            print("ok %d - %s" % (self.n, name))
        elif reason != "skip":
            self.failed += 1
            print("not ok %d - %s: %s" % (self.n, name, reason))
        sys.stdout.flush()


CASES = []


def case(name):
    def register(fn):
        CASES.append((name, fn))
        return fn
    return register


def raw_error_case(name, data, err, parameter=None, stays=True):
    """Send raw bytes; expect one error reply; the connection stays open (or is closed)."""
    def fn(h):
        c = h.connect()
        c.send_raw(data)
        if stays:
            expect_error(c.reply(), err, parameter)
            try:
                check_getinfo(c.call(SVC + ".GetInfo"))
            except (Disconnected, BrokenPipeError, ConnectionResetError):
                raise Failure("the daemon closed the connection after a valid JSON value that is not a call; "
                              "it must answer InvalidParameter and keep the connection")
        else:
            replies = c.expect_disconnect()
            check(len(replies) == 1, "expected one error reply before the disconnect, got %r" % replies)
            expect_error(replies[0], err, parameter)
    CASES.append((name, fn))


def call_error_case(title, method, params, err, parameter=None, fds=(), **fields):
    def fn(h):
        c = h.connect()
        reply = c.call(method, params, fds)
        buf = reply.get("parameters", {}).get("buffer") if "error" not in reply else None
        if isinstance(buf, dict) and "id" in buf:
            # The daemon wrongly succeeded: do not let the buffer leak into later cases.
            c.call(IFACE + ".Free", {"id": buf["id"]})
        expect_error(reply, err, parameter, **fields)
        check_getinfo(c.call(SVC + ".GetInfo"))
    CASES.append((title, fn))


# ---- framing and message shape
raw_error_case("truncated JSON object", b'{"method":"org.varlink.service.GetInfo"\0', E_INVALID, "message", stays=False)
raw_error_case("binary garbage", b"\xff\xfe\x01garbage\0", E_INVALID, "message", stays=False)
raw_error_case("trailing garbage after the object", b'{"method":"org.varlink.service.GetInfo"} x\0',
               E_INVALID, "message", stays=False)
raw_error_case("empty message (lone NUL)", b"\0", E_INVALID, "message", stays=False)
raw_error_case("raw NUL inside a JSON string", b'{"method":"org.varlink.ser\0vice.GetInfo"}\0',
               E_INVALID, "message", stays=False)
raw_error_case("deeply nested JSON (4000 '[')", b"[" * 4000 + b"\0", E_INVALID, "message", stays=False)
raw_error_case("deeply nested parameters (100 levels)",
               b'{"method":"io.physmem.Manager.Status","parameters":{"x":' + b"[" * 100 + b"]" * 100 + b"}}\0",
               E_INVALID, "message", stays=False)
raw_error_case("array as the message", b"[1,2,3]\0", E_INVALID, "message")
raw_error_case("string as the message", b'"io.physmem.Manager.Status"\0', E_INVALID, "message")
raw_error_case("number as the message", b"42\0", E_INVALID, "message")
raw_error_case("null as the message", b"null\0", E_INVALID, "message")
raw_error_case("object without method", b'{"parameters":{}}\0', E_INVALID, "method")
raw_error_case("method is a number", b'{"method":42}\0', E_INVALID, "method")
raw_error_case("method is empty", b'{"method":""}\0', E_INVALID, "method")
raw_error_case("method is null", b'{"method":null}\0', E_INVALID, "method")
raw_error_case("parameters is an array", b'{"method":"io.physmem.Manager.Status","parameters":[]}\0',
               E_INVALID, "parameters")
raw_error_case("parameters is a string", b'{"method":"io.physmem.Manager.Status","parameters":"x"}\0',
               E_INVALID, "parameters")
raw_error_case("oneway is a string", b'{"method":"io.physmem.Manager.Status","oneway":"yes"}\0', E_INVALID, "oneway")
raw_error_case("more is a number", b'{"method":"io.physmem.Manager.Status","more":1}\0', E_INVALID, "more")
raw_error_case("upgrade requested", b'{"method":"io.physmem.Manager.Status","upgrade":true}\0', E_INVALID, "upgrade")
call_error_case("unknown interface", "com.example.Nope.GetInfo", None, E_IFACE)
call_error_case("unknown method of io.physmem.Manager", IFACE + ".Explode", None, E_METHOD)
call_error_case("unknown method of org.varlink.service", SVC + ".GetEverything", None, E_METHOD)
call_error_case("method without a dot", "GetInfo", None, E_IFACE)
call_error_case("method with a trailing dot", IFACE + ".", None, E_IFACE)
call_error_case("method with only a dot", ".", None, E_IFACE)
call_error_case("GetInfo with an unknown parameter", SVC + ".GetInfo", {"verbose": True}, E_INVALID, "verbose")
call_error_case("GetInterfaceDescription without interface", SVC + ".GetInterfaceDescription", {},
                E_INVALID, "interface")
call_error_case("GetInterfaceDescription with a number", SVC + ".GetInterfaceDescription", {"interface": 7},
                E_INVALID, "interface")
call_error_case("GetInterfaceDescription of an unknown interface", SVC + ".GetInterfaceDescription",
                {"interface": "com.example.Nope"}, E_IFACE)


# ---- replies are always UTF-8 JSON, whatever bytes a call holds
def raw_replies(c):
    """Every reply until the daemon hangs up, as raw bytes (NUL dropped)."""
    out = []
    c.s.settimeout(WAIT)
    try:
        while True:
            while b"\0" not in c.buf:
                c._fill()
            raw, c.buf = c.buf.split(b"\0", 1)
            out.append(raw)
    except Disconnected:
        return out
    except socket.timeout:
        raise Failure("expected a disconnect, connection still open after %gs (replies: %r)" % (WAIT, out))


def decoded(raw):
    """A reply as a standard client reads it: strict UTF-8, then JSON."""
    try:
        return json.loads(raw.decode("utf-8", errors="strict"))
    except (UnicodeDecodeError, ValueError) as e:
        raise Failure("reply is not UTF-8 JSON (%s): %r" % (e, raw[:200]))


def utf8_case(title, data):
    """A call with bad UTF-8 somewhere: one InvalidParameter reply, in UTF-8, then the hang-up."""
    def fn(h):
        c = h.connect()
        c.send_raw(data)
        replies = [decoded(r) for r in raw_replies(c)]
        check(len(replies) == 1, "expected one error reply before the disconnect, got %r" % replies)
        expect_error(replies[0], E_INVALID, "message")
    CASES.append(("UTF-8: " + title, fn))


GID = b'{"method":"org.varlink.service.GetInterfaceDescription","parameters":{"interface":"%s"}}\0'
utf8_case("method name with a \\xff byte", b'{"method":"io.physmem.\xff.Status"}\0')
utf8_case("method name with an overlong '/' (\\xc0\\xaf)", b'{"method":"io.physmem.Manager.\xc0\xafStatus"}\0')
utf8_case("method name with a UTF-8-encoded surrogate", b'{"method":"io.physmem.Manager.\xed\xa0\x80"}\0')
utf8_case("method name past U+10FFFF", b'{"method":"io.physmem.Manager.\xf4\x90\x80\x80"}\0')
utf8_case("method name with a truncated sequence", b'{"method":"io.physmem.Manager.Status\xe2\x82"}\0')
utf8_case("method name with a lone \\ud800 escape", b'{"method":"io.physmem.Manager.\\ud800"}\0')
utf8_case("method name with a lone \\udc00 escape", b'{"method":"com.example\\udc00.X"}\0')
utf8_case("string parameter with a \\xff byte", GID % b"com.\xffexample")
utf8_case("string parameter with an overlong NUL (\\xc0\\x80)", GID % b"com.ex\xc0\x80ample")
utf8_case("string parameter with \\ud800 followed by \\u0041", GID % b"com.example\\ud800\\u0041")
utf8_case("parameter name with a \\xff byte", b'{"method":"io.physmem.Manager.Status","parameters":{"\xff":1}}\0')
utf8_case("Allocate name with a 5-byte sequence", b'{"method":"io.physmem.Manager.Allocate","parameters":'
          b'{"size":4096,"name":"a\xf8\x88\x80\x80\x80"}}\0')


@case("UTF-8: valid non-ASCII text is echoed back intact")
def _(h):
    c = h.connect()
    for text, want in ((b"caf\xc3\xa9.example", "caf\u00e9.example"),
                       (b"\\ud83d\\ude00.example", "\U0001F600.example")):
        c.send_raw(GID % text)
        while b"\0" not in c.buf:
            c._fill()
        raw, c.buf = c.buf.split(b"\0", 1)
        expect_error(decoded(raw), E_IFACE, interface=want)

# ---- Allocate: every parameter mistyped, sizes out of range
A = IFACE + ".Allocate"
call_error_case("Allocate without parameters", A, None, E_INVALID, "size")
call_error_case("Allocate size missing", A, {"contiguous": False}, E_INVALID, "size")
call_error_case("Allocate size null", A, {"size": None}, E_INVALID, "size")
call_error_case("Allocate size is a string", A, {"size": "4096"}, E_INVALID, "size")
call_error_case("Allocate size is 1.5", A, {"size": 1.5}, E_INVALID, "size")
call_error_case("Allocate size is 1e30", A, {"size": 1e30}, E_INVALID, "size")
call_error_case("Allocate size is a bool", A, {"size": True}, E_INVALID, "size")
call_error_case("Allocate size is an object", A, {"size": {"bytes": 4096}}, E_INVALID, "size")
call_error_case("Allocate size 0", A, {"size": 0}, E_SIZE, size=0)
call_error_case("Allocate size -1", A, {"size": -1}, E_SIZE, size=-1)
call_error_case("Allocate size -2**63", A, {"size": -(2 ** 63)}, E_SIZE)
call_error_case("Allocate size 2**63-1", A, {"size": 2 ** 63 - 1}, E_SIZE)
call_error_case("Allocate size 2**64 (JSON number)", A, {"size": 2 ** 64}, E_SIZE)
call_error_case("Allocate size max-buffer-size + 1", A, {"size": MAX_BUFFER_SIZE + 1}, E_SIZE)
call_error_case("Allocate size over the per-uid byte quota", A, {"size": 2 * MAX_BYTES}, E_QUOTA, limit="bytes")
call_error_case("Allocate size rounding up past the byte quota", A, {"size": MAX_BYTES + 1}, E_QUOTA,
                limit="bytes", requested=MAX_BYTES + PAGE)
call_error_case("Allocate contiguous is a string", A, {"size": 4096, "contiguous": "yes"}, E_INVALID, "contiguous")
call_error_case("Allocate cache is not a CacheMode", A, {"size": 4096, "cache": "fast"}, E_INVALID, "cache")
call_error_case("Allocate cache is a number", A, {"size": 4096, "cache": 1}, E_INVALID, "cache")
call_error_case("Allocate cache writecombine on memfd", A, {"size": 4096, "cache": "writecombine"}, E_NOTSUP)
call_error_case("Allocate cache uncached on memfd", A, {"size": 4096, "cache": "uncached"}, E_NOTSUP)
call_error_case("Allocate contiguous on memfd", A, {"size": 2 * PAGE, "contiguous": True}, E_NOTSUP)
call_error_case("Allocate unknown parameter", A, {"size": 4096, "sizee": 4096}, E_INVALID, "sizee")
call_error_case("Allocate name is a number", A, {"size": 4096, "name": 42}, E_INVALID, "name")
call_error_case("Allocate name empty", A, {"size": 4096, "name": ""}, E_INVALID, "name")
call_error_case("Allocate name 65 characters", A, {"size": 4096, "name": "n" * 65}, E_INVALID, "name")
call_error_case("Allocate name with '/'", A, {"size": 4096, "name": "a/b"}, E_INVALID, "name")
call_error_case("Allocate name '..'", A, {"size": 4096, "name": ".."}, E_INVALID, "name")
call_error_case("Allocate name starting with '.'", A, {"size": 4096, "name": ".hidden"}, E_INVALID, "name")
call_error_case("Allocate name with a space", A, {"size": 4096, "name": "a b"}, E_INVALID, "name")
call_error_case("Allocate name with non-ASCII", A, {"size": 4096, "name": "caf\u00e9"}, E_INVALID, "name")
call_error_case("Allocate name with an escaped NUL (a\\u0000b)", A, {"size": 4096, "name": "a\u0000b"},
                E_INVALID, "name")
call_error_case("Allocate allowUids is a number", A, {"size": 4096, "allowUids": 0}, E_INVALID, "allowUids")
call_error_case("Allocate allowUids with a string", A, {"size": 4096, "allowUids": ["0"]}, E_INVALID, "allowUids")
call_error_case("Allocate allowUids negative", A, {"size": 4096, "allowUids": [-1]}, E_INVALID, "allowUids")
call_error_case("Allocate allowUids 2**32", A, {"size": 4096, "allowUids": [2 ** 32]}, E_INVALID, "allowUids")
call_error_case("Allocate allowUids (uid_t)-1", A, {"size": 4096, "allowUids": [2 ** 32 - 1]}, E_INVALID, "allowUids")
call_error_case("Allocate allowUids 2**64", A, {"size": 4096, "allowUids": [2 ** 64]}, E_INVALID, "allowUids")
call_error_case("Allocate allowUids 65 entries", A, {"size": 4096, "allowUids": list(range(1000, 1065))},
                E_INVALID, "allowUids")
call_error_case("Allocate allowGids negative", A, {"size": 4096, "allowGids": [-5]}, E_INVALID, "allowGids")
call_error_case("Allocate allowGids 65 entries", A, {"size": 4096, "allowGids": list(range(65))},
                E_INVALID, "allowGids")

# ---- the other methods
call_error_case("Pin without a file descriptor", IFACE + ".Pin", {"memfdFileDescriptor": 0}, E_INVALID,
                "memfdFileDescriptor")
call_error_case("Pin memfdFileDescriptor is a string", IFACE + ".Pin", {"memfdFileDescriptor": "0"}, E_INVALID,
                "memfdFileDescriptor")
call_error_case("Pin missing memfdFileDescriptor", IFACE + ".Pin", {"size": 4096}, E_INVALID, "memfdFileDescriptor")
call_error_case("Share missing id", IFACE + ".Share", {"name": "x"}, E_INVALID, "id")
call_error_case("Share missing name", IFACE + ".Share", {"id": 1}, E_INVALID, "name")
call_error_case("Share id is a string", IFACE + ".Share", {"id": "1", "name": "x"}, E_INVALID, "id")
call_error_case("Share of an unknown id", IFACE + ".Share", {"id": 999999, "name": "x"}, E_NOSUCH)
call_error_case("Import missing name", IFACE + ".Import", {}, E_INVALID, "name")
call_error_case("Import name is a list", IFACE + ".Import", {"name": ["x"]}, E_INVALID, "name")
call_error_case("Import invalid name '../etc'", IFACE + ".Import", {"name": "../etc"}, E_INVALID, "name")
call_error_case("Import unknown name", IFACE + ".Import", {"name": "no-such-buffer"}, E_NOSUCH, name="no-such-buffer")
call_error_case("Import owner is negative", IFACE + ".Import", {"name": "x", "owner": -1}, E_INVALID, "owner")
call_error_case("Import owner is not a uid", IFACE + ".Import", {"name": "x", "owner": 4294967295}, E_INVALID, "owner")
call_error_case("Import owner is a user name", IFACE + ".Import", {"name": "x", "owner": "root"}, E_INVALID, "owner")
call_error_case("Free missing id", IFACE + ".Free", {}, E_INVALID, "id")
call_error_case("Free id is a float", IFACE + ".Free", {"id": 1.0}, E_INVALID, "id")
call_error_case("Free id -1", IFACE + ".Free", {"id": -1}, E_NOSUCH)
call_error_case("Free id 0", IFACE + ".Free", {"id": 0}, E_NOSUCH)
call_error_case("Free id 2**64", IFACE + ".Free", {"id": 2 ** 64}, E_NOSUCH)
call_error_case("Describe id is null", IFACE + ".Describe", {"id": None}, E_INVALID, "id")
call_error_case("Describe of an unknown id", IFACE + ".Describe", {"id": 123456}, E_NOSUCH, id=123456)
call_error_case("List all is a string", IFACE + ".List", {"all": "true"}, E_INVALID, "all")
call_error_case("List unknown parameter", IFACE + ".List", {"everything": True}, E_INVALID, "everything")
call_error_case("Status with a parameter", IFACE + ".Status", {"x": 1}, E_INVALID, "x")


@case("Allocate size 1 page below the byte quota boundary rounds and fits")
def _(h):
    c = h.connect()
    c.send(A, {"size": MAX_BYTES - 1})
    r, fds = c.recv()
    p = expect_ok(r)
    check(p["buffer"]["size"] == MAX_BYTES and len(fds) == 1 and p["bufferFileDescriptor"] == 0,
          "bad reply %r / %d fds" % (p, len(fds)))
    for fd in fds:
        check(os.fstat(fd).st_size == MAX_BYTES, "fd has the wrong size")
        os.close(fd)


@case("Allocate name of exactly 64 characters, then NameInUse")
def _(h):
    c = h.connect()
    name = "N" * 64
    p = expect_ok(c.call(A, {"size": 4096, "name": name}))
    try:
        check(p["buffer"].get("name") == name, "name not kept: %r" % p)
        expect_error(c.call(A, {"size": 4096, "name": name}), E_NAMEINUSE, name=name)
    finally:
        expect_ok(c.call(IFACE + ".Free", {"id": p["buffer"]["id"]}))


@case("Pin on the memfd backend is NotSupported")
def _(h):
    c = h.connect()
    mfd = os.memfd_create("pin-test")
    os.ftruncate(mfd, 4096)
    try:
        expect_error(c.call(IFACE + ".Pin", {"memfdFileDescriptor": 0}, fds=[mfd]), E_NOTSUP)
        expect_error(c.call(IFACE + ".Pin", {"memfdFileDescriptor": 1}, fds=[mfd]), E_INVALID, "memfdFileDescriptor")
        expect_error(c.call(IFACE + ".Pin", {"memfdFileDescriptor": -1}, fds=[mfd]), E_INVALID, "memfdFileDescriptor")
    finally:
        os.close(mfd)


def pipe_closed_by_daemon(r):
    """True once every write end of the pipe is closed (read end sees EOF)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        rl, _, _ = select.select([r], [], [], 0.2)
        if rl:
            if os.read(r, 4096) == b"":
                return True
    return False


@case("fd attached to GetInfo is refused and closed")
def _(h):
    c = h.connect()
    r, w = os.pipe()
    try:
        check_getinfo(c.call(SVC + ".GetInfo"))     # accepted: its socket is in the count
        base = h.fd_count_settled()
        expect_error(c.call(SVC + ".GetInfo", None, fds=[w]), E_INVALID, "fileDescriptors")
        os.close(w)
        w = -1
        check(pipe_closed_by_daemon(r), "the daemon kept the pipe's write end open")
        check(h.fd_count() == base, "daemon fd count %d, was %d" % (h.fd_count(), base))
        check_getinfo(c.call(SVC + ".GetInfo"))
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


@case("fds attached to an unknown method and to a bad message are closed")
def _(h):
    c = h.connect()
    r, w = os.pipe()
    try:
        expect_error(c.call(IFACE + ".Explode", None, fds=[w]), E_METHOD)
        c.send_raw(b"[1]\0", fds=[w])
        expect_error(c.reply(), E_INVALID, "message")
        c.send_raw(b"{not json\0", fds=[w])
        c.expect_disconnect()
        os.close(w)
        w = -1
        check(pipe_closed_by_daemon(r), "the daemon kept the pipe's write end open")
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


@case("253 fds (SCM_MAX_FD) on Free are all closed")
def _(h):
    c = h.connect()
    r, w = os.pipe()
    try:
        check_getinfo(c.call(SVC + ".GetInfo"))     # accepted: its socket is in the count
        base = h.fd_count_settled()
        expect_error(c.call(IFACE + ".Free", {"id": 1}, fds=[w] * SCM_MAX_FD), E_INVALID, "fileDescriptors")
        os.close(w)
        w = -1
        check(pipe_closed_by_daemon(r), "the daemon kept some of the 253 fds open")
        check(h.fd_count() == base, "daemon fd count %d, was %d" % (h.fd_count(), base))
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


@case("254 fds: the kernel refuses to send them; the connection still works")
def _(h):
    c = h.connect()
    r, w = os.pipe()
    try:
        try:
            c.send(SVC + ".GetInfo", None, fds=[w] * (SCM_MAX_FD + 1))
            raise Failure("the kernel accepted 254 fds in one message")
        except OSError as e:
            check(e.errno == 22, "expected EINVAL from sendmsg, got %s" % e)
        check_getinfo(c.call(SVC + ".GetInfo"))
    finally:
        os.close(r)
        os.close(w)


def wait_consumed(c):
    """Wait until the daemon has read everything we sent (our send queue is empty)."""
    deadline = time.monotonic() + WAIT
    buf = array.array("i", [0])
    while time.monotonic() < deadline:
        fcntl.ioctl(c.s.fileno(), SIOCOUTQ, buf, True)
        if buf[0] == 0:
            return
        time.sleep(0.01)
    raise Failure("the daemon did not read what we sent")


@case("fds on a byte in the middle of a message: disconnect, fds closed")
def _(h):
    c = h.connect()
    r, w = os.pipe()
    try:
        c.send_raw(b'{"method":"io.physmem.')
        wait_consumed(c)
        c.send_raw(b'Manager.Status"}\0', fds=[w])
        replies = c.expect_disconnect()
        check(replies == [], "expected no reply before the disconnect, got %r" % replies)
        os.close(w)
        w = -1
        check(pipe_closed_by_daemon(r), "the daemon kept the fd that came out of place")
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


@case("fds on a middle byte of a message, in a chunk that also starts the next message: disconnect")
def _(h):
    # The rest of the first message and all of a Pin that refers to an fd,
    # in one chunk with the fd: the fd came with the first message's middle,
    # whatever the second says.
    c = h.connect()
    r, w = os.pipe()
    try:
        c.send_raw(b'{"method":"io.physmem.Manager.')
        wait_consumed(c)
        c.send_raw(b'Status"}\0' + json.dumps({"method": IFACE + ".Pin", "parameters":
                                                {"memfdFileDescriptor": 0}}).encode() + b"\0", fds=[w])
        replies = c.expect_disconnect()
        check(replies == [], "expected no reply before the disconnect, got %r" % replies)
        os.close(w)
        w = -1
        check(pipe_closed_by_daemon(r), "the daemon kept the fd that came out of place")
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


@case("pipelined call with fds is not confused with the call before it")
def _(h):
    # The daemon is stopped while both messages are queued, so that it reads
    # them in one recvmsg(); the fd belongs to the second message's first byte.
    c = h.connect()
    mfd = os.memfd_create("pipelined")
    os.ftruncate(mfd, 4096)
    os.kill(h.proc.pid, signal.SIGSTOP)
    try:
        c.send(SVC + ".GetInfo")
        c.send(IFACE + ".Pin", {"memfdFileDescriptor": 0}, fds=[mfd])
    finally:
        os.kill(h.proc.pid, signal.SIGCONT)
        os.close(mfd)
    first, second = c.reply(), c.reply()
    check("error" not in first, "GetInfo (no fds) got %s: the fd of the next message was attached to it" %
          json.dumps(first))
    expect_error(second, E_NOTSUP)


@case("message larger than max-message-size: disconnect")
def _(h):
    c = h.connect()
    body = b'{"method":"io.physmem.Manager.Status","parameters":{"x":"' + b"A" * (2 * MAX_MESSAGE)
    try:
        c.send_raw(body)
    except OSError:
        pass
    replies = c.expect_disconnect()
    check(replies == [], "expected no reply, got %r" % replies)


@case("message of exactly max-message-size is accepted")
def _(h):
    c = h.connect()
    head = b'{"method":"org.varlink.service.GetInfo"'
    msg = head + b" " * (MAX_MESSAGE - 1 - len(head) - 1) + b"}\0"
    check(len(msg) == MAX_MESSAGE, "test bug")
    c.send_raw(msg)
    check_getinfo(c.reply())
    c.send_raw(head + b" " * MAX_MESSAGE + b"}\0")
    c.expect_disconnect()


@case("max-message-values (1024): a call of 1024 '{[,' is parsed, one of 1025 refused unparsed, disconnect")
def _(h):
    # Status refuses a parameter it does not know: the first call is answered
    # as any call (and the connection stays), the second is refused before
    # json-c builds its values.
    c = h.connect()
    pad = b"[" + b",".join([b"1"] * 1021) + b"]"
    msg = b'{"method":"io.physmem.Manager.Status","parameters":{"x":' + pad + b"}}\0"
    check(sum(msg.count(ch) for ch in b"{[,") == 1024, "test bug")
    c.send_raw(msg)
    expect_error(c.reply(), E_INVALID, "x")
    check_getinfo(c.call(SVC + ".GetInfo"))
    c.send_raw(msg.replace(b"[1,", b"[1,1,", 1))
    replies = c.expect_disconnect()
    check(len(replies) == 1, "expected one error reply before the disconnect, got %r" % replies)
    expect_error(replies[0], E_INVALID, "message")


@case("half a message then silence: disconnected after the stall timeout")
def _(h):
    c = h.connect()
    c.send_raw(b'{"method":"org.varlink.service.Get')
    replies = c.expect_disconnect(timeout=STALL_MS / 1000.0 * 5 + WAIT)
    check(replies == [], "expected no reply, got %r" % replies)


@case("client that pipelines calls and never reads: others served, it is dropped")
def _(h):
    c = h.connect()
    c.s.setblocking(False)
    msg = json.dumps({"method": SVC + ".GetInfo"}).encode() + b"\0"
    sent = 0
    stuck_since = None
    deadline = time.monotonic() + WAIT * 2
    # Send until the daemon stops reading (our send queue stays full).
    while time.monotonic() < deadline:
        try:
            c.s.send(msg)
            sent += 1
            stuck_since = None
        except BlockingIOError:
            if stuck_since is None:
                stuck_since = time.monotonic()
            elif time.monotonic() - stuck_since > 0.3:
                break
            time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            break
    check(sent > 100, "only %d calls could be sent" % sent)
    # Meanwhile another client is served.
    other = h.connect()
    check_getinfo(other.call(SVC + ".GetInfo"))
    other.close()
    # The stuck client is dropped once it made no progress for the stall timeout.
    deadline = time.monotonic() + STALL_MS / 1000.0 * 5 + WAIT
    while time.monotonic() < deadline:
        if h.status()["connections"] == 1:
            break
        time.sleep(0.1)
    else:
        raise Failure("the daemon never dropped the client that does not read")
    c.s.setblocking(True)
    c.s.settimeout(WAIT)
    replies = c.expect_disconnect()
    check(0 < len(replies) < sent, "got %d of %d replies before the disconnect" % (len(replies), sent))
    for r in replies:
        check_getinfo(r)


@case("hundreds of connections from one uid: only max-connections-per-uid served")
def _(h):
    socks = []
    try:
        for _ in range(300):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(WAIT)
            s.connect(h.sock)
            socks.append(s)
        served = 0
        msg = json.dumps({"method": SVC + ".GetInfo"}).encode() + b"\0"
        for s in socks:
            try:
                s.sendall(msg)
                data = b""
                while not data.endswith(b"\0"):
                    x = s.recv(4096)
                    if not x:
                        break
                    data += x
                if data.endswith(b"\0"):
                    check_getinfo(json.loads(data[:-1]))
                    served += 1
            except (BrokenPipeError, ConnectionResetError):
                pass
        check(served == MAX_CONN_PER_UID, "%d connections served, limit is %d" % (served, MAX_CONN_PER_UID))
    finally:
        for s in socks:
            s.close()


@case("oneway calls get no reply, not even an error")
def _(h):
    c = h.connect()
    c.send(IFACE + ".Explode", oneway=True)
    c.send(IFACE + ".Allocate", {"size": -1}, oneway=True)
    c.send(SVC + ".GetInfo", oneway=True)
    expect_ok(c.call(IFACE + ".Status"))
    c.s.settimeout(0.2)
    try:
        c.reply()
        raise Failure("a reply to a oneway call arrived")
    except socket.timeout:
        pass


@case("quota: the fifth buffer exceeds max-buffers-per-uid")
def _(h):
    c = h.connect()
    for i in range(MAX_BUFFERS):
        expect_ok(c.call(A, {"size": 4096}))
    expect_error(c.call(A, {"size": 4096}), E_QUOTA, limit="buffers", max=MAX_BUFFERS, used=MAX_BUFFERS)
    st = expect_ok(c.call(IFACE + ".Status"))
    check(st["quota"]["buffers"] == MAX_BUFFERS, "quota usage %r" % st["quota"])


@case("quota: bytes exceeded by the sum of buffers")
def _(h):
    c = h.connect()
    expect_ok(c.call(A, {"size": MAX_BYTES // 2}))
    expect_ok(c.call(A, {"size": MAX_BYTES // 2}))
    expect_error(c.call(A, {"size": 1}), E_QUOTA, limit="bytes", max=MAX_BYTES, used=MAX_BYTES, requested=PAGE)


@case("Free gives the bytes back (quota and Status totals)")
def _(h):
    c = h.connect()
    # Start once the releases of earlier cases' buffers (on the daemon's
    # workers) are done: the quota then counts only the listed buffers.
    deadline = time.monotonic() + 20
    while True:
        before = expect_ok(c.call(IFACE + ".Status"))
        listed = expect_ok(c.call(IFACE + ".List"))["buffers"]
        if before["quota"]["bytes"] == sum(b["size"] for b in listed) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    p = expect_ok(c.call(A, {"size": 3 * PAGE}))
    mid = expect_ok(c.call(IFACE + ".Status"))
    check(mid["bytes"] == before["bytes"] + 3 * PAGE and mid["quota"]["bytes"] == before["quota"]["bytes"] + 3 * PAGE,
          "Allocate not charged: %r -> %r" % (before, mid))
    expect_ok(c.call(IFACE + ".Free", {"id": p["buffer"]["id"]}))
    # Free replies at once; the teardown runs on a worker and the bytes stay
    # charged until it is done.
    deadline = time.monotonic() + 20
    after = expect_ok(c.call(IFACE + ".Status"))
    while after["quota"]["buffers"] != before["quota"]["buffers"] and time.monotonic() < deadline:
        time.sleep(0.02)
        after = expect_ok(c.call(IFACE + ".Status"))
    check(after["buffers"] == before["buffers"] and after["quota"]["buffers"] == before["quota"]["buffers"],
          "buffer count not given back: %r" % after)
    check(after["bytes"] == before["bytes"] and after["quota"]["bytes"] == before["quota"]["bytes"],
          "bytes not given back after Free: total %d -> %d, quota %d -> %d" %
          (before["bytes"], after["bytes"], before["quota"]["bytes"], after["quota"]["bytes"]))


@case("double Free: NoSuchBuffer the second time")
def _(h):
    c = h.connect()
    p = expect_ok(c.call(A, {"size": 4096}))
    bid = p["buffer"]["id"]
    expect_ok(c.call(IFACE + ".Free", {"id": bid}))
    expect_error(c.call(IFACE + ".Free", {"id": bid}), E_NOSUCH, id=bid)
    expect_error(c.call(IFACE + ".Describe", {"id": bid}), E_NOSUCH, id=bid)


@case("unnamed buffer is gone after its owner disconnects; named one stays")
def _(h):
    c = h.connect()
    unnamed = expect_ok(c.call(A, {"size": 4096}))["buffer"]["id"]
    named = expect_ok(c.call(A, {"size": 4096, "name": "survivor"}))["buffer"]["id"]
    c.close()
    h.wait_quiet()
    d = h.connect()
    expect_error(d.call(IFACE + ".Describe", {"id": unnamed}), E_NOSUCH)
    expect_ok(d.call(IFACE + ".Describe", {"id": named}))
    expect_ok(d.call(IFACE + ".Free", {"id": named}))


def run_unprivileged(h, calls):
    py = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    with open(os.path.abspath(__file__), "rb") as f:
        src = f.read()
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          py, "-", "--client", h.sock, json.dumps(calls)],
                         input=src, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=WAIT * 3)
    if out.returncode != 0:
        raise Failure("unprivileged helper failed (%d): %s" % (out.returncode, out.stderr.decode()[-500:]))
    return [(x["reply"], x["nfds"]) for x in json.loads(out.stdout)]


@case("another user: Free/Describe/Share/Import/List of root's buffers refused")
def _(h):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return "SKIP needs root and setpriv to act as another user"
    c = h.connect()
    private = expect_ok(c.call(A, {"size": 4096, "name": "root-private"}))["buffer"]["id"]
    shared = expect_ok(c.call(A, {"size": 4096, "name": "root-shared", "allowUids": [65534]}))["buffer"]
    check(shared["allowUids"] == [65534], "allowUids not kept: %r" % shared)
    shared = shared["id"]
    try:
        res = run_unprivileged(h, [
            [IFACE + ".Free", {"id": private}],
            [IFACE + ".Describe", {"id": private}],
            [IFACE + ".Share", {"id": private, "name": "stolen"}],
            [IFACE + ".Import", {"name": "root-private"}],
            [IFACE + ".List", {"all": True}],
            [IFACE + ".List", {}],
            [IFACE + ".Import", {"name": "root-shared"}],
            [IFACE + ".Describe", {"id": shared}],
            [IFACE + ".Free", {"id": shared}],
            [IFACE + ".Share", {"id": shared, "name": "renamed"}],
        ])
        check(len(res) == 10, "helper did %d calls: %r" % (len(res), res))
        expect_error(res[0][0], E_NOSUCH, id=private)
        expect_error(res[1][0], E_NOSUCH, id=private)
        expect_error(res[2][0], E_NOSUCH)
        expect_error(res[3][0], E_PERM)
        check(res[3][1] == 0, "an fd came with a refused Import")
        expect_error(res[4][0], E_PERM)
        check(expect_ok(res[5][0])["buffers"] == [], "List shows another user's buffers: %r" % res[5][0])
        p = expect_ok(res[6][0])
        check(res[6][1] == 1 and p["buffer"]["id"] == shared, "allowed Import failed: %r" % (res[6],))
        expect_ok(res[7][0])
        expect_error(res[8][0], E_PERM)
        expect_error(res[9][0], E_PERM)
        # Root's buffers are untouched.
        expect_ok(c.call(IFACE + ".Describe", {"id": private}))
        expect_ok(c.call(IFACE + ".Describe", {"id": shared}))
    finally:
        c.call(IFACE + ".Free", {"id": private})
        c.call(IFACE + ".Free", {"id": shared})


@case("another user: quota is per uid and its buffers are hidden from root's List")
def _(h):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return "SKIP needs root and setpriv to act as another user"
    res = run_unprivileged(h, [[A, {"size": 4096}]] * (MAX_BUFFERS + 1) + [[IFACE + ".Status", {}]])
    for r, nfds in res[:MAX_BUFFERS]:
        expect_ok(r)
        check(nfds == 1, "Allocate came without its fd")
    expect_error(res[MAX_BUFFERS][0], E_QUOTA, limit="buffers")
    q = expect_ok(res[-1][0])["quota"]
    check(q["uid"] == 65534 and q["buffers"] == MAX_BUFFERS, "quota %r" % q)


@case("Import of a named buffer whose owner did not allow the caller")
def _(h):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return "SKIP needs root and setpriv to act as another user"
    c = h.connect()
    bid = expect_ok(c.call(A, {"size": 4096, "name": "gid-only", "allowGids": [12345]}))["buffer"]["id"]
    try:
        res = run_unprivileged(h, [[IFACE + ".Import", {"name": "gid-only"}]])
        expect_error(res[0][0], E_PERM)
    finally:
        c.call(IFACE + ".Free", {"id": bid})


def main(argv):
    if len(argv) >= 2 and argv[1] == "--client":
        return client_mode(argv[2], argv[3])
    daemon = None
    only = None
    if len(argv) >= 3 and argv[-2] == "--only":
        # Run only the cases whose title starts with this (a ctest of its own).
        only, argv = argv[-1], argv[:-2]
    if len(argv) >= 3 and argv[1] == "--daemon":
        daemon = argv[2]
    elif len(argv) == 2:
        daemon = argv[1]
    else:
        daemon = os.environ.get("PHYSMEMD")
    if not daemon:
        print("usage: %s --daemon PATH/TO/physmemd" % argv[0], file=sys.stderr)
        return 2
    h = Harness(daemon)
    try:
        h.start()
        base_fds = h.fd_count_idle()
        base = h.status()
        c = Conn(h.sock)
        base_list = expect_ok(c.call(IFACE + ".List", {"all": True}))["buffers"]
        c.close()
        for name, fn in CASES:
            if only is None or name.startswith(only):
                h.run(name, fn)

        def final(h2):
            check(h2.proc.poll() is None, "daemon is gone")
            # Releases run on the daemon's workers: let the last ones finish.
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                st = h2.status()
                if st["buffers"] == base["buffers"] and st["quota"]["bytes"] == 0:
                    break
                time.sleep(0.05)
            n = h2.fd_count_idle()
            check(n == base_fds, "daemon has %d fds open, %d at the start: %s" %
                  (n, base_fds, sorted(os.listdir("/proc/%d/fd" % h2.proc.pid))))
            st = h2.status()
            check(st["buffers"] == base["buffers"] and st["bytes"] == base["bytes"],
                  "registry not back to baseline: %d buffers, %d bytes" % (st["buffers"], st["bytes"]))
            check(st["quota"]["buffers"] == 0 and st["quota"]["bytes"] == 0, "root still charged: %r" % st["quota"])
            d = h2.connect()
            lst = expect_ok(d.call(IFACE + ".List", {"all": True}))["buffers"]
            check(lst == base_list, "List {all:true} not back to baseline: %r" % lst)

        h.run("daemon fds, buffers and bytes back to baseline", final)

        def shutdown(h2):
            h2.proc.send_signal(signal.SIGTERM)
            try:
                rc = h2.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                h2.proc.kill()
                raise Failure("physmemd did not exit on SIGTERM")
            check(rc == 0, "physmemd exited with %d on SIGTERM" % rc)
            check(not os.path.exists(h2.sock), "socket file left behind")

        h.n += 1
        try:
            shutdown(h)
            print("ok %d - SIGTERM stops the daemon with exit code 0" % h.n)
        except Failure as e:
            h.failed += 1
            print("not ok %d - SIGTERM stops the daemon with exit code 0: %s" % (h.n, e))
    finally:
        if h.proc and h.proc.poll() is None:
            h.proc.kill()
            h.proc.wait()
        if h.failed:
            print("# daemon log (tail):")
            for line in h.daemon_log().splitlines():
                print("#   " + line)
        shutil.rmtree(h.dir, ignore_errors=True)
    print("%d passed, %d failed" % (h.n - h.failed, h.failed))
    return 1 if h.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
