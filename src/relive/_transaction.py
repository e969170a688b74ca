"""One reload as an object: the edits it applies, the modules it visits, its undo.

The engine is long-lived; everything that lives only while one batch of edits is applied
(the journal, the importers read to follow it, the side effects recorded, the hooks) is
held by a :class:`Transaction`, made for that batch and dropped after it.
"""

from __future__ import annotations

import re
import sys
import time
import types
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType

from relive._apply import ModuleApplier, ModuleChanges
from relive._derived import cached_functions, top_level_mentions
from relive._errors import ReloadError
from relive._importers import Summarised, indexed_statements, mentions_at_top
from relive._lifecycle import HookRun
from relive._output import Formatter
from relive._overloads import Overloads
from relive._patch import Journal
from relive._prepare import Prepared
from relive._reach import reached_modules
from relive._registries import reorder_registries
from relive._running import ModuleFrames, check_plan
from relive._segments import Untrusted
from relive._stale import Staleness, identifiers
from relive._statements import Statement
from relive._tracker import TrackedModule, Tracker
from relive._undo import SideEffects

__all__ = ["ModuleReport", "Report", "Transaction"]

_MAX_VISITS = 4  # how often an import cycle may bring a module back to change it again
# How often it may bring it back to change nothing (a module of a large cycle is told of
# each later module's edit; what it was told it judges again, and finds nothing to run).
_MAX_IDLE = 16


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


