# SPDX-License-Identifier: LGPL-2.1-or-later
"""The physmem Python package against a real physmemd (memfd backend)."""
import errno
import gc
import os
import re
import shutil
import signal
import subprocess
import tempfile

import numpy as np
import pytest

import physmem
from conftest import NOBODY, OTHER, PYTHON, SOURCE, wait_until

MiB = 1 << 20


def test_error_table_matches_idl():
    """Every error of the IDL has its class, with the IDL's parameters in order."""
    idl = open(os.path.join(SOURCE, "proto", "io.physmem.Manager.varlink")).read()
    declared = {}
    for name, fields in re.findall(r"^error\s+(\w+)\s*\(([^)]*)\)", idl, re.M):
        declared[name] = tuple(f.split(":")[0].strip() for f in fields.split(",") if f.strip())
    assert declared and declared == physmem.errors.MANAGER_ERRORS
    for name, fields in declared.items():
        cls = getattr(physmem, name)
        assert issubclass(cls, physmem.VarlinkError) and issubclass(cls, physmem.Error)
        assert cls.varlink_name == "io.physmem.Manager." + name and cls.fields == fields


def test_done_criterion_default_socket(daemon):
    """The issue's one-liner, with the socket from $PHYSMEM_SOCKET and the default connection."""
    p = daemon.python('import physmem; a = physmem.allocate((1024,), "u4"); a[:] = 7; print(a.segments); '
                      'print(int(a.sum()), a.dma_safe, a.backend)')
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert out.split() == ["None", str(7 * 1024), "False", "memfd"]


def test_client_calls_need_no_numpy(daemon):
    """Status and friends work where numpy cannot be imported; allocate says numpy is missing."""
    p = daemon.python("import sys; sys.modules['numpy'] = None\n"
                      "import physmem\n"
                      f"c = physmem.Client({daemon.sock!r}); print(c.status()['backend'])\n"
                      "try:\n    c.allocate(16)\nexcept ImportError:\n    print('no numpy')\n")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert out.split() == ["memfd", "no"] + ["numpy"]


def test_allocate_write_read(client):
    a = client.allocate((1024,), "u4")
    assert isinstance(a, physmem.PhysmemArray) and isinstance(a, np.ndarray)
    assert a.shape == (1024,) and a.dtype == np.uint32
    a[:] = np.arange(1024, dtype=np.uint32)
    info = client.describe(a.buffer_id)
    assert info["size"] == 4096 and info["backend"] == "memfd" and info["ownerUid"] == os.geteuid()
    # What the array shows is the buffer's memory: read it through the fd too.
    raw = os.pread(a.fileno(), 4096, 0)
    assert np.array_equal(np.frombuffer(raw, dtype=np.uint32), np.arange(1024, dtype=np.uint32))
    v = a[10:20]
    assert isinstance(v, physmem.PhysmemArray) and v.buffer_id == a.buffer_id and v[0] == 10
    s = a + 1                                   # new memory: no buffer behind it
    with pytest.raises(physmem.Error, match="not a view of a physmem buffer"):
        s.buffer_id
    b = client.allocate((3, 5), np.float64)     # 120 bytes: one page
    assert b.shape == (3, 5) and client.describe(b.buffer_id)["size"] == 4096


def test_memfd_backend_is_honest(client):
    """memfd: not DMA-safe, no segments, physical_address raises."""
    a = client.allocate(4096, "u1")
    assert a.dma_safe is False and a.segments is None and a.backend == "memfd"
    with pytest.raises(physmem.AddressUnavailable, match="not DMA-safe"):
        a.physical_address


def test_flush_invalidate_noop_on_memfd(client):
    a = client.allocate(1024, "u4")
    a[:] = 5
    a.flush()
    a.invalidate()
    assert int(a.sum()) == 5 * 1024
    a.free()
    with pytest.raises(physmem.Error, match="freed"):
        a.flush()


