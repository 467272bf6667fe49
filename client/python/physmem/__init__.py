# SPDX-License-Identifier: LGPL-2.1-or-later
"""physmem: pinned, DMA-able memory buffers from physmemd, as numpy arrays.

    import physmem
    a = physmem.allocate((1024,), "u4")     # a numpy array over a physmem buffer
    a[:] = 7
    print(a.buffer_id, a.dma_safe, a.segments)
    a.flush()                                # CPU writes -> device (no-op on memfd)
    a.free()

Pure Python: it speaks physmemd's Varlink protocol itself (no libphysmem,
no compiled extension). Module-level functions use one shared connection,
made on first use; a Client is an explicit connection. Unnamed buffers live
as long as the connection that made them.
"""
import os
import threading

from . import errors
from ._varlink import Connection, SYSTEM_SOCKET, default_socket  # noqa: F401  (public: which socket)
from .errors import *  # noqa: F401,F403  (the exception classes)

__version__ = "0.1.0"
INTERFACE = errors.INTERFACE
CACHE_MODES = ("cached", "writecombine", "uncached")
_MAX_ALLOW = 64


def _id_list(what, ids):
    """Validate an allow list: at most 64 uids or gids."""
    out = []
    for i in ids or ():
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < 0xFFFFFFFF:
            raise ValueError(f"{what}: {i!r} is not a uid/gid")
        out.append(i)
    if len(out) > _MAX_ALLOW:
        raise ValueError(f"{what}: more than {_MAX_ALLOW} entries")
    return out


def _sharing(params, name, allow_uids, allow_gids):
    if name is not None:
        if not isinstance(name, str):
            raise TypeError("name must be a str")
        params["name"] = name
    uids = _id_list("allow_uids", allow_uids)
    gids = _id_list("allow_gids", allow_gids)
    if uids:
        params["allowUids"] = uids
    if gids:
        params["allowGids"] = gids


DEVICE_ACCESS = ("bidirectional", "toDevice", "fromDevice")


def _device(params, device, device_access):
    """Add device (a PCI address "DDDD:BB:DD.F") and its access to a call's parameters."""
    if device is None:
        return
    if device_access not in DEVICE_ACCESS:
        raise ValueError(f"device_access must be one of {', '.join(DEVICE_ACCESS)}, not {device_access!r}")
    params["device"] = str(device)
    params["deviceAccess"] = device_access