class Transaction:
    """Applies one batch of prepared edits, and their importers, as one undoable step.

    Args:
        tracker: The engine's tracked modules.
        prepared: The edits, parsed and compiled.
        user_module: Whether a module is the user's (imported by a failed batch, it is
            unloaded again).
    """

    def __init__(
        self,
        tracker: Tracker,
        prepared: list[Prepared],
        user_module: Callable[[ModuleType], bool],
    ) -> None:
        self.tracker = tracker
        self.prepared = _dependency_order(prepared)
        self.editing = {item.tracked.name: item for item in self.prepared}  # by module
        self.readers: set[str] = set()  # importers read to follow the edits
        self.journal = Journal()
        self.effects = SideEffects(user_module)
        self.hooks = HookRun(self.journal)
        # By (module, importer): the stale names of the module its importer was told of.
        self._pushed: dict[tuple[str, str], set[str]] = {}
        self._own: dict[str, tuple[tuple[int, int], set[str]]] = {}  # see _stale_own
        self._told: dict[str, tuple[tuple[int, int], set[str]]] = {}  # see _untold_own
        self._queued: set[str] = set()  # the modules queued to visit (see _take_ready)
        self._closed: set[str] = set()  # modules recorded with all they import
        self.staleness = Staleness(self.journal, lambda name: tracker.get(name) is not None)
        self.overloads = Overloads()  # typing's overload registry of the modules visited

    def run(self, confirm: Callable[[], bool] | None = None) -> Report:
        """Apply everything and commit, or roll back and raise ReloadError."""
        started = time.perf_counter()
        journal, hooks = self.journal, self.hooks
        journal.before_user_code = lambda name, code: self._record_side_effects([name], code)
        # A module imported anew runs its code: what it imports is recorded first.
        self.tracker.on_import = self._record_side_effects
        try:
            with hooks.active():
                reports = self._apply()
            if confirm is not None and not confirm():
                raise ReloadError("the edit was called off")
        except BaseException as exc:
            journal.rollback()
            self.overloads.rollback()
            hooks.rolled_back()
            if isinstance(exc, ReloadError) or not isinstance(exc, Exception):
                raise
            raise ReloadError(f"internal error while reloading: {exc!r}") from exc
        finally:
            self.tracker.on_import = None
            journal.before_user_code = None  # it holds the transaction: no cycle left behind
            self._lean_readers()
        journal.commit()
        self.effects.dispatch.commit()
        self._commit_overloads()
        hooks.committed()
        for item in self.prepared:
            self.tracker.commit(item.tracked, item.source, item.statements, item.stat, item.imports)
        return Report(tuple(reports), time.perf_counter() - started)

    def _commit_overloads(self) -> None:
        """``typing.get_overloads`` of the modules visited as a fresh import's."""
        sources: dict[str, str | None] = {item.tracked.name: item.source for item in self.prepared}
        for name in self.overloads.visited - sources.keys():
            tracked = self.tracker.get(name)
            sources[name] = tracked.source if tracked is not None else None
        self.overloads.commit(sources)

    def _record_side_effects(
        self, names: Iterable[str], code: types.CodeType | None = None
    ) -> None:
        """Before the program's code runs in modules ``names``: record the mutable state
        of the tracked modules they import, directly or not (a rollback puts it back).
        With ``code`` (one statement's, in the one module named): of the modules its code
        reaches (:mod:`relive._reach`), when that is sure."""
        names = list(names)
        self.journal.flush()  # a module imported anew runs code: it sees the whole edit
        for name in names:  # a module imported anew: its stubs leave with it on rollback
            self.overloads.visit(name)
        if all(name in self._closed for name in names):
            return  # their import closures are recorded already
        walked = self._reached(names, code)
        found: list[ModuleType] = []
        if walked is None:
            found = self._closure(names)
        else:
            for name in walked[0] - self.effects.modules:
                self.effects.modules.add(name)
                found.append(sys.modules[name])
            if not found and not walked[1]:
                return
        for module in found:
            self.journal.remember_namespace(vars(module))
        self.effects.take(found, walked[1] if walked is not None else ())
        # Undone at its place in the journal: later changes first, earlier ones after.
        self.journal.on_rollback(self.effects.restorer())

    def _closure(self, names: list[str]) -> list[ModuleType]:
        """The tracked modules ``names`` import, directly or not, not recorded yet."""
        stack = [name for name in names if name not in self._closed]
        found: list[ModuleType] = []
        while stack:
            current = stack.pop()
            tracked = self.tracker.get(current)
            module = sys.modules.get(current)
            if current in self._closed or tracked is None or module is None:
                continue
            self._closed.add(current)
            if current not in self.effects.modules:
                self.effects.modules.add(current)
                found.append(module)
            edit = self.editing.get(current)
            stack.extend(edit.imports if edit is not None else tracked.imports)
        return found

    def _reached(
        self, names: list[str], code: types.CodeType | None
    ) -> tuple[set[str], list[object]] | None:
        """The tracked modules ``code`` can change and the containers it reaches, when
        sure (else None: the import closure is recorded)."""
        module = sys.modules.get(names[0]) if len(names) == 1 else None
        if code is None or module is None:
            return None
        tracked = self.tracker.get
        return reached_modules(
            code, vars(module), lambda name: tracked(name) is not None, self.journal.code_of
        )

    def _lean_readers(self) -> None:
        """Importers parsed only to follow this edit keep their statements without trees."""
        for name in self.readers - self.editing.keys():
            tracked = self.tracker.get(name)
            if tracked is not None:
                tracked.lean()
                tracked.drop_cut()
        self.readers.clear()
        self.editing = {}
        self.tracker.drop_code()

    def _apply(self) -> list[ModuleReport]:
        prepared, journal, hooks = self.prepared, self.journal, self.hooks
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
        self._queued = set(queue)
        triggers: dict[str, set[tuple[str, str]]] = {}
        visits: dict[str, int] = {}  # the visits that changed something, by module
        idle: dict[str, int] = {}  # those that changed nothing
        reports: dict[str, ModuleChanges] = {}
        while queue:
            name = self._take_ready(queue, pending)
            if visits.get(name, 0) >= _MAX_VISITS or idle.get(name, 0) >= _MAX_IDLE:
                raise _cycle_error(name, visits, queue)
            tracked = self.tracker.get(name)
            if tracked is None:
                continue
            self.overloads.visit(name, tracked.source)
            running = frames.running(vars(sys.modules[name]), tracked)
            applier = ModuleApplier(
                tracked, journal, triggers.pop(name, set()), self.staleness, running
            )
            item = pending.pop(name, None)
            changes = applier.run(item, self.editing.get(name))
            tracked.drop_cut()  # what it asks next (a cycle's next visit) is cut out again
            counted = visits if changes.anything or changes.rebound else idle
            counted[name] = counted.get(name, 0) + 1
            reports.setdefault(name, ModuleChanges(tracked, dependent=True)).merge(changes)
            self._push(name, changes, triggers, queue)
        journal.settle()
        reorder_registries(self.effects.lists, self._position)
        changed = [report for report in reports.values() if report.anything]
        hooks.after((report.tracked.name, report.patched) for report in changed)
        return [_module_report(report) for report in changed]

    def _position(self, obj: object) -> tuple[str, int] | None:
        """Where a function or a top-level class of a tracked module is defined now."""
        if isinstance(obj, types.FunctionType):
            code = self.journal.code_of(obj)
            return code.co_filename, code.co_firstlineno
        if not isinstance(obj, type) or "." in obj.__qualname__:
            return None
        name = obj.__module__
        tracked = self.tracker.get(name) if isinstance(name, str) else None
        if tracked is None:
            return None
        edit = self.editing.get(name)
        source = (edit.source if edit is not None else tracked.source) or ""
        found = re.search(rf"^class\s+{re.escape(obj.__name__)}\b", source, re.MULTILINE)
        if found is None:
            return None
        return tracked.filename, source.count("\n", 0, found.start()) + 1

    def _take_ready(self, queue: deque[str], pending: dict[str, Prepared]) -> str:
        """The first queued module that imports no other queued module (dependency order).

        In an import cycle every member waits on another; the first queued one goes then.
        """
        queued = self._queued
        for index, name in enumerate(queue):
            item = pending.get(name)
            tracked = self.tracker.get(name)
            imports = item.imports if item is not None else tracked.imports if tracked else ()
            if not any(dependency in queued and dependency != name for dependency in imports):
                del queue[index]
                queued.discard(name)
                return name
        queued.discard(queue[0])
        return queue.popleft()

    def _push(
        self,
        name: str,
        changes: ModuleChanges,
        triggers: dict[str, set[tuple[str, str]]],
        queue: deque[str],
    ) -> None:
        """Queue the importers of ``name`` that read one of the names it rebound, or use
        (at the top level) a function or class whose code is stale (one of ``name``'s, or
        their own); clear their stale caches. Importers with nothing to run again are
        followed further: their importers may use their stale functions."""
        stack = [(name, changes.rebound)]
        followed = {name}
        while stack:
            current, rebound = stack.pop()
            for importer in self._importers(current, direct=current != name):
                if self._visit(current, rebound, importer, triggers, queue):
                    continue
                if importer.name not in followed and importer.name not in self._queued:
                    followed.add(importer.name)
                    stack.append((importer.name, set()))

    def _importers(self, name: str, *, direct: bool) -> Iterator[TrackedModule]:
        """The importers of ``name`` (only those naming it, when they import its package
        alone; only those importing it, if ``direct``)."""
        for importer in self.tracker.importers_of(name, direct=direct):
            edit = self.editing.get(importer.name)
            known = edit.source if edit is not None else importer.source
            if self.tracker.may_reach(importer, name, known):
                self.readers.add(importer.name)
                yield importer

    def _visit(
        self,
        name: str,
        rebound: set[str],
        importer: TrackedModule,
        triggers: dict[str, set[tuple[str, str]]],
        queue: deque[str],
    ) -> bool:
        """Queue ``importer`` if it reads what ``name`` rebound, or uses at the top level
        what is stale; whether it was (or has nothing more to follow)."""
        edit = self.editing.get(importer.name)
        source = (edit.source if edit is not None else importer.source) or ""
        # What its top level loads of ``name`` that runs stale code (its own functions,
        # which may read more of ``name``, are judged with what its top level uses).
        loaded = importer.top_level_loads() if edit is None else None
        pushed = self._pushed.setdefault((name, importer.name), set())
        namespace = vars(sys.modules[name])
        used = loaded if loaded is not None else identifiers(source)
        code = self.staleness.stale_among(namespace, used, classes=True) - pushed
        pushed |= code  # an import cycle brings it back: only what is new goes on
        owners = {bound.partition(".")[0] for bound in rebound if "." in bound}
        words = rebound | owners | code
        star = any(not bound.startswith("_") or bound == "__all__" for bound in rebound)
        if edit is None and not any(word in source for word in words | ({"*"} if star else set())):
            importer.lean()  # it names none of them: nothing to parse
            return True
        top = None if edit else importer.top_level_uses()
        own = self._untold_own(importer.name, source, top)
        loads = edit is not None or importer.may_read(words)
        if not (loads or own):
            importer.lean()  # its top-level code loads none of them
            return False
        mentioned = (code | owners if loads else set()) | own
        read = rebound | owners if loads and rebound else set()
        reads, uses = _follows(importer, edit, source, name, read, mentioned)
        if edit is None:
            importer.lean(words)  # the heap stays small while many follow
        if reads:
            triggers.setdefault(importer.name, set()).update(_keys(name, rebound))
        if (reads or uses) and importer.name not in self._queued:
            queue.append(importer.name)
            self._queued.add(importer.name)
        return reads or uses

    def _untold_own(self, name: str, source: str, used: frozenset[str] | None) -> set[str]:
        """What :meth:`_stale_own` finds that the importer was not told of since code
        last changed: its statements that use them ran again then, or did not need to (an
        import cycle brings it back after each visit of a module it imports; were it told
        again, the cycle would go on though nothing changes)."""
        own = self._stale_own(name, source, used)
        state = self.staleness.code_state()
        told = self._told.get(name)
        if told is None or told[0] != state:
            told = self._told[name] = (state, set())
        untold = own - told[1]
        told[1].update(own)
        return untold

    def _stale_own(self, name: str, source: str, used: frozenset[str] | None) -> set[str]:
        """The importer's functions and classes its top-level code uses (``used``: the
        names it loads, from its code object; None: the identifiers of ``source`` outside
        function bodies and imports) that run stale code; its stale caches are cleared
        (at the commit)."""
        module = sys.modules.get(name)
        if module is None:
            return set()
        known = self._own.get(name)
        if known is not None and known[0] == self.staleness.state:
            return known[1]
        namespace = vars(module)
        if "cache" in source:
            caches = self.journal.caches
            for _, cache in cached_functions(namespace):
                if cache not in caches and self.staleness.stale(cache):
                    caches.append(cache)
        if used is None:
            own = self.staleness.stale_named(namespace, source, top_level=True)
        else:
            own = self.staleness.stale_among(namespace, used)
        self._own[name] = (self.staleness.state, own)
        return own


