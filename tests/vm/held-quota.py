#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A client that keeps its buffer's fd after Free and after disconnecting:
the memory must stay charged to it until it really lets go.

Runs as an unprivileged user inside the test VM against physmemd on the kmod
backend. Prints "ok ..." lines and a final "PASS detail" or "FAIL detail".
usage: held-quota.py SOCKET STATS_DIR
"""
import mmap
import os
import sys
import time

from varlink_raw import call, connect

SIZE = 1 << 20


def quota(path):
    s = connect(path)
    r, _ = call(s, "io.physmem.Manager.Status")
    s.close()
    q = r["parameters"]["quota"]
    return q["buffers"], q["bytes"], q.get("heldBytes")


def counters(stats):
    with open(os.path.join(stats, "buffers")) as f, open(os.path.join(stats, "bytes")) as g:
        return int(f.read()), int(g.read())


def settle(path, timeout=10.0):
    """The daemon handles a disconnect asynchronously: wait until ours is
    the only connection left (the one asking), then read the quota."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = connect(path)
        r, _ = call(s, "io.physmem.Manager.Status")
        s.close()
        if r["parameters"]["connections"] == 1:
            break
        time.sleep(0.05)
    return quota(path)


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


def main():
    path, stats = sys.argv[1], sys.argv[2]
    base = counters(stats)

    # 1. Free while the fd and a mapping are kept.
    s = connect(path)
    r, fds = call(s, "io.physmem.Manager.Allocate", {"size": SIZE})
    bid = r["parameters"]["buffer"]["id"]
    m = mmap.mmap(fds[0], SIZE)
    m[:5] = b"still"
    r, _ = call(s, "io.physmem.Manager.Free", {"id": bid})
    if "error" in r:
        fail(f"Free: {r}")
    # Free replies before the release runs on a worker: the buffer turns
    # "held" a moment later (liveness wait only; the state is asserted).
    deadline = time.monotonic() + 10.0
    q = quota(path)
    while q != (1, SIZE, SIZE) and time.monotonic() < deadline:
        time.sleep(0.05)
        q = quota(path)
    if q != (1, SIZE, SIZE):
        fail(f"after Free with the fd kept: quota (buffers, bytes, held) {q}, want (1, {SIZE}, {SIZE})")
    print("ok freed but held: still charged", q)

    # 2. Disconnect, still holding it: no escape from the quota either.
    s.close()
    q = settle(path)
    if q != (1, SIZE, SIZE):
        fail(f"after disconnecting with the fd kept: quota {q}")
    if m[:5] != b"still" or counters(stats)[0] != base[0] + 1:
        fail(f"the held memory changed or vanished: counters {counters(stats)}")
    print("ok disconnected but held: still charged", q)

    # 3. An unnamed buffer left behind by disconnecting, fd kept.
    s = connect(path)
    r, fds2 = call(s, "io.physmem.Manager.Allocate", {"size": SIZE})
    s.close()
    q = settle(path)
    if q != (2, 2 * SIZE, 2 * SIZE):
        fail(f"unnamed buffer, owner gone, fd kept: quota {q}, want (2, {2 * SIZE}, {2 * SIZE})")
    print("ok owner gone, fd kept: still charged", q)

    # 4. Let go: the charge goes with the memory.
    m.close()
    os.close(fds[0])
    os.close(fds2[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (quota(path) != (0, 0, 0) or counters(stats) != base):
        time.sleep(0.05)
    q = quota(path)
    if q != (0, 0, 0) or counters(stats) != base:
        fail(f"after closing: quota {q}, module counters {counters(stats)} (base {base})")
    print("ok released: quota and module counters back to", q, base)
    print(f"PASS Free/disconnect with the dma-buf kept: {SIZE} bytes stayed charged (heldBytes) until "
          "the fd and mapping were closed; then quota 0 and module counters back to the baseline")


if __name__ == "__main__":
    main()
