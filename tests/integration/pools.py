#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Contiguous pools from user space, without the kernel module.

Cases (each its own ctest):
  policy     the real physmemd (memfd backend): pool-users decides who gets
             past PermissionDenied (default: root only; uid:, @group, *),
             everyone else it lets through gets NotSupported("contiguous
             pools", "memfd"); a bad pool name is InvalidParameter; physmemctl
             says each in one line with its exit status; a pool-users naming
             an unknown user stops the daemon from starting.
  cli        physmemctl against a scripted daemon that has pools: status
             prints each pool, --json keeps every field of the reply (also
             ones it does not know), show prints the pool, and a
             PoolUnavailable reply is one line and exit 1.

usage: pools.py --build BUILD_DIR --source SOURCE_DIR CASE
"""
import argparse
import json
import os
import subprocess
import sys

from clients import Ctx, Daemon, Failure, SKIP, ScriptedDaemon, as_user, check, run_against
from varlink_raw import call, connect

NOBODY = 65534
OTHER = 65533
IFACE = "io.physmem.Manager"


def one_line(p):
    lines = p.stderr.strip().split("\n")
    return len(lines) == 1 and lines[0].startswith("physmemctl: alloc: ")


def raw_allocate(d, params):
    s = connect(d.sock)
    try:
        reply, fds = call(s, IFACE + ".Allocate", params)
    finally:
        s.close()
    for fd in fds:
        os.close(fd)
    return reply


def case_policy(args):
    if os.geteuid() != 0:
        print("SKIP: runs clients as other users with setpriv, which needs root")
        return SKIP
    rc = 0

    # Default: root only.
    d = Daemon(args.build, "max-pool-bytes-per-uid=96M")

    def default_policy():
        c = Ctx(args, d)
        r = raw_allocate(d, {"size": 1 << 20, "pool": "big"})
        check(r.get("error") == IFACE + ".NotSupported" and r["parameters"] ==
              {"feature": "contiguous pools", "backend": "memfd"},
              "root passes pool-users by default and gets NotSupported(contiguous pools, memfd)")
        p = c.ctl("alloc", "--pool", "big", "64M", expect=1)
        check(one_line(p) and "not supported: contiguous pools on the memfd backend" in p.stderr,
              "physmemctl alloc --pool: one line, exit 1: " + p.stderr.strip())
        p = c.ctl("alloc", "--pool", "big", "64M", uid=NOBODY, expect=4)
        check(one_line(p) and "permission denied: pool-users" in p.stderr,
              "uid 65534 without pool-users: PermissionDenied, one line, exit 4: " + p.stderr.strip())
        for bad in ("", "a" * 16, ".x", "a/b"):
            r = raw_allocate(d, {"size": 1 << 20, "pool": bad})
            check(r.get("error") == "org.varlink.service.InvalidParameter" and
                  r["parameters"] == {"parameter": "pool"}, f"pool name {bad!r}: InvalidParameter(pool)")
        r = raw_allocate(d, {"size": 1 << 20, "pool": 7})
        check(r.get("error") == "org.varlink.service.InvalidParameter", "pool of the wrong type: InvalidParameter")
        p = c.ctl("alloc", "--pool", "a/b", "1M", expect=2)
        check("invalid pool name" in p.stderr and len(p.stderr.strip().split("\n")) == 1,
              "physmemctl: a bad pool name is a usage error (exit 2)")
        s = connect(d.sock)
        st, _ = call(s, IFACE + ".Status")
        s.close()
        q = st["parameters"]["quota"]
        check(q["maxPoolBytes"] == 96 << 20 and q["poolBytes"] == 0,
              "Status: quota.maxPoolBytes is max-pool-bytes-per-uid, poolBytes 0")
        check("pools" not in st["parameters"] or st["parameters"]["pools"] is None,
              "Status on the memfd backend: no pools")
        p = c.ctl("status")
        check("pools:           none" in p.stdout and "pool quota:      0 B of 96.0 MiB" in p.stdout,
              "physmemctl status: no pools, the pool quota")
    rc |= run_against(d, default_policy)

    # Named users and groups; everyone else still refused.
    d = Daemon(args.build, f"pool-users=uid:{NOBODY}, gid:4242")

    def named():
        c = Ctx(args, d)
        p = c.ctl("alloc", "--pool", "big", "64M", uid=NOBODY, expect=1)
        check("not supported: contiguous pools" in p.stderr, "uid:65534 listed: past the policy (NotSupported)")
        p = c.ctl("alloc", "--pool", "big", "64M", uid=OTHER, expect=4)
        check("permission denied" in p.stderr, "uid 65533 not listed: PermissionDenied")
        p = c.ctl("alloc", "--pool", "big", "64M", uid=OTHER, groups=[4242], expect=1)
        check("not supported" in p.stderr, "a member of gid:4242 (supplementary): past the policy")
        p = c.ctl("alloc", "64M", uid=OTHER, expect=0)
        check("buffer" in p.stdout or "id:" in p.stdout, "pool-users does not touch ordinary allocations")
    rc |= run_against(d, named)

    d = Daemon(args.build, "pool-users=*")

    def everyone():
        c = Ctx(args, d)
        p = c.ctl("alloc", "--pool", "big", "64M", uid=OTHER, expect=1)
        check("not supported" in p.stderr, "pool-users=*: anybody passes the policy")
    rc |= run_against(d, everyone)

    # A name that does not resolve is a configuration error, not an empty list.
    try:
        Daemon(args.build, "pool-users=no-such-user-physmem")
        print("not ok - physmemd started with pool-users naming an unknown user")
        rc |= 1
    except Failure as e:
        check("no such user 'no-such-user-physmem'" in str(e) and "--set pool-users: bad value" in str(e),
              "pool-users naming an unknown user: physmemd refuses to start, naming the key")
    return rc


def case_cli(args):
    quota = {"uid": 0, "maxBuffers": 256, "maxBytes": 1 << 30, "buffers": 1, "bytes": 64 << 20,
             "heldBytes": 0, "poolBytes": 64 << 20, "maxPoolBytes": 1 << 30}
    status = {"version": "9", "backend": "kmod", "dmaSafe": True, "buffers": 1, "bytes": 64 << 20,
              "connections": 1, "maxBufferSize": 1 << 30, "maxMessageSize": 65536, "maxConnections": 1024,
              "maxConnectionsPerUid": 64, "addressPolicy": "owner", "quota": quota,
              "pools": [{"name": "physmem", "kind": "reserve_mem", "size": 352 << 20, "free": 288 << 20,
                         "largestFree": 288 << 20, "buffers": 1, "failExhausted": 3},
                        {"name": "default", "kind": "cma", "buffers": 0}]}
    buf = {"id": 5, "size": 64 << 20, "contiguous": True, "cache": "cached", "backend": "kmod", "ownerUid": 0,
           "ownerPid": 1, "allowUids": [], "allowGids": [], "locked": True, "dmaSafe": True,
           "segments": [{"address": 0x40000000, "length": 64 << 20}], "pool": "physmem"}
    unavailable = {"error": IFACE + ".PoolUnavailable",
                   "parameters": {"pool": "physmem", "reason": "exhausted", "size": 512 << 20,
                                  "free": 288 << 20, "largestFree": 288 << 20}}
    s = ScriptedDaemon(replies={"Status": {"parameters": status}, "Describe": {"parameters": {"buffer": buf}},
                                "Allocate": unavailable})
    ctl = os.path.join(args.build, "client", "physmemctl")

    def run(*argv, expect=0):
        p = subprocess.run([ctl, "--socket", s.sock] + list(argv), capture_output=True, text=True, timeout=60)
        if p.returncode != expect:
            raise Failure(f"{' '.join(argv)}: exit {p.returncode}, expected {expect}\n{p.stdout}{p.stderr}")
        return p

    try:
        p = run("status")
        check("pool physmem     reserve_mem, size 352.0 MiB, free 288.0 MiB, largest free run 288.0 MiB, "
              "1 buffers" in p.stdout, "status prints a pool's size, free, largest free run and buffers")
        check("pool default     cma, size and free unknown (shared with the kernel), 0 buffers" in p.stdout,
              "status says when a CMA pool's figures are unknown")
        check("pool quota:      64.0 MiB of 1.0 GiB" in p.stdout, "status prints the pool quota")
        j = json.loads(run("--json", "status").stdout)
        want = json.loads(json.dumps(status))
        want["pools"][1].update({"size": None, "free": None, "largestFree": None})
        check(j == want, "status --json: every field of the reply, unknown ones (failExhausted) included")
        p = run("show", "5")
        check("pool:         physmem" in p.stdout, "show prints the pool")
        j = json.loads(run("--json", "show", "5").stdout)
        check(j["pool"] == "physmem" and j["segments"] == buf["segments"], "show --json keeps the pool")
        p = run("alloc", "--pool", "physmem", "512M", expect=1)
        check(p.stderr.strip() == "physmemctl: alloc: pool 'physmem' unavailable: exhausted (asked 536870912 "
              "bytes, free 301989888, largest free run 301989888)",
              "PoolUnavailable: one line, exit 1: " + p.stderr.strip())
        sent = s.calls[-1]["parameters"]
        check(sent["pool"] == "physmem" and sent["size"] == 512 << 20 and sent["contiguous"] is True,
              "alloc --pool sends pool, size and contiguous")
        run("alloc", "--pool", "physmem", "--device", "0000:00:03.0", "--access", "to-device", "512M", expect=1)
        sent = s.calls[-1]["parameters"]
        check(sent["pool"] == "physmem" and sent["device"] == "0000:00:03.0" and sent["deviceAccess"] == "toDevice"
              and sent["size"] == 512 << 20 and sent["contiguous"] is True,
              "alloc --pool --device sends one Allocate with pool and device")
    except Failure as e:
        print(f"not ok - {e}")
        return 1
    finally:
        s.close()
    return 0


CASES = {"policy": case_policy, "cli": case_cli}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    args = ap.parse_args()
    return CASES[args.case](args)


if __name__ == "__main__":
    sys.exit(main())
