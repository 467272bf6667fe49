#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Pin refuses every fd that is not a memfd sealed against shrinking, before
it looks at the file any further (a file on a FUSE mount its caller serves
could otherwise block the daemon). Runs unprivileged in the test VM against
physmemd on the kmod backend; prints "PASS detail" or "FAIL detail".
usage: pin-bad-fd.py SOCKET
"""
import fcntl
import os
import sys

from varlink_raw import call, connect

F_ADD_SEALS = 1033
F_SEAL_SHRINK = 0x0002


def pin(path, fd):
    s = connect(path)
    r, fds = call(s, "io.physmem.Manager.Pin", {"memfdFileDescriptor": 0}, fds_out=[fd])
    s.close()
    for f in fds:
        os.close(f)
    return r


def main():
    path = sys.argv[1]
    cases = []
    plain = os.open("/etc/hostname", os.O_RDONLY)
    cases.append(("a plain file", plain))
    unsealed = os.memfd_create("unsealed", os.MFD_ALLOW_SEALING)
    os.ftruncate(unsealed, 65536)
    cases.append(("a memfd not sealed against shrinking", unsealed))
    rd, wr = os.pipe()
    cases.append(("a pipe", rd))
    for what, fd in cases:
        r = pin(path, fd)
        if r.get("error") != "org.varlink.service.InvalidParameter" or \
                r.get("parameters", {}).get("parameter") != "memfdFileDescriptor":
            print(f"FAIL Pin of {what}: {r}")
            return 1
    sealed = os.memfd_create("sealed", os.MFD_ALLOW_SEALING)
    os.write(sealed, b"\xa5" * 65536)  # a pin never fills holes
    fcntl.fcntl(sealed, F_ADD_SEALS, F_SEAL_SHRINK)
    r = pin(path, sealed)
    if "error" in r or r["parameters"]["buffer"]["size"] != 65536:
        print(f"FAIL Pin of a sealed memfd: {r}")
        return 1
    print("PASS Pin refused a plain file, an unsealed memfd and a pipe (InvalidParameter "
          "memfdFileDescriptor) and pinned a sealed memfd")
    return 0


if __name__ == "__main__":
    sys.exit(main())
