# SPDX-License-Identifier: GPL-2.0-or-later
"""The smallest possible Varlink client, written from the spec alone: one
call on a Unix stream socket, NUL-terminated JSON, fds collected from
SCM_RIGHTS. Shared by the tests that play a client knowing nothing of
physmem (clients.py, fdstore.py, tests/vm/held-quota.py)."""
import array
import json
import socket


class Closed(Exception):
    """The daemon closed the connection before replying."""


def call(sock, method, params=None, fds_out=()):
    """Send one call (with fds_out on its first byte); return (reply, fds received with it)."""
    msg = json.dumps({"method": method, "parameters": params or {}}).encode() + b"\0"
    if fds_out:
        sent = sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds_out))])
        sock.sendall(msg[sent:])
    else:
        sock.sendall(msg)
    return receive(sock, method)


def receive(sock, method="the call"):
    """Read one reply (up to its NUL); return (reply, fds received with it)."""
    buf, fds = b"", []
    while not buf.endswith(b"\0"):
        data, anc, _, _ = sock.recvmsg(1 << 16, socket.CMSG_SPACE(4 * 253))
        for level, typ, payload in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(payload[:len(payload) - len(payload) % 4])
                fds += list(a)
        if not data:
            raise Closed(f"connection closed during {method}")
        buf += data
    return json.loads(buf[:-1]), fds


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s
