#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Page lifetime through physmemd on the kmod backend, as an unprivileged
client. Prints "ok ..." lines and a final "PASS detail" or "FAIL detail".

usage: page-lifetime.py SOCKET STATS_DIR CASE
  pin-close   Pin a written memfd, write a pattern through the buffer's
              mapping, close the memfd: the mapping keeps the pattern;
              closing it brings the module counters back.
  pin-sparse  Pin of a memfd range with a hole: NotPopulated, and the
              hole is still a hole.
  vmsplice    Allocate, vmsplice part of the mapping into a pipe, Free and
              close everything but the pipe: heldBytes still counts the
              buffer and an Allocate that fits only without it gets
              QuotaExceeded; closing the pipe releases the charge.
"""
import ctypes
import fcntl
import mmap
import os
import sys
import time

from varlink_raw import call, connect

F_ADD_SEALS = 1033
F_SEAL_SHRINK = 0x0002
PAGE = 4096


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


def counters(stats):
    with open(os.path.join(stats, "buffers")) as f, open(os.path.join(stats, "bytes")) as g:
        return int(f.read()), int(g.read())


def status(path):
    s = connect(path)
    r, _ = call(s, "io.physmem.Manager.Status")
    s.close()
    return r["parameters"]


def wait_until(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def pattern(n, seed):
    return bytes((i * 7 + seed) & 0xff for i in range(n))


def sealed_memfd(size, data):
    fd = os.memfd_create("page-lifetime", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    if data:
        os.pwrite(fd, data, 0)
    fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK)
    return fd


def pin(s, memfd, size):
    r, fds = call(s, "io.physmem.Manager.Pin", {"memfdFileDescriptor": 0, "size": size},
                  fds_out=[memfd])
    return r, fds


def case_pin_close(path, stats):
    size = 256 * 1024
    base = counters(stats)
    memfd = sealed_memfd(size, pattern(size, 1))
    s = connect(path)
    r, fds = pin(s, memfd, size)
    if "error" in r or len(fds) != 1:
        fail(f"Pin: {r}")
    m = mmap.mmap(fds[0], size)
    if m[:] != pattern(size, 1):
        fail("the pinned mapping does not show the memfd's bytes")
    m[:] = pattern(size, 2)
    os.close(memfd)  # our only reference: the file goes
    if m[:] != pattern(size, 2):
        fail("the pinned mapping lost its bytes when the memfd was closed")
    r, _ = call(s, "io.physmem.Manager.Free", {"id": r["parameters"]["buffer"]["id"]})
    if "error" in r:
        fail(f"Free: {r}")
    s.close()
    m.close()
    os.close(fds[0])
    if not wait_until(lambda: counters(stats) == base):
        fail(f"module counters {counters(stats)} after closing, base {base}")
    print(f"PASS {size} bytes pinned, written through the buffer, memfd closed: the buffer kept "
          "the bytes; freed and closed: module counters back to the baseline")


def case_pin_sparse(path, stats):
    size = 256 * 1024
    memfd = sealed_memfd(size, pattern(64 * 1024, 3))  # [64K, 256K) is a hole
    blocks = os.fstat(memfd).st_blocks
    s = connect(path)
    r, fds = pin(s, memfd, size)
    s.close()
    for f in fds:
        os.close(f)
    if r.get("error") != "io.physmem.Manager.NotPopulated" or "offset" not in r.get("parameters", {}):
        fail(f"Pin of a sparse memfd: {r}, want NotPopulated")
    if os.fstat(memfd).st_blocks != blocks or os.lseek(memfd, 0, os.SEEK_HOLE) != 64 * 1024:
        fail(f"the refused pin filled the hole: st_blocks {blocks} -> {os.fstat(memfd).st_blocks}")
    os.close(memfd)
    print(f"PASS Pin of a sparse memfd: NotPopulated; st_blocks {blocks} unchanged, the hole still a hole")


class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def vmsplice(pipe_w, addr, length):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.vmsplice.argtypes = [ctypes.c_int, ctypes.POINTER(Iovec), ctypes.c_size_t, ctypes.c_uint]
    libc.vmsplice.restype = ctypes.c_ssize_t
    iov = Iovec(addr, length)
    n = libc.vmsplice(pipe_w, ctypes.byref(iov), 1, 0)
    if n < 0:
        fail(f"vmsplice: {os.strerror(ctypes.get_errno())}")
    return n


def quota(path):
    q = status(path)["quota"]
    return q["buffers"], q["bytes"], q.get("heldBytes"), q["maxBytes"]


def case_vmsplice(path, stats):
    size, spliced = 1 << 20, 64 * 1024
    base = counters(stats)
    s = connect(path)
    r, fds = call(s, "io.physmem.Manager.Allocate", {"size": size})
    if "error" in r:
        fail(f"Allocate: {r}")
    bid = r["parameters"]["buffer"]["id"]
    m = mmap.mmap(fds[0], size)
    m[:spliced] = pattern(spliced, 4)
    rd, wr = os.pipe()
    anchor = ctypes.c_char.from_buffer(m)
    n = vmsplice(wr, ctypes.addressof(anchor), spliced)
    del anchor
    if n != spliced:
        fail(f"vmsplice spliced {n} of {spliced} bytes")
    r, _ = call(s, "io.physmem.Manager.Free", {"id": bid})
    if "error" in r:
        fail(f"Free: {r}")
    m.close()
    os.close(fds[0])
    s.close()
    q = quota(path)
    if q[:3] != (1, size, size):
        fail(f"after Free and close, pages in a pipe: quota (buffers, bytes, held) {q[:3]}, "
             f"want (1, {size}, {size})")
    print("ok released, pages in a pipe: still charged", q[:3])
    # fits the quota only if the spliced buffer were not charged
    want = q[3] - size + PAGE
    s = connect(path)
    r, fds2 = call(s, "io.physmem.Manager.Allocate", {"size": want})
    s.close()
    for f in fds2:
        os.close(f)
    if r.get("error") != "io.physmem.Manager.QuotaExceeded":
        fail(f"Allocate of {want} bytes (quota {q[3]}, {size} held): {r}, want QuotaExceeded")
    print("ok an Allocate over the quota with the held buffer: QuotaExceeded")
    if os.read(rd, spliced) != pattern(spliced, 4):
        fail("the pipe does not hold the buffer's bytes")
    os.close(rd)
    os.close(wr)
    if not wait_until(lambda: quota(path)[:3] == (0, 0, 0) and counters(stats) == base):
        fail(f"after closing the pipe: quota {quota(path)[:3]}, module counters {counters(stats)} "
             f"(base {base})")
    print(f"PASS {spliced} of {size} bytes vmspliced into a pipe: after Free and close the "
          "buffer stayed charged (heldBytes) and an Allocate that fit only without it got "
          "QuotaExceeded; pipe closed: quota 0 and module counters back to the baseline")


def main():
    path, stats, case = sys.argv[1], sys.argv[2], sys.argv[3]
    {"pin-close": case_pin_close, "pin-sparse": case_pin_sparse,
     "vmsplice": case_vmsplice}[case](path, stats)


if __name__ == "__main__":
    main()
