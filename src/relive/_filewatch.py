"""File events → batches of changed paths: the first stage of relive's pipeline.

On top of the backend layer (``relive._observers``: native observer, or polling where it
cannot start), watches directory trees (leaving out and following subdirectories), turns
watchdog's events into file actions, waits for writes to finish, drops what is not source,
and delivers each burst as one `Batch` from its own thread.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self, final

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    EventsLostEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemMovedEvent,
)
from watchdog.observers.api import BaseObserver, ObservedWatch

from relive._batching import Action, Batch, Batcher
from relive._filters import is_ignored, is_ignored_dir, matches, under_ignored_dir
from relive._observers import (
    BACKEND_ERRORS,
    POLLING_SETTLE,
    PRUNING_BACKENDS,
    EventHandler,
    backend_name,
    can_poll_instead,
    check_watch_limit,
    native_observer,
    polling_forced,
    polling_observer,
    say_fallback,
    shut_down,
    start_observer,
)

# Batch, is_ignored and matches are re-exported from batching.py and filters.py.
__all__ = ["Batch", "FileWatcher", "is_ignored", "matches"]

logger = logging.getLogger("relive")

_WATCHED_EVENTS: Final[list[type[FileSystemEvent]]] = [
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    DirCreatedEvent,  # in a root whose subdirectories are watched one by one
    DirDeletedEvent,
    DirMovedEvent,
    EventsLostEvent,  # the kernel's queue overflowed: what changed meanwhile is looked for
]
_DirChange = tuple[Path | None, Path | None]
"""A subdirectory of a split root: (gone, appeared); both for a rename within the root."""
LOSS_MARGIN_NS: Final = 2_000_000_000
"""How much older than the last known-complete moment a file may look and still be
rescanned after events were lost (file times come from a coarse clock)."""


@dataclass(frozen=True)
class _Rescan:
    """Events were lost: files modified since ``since_ns`` (wall clock) are delivered."""

    since_ns: int


@final
class FileWatcher:
    """Watches directory trees and calls `on_batch` with each burst of changed source files.

    A file is delivered once its write is complete: on inotify when it is closed after
    writing or renamed into place (a file still open is held until its close, or at most
    `WRITE_HOLD` seconds); on the other backends after `settle`.

    Events are coalesced; the rule: a batch is flushed once no event came for `settle`
    seconds while it holds one file, or for `BURST_QUIET` (50 ms) once it holds several (a
    checkout, a save-all), or `REMOVE_HOLD` (0.1 s) after a deletion, in case the file comes
    back (an editor's delete-then-write save); and at the latest `max(50 * settle, 0.25)`
    seconds after its first event, so a continuous stream still flushes. A burst written
    within that cap without a 50 ms pause is one batch (if its first two files came within
    `settle`).

    When the backend reports lost events (inotify's queue overflowed under a flood of
    changes), the selected files modified since the previous loss (or the start) are
    delivered as if just created; a file deleted during the flood is not reported.

    Batches are delivered serially from one daemon thread named `name`; an exception raised
    by `on_batch` is logged on the `relive` logger and the watcher carries on.

    Args:
        roots: Directories to watch recursively; overlapping ones are watched once.
        on_batch: Called with each `Batch`.
        include: Globs selecting files (see `matches`).
        exclude: Globs removing files (see `matches`).
        force_polling: True to poll, False to use the native backend, None (default) for the
            native backend with a fallback to polling, unless `RELIVE_FORCE_POLLING=1`.
        settle: Seconds of quiet that end a batch.
        name: Name of the delivery thread; watchdog's threads get it as a prefix.
        observer_factory: Builds the native watchdog observer; the seam where tests swap it.

    Raises:
        FileNotFoundError: A root does not exist.
        NotADirectoryError: A root is not a directory.
    """

    def __init__(
        self,
        roots: Iterable[str | os.PathLike[str]],
        on_batch: Callable[[Batch], None],
        *,
        include: Sequence[str] = ("*.py",),
        exclude: Sequence[str] = (),
        force_polling: bool | None = None,
        settle: float = 0.002,
        name: str = "relive-watch",
        observer_factory: Callable[[], BaseObserver] | None = None,
    ) -> None:
        if settle < 0:
            raise ValueError(f"settle must be >= 0 seconds, not {settle!r}")
        self._on_batch = on_batch
        self._include = tuple(include)
        self._exclude = tuple(exclude)
        self._force_polling = force_polling
        self._settle = settle
        self._name = name
        self._observer_factory = observer_factory or native_observer
        self._roots: tuple[Path, ...] = ()
        for root in roots:
            self._roots, _ = _merge_root(self._roots, _checked_root(root))
        self._lock = threading.RLock()  # start, stop, add_root
        self._cond = threading.Condition()  # the batcher and the delivery thread's sleep
        self._batcher = Batcher(settle)
        self._wake_at: float | None = None
        self._stopping = False
        self._observer: BaseObserver | None = None
        self._backend: str | None = None
        # Per root, its watches by directory: the root alone (recursive), or, when it holds
        # directories never source (.git, .venv, node_modules), the root itself plus each
        # other subdirectory (recursive), so those trees cost no watch at all.
        self._watches: dict[Path, dict[Path, ObservedWatch]] = {}
        self._skipped: dict[Path, tuple[str, ...]] = {}  # per root: subdirectories left out
        self._split_roots: frozenset[Path] = frozenset()
        self._dir_changes: list[_DirChange] = []  # under _cond
        # Wall clock (ns) since which no event can have been lost, and a rescan asked for.
        self._complete_since = 0  # under _cond
        self._rescan: _Rescan | None = None  # under _cond
        self._thread: threading.Thread | None = None
        self._handler = EventHandler(self._receive)

    @property
    def roots(self) -> tuple[Path, ...]:
        """The watched directories, resolved, none inside another."""
        with self._lock:  # a root being added is listed once its watch is in place
            return self._roots

    @property
    def backend(self) -> str:
        """The running backend ("inotify", "polling", …); before start, the one planned."""
        if self._backend is not None:
            return self._backend
        return "polling" if polling_forced(self._force_polling) else "native"

    @property
    def pending(self) -> frozenset[Path]:
        """Files seen being written whose write is not complete yet (held back)."""
        with self._cond:
            return self._batcher.held()

    def describe(self) -> str:
        """One line for `--verbose`: backend, roots, include and exclude globs."""
        with self._lock:  # a root being added is listed once its watch is in place
            listed, skipped = self._roots, dict(self._skipped)
        count = len(listed)
        roots = ", ".join(_describe_root(root, skipped.get(root, ())) for root in listed)
        text = f"watching {count} dir{'' if count == 1 else 's'} ({self.backend}): {roots}"
        text += f" include {' '.join(self._include) or '*'}"
        if self._exclude:
            text += f" exclude {' '.join(self._exclude)}"
        return text

    def start(self) -> None:
        """Start watching; return once file events are being delivered. Idempotent.

        Raises:
            OSError: Neither the native backend nor polling could start.
        """
        with self._lock:
            if self._observer is not None:
                return
            with self._cond:
                self._batcher = Batcher(self._settle)
                self._stopping = False
                self._wake_at = None
                self._dir_changes = []
                self._complete_since = time.time_ns()
                self._rescan = None
            self._thread = threading.Thread(
                target=self._deliver_batches, name=self._name, daemon=True
            )
            self._thread.start()
            try:
                self._observer = self._start_observer()
                self._catch_up()
            except BaseException:
                self.stop()
                raise

    def stop(self) -> None:
        """Stop watching and join the threads (after a running `on_batch`). Idempotent."""
        with self._lock:
            observer, thread = self._observer, self._thread
            self._observer, self._thread, self._backend = None, None, None
            self._forget_watches()
        if observer is not None:
            shut_down(observer)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def add_root(self, path: str | os.PathLike[str]) -> None:
        """Watch one more directory (for modules imported later); no-op if already covered.

        Raises:
            FileNotFoundError: `path` does not exist.
            NotADirectoryError: `path` is not a directory.
        """
        root = _checked_root(path)
        with self._lock:
            roots, covered = _merge_root(self._roots, root)
            if roots == self._roots:
                return
            self._roots = roots
            if self._observer is not None:
                self._watch_new_root(self._observer, root, covered)

    def covers(self, path: str | os.PathLike[str]) -> bool:
        """Whether a change to the file at `path` (absolute, resolved) would be delivered."""
        path = Path(path)
        with self._lock:
            if not any(path.is_relative_to(root) for root in self._roots):
                return False
        return self._selects(path)

    def recheck(self, paths: Iterable[Path]) -> None:
        """Deliver these files in a coming batch, as if they had just appeared.

        For files that may have been saved before their watch was in place. A write still
        going on is waited for as usual; the engine's content comparison drops the rest.
        """
        self._record("created", paths)

    def _record(self, action: Action, paths: Iterable[Path]) -> None:
        now = time.monotonic()
        with self._cond:
            recorded = False
            for path in paths:
                self._batcher.record(action, path, now)
                recorded = True
            if recorded:
                self._wake_at = None
                self._cond.notify()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Backends.

    def _start_observer(self) -> BaseObserver:
        return start_observer(
            self._launch, self._observer_factory, force_polling=self._force_polling
        )

    def _launch(self, observer: BaseObserver) -> BaseObserver:
        observer.name = f"{self._name}-observer"
        self._backend = backend_name(observer)  # before the first event can arrive
        if self._backend == "polling":
            # No close events: a write seen by a scan may still be going on.
            self._batcher.settle = max(self._settle, POLLING_SETTLE)
        try:
            for root in self._roots:
                self._watches[root] = self._schedule(observer, root)
            observer.start()
            check_watch_limit(observer, self._roots)
        except BaseException:
            self._forget_watches()
            self._backend = None
            shut_down(observer)
            raise
        return observer

    def _schedule(self, observer: BaseObserver, root: Path) -> dict[Path, ObservedWatch]:
        children, skipped = self._plan(root)
        if not skipped:
            return {root: self._watch(observer, root, recursive=True)}
        self._split_roots |= {root}  # first: a subdirectory made from now on is followed
        watches = {root: self._watch(observer, root, recursive=False)}
        children, skipped = self._plan(root)  # again, the root watched: none slips through
        for child in children:
            watches[child] = self._watch(observer, child, recursive=True)
        self._skipped[root] = skipped
        return watches

    def _catch_up(self) -> None:
        """Watch the subdirectories of split roots made before the observer ran."""
        changes: list[_DirChange] = []
        for root in self._split_roots:
            children, _ = self._plan(root)
            changes += [(None, child) for child in children if child not in self._watches[root]]
        if changes:
            self._follow_directories(changes)

    def _plan(self, root: Path) -> tuple[list[Path], tuple[str, ...]]:
        """The subdirectories of `root` to watch and those never source (none: no split)."""
        if self._backend not in PRUNING_BACKENDS:
            return [], ()
        children, skipped = [], []
        with os.scandir(root) as entries:
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False):
                    continue
                path = Path(entry.path)
                if is_ignored_dir(path, self._exclude):
                    skipped.append(entry.name)
                else:
                    children.append(path)
        return sorted(children), tuple(sorted(skipped))

    def _watch(self, observer: BaseObserver, path: Path, *, recursive: bool) -> ObservedWatch:
        watch = observer.schedule(
            self._handler, str(path), recursive=recursive, event_filter=_WATCHED_EVENTS
        )
        for emitter in observer.emitters:
            emitter.name = f"{self._name}-emitter"
        return watch

    def _unwatch(self, observer: BaseObserver, watches: Iterable[ObservedWatch | None]) -> None:
        for watch in watches:
            if watch is None:
                continue  # that directory had no watch
            with contextlib.suppress(KeyError):  # already gone with its observer
                observer.unschedule(watch)

    def _forget_watches(self) -> None:
        self._watches.clear()
        self._skipped.clear()
        self._split_roots = frozenset()

    def _watch_new_root(self, observer: BaseObserver, root: Path, covered: list[Path]) -> None:
        try:
            self._watches[root] = self._schedule(observer, root)
            check_watch_limit(observer, (root,))
        except BACKEND_ERRORS as exc:
            if self._backend == "polling" or not can_poll_instead(exc):
                raise
            self._fall_back_to_polling(observer, exc)
            return
        for old_root in covered:
            self._unwatch(observer, self._watches.pop(old_root).values())
            self._skipped.pop(old_root, None)
            self._split_roots -= {old_root}

    def _fall_back_to_polling(self, observer: BaseObserver, exc: BaseException) -> None:
        say_fallback(exc)
        self._forget_watches()
        shut_down(observer)
        self._observer = self._launch(polling_observer())

    def _follow_directories(self, changes: list[_DirChange]) -> None:
        """Watch a subdirectory created in (or moved into) a split root; drop a gone one.

        Files written in a new directory before its watch was in place made no event, so
        the ones found in it are delivered as if just created; for a directory renamed
        within the root, the same files at their old paths are delivered as removed.
        """
        found: list[Path] = []
        removed: list[Path] = []
        try:
            self._follow(changes, found, removed)
        finally:
            self._record("deleted", removed)
            self._record("created", found)

    def _follow(self, changes: list[_DirChange], found: list[Path], removed: list[Path]) -> None:
        with self._lock:
            observer = self._observer
            if observer is None:
                return
            for old, new in changes:
                if old is not None:
                    self._unwatch(observer, [self._watches.get(old.parent, {}).pop(old, None)])
                if new is None or new.parent not in self._split_roots:
                    continue
                watches = self._watches[new.parent]
                self._unwatch(observer, [watches.pop(new, None)])
                if not new.is_dir() or new.is_symlink() or is_ignored_dir(new, self._exclude):
                    continue
                try:
                    watches[new] = self._watch(observer, new, recursive=True)
                    check_watch_limit(observer, (new,))
                except BACKEND_ERRORS as exc:
                    if not can_poll_instead(exc):
                        continue  # gone again already
                    self._fall_back_to_polling(observer, exc)
                    return
                files = list(self._source_files(new))
                found.extend(files)
                if old is not None:
                    removed.extend(old / path.relative_to(new) for path in files)

    def _source_files(self, directory: Path) -> Iterator[Path]:
        for parent, dirs, files in os.walk(directory):
            dirs[:] = [name for name in dirs if not is_ignored_dir(Path(parent, name))]
            for name in files:
                path = Path(parent, name)
                if self._selects(path):
                    yield path

    # Events in (watchdog's dispatcher thread), batches out (the delivery thread).

    def _receive(self, event: FileSystemEvent) -> None:
        if isinstance(event, EventsLostEvent):
            self._events_lost()
            return
        if event.is_directory:
            self._receive_directory(event)
            return
        if os.path.basename(os.fsdecode(event.src_path)) == "pyvenv.cfg":
            self._virtualenv_made(Path(os.fsdecode(event.src_path)).parent)
        actions = self._actions(event)
        if not actions:
            return
        now = time.monotonic()
        with self._cond:
            for action, path in actions:
                self._batcher.record(action, path, now)
            due = self._batcher.due_at()
            if due is not None and (self._wake_at is None or due < self._wake_at):
                self._cond.notify()

    def _receive_directory(self, event: FileSystemEvent) -> None:
        split = self._split_roots  # a subdirectory of one of these has a watch of its own

        def child(raw: bytes | str) -> Path | None:
            path = Path(os.fsdecode(raw)) if raw else None
            return path if path is not None and path.parent in split else None

        change: _DirChange = (None, None)
        if isinstance(event, DirMovedEvent):
            change = child(event.src_path), child(event.dest_path)
        elif isinstance(event, DirDeletedEvent):
            change = child(event.src_path), None
        elif isinstance(event, DirCreatedEvent):
            change = None, child(event.src_path)
        if change != (None, None):
            self._queue_directory_change(change)

    def _virtualenv_made(self, directory: Path) -> None:
        """``python -m venv`` in a split root: its directory was watched before it was a
        virtualenv (``pyvenv.cfg`` comes after the directory); the watch is dropped."""
        if directory.parent in self._split_roots:
            self._queue_directory_change((directory, None))

    def _events_lost(self) -> None:
        """The backend dropped events (inotify's queue overflowed under a flood of changes):
        the files modified since the last such loss (or the start) are delivered."""
        with self._cond:
            since = self._complete_since - LOSS_MARGIN_NS
            if self._rescan is not None:  # one per watch: still the same loss
                since = min(since, self._rescan.since_ns)
            self._rescan = _Rescan(since)
            self._complete_since = time.time_ns()
            self._cond.notify()

    def _rescan_roots(self, rescan: _Rescan) -> None:
        with self._lock:
            roots = self._roots
        found = [
            path
            for root in roots
            for path in self._source_files(root)
            if _modified_since(path, rescan.since_ns)
        ]
        self._record("created", found)

    def _queue_directory_change(self, change: _DirChange) -> None:
        with self._cond:
            self._dir_changes.append(change)
            self._cond.notify()

    def _actions(self, event: FileSystemEvent) -> list[tuple[Action, Path]]:
        if isinstance(event, FileSystemMovedEvent):
            return self._selected("deleted", event.src_path) + self._selected(
                "written", event.dest_path
            )
        action = self._action_for(event)
        return self._selected(action, event.src_path) if action else []

    def _action_for(self, event: FileSystemEvent) -> Action | None:
        # Only inotify reports closes; elsewhere a modification is as good as it gets.
        closes = self._backend == "inotify"
        if isinstance(event, FileClosedEvent):
            return "written"
        if isinstance(event, FileModifiedEvent):
            return "writing" if closes else "written"
        if isinstance(event, FileCreatedEvent):
            return "created" if closes else "written"
        if isinstance(event, FileDeletedEvent):
            return "deleted"
        return None

    def _selected(self, action: Action, raw_path: bytes | str) -> list[tuple[Action, Path]]:
        if not raw_path:
            return []
        path = Path(os.fsdecode(raw_path))
        return [(action, path)] if self._selects(path) else []

    def _selects(self, path: Path) -> bool:
        # The innermost root: one inside another's ignored tree is watched for itself.
        root = max((root for root in self._roots if path.is_relative_to(root)), default=None)
        if not matches(path, self._include, self._exclude, root=root):
            return False
        return not is_ignored(path, root=root)

    def _deliver_batches(self) -> None:
        while (work := self._next_work()) is not None:
            try:
                if isinstance(work, Batch):
                    self._on_batch(work)
                elif isinstance(work, _Rescan):
                    self._rescan_roots(work)
                else:
                    self._follow_directories(work)
            except Exception:
                logger.exception("relive: error while handling changed files; still watching")

    def _next_work(self) -> Batch | list[_DirChange] | _Rescan | None:
        """The next batch, directories to start or stop watching, or a rescan after events
        were lost; None once stopped."""
        with self._cond:
            while not self._stopping:
                if self._rescan is not None:
                    rescan, self._rescan = self._rescan, None
                    return rescan
                if self._dir_changes:
                    changes, self._dir_changes = self._dir_changes, []
                    return changes
                now = time.monotonic()
                batch = self._batcher.take(now)
                if batch is not None:
                    return batch
                self._wake_at = self._batcher.due_at()
                timeout = None if self._wake_at is None else max(0.0, self._wake_at - now)
                self._cond.wait(timeout)
            return None


def _modified_since(path: Path, since_ns: int) -> bool:
    try:
        return path.stat().st_mtime_ns >= since_ns
    except OSError:
        return False  # gone again


def _describe_root(root: Path, skipped: Sequence[str]) -> str:
    return f"{root} (skipping {' '.join(skipped)})" if skipped else str(root)


def _checked_root(path: str | os.PathLike[str]) -> Path:
    given = Path(path).expanduser()
    root = given.resolve()
    if not root.exists():
        raise FileNotFoundError(errno.ENOENT, "watch root does not exist", str(given))
    if not root.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "watch root is not a directory", str(given))
    return root


def _merge_root(roots: tuple[Path, ...], new: Path) -> tuple[tuple[Path, ...], list[Path]]:
    """Add `new` to `roots` unless one covers it; also return the roots it covers.

    A root does not cover a directory in one of its trees never watched (`.venv`, ...).
    """
    if any(_covers(root, new) for root in roots):
        return roots, []
    covered = [root for root in roots if _covers(new, root)]
    return (*(root for root in roots if root not in covered), new), covered


def _covers(root: Path, path: Path) -> bool:
    return path.is_relative_to(root) and not under_ignored_dir(path, root)
