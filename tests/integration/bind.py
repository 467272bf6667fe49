#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Device bindings against the real physmemd (memfd backend), without a device.

physmemd runs with the memfd backend and pci-sysfs pointed at a fake PCI
tree in a temporary directory: 0000:00:03.0 (1234:11e8, driver "edu-drv",
IOMMU group 5 of type DMA) and 0000:00:04.0 (8086:10d3, driver vfio-pci, no
group). bind-device lets uid 65534 bind the first by address and group 65533
the second by ids. Each case checks the exact Varlink error: a malformed
device name is InvalidParameter(device), an absent device NoSuchDevice, a
uid the policy does not name PermissionDenied, one it names NotSupported
(memfd cannot bind), Unbind of a binding that does not exist NoSuchDevice,
and Status lists exactly the devices the caller may bind. With --ctl, the
same through physmemctl: one error line and a non-zero exit.

Root only (it plays other uids); exit 77 otherwise. Exit 1 if a case failed.
Usage: bind.py --daemon PATH/TO/physmemd [--ctl PATH/TO/physmemctl]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import varlink_raw  # noqa: E402

IFACE = "io.physmem.Manager."
E_INVALID = "org.varlink.service.InvalidParameter"
NOBODY = 65534
OTHER = 65532
GROUP = 65533
WAIT = 10.0
failed = 0


def check(cond, what):
    global failed
    print(("ok - " if cond else "not ok - ") + what)
    if not cond:
        failed += 1


def make_sysfs(root):
    """A fake /sys/bus/pci/devices with two devices."""
    devs = os.path.join(root, "devices")
    os.makedirs(os.path.join(root, "drivers", "edu-drv"))
    os.makedirs(os.path.join(root, "drivers", "vfio-pci"))
    os.makedirs(os.path.join(root, "groups", "5"))
    with open(os.path.join(root, "groups", "5", "type"), "w") as f:
        f.write("DMA\n")
    for name, vendor, device, driver, group in (("0000:00:03.0", "0x1234", "0x11e8", "edu-drv", "5"),
                                                ("0000:00:04.0", "0x8086", "0x10d3", "vfio-pci", None)):
        d = os.path.join(devs, name)
        os.makedirs(d)
        for attr, val in (("vendor", vendor), ("device", device)):
            with open(os.path.join(d, attr), "w") as f:
                f.write(val + "\n")
        os.symlink(os.path.join(root, "drivers", driver), os.path.join(d, "driver"))
        if group:
            os.symlink(os.path.join(root, "groups", group), os.path.join(d, "iommu_group"))
    # Not a device: ignored.
    os.makedirs(os.path.join(devs, "not-a-device"))
    return devs


