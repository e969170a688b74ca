"""Whether another process has a file open for writing: a save in progress is never read.

A save can be read before it is complete: the next save of a file starts (truncates it)
between a batch and its read, or a writer pauses past the watcher's wait for its close.
On Linux, a read lease can be taken only when no process has the file open for writing:
taken and given back at once, it tells whether a writer is at work (the close of that
writer brings the file to the watcher again). Elsewhere nothing is known: False.
"""

from __future__ import annotations

import errno
import os
import signal
import sys

__all__ = ["being_written"]

_F_SETLEASE = 1024
_F_SETSIG = 10
_F_RDLCK = 0
_F_UNLCK = 2


def being_written(path: str) -> bool:
    """Whether some process has ``path`` open for writing now (False when unknown)."""
    if sys.platform != "linux":
        return False
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        # A writer opening the file in the microseconds the lease is held breaks it, and
        # the kernel signals the holder: SIGURG, whose default is to be ignored (not the
        # default SIGIO, which would end the program).
        fcntl.fcntl(fd, _F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, _F_SETLEASE, _F_RDLCK)
    except OSError as exc:
        return exc.errno == errno.EAGAIN  # else no lease here (not the owner, NFS): unknown
    else:
        fcntl.fcntl(fd, _F_SETLEASE, _F_UNLCK)
        return False
    finally:
        os.close(fd)
