"""The transaction: changed modules → parsed, planned, applied in dependency order → report.

Everything is parsed and compiled before anything is applied; every change goes through
one undo journal, so an error anywhere leaves the process exactly as it was.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType

from relive._errors import ReloadError
from relive._prepare import Prepared, prepare
from relive._sources import StatKey
from relive._tracker import TrackedModule, Tracker, not_loaded_yet
from relive._transaction import ModuleReport, Report, Transaction

__all__ = ["Engine", "ModuleReport", "Report", "get_engine", "refresh", "reload", "replace_engine"]


class Engine:
    """Tracks the user's modules and applies edits to them as transactions.

    One engine per process is the norm ([`get_engine`][relive.get_engine]); reloads are
    serialized by a lock, so the watcher thread and explicit calls never interleave.

    Args:
        include: Extra directories whose modules are tracked even inside site-packages.
        imported: The text (and status) of files imported before the engine existed, by
            real path, as they were imported (a process armed lazily recorded them).
    """

    def __init__(
        self,
        *,
        include: Iterable[str | os.PathLike[str]] = (),
        imported: Mapping[str, tuple[str, StatKey]] | None = None,
    ) -> None:
        self._tracker = Tracker(include=list(include))
        self._lock = threading.RLock()
        for path, (source, stat) in (imported or {}).items():
            self._tracker.remember(path, source, stat)
        self._tracker.scan()
        self._tracker.record_imports()
        _fork_safely(self)

    def close(self) -> None:
        """Stop recording imports (the engine keeps what it tracks)."""
        self._tracker.stop_recording()

    # -- public operations ---------------------------------------------------------------

    @contextmanager
    def _operation(self) -> Iterator[None]:
        """One public operation: under the lock, and raising nothing but ``ReloadError``
        (an unexpected error, in relive or from the program's import machinery, is one)."""
        with self._lock:
            try:
                yield
            except ReloadError:
                raise
            except Exception as exc:
                raise ReloadError(f"internal error while reloading: {exc!r}") from exc

    def reload(self, *targets: ModuleType | str) -> Report:
        """Apply the current source of ``targets`` (and update their dependents).

        Raises:
            ReloadError: Nothing was changed; the message says where it failed.
        """
        with self._operation():
            self._tracker.scan()
            modules = [self._resolve(target) for target in targets]
            return self._run(self._tracker.changed_on_disk(modules))

    def refresh(self) -> Report:
        """Apply every tracked module whose source changed on disk.

        A batch that failed is not tried again until some file changes anew, so a broken
        edit is reported once ([`reload`][relive.Engine.reload] always tries).
        """
        with self._operation():
            self._tracker.scan()
            changes = self._tracker.changed_on_disk(self._tracker.modules())
            return self._run(changes, retry=False)

    def apply_paths(self, paths: Iterable[str | os.PathLike[str]]) -> Report:
        """Apply the modules loaded from ``paths`` (files reported changed by a watcher).

        Modules whose edit failed with an earlier batch come along, so a good file saved
        together with a broken one is applied once the broken one is fixed.
        """
        with self._operation():
            self._tracker.scan()
            modules = {tracked.name: tracked for tracked in self._tracker.failed()}
            for path in paths:
                # The file, or a symbolic link a module was imported through.
                for where in {os.path.realpath(path), os.path.abspath(path)}:
                    for tracked in self._tracker.by_path(where):
                        modules[tracked.name] = tracked
            return self._run(self._tracker.changed_on_disk(modules.values()), retry=False)

    def apply_changes(
        self, paths: Iterable[str | os.PathLike[str]] | None = None
    ) -> tuple[Report, list[ReloadError]]:
        """Apply what changed on disk (the modules of ``paths`` only, if given), holding
        back the files whose edit fails so that they do not block the others.

        A batch is one transaction, so one broken file would hold back every good edit
        saved with it: the files that fail are set aside and the others are applied
        again, once per failing file. Front ends (IPython, the watcher) use this.

        Returns:
            The report of what was applied, and the errors of the files held back.
        """
        wanted = None if paths is None else [os.fspath(path) for path in paths]
        try:
            return (self.refresh() if wanted is None else self.apply_paths(wanted)), []
        except ReloadError as exc:
            errors = [exc]
        failed: set[str | None] = {errors[0].path}
        while None not in failed:
            names = [
                tracked.name
                for tracked, source in self._changes(wanted)
                if source is not None and tracked.path not in failed
            ]
            if not names:
                break
            try:
                return self.reload(*names), errors
            except ReloadError as exc:
                errors.append(exc)
                if exc.path in failed:
                    break
                failed.add(exc.path)
        return Report(), errors

    def apply_sources(
        self, sources: Mapping[str, str], *, confirm: Callable[[], bool] | None = None
    ) -> Report:
        """Apply new source text to modules named by their dotted names, as one transaction
        (the text is given, not read from disk: it may come from another machine).

        Args:
            sources: The new text of each module, which must be imported.
            confirm: Called once everything is applied, before the commit point: if it
                returns False or raises, the transaction is rolled back (two-phase commit
                across processes; the engine's lock is held until it returns).

        Raises:
            ReloadError: Nothing was changed (also when ``confirm`` declined).
        """
        with self._lock:
            self._tracker.scan()
            changes: list[tuple[TrackedModule, str | None]] = []
            for name, source in sources.items():
                tracked = self._resolve(name)
                if source != tracked.source:
                    changes.append((tracked, source))
            if not changes and confirm is not None and not confirm():
                raise ReloadError("the edit was called off")
            return self._run(changes, confirm=confirm)

    def changed_sources(
        self, paths: Iterable[str | os.PathLike[str]] | None = None
    ) -> dict[str, str | None]:
        """The new text of each tracked module (loaded from ``paths``, if given) whose
        file differs from the code it runs, by module name (None: the file is gone)."""
        wanted = None if paths is None else [os.fspath(path) for path in paths]
        return {tracked.name: source for tracked, source in self._changes(wanted)}

    # -- queries: what front ends ask about the tracked modules ---------------------------

    def track_new_modules(self) -> list[TrackedModule]:
        """Start tracking the modules imported since the last look; returns them."""
        with self._lock:
            return self._tracker.scan()

    def expect_script(self, path: str | os.PathLike[str]) -> None:
        """Note the text of a script about to run as ``__main__`` (``relive run app.py``):
        it is tracked from that text once it runs, however soon it is edited."""
        with self._lock:
            self._tracker.capture(os.path.realpath(path))

    def tracked_modules(self) -> list[TrackedModule]:
        """The tracked modules still imported (call :meth:`track_new_modules` first to
        include the modules imported since the last look)."""
        with self._lock:
            return self._tracker.modules()

    def tracked_module(self, name: str) -> TrackedModule | None:
        """The tracked module of that name, if it is still imported."""
        with self._lock:
            return self._tracker.get(name)

    def directories(self) -> set[str]:
        """The directories the tracked modules were loaded from (the ones to watch)."""
        with self._lock:
            return self._tracker.directories()

    def changed_modules(
        self, paths: Iterable[str | os.PathLike[str]] | None = None
    ) -> list[TrackedModule]:
        """The tracked modules (loaded from ``paths``, if given) whose file differs from
        the code they run, deleted files included."""
        wanted = None if paths is None else [os.fspath(path) for path in paths]
        return [tracked for tracked, _ in self._changes(wanted)]

    def _changes(self, paths: list[str] | None) -> list[tuple[TrackedModule, str | None]]:
        with self._lock:
            self._tracker.scan()
            if paths is None:
                modules = self._tracker.modules()
            else:
                tracker = self._tracker
                modules = [m for path in paths for m in tracker.by_path(os.path.realpath(path))]
            return self._tracker.changed_on_disk(modules)

    # -- the transaction -------------------------------------------------------------

    def _resolve(self, target: ModuleType | str) -> TrackedModule:
        module = sys.modules.get(target) if isinstance(target, str) else target
        if not isinstance(module, ModuleType):
            raise ReloadError(f"no module named {target!r} is loaded")
        try:
            return self._tracker.track(module)
        except LookupError as exc:
            raise ReloadError(str(exc), module=module.__name__) from None

    def _run(
        self,
        changes: list[tuple[TrackedModule, str | None]],
        *,
        retry: bool = True,
        confirm: Callable[[], bool] | None = None,
    ) -> Report:
        if not changes or not (retry or any(_new_attempt(t, source) for t, source in changes)):
            return Report()
        # The cyclic collector would walk the whole heap again and again while the trees
        # of many importers are built (60% of a first edit followed by 2,000 importers).
        collecting = gc.isenabled()
        gc.disable()
        try:
            prepared = [self._prepare(tracked, source) for tracked, source in changes]
            transaction = Transaction(self._tracker, prepared, self._is_user_module)
            return transaction.run(confirm)
        except ReloadError:
            for tracked, source in changes:
                self._tracker.mark_failed(tracked, source)
            raise
        finally:
            if collecting:
                gc.enable()

    def _is_user_module(self, module: ModuleType) -> bool:
        if not_loaded_yet(module):
            return False  # reading its __file__ would load it
        path = getattr(module, "__file__", None)
        return isinstance(path, str) and self._tracker.is_user_file(os.path.realpath(path))

    def _prepare(self, tracked: TrackedModule, source: str | None) -> Prepared:
        """Parse, diff and compile one changed module; raises before anything is applied."""
        if source is None and tracked.unreadable is not None:
            unreadable = tracked.unreadable
            raise ReloadError(
                unreadable.message,
                path=tracked.path,
                lineno=unreadable.lineno,
                line=unreadable.line,
                module=tracked.name,
            )
        if source is None:
            tracked.missing = True
            raise ReloadError(
                "the file was deleted or cannot be read; the module keeps its last code",
                path=tracked.path,
                module=tracked.name,
            )
        if tracked.name not in sys.modules:
            self._tracker.forget(tracked.name)
            raise ReloadError(f"module {tracked.name} is no longer imported", path=tracked.path)
        return prepare(tracked, source)


_FORK_WAIT = 60.0  # longest a fork waits for a reload in progress (a two-phase round)


def _fork_safely(engine: Engine) -> None:
    """A fork waits for the reload in progress, so a child never inherits half a
    transaction, and the child gets a lock of its own (the threads holding the parent's
    are not in it)."""
    ref = weakref.ref(engine)
    held: list[bool] = []

    def before() -> None:
        engine = ref()
        held.append(engine is not None and engine._lock.acquire(timeout=_FORK_WAIT))

    def after_in_parent() -> None:
        engine = ref()
        if held.pop() and engine is not None:
            engine._lock.release()

    def after_in_child() -> None:
        held.clear()
        engine = ref()
        if engine is not None:
            engine._lock = threading.RLock()

    os.register_at_fork(
        before=before, after_in_parent=after_in_parent, after_in_child=after_in_child
    )


def _new_attempt(tracked: TrackedModule, source: str | None) -> bool:
    """Whether ``source`` is not the text that already failed to apply."""
    return source is None or source != tracked.failed


# ---------------------------------------------------------------------------------------
# The process's engine

_engine: Engine | None = None
_engine_lock = threading.Lock()


def get_engine() -> Engine:
    """The process's engine, created on first use (it starts tracking modules then)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = Engine()
        return _engine


def reload(*targets: ModuleType | str) -> Report:
    """Apply the current source of modules (objects or dotted names) and their dependents.

    Raises:
        ReloadError: The edit could not be applied; the running code is exactly as it was.
    """
    return get_engine().reload(*targets)


def refresh() -> Report:
    """Apply every tracked module whose source changed on disk (quick when none did)."""
    return get_engine().refresh()


def replace_engine(engine: Engine | None) -> Engine | None:
    """Make ``engine`` the process's engine (None: the next use creates one); returns the
    one it replaces. For ``relive.testing.reset_engine``."""
    global _engine
    with _engine_lock:
        previous, _engine = _engine, engine
        return previous
