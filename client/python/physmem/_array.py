# SPDX-License-Identifier: LGPL-2.1-or-later
"""PhysmemArray: a numpy ndarray over a physmem buffer's mapping.

Only this module imports numpy, and only calls that make arrays import it.
"""
import fcntl
import mmap
import os
import weakref

import numpy as np

from . import errors

# DMA_BUF_IOCTL_SYNC = _IOW('b', 0, struct dma_buf_sync { __u64 flags; })
DMA_BUF_IOCTL_SYNC = 0x40086200
DMA_BUF_SYNC_READ = 1
DMA_BUF_SYNC_WRITE = 2
DMA_BUF_SYNC_START = 0
DMA_BUF_SYNC_END = 4
MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)


def _populate(mm, size):
    """Fault every page of a memfd buffer in now, charged to this process, so
    that a shortage is an error here and not a SIGBUS later."""
    try:
        mm.madvise(MADV_POPULATE_WRITE)
        return
    except OSError as e:
        if e.errno != 22:       # EINVAL: a kernel before 5.14; read one byte per page instead
            raise MemoryError(f"cannot populate the buffer: {e.strerror}") from None
    for off in range(0, size, mmap.PAGESIZE):
        mm[off]


def _allocate(fd, size):
    """Allocate a memfd buffer's pages before mapping it, as libphysmem does:
    cheaper than faulting each one in. Not for transparent huge pages (under
    shmem_enabled "advise" only a fault in a mapping that asked gets them).
    Never past the file's end: the size is the reply's, and a reply from
    something that is not physmemd must not make this process grow a file."""
    try:
        if os.fstat(fd).st_size < size:
            return
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno in (28, 12):     # ENOSPC, ENOMEM
            raise MemoryError(f"cannot allocate the buffer: {e.strerror}") from None
        # anything else (a read-only fd, no fallocate): the populate does it


class _Mapping:
    """What every array over one buffer shares: the fd, the mapping, the daemon's view."""

    def __init__(self, client, info, fd, owned):
        self.client = client        # keeps the connection (owner of unnamed buffers) alive
        self.info = info
        self.fd = fd
        self.owned = owned          # made by Allocate/Pin on this connection: free() frees it
        self.freed = False
        size = info["size"]
        memfd = info.get("backend") == "memfd"
        thp = bool(info.get("transparentHugePages"))
        if memfd and not thp:
            _allocate(fd, size)
        self.mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        if memfd:
            if thp and hasattr(mmap, "MADV_HUGEPAGE"):
                self.mm.madvise(mmap.MADV_HUGEPAGE)     # shmem_enabled "advise" gives them only on request
            _populate(self.mm, size)
        self._fd_closer = weakref.finalize(self, os.close, fd)   # from here on, the fd is ours to close
        # An unnamed buffer of ours dies with its last array: the client frees
        # it on its next call (a finalizer must not talk to the daemon itself).
        self._auto_free = None
        if owned and info.get("name") is None:
            self._auto_free = weakref.finalize(self, client._defer_free, info["id"])
        base = np.frombuffer(self.mm, dtype=np.uint8)
        self.start = base.ctypes.data
        self.end = self.start + size
        del base

    def release(self):
        """Close the fd; the mapping goes with the last array over it."""
        self.freed = True
        if self._auto_free is not None:
            self._auto_free.detach()
        self._fd_closer()

    def sync(self, flags):
        """DMA_BUF_IOCTL_SYNC; memfd buffers answer ENOTTY and need nothing."""
        if self.freed:
            raise errors.Error("the buffer was freed or closed")
        while True:
            try:
                fcntl.ioctl(self.fd, DMA_BUF_IOCTL_SYNC, flags.to_bytes(8, "little"))
                return
            except InterruptedError:
                continue
            except OSError as e:
                if e.errno == 25:           # ENOTTY: not a dma-buf (memfd): coherent, nothing to do
                    return
                if e.errno == 11:           # EAGAIN
                    continue
                raise


