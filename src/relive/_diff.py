"""Old statements x new statements → plan: which top-level statements and class members
changed, and what the engine does with each.

Pure: :class:`~relive._statements.Statement` records in (``relive._statements`` analyses
the source), a :class:`BodyPlan` out; nothing is imported, executed or modified here (what
it asks of a statement, ``relive._statements`` memoizes). The engine turns the plan into
patches (``relive._apply``).
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from relive._statements import FUNCTION_NODES, Statement, class_body, dump_all

__all__ = [
    "Action",
    "BodyPlan",
    "ClassPlan",
    "Step",
    "count_kinds",
    "plan_module",
]


_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


class Action(enum.Enum):
    """What the engine does with one statement of the new source."""

    KEEP = "keep"  # unchanged: not executed again (line numbers may have moved)
    EXECUTE = "execute"  # new or changed statement: executed in the namespace
    DEFINE = "define"  # new function or class: executed in the namespace
    PATCH_BODY = "patch-body"  # function whose body alone changed: swap its code
    PATCH_FUNCTION = "patch-function"  # signature/defaults changed: rebuild, then patch in place
    REDEFINE = "redefine"  # decorators changed: patch the inner function, rebind the new object
    PATCH_CLASS = "patch-class"  # class body changed: patched member by member


@dataclass(frozen=True)
class Step:
    """One statement of the new source and what to do with it."""

    action: Action
    new: Statement
    old: Statement | None = None
    cls: ClassPlan | None = None

    @property
    def line_delta(self) -> int:
        """How far the statement moved (new first line minus old first line)."""
        return 0 if self.old is None else self.new.lineno - self.old.lineno

    @property
    def relined(self) -> bool:
        """Whether the lines inside an unchanged plain statement changed (blank lines in a
        class made in an ``if``): what it made keeps its code but not its line numbers."""
        return (
            self.action is Action.KEEP
            and self.old is not None
            and self.new.kind == "stmt"
            and self.old.text != self.new.text
        )


@dataclass(frozen=True)
class BodyPlan:
    """The plan for one body (a module or a class): steps in new source order."""

    steps: tuple[Step, ...]
    removed: frozenset[str]  # names bound before and bound by nothing now
    restart_reasons: tuple[tuple[int, str], ...] = ()  # (new line, why) edits needing a restart
    # Old plain statements gone from the source that set attributes (``f.x = 1``).
    dropped: tuple[Statement, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether anything differs from the old body, line moves aside."""
        return bool(self.removed or self.dropped) or any(
            step.action is not Action.KEEP for step in self.steps
        )

    @property
    def moved(self) -> bool:
        """Whether some unchanged statement moved to other lines, or its lines moved inside
        it."""
        return any(step.line_delta or step.relined for step in self.steps)


@dataclass(frozen=True)
class ClassPlan:
    """How a changed class body is applied to the live class."""

    body: BodyPlan
    rebuild: bool  # the class statement must run again (attributes, signatures, decorators)


def plan_module(old: Sequence[Statement], new: Sequence[Statement]) -> BodyPlan:
    """Diff two module bodies into a plan."""
    return _plan_body(old, new, in_class=False)


def _plan_body(old: Sequence[Statement], new: Sequence[Statement], *, in_class: bool) -> BodyPlan:
    matches = _match(old, new)
    steps: list[Step] = []
    restarts: list[tuple[int, str]] = []
    for stmt in new:
        previous = matches.get(id(stmt))
        step = _step(previous, stmt, in_class=in_class)
        steps.append(step)
        if step.cls is not None:
            restarts.extend(step.cls.body.restart_reasons)
        restarts.extend(_restart_reasons(previous, stmt))
    bound_now = set().union(*(stmt.binds for stmt in new)) if new else set()
    bound_before = set().union(*(stmt.binds for stmt in old)) if old else set()
    kept = {id(step.old) for step in steps}
    dropped = tuple(
        stmt
        for stmt in old
        if id(stmt) not in kept and stmt.kind == "stmt" and not in_class and _sets_attributes(stmt)
    )
    removed = frozenset(bound_before - bound_now)
    return BodyPlan(tuple(steps), removed, tuple(restarts), dropped)


