"""The backend layer of the file watcher: which watchdog observer, and polling instead.

The native observer (inotify, FSEvents, kqueue, ReadDirectoryChangesW) when it can start;
a calm polling observer when it cannot (or when asked), with one warning saying why and
what to do. ``relive._filewatch`` builds the watcher on top of it.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingEmitter, PollingObserver, PollingObserverVFS
from watchdog.utils import UnsupportedLibcError

from relive._filters import is_ignored_dir
from relive._output import FellBack, default_console

__all__ = [
    "BACKEND_ERRORS",
    "FORCE_POLLING_ENV",
    "POLLING_SETTLE",
    "PRUNING_BACKENDS",
    "EventHandler",
    "backend_name",
    "can_poll_instead",
    "check_watch_limit",
    "fallback_message",
    "native_observer",
    "polling_forced",
    "polling_observer",
    "say_fallback",
    "shut_down",
    "start_observer",
]


POLL_INTERVAL: Final = 0.25
"""Seconds between two scans of the tree by the polling backend, at least."""
POLL_BUSY: Final = 0.1
"""The share of a core polling may take: on a big tree the wait grows with the scan's cost."""
POLLING_SETTLE: Final = 0.05
"""Least quiet time before a polled change is delivered (polling sees no close events)."""

FORCE_POLLING_ENV: Final = "RELIVE_FORCE_POLLING"

PRUNING_BACKENDS: Final = frozenset({"inotify", "kqueue"})
"""Backends that pay per directory watched: directories never source are left out."""

BACKEND_ERRORS: Final = (OSError, UnsupportedLibcError)
"""What a backend raises when it cannot watch (polling may do instead)."""


def polling_forced(force_polling: bool | None) -> bool:
    """Whether to poll: as asked, else as ``RELIVE_FORCE_POLLING`` says."""
    if force_polling is not None:
        return force_polling
    return os.environ.get(FORCE_POLLING_ENV, "").lower() in {"1", "true", "yes", "on"}


def start_observer(
    launch: Callable[[BaseObserver], BaseObserver],
    native: Callable[[], BaseObserver],
    *,
    force_polling: bool | None,
) -> BaseObserver:
    """``launch`` (schedule the watches, start) the native observer, or the polling one when
    polling is forced or the native one cannot start (said once per process).
    """
    if polling_forced(force_polling):
        return launch(polling_observer())
    try:
        return launch(native())
    except BACKEND_ERRORS as exc:
        if not can_poll_instead(exc):
            raise
        say_fallback(exc)
        return launch(polling_observer())


class EventHandler(FileSystemEventHandler):
    """Hands every watchdog event to one function, on watchdog's dispatcher thread."""

    def __init__(self, receive: Callable[[FileSystemEvent], None]) -> None:
        self._receive = receive

    def dispatch(self, event: FileSystemEvent) -> None:
        self._receive(event)


def native_observer() -> BaseObserver:
    if sys.platform == "linux":
        from watchdog.observers.inotify import InotifyObserver

        # Full events tell a file moved in from outside (complete, no close will come) from
        # a file just created (its close will come).
        return InotifyObserver(generate_full_events=True)
    else:
        from watchdog.observers import Observer

        return Observer()


def polling_observer() -> BaseObserver:
    return _CalmPollingObserver()


class _CalmPollingEmitter(PollingEmitter):
    """watchdog's poller, waiting between scans long enough to stay near `POLL_BUSY`.

    A scan stats every file: 0.1 s for 10,000 files here, so a fixed 0.25 s interval would
    keep 30 to 45% of a core busy while nothing changes.
    """

    _scan_cost = 0.0

    def queue_events(self, timeout: float) -> None:
        wait = max(timeout, self._scan_cost * (1 - POLL_BUSY) / POLL_BUSY)
        started = time.monotonic()
        super().queue_events(wait)
        self._scan_cost = max(0.0, time.monotonic() - started - wait)