class Client:
    """An explicit connection to physmemd.

    path: the socket; None chooses it as libphysmem does ($PHYSMEM_SOCKET,
    else /run/physmem/physmemd.sock if it exists, else your own socket), with
    the same trust checks. Closing it frees the unnamed buffers made through
    it (arrays keep their client open while they live)."""

    def __init__(self, path=None):
        self._conn = Connection(path)
        self._deferred = []         # ids of unnamed buffers whose last array died

    def _defer_free(self, buffer_id):
        self._deferred.append(buffer_id)

    def _call(self, method, params=None, fds=()):
        """One call, after freeing the buffers whose arrays died since the last one."""
        while self._deferred and not self._conn.broken:
            try:
                self._conn.call(f"{INTERFACE}.Free", {"id": self._deferred.pop()})
            except errors.VarlinkError:
                pass                # already gone: nothing to free
        return self._conn.call(f"{INTERFACE}.{method}", params, fds)

    @property
    def path(self):
        return self._conn.path

    @property
    def broken(self):
        return self._conn.broken

    def close(self):
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def call(self, method, parameters=None):
        """A raw call of io.physmem.Manager.method without fds; returns its parameters."""
        p, fds = self._call(method, parameters)
        for fd in fds:
            os.close(fd)
        return p

    def _call_buffer(self, method, params, fds=()):
        """A call answered with (buffer, bufferFileDescriptor): (info, fd)."""
        p, rfds = self._call(method, params, fds)
        try:
            info = p.get("buffer")
            idx = p.get("bufferFileDescriptor")
            if not isinstance(info, dict) or not isinstance(info.get("size"), int) or \
                    not isinstance(info.get("id"), int) or not isinstance(idx, int) or \
                    isinstance(idx, bool) or not 0 <= idx < len(rfds):
                raise errors.ProtocolError(f"the daemon's reply to {method} is invalid")
            fd = rfds.pop(idx)
        finally:
            for fd_ in rfds:
                os.close(fd_)
        return info, fd

    # -- calls that make arrays (they import numpy) --

    def allocate(self, shape, dtype="u4", contiguous=False, cache="cached", name=None, allow_uids=(),
                 allow_gids=(), device=None, device_access="bidirectional", pool=None):
        """A new buffer of shape and dtype as a PhysmemArray (rounded up to pages);
        with device (a PCI address), also bound to that device (see bind).

        pool: one contiguous run from the kernel module's pool of that name
        (see status()["pools"]), or PoolUnavailable: never other memory.
        With both, the pool buffer is bound to the device."""
        from . import _array
        nbytes, dt = _array.nbytes_of(shape, dtype)
        if cache not in CACHE_MODES:
            raise ValueError(f"cache must be one of {', '.join(CACHE_MODES)}, not {cache!r}")
        params = {"size": nbytes, "cache": cache}
        if contiguous or pool is not None:
            params["contiguous"] = True
        _sharing(params, name, allow_uids, allow_gids)
        _device(params, device, device_access)
        if pool is not None:
            params["pool"] = pool
        info, fd = self._call_buffer("Allocate", params)
        return _array.make(self, info, fd, shape, dt, owned=True)

    def import_buffer(self, name, owner=None, shape=None, dtype="u1"):
        """The named buffer (owner: the uid whose buffer of that name) as a
        PhysmemArray; shape None: the whole buffer as a 1-D array of dtype."""
        from . import _array
        params = {"name": name}
        if owner is not None:
            params["owner"] = int(owner)
        info, fd = self._call_buffer("Import", params)
        return _array.make(self, info, fd, shape, dtype, owned=False)

    def pin(self, memfd, offset=0, size=None, name=None, allow_uids=(), allow_gids=(), shape=None, dtype="u1"):
        """Pin a sealed, written memfd (an fd or an object with fileno()) as a
        buffer (kmod backend only: NotSupported on memfd)."""
        from . import _array
        fd = memfd.fileno() if hasattr(memfd, "fileno") else int(memfd)
        params = {"memfdFileDescriptor": 0, "offset": int(offset)}
        if size is not None:
            params["size"] = int(size)
        _sharing(params, name, allow_uids, allow_gids)
        info, bfd = self._call_buffer("Pin", params, (fd,))
        return _array.make(self, info, bfd, shape, dtype, owned=True)

    # -- calls that need no numpy --

    def status(self):
        """The daemon's Status() reply as a dict (backend, dmaSafe, quota, ...)."""
        return self.call("Status")

    def describe(self, buffer_id):
        return self.call("Describe", {"id": int(buffer_id)})["buffer"]

    def list(self, all=False):
        return self.call("List", {"all": True} if all else None)["buffers"]

    def free_id(self, buffer_id):
        """Free a buffer by id (your own; root: any)."""
        self.call("Free", {"id": int(buffer_id)})

    def bind(self, buffer_id, device, device_access="bidirectional"):
        """Map a buffer for a PCI device (if policy allows); the returned Buffer
        dict's "devices" carries the device's addresses."""
        params = {"id": int(buffer_id)}
        _device(params, device, device_access)
        return self.call("Bind", params)["buffer"]

    def unbind(self, buffer_id, device):
        """Remove a buffer's binding to a device."""
        self.call("Unbind", {"id": int(buffer_id), "device": str(device)})

    def share(self, buffer_id, name, allow_uids=(), allow_gids=()):
        """Name one of your buffers so that allowed users can import it."""
        params = {"id": int(buffer_id)}
        _sharing(params, name, allow_uids, allow_gids)
        return self.call("Share", params)["buffer"]


_default = None
_default_lock = threading.Lock()


def default_client():
    """The shared connection of the module-level functions (a new one if it broke)."""
    global _default
    with _default_lock:
        if _default is None or _default.broken:
            _default = Client()
        return _default


def allocate(shape, dtype="u4", contiguous=False, cache="cached", name=None, allow_uids=(), allow_gids=(),
             device=None, device_access="bidirectional", pool=None):
    """A new physmem buffer as a numpy array (see Client.allocate)."""
    return default_client().allocate(shape, dtype, contiguous, cache, name, allow_uids, allow_gids, device,
                                     device_access, pool=pool)


def import_buffer(name, owner=None, shape=None, dtype="u1"):
    """A named buffer shared with you, as a numpy array (see Client.import_buffer)."""
    return default_client().import_buffer(name, owner, shape, dtype)


def pin(memfd, offset=0, size=None, name=None, allow_uids=(), allow_gids=(), shape=None, dtype="u1"):
    """Pin a memfd's pages as a buffer (see Client.pin)."""
    return default_client().pin(memfd, offset, size, name, allow_uids, allow_gids, shape, dtype)


def status():
    """The daemon's status and your quota, as a dict."""
    return default_client().status()


def freebuffer(array):
    """PYNQ's spelling of array.free()."""
    array.free()


def __getattr__(name):
    if name == "PhysmemArray":
        from ._array import PhysmemArray
        return PhysmemArray
    raise AttributeError(f"module 'physmem' has no attribute {name!r}")