class PhysmemArray(np.ndarray):
    """An ndarray whose memory is a physmem buffer.

    Views and slices of it are PhysmemArrays over the same buffer; results of
    arithmetic (new memory) are PhysmemArrays without a buffer, whose physmem
    attributes raise physmem.Error."""

    _physmem = None

    def __array_finalize__(self, obj):
        m = getattr(obj, "_physmem", None)
        if m is not None and self.size > 0:
            addr = self.__array_interface__["data"][0]
            if not m.start <= addr < m.end:
                m = None
        self._physmem = m

    def _mapping(self):
        m = self._physmem
        if m is None:
            raise errors.Error("this array is not a view of a physmem buffer (a copy or a computed result)")
        return m

    @property
    def buffer_id(self):
        """The daemon's id of the buffer."""
        return self._mapping().info["id"]

    @property
    def buffer_info(self):
        """The daemon's description of the buffer (the Varlink Buffer, as a dict)."""
        return dict(self._mapping().info)

    @property
    def name(self):
        return self._mapping().info.get("name")

    @property
    def backend(self):
        return self._mapping().info["backend"]

    @property
    def dma_safe(self):
        """Whether the segment addresses may be programmed into a device (False on memfd)."""
        return bool(self._mapping().info["dmaSafe"])

    @property
    def segments(self):
        """[(address, length), ...], or None when policy or the backend hides them."""
        segs = self._mapping().info.get("segments")
        if segs is None:
            return None
        return [(s["address"], s["length"]) for s in segs]

    @property
    def physical_address(self):
        """The address of this array's first byte for a device: the buffer's
        first segment (plus this view's offset, within that segment)."""
        m = self._mapping()
        if not m.info["dmaSafe"]:
            raise errors.AddressUnavailable(f"buffer {m.info['id']} ({m.info['backend']} backend) is not "
                                            "DMA-safe: it has no address a device may use")
        segs = m.info.get("segments")
        if not segs:
            raise errors.AddressUnavailable(f"the daemon hides buffer {m.info['id']}'s addresses from you "
                                            "(address policy)")
        off = self.__array_interface__["data"][0] - m.start
        if off >= segs[0]["length"]:
            raise errors.AddressUnavailable("this view starts past the buffer's first segment: use segments")
        return segs[0]["address"] + off

    def flush(self):
        """Make CPU writes visible to the device (DMA_BUF_SYNC_END|WRITE: clean
        the CPU caches). A no-op for memfd buffers, which are coherent."""
        self._mapping().sync(DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE)

    def invalidate(self):
        """Make device writes visible to the CPU (DMA_BUF_SYNC_START|READ:
        drop stale cache lines). A no-op for memfd buffers."""
        self._mapping().sync(DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ)

    def fileno(self):
        """The buffer's fd (a dma-buf on the kmod backend, a memfd on memfd)."""
        m = self._mapping()
        if m.freed:
            raise errors.Error("the buffer was freed or closed")
        return m.fd

    def free(self):
        """Free the buffer: the daemon forgets it (Free, for buffers this
        connection made) and its fd is closed. The mapping is unmapped when
        the last array over it is garbage-collected; until then the memory is
        still charged (Quota.heldBytes). Freeing twice does nothing."""
        m = self._mapping()
        if m.freed:
            return
        owned = m.owned
        m.release()
        if owned:
            m.client.free_id(m.info["id"])

    def close(self):
        """Close this process's fd without freeing the buffer (for imported buffers)."""
        self._mapping().release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        m = self._mapping()
        if m.owned:
            self.free()
        else:
            self.close()
        return False

    def __reduce__(self):
        raise TypeError("a PhysmemArray cannot be pickled; share it by name and import_buffer() it")


def make(client, info, fd, shape, dtype, owned):
    """The array for a buffer the daemon just handed over (fd is ours from now on)."""
    try:
        dt = np.dtype(dtype)
        size = info["size"]
        if shape is None:
            shape = (size // dt.itemsize,)
        elif isinstance(shape, int):
            shape = (shape,)
        shape = tuple(int(n) for n in shape)
        nbytes = dt.itemsize
        for n in shape:
            nbytes *= n
        if nbytes > size:
            raise ValueError(f"shape {shape} of {dt} needs {nbytes} bytes, the buffer has {size}")
        m = _Mapping(client, info, fd, owned)
    except BaseException:
        os.close(fd)
        raise
    a = np.ndarray.__new__(PhysmemArray, shape, dtype=dt, buffer=m.mm, offset=0)
    a._physmem = m
    return a


def nbytes_of(shape, dtype):
    """The bytes an array of shape and dtype takes (ValueError for a bad shape)."""
    dt = np.dtype(dtype)
    if isinstance(shape, int):
        shape = (shape,)
    n = dt.itemsize
    for d in shape:
        d = int(d)
        if d < 0:
            raise ValueError(f"negative dimension in shape {tuple(shape)}")
        n *= d
    return n, dt
