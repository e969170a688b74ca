"""The processes a program left behind, found through ``/proc`` and ended by pid.

A program's group ends with it, but a process it started in a session of its own
(``start_new_session=True``, a daemon) leaves the group: the supervisor, their subreaper,
adopts such processes once their parent is gone, and ends every descendant it has left
when the program stops (Linux; elsewhere nothing is found).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable

__all__ = ["descendants", "end_processes"]


def descendants(root: int) -> list[int]:
    """The pids descending from ``root`` (not ``root`` itself), parents before children."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents():
        children.setdefault(parent, []).append(pid)
    found: list[int] = []
    pending = list(children.get(root, ()))
    while pending:
        pid = pending.pop(0)
        found.append(pid)
        pending.extend(children.get(pid, ()))
    return found


def _parents() -> Iterable[tuple[int, int]]:
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rpartition(b")")[2].split()
        except OSError:
            continue  # ended meanwhile
        if len(fields) > 1 and fields[0] != b"Z":
            yield int(entry), int(fields[1])


def end_processes(pids: Iterable[int], deadline: float) -> None:
    """SIGTERM each of ``pids``, SIGKILL those left at ``deadline``; reap our children."""
    pending = {pid for pid in pids if _signal(pid, signal.SIGTERM)}
    killed = False
    while pending:
        pending = {pid for pid in pending if not _ended(pid)}
        if not pending:
            return
        if time.monotonic() >= deadline:
            if killed:
                return  # will not go: left as they are
            pending = {pid for pid in pending if _signal(pid, signal.SIGKILL)}
            killed, deadline = True, time.monotonic() + 1.0
        time.sleep(0.01)


def _signal(pid: int, signum: int) -> bool:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's now: not ours to end
    return True


def _ended(pid: int) -> bool:
    """Whether ``pid`` is gone (reaped here when it was our child)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rpartition(b")")[2].split()[0] == b"Z"  # not ours to reap
    except (OSError, IndexError):
        return True
