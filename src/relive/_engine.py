"""The transaction: changed modules → parsed, planned, applied in dependency order → report.

Everything is parsed and compiled before anything is applied; every change goes through
one undo journal, so an error anywhere leaves the process exactly as it was.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType

from relive._apply import ModuleApplier, ModuleChanges
from relive._derived import stale_caches, top_level_mentions
from relive._diff import Statement
from relive._errors import ReloadError
from relive._lifecycle import HookRun
from relive._output import Formatter
from relive._patch import Journal
from relive._prepare import Prepared, prepare
from relive._running import ModuleFrames, check_plan
from relive._tracker import TrackedModule, Tracker, not_loaded_yet
from relive._undo import SideEffects

__all__ = ["Engine", "ModuleReport", "Report", "get_engine", "refresh", "reload", "replace_engine"]

_MAX_VISITS = 4  # how often one module may be revisited by an import cycle


@dataclass(frozen=True)
class ModuleReport:
    """What one reload did to one module."""

    name: str
    path: str
    patched: tuple[str, ...]  # functions and classes patched in place (qualified names)
    added: tuple[str, ...]  # names defined by new statements
    removed: tuple[str, ...]  # names deleted with their definitions
    executed: tuple[int, ...]  # lines of statements executed (again)
    rebound: tuple[str, ...]  # names now bound to other objects (pushed to importers)
    dependent: bool  # updated because a module it imports changed, not edited itself

    def summary(self) -> str:
        """One line, e.g. ``app.py: 2 patched, 1 added, 1 statement run`` (the path
        relative to the current directory when under it, as every message of relive's)."""
        return Formatter().module(self)


@dataclass(frozen=True)
class Report:
    """What one reload did: the modules changed, in the order applied."""

    modules: tuple[ModuleReport, ...] = ()
    duration: float = 0.0  # seconds

    @property
    def reloaded(self) -> tuple[str, ...]:
        """Names of the modules changed, in the order applied."""
        return tuple(module.name for module in self.modules)

    def __bool__(self) -> bool:
        return bool(self.modules)

    def summary(self) -> str:
        """One line for people: what changed and how long it took (as relive says it)."""
        return Formatter().applied(self)


class Engine:
    """Tracks the user's modules and applies edits to them as transactions.

    One engine per process is the norm ([`get_engine`][relive.get_engine]); reloads are
    serialized by a lock, so the watcher thread and explicit calls never interleave.

    Args:
        include: Extra directories whose modules are tracked even inside site-packages.
    """

    def __init__(self, *, include: Iterable[str | os.PathLike[str]] = ()) -> None:
        self._tracker = Tracker(include=list(include))
        self._lock = threading.RLock()
        self._readers: set[str] = set()  # importers read during the current transaction
        self._editing: dict[str, Prepared] = {}  # the edits it applies, by module
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
                for tracked in self._tracker.by_path(os.path.realpath(path)):
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
            return self._transaction(changes, confirm)
        except ReloadError:
            for tracked, source in changes:
                self._tracker.mark_failed(tracked, source)
            raise
        finally:
            if collecting:
                gc.enable()

    def _transaction(
        self,
        changes: list[tuple[TrackedModule, str | None]],
        confirm: Callable[[], bool] | None = None,
    ) -> Report:
        started = time.perf_counter()
        prepared = [self._prepare(tracked, source) for tracked, source in changes]
        prepared = _dependency_order(prepared)
        self._editing = {item.tracked.name: item for item in prepared}
        journal = Journal()
        effects = SideEffects(self._is_user_module)
        journal.before_user_code = lambda name: self._record_side_effects([name], journal, effects)
        # A module imported anew runs its code: what it imports is recorded first.
        self._tracker.on_import = lambda names: self._record_side_effects(names, journal, effects)
        hooks = HookRun(journal)
        try:
            with hooks.active():
                reports = self._apply(prepared, journal, hooks)
            if confirm is not None and not confirm():
                raise ReloadError("the edit was called off")
        except BaseException as exc:
            journal.rollback()
            hooks.rolled_back()
            if isinstance(exc, ReloadError) or not isinstance(exc, Exception):
                raise
            raise ReloadError(f"internal error while reloading: {exc!r}") from exc
        finally:
            self._tracker.on_import = None
            self._lean_readers()
        journal.commit()
        hooks.committed()
        for item in prepared:
            self._tracker.commit(
                item.tracked, item.source, item.statements, item.stat, item.imports
            )
        return Report(tuple(reports), time.perf_counter() - started)

    def _record_side_effects(
        self, names: Iterable[str], journal: Journal, effects: SideEffects
    ) -> None:
        """Before the program's code runs in modules ``names``: record the mutable state
        of the tracked modules they import, directly or not (a rollback puts it back)."""
        stack = [name for name in names if name not in effects.modules]
        if not stack:
            return
        found: list[ModuleType] = []
        while stack:
            current = stack.pop()
            tracked = self._tracker.get(current)
            module = sys.modules.get(current)
            if current in effects.modules or tracked is None or module is None:
                continue
            effects.modules.add(current)
            found.append(module)
            edit = self._editing.get(current)
            stack.extend(edit.imports if edit is not None else tracked.imports)
        for module in found:
            journal.remember_namespace(vars(module))
        effects.take(found)
        # Undone at its place in the journal: later changes first, earlier ones after.
        journal.on_rollback(effects.restorer())

    def _is_user_module(self, module: ModuleType) -> bool:
        if not_loaded_yet(module):
            return False  # reading its __file__ would load it
        path = getattr(module, "__file__", None)
        return isinstance(path, str) and self._tracker.is_user_file(os.path.realpath(path))

    def _lean_readers(self) -> None:
        """Importers parsed only to follow this edit keep their statements without trees."""
        for name in self._readers - self._editing.keys():
            tracked = self._tracker.get(name)
            if tracked is not None:
                tracked.lean()
        self._readers.clear()
        self._editing = {}

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

    def _apply(
        self, prepared: list[Prepared], journal: Journal, hooks: HookRun
    ) -> list[ModuleReport]:
        frames = ModuleFrames()  # top-level code still running: it must not run again
        for edit in prepared:  # an edit of a statement running now restarts, before hooks
            module = vars(sys.modules[edit.tracked.name])
            check_plan(edit.plan.steps, frames.running(module, edit.tracked), edit.tracked)
        # Before hooks tear down what the program asked for before anything is applied;
        # what they change is theirs (a rolled-back reload runs the after hooks again).
        for edit in prepared:
            if edit.plan.changed or edit.plan.moved:
                hooks.before(edit.tracked.name)
        pending = {item.tracked.name: item for item in prepared}
        queue = deque(pending)
        triggers: dict[str, set[tuple[str, str]]] = {}
        derived: dict[str, set[tuple[str, str]]] = {}  # changed code importers use
        visits: dict[str, int] = {}
        reports: dict[str, ModuleChanges] = {}
        while queue:
            name = self._take_ready(queue, pending)
            visits[name] = visits.get(name, 0) + 1
            if visits[name] > _MAX_VISITS:
                continue
            tracked = self._tracker.get(name)
            if tracked is None:
                continue
            running = frames.running(vars(sys.modules[name]), tracked)
            applier = ModuleApplier(
                tracked, journal, triggers.pop(name, set()), running, derived.pop(name, set())
            )
            item = pending.pop(name, None)
            changes = applier.run(item, self._editing.get(name))
            reports.setdefault(name, ModuleChanges(tracked, dependent=True)).merge(changes)
            self._push(name, changes, (triggers, derived), queue, journal)
        journal.settle()
        changed = [report for report in reports.values() if report.anything]
        hooks.after((report.tracked.name, report.patched) for report in changed)
        return [_module_report(report) for report in changed]

    def _take_ready(self, queue: deque[str], pending: dict[str, Prepared]) -> str:
        """The first queued module that imports no other queued module (dependency order).

        In an import cycle every member waits on another; the first queued one goes then.
        """
        queued = set(queue)
        for index, name in enumerate(queue):
            item = pending.get(name)
            tracked = self._tracker.get(name)
            imports = item.imports if item is not None else tracked.imports if tracked else ()
            if not any(dependency in queued and dependency != name for dependency in imports):
                del queue[index]
                return name
        return queue.popleft()

    def _push(
        self,
        name: str,
        changes: ModuleChanges,
        triggers: tuple[dict[str, set[tuple[str, str]]], dict[str, set[tuple[str, str]]]],
        queue: deque[str],
        journal: Journal,
    ) -> None:
        """Queue the importers of ``name`` that read one of the names it rebound, or use
        (at the top level) a function or class of it whose code changed; clear their
        caches of functions reading either."""
        rebound, code = changes.rebound, changes.changed_code
        if not (rebound or code):
            return
        for importer in self._tracker.importers_of(name):
            self._readers.add(importer.name)
            edit = self._editing.get(importer.name)
            source = edit.source if edit is not None else importer.source or ""
            statements = edit.statements.copy if edit is not None else importer.statements
            if "cache" in source and importer.name in sys.modules:
                namespace = vars(sys.modules[importer.name])
                journal.caches.extend(stale_caches(namespace, importer.filename, rebound | code))
            reads = bool(rebound) and _reads_any(source, statements, name, rebound)
            uses = bool(code) and top_level_mentions(source, code)
            uses = uses and _reads_any(source, statements, name, code, plain=True)
            if edit is None:
                importer.lean(rebound | code)  # the heap stays small while many follow
            for keys, follows, table in ((rebound, reads, triggers[0]), (code, uses, triggers[1])):
                if follows:
                    table.setdefault(importer.name, set()).update(_keys(name, keys))
            if (reads or uses) and importer.name not in queue:
                queue.append(importer.name)


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


def _module_report(changes: ModuleChanges) -> ModuleReport:
    return ModuleReport(
        name=changes.tracked.name,
        path=changes.tracked.path,
        patched=tuple(changes.patched),
        added=tuple(changes.added),
        removed=tuple(changes.removed),
        executed=tuple(sorted(set(changes.executed))),
        rebound=tuple(sorted(changes.rebound)),
        dependent=changes.dependent,
    )


def _reads_any(
    source: str,
    statements: Callable[[], list[Statement]],
    module: str,
    names: set[str],
    *,
    plain: bool = False,
) -> bool:
    """Whether a statement of ``source`` reads one of ``names`` of ``module`` (or
    star-imports it); ``statements`` is called only if the text mentions one of them.

    ``plain``: only statements that are not imports or definitions count, reading the
    names from ``module`` or through the names an import copied from it.
    """
    star = any(not name.startswith("_") or name == "__all__" for name in names)
    words = names | {"*"} if star else names
    if not any(word in source for word in words):
        return False  # not even in the text: no need to parse the importer
    copies: set[str] = set()
    members = _keys(module, {name for name in names if "." in name}) - {(module, n) for n in names}
    for statement in statements():
        if not statement.mentions(words | copies):
            continue
        is_import = statement.text.startswith(("import ", "from "))
        for origin, used in statement.uses:
            if (origin, used) in members:
                return True  # ``m.C.K`` for a replaced member ``C.K`` of m
            if origin == module and (used in names or (star and used == "*")):
                if not plain:
                    return True
                if is_import:
                    copies |= statement.binds
                    continue
            elif not (plain and not origin and used in copies):
                continue
            if statement.kind == "stmt" and not is_import:
                return True
    return False


def _keys(module: str, names: set[str]) -> set[tuple[str, str]]:
    """Trigger keys for names of ``module``; a replaced class member ``C.K`` is read as
    ``m.C.K``, the key ``(m.C, K)``, too."""
    keys = {(module, name) for name in names}
    for name in names:
        if "." in name:
            owner, _, member = name.rpartition(".")
            keys.add((f"{module}.{owner}", member))
    return keys


def _dependency_order(prepared: list[Prepared]) -> list[Prepared]:
    """Order a batch so that a module comes after the modules it imports (cycles kept)."""
    by_name = {item.tracked.name: item for item in prepared}
    ordered: list[Prepared] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name):
            return
        state[name] = 1
        for dependency in sorted(by_name[name].imports & by_name.keys()):
            visit(dependency)
        state[name] = 2
        ordered.append(by_name[name])

    for name in by_name:
        visit(name)
    return ordered


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
