#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""An impostor physmemd for the client tests: it never answers, it only tells.

usage: fake_daemon.py [--owner UID --listen-as UID] PATH

Listens on PATH, prints "ready", then for each client one line "conn N",
where N is the number of bytes the client sent before it closed (or the
first read returned data). Exits when its standard input reaches EOF.

Run as root with --owner and --listen-as, it binds PATH, gives the socket file
to the owner uid and then calls listen() as the other uid: the socket passes a
client's path checks while SO_PEERCRED names someone else.
"""
import os
import select
import socket
import sys


def main():
    args = sys.argv[1:]
    owner = listen_as = None
    while len(args) > 1 and args[0] in ("--owner", "--listen-as"):
        if args[0] == "--owner":
            owner = int(args[1])
        else:
            listen_as = int(args[1])
        args = args[2:]
    path = args[0]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o666)
    if owner is not None:
        os.chown(path, owner, owner)
    if listen_as is not None:
        os.setgroups([])
        os.setgid(listen_as)
        os.setuid(listen_as)
    s.listen(16)
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select([s, sys.stdin], [], [])
        if s in ready:                      # before stdin: report every client that came
            c, _ = s.accept()
            c.settimeout(20)
            try:
                n = len(c.recv(65536))
            except socket.timeout:
                n = -1
            print(f"conn {n}", flush=True)
            c.close()
            continue
        if not sys.stdin.readline():
            return 0


if __name__ == "__main__":
    sys.exit(main())
