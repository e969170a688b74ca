"""The background watcher that applies edits: file events → engine → one line per event.

:func:`watch` starts a :class:`~relive._filewatch.FileWatcher` on the user's code and applies
each batch of changed files as one reload. Errors are reported, never raised into the
program. ``RELIVE=0`` in the environment makes it inert.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Self, final

from relive._engine import Engine, Report, get_engine
from relive._errors import ReloadError, RestartRequired
from relive._filewatch import Batch, FileWatcher
from relive._hints import instance_hints
from relive._output import (
    Applied,
    Console,
    PendingErrors,
    Rejected,
    RestartNeeded,
    Watching,
)
from relive._switch import disabled

if TYPE_CHECKING:
    from relive._tracker import TrackedModule

__all__ = ["Watcher", "Wiring", "watch", "watch_wired"]

logger = logging.getLogger("relive")

_IMPORT_DEADLINE = 5.0  # seconds to wait for an import in progress to finish

ReportCallback = Callable[[Report], None]
ErrorCallback = Callable[[ReloadError], None]
RestartCallback = Callable[[RestartRequired], None]
ApplyFunction = Callable[[set[str]], Report]
ApplyChanges = Callable[[set[str]], tuple[Report, list[ReloadError]]]


class _ImportNotifier:
    """A ``sys.meta_path`` finder that finds nothing: it notes each new import's name."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._lock = threading.Lock()
        self._names: set[str] = set()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        with self._lock:
            self._names.add(fullname)
        self.event.set()

    def take(self) -> set[str]:
        """The names whose import started since the last call."""
        with self._lock:
            names, self._names = self._names, set()
        self.event.clear()
        return names


@final
@dataclass(frozen=True)
class Wiring:
    """What an integration sets on a watcher beside the user's options (internal).

    Attributes:
        engine: The engine to use (default: the process's engine).
        apply: Applies each batch of changed files (real paths) and returns the report
            (default: ``engine.apply_changes``, which holds back a broken file so the
            others apply); the servers pass one that applies edits between requests and
            follows a framework's rules. It raises as the engine does.
        restart_paths: Files whose change means restart.
        on_restart: Called when an edit needs a restart (default: one line on stderr).
        script: A script about to run as ``__main__`` (``relive run app.py``): its text is
            noted now and its directory watched, so it is edited like any module.
        console: Where the watcher's lines go (default: stderr, with its quiet/verbose).
        apply_changes: Applies each batch and returns what was applied and the errors,
            instead of ``apply`` (``relive run``: every process of the program).
    """

    engine: Engine | None = None
    apply: ApplyFunction | None = None
    restart_paths: Iterable[str | os.PathLike[str]] = ()
    on_restart: RestartCallback | None = None
    script: str | None = None
    console: Console | None = None
    apply_changes: ApplyChanges | None = None