def _cycle_error(name: str, visits: dict[str, int], queue: deque[str]) -> ReloadError:
    """An import cycle whose modules keep rebinding names the others read."""
    cycle = sorted({name, *queue} | {module for module, count in visits.items() if count > 1})
    return ReloadError(
        f"an import cycle keeps changing after {_MAX_VISITS} passes through "
        + ", ".join(cycle)
        + ": each module rebinds a name another reads; break the cycle or import lazily",
        module=name,
    )


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


def _follows(
    importer: TrackedModule,
    edit: Prepared | None,
    source: str,
    module: str,
    rebound: set[str],
    mentioned: set[str],
) -> tuple[bool, bool]:
    """Whether a statement of ``importer`` reads one of the names ``rebound`` in
    ``module``, and whether one of ``mentioned`` occurs where its code runs at import:
    from the statements its index points at, or from all of them."""
    index = importer.index() if edit is None else None
    if index is not None:
        try:
            reads = bool(rebound) and _reads_any(
                indexed_statements(importer, index, module), module, rebound
            )
            return reads, bool(mentioned) and mentions_at_top(importer, index, mentioned)
        except Untrusted:
            importer.distrust()
    analysed = edit.statements.copy if edit is not None else importer.statements
    reads = bool(rebound) and _reads_any(_every(source, analysed), module, rebound)
    return reads, bool(mentioned) and top_level_mentions(source, mentioned)