def _sets_attributes(stmt: Statement) -> bool:
    """Whether a plain statement sets an attribute of a name (``f.x = 1``, ``setattr(f,
    "x", 1)``) outside the functions it defines."""
    if "." not in stmt.text and "setattr" not in stmt.text:
        return False
    return any(
        (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store | ast.Del))
        or (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
        )
        for node in ast.walk(stmt.node)
    )


def _match(old: Sequence[Statement], new: Sequence[Statement]) -> dict[int, Statement]:
    """Pair each new statement with the old one it continues (by name, else by content)."""
    matches: dict[int, Statement] = {}
    by_name: dict[tuple[str, str], list[Statement]] = defaultdict(list)
    by_text: dict[str, list[Statement]] = defaultdict(list)
    for stmt in old:
        if stmt.name is not None:
            by_name[stmt.kind, stmt.name].append(stmt)
        else:
            by_text[stmt.text].append(stmt)
    _match_same_text(new, by_name, matches)
    unmatched: list[Statement] = []
    for stmt in new:
        if id(stmt) in matches:
            continue
        pool = by_name[stmt.kind, stmt.name] if stmt.name is not None else by_text[stmt.text]
        if pool:
            matches[id(stmt)] = pool.pop(0)
        elif stmt.name is None:
            unmatched.append(stmt)
    if unmatched:
        leftovers = [stmt for pool in by_text.values() for stmt in pool]
        # Reformatted statements first (same tree), then edited ones (same names bound).
        for key in (_dump_key, _binds_key):
            unmatched = _match_leftovers(unmatched, leftovers, key, matches)
    return matches


def _match_same_text(
    new: Sequence[Statement],
    by_name: dict[tuple[str, str], list[Statement]],
    matches: dict[int, Statement],
) -> None:
    """Pair unchanged definitions of a name defined more than once (``def _`` registered
    with ``@fmt.register``) first: the others are then paired in order of position."""
    counts = Counter((stmt.kind, stmt.name) for stmt in new if stmt.name is not None)
    for stmt in new:
        if stmt.name is None:
            continue
        pool = by_name[stmt.kind, stmt.name]
        if len(pool) < 2 and counts[stmt.kind, stmt.name] < 2:
            continue
        same = next((i for i, old in enumerate(pool) if old.text == stmt.text), None)
        if same is not None:
            matches[id(stmt)] = pool.pop(same)
    # Then those whose decorators and signature stayed (``def _(x: float)``, body edited).
    for stmt in new:
        if stmt.name is None or id(stmt) in matches:
            continue
        pool = by_name[stmt.kind, stmt.name]
        if len(pool) < 2 and counts[stmt.kind, stmt.name] < 2:
            continue
        key = _outline(stmt)
        same = next((i for i, old in enumerate(pool) if _outline(old) == key), None)
        if same is not None:
            matches[id(stmt)] = pool.pop(same)


def _outline(stmt: Statement) -> str:
    """A definition without its body: decorators, arguments, return annotation, bases."""
    node = stmt.node
    if isinstance(node, ast.ClassDef):
        return dump_all([*node.decorator_list, *node.bases, *node.keywords])
    if isinstance(node, FUNCTION_NODES):
        return type(node).__name__ + dump_all([*node.decorator_list, node.args, node.returns])
    return ""


def _dump_key(stmt: Statement) -> object:
    return stmt.dump


def _binds_key(stmt: Statement) -> object:
    return stmt.binds or None


