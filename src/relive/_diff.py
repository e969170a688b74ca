"""Old source x new source → plan: which top-level statements and class members changed.

Pure logic: source text and syntax trees in, a :class:`BodyPlan` out. Nothing is imported
or executed here; the engine turns the plan into patches (patch.py).
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from relive._reparse import source_lines

__all__ = [
    "Action",
    "BodyPlan",
    "ClassPlan",
    "Statement",
    "Step",
    "analyze_body",
    "class_body",
    "future_flags",
    "names_read",
    "plan_module",
]

_LEAN_TEXT = 200  # characters: a plain statement this short keeps its tree when lean

# A dependency key: (module, name). An empty module means "this module's namespace".
Key = tuple[str, str]

_FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef)
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
class Statement:
    """One statement of a module or class body, with what it binds and what it reads.

    A *lean* statement (see :meth:`lean`) has let go of its syntax tree, which is parsed
    again from ``text`` when asked for: relive keeps the trees of modules it read only to
    follow an edit elsewhere in this form (a full tree is some 1,500 objects per function
    that every full garbage collection of the program would walk).
    """

    _node: ast.stmt | None = field(repr=False, compare=False)
    text: str
    lineno: int  # first line, decorators included
    kind: str  # "def", "class" or "stmt"
    name: str | None  # the defined name, for "def" and "class"
    binds: frozenset[str]
    scope: _Scope = field(repr=False, compare=False)
    _uses: frozenset[Key] | None = field(default=None, repr=False, compare=False)

    @property
    def node(self) -> ast.stmt:
        """The statement's syntax tree (parsed again from ``text`` if the statement is lean)."""
        if self._node is None:
            object.__setattr__(self, "_node", _parse_statement(self))
        assert self._node is not None
        return self._node

    @property
    def is_lean(self) -> bool:
        return self._node is None

    def lean(self, names: Iterable[str] = ()) -> Statement:
        """This statement without its tree; what it reads is kept, worked out first if it
        mentions one of ``names`` (an edit elsewhere rebound them: it is about to be asked).

        A short plain statement (an import, an assignment: what an edit elsewhere makes run
        again) keeps its tree: it is small, and parsing it again would cost more.
        """
        if self._node is None or (self.kind == "stmt" and len(self.text) <= _LEAN_TEXT):
            return self
        uses = self._uses or getattr(self._node, "_relive_uses", None)
        if uses is None and names and self.mentions(names):
            uses = self.uses
        return dataclasses.replace(self, _node=None, _uses=uses)

    @property
    def uses(self) -> frozenset[Key]:
        """What the statement reads while it runs (worked out on first use, then cached)."""
        if self._uses is not None:
            return self._uses
        node = self.node
        cached: frozenset[Key] | None = getattr(node, "_relive_uses", None)
        if cached is None:
            cached = frozenset(_uses(node, self.scope))
            node._relive_uses = cached  # type: ignore[attr-defined]
        object.__setattr__(self, "_uses", cached)
        return cached

    @property
    def decorator_uses(self) -> frozenset[Key]:
        """What the decorators alone read."""
        return frozenset(
            key
            for decorator in getattr(self.node, "decorator_list", ())
            for key in _uses(decorator, self.scope)
        )

    def mentions(self, names: Iterable[str]) -> bool:
        """Whether any of ``names`` occurs in the statement's text: a quick test that
        rules out most statements before their syntax tree is walked for :attr:`uses`."""
        return any(name in self.text for name in names)

    @property
    def dump(self) -> str:
        """The statement's syntax tree as text, positions left out (cached on first use)."""
        cached: str | None = getattr(self.node, "_relive_dump", None)
        if cached is None:
            cached = ast.dump(self.node, annotate_fields=False, include_attributes=False)
            self.node._relive_dump = cached  # type: ignore[attr-defined]
        return cached


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


@dataclass(frozen=True)
class BodyPlan:
    """The plan for one body (a module or a class): steps in new source order."""

    steps: tuple[Step, ...]
    removed: frozenset[str]  # names bound before and bound by nothing now
    restart_reasons: tuple[tuple[int, str], ...] = ()  # (new line, why) edits needing a restart

    @property
    def changed(self) -> bool:
        """Whether anything differs from the old body, line moves aside."""
        return bool(self.removed) or any(step.action is not Action.KEEP for step in self.steps)

    @property
    def moved(self) -> bool:
        """Whether some unchanged statement moved to other lines."""
        return any(step.line_delta for step in self.steps)


@dataclass(frozen=True)
class ClassPlan:
    """How a changed class body is applied to the live class."""

    body: BodyPlan
    rebuild: bool  # the class statement must run again (attributes, signatures, decorators)


@dataclass
class _Scope:
    """Import aliases of a module: which local names stand for which modules."""

    module: str
    package: str
    aliases: dict[str, str] = field(default_factory=dict)


def future_flags(tree: ast.Module) -> int:
    """Compiler flags for the ``from __future__`` imports at the top of ``tree``."""
    import __future__

    flags = 0
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            for alias in node.names:
                feature = getattr(__future__, alias.name, None)
                if feature is not None:
                    flags |= feature.compiler_flag
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            break
    return flags