def _every(
    source: str, statements: Callable[[], list[Statement]]
) -> Callable[[set[str]], Iterator[Statement]]:
    """All the statements of ``source``, analysed only if its text mentions a name wanted."""

    def every(wanted: set[str]) -> Iterator[Statement]:
        if any(word in source for word in wanted):
            yield from statements()

    return every


def _reads_any(
    statements: Callable[[set[str]], Iterator[Statement | Summarised]],
    module: str,
    names: set[str],
    *,
    plain: bool = False,
) -> bool:
    """Whether one of ``statements`` reads one of ``names`` of ``module`` (or star-imports
    it); ``statements`` are asked for with the names wanted, a set that grows while they
    are read (the statements after are those that may mention one of them).

    ``plain``: only statements that are not imports or definitions count, reading the
    names from ``module`` or through the names an import copied from it.
    """
    star = any(not name.startswith("_") or name == "__all__" for name in names)
    wanted = names | {"*"} if star else set(names)
    copies: set[str] = set()
    members = _keys(module, {name for name in names if "." in name}) - {(module, n) for n in names}
    for statement in statements(wanted):
        if not statement.mentions(wanted):
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
                    wanted |= statement.binds
                    continue
            elif not (plain and not origin and used in copies):
                continue
            if statement.kind == "stmt" and not is_import:
                return True
            if statement.kind == "class" and statement.computes:
                return True  # ``class D: K = f(10)``: its body computed with the name
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
    """Order a batch so that a module comes after the modules it imports (cycles kept).

    Depth first with a stack of its own: a recursive closure would hold itself through its
    cell, a cycle keeping the batch (its plans, its compiled code) alive until the next
    full collection.
    """
    by_name = {item.tracked.name: item for item in prepared}
    ordered: list[Prepared] = []
    state: dict[str, int] = {}
    for root in by_name:
        stack = [(root, False)]
        while stack:
            name, finished = stack.pop()
            if finished:
                state[name] = 2
                ordered.append(by_name[name])
            elif not state.get(name):
                state[name] = 1
                stack.append((name, True))
                dependencies = sorted(by_name[name].imports & by_name.keys(), reverse=True)
                stack.extend((dependency, False) for dependency in dependencies)
    return ordered
