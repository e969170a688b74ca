"""Class statements of one module's plan: patched member by member, the class object kept.

Part of the applier (apply.py): a changed class body is patched in place when only method
bodies changed, rebuilt (built anew, then merged into the live class) otherwise; a class
restored from the graveyard or moved out of another statement is adopted the same way.
"""

from __future__ import annotations

import ast
import gc
import types
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

from relive._classes import MemberRules, incompatibility, patch_class_members
from relive._diff import Action, BodyPlan, ClassPlan, Step
from relive._heap import wait_for_readers
from relive._metaclass import BUILD_NAME, replaced_init_subclass
from relive._patch import find_functions, patch_function
from relive._prepare import restart_required
from relive._statements import Statement, class_body
from relive._tracker import TrackedModule

if TYPE_CHECKING:
    from relive._apply import ModuleApplier

__all__ = ["ClassSteps", "check_compatible", "replace_nested"]

_MISSING: Any = object()


class ClassSteps:
    """The class statements of one :class:`~relive._apply.ModuleApplier`'s visit."""

    def __init__(self, applier: ModuleApplier) -> None:
        self.applier = applier
        self.built: types.CodeType | None = None  # the code the last throwaway was built with

    def own_class(self, obj: object, qualname: str) -> TypeGuard[type]:
        """Whether ``obj`` is a class this module's source defines as ``qualname``."""
        return (
            isinstance(obj, type)
            and obj.__qualname__ == qualname
            and obj.__module__ == self.applier.module.__name__
        )

    def patch(self, step: Step) -> None:
        name = step.new.name or ""
        live = self.applier.table.made_by(step.old) if step.old is not None else _MISSING
        if not self.own_class(live, name):
            self.applier._execute(step)
            return
        plan = step.cls or ClassPlan(BodyPlan((), frozenset()), True)
        node = step.new.node
        assert isinstance(node, ast.ClassDef)
        if (
            plan.rebuild
            or self.applier._triggered(step.new)
            or not self._patch_in_place(live, plan, (node,))
        ):
            self.rebuild(live, step, plan)
        self.applier.changes.patched.append(name)
        self.applier._bind(step, live)

    def _patch_in_place(self, cls: type, plan: ClassPlan, chain: tuple[ast.ClassDef, ...]) -> bool:
        """Patch methods whose bodies alone changed; False when the class must be rebuilt."""
        qualname = ".".join(node.name for node in chain)
        several = _bound_several_times(plan.body.steps)
        for step in plan.body.steps:
            name = step.new.name or ""
            member = cls.__dict__.get(name, _MISSING)
            if step.action is Action.PATCH_BODY:
                code = self.applier.codes.function(step.new.node, chain)
                functions = self._made_in_body(member, step, f"{qualname}.{name}", several)
                if not functions or not all(self.applier._swap(f, code, step) for f in functions):
                    return False
            elif step.action is Action.PATCH_CLASS and step.cls is not None:
                node = step.new.node
                assert isinstance(node, ast.ClassDef)
                if not isinstance(member, type) or not self._patch_in_place(
                    member, step.cls, (*chain, node)
                ):
                    return False
            elif step.line_delta and name in several and step.new.kind == "def":
                for function in self._made_in_body(member, step, f"{qualname}.{name}", several):
                    self.applier._move(function, step.line_delta)
            elif step.line_delta:
                self.applier._shift_members(member, step, f"{qualname}.{name}")
        wait_for_readers(self.applier.tracked.filename, plan.body.removed)
        for name in plan.body.removed:  # plain methods only, or the plan asks for a rebuild
            self.applier.journal.delattr(cls, name)
        return True

    def _made_in_body(
        self, member: object, step: Step, qualname: str, several: frozenset[str]
    ) -> list[types.FunctionType]:
        """The functions the old version of a class body's ``def`` made. A name defined
        several times (``def _`` registered with ``@fmt.register``, overloads, a property's
        setter) is told apart by the first line of its old statement: what the class holds
        is the last definition's; the others are found in the heap."""
        applier = self.applier
        filename = applier.tracked.filename
        found = find_functions(member, qualname, filename, caches=applier._caches)
        if step.new.name not in several:
            return applier._matching(found, step)
        if step.old is None:
            return []
        line = step.old.lineno
        matching = self._at_line(found, line)
        if matching:
            return matching
        matching = self._in_heap(qualname, line, collect=False)
        if len(matching) < 2:
            return matching
        del matching  # several: garbage of earlier builds, perhaps; let go of it first
        return self._in_heap(qualname, line, collect=True)

    def _in_heap(self, qualname: str, line: int, *, collect: bool) -> list[types.FunctionType]:
        """The functions of ``qualname`` alive in the heap whose code starts at ``line``
        (not throwaways of this transaction's builds)."""
        journal = self.applier.journal
        functions = [
            obj
            for obj in self.applier.table.heap.named(qualname, collect=collect)
            if isinstance(obj, types.FunctionType) and not journal.throwaway(obj)
        ]
        return self._at_line(functions, line)

    def _at_line(self, functions: list[types.FunctionType], line: int) -> list[types.FunctionType]:
        applier = self.applier
        return [
            function
            for function in functions
            if id(function) not in applier._shifted
            and applier.journal.code_of(function).co_firstlineno == line
        ]

    def _fresh(self, step: Step, live: type) -> type:
        """The class statement's throwaway class, built as a fresh import builds it (with
        its metaclass as the metaclass's body defined it, see _metaclass)."""
        applier = self.applier
        reason = replaced_init_subclass(live)
        if reason is not None:
            raise restart_required(reason, applier.tracked, step.new.lineno, applier.lines)
        scratch: dict[str, Any] = {}
        applier.journal.user_code(applier.tracked.name)
        code = applier.codes.statement(step.new.node)
        node = step.new.node
        if isinstance(node, ast.ClassDef) and applier.stand_ins.needed(type(live)):
            code = applier.stand_in_code(node)
            scratch[BUILD_NAME] = applier.stand_ins.builder()
        self.built = code
        with applier.lending_deleted(step.new):
            exec(code, applier.namespace, scratch)
        fresh = scratch[step.new.name or ""]
        assert isinstance(fresh, type)
        return fresh

    def adopt(self, live: type, step: Step) -> bool:
        """Make a class restored or moved out of another statement the live one, patched
        with every member of its new body; False when it cannot be (then it is new)."""
        fresh = self._fresh(step, live)
        if incompatibility(live, fresh) is not None:
            if live is not self.applier.namespace.get(step.new.name or ""):  # from the graveyard
                self.applier.namespace[step.new.name or ""] = fresh
                self.applier.table.record(step.new, fresh)
                self.applier.local_rebound.add(step.new.name or "")
                self.applier.changes.added.append(step.new.name or "")
                return True
            check_compatible(live, fresh, self.applier.tracked, step.new.lineno, self.applier.lines)
        # Every member the new body does not define leaves, data too (a fresh import has
        # none of them); special members are the build's (see patch_class_members).
        removed = {
            name
            for name in live.__dict__.keys() - fresh.__dict__.keys()
            if not (name.startswith("__") and name.endswith("__"))
        }
        rules = MemberRules(self.applier.tracked.filename, frozenset(), frozenset(removed))
        node = step.new.node
        assert isinstance(node, ast.ClassDef)
        plan = ClassPlan(BodyPlan((), frozenset()), True)
        self._merge(live, fresh, step, rules, self.nested(plan, node))
        self.applier.changes.patched.append(step.new.name or "")
        self.applier._bind(step, live)
        return True

    def rebuild(self, live: type, step: Step, plan: ClassPlan) -> None:
        made = self._same_named(live, plan, step)  # before anything changes
        self._purge_undecorated(live, step, plan)
        fresh = self._fresh(step, live)
        check_compatible(live, fresh, self.applier.tracked, step.new.lineno, self.applier.lines)
        node = step.new.node
        assert isinstance(node, ast.ClassDef)
        old = step.old.node if step.old is not None else None
        rules = self.rules(plan, node, old if isinstance(old, ast.ClassDef) else None)
        self._merge(live, fresh, step, rules, self.nested(plan, node))
        if made:
            self._patch_same_named(made, step)

    def _purge_undecorated(self, live: type, step: Step, plan: ClassPlan) -> None:
        """What the methods of the old body registered with decorators that are gone (the
        method removed, or its decorators changed) leaves the registries before the body
        runs again: a fresh import has only what the new body registers."""
        qualname = step.new.name or ""
        several = _bound_several_times(plan.body.steps, _old_body(step))
        gone: list[object] = []
        dropped = _dropped_statements(plan.body.steps, _old_body(step))
        for inner in [*plan.body.steps, *(Step(Action.KEEP, s, s) for s in dropped)]:
            if inner.old is None or inner.old.kind != "def" or not _decorated(inner.old.node):
                continue
            if inner.new is not inner.old and inner.action is not Action.REDEFINE:
                continue  # its decorators stayed: registered once, by the live function
            name = inner.old.name or ""
            member = live.__dict__.get(name)
            # Told apart by its old line: the class holds only the last of a name's.
            gone += self._made_in_body(member, inner, f"{qualname}.{name}", several | {name})
        if gone:
            self.applier._purge(gone)

    def _same_named(
        self, live: type, plan: ClassPlan, step: Step
    ) -> list[tuple[Step, list[types.FunctionType]]]:
        """For each ``def`` of a name the body defines (or defined) several times, the
        functions its old statement made (the class holds only the last one's)."""
        qualname = step.new.name or ""
        several = _bound_several_times(plan.body.steps, _old_body(step))
        return [
            (inner, made)
            for inner in plan.body.steps
            if inner.new.kind == "def" and inner.old is not None and inner.new.name in several
            for made in [
                self._made_in_body(
                    live.__dict__.get(inner.new.name or ""),
                    inner,
                    f"{qualname}.{inner.new.name}",
                    several,
                )
            ]
            if made
        ]

    def _patch_same_named(
        self, made: list[tuple[Step, list[types.FunctionType]]], step: Step
    ) -> None:
        """Each definition of a name defined several times patches what its old statement
        made with what the new one made in the throwaway class (held references run their
        own definition's new code); references to the throwaway's go to the live ones."""
        assert self.built is not None  # rebuilt just before
        body = _nested_codes(self.built, step.new.name or "")
        wanted = {
            (f"{step.new.name}.{inner.new.name}", inner.new.lineno): inner for inner, _ in made
        }
        codes = {key: code for key, code in body.items() if key in wanted}
        fresh = _made_from(list(codes.values()))
        journal = self.applier.journal
        for inner, old in made:
            key = (f"{step.new.name}.{inner.new.name}", inner.new.lineno)
            code = codes.get(key)
            new = fresh.get(id(code), []) if code is not None else []
            if len(new) != 1:
                continue
            for function in old:
                if function is not new[0] and patch_function(function, new[0], journal, whole=True):
                    journal.redirect(new[0], function)

    def _merge(
        self,
        live: type,
        fresh: type,
        step: Step,
        rules: MemberRules,
        nested: Callable[[str, type, type], bool],
    ) -> None:
        journal = self.applier.journal
        before = journal.members(live)
        patch_class_members(live, fresh, rules, journal, nested=nested)
        self.applier.changes.executed.append(step.new.lineno)
        # A member replaced by another object (a decorator added or removed) is rebound as
        # ``Cls.member``: statements that read it (``foo = Foo.foo``) run again.
        after = journal.members(live)
        for member in before.keys() | after.keys():
            if before.get(member, _MISSING) is not after.get(member, _MISSING):
                self.applier.local_rebound.add(f"{step.new.name}.{member}")

    def rules(
        self, plan: ClassPlan, node: ast.ClassDef, old: ast.ClassDef | None = None
    ) -> MemberRules:
        steps = plan.body.steps or tuple(Step(Action.KEEP, s, s) for s in class_body(node))
        keep: set[str] = set()
        changed: set[str] = set()
        bound: Counter[str] = Counter()
        for inner in steps:
            bound.update(inner.new.binds)
            if inner.action is Action.KEEP and not self.applier._triggered(inner.new):
                keep |= inner.new.binds
            else:
                changed |= inner.new.binds
                # What its decorators read runs them again: ``@fmt.register`` registers
                # into the new ``fmt``, so the new one is taken.
                changed |= {name for module, name in inner.new.decorator_uses if not module}
        changed |= _dropped_names(steps, old)
        # A name bound by several statements (a property and its setter), now or before,
        # is kept only when none of them changed.
        several = _bound_several_times(steps, old)
        return MemberRules(
            self.applier.tracked.filename,
            frozenset(keep - changed),
            plan.body.removed,
            several=several | {name for name, count in bound.items() if count > 1},
            lines={s.new.lineno: s.old.lineno for s in steps if s.old is not None},
        )

    def counterpart(self, cls: type) -> type:
        """The live class that ``cls``, made by a class body run again, is merged into: a
        class nested in the same body (``class CJK(Chinese, Japanese)`` beside them) is
        patched in place, so its bases are the live classes; any other class is itself."""
        qualname = type.__getattribute__(cls, "__qualname__")
        parts = qualname.split(".")
        if cls.__dict__.get("__module__") != self.applier.module.__name__ or len(parts) < 2:
            return cls
        current: object = self.applier.namespace.get(parts[0])
        for part in parts[1:]:
            if not isinstance(current, type):
                return cls
            current = current.__dict__.get(part)
        return current if self.own_class(current, qualname) else cls

    def nested(self, plan: ClassPlan, node: ast.ClassDef) -> Callable[[str, type, type], bool]:
        steps = {step.new.name: step for step in plan.body.steps if step.new.kind == "class"}

        def patch_nested(name: str, old: type, new: type) -> bool:
            if old.__qualname__ != new.__qualname__:
                return False
            inner = steps.get(name)
            inner_node = next(
                (n for n in node.body if isinstance(n, ast.ClassDef) and n.name == name), None
            )
            if inner_node is None:
                return False
            applier = self.applier
            check_compatible(
                old, new, applier.tracked, inner_node.lineno, applier.lines, self.counterpart
            )
            inner_plan = (inner.cls if inner is not None else None) or ClassPlan(
                BodyPlan((), frozenset()), True
            )
            rules = self.rules(inner_plan, inner_node)
            nested = self.nested(inner_plan, inner_node)
            patch_class_members(old, new, rules, self.applier.journal, nested=nested)
            return True

        return patch_nested