@final
class Watcher:
    """Applies edits to the running program as files are saved. Use [`watch`][relive.watch].

    Args are those of [`watch`][relive.watch].

    Attributes:
        last_report: The last non-empty report, if any.
        last_error: The last error, if the last batch failed (cleared by a good one).
    """

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]] = (),
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        force_polling: bool | None = None,
        on_report: ReportCallback | None = None,
        on_error: ErrorCallback | None = None,
        quiet: bool = False,
        verbose: bool = False,
    ) -> None:
        self._explicit_roots = [Path(p) for p in paths]
        self._include = ("*.py", *include)
        self._exclude = tuple(exclude)
        self._force_polling = force_polling
        self._on_report = on_report
        self._on_error = on_error
        self._console = Console(quiet=quiet, verbose=verbose)
        self._pending = PendingErrors(lambda path: bool(self.engine.changed_modules([path])))
        self.last_report: Report | None = None
        self.last_error: ReloadError | None = None
        self._files: FileWatcher | None = None
        self._stopping = threading.Event()
        self._notifier = _ImportNotifier()
        self._discovery: threading.Thread | None = None
        self._wire(Wiring())

    def _wire(self, wiring: Wiring) -> None:
        self._engine = wiring.engine
        self._apply_batch = wiring.apply
        self._apply_changes_with = wiring.apply_changes
        self._restart_paths = frozenset(os.path.realpath(p) for p in wiring.restart_paths)
        self._on_restart = wiring.on_restart
        self._script = os.path.realpath(wiring.script) if wiring.script is not None else None
        if wiring.console is not None:
            self._console = wiring.console

    @property
    def engine(self) -> Engine:
        """The engine applying the edits."""
        if self._engine is None:
            self._engine = get_engine()
        return self._engine

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the watcher is watching."""
        return self._files is not None

    def start(self) -> Self:
        """Start watching; returns once file events are being delivered."""
        if self._files is not None or disabled():
            return self
        self.engine.track_new_modules()
        if self._script is not None:
            self.engine.expect_script(self._script)
        files = FileWatcher(
            self._roots(),
            self._handle,
            include=self._include,
            exclude=self._exclude,
            force_polling=self._force_polling,
        )
        files.start()
        self._files = files
        # A save made after the engine read a module and before its watch was in place
        # made no event: the files now on disk decide.
        self._recheck(files, self.engine.tracked_modules(), unknown=False)
        self._stopping.clear()
        sys.meta_path.insert(0, self._notifier)
        self._discovery = threading.Thread(
            target=self._discover, name="relive-discover", daemon=True
        )
        self._discovery.start()
        self._console.emit(Watching(files.describe()))
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _forget_in_child(ref()))
        return self

    def stop(self) -> None:
        """Stop watching (idempotent)."""
        files, self._files = self._files, None
        if files is None:
            return
        self._stopping.set()
        self._notifier.event.set()
        if self._notifier in sys.meta_path:
            sys.meta_path.remove(self._notifier)
        files.stop()
        if self._discovery is not None:
            self._discovery.join(timeout=5)

    def _forget_in_child(self) -> None:
        """In a forked child: the watcher's threads did not come along; stop pretending."""
        self._files = None
        self._discovery = None
        if self._notifier in sys.meta_path:
            sys.meta_path.remove(self._notifier)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def roots(self) -> tuple[Path, ...]:
        """The directories being watched (with their subdirectories); none when stopped."""
        files = self._files
        return files.roots if files is not None else ()

    def describe(self) -> str:
        """One line saying what is watched."""
        return self._files.describe() if self._files is not None else "not watching"

    # -- what to watch ------------------------------------------------------------------

    def _roots(self) -> list[Path]:
        if self._explicit_roots:
            return [root.resolve() for root in self._explicit_roots]
        roots = {Path(directory) for directory in self.engine.directories()}
        cwd = Path.cwd().resolve()
        if cwd not in (Path(cwd.anchor), Path.home()):
            roots.add(cwd)
        roots.update(Path(path).parent for path in self._restart_paths)
        if self._script is not None:
            roots.add(Path(self._script).parent)
        return sorted(roots)

    def _discover(self) -> None:
        """Track modules imported after start and watch their directories (event-driven).

        The finder hears of an import when it starts; the module is tracked once it has
        landed in ``sys.modules`` (imports that fail are given up after a deadline).
        """
        while not self._stopping.is_set():
            self._notifier.event.wait()
            pending = self._notifier.take()
            deadline = time.monotonic() + _IMPORT_DEADLINE
            while pending and not self._stopping.wait(0.02):
                self._track_new_modules()
                pending = {name for name in pending if name not in sys.modules}
                pending |= self._notifier.take()
                if time.monotonic() > deadline:
                    break

    def _track_new_modules(self) -> None:
        files = self._files
        if files is None:
            return
        try:
            added = self.engine.track_new_modules()
            if not added:
                return
            if not self._explicit_roots:
                for directory in sorted({os.path.dirname(tracked.path) for tracked in added}):
                    files.add_root(directory)
        except Exception:
            logger.exception("relive: could not watch newly imported modules")
            return
        # A save between the import and the watch being in place made no event (a file
        # relive first saw already edited has no known source and is re-run whole).
        self._recheck(files, added, unknown=True)

    def _recheck(self, files: FileWatcher, modules: list[TrackedModule], *, unknown: bool) -> None:
        """Deliver the files of ``modules`` that differ from the text relive holds for them
        (and, with ``unknown``, those whose imported text it does not know)."""
        try:
            missed = {tracked.path for tracked in modules if unknown and tracked.source is None}
            missed.update(t.path for t in self.engine.changed_modules(t.path for t in modules))
        except Exception:
            logger.exception("relive: could not compare the watched modules with their files")
            return
        files.recheck(Path(path) for path in missed if files.covers(path))

    # -- handling a batch -----------------------------------------------------------------

    def _handle(self, batch: Batch) -> None:
        changed = {os.path.realpath(path) for path in batch.changed | batch.removed}
        restart = sorted(changed & self._restart_paths)
        if restart:
            name = os.path.basename(restart[0])
            self._restart(RestartRequired(f"{name} changed and it is the running script"))
            return
        # The paths as seen too: a symbolic link a module was imported through, retargeted.
        links = {os.fspath(path) for path in batch.changed if os.path.islink(path)}
        report, errors = self._apply_changes(changed | links)
        rejected = [error for error in errors if not isinstance(error, RestartRequired)]
        fixed, recovered = self._pending.settle(report, rejected)
        if report:
            self.last_report = report
            if self._on_report is not None:
                self._on_report(report)
            else:  # a fix of a refused edit is said even when quiet
                self._console.emit(Applied(report, level="warn" if recovered else "info"))
                for note in instance_hints(report):
                    self._console.emit(note)
        if self._on_error is None:
            for event in fixed:
                self._console.emit(event)
        self.last_error = None
        for error in errors:
            if isinstance(error, RestartRequired):
                self._restart(error)
            else:
                self._error(error)

    def _apply_changes(self, changed: set[str]) -> tuple[Report, list[ReloadError]]:
        """The engine's own batches hold back a broken file; an integration's apply
        function keeps its batch whole (its rules span the batch)."""
        if self._apply_changes_with is not None:
            return self._apply_changes_with(changed)
        if self._apply_batch is None:
            return self.engine.apply_changes(changed)
        try:
            return self._apply_batch(changed), []
        except ReloadError as exc:
            return Report(), [exc]

    def _error(self, exc: ReloadError) -> None:
        self.last_error = exc
        if self._on_error is not None:
            self._on_error(exc)
        else:
            self._console.emit(Rejected(exc))

    def _restart(self, exc: RestartRequired) -> None:
        self.last_error = exc
        if self._on_restart is not None:
            self._on_restart(exc)
        else:
            self._console.emit(RestartNeeded(exc))