def test_status_fields(client):
    st = client.status()
    assert st["backend"] == "memfd" and st["dmaSafe"] is False and st["addressPolicy"] == "owner"
    assert st["quota"]["uid"] == os.geteuid() and st["buffers"] == 0 and st["bytes"] == 0
    assert set(st) >= {"version", "connections", "maxBufferSize", "maxMessageSize", "maxConnections",
                       "maxConnectionsPerUid"}
    a = client.allocate(2 * 4096, "u1")
    st = client.status()
    assert st["buffers"] == 1 and st["bytes"] == 8192 and st["quota"]["bytes"] == 8192
    del a


def test_context_manager_and_free(client):
    with client.allocate(4096, "u1", name="ctx") as a:
        bid = a.buffer_id
        assert client.describe(bid)["name"] == "ctx"
    with pytest.raises(physmem.NoSuchBuffer) as e:
        client.describe(bid)
    assert e.value.id == bid
    # The daemon releases a freed buffer's memory in the background: wait for it.
    wait_until(lambda: client.status()["buffers"] == 0, "the freed buffer is released")
    a.free()                                    # twice: nothing more


def test_unnamed_buffer_freed_with_its_last_array(client):
    a = client.allocate(4096, "u1")
    bid = a.buffer_id
    view = a[100:]
    del a
    gc.collect()
    assert client.describe(bid)["id"] == bid    # the view still holds it
    del view
    gc.collect()
    with pytest.raises(physmem.NoSuchBuffer):   # the next call freed it
        client.describe(bid)
    wait_until(lambda: client.status()["buffers"] == 0, "the buffer is released")


def test_named_buffer_outlives_its_array(client):
    a = client.allocate(4096, "u1", name="keep")
    bid = a.buffer_id
    del a
    gc.collect()
    assert client.describe(bid)["name"] == "keep"


def test_errors_carry_parameters(client, daemon):
    with pytest.raises(physmem.NoSuchBuffer) as e:
        client.describe(987654)
    assert e.value.id == 987654 and e.value.parameters["id"] == 987654
    with pytest.raises(physmem.NoSuchBuffer) as e:
        client.import_buffer("nothing-here")
    assert e.value.name == "nothing-here"
    client.allocate(4096, "u1", name="dup")
    with pytest.raises(physmem.NameInUse) as e:
        client.allocate(4096, "u1", name="dup")
    assert e.value.name == "dup" and e.value.parameters == {"name": "dup"}
    with pytest.raises(physmem.SizeOutOfRange) as e:
        client.allocate((0,), "u1")
    assert e.value.size == 0 and e.value.min == 1 and e.value.max == client.status()["maxBufferSize"]
    with pytest.raises(physmem.NotSupported) as e:
        client.allocate(4096, "u1", cache="writecombine")
    assert e.value.backend == "memfd"
    with pytest.raises(physmem.InvalidParameter) as e:
        client.call("Allocate", {"size": "big"})
    assert e.value.parameter == "size"
    with pytest.raises(physmem.InvalidParameter) as e:
        client.allocate(4096, "u1", device="/dev/dri/card0")     # not a PCI address
    assert e.value.parameter == "device"
    own = client.list()[0]["id"]                # the buffer made above
    with pytest.raises(physmem.NoSuchDevice) as e:
        client.bind(own, "ffff:ff:1f.7")
    assert e.value.device == "ffff:ff:1f.7"
    with pytest.raises(physmem.NoSuchDevice):             # no binding to unbind
        client.unbind(own, "ffff:ff:1f.7")
    with pytest.raises(ValueError):
        client.allocate(4096, "u1", device="00:03.0", device_access="sideways")
    with pytest.raises(ValueError):
        client.allocate(4096, "u1", cache="fast")
    assert not client.broken                    # errors leave the connection usable
    assert client.status()["buffers"] == 1