def call_as(uid, sock, method, params, gid=None):
    """One call as uid (and gid) in a child process; returns the reply."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            g = gid if gid is not None else uid
            os.setgroups([])
            os.setgid(g)
            os.setuid(uid)
            s = varlink_raw.connect(sock)
            s.settimeout(WAIT)
            reply, fds = varlink_raw.call(s, IFACE + method, params)
            os.write(w, json.dumps(reply).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data) if data else {"error": "child failed"}


def error_of(reply):
    return reply.get("error"), reply.get("parameters", {})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--ctl")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: needs root to play uids 65534 and 65532")
        return 77

    tmp = tempfile.mkdtemp(prefix="physmem-bind-")
    os.chmod(tmp, 0o755)
    sock = os.path.join(tmp, "physmemd.sock")
    devs = make_sysfs(os.path.join(tmp, "sys"))
    conf = os.path.join(tmp, "physmemd.conf")
    with open(conf, "w") as f:
        f.write("# who may bind what\n"
                f"bind-device = 0000:00:03.0 uid:{NOBODY}\n"
                f"bind-device = 8086:10d3 gid:{GROUP}\n"
                "max-bindings-per-uid = 2\n"
                f"pci-sysfs = {devs}\n")
    log = open(os.path.join(tmp, "physmemd.log"), "w+")
    proc = subprocess.Popen([args.daemon, "--socket", sock, "--backend", "memfd", "--config", conf,
                             "--set", "fdstore=no"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + WAIT
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                print(log.read())
                raise SystemExit("physmemd did not start")
            time.sleep(0.05)
        run_cases(sock, args.ctl)
        # Still alive and serving after all that.
        check("error" not in call_as(0, sock, "Status", {}), "the daemon still answers")
    finally:
        proc.terminate()
        rc = proc.wait(timeout=WAIT)
        check(rc == 0, f"physmemd exits 0 on SIGTERM (got {rc})")
        if failed:
            log.seek(0)
            print(log.read()[-4000:])
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{failed} failed")
    return 1 if failed else 0


def run_cases(sock, ctl):
    # Malformed names: InvalidParameter(device), for every call that takes one.
    for bad in ("", "edu", "0000:00:03", "0000:00:20.0", "0000:00:03.8", "00000:00:03.0", "0:0:3.0",
                "x" * 5000, "0000:00:03.0 "):
        for method, params in (("Allocate", {"size": 4096, "device": bad}),
                               ("Bind", {"id": 1, "device": bad}),
                               ("Unbind", {"id": 1, "device": bad})):
            e, p = error_of(call_as(NOBODY, sock, method, params))
            check(e == E_INVALID and p.get("parameter") == "device",
                  f"{method} device={bad[:20]!r}: InvalidParameter(device) (got {e} {p})")
    e, p = error_of(call_as(NOBODY, sock, "Allocate", {"size": 4096, "device": 3}))
    check(e == E_INVALID and p.get("parameter") == "device", f"device of the wrong type: InvalidParameter ({e})")
    e, p = error_of(call_as(NOBODY, sock, "Allocate", {"size": 4096, "device": "00:03.0",
                                                         "deviceAccess": "sideways"}))
    check(e == E_INVALID and p.get("parameter") == "deviceAccess", f"bad deviceAccess: InvalidParameter ({e} {p})")

    # An absent device: NoSuchDevice with the canonical name.
    e, p = error_of(call_as(NOBODY, sock, "Allocate", {"size": 4096, "device": "00:1F.7"}))
    check(e == IFACE + "NoSuchDevice" and p.get("device") == "0000:00:1f.7", f"absent device: NoSuchDevice ({e} {p})")

    # Policy: a uid not named is refused; the named one gets as far as the backend.
    e, p = error_of(call_as(OTHER, sock, "Allocate", {"size": 4096, "device": "0000:00:03.0"}))
    check(e == IFACE + "PermissionDenied", f"uid {OTHER} not in bind-device: PermissionDenied ({e})")
    for access in (None, "toDevice", "fromDevice", "bidirectional"):
        params = {"size": 4096, "device": "0000:00:03.0"}
        if access:
            params["deviceAccess"] = access
        e, p = error_of(call_as(NOBODY, sock, "Allocate", params))
        check(e == IFACE + "NotSupported" and p == {"feature": "device binding", "backend": "memfd"},
              f"uid {NOBODY} named, access {access}: NotSupported(device binding, memfd) ({e} {p})")
    # The rule by ids through a group: also the backend's refusal, not the policy's.
    e, p = error_of(call_as(OTHER, sock, "Allocate", {"size": 4096, "device": "0000:00:04.0"}, gid=GROUP))
    check(e == IFACE + "NotSupported", f"group {GROUP} by vendor:device: NotSupported ({e})")
    e, p = error_of(call_as(NOBODY, sock, "Allocate", {"size": 4096, "device": "0000:00:04.0"}))
    check(e == IFACE + "PermissionDenied", f"uid {NOBODY} not in the ids rule: PermissionDenied ({e})")
    # A failed Allocate with device leaves no buffer behind.
    r = call_as(NOBODY, sock, "List", {})
    check(r.get("parameters", {}).get("buffers") == [], "no buffer left by the refused allocations")

    # Bind and Unbind on a buffer.
    r = call_as(NOBODY, sock, "Allocate", {"size": 4096, "name": "bindme"})
    bid = r.get("parameters", {}).get("buffer", {}).get("id")
    check(isinstance(bid, int) and "devices" not in r["parameters"]["buffer"], "plain buffer: no devices")
    e, p = error_of(call_as(NOBODY, sock, "Bind", {"id": bid, "device": "0000:00:03.0"}))
    check(e == IFACE + "NotSupported", f"Bind on memfd: NotSupported ({e})")
    e, p = error_of(call_as(NOBODY, sock, "Bind", {"id": bid, "device": "0000:00:03"}))
    check(e == E_INVALID and p.get("parameter") == "device", f"Bind of a malformed device: InvalidParameter ({e})")
    e, p = error_of(call_as(OTHER, sock, "Bind", {"id": bid, "device": "0000:00:03.0"}))
    check(e == IFACE + "NoSuchBuffer", f"Bind of another user's buffer: NoSuchBuffer ({e})")
    e, p = error_of(call_as(NOBODY, sock, "Bind", {"id": bid + 1000, "device": "0000:00:03.0"}))
    check(e == IFACE + "NoSuchBuffer", f"Bind of no buffer: NoSuchBuffer ({e})")
    e, p = error_of(call_as(NOBODY, sock, "Bind", {"id": bid}))
    check(e == E_INVALID and p.get("parameter") == "device", f"Bind without device: InvalidParameter ({e} {p})")
    e, p = error_of(call_as(NOBODY, sock, "Unbind", {"id": bid, "device": "0000:00:03.0"}))
    check(e == IFACE + "NoSuchDevice" and p.get("device") == "0000:00:03.0",
          f"Unbind of a binding that does not exist: NoSuchDevice ({e} {p})")
    e, p = error_of(call_as(NOBODY, sock, "Unbind", {"id": bid, "device": "03.0"}))
    check(e == E_INVALID and p.get("parameter") == "device", f"Unbind of a malformed device: InvalidParameter ({e})")
    e, p = error_of(call_as(OTHER, sock, "Unbind", {"id": bid, "device": "0000:00:03.0"}))
    check(e == IFACE + "NoSuchBuffer", f"Unbind on another user's buffer: NoSuchBuffer ({e})")

    # Status: only the devices the caller's policy names, with what sysfs says.
    st = call_as(NOBODY, sock, "Status", {}).get("parameters", {})
    devs = st.get("bindableDevices")
    check(devs == [{"device": "0000:00:03.0", "vendor": 0x1234, "product": 0x11e8, "driver": "edu-drv",
                    "iommuGroup": 5, "translation": "iommu", "bindable": False,
                    "reason": "the backend cannot bind devices"}],
          f"Status as {NOBODY}: edu only, as sysfs describes it ({devs})")
    st = call_as(OTHER, sock, "Status", {}).get("parameters", {})
    check("bindableDevices" not in st, f"Status as {OTHER}: no bindable device ({st.get('bindableDevices')})")
    st = call_as(OTHER, sock, "Status", {}, gid=GROUP).get("parameters", {})
    devs = st.get("bindableDevices") or []
    check([d["device"] for d in devs] == ["0000:00:04.0"] and devs[0].get("driver") == "vfio-pci" and
          devs[0].get("translation") == "direct" and devs[0].get("bindable") is False and "iommuGroup" not in devs[0],
          f"Status as group {GROUP}: the vfio device, direct ({devs})")
    st = call_as(0, sock, "Status", {}).get("parameters", {})
    check(sorted(d["device"] for d in st.get("bindableDevices") or []) == ["0000:00:03.0", "0000:00:04.0"],
          "Status as root: every device")

    if ctl:
        run_ctl_cases(sock, ctl, bid)


def ctl_as(uid, sock, ctl, *argv):
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", ctl, "--socket", sock]
                          + list(argv), capture_output=True, text=True, timeout=WAIT * 3)


def one_line_error(p):
    lines = p.stderr.strip().splitlines()
    return p.returncode != 0 and len(lines) == 1 and "Traceback" not in p.stderr and p.stdout == ""


def run_ctl_cases(sock, ctl, bid):
    for argv, want in ((["alloc", "4096", "--device", "bogus"], "device"),
                       (["alloc", "4096", "--device", "00:1f.7"], "0000:00:1f.7"),
                       (["alloc", "4096", "--device", "00:03.0", "--access", "sideways"], "access"),
                       (["alloc", "4096", "--device", "00:03.0"], "device binding"),
                       (["bind", str(bid), "00:03.0"], "device binding"),
                       (["bind", str(bid)], ""),
                       (["unbind", str(bid), "00:03.0"], "0000:00:03.0"),
                       (["unbind", str(bid), "nope"], "device")):
        p = ctl_as(NOBODY, sock, ctl, *argv)
        check(one_line_error(p) and want in p.stderr,
              f"physmemctl {' '.join(argv)}: one error line naming {want!r} (rc {p.returncode}: {p.stderr.strip()!r})")
    p = ctl_as(OTHER, sock, ctl, "alloc", "4096", "--device", "0000:00:03.0")
    check(one_line_error(p) and "ermission" in p.stderr, f"physmemctl alloc --device as {OTHER}: permission denied "
          f"({p.stderr.strip()!r})")
    p = ctl_as(NOBODY, sock, ctl, "--json", "status")
    try:
        st = json.loads(p.stdout)
    except ValueError:
        st = {}
    check(p.returncode == 0 and st.get("bindableDevices", [{}])[0].get("reason") == "the backend cannot bind devices",
          "physmemctl --json status keeps bindableDevices")
    p = ctl_as(NOBODY, sock, ctl, "status")
    check(p.returncode == 0 and "0000:00:03.0" in p.stdout and "edu-drv" in p.stdout,
          f"physmemctl status prints the bindable device ({p.stdout!r})")


if __name__ == "__main__":
    sys.exit(main())