def analyze_body(
    body: Sequence[ast.stmt],
    lines: Sequence[str],
    *,
    module: str = "",
    package: str = "",
    previous: Sequence[Statement] = (),
) -> list[Statement]:
    """Describe each statement of ``body``: its text, what it binds and what it reads.

    Args:
        body: The statements (a module's or a class's body).
        lines: The source's lines, for the statements' text.
        module: The module's dotted name, to resolve relative imports.
        package: The module's package, to resolve relative imports.
        previous: The statements of the source before the edit: one with the same text
            binds the same names, so that part of the analysis is taken from it.
    """
    scope = _Scope(module, package)
    for node in body:
        _record_aliases(node, scope)
    known = {statement.text: statement.binds for statement in previous}
    return [_describe(node, lines, scope, known) for node in body]


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
    return BodyPlan(tuple(steps), frozenset(bound_before - bound_now), tuple(restarts))


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
        if stmt.name is None or id(stmt) in matches or counts[stmt.kind, stmt.name] < 2:
            continue
        pool = by_name[stmt.kind, stmt.name]
        key = _outline(stmt)
        same = next((i for i, old in enumerate(pool) if _outline(old) == key), None)
        if same is not None:
            matches[id(stmt)] = pool.pop(same)


def _outline(stmt: Statement) -> str:
    """A definition without its body: decorators, arguments, return annotation, bases."""
    node = stmt.node
    if isinstance(node, ast.ClassDef):
        return _dump_all([*node.decorator_list, *node.bases, *node.keywords])
    if isinstance(node, _FUNCTION_NODES):
        return type(node).__name__ + _dump_all([*node.decorator_list, node.args, node.returns])
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


def _function_action(old: ast.stmt, new: ast.stmt) -> Action:
    assert isinstance(old, _FUNCTION_NODES) and isinstance(new, _FUNCTION_NODES)
    if type(old) is not type(new) or _dump_all(old.decorator_list) != _dump_all(new.decorator_list):
        return Action.REDEFINE
    same_signature = _dump_all([old.args, old.returns]) == _dump_all([new.args, new.returns])
    return Action.PATCH_BODY if same_signature else Action.PATCH_FUNCTION


def _plan_class(old: ast.ClassDef, new: ast.ClassDef) -> ClassPlan:
    old_body, new_body = class_body(old), class_body(new)
    body = _plan_body(old_body, new_body, in_class=True)
    slots = _slots_changed(old_body, new_body, new.lineno)
    if slots is not None:
        body = dataclasses.replace(body, restart_reasons=(*body.restart_reasons, slots))
    rebuild = (
        _dump_all([*old.decorator_list, *old.bases]) != _dump_all([*new.decorator_list, *new.bases])
        or any(_needs_rebuild(step) for step in body.steps)
        or _reordered(body.steps)
    )
    return ClassPlan(body, rebuild or bool(body.removed and _removes_data(old, body.removed)))


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
        if isinstance(node, _FUNCTION_NODES) and not node.decorator_list
    }
    return not removed <= methods


def _restart_reasons(old: Statement | None, new: Statement) -> list[tuple[int, str]]:
    if old is None or old.text == new.text:
        return []
    if isinstance(old.node, _FUNCTION_NODES) and isinstance(new.node, _FUNCTION_NODES):
        return _kind_changes(old.node, new.node)
    # Bases are compared as objects when the class is built again (``m0.A`` and ``A``
    # imported from m0 are one class); keywords such as ``metaclass=`` as text.
    if new.kind == "class" and isinstance(old.node, ast.ClassDef):
        assert isinstance(new.node, ast.ClassDef)
        if _dump_all(old.node.keywords) != _dump_all(new.node.keywords):
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
        if isinstance(child, _FUNCTION_NODES):
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


def names_read(statements: Iterable[Statement]) -> frozenset[str]:
    """Every global name the statements may read, function bodies included."""
    return frozenset(
        node.id
        for statement in statements
        for node in ast.walk(statement.node)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    )


def _parse_statement(statement: Statement) -> ast.stmt:
    """The tree of a lean top-level statement, at its lines in the file."""
    padded = "\n" * (statement.lineno - 1) + statement.text
    body = ast.parse(padded).body
    if len(body) != 1:  # pragma: no cover - a top-level statement's text is one statement
        raise RuntimeError(f"line {statement.lineno}: {len(body)} statements in one's text")
    node = body[0]
    if isinstance(node, ast.ClassDef):
        node._relive_context = (source_lines(padded), statement.scope)  # type: ignore[attr-defined]
    return node


def class_body(node: ast.ClassDef) -> list[Statement]:
    """Describe a class's body with the lines and imports of the module it is in."""
    lines, scope = getattr(node, "_relive_context", ((), _Scope("", "")))
    return [_describe(child, lines, scope) for child in node.body]


def _dump_all(nodes: Iterable[ast.AST | None]) -> str:
    return "|".join(
        "" if node is None else ast.dump(node, annotate_fields=False, include_attributes=False)
        for node in nodes
    )


# ---------------------------------------------------------------------------------------
# Describing one statement


