"""One module's plan → statements executed and live objects patched, through the journal.

The engine runs one :class:`ModuleApplier` per module touched by a reload: the edited
modules with their plan, and their importers with only the names that were rebound.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import importlib.util
import re
import sys
import traceback
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from relive._apply_classes import ClassSteps, check_compatible, replace_nested
from relive._classes import MemberRules, patch_class_members, source_members
from relive._derived import attributes_set, cached_functions
from relive._diff import Action, Step, built_again
from relive._errors import ReloadError
from relive._heap import wait_for_readers
from relive._importers import derived_inputs, judge_inputs, reads_rebound, statements_to_run
from relive._made import MISSING, DefinitionTable, statement_lines
from relive._metaclass import BUILD_NAME, MetaclassStandIns, with_stand_in
from relive._patch import (
    Journal,
    closures_reshaped,
    drop_attributes,
    find_functions,
    patch_function,
    shift_lines,
    swap_code,
)
from relive._prepare import CodeCache, Prepared, source_line
from relive._registries import purge_definitions
from relive._reparse import source_lines
from relive._running import RunningStatement, held_from, restart_for
from relive._scan import reads_nothing_of
from relive._segments import Untrusted
from relive._stale import Staleness
from relive._statements import Statement, imported_at_top, leading_future_flags
from relive._tracker import TrackedModule

__all__ = ["ModuleApplier", "ModuleChanges", "failure"]

_MISSING: Any = object()
_BUILTINS = frozenset(dir(builtins))
# What an import statement run apart from its module needs of the module's namespace.
_MODULE_KEYS = ("__name__", "__package__", "__spec__", "__path__", "__file__", "__builtins__")
Key = tuple[str, str]


@dataclass
class ModuleChanges:
    """What applying changed in one module (merged across visits)."""

    tracked: TrackedModule
    dependent: bool
    patched: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    executed: list[int] = field(default_factory=list)
    rebound: set[str] = field(default_factory=set)
    edited: bool = False

    def merge(self, other: ModuleChanges) -> None:
        """Add what a later visit of the same module did."""
        self.dependent = self.dependent and other.dependent
        self.edited = self.edited or other.edited
        self.patched += [name for name in other.patched if name not in self.patched]
        self.added += other.added
        self.removed += other.removed
        self.executed += other.executed
        self.rebound |= other.rebound

    @property
    def anything(self) -> bool:
        """Whether the module changed at all (an edit, or a statement run again)."""
        return self.edited or bool(self.patched or self.added or self.removed or self.executed)


class ModuleApplier:
    """Applies one module's plan (or re-runs what reads rebound names) to the live module."""

    def __init__(
        self,
        tracked: TrackedModule,
        journal: Journal,
        triggers: set[Key],
        staleness: Staleness,
        running: RunningStatement | None = None,
    ) -> None:
        self.tracked = tracked
        self.running = running  # the top-level statement its code is running now, if any
        self.module = sys.modules[tracked.name]
        self.namespace: dict[str, Any] = self.module.__dict__
        self.journal = journal
        self.triggers = triggers
        # The names the triggers rebound ("*": star imports of their modules read them all).
        self._trigger_names = {name for _, name in triggers} | ({"*"} if triggers else set())
        self.changes = ModuleChanges(tracked, dependent=True)
        self.local_rebound: set[str] = set()
        self.codes = CodeCache(tracked.filename, 0)
        self.lines: list[str] = []
        self.sparse = False  # an importer visited on the statements its index chose
        self._shifted: set[int] = set()  # functions already at their new lines
        self._earlier: dict[str, Statement] = {}  # unchanged definitions run so far, by name
        self._statements: Sequence[Statement] | None = None  # see _imported_before
        self._caches = journal.caches  # cleared on commit, as they were on rollback
        self.bound_here: frozenset[str] = frozenset()  # names the module's own statements bind
        self.early_removal: set[str] = set()  # removed names to drop before code runs
        self.staleness = staleness
        staleness.share(tracked.name, self.local_rebound)
        self.stand_ins = MetaclassStandIns()  # metaclasses changed after their body
        self._dotted_names: bool | None = None  # see _reads_nothing
        self._stand_ins_needed: bool | None = None
        self.table = DefinitionTable(
            tracked.definitions,
            journal.namespace_before(self.namespace),
            tracked.filename,
            tracked.name,
        )

    @property
    def classes(self) -> ClassSteps:
        """The class statements' steps (made on use: holding them would make a cycle)."""
        return ClassSteps(self)

    # -- driving ------------------------------------------------------------------------

    def run(self, item: Prepared | None, current: Prepared | None = None) -> ModuleChanges:
        """Apply ``item``'s plan, or (for an importer) re-run what reads rebound names.

        ``current``: for an importer whose own edit this batch applied already (an import
        cycle brings it back), that edit: its new statements are the ones to re-run.
        """
        self.journal.remember_namespace(self.namespace)
        if item is None:
            if current is not None:
                statements = current.statements
                self.codes, self.lines = current.codes, current.lines
            else:
                statements = self._importer_statements()
            steps: Sequence[Step] = [Step(Action.KEEP, s, s) for s in statements]
            removed: frozenset[str] = frozenset()
            old = statements
        else:
            self.codes, self.lines = item.codes, item.lines
            steps, removed = item.plan.steps, item.plan.removed
            if item.plan.dropped:
                steps = _built_again(steps, item.plan.dropped)
            self.changes.dependent = False
            self.changes.edited = item.plan.changed or item.plan.moved
            # A module always has a __doc__: the docstring's, unless its code sets another.
            changed = item.docstring_changed or "__doc__" in removed
            if changed and self.namespace.get("__doc__") != item.docstring:
                self.namespace["__doc__"] = item.docstring
            removed = removed - {"__doc__"}
            old = item.old
        self.bound_here = frozenset().union(*(step.new.binds for step in steps))
        # The module's statements, in order (an importer visited sparsely: read when asked).
        self._statements = None if self.sparse else [step.new for step in steps]
        self.local_rebound.update(removed)  # what reads a removed name runs again
        if self.sparse:  # the statements not visited keep what they made
            self.table.carry_all()
        self._drop_definitions(self.table.start(steps, old, edited=item is not None))
        # Removed names stay until the end (old code may read them until it is patched),
        # unless the new code reads them: then no statement may see them.
        self.early_removal = set(item.early_removal) if item is not None else set()
        held = held_from(steps, self.running, self.tracked)
        self._earlier = {}
        for index, step in enumerate(steps):
            if self._unchanged_definition(step, held=index >= held):
                self.table.carry(step)  # what _apply does for it, without its checks
            else:
                self._guarded(step, held=index >= held)
            if step.old is not None and step.new.kind != "stmt" and step.new.name is not None:
                self._earlier[step.new.name] = step.old
        if item is not None and self.tracked.source is None:
            removed = removed | self._not_in_source(steps)
        self._remove(removed)
        if item is not None and item.plan.dropped:
            self._drop_attributes_set_by(item.plan.dropped)
        self.table.stage(self.journal)
        self.changes.rebound = self.local_rebound
        self._follow_changed_code()
        self.staleness.close(self.local_rebound)
        return self.changes

    def _importer_statements(self) -> list[Statement]:
        """The statements of an importer to visit: those its index says may run again
        (``sparse``), or all of them."""
        tracked = self.tracked
        index = tracked.index() if self.running is None else None
        if index is not None:
            try:
                chosen = statements_to_run(
                    tracked, index, self.namespace, self.triggers, self.staleness
                )
            except Untrusted:
                tracked.distrust()
                chosen = None
            if chosen is not None:
                self.sparse = True
                imported = frozenset(index.imported.split("\0")) - {""}
                self.codes = CodeCache(tracked.filename, index.flags, imported)
                self.lines = source_lines(tracked.source or "")
                return chosen
        statements = tracked.statements()
        flags = leading_future_flags(statements)
        self.codes = CodeCache(tracked.filename, flags, imported_at_top(statements))
        self.lines = source_lines(tracked.source or "")
        return statements

    def _drop_definitions(self, dropped: list[Statement]) -> None:
        """Old statements no new one continues: another statement binding the name binds
        it again; what the definitions among them registered leaves the registries now,
        before any statement runs (one restored in this edit registers itself again)."""
        made: list[object] = []
        for statement in dropped:
            self.local_rebound.update(statement.binds & self.bound_here)
            if statement.kind in ("def", "class") and statement.name is not None:
                made.append(self.table.made_by(statement))
        objects = [obj for obj in made if obj is not MISSING]
        if objects:
            names = {s.name for s in dropped if s.kind in ("def", "class") and s.name}
            self._purge(objects, names)

    def _follow_changed_code(self) -> None:
        """Clear the caches of functions that run stale code: their results were computed
        by the old code (importers learn what is stale from the transaction)."""
        if not self.staleness.anything():
            return
        for _, cache in cached_functions(self.namespace):
            if cache not in self._caches and self.staleness.stale(cache):
                self._caches.append(cache)

    def _unchanged_definition(self, step: Step, *, held: bool) -> bool:
        """A ``def`` kept at its lines, whose name nothing rebound, in a run where no name
        was rebound or is followed: nothing runs for it (most steps of a wide module's
        edit), so the per-statement checks of :meth:`_apply` are skipped."""
        return (
            step.action is Action.KEEP
            and step.new.kind == "def"
            and step.old is not None
            and step.new.name is not None
            and step.new.lineno == step.old.lineno
            and not self.local_rebound
            and not self.triggers
            and not (held and self.running is not None)
        )

    def _guarded(self, step: Step, *, held: bool = False) -> None:
        try:
            with self.journal.hiding(self._removed_reads(step.new)):
                self._apply(step, held=held)
        except ReloadError:
            raise
        except Exception as exc:
            raise failure(exc, self.tracked, step.new.lineno, self.lines) from exc
        if self.changes.executed and self.changes.executed[-1] == step.new.lineno:
            self.staleness.ran((self.tracked.name, step.new.lineno))  # with the code as it is

    def _apply(self, step: Step, *, held: bool = False) -> None:
        action = step.action
        if action in (Action.KEEP, Action.PATCH_BODY, Action.PATCH_FUNCTION):
            if held and action is Action.KEEP and self.running is not None:
                # Unedited, at or after the statement running now: that one reads what
                # changed as it goes on, the later ones have not run yet and will read it.
                self._shift(step)
                self._keep(step)
                return
            if self._triggered(step.new):
                action = self._triggered_action(step.new)
            elif step.new.kind == "stmt" and not step.new.binds.isdisjoint(self.local_rebound):
                action = Action.EXECUTE  # an earlier statement rebound a name it binds again
            elif action is Action.KEEP:
                self._shift(step)
                self._keep(step)
                return
        if held and self.running is not None:  # it is running, or has not run yet
            raise restart_for(self.running, self.tracked, step)
        if self.early_removal and action is not Action.PATCH_BODY:  # code is about to run
            self._remove(frozenset(self.early_removal), now=True)
            self.early_removal.clear()
        handlers: dict[Action, Callable[[Step], None]] = {
            Action.EXECUTE: self._execute,
            Action.DEFINE: self._define,
            Action.PATCH_BODY: self._patch_body,
            Action.PATCH_FUNCTION: self._patch_function,
            Action.REDEFINE: self._redefine,
            Action.PATCH_CLASS: self.classes.patch,
        }
        handlers[action](step)

    def _keep(self, step: Step) -> None:
        """An unchanged definition: what it made stays, bound again if an earlier statement
        rebound its name (a fresh import ends with the last binding)."""
        name = step.new.name
        if name is None or step.old is None:
            return
        if name not in self.local_rebound:
            self.table.carry(step)
            return
        value = self.table.made_by(step.old)
        if value is not MISSING:
            self._bind(step, value)
        elif step.new.kind == "def":
            self._redefine(step)
        else:
            self._execute(step)

    def _bind(self, step: Step, value: object) -> None:
        """Record what a definition statement made, and bind it as a fresh import would: a
        later statement binding the name (``try: from ._speedups import f``) keeps its
        binding unless this one made another object."""
        name = step.new.name or ""
        self.table.record(step.new, value)
        previous = self.table.made_by(step.old) if step.old is not None else MISSING
        if (
            value is previous
            and name not in self.local_rebound
            and self.table.bound_later(step.new, name)
        ):
            return
        if self.namespace.get(name, _MISSING) is not value:
            self.namespace[name] = value
            self.local_rebound.add(name)

    def _triggered_action(self, statement: Statement) -> Action:
        """How to run again a statement that reads a rebound name."""
        if statement.kind == "class":
            return Action.PATCH_CLASS
        if statement.kind == "stmt":
            return Action.EXECUTE
        # Defaults or annotations: rebuild in place; the decorators only if they read it.
        if self._reads_rebound(statement.decorator_uses):
            return Action.REDEFINE
        return Action.PATCH_FUNCTION

    def _triggered(self, statement: Statement) -> bool:
        if self.local_rebound or self.triggers:
            names = self.local_rebound | self._trigger_names
            if statement.mentions(names) and self._reads_rebound(statement.uses):
                return True
        return self._derived_from_changes(statement)

    def _derived_from_changes(self, statement: Statement) -> bool:
        """A plain statement (not an import) that uses a function or class whose code
        changed, or reads something that did: it computed its value with the old code.
        A class statement is judged by its body's plain statements (``K = f(1)``,
        ``N = len(E)``): its methods are patched as members anyway."""
        if statement.kind not in ("stmt", "class"):
            return False
        if not self.staleness.anything():
            return False  # before the statement's tree is looked at (a lean one is parsed)
        key = (self.tracked.name, statement.lineno)
        if self.staleness.ran_since_change(key):
            return False  # run again in this transaction, and no code changed since
        if not statement.known("derived inputs") and self._reads_nothing(statement):
            return False  # its text names nothing here: no tree parsed nor walked
        inputs = statement.memo("derived inputs", lambda: derived_inputs(statement))
        assert isinstance(inputs, tuple)
        owner = statement.name if statement.kind == "class" else None
        return judge_inputs(self.staleness, self.namespace, inputs, owner)

    def _reads_nothing(self, statement: Statement) -> bool:
        if self._dotted_names is None:  # a use of ``Cls.member`` is looked up by that key
            self._dotted_names = any("." in name for name in self.namespace)
        return not self._dotted_names and reads_nothing_of(statement, self.namespace)

    def _reads_rebound(self, uses: frozenset[Key]) -> bool:
        return reads_rebound(uses, self.local_rebound, self.triggers)

    # -- plain statements -----------------------------------------------------------------

    def _execute(self, step: Step) -> None:
        statement = step.new
        stars = [module for module, name in statement.uses if name == "*"]
        # A star import binds names no one can list in advance: compare the whole namespace.
        names = set(self.namespace) | statement.binds if stars else statement.binds
        before = {name: self.namespace.get(name, _MISSING) for name in names}
        code = self.codes.statement(statement.node)
        runs_code = _may_run_code(statement.node, self.tracked.package)
        plain = not isinstance(statement.node, ast.ClassDef)
        self.journal.flush()  # it may read what the transaction deferred (see _commit)
        if runs_code:
            self.journal.user_code(self.tracked.name, code if plain else None)
        lent = self._lend_deleted(statement)
        if runs_code and plain and lent:  # what the names lent reach is recorded too
            self.journal.user_code(self.tracked.name, code)
        if isinstance(statement.node, ast.ClassDef) and self._class_stand_in():
            code = self.stand_in_code(statement.node)
            lent[BUILD_NAME] = self.namespace[BUILD_NAME] = self.stand_ins.builder()
        try:
            exec(code, self.namespace)
        finally:
            for name, value in lent.items():  # deleted again, as a later ``del`` did
                if self.namespace.get(name, _MISSING) is value:
                    del self.namespace[name]
        self.changes.executed.append(statement.lineno)
        if statement.name is not None:
            self.table.record(statement, self.namespace.get(statement.name, MISSING))
        if stars:
            before.update({name: _MISSING for name in self.namespace if name not in before})
        for name, value in before.items():
            after = self.namespace.get(name, _MISSING)
            if after is value or (
                statement.kind == "stmt" and self._keep_identity(name, value, after, step)
            ):
                continue
            self.local_rebound.add(name)
            if value is _MISSING:
                self.changes.added.append(name)
        for module in stars:
            self._drop_star_names(module)

    def _class_stand_in(self) -> bool:
        """Whether class statements of this module are built with metaclass stand-ins."""
        if self._stand_ins_needed is None:
            self._stand_ins_needed = self.stand_ins.affects(self.namespace)
        return self._stand_ins_needed

    def stand_in_code(self, node: ast.ClassDef) -> types.CodeType:
        """The class statement ``node`` built through a metaclass stand-in (_metaclass)."""
        return self.codes.compile_nodes([with_stand_in(node)])

    def _lend_deleted(self, statement: Statement) -> dict[str, object]:
        """Names a statement run again reads that an earlier, unchanged definition bound
        and a later statement deleted (``def _helper(): ...``, ``X = f(_helper)``, ``del
        _helper``): bound to what that definition made while the statement runs, as in a
        fresh import."""
        lent: dict[str, object] = {}
        for module, name in statement.uses:
            if module or name in self.namespace or name in lent or name in statement.binds:
                continue  # (what it binds itself, an import among them, it binds to stay)
            earlier = self._earlier.get(name)
            made = MISSING if earlier is None else self.table.made_by(earlier)
            if made is MISSING and name not in _BUILTINS:
                made = self._imported_before(name, statement.lineno)
            if made is not MISSING:
                lent[name] = self.namespace[name] = made
        return lent

    def _imported_before(self, name: str, line: int) -> object:
        """What the import statement that last bound ``name`` above ``line`` imports, when a
        later statement deleted it (``import toolz``, ``X = toolz.curry(f)``, ``del
        toolz``): imported again into a scratch namespace (MISSING if no import bound it)."""
        source = self.tracked.source or ""
        if re.search(rf"(?m)^del\b[^\n#]*\b{re.escape(name)}\b", source) is None:
            return MISSING  # no top-level ``del`` of it: not a name this module deletes
        statements = self._statements
        if statements is None:
            statements = self._statements = self.tracked.statements()
        binder = None
        for candidate in statements:
            if candidate.lineno >= line:
                break
            if name in candidate.binds:
                binder = candidate
        if binder is None or not isinstance(binder.node, (ast.Import, ast.ImportFrom)):
            return MISSING
        scratch = {key: self.namespace[key] for key in _MODULE_KEYS if key in self.namespace}
        exec(self.codes.statement(binder.node), scratch)
        return scratch.get(name, MISSING)

    @contextlib.contextmanager
    def lending_deleted(self, statement: Statement) -> Iterator[None]:
        """While a statement runs again: names deleted after use bound as a fresh import
        has them at that point (see :meth:`_lend_deleted`)."""
        lent = self._lend_deleted(statement)
        try:
            yield
        finally:
            for name, value in lent.items():  # deleted again, as a later ``del`` did
                if self.namespace.get(name, _MISSING) is value:
                    del self.namespace[name]

    def _keep_identity(self, name: str, current: object, after: object, step: Step) -> bool:
        """Patch what a statement defined anew (``def`` in an ``if`` or ``try``) into the
        function or class it replaces, and bind that again; False if they do not match."""
        before = self._previous_binding(name, current, step)
        if isinstance(before, types.FunctionType) and isinstance(after, types.FunctionType):
            kept = (
                self._own_functions(before, name) == [before]
                and self._own_functions(after, name) == [after]
                and patch_function(before, after, self.journal, whole=True)
            )
        elif self.classes.own_class(before, name) and self.classes.own_class(after, name):
            assert isinstance(before, type) and isinstance(after, type)
            check_compatible(before, after, self.tracked, step.new.lineno, self.lines)
            removed = source_members(before, self.tracked.filename) - after.__dict__.keys()
            rules = MemberRules(self.tracked.filename, frozenset(), frozenset(removed))
            patch_class_members(before, after, rules, self.journal, nested=replace_nested)
            kept = True
        else:
            return False
        if kept:
            self.namespace[name] = before
            self.table.unbury(before)
            self.changes.patched.append(name)
            if before is not current:
                self.local_rebound.add(name)
        return kept

    def _previous_binding(self, name: str, current: object, step: Step) -> object:
        """What the statement's old version bound to ``name``: the value before the reload
        if the old statement made it (another statement may have rebound it since)."""
        if step.old is None:
            return current
        lines = statement_lines(step.old)
        for candidate in (self.table.before(name), current):
            if isinstance(candidate, types.FunctionType):
                if candidate.__code__.co_firstlineno in lines:
                    return candidate
            elif self.classes.own_class(candidate, name):
                return candidate
        return current

    def _removed_reads(self, statement: Statement) -> list[tuple[dict[str, Any], str]]:
        """The names ``statement`` reads that this transaction removes at its commit point."""
        if not self.journal.has_removals:
            return []
        found: list[tuple[dict[str, Any], str]] = []
        for module, name in statement.uses:
            namespace = self.namespace if not module else _namespace(module)
            removing = self.journal.removing(namespace) if namespace is not None else set()
            if namespace is None or not removing:
                continue
            names = removing if name == "*" else {name} & removing
            found += [(namespace, gone) for gone in sorted(names) if gone in namespace]
        return list({(id(ns), name): (ns, name) for ns, name in found}.values())

    def _drop_star_names(self, source: str) -> None:
        """Remove names a star import brought from ``source`` that ``source`` no longer has."""
        exported = vars(sys.modules[source]) if source in sys.modules else {}
        removing = self.journal.removing(exported)
        gone = {
            name
            for module, name in self.triggers
            if module == source
            and (name not in exported or name in removing)
            and name not in self.bound_here
        }
        self._remove(frozenset(gone))

    def _define(self, step: Step) -> None:
        """A new definition: one restored (from the graveyard) or moved out of another
        statement is the object it was, patched; otherwise it is made anew."""
        name = step.new.name or ""
        live = self.namespace.get(name, _MISSING)
        if step.new.kind == "def":
            found = self.table.adoptable(
                step.new, live, lambda o: bool(self._own_functions(o, name))
            )
            if found is not MISSING:
                self._redefine(step, self._own_functions(found, name))
                return
        elif step.new.kind == "class":
            found = self.table.adoptable(step.new, live, lambda o: self.classes.own_class(o, name))
            if self.classes.own_class(found, name) and self.classes.adopt(found, step):
                return
        self._execute(step)

    def _remove(self, names: frozenset[str], *, now: bool = False) -> None:
        """Remove names from the namespace: ``now``, or at the commit point (old code may
        run in other threads until then; this thread's statements no longer see them)."""
        present = {name for name in names if name in self.namespace}
        present -= self.journal.removing(self.namespace)
        if not present:
            return
        self.local_rebound.update(present)
        self.changes.removed += sorted(present)
        values = {name: self.namespace[name] for name in present}
        defined = {name: value for name, value in values.items() if self._defined_here(value)}
        self._purge(list(defined.values()), defined)
        if now:
            self._delete(values)
        else:
            self.journal.remove_at_commit(self.namespace, present, lambda: self._delete(values))

    def _not_in_source(self, steps: Sequence[Step]) -> frozenset[str]:
        """The names a fresh import of the module would not bind, for a module whose text
        at import is unknown (edited before relive saw it): definitions deleted meanwhile.

        Special names, submodules, what star imports bring and the names functions declare
        ``global`` (``init()`` run at import may set them) are left alone.
        """
        module = self.tracked.name
        kept: set[str] = set()
        for step in steps:
            for source, name in step.new.uses:
                if name == "*" and source in sys.modules:
                    kept.update(vars(sys.modules[source]))
            for node in ast.walk(step.new.node):
                if isinstance(node, ast.Global):
                    kept.update(node.names)
        return frozenset(
            name
            for name, value in list(self.namespace.items())
            if name not in self.bound_here
            and name not in kept
            and not (name.startswith("__") and name.endswith("__"))
            and not (isinstance(value, types.ModuleType) and value.__name__ == f"{module}.{name}")
        )

    def _purge(self, objects: list[object], names: Iterable[str] = ()) -> None:
        """Take ``objects`` out of the registries of this module and of the user's modules
        it imports (what they registered): a fresh import would not have them. ``names``:
        names the module no longer binds (registries of names lose them too)."""
        gone = frozenset(names) - self.bound_here
        modules = {self.tracked.name, *self.tracked.imports}
        found = [sys.modules[name] for name in sorted(modules) if name in sys.modules]
        purge_definitions(objects, self.tracked.filename, found, self.journal, gone)

    def _defined_here(self, value: object) -> bool:
        """A function or class this module's source defined (or a wrapper of one)."""
        if isinstance(value, type):
            return value.__module__ == self.module.__name__
        return bool(
            find_functions(value, getattr(value, "__qualname__", ""), self.tracked.filename)
        )

    def _delete(self, values: dict[str, object]) -> None:
        wait_for_readers(self.tracked.filename, values.keys() & self.namespace.keys())
        for name, value in values.items():
            if self.namespace.get(name, _MISSING) is value:
                del self.namespace[name]

    # -- functions ------------------------------------------------------------------------

    def _own_functions(self, obj: object, qualname: str) -> list[types.FunctionType]:
        if obj is _MISSING:
            return []
        return find_functions(obj, qualname, self.tracked.filename, caches=self._caches)

    def _patch_body(self, step: Step) -> None:
        if not self._swap_body(step):
            self._redefine(step)

    def _made_functions(self, step: Step) -> list[types.FunctionType]:
        """The functions the old version of a ``def`` statement made (not what its name
        holds now: another definition of the name may have rebound it)."""
        if step.old is None:
            return []
        made = self.table.made_by(step.old)
        if made is MISSING:
            return []
        return self._matching(self._own_functions(made, step.new.name or ""), step)

    def _swap_body(self, step: Step) -> bool:
        name = step.new.name or ""
        code = self.codes.function(step.new.node)
        functions = self._made_functions(step)
        previous = [self.journal.code_of(function) for function in functions]
        if not functions or not all(self._swap(function, code, step) for function in functions):
            return False
        self.changes.patched.append(name)
        self._note_reshaped(name, previous, code)
        assert step.old is not None
        self._bind(step, self.table.made_by(step.old))
        return True

    def _note_reshaped(
        self, name: str, previous: list[types.CodeType], code: types.CodeType
    ) -> None:
        """A function whose closures now capture other variables counts as rebound, so the
        statements that used it (``@decorate`` on a def) run again and make new ones."""
        if any(closures_reshaped(old, code) for old in previous):
            self.local_rebound.add(name)

    def _matching(
        self, functions: list[types.FunctionType], step: Step
    ) -> list[types.FunctionType]:
        """The functions made by ``step``'s old statement among those of its name.

        Several statements can define one name (a property's getter and setter): each
        function is told apart by the line its old statement started on.
        """
        if len(functions) < 2 or step.old is None:
            return functions
        return [
            function
            for function in functions
            if id(function) not in self._shifted
            and self.journal.code_of(function).co_firstlineno == step.old.lineno
        ]

    def _swap(self, function: types.FunctionType, code: types.CodeType, step: Step) -> bool:
        previous = self.journal.code_of(function)
        if not swap_code(function, code, self.journal):
            return False
        self._shifted.add(id(function))  # its new code has the new lines already
        doc = ast.get_docstring(step.new.node, clean=False)  # type: ignore[arg-type]
        if function.__doc__ != doc:
            self.journal.setattr(function, "__doc__", doc)
        self.journal.follow_nested(previous, code)
        return True

    def _bare_function(self, step: Step) -> types.FunctionType:
        scratch: dict[str, Any] = {}
        self.journal.user_code(self.tracked.name)
        exec(self.codes.bare(step.new.node), self.namespace, scratch)
        function = scratch[step.new.name or ""]
        assert isinstance(function, types.FunctionType)
        return function

    def _patch_function(self, step: Step) -> None:
        name = step.new.name or ""
        new = self._bare_function(step)
        functions = self._made_functions(step)
        previous = [self.journal.code_of(function) for function in functions]
        if not functions or not all(patch_function(f, new, self.journal) for f in functions):
            self._redefine(step)
            return
        self.changes.patched.append(name)
        self._note_reshaped(name, previous, new.__code__)
        assert step.old is not None
        self._bind(step, self.table.made_by(step.old))

    def _redefine(self, step: Step, functions: list[types.FunctionType] | None = None) -> None:
        """Build the function, patch the live one from it, then apply the decorators anew."""
        name = step.new.name or ""
        new = self._bare_function(step)
        if functions is None:
            functions = self._made_functions(step)
        target = new
        if step.old is not None and (getattr(step.old.node, "decorator_list", None) or ()):
            # What the old decorators registered goes; the new ones register it again.
            self._purge([self.table.made_by(step.old), *(functions or ())])
        if functions and patch_function(functions[0], new, self.journal):
            target = functions[0]
            if step.old is not None and getattr(step.old.node, "decorator_list", None):
                # What the old decorators set on it goes (the new ones set theirs again);
                # what later statements of the module set on it stays.
                kept = self._attributes_set_elsewhere(name)
                if kept is not None:
                    drop_attributes(target, target.__dict__.keys() - kept, self.journal)
        decorators = [eval(code, self.namespace) for code in self.codes.decorators(step.new.node)]
        if target is not new:
            self.journal.attributes_may_change(target)
        result: object = target
        for decorator in reversed(decorators):
            result = decorator(result)
        self._bind(step, result)
        (self.changes.patched if functions else self.changes.added).append(name)
        self.changes.executed.append(step.new.lineno)

    def _drop_attributes_set_by(self, dropped: Sequence[Statement]) -> None:
        """What removed statements set on the module's functions and classes (``f.x = 1``,
        ``C.extra = 2``) goes, unless a statement still in the source sets it too: a fresh
        import has none of it. Left where something else may have set it too: a decorator,
        a metaclass, a base's ``__init_subclass__``, the class body."""
        nodes = [statement.node for statement in dropped]
        new = {s.name: s.node for s in self._statements or () if s.kind != "stmt"}
        for name in sorted(_attribute_owners(nodes) & new.keys()):
            owner, node = self.namespace.get(name), new[name]
            if getattr(node, "decorator_list", None) or not self._plain_owner(owner, name):
                continue
            gone, kept = attributes_set(nodes, name), self._attributes_set_elsewhere(name)
            if gone is None or kept is None:
                continue
            if isinstance(node, ast.ClassDef):
                kept |= _bound_in_body(node)
            present = (gone - kept) & vars(owner).keys()
            if isinstance(owner, types.FunctionType) and present:
                drop_attributes(owner, present, self.journal)
            for attribute in sorted(present) if isinstance(owner, type) else ():
                self.journal.delattr(owner, attribute)
            if present:
                self.changes.patched.append(name)

    def _plain_owner(self, owner: object, name: str) -> bool:
        """Whether ``owner`` is this module's function, or its class made by ``type`` with
        no base's ``__init_subclass__`` to set attributes."""
        if isinstance(owner, types.FunctionType):
            return owner.__module__ == self.module.__name__
        return (
            self.classes.own_class(owner, name)
            and type(owner) is type
            and all("__init_subclass__" not in vars(base) for base in owner.__mro__[1:-1])
        )

    def _attributes_set_elsewhere(self, name: str) -> set[str] | None:
        """What top-level statements of the module set on function ``name``."""
        statements = self._statements  # the new ones (None: a sparse importer, unchanged)
        if statements is None:
            statements = self.tracked.statements()
        plain = [s for s in statements if s.kind == "stmt" and name in s.text]
        return attributes_set((s.node for s in plain), name) if plain else set()

    # -- line numbers ---------------------------------------------------------------------

    def _shift(self, step: Step) -> None:
        if step.old is None or not (step.line_delta or step.relined):
            return
        if step.new.name is None:
            self._shift_made_in(step)
            return
        self._shift_members(self.table.made_by(step.old), step, step.new.name)

    def _shift_made_in(self, step: Step) -> None:
        """Move the functions a plain statement made (``def`` in an ``if`` or ``try``, a
        lambda, a class in a block) to the statement's new lines: each takes its code as
        the new text compiles it when only line numbers tell them apart (lines moved
        inside the statement), else is shifted with the statement."""
        assert step.old is not None
        first, last = step.old.lineno, step.old.lineno + step.old.text.count("\n")
        filename = self.tracked.filename
        fresh = self._recompiled(step) if step.relined else {}
        for name in sorted(step.new.binds):
            value = self.namespace.get(name)
            if isinstance(value, type) and value.__module__ == self.module.__name__:
                functions = list(_functions_under(value, value.__qualname__, filename))
            elif isinstance(value, types.FunctionType):
                functions = [value]
            else:
                continue
            for function in functions:
                code = self.journal.code_of(function)
                if code.co_filename != filename or not first <= code.co_firstlineno <= last:
                    continue
                new = fresh.get((code.co_qualname, code.co_firstlineno))
                if new is not None and _same_but_lines(code, new):
                    self._recode(function, new)
                elif step.line_delta:
                    self._move(function, step.line_delta)

    def _recompiled(self, step: Step) -> dict[tuple[str, int], types.CodeType]:
        """The code the new text of a relined statement makes, by the (qualified name,
        first line) of the code its old text made at the same place."""
        assert step.old is not None
        old = list(_nested_codes(self.codes.statement(step.old.node)))
        new = list(_nested_codes(self.codes.statement(step.new.node)))
        if len(old) != len(new):
            return {}
        return {(a.co_qualname, a.co_firstlineno): b for a, b in zip(old, new, strict=True)}

    def _move(self, function: types.FunctionType, delta: int) -> None:
        self._recode(function, shift_lines(self.journal.code_of(function), delta))

    def _recode(self, function: types.FunctionType, moved: types.CodeType) -> None:
        """Give ``function`` ``moved``: its own code at other lines."""
        if id(function) in self._shifted:
            return
        self._shifted.add(id(function))
        previous = self.journal.code_of(function)
        self.journal.code_replaced(previous, moved)  # held code objects follow
        self.journal.setattr(function, "__code__", moved)
        self.journal.follow_nested(previous, moved)

    def _shift_members(self, obj: object, step: Step, qualname: str) -> None:
        """Move the functions an unchanged statement made to its new lines."""
        delta = step.line_delta
        if not delta or step.new.kind == "stmt":
            return
        functions = list(_functions_under(obj, qualname, self.tracked.filename))
        if step.new.kind == "def":
            functions = self._matching(functions, step)
        elif isinstance(obj, type):
            functions += self._hidden_twins(step, qualname, functions)
        for function in functions:
            self._move(function, delta)

    def _hidden_twins(
        self, step: Step, qualname: str, found: list[types.FunctionType]
    ) -> list[types.FunctionType]:
        """Functions of a class body's name defined several times that the class does not
        hold (all but the last ``def _`` or ``@overload``): found in the heap by their
        qualified name and the old statement's lines."""
        assert step.old is not None
        twins = _twin_names(step.new.text)
        if not twins:
            return []
        lines = statement_lines(step.old)
        known = {id(function) for function in found}
        return [
            obj
            for name in sorted(twins)
            for obj in self.table.heap.named(f"{qualname}.{name}")
            if isinstance(obj, types.FunctionType)
            and id(obj) not in known
            and self.journal.code_of(obj).co_firstlineno in lines
        ]


