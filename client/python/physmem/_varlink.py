# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Varlink connection to physmemd: which socket, whether to trust it, and calls.

Mirrors libphysmem (client/libphysmem.c) exactly: the same socket order, the
same checks of an implicitly chosen socket and of the peer that serves it,
the same fd convention (all fds of a message with its first byte, a
``*FileDescriptor`` parameter is an index), the same 30 s call deadline, and
a connection marked broken after any transport error.
"""
import array
import errno
import json
import os
import socket
import stat
import struct
import threading
import time

from . import errors

SYSTEM_SOCKET = "/run/physmem/physmemd.sock"
CALL_TIMEOUT = 30.0
MAX_REPLY = 16 << 20
MAX_FDS = 253
_SUN_PATH_MAX = 108


def _secure_getenv(name):
    """getenv, but nothing in a setuid or setgid process (like secure_getenv(3))."""
    if os.getuid() != os.geteuid() or os.getgid() != os.getegid():
        return None
    return os.environ.get(name)


def system_socket():
    """The system socket; a test may point it elsewhere with PHYSMEM_TEST_SYSTEM_SOCKET."""
    e = _secure_getenv("PHYSMEM_TEST_SYSTEM_SOCKET")
    return e if e and e.startswith("/") else SYSTEM_SOCKET


def user_socket():
    """This user's own socket: root's is the system socket (as physmemd chooses it)."""
    euid = os.geteuid()
    rt = os.environ.get("XDG_RUNTIME_DIR")
    if euid == 0:
        return SYSTEM_SOCKET
    if rt and rt.startswith("/"):
        return f"{rt}/physmem/physmemd.sock"
    return f"/tmp/physmem-{euid}/physmemd.sock"


def _exists(path):
    try:
        os.lstat(path)
        return True
    except OSError:
        return False


def default_socket():
    """(path, implicit): $PHYSMEM_SOCKET, else the system socket if it exists,
    else the user's own if it exists, else the system socket."""
    env = _secure_getenv("PHYSMEM_SOCKET")
    if env:
        return env, False
    if _exists(system_socket()):
        return system_socket(), True
    own = user_socket()
    if _exists(own):
        return own, True
    return system_socket(), True


class _UidView:
    """What this process's user namespace shows of its own euid and of host root."""

    def __init__(self):
        self.self_mapped = self.root_mapped = True
        self.root_uid = 0
        self.overflow_may_be_root = False
        self.overflow = 65534
        try:
            with open("/proc/sys/kernel/overflowuid") as f:
                self.overflow = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            self.overflow = 65534
        try:
            with open("/proc/self/uid_map") as f:
                lines = f.read().split("\n")
        except OSError:
            return                      # no /proc: the initial namespace
        euid = os.geteuid()
        overflow_mapped = False
        self.self_mapped = self.root_mapped = False
        for line in lines:
            try:
                inside, outside, count = (int(x) for x in line.split())
            except ValueError:
                break
            if inside <= euid < inside + count:
                self.self_mapped = True
            if inside <= self.overflow < inside + count:
                overflow_mapped = True
            if not self.root_mapped and outside <= 0 < outside + count:
                self.root_mapped = True
                self.root_uid = inside
        self.overflow_may_be_root = not self.root_mapped and not overflow_mapped


def trusted_uid(uid, outside_ok):
    """Whether uid is root or the caller; with outside_ok also host root as seen here."""
    v = _UidView()
    if uid == 0 or (v.self_mapped and uid == os.geteuid()):
        return True
    if not outside_ok:
        return False
    return uid == v.root_uid if v.root_mapped else (v.overflow_may_be_root and uid == v.overflow)


def check_socket(path, outside_ok):
    """Refuse an implicitly chosen socket that anyone but root or the caller
    made or could replace (ConnectError with EPERM), as libphysmem does."""
    slash = path.rfind("/")
    d = "." if slash < 0 else ("/" if slash == 0 else path[:slash])
    try:
        st = os.lstat(d)
    except OSError as e:
        raise errors.ConnectError(f"daemon not reachable at {path}: {e.strerror}", e.errno) from None
    if not stat.S_ISDIR(st.st_mode):
        link = " but a symlink" if stat.S_ISLNK(st.st_mode) else ""
        raise errors.ConnectError(f"refusing socket {path}: {d} is not a directory{link}", errno.EPERM)
    if not outside_ok and not _UidView().self_mapped:
        raise errors.ConnectError(f"refusing socket {path}: your uid is not mapped in this user namespace, "
                                  "so a socket of yours cannot be told from anyone else's", errno.EPERM)
    if not trusted_uid(st.st_uid, outside_ok):
        raise errors.ConnectError(f"refusing socket {path}: its directory is owned by uid {st.st_uid}, "
                                  "not by root or you", errno.EPERM)
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise errors.ConnectError(f"refusing socket {path}: its directory is writable by others "
                                  f"(mode {stat.S_IMODE(st.st_mode):04o})", errno.EPERM)
    try:
        st = os.lstat(path)
    except OSError as e:
        raise errors.ConnectError(f"daemon not reachable at {path}: {e.strerror}", e.errno) from None
    if not stat.S_ISSOCK(st.st_mode):
        link = " but a symlink" if stat.S_ISLNK(st.st_mode) else ""
        raise errors.ConnectError(f"refusing socket {path}: it is not a socket{link}", errno.EPERM)
    if not trusted_uid(st.st_uid, outside_ok):
        raise errors.ConnectError(f"refusing socket {path}: it is owned by uid {st.st_uid}, not by root or you",
                                  errno.EPERM)