def test_quota_exceeded(small_daemon):
    with physmem.Client(small_daemon.sock) as c:
        a = c.allocate(48 * 1024, "u1")
        with pytest.raises(physmem.QuotaExceeded) as e:
            c.allocate(32 * 1024, "u1")
        assert (e.value.limit, e.value.max, e.value.used, e.value.requested) == ("bytes", 65536, 49152, 32768)
        with pytest.raises(physmem.SizeOutOfRange) as e:
            c.allocate(2 * MiB, "u1")
        assert e.value.size == 2 * MiB and e.value.max == MiB
        del a


def test_pool_on_memfd_is_named_error(client):
    """pool= reaches the daemon: root passes pool-users (default) and memfd has no pools; others are refused."""
    if os.geteuid() == 0:
        with pytest.raises(physmem.NotSupported) as e:
            client.allocate(1024, pool="physmem")
        assert e.value.backend == "memfd" and e.value.feature == "contiguous pools"
    else:
        with pytest.raises(physmem.PermissionDenied) as e:
            client.allocate(1024, pool="physmem")
        assert "pool-users" in e.value.reason
    with pytest.raises(physmem.InvalidParameter) as e:
        client.allocate(1024, pool="no/such")
    assert e.value.parameter == "pool"


def test_pin_not_supported_on_memfd(client):
    fd = os.memfd_create("pin-me", os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, 4096)
        os.pwrite(fd, b"x" * 4096, 0)
        fcntl_seal(fd)
        with pytest.raises(physmem.NotSupported) as e:
            client.pin(fd)
        assert e.value.backend == "memfd" and "pin" in e.value.feature
    finally:
        os.close(fd)


def fcntl_seal(fd):
    import fcntl
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)


SHARE_CHILD = """
import sys, numpy as np, physmem
a = physmem.import_buffer(sys.argv[1], shape=(256, 256), dtype="u2")
print(int(a[255, 255]), int(a.sum() % 1000003), a.buffer_id, flush=True)
a[0, :] = 4242                                   # visible to the owner
sys.stdin.readline()
"""


def _share_with(daemon, uid):
    with physmem.Client(daemon.sock) as c:
        allow = () if uid is None else (uid,)
        a = c.allocate((256, 256), "u2", name="frame", allow_uids=allow)
        a[:] = np.arange(256 * 256, dtype=np.uint32).reshape(256, 256) % 65536
        expect = int(np.arange(256 * 256, dtype=np.int64).sum() % 1000003)
        p = daemon.python(SHARE_CHILD.replace("sys.argv[1]", "'frame'"), uid=uid)
        line = p.stdout.readline()
        assert line, p.stderr.read()
        last, checksum, bid = (int(x) for x in line.split())
        assert last == 65535 and bid == a.buffer_id
        assert checksum == expect
        wait_until(lambda: (a[0] == 4242).all(), "the importer's writes show in the owner's array")
        p.communicate("\n", timeout=60)
        assert p.returncode == 0


def test_share_between_processes_same_user(daemon):
    _share_with(daemon, None)


def test_share_with_unprivileged_user(daemon, root):
    """uid 65534 imports a buffer root allowed it; without the allow it cannot see it."""
    _share_with(daemon, NOBODY)
    with physmem.Client(daemon.sock) as c:
        c.allocate(4096, "u1", name="private")
        p = daemon.python("import physmem\n"
                          "try:\n    physmem.import_buffer('private')\n"
                          "except physmem.PermissionDenied as e:\n    print('PermissionDenied', "
                          "'allow' in e.reason)\n"
                          "st = physmem.status(); print(st['quota']['uid'])\n"
                          "a = physmem.allocate(4096, 'u1'); a[:] = 1; print(int(a.sum()))\n", uid=NOBODY)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert out.split() == ["PermissionDenied", "True", str(NOBODY), "4096"]


def test_killed_process_buffer_reclaimed(daemon, client):
    p = daemon.python("import physmem, sys\n"
                      "a = physmem.allocate((1 << 20,), 'u1'); a[:] = 3\n"
                      "print(a.buffer_id, flush=True); sys.stdin.readline()\n")
    bid = int(p.stdout.readline())
    assert client.status()["buffers"] == 1 and client.status()["bytes"] == 1 << 20
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)
    wait_until(lambda: client.status()["buffers"] == 0, "the killed client's buffer is freed")
    assert client.status()["bytes"] == 0
    with pytest.raises(physmem.NoSuchBuffer):
        client.describe(bid)


