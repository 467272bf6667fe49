# SPDX-License-Identifier: GPL-2.0-or-later
"""Counting a running physmemd's open fds, for the tests that check that a
case left none behind (clients.py, bad_input.py, fd_sink.py)."""
import os


def is_spare_file(pid, fd):
    """Whether fd of process pid is one of the memfd backend's spare files:
    empty memfds made ahead of time, at most 64, whose number changes with
    every small Allocate. A buffer's file is never empty, so a buffer's fd
    is never taken for one."""
    path = f"/proc/{pid}/fd/{fd}"
    try:
        return os.readlink(path).startswith("/memfd:physmem") and os.stat(path).st_size == 0
    except OSError:
        return False    # closed meanwhile: counted, as listdir() saw it


SPARES_MAX = 64     # SPARE_MAX in daemon/physmemd-backend-memfd.c


def open_fds(pid):
    """The daemon's open fds, less its spare files: at most SPARES_MAX of
    them, so that more empty memfds than the store can hold still count."""
    fds = os.listdir(f"/proc/{pid}/fd")
    spares = sum(1 for fd in fds if is_spare_file(pid, fd))
    return len(fds) - min(spares, SPARES_MAX)