def _close_all(fds):
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


class Connection:
    """One Varlink connection; calls are synchronous and serialised by a lock."""

    def __init__(self, path=None):
        implicit = False
        if path is None:
            path, implicit = default_socket()
        path = os.fspath(path)
        if len(os.fsencode(path)) >= _SUN_PATH_MAX:
            raise errors.ConnectError("socket path too long", errno.ENAMETOOLONG)
        if implicit:
            check_socket(path, path == system_socket())
        self.path = path
        self.broken = False
        self._lock = threading.Lock()
        self._pending = b""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            s.settimeout(CALL_TIMEOUT)      # a daemon whose backlog is full must not block us forever
            try:
                s.connect(path)
            except socket.timeout:
                raise errors.ConnectError(f"daemon not reachable at {path}: {os.strerror(errno.ETIMEDOUT)}",
                                          errno.ETIMEDOUT) from None
            except OSError as e:
                raise errors.ConnectError(f"daemon not reachable at {path}: {os.strerror(e.errno)}",
                                          e.errno) from None
            # Whatever the path, only root or the caller may serve it: nothing is sent to anyone else.
            # The overflow uid may stand for host root only behind an explicit path or the system
            # socket (as in libphysmem): the per-user socket is the caller's own.
            try:
                cred = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            except OSError as e:
                raise errors.ConnectError(f"cannot learn who serves {path}: {e.strerror}", e.errno) from None
            _pid, uid, _gid = struct.unpack("3i", cred)
            uid &= 0xFFFFFFFF
            if not trusted_uid(uid, not implicit or path == system_socket()):
                raise errors.ConnectError(f"socket {path} is served by uid {uid}, not by root or you",
                                          errno.EPERM)
        except BaseException:
            s.close()
            raise
        self.sock = s

    def close(self):
        """Close the connection: the daemon frees the unnamed buffers made through it."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.broken = True

    def _break(self, message):
        self.broken = True
        return errors.ProtocolError(message)

    def call(self, method, parameters=None, fds=()):
        """Call method; returns (reply parameters, fds that came with the reply).

        A Varlink error reply raises its exception class (its fds closed)."""
        with self._lock:
            if self.broken or self.sock is None:
                raise errors.ProtocolError(f"connection to {self.path} is unusable after an earlier error")
            if len(fds) > MAX_FDS:
                raise ValueError(f"at most {MAX_FDS} fds per call")
            msg = {"method": method}
            if parameters:
                msg["parameters"] = parameters
            data = json.dumps(msg, separators=(",", ":")).encode() + b"\0"
            deadline = time.monotonic() + CALL_TIMEOUT
            self._send(data, list(fds), deadline)
            reply, rfds = self._receive(deadline)
        try:
            if not isinstance(reply, dict):
                raise self._break("the daemon sent a malformed reply")
            p = reply.get("parameters")
            if p is None:
                p = {}
            if not isinstance(p, dict) or reply.get("continues"):
                raise self._break("the daemon sent a malformed reply")
            err = reply.get("error")
            if err is not None:
                if not isinstance(err, str):
                    raise self._break("the daemon sent a malformed reply")
                raise errors.from_reply(err, p)
        except BaseException:
            _close_all(rfds)
            raise
        return p, rfds

    def _remaining(self, deadline, what):
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._break(f"{what}: no answer within {int(CALL_TIMEOUT)} s")
        return left

    def _send(self, data, fds, deadline):
        """Send one message, its fds with the first byte."""
        sent = 0
        try:
            while sent < len(data):
                self.sock.settimeout(self._remaining(deadline, "sending to the daemon"))
                if sent == 0 and fds:
                    n = self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
                else:
                    n = self.sock.send(data[sent:])
                sent += n
        except socket.timeout:
            raise self._break(f"sending to the daemon: no answer within {int(CALL_TIMEOUT)} s") from None
        except OSError as e:
            raise self._break(f"sending to the daemon: {os.strerror(e.errno)}") from None

    def _receive(self, deadline):
        """Read until one whole reply: (decoded JSON, its fds)."""
        fds = []
        try:
            while b"\0" not in self._pending:
                at_boundary = not self._pending
                self.sock.settimeout(self._remaining(deadline, "waiting for the daemon"))
                try:
                    data, new_fds, flags, _ = socket.recv_fds(self.sock, 65536, MAX_FDS,
                                                              socket.MSG_CMSG_CLOEXEC)
                except socket.timeout:
                    raise self._break(f"waiting for the daemon: no answer within {int(CALL_TIMEOUT)} s") \
                        from None
                except OSError as e:
                    raise self._break(f"receiving from the daemon: {os.strerror(e.errno)}") from None
                fds += new_fds
                if flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC):
                    raise self._break("receiving from the daemon: fds truncated")
                if not data:
                    raise self._break("the daemon closed the connection")
                if new_fds and not at_boundary:
                    raise self._break("the daemon sent fds in the middle of a message")
                self._pending += data
                if len(self._pending) > MAX_REPLY and b"\0" not in self._pending:
                    raise self._break("the daemon's reply is too large")
            raw, self._pending = self._pending.split(b"\0", 1)
            if self._pending:
                # Only one call is ever in flight: nothing may follow its reply.
                raise self._break("the daemon sent more than one reply")
            try:
                return json.loads(raw.decode("utf-8")), fds
            except (UnicodeDecodeError, ValueError, RecursionError):
                raise self._break("the daemon sent a reply that is not JSON") from None
        except BaseException:
            _close_all(fds)
            raise