class _CalmPollingObserver(BaseObserver):
    """Polls the watched trees, leaving out directories never source (`_source_entries`)."""

    def __init__(self) -> None:
        emitter = functools.partial(_CalmPollingEmitter, stat=os.stat, listdir=_source_entries)
        super().__init__(emitter, timeout=POLL_INTERVAL)  # type: ignore[arg-type]


def _source_entries(path: str | None) -> Iterator[os.DirEntry[str]]:
    """List a directory for the polling backend, leaving out the directories never watched."""
    with os.scandir(path) as entries:
        return iter([entry for entry in entries if not _never_watched(entry)])


def _never_watched(entry: os.DirEntry[str]) -> bool:
    return entry.is_dir(follow_symlinks=False) and is_ignored_dir(Path(entry.path))


def backend_name(observer: BaseObserver) -> str:
    if isinstance(observer, PollingObserver | PollingObserverVFS | _CalmPollingObserver):
        return "polling"
    return type(observer).__name__.removesuffix("Observer").lower() or "native"


def check_watch_limit(observer: BaseObserver, roots: Sequence[Path]) -> None:
    """Raise ENOSPC if inotify's watch limit ran out while `roots` were being watched.

    watchdog skips a subdirectory it fails to watch, so a tree bigger than the limit would
    be watched in part, silently; one more watch failing tells that it happened. The probe
    calls the C library itself (inotify(7)), not watchdog's private bindings.
    """
    if backend_name(observer) != "inotify" or not roots:
        return
    libc = _inotify_calls()
    probe = libc.inotify_init1(os.O_CLOEXEC)
    if probe < 0:
        return  # out of instances, not watches: the observer got its own
    try:
        watch = libc.inotify_add_watch(probe, os.fsencode(roots[0]), _IN_DELETE_SELF)
        out_of_watches = watch < 0 and ctypes.get_errno() == errno.ENOSPC
    finally:
        os.close(probe)
    if out_of_watches:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


_IN_DELETE_SELF: Final = 0x400
"""inotify's mask bit for "the watched directory itself was deleted" (linux/inotify.h)."""


@functools.cache
def _inotify_calls() -> ctypes.CDLL:
    """The C library's inotify_init1 and inotify_add_watch, typed (Linux, glibc or musl)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_init1.restype = ctypes.c_int
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    libc.inotify_add_watch.restype = ctypes.c_int
    return libc


def can_poll_instead(exc: BaseException) -> bool:
    return not isinstance(exc, FileNotFoundError | NotADirectoryError)


def shut_down(observer: BaseObserver) -> None:
    observer.stop()
    if observer.is_alive():
        observer.join()


def say_fallback(exc: BaseException) -> None:
    """Say, once per process, that relive polls instead of using OS events, and why."""
    default_console().emit(FellBack(fallback_message(exc)))


def fallback_message(exc: BaseException) -> str:
    code = exc.errno if isinstance(exc, OSError) else None
    if sys.platform.startswith("linux") and code == errno.ENOSPC:
        return _inotify_limit_message("watch", "max_user_watches", 524_288)
    if sys.platform.startswith("linux") and code == errno.EMFILE:
        return _inotify_limit_message("instance", "max_user_instances", 1_024)
    return (
        f"native file watching unavailable ({exc}); polling instead"
        f" — set {FORCE_POLLING_ENV}=1 to skip the attempt"
    )


def _inotify_limit_message(what: str, setting: str, suggested: int) -> str:
    try:
        current = Path(f"/proc/sys/fs/inotify/{setting}").read_text().strip()
    except OSError:
        current = "?"
    if current.isdigit():
        suggested = max(suggested, 2 * int(current))
    return (
        f"inotify {what} limit reached (fs.inotify.{setting}={current}); polling"
        f" instead — raise it with: sudo sysctl fs.inotify.{setting}={suggested}"
    )