def _forget_in_child(watcher: Watcher | None) -> None:
    if watcher is not None:
        watcher._forget_in_child()


def watch(
    *paths: str | os.PathLike[str],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    force_polling: bool | None = None,
    on_report: ReportCallback | None = None,
    on_error: ErrorCallback | None = None,
    quiet: bool = False,
    verbose: bool = False,
) -> Watcher:
    """Watch the user's code and apply every saved edit to this running process.

    With no ``paths``, watches the directories of the tracked modules and the current
    directory, and the directories of modules imported later. Returns the started
    watcher (a context manager; ``.stop()`` ends it). With ``RELIVE=0`` in the
    environment it returns a watcher that does nothing. A save that holds a broken file
    among good ones applies the good ones; the broken one is reported and keeps its
    last code.

    Args:
        paths: Directories to watch instead of the defaults.
        include: Extra glob patterns of files to watch besides ``*.py``.
        exclude: Glob patterns of files to ignore.
        force_polling: Poll instead of using OS events (None: poll only if events fail).
        on_report: Called with each non-empty report (default: one line on stderr).
        on_error: Called with each ReloadError (default: one line on stderr).
        quiet: Say nothing about successful reloads.
        verbose: Say what is watched.
    """
    return Watcher(
        paths,
        include=include,
        exclude=exclude,
        force_polling=force_polling,
        on_report=on_report,
        on_error=on_error,
        quiet=quiet,
        verbose=verbose,
    ).start()


def watch_wired(
    wiring: Wiring,
    *paths: str | os.PathLike[str],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    quiet: bool = False,
    verbose: bool = False,
    on_report: ReportCallback | None = None,
) -> Watcher:
    """Internal: :func:`watch` for an integration (the worker of ``relive run``, a
    server), with what it sets beside the user's options (``on_report``: an integration
    that says what its edits did itself, as relive.dask does with its workers)."""
    watcher = Watcher(
        paths, include=include, exclude=exclude, on_report=on_report, quiet=quiet, verbose=verbose
    )
    watcher._wire(wiring)
    return watcher.start()