def _describe(
    node: ast.stmt,
    lines: Sequence[str],
    scope: _Scope,
    known: Mapping[str, frozenset[str]] | None = None,
) -> Statement:
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
    text = _segment(lines, node, first) if lines else ""
    if isinstance(node, ast.ClassDef):
        node._relive_context = (lines, scope)  # type: ignore[attr-defined]
        kind, name = "class", node.name
    elif isinstance(node, _FUNCTION_NODES):
        kind, name = "def", node.name
    else:
        kind, name = "stmt", None
    if not text:
        text = ast.dump(node, annotate_fields=False, include_attributes=False)
    binds = known.get(text) if known else None
    return Statement(
        _node=node,
        text=text,
        lineno=first,
        kind=kind,
        name=name,
        binds=frozenset(_binds(node)) if binds is None else binds,
        scope=scope,
    )


def _segment(lines: Sequence[str], node: ast.stmt, first: int) -> str:
    end = node.end_lineno or node.lineno
    chunk = list(lines[first - 1 : end])
    if not chunk:
        return ""
    # Column offsets count UTF-8 bytes, not characters.
    if node.end_col_offset is not None:
        chunk[-1] = _cut(chunk[-1], None, node.end_col_offset)
    if first == node.lineno:
        chunk[0] = _cut(chunk[0], node.col_offset, None)
    else:
        chunk[0] = chunk[0].lstrip()
    return "\n".join(chunk)


def _cut(line: str, start: int | None, end: int | None) -> str:
    if line.isascii():
        return line[start:end]
    return line.encode()[start:end].decode(errors="replace")


def _binds(node: ast.stmt) -> Iterator[str]:
    if isinstance(node, (*_FUNCTION_NODES, ast.ClassDef)):
        yield node.name
        return
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            if alias.name != "*":
                yield alias.asname or alias.name.split(".")[0]
        return
    for child in _walk_executed(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Store, ast.Del)):
            yield child.id
        elif isinstance(child, (*_FUNCTION_NODES, ast.ClassDef)):
            yield child.name
        elif isinstance(child, (ast.Import, ast.ImportFrom)):
            for alias in child.names:
                if alias.name != "*":
                    yield alias.asname or alias.name.split(".")[0]


def _uses(node: ast.AST, scope: _Scope) -> Iterator[Key]:
    """The names a statement reads while it executes (not inside function bodies)."""
    if isinstance(node, ast.ImportFrom):
        source = _resolve(node, scope)
        for alias in node.names:
            yield (source, alias.name)
        return
    for child in _walk_executed(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
            yield ("", child.id)
        elif isinstance(child, ast.Attribute) and isinstance(child.ctx, ast.Load):
            yield from _attribute_keys(child, scope)


def _attribute_keys(node: ast.Attribute, scope: _Scope) -> Iterator[Key]:
    parts = [node.attr]
    value: ast.expr = node.value
    while isinstance(value, ast.Attribute):
        parts.append(value.attr)
        value = value.value
    if not isinstance(value, ast.Name):
        return
    if value.id not in scope.aliases:
        # ``Cls.member`` of a local class: read again when the member is replaced.
        yield ("", f"{value.id}.{parts[-1]}")
        return
    dotted = [scope.aliases[value.id], *reversed(parts)]
    for i in range(1, len(dotted)):
        yield (".".join(dotted[:i]), dotted[i])


def _walk_executed(node: ast.AST) -> Iterator[ast.AST]:
    """Walk the nodes evaluated when ``node`` runs: function bodies are skipped."""
    stack: list[ast.AST] = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, _FUNCTION_NODES):
            stack.extend(current.decorator_list)
            stack.extend(current.args.defaults)
            stack.extend(d for d in current.args.kw_defaults if d is not None)
            stack.extend(_annotations(current))
        elif isinstance(current, ast.Lambda):
            stack.extend(current.args.defaults)
            stack.extend(d for d in current.args.kw_defaults if d is not None)
        else:
            stack.extend(ast.iter_child_nodes(current))


def _annotations(node: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.expr]:
    args = node.args
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
        if arg is not None and arg.annotation is not None:
            yield arg.annotation
    if node.returns is not None:
        yield node.returns


def _record_aliases(node: ast.stmt, scope: _Scope) -> None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                scope.aliases[alias.asname] = alias.name
            else:
                head = alias.name.split(".")[0]
                scope.aliases[head] = head
    elif isinstance(node, ast.ImportFrom):
        source = _resolve(node, scope)
        for alias in node.names:
            # `from pkg import submodule` binds a module too; harmless when it is not one.
            scope.aliases[alias.asname or alias.name] = f"{source}.{alias.name}"


def _resolve(node: ast.ImportFrom, scope: _Scope) -> str:
    if not node.level:
        return node.module or ""
    parts = scope.package.split(".") if scope.package else []
    if node.level > 1:
        parts = parts[: len(parts) - (node.level - 1)]
    if node.module:
        parts.append(node.module)
    return ".".join(parts)


def count_kinds(steps: Iterable[Step]) -> Counter[Action]:
    """How many steps of each action a plan has (for reports)."""
    return Counter(step.action for step in steps)