def _made_from(codes: list[types.CodeType]) -> dict[int, list[types.FunctionType]]:
    """The functions made from each of ``codes`` (by the code's id). A statement's code is
    kept while its text is: throwaways of an earlier build of the same text, garbage in
    reference cycles not yet collected, are made from it too; collected first then."""
    for attempt in range(2):
        made: dict[int, list[types.FunctionType]] = {}
        for referrer in gc.get_referrers(*codes) if codes else ():
            if type(referrer) is types.FunctionType:
                made.setdefault(id(referrer.__code__), []).append(referrer)
        if attempt or all(len(functions) < 2 for functions in made.values()):
            return made
        gc.collect()
    return made


def _nested_codes(code: types.CodeType, name: str) -> dict[tuple[str, int], types.CodeType]:
    """The functions' code of class ``name``'s body in a class statement's ``code``, by
    qualified name and first line."""
    found: dict[tuple[str, int], types.CodeType] = {}
    for body in code.co_consts:
        if isinstance(body, types.CodeType) and body.co_qualname == name:
            for const in body.co_consts:
                if isinstance(const, types.CodeType):
                    found[(const.co_qualname, const.co_firstlineno)] = const
    return found


def _bound_several_times(
    steps: Sequence[Step], old_body: ast.ClassDef | None = None
) -> frozenset[str]:
    """Names a class body (old or new) binds with more than one statement; ``old_body``:
    the old class statement, whose statements no new one continues count too."""
    new: Counter[str] = Counter()
    old: Counter[str] = Counter()
    for step in steps:
        new.update(step.new.binds)
        if step.old is not None:
            old.update(step.old.binds)
    for dropped in _dropped_statements(steps, old_body):
        old.update(dropped.binds)
    return frozenset(name for name, count in (new | old).items() if count > 1)