FAKE = os.path.join(SOURCE, "tests", "integration", "fake_daemon.py")


def _fake(path, uid):
    """An impostor daemon on path, run as uid; returns the process once it listens."""
    d = os.path.dirname(path)
    prog = os.path.join(d, "fake_daemon.py")
    with open(FAKE) as src, open(prog, "w") as dst:
        dst.write(src.read())
    os.chmod(prog, 0o644)
    p = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", PYTHON, prog, path],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready", p.stderr.read()
    return p


def _fake_conns(p):
    out, _ = p.communicate(timeout=60)
    return [int(line.split()[1]) for line in out.splitlines() if line.startswith("conn ")]


def test_impersonation_peer_uid_refused(daemon, root):
    """A socket served by another uid is dropped right after connect, explicit path or not."""
    d = tempfile.mkdtemp(prefix="physmem-pyfake-")
    try:
        os.chmod(d, 0o755)
        sub = os.path.join(d, "s")
        os.mkdir(sub, 0o755)
        os.chown(sub, NOBODY, NOBODY)
        path = os.path.join(sub, "physmemd.sock")
        fake = _fake(path, NOBODY)
        with pytest.raises(physmem.ConnectError) as e:
            physmem.Client(path)
        assert e.value.errno == errno.EPERM
        assert str(e.value) == f"socket {path} is served by uid {NOBODY}, not by root or you"
        p = daemon.python("import physmem\ntry:\n    physmem.status()\n"
                          "except physmem.ConnectError as e:\n    print(e.errno, e)\n", uid=OTHER,
                          env=daemon.env(PHYSMEM_SOCKET=path))
        out, err = p.communicate(timeout=60)
        assert out.strip() == f"{errno.EPERM} socket {path} is served by uid {NOBODY}, not by root or you", err
        assert _fake_conns(fake) == [0, 0]      # two connections, not one byte sent
    finally:
        subprocess.run(["rm", "-rf", d])


def test_impersonation_tmp_dir_refused(daemon, root):
    """Another user's /tmp/physmem-<uid> is refused before anything is sent."""
    d = f"/tmp/physmem-{OTHER}"
    subprocess.run(["rm", "-rf", d])
    os.mkdir(d, 0o755)
    try:
        os.chown(d, NOBODY, NOBODY)
        fake = _fake(os.path.join(d, "physmemd.sock"), NOBODY)
        env = daemon.env(PHYSMEM_SOCKET=None, PHYSMEM_TEST_SYSTEM_SOCKET="/nonexistent/physmem/physmemd.sock")
        p = daemon.python("import physmem\ntry:\n    physmem.status()\n"
                          "except physmem.ConnectError as e:\n    print(e.errno, e)\n", uid=OTHER, env=env)
        out, err = p.communicate(timeout=60)
        assert out.strip() == (f"{errno.EPERM} refusing socket {d}/physmemd.sock: its directory is owned by "
                               f"uid {NOBODY}, not by root or you"), err
        assert _fake_conns(fake) == []          # never connected to
    finally:
        subprocess.run(["rm", "-rf", d])


