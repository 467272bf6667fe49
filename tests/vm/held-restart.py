#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Held memory stays charged across a daemon restart with the fd store.

Runs as root inside the test VM: physmemd on the kmod backend under the
fake systemd of tests/integration/fdstore.py (which keeps the fd store and
passes it back). A buffer freed while its fd is kept, and an unnamed one
left to the shutdown with its fd kept, must still be charged (heldBytes)
after the restart, until the fds go. Prints "PASS detail" or "FAIL detail".
usage: held-restart.py PHYSMEMD STATS_DIR      (PHYSMEMD: a program that
execs physmemd with its options, keeping its pid)
"""
import mmap
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.environ.get("PHYSMEM_SRC", "."), "tests", "integration"))
from fdstore import FakeSystemd, stop  # noqa: E402
from varlink_raw import call, connect  # noqa: E402

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


def wait_quota(path, want, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and quota(path) != want:
        time.sleep(0.05)
    return quota(path)


daemon_proc = None


def fail(msg):
    print("FAIL " + msg)
    if daemon_proc and daemon_proc.poll() is None:
        daemon_proc.kill()          # never leave a daemon behind
        daemon_proc.wait()
    sys.exit(1)


def main():
    global daemon_proc
    daemon, stats = sys.argv[1], sys.argv[2]
    base = counters(stats)
    sd = FakeSystemd(tempfile.mkdtemp(prefix="held-restart-", dir=os.environ.get("PHYSMEM_TMP")))
    p = daemon_proc = sd.start(daemon)
    if not sd.wait_for("READY", "1"):
        fail("first daemon not ready")
    path = sd.listen_path

    s = connect(path)
    r, fds = call(s, "io.physmem.Manager.Allocate", {"size": SIZE})
    m = mmap.mmap(fds[0], SIZE)
    m[:4] = b"held"
    r, _ = call(s, "io.physmem.Manager.Free", {"id": r["parameters"]["buffer"]["id"]})
    if "error" in r:
        fail(f"Free: {r}")
    _, fds2 = call(s, "io.physmem.Manager.Allocate", {"size": SIZE})
    q = quota(path)
    if q != (2, 2 * SIZE, SIZE):
        fail(f"before the restart: quota (buffers, bytes, held) {q}, want (2, {2 * SIZE}, {SIZE})")
    print("ok before the restart: one freed but held, one live", q)

    # The live one is left to the shutdown, its fd kept: held too.
    if stop(p) != 0:
        fail("first daemon did not exit 0 on SIGTERM")
    s.close()
    sd.pump()
    p = daemon_proc = sd.start(daemon)
    if not sd.wait_for("READY", "1"):
        fail("second daemon not ready")
    q = quota(path)
    if q != (2, 2 * SIZE, 2 * SIZE):
        fail(f"after the restart: quota {q}, want (2, {2 * SIZE}, {2 * SIZE}): held memory escaped its charge")
    print("ok after the restart: both still charged", q)

    m.close()
    os.close(fds[0])
    q = wait_quota(path, (1, SIZE, SIZE))
    if q != (1, SIZE, SIZE):
        fail(f"after closing the first: quota {q}, want (1, {SIZE}, {SIZE})")
    os.close(fds2[0])
    q = wait_quota(path, (0, 0, 0))
    if q != (0, 0, 0) or counters(stats) != base:
        fail(f"after closing both: quota {q}, module counters {counters(stats)} (base {base})")
    if stop(p) != 0:
        fail("second daemon did not exit 0 on SIGTERM")
    print(f"PASS restart with {2 * SIZE} bytes held by a client's fds: still charged (heldBytes) after it, "
          "released one by one as the fds closed; quota 0 and module counters back to the baseline")


if __name__ == "__main__":
    main()