def _old_body(step: Step) -> ast.ClassDef | None:
    node = step.old.node if step.old is not None else None
    return node if isinstance(node, ast.ClassDef) else None


def _decorated(node: ast.AST) -> bool:
    return bool(getattr(node, "decorator_list", None))


def _dropped_statements(steps: Sequence[Step], old: ast.ClassDef | None) -> list[Statement]:
    """The statements of the old body that no new one continues."""
    if old is None:
        return []
    matched = {step.old.lineno for step in steps if step.old is not None}
    return [inner for inner in class_body(old) if inner.lineno not in matched]


def _dropped_names(steps: Sequence[Step], old: ast.ClassDef | None) -> set[str]:
    """What the old body's statements no new one continues bound, and what their
    decorators read: a removed ``x = 2`` after ``x = 1`` leaves ``x`` another value, a
    removed ``@fmt.register`` leaves ``fmt`` registered with it: the new ones are taken."""
    if old is None:
        return set()
    matched = {step.old.lineno for step in steps if step.old is not None}
    names: set[str] = set()
    for inner in class_body(old):
        if inner.lineno not in matched:
            names |= inner.binds | {name for module, name in inner.decorator_uses if not module}
    return names


def replace_nested(name: str, old: type, new: type) -> bool:
    return False


def check_compatible(
    live: type,
    fresh: type,
    tracked: TrackedModule,
    lineno: int,
    lines: list[str],
    counterpart: Callable[[type], type] | None = None,
) -> None:
    reason = incompatibility(live, fresh, counterpart)
    if reason is not None:
        raise restart_required(reason, tracked, lineno, lines)