_DEF = re.compile(r"^([ \t]+)(?:async[ \t]+)?def[ \t]+(\w+)", re.MULTILINE)


def _twin_names(text: str) -> set[str]:
    """Names a class statement's body (its first level) defines with several ``def``s."""
    found = _DEF.findall(text)
    if len(found) < 2:
        return set()
    level = min(len(indent) for indent, _ in found)
    names = [name for indent, name in found if len(indent) == level]
    return {name for name in names if names.count(name) > 1}


def _functions_under(obj: object, qualname: str, filename: str) -> Iterator[types.FunctionType]:
    """Functions defined by the statement that bound ``obj`` (a function or a class)."""
    if isinstance(obj, type):
        if obj.__qualname__ != qualname:
            return
        for name, member in list(obj.__dict__.items()):
            yield from _functions_under(member, f"{qualname}.{name}", filename)
        return
    yield from find_functions(obj, qualname, filename)


def _attribute_owners(nodes: Iterable[ast.AST]) -> set[str]:
    """The names whose attributes ``nodes`` set or read (``f.x = 1``, ``setattr(f, ...)``)."""
    owners: set[str] = set()
    for node in (inner for statement in nodes for inner in ast.walk(statement)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owners.add(node.value.id)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
            and node.args
            and isinstance(node.args[0], ast.Name)
        ):
            owners.add(node.args[0].id)
    return owners


