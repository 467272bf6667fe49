# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures: a real physmemd (memfd backend) on a private socket.

The daemon binary comes from $PHYSMEMD (ctest sets it); without it every
test that needs a daemon is skipped. Other users run copies of the package
from the daemon's world-readable directory (the tree may sit under /root).
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)                    # client/python
SOURCE = os.path.dirname(os.path.dirname(PKG_ROOT))  # the project
sys.path.insert(0, PKG_ROOT)

NOBODY = 65534
OTHER = 65533
PYTHON = sys.executable


class Daemon:
    def __init__(self, binary, settings):
        self.dir = tempfile.mkdtemp(prefix="physmem-py-")
        os.chmod(self.dir, 0o755)
        self.sock = os.path.join(self.dir, "physmemd.sock")
        self.log = open(os.path.join(self.dir, "physmemd.log"), "w+")
        args = [binary, "--socket", self.sock, "--backend", "memfd", "-v"]
        for s in settings:
            args += ["--set", s]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("physmemd did not start: " + self.logtext())
            time.sleep(0.05)
        # The package, where other users can read it.
        self.pkg = os.path.join(self.dir, "py")
        shutil.copytree(os.path.join(PKG_ROOT, "physmem"), os.path.join(self.pkg, "physmem"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        for root, dirs, files in os.walk(self.pkg):
            os.chmod(root, 0o755)
            for f in files:
                os.chmod(os.path.join(root, f), 0o644)

    def logtext(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def env(self, **kv):
        """An environment for a client process: this package, this daemon's socket."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("PHYSMEM_SOCKET", "XDG_RUNTIME_DIR", "PHYSMEM_TEST_SYSTEM_SOCKET")}
        env.update(PYTHONPATH=self.pkg, PYTHONDONTWRITEBYTECODE="1", PHYSMEM_SOCKET=self.sock)
        for k, v in kv.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def python(self, code, uid=None, **popen):
        """A Python client process running code (as uid, with setpriv, when given)."""
        argv = [PYTHON, "-c", code]
        if uid is not None:
            argv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"] + argv
        popen.setdefault("env", self.env())
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd="/", **popen)


def _daemon(request, settings=()):
    binary = os.environ.get("PHYSMEMD")
    if not binary or not os.access(binary, os.X_OK):
        pytest.skip("set PHYSMEMD to a physmemd binary (ctest does)")
    d = Daemon(binary, settings)
    request.addfinalizer(d.stop)
    return d


@pytest.fixture
def daemon(request):
    return _daemon(request)


@pytest.fixture
def small_daemon(request):
    """A daemon with a 64 KiB per-user quota and 1 MiB buffers at most."""
    return _daemon(request, ("max-bytes-per-uid=64K", "max-buffer-size=1M"))


@pytest.fixture
def client(daemon):
    import physmem
    c = physmem.Client(daemon.sock)
    yield c
    c.close()


@pytest.fixture
def root():
    if os.geteuid() != 0:
        pytest.skip("needs root (setpriv to other users)")
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv")


def wait_until(cond, what, timeout=20):
    """Poll cond until true; a generous timeout only to catch a hang."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting until " + what)