def test_userns_mapped_caller_refuses_foreign_peer(daemon, root):
    """In a user namespace where the caller is mapped and root is not, its per-user socket served by another
    host user (seen as the overflow uid) is refused, although the socket and directory pass the path checks."""
    unshare = ["setpriv", f"--reuid={OTHER}", f"--regid={OTHER}", "--clear-groups",
               "unshare", "--map-user", str(OTHER), "--map-group", str(OTHER)]
    probe = subprocess.run(unshare + ["id", "-u"], capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != str(OTHER):
        pytest.skip(f"uid {OTHER} cannot map itself in a user namespace here: {probe.stderr.strip()}")
    xdg = tempfile.mkdtemp(prefix="physmem-pyxdg-")
    try:
        own = os.path.join(xdg, "physmem")
        os.mkdir(own, 0o700)
        for x in (xdg, own):
            os.chown(x, OTHER, OTHER)
            os.chmod(x, 0o700)
        path = os.path.join(own, "physmemd.sock")
        fake = subprocess.Popen([PYTHON, FAKE, "--owner", str(OTHER), "--listen-as", str(NOBODY), path],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert fake.stdout.readline().strip() == "ready", fake.stderr.read()
        env = daemon.env(PHYSMEM_SOCKET=None, XDG_RUNTIME_DIR=xdg,
                         PHYSMEM_TEST_SYSTEM_SOCKET="/nonexistent/physmem/physmemd.sock")
        code = "import physmem\ntry:\n    physmem.status()\nexcept physmem.ConnectError as e:\n    print(e.errno, e)\n"
        p = subprocess.run(unshare + [PYTHON, "-c", code], capture_output=True, text=True, env=env, cwd="/",
                           timeout=60)
        assert p.stdout.strip().startswith(f"{errno.EPERM} socket {path} is served by uid "), p.stdout + p.stderr
        assert all(n <= 0 for n in _fake_conns(fake))     # not one byte sent
    finally:
        subprocess.run(["rm", "-rf", xdg])


def test_implicit_user_socket_used(daemon, root):
    """Without $PHYSMEM_SOCKET and a system socket, a user's own socket in $XDG_RUNTIME_DIR is used."""
    xdg = tempfile.mkdtemp(prefix="physmem-pyxdg-")
    try:
        os.chmod(xdg, 0o755)
        os.mkdir(os.path.join(xdg, "physmem"), 0o755)
        os.chown(os.path.join(xdg, "physmem"), NOBODY, NOBODY)
        own = os.path.join(xdg, "physmem", "physmemd.sock")
        binary = os.path.join(xdg, "physmemd")          # uid 65534 may not reach the build tree
        shutil.copy(os.environ["PHYSMEMD"], binary)
        os.chmod(binary, 0o755)
        dm = subprocess.Popen(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", binary,
                               "--socket", own, "--backend", "memfd"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: os.path.exists(own), "the user's own daemon listens")
            env = daemon.env(PHYSMEM_SOCKET=None, XDG_RUNTIME_DIR=xdg,
                             PHYSMEM_TEST_SYSTEM_SOCKET="/nonexistent/physmem/physmemd.sock")
            p = daemon.python("import physmem\nc = physmem.default_client(); print(c.path, "
                              "physmem.status()['quota']['uid'])\n", uid=NOBODY, env=env)
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            assert out.split() == [own, str(NOBODY)]
        finally:
            dm.send_signal(signal.SIGTERM)
            dm.wait(timeout=20)
    finally:
        subprocess.run(["rm", "-rf", xdg])


def test_broken_connection_is_reported(daemon):
    c = physmem.Client(daemon.sock)
    daemon.stop()
    with pytest.raises((physmem.ProtocolError,)):
        c.status()
    assert c.broken
    with pytest.raises(physmem.ProtocolError, match="unusable"):
        c.status()


def test_flush_invalidate_directions(client, monkeypatch):
    """flush = DMA_BUF_SYNC_END|WRITE (CPU writes to the device), invalidate =
    DMA_BUF_SYNC_START|READ (device writes to the CPU), on the buffer's fd;
    a dma-buf answers them (here recorded), a memfd's ENOTTY is no error."""
    from physmem import _array
    a = client.allocate(4096, "u1")
    calls = []

    def fake_ioctl(fd, request, arg):
        calls.append((fd, request, int.from_bytes(arg, "little")))
        return arg
    monkeypatch.setattr(_array.fcntl, "ioctl", fake_ioctl)
    a.flush()
    a.invalidate()
    assert calls == [(a.fileno(), 0x40086200, 4 | 2), (a.fileno(), 0x40086200, 0 | 1)]
