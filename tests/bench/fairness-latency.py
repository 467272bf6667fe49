#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Measurement, not a test: Status latency of one uid while another uid
loops Allocate + touch + Free of a large buffer (security finding 6).
Prints the percentiles; asserts nothing. Run as root against a daemon whose
socket both uids can reach, e.g.

  physmemd --socket /tmp/pm/s.sock --backend memfd &
  tests/bench/fairness-latency.py --socket /tmp/pm/s.sock --size 1G --seconds 20
"""
import argparse
import mmap
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from varlink_raw import call, connect  # noqa: E402

M = "io.physmem.Manager."


def hog(sock, size, until):
    """As uid 65534: Allocate, touch every page, Free, until the deadline."""
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    s = connect(sock)
    n = 0
    while time.monotonic() < until:
        r, fds = call(s, M + "Allocate", {"size": size})
        if "error" in r:
            print("hog:", r, file=sys.stderr)
            break
        m = mmap.mmap(fds[0], size)
        for off in range(0, size, 4096):
            m[off] = 1
        m.close()
        os.close(fds[0])
        call(s, M + "Free", {"id": r["parameters"]["buffer"]["id"]})
        n += 1
    print(f"hog: {n} rounds of {size} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--size", default="1G")
    ap.add_argument("--seconds", type=float, default=20)
    a = ap.parse_args()
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    size = int(a.size[:-1]) * units[a.size[-1]] if a.size[-1] in units else int(a.size)
    until = time.monotonic() + a.seconds
    pid = os.fork()
    if pid == 0:
        try:
            hog(a.socket, size, until)
        finally:
            os._exit(0)
    os.setgroups([])
    os.setgid(65533)
    os.setuid(65533)
    s = connect(a.socket)
    lat = []
    while time.monotonic() < until:
        t = time.monotonic()
        call(s, M + "Status")
        lat.append(time.monotonic() - t)
        time.sleep(0.01)
    os.waitpid(pid, 0)
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
    print(f"other uid's Status: {len(lat)} calls, p50 {pct(0.5):.2f} ms, p99 {pct(0.99):.2f} ms, "
          f"max {lat[-1] * 1000:.2f} ms")


if __name__ == "__main__":
    main()