def _built_again(steps: Sequence[Step], dropped: Sequence[Statement]) -> list[Step]:
    """The steps, where a removed statement set attributes of an unchanged class or
    decorated function (``K.k = 2``, ``g.tagged = 5``): that one is built again, its body
    or decorators giving them the values a fresh import has."""
    nodes = [statement.node for statement in dropped]
    owners = _attribute_owners(nodes)
    built: list[Step] = []
    for step in steps:
        name = step.new.name
        decorated = step.new.kind == "def" and getattr(step.new.node, "decorator_list", None)
        if (
            step.action is Action.KEEP
            and name in owners
            and (step.new.kind == "class" or decorated)
        ):
            attributes = attributes_set(nodes, name)
            step = built_again(step, None if attributes is None else frozenset(attributes))
        built.append(step)
    return built


def _bound_in_body(node: ast.ClassDef) -> set[str]:
    """The names a class body may bind: every name stored anywhere in it (more than it
    binds: what its methods store too)."""
    bound: set[str] = set()
    for statement in node.body:
        for target in ast.walk(statement):
            if isinstance(target, ast.Name) and isinstance(target.ctx, ast.Store):
                bound.add(target.id)
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(statement.name)
    return bound


def _nested_codes(code: types.CodeType) -> Iterator[types.CodeType]:
    """The code objects nested in ``code``, depth first, in the order the compiler made
    them."""
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield const
            yield from _nested_codes(const)