def _match_leftovers(
    unmatched: list[Statement],
    leftovers: list[Statement],
    key: Callable[[Statement], object],
    matches: dict[int, Statement],
) -> list[Statement]:
    """Pair unmatched new statements with unpaired old ones of the same ``key``."""
    paired = {id(old) for old in matches.values()}
    pools: dict[object, list[Statement]] = defaultdict(list)
    for stmt in leftovers:
        if id(stmt) not in paired and key(stmt) is not None:
            pools[key(stmt)].append(stmt)
    still: list[Statement] = []
    for stmt in unmatched:
        pool = pools.get(key(stmt))
        if pool:
            matches[id(stmt)] = pool.pop(0)
        else:
            still.append(stmt)
    return still


def _step(old: Statement | None, new: Statement, *, in_class: bool) -> Step:
    if old is None:
        return Step(Action.DEFINE if new.kind != "stmt" else Action.EXECUTE, new)
    if old.text == new.text or (new.kind == "stmt" and old.dump == new.dump):
        return Step(Action.KEEP, new, old)
    if new.kind == "def":
        return Step(_function_action(old.node, new.node), new, old)
    if new.kind == "class":
        assert isinstance(old.node, ast.ClassDef) and isinstance(new.node, ast.ClassDef)
        return Step(Action.PATCH_CLASS, new, old, _plan_class(old.node, new.node))
    return Step(Action.EXECUTE, new, old)


def built_again(step: Step, attributes: frozenset[str] | None) -> Step:
    """An unchanged definition's step as one that builds it again: its decorators applied
    anew to its function, or its class body run again with the values it gives
    ``attributes`` (None: all) taken over the live ones."""
    assert step.old is not None
    if step.new.kind == "def":
        return Step(Action.REDEFINE, step.new, step.old)
    assert isinstance(step.old.node, ast.ClassDef) and isinstance(step.new.node, ast.ClassDef)
    body = _plan_class(step.old.node, step.new.node).body
    taken = tuple(
        Step(Action.EXECUTE, inner.new, inner.old)
        if inner.action is Action.KEEP
        and inner.new.kind == "stmt"
        and (attributes is None or not attributes.isdisjoint(inner.new.binds))
        else inner
        for inner in body.steps
    )
    plan = BodyPlan(taken, body.removed, body.restart_reasons)
    return Step(Action.PATCH_CLASS, step.new, step.old, ClassPlan(plan, rebuild=True))


def _function_action(old: ast.stmt, new: ast.stmt) -> Action:
    assert isinstance(old, FUNCTION_NODES) and isinstance(new, FUNCTION_NODES)
    if type(old) is not type(new) or dump_all(old.decorator_list) != dump_all(new.decorator_list):
        return Action.REDEFINE
    same_signature = dump_all([old.args, old.returns]) == dump_all([new.args, new.returns])
    return Action.PATCH_BODY if same_signature else Action.PATCH_FUNCTION


def _plan_class(old: ast.ClassDef, new: ast.ClassDef) -> ClassPlan:
    old_body, new_body = class_body(old), class_body(new)
    body = _plan_body(old_body, new_body, in_class=True)
    slots = _slots_changed(old_body, new_body, new.lineno)
    if slots is not None:
        body = dataclasses.replace(body, restart_reasons=(*body.restart_reasons, slots))
    rebuild = (
        dump_all([*old.decorator_list, *old.bases]) != dump_all([*new.decorator_list, *new.bases])
        or any(_needs_rebuild(step) for step in body.steps)
        or _reordered(body.steps)
        or _dropped_rebinding(old_body, body.steps)
    )
    return ClassPlan(body, rebuild or bool(body.removed and _removes_data(old, body.removed)))


def _dropped_rebinding(old: Sequence[Statement], steps: Sequence[Step]) -> bool:
    """Whether an old statement no new one continues bound a name the body still binds
    (``x = 1; x = 2`` -> ``x = 1``: the class ends with another value) or registered
    something (``@fmt.register def _``): the class is built again."""
    matched = {id(step.old) for step in steps if step.old is not None}
    bound = set().union(*(step.new.binds for step in steps)) if steps else set()
    return any(
        not statement.binds.isdisjoint(bound) or statement.decorator_uses
        for statement in old
        if id(statement) not in matched
    )


