#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""An impostor physmemd for the client tests: it never answers, it only tells.

usage: fake_daemon.py PATH

Listens on PATH, prints "ready", then for each client one line "conn N",
where N is the number of bytes the client sent before it closed (or the
first read returned data). Exits when its standard input reaches EOF.
"""
import os
import select
import socket
import sys


def main():
    path = sys.argv[1]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o666)
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