def _same_but_lines(a: types.CodeType, b: types.CodeType) -> bool:
    """Whether two code objects differ at most in their line numbers and positions."""
    if (a.co_code, a.co_names, a.co_varnames, a.co_freevars, a.co_cellvars) != (
        b.co_code,
        b.co_names,
        b.co_varnames,
        b.co_freevars,
        b.co_cellvars,
    ):
        return False
    consts = zip(a.co_consts, b.co_consts, strict=False)
    return len(a.co_consts) == len(b.co_consts) and all(
        _same_but_lines(x, y) if isinstance(x, types.CodeType) else type(x) is type(y) and x == y
        for x, y in consts
    )


def _namespace(module: str) -> dict[str, Any] | None:
    loaded = sys.modules.get(module)
    return vars(loaded) if loaded is not None else None


_CODE_RUNNING = (ast.Call, ast.comprehension, ast.Await, ast.Yield, ast.YieldFrom)


def _may_run_code(node: ast.stmt, package: str) -> bool:
    """Whether executing ``node`` may run the program's functions (which may register
    into other modules) or change a container: anything but imports of loaded modules and
    names bound to call-free expressions (``DERIVED = ROOT * SCALE``)."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return not _imports_loaded(node, package)
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets = [node.target]
    else:
        return True
    if not all(isinstance(target, ast.Name) for target in targets):
        return True  # item or attribute assignment: a container or an object changes
    return any(isinstance(inner, _CODE_RUNNING) for inner in ast.walk(node.value))  # type: ignore[arg-type]


def _imports_loaded(node: ast.stmt, package: str) -> bool:
    """Whether ``node`` only imports modules already loaded (it runs none of their code)."""
    if isinstance(node, ast.Import):
        return all(alias.name in sys.modules for alias in node.names)
    if not isinstance(node, ast.ImportFrom):
        return False
    try:
        name = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
    except (ImportError, ValueError):
        return False
    module = sys.modules.get(name)
    return module is not None and all(
        alias.name == "*" or alias.name in vars(module) or f"{name}.{alias.name}" in sys.modules
        for alias in node.names
    )


def failure(
    exc: BaseException, tracked: TrackedModule, lineno: int, lines: list[str]
) -> ReloadError:
    """A ReloadError for an exception raised while applying a statement of ``tracked``."""
    for frame, frame_line in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == tracked.filename and frame_line:
            lineno = frame_line
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return ReloadError(
        message,
        path=tracked.path,
        lineno=lineno,
        line=source_line(lines, lineno),
        module=tracked.name,
    )