def _reordered(steps: Sequence[Step]) -> bool:
    """Whether statements kept from the old body come in another order (the fields of a
    dataclass, the members of an enum: what the class is built from follows the order)."""
    lines = [step.old.lineno for step in steps if step.old is not None]
    return any(a > b for a, b in itertools.pairwise(lines))


def _slots_changed(
    old: Sequence[Statement], new: Sequence[Statement], class_line: int
) -> tuple[int, str] | None:
    """A restart reason when the ``__slots__`` statements of a class body differ."""
    old_slots = [stmt.dump for stmt in old if "__slots__" in stmt.binds]
    new_slots = [stmt for stmt in new if "__slots__" in stmt.binds]
    if old_slots == [stmt.dump for stmt in new_slots]:
        return None
    return (new_slots[0].lineno if new_slots else class_line, "__slots__ changed")


def _needs_rebuild(step: Step) -> bool:
    if step.action in (Action.KEEP, Action.PATCH_BODY):
        return False
    if step.action is Action.PATCH_CLASS:
        return step.cls is None or step.cls.rebuild
    return True


def _removes_data(old: ast.ClassDef, removed: frozenset[str]) -> bool:
    """Whether a removed class member was something other than a plain method."""
    methods = {
        node.name
        for node in old.body
        if isinstance(node, FUNCTION_NODES) and not node.decorator_list
    }
    return not removed <= methods


def _restart_reasons(old: Statement | None, new: Statement) -> list[tuple[int, str]]:
    if old is None or old.text == new.text:
        return []
    if isinstance(old.node, FUNCTION_NODES) and isinstance(new.node, FUNCTION_NODES):
        return _kind_changes(old.node, new.node)
    # Bases are compared as objects when the class is built again (``m0.A`` and ``A``
    # imported from m0 are one class); keywords such as ``metaclass=`` as text.
    if new.kind == "class" and isinstance(old.node, ast.ClassDef):
        assert isinstance(new.node, ast.ClassDef)
        if dump_all(old.node.keywords) != dump_all(new.node.keywords):
            return [(new.node.lineno, f"the metaclass or class keywords of {new.name} changed")]
    return []


def _kind_changes(old: _FunctionNode, new: _FunctionNode) -> list[tuple[int, str]]:
    """A function (or one nested in it) made a generator, coroutine or async generator, or
    the reverse: its live object cannot take the new code (a call of it must make another
    kind of object; CPython 3.13 deprecates the change of ``__code__`` it would need)."""
    before = {name: kind for name, kind, _ in _function_kinds_at(old)}
    return [
        (node.lineno, f"{name} was a {before[name]}, now a {kind}")
        for name, kind, node in _function_kinds_at(new)
        if name in before and before[name] != kind
    ]


def _function_kinds_at(
    node: _FunctionNode, prefix: str = ""
) -> Iterator[tuple[str, str, _FunctionNode]]:
    """(qualified name, kind, node) of ``node`` and of each function defined in it."""
    name = f"{prefix}{node.name}"
    yields = False
    stack: list[ast.AST] = list(node.body)
    while stack:
        child = stack.pop()
        if isinstance(child, FUNCTION_NODES):
            yield from _function_kinds_at(child, f"{name}.<locals>.")
            continue
        if isinstance(child, ast.Lambda | ast.ClassDef):
            continue  # a scope of its own (a class's methods are planned on their own)
        yields = yields or isinstance(child, ast.Yield | ast.YieldFrom)
        stack.extend(ast.iter_child_nodes(child))
    if isinstance(node, ast.AsyncFunctionDef):
        yield name, "async generator" if yields else "coroutine function", node
    else:
        yield name, "generator" if yields else "plain function", node


def count_kinds(steps: Iterable[Step]) -> Counter[Action]:
    """How many steps of each action a plan has (for reports)."""
    return Counter(step.action for step in steps)
