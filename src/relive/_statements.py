"""A source's statements: their text, what each binds and what each reads.

The analysis half of planning an edit (``relive._diff`` is the other): source text and
syntax trees in, :class:`Statement` records out. Nothing is imported or executed. What a
statement reads and its tree's dump are worked out on first use and memoized on the
statement and on its syntax tree (relive's own trees, never the program's).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import overload

from relive._reparse import source_lines

__all__ = [
    "FUNCTION_NODES",
    "Key",
    "Lines",
    "Scope",
    "Statement",
    "analyze_body",
    "class_body",
    "class_has_values",
    "describe",
    "describe_statement",
    "dump_all",
    "future_flags",
    "import_aliases",
    "import_binds",
    "imported_at_top",
    "leading_future_flags",
    "names_read",
    "reads",
    "record_aliases",
]


_LEAN_TEXT = 200  # characters: a plain statement this short keeps its tree when lean


# A dependency key: (module, name). An empty module means "this module's namespace".
Key = tuple[str, str]


FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef)


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
    # Where ``text`` starts in its first line (UTF-8 bytes): after a form feed, or a ``;``.
    col: int = field(default=0, repr=False, compare=False)
    # What was worked out from the text and the imports alone (not the lines), by name: it
    # stays with the statement when it moves or lets go of its tree (see :meth:`memo`).
    _memo: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

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

    @property
    def last(self) -> int:
        """The statement's last line."""
        return self.lineno + self.text.count("\n")

    def moved(self, delta: int) -> Statement:
        """This statement ``delta`` lines further down (its tree, which carries the old
        lines, is parsed again when asked for)."""
        uses = self._uses or getattr(self._node, "_relive_uses", None)
        return dataclasses.replace(
            self, _node=None, lineno=self.lineno + delta, _uses=uses, _memo=self._memo
        )

    def memo(self, key: str, compute: Callable[[], object]) -> object:
        """``compute()``, once for this statement's text and imports: kept when it moves
        or goes lean (it must not depend on the statement's lines)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @property
    def computes(self) -> bool:
        """Whether this is a class whose body computes values (``K = f(1)``), not only
        methods: built again when what it computed with changed."""
        node = self.node
        return isinstance(node, ast.ClassDef) and class_has_values(node)

    def known(self, key: str) -> bool:
        """Whether :meth:`memo` has ``key`` already."""
        return key in self._memo

    def remember(self, key: str, value: object) -> None:
        """What :meth:`memo` would compute for ``key``, known already."""
        self._memo[key] = value

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
        return dataclasses.replace(self, _node=None, _uses=uses, _memo=self._memo)

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


class Lines(Sequence[str]):
    """Some lines of a file, indexed as the file's: ``lines[i]`` is the file's line i + 1
    (0-based, as in a list of all lines) for the lines from ``start`` on; lines before it
    read as empty."""

    def __init__(self, start: int, lines: Sequence[str]) -> None:
        self.start = start
        self.lines = lines

    def __len__(self) -> int:
        return self.start + len(self.lines)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            first, stop, _ = index.indices(len(self))
            pad = [""] * max(0, min(self.start, stop) - first)
            return pad + list(self.lines[max(first - self.start, 0) : max(stop - self.start, 0)])
        index = index + len(self) if index < 0 else index
        return self.lines[index - self.start] if index >= self.start else ""


@dataclass
class _Scope:
    """Import aliases of a module: which local names stand for which modules."""

    module: str
    package: str
    aliases: dict[str, str] = field(default_factory=dict)


FUTURE_IMPORT = re.compile(r"from\s+__future__\b")


def leading_future_flags(statements: Sequence[Statement]) -> int:
    """The module's ``from __future__`` flags, reading only the statements at its top."""
    head: list[ast.stmt] = []
    for statement in statements:
        text = statement.text
        if not (FUTURE_IMPORT.match(text) or text.lstrip("rRbBuU")[:1] in ("'", '"')):
            break
        head.append(statement.node)
    return future_flags(ast.Module(body=head, type_ignores=[]))


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
    scope: _Scope | None = None,
) -> list[Statement]:
    """Describe each statement of ``body``: its text, what it binds and what it reads.

    Args:
        body: The statements (a module's or a class's body).
        lines: The source's lines, for the statements' text.
        module: The module's dotted name, to resolve relative imports.
        package: The module's package, to resolve relative imports.
        previous: The statements of the source before the edit: one with the same text
            binds the same names, so that part of the analysis is taken from it.
        scope: The module's import aliases, when ``body`` is only part of the module (the
            part holds no import statement); by default, those of ``body``.
    """
    if scope is None:
        scope = _Scope(module, package)
        for node in body:
            _record_aliases(node, scope)
    known = {statement.text: statement.binds for statement in previous}
    return [_describe(node, lines, scope, known) for node in body]


def import_aliases(nodes: Iterable[ast.stmt], module: str, package: str) -> dict[str, str]:
    """Which local names the top-level imports among ``nodes`` bind to which modules."""
    scope = _Scope(module, package)
    for node in nodes:
        _record_aliases(node, scope)
    return scope.aliases


def imported_at_top(statements: Iterable[Statement]) -> frozenset[str]:
    """The names the module's import statements bind in its top-level scope (blocks
    included, function and class bodies not). The compiler reads them when it compiles any
    of the module's code: ``m.f()`` on such a name is compiled as an attribute call, on
    another as a method call; a statement compiled alone must be compiled knowing them (see
    :class:`~relive._prepare.CodeCache`), or its code differs from a fresh import's."""
    found: set[str] = set()
    for statement in statements:
        if statement.kind == "stmt" and "import" in statement.text:
            binds = statement.memo("import binds", functools.partial(_node_binds, statement))
            assert isinstance(binds, frozenset)
            found.update(binds)
    return frozenset(found)


def _node_binds(statement: Statement) -> frozenset[str]:
    return import_binds(statement.node)


def import_binds(node: ast.stmt) -> frozenset[str]:
    """The names the import statements in ``node`` bind in its scope (not in the
    functions and classes it defines)."""
    found: set[str] = set()
    stack: list[ast.AST] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Import):
            found.update(alias.asname or alias.name.partition(".")[0] for alias in current.names)
        elif isinstance(current, ast.ImportFrom):
            found.update(alias.asname or alias.name for alias in current.names)
            found.discard("*")
        elif not isinstance(current, (*FUNCTION_NODES, ast.ClassDef, ast.expr)):
            stack.extend(ast.iter_child_nodes(current))
    return frozenset(found)


def describe_statement(
    node: ast.stmt, lines: Sequence[str], module: str, package: str, aliases: dict[str, str]
) -> Statement:
    """One top-level statement, described as :func:`analyze_body` would describe it in a
    module whose imports bind ``aliases`` (see :func:`import_aliases`)."""
    return _describe(node, lines, _Scope(module, package, aliases))


def reads(node: ast.stmt, scope: _Scope) -> frozenset[Key]:
    """What ``node`` reads while it runs, in a module of ``scope`` (as ``Statement.uses``)."""
    return frozenset(_uses(node, scope))


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
    with warnings.catch_warnings():  # given when the text was imported or applied
        warnings.simplefilter("ignore")
        body = ast.parse(statement.text).body
    if len(body) != 1:  # pragma: no cover - a top-level statement's text is one statement
        raise RuntimeError(f"line {statement.lineno}: {len(body)} statements in one's text")
    node = body[0]
    ast.increment_lineno(node, statement.lineno - 1)  # not blank lines in front: many
    if statement.col:  # the text was cut from the middle of its first line
        for child in ast.walk(node):
            if getattr(child, "lineno", None) == statement.lineno:
                child.col_offset += statement.col  # type: ignore[attr-defined]
            if getattr(child, "end_lineno", None) == statement.lineno:
                child.end_col_offset += statement.col  # type: ignore[attr-defined]
    if isinstance(node, ast.ClassDef):
        lines = Lines(statement.lineno - 1, source_lines(statement.text))
        node._relive_context = (lines, statement.scope)  # type: ignore[attr-defined]
    return node


def class_body(node: ast.ClassDef) -> list[Statement]:
    """Describe a class's body with the lines and imports of the module it is in (once per
    node and context: every edit of a wide module asks again for each class it keeps)."""
    context = getattr(node, "_relive_context", None)
    cached = getattr(node, "_relive_body", None)
    if cached is not None and cached[0] is context:
        return list(cached[1])
    lines, scope = context if context is not None else ((), _Scope("", ""))
    body = [_describe(child, lines, scope) for child in node.body]
    node._relive_body = (context, tuple(body))  # type: ignore[attr-defined]
    return body


def class_has_values(node: ast.ClassDef) -> bool:
    """Whether a class body computes something besides its methods and docstring
    (``K = f(1)``): such a class is built again when what it computed with changed."""
    return any(
        not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Pass))
        and not (isinstance(child, ast.Expr) and isinstance(child.value, ast.Constant))
        for child in node.body
    )


def dump_all(nodes: Iterable[ast.AST | None]) -> str:
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
    text, col = _segment(lines, node, first) if lines else ("", 0)
    if isinstance(node, ast.ClassDef):
        node._relive_context = (lines, scope)  # type: ignore[attr-defined]
        kind, name = "class", node.name
    elif isinstance(node, FUNCTION_NODES):
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
        col=col,
    )


def _segment(lines: Sequence[str], node: ast.stmt, first: int) -> tuple[str, int]:
    """The statement's text, and the column (UTF-8 bytes) it starts at in its first line."""
    end = node.end_lineno or node.lineno
    chunk = list(lines[first - 1 : end])
    if not chunk:
        return "", 0
    # Column offsets count UTF-8 bytes, not characters.
    if node.end_col_offset is not None:
        chunk[-1] = _cut(chunk[-1], None, node.end_col_offset)
    if first == node.lineno:
        col = node.col_offset
        chunk[0] = _cut(chunk[0], col, None)
    else:
        stripped = chunk[0].lstrip()
        col = len(chunk[0][: len(chunk[0]) - len(stripped)].encode())
        chunk[0] = stripped
    return "\n".join(chunk), col


def _cut(line: str, start: int | None, end: int | None) -> str:
    if line.isascii():
        return line[start:end]
    return line.encode()[start:end].decode(errors="replace")


def _binds(node: ast.stmt) -> Iterator[str]:
    if isinstance(node, (*FUNCTION_NODES, ast.ClassDef)):
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
        elif isinstance(child, (*FUNCTION_NODES, ast.ClassDef)):
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


# Nodes that name or bind nothing and hold no such node: not walked (a third of a tree).
_LEAVES = (ast.expr_context, ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.Constant)


def _walk_executed(node: ast.AST) -> Iterator[ast.AST]:
    """Walk the nodes evaluated when ``node`` runs: function bodies are skipped, and the
    leaves that name nothing (constants, operators, contexts)."""
    stack: list[ast.AST] = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, FUNCTION_NODES):
            stack.extend(current.decorator_list)
            stack.extend(current.args.defaults)
            stack.extend(d for d in current.args.kw_defaults if d is not None)
            stack.extend(_annotations(current))
        elif isinstance(current, ast.Lambda):
            stack.extend(current.args.defaults)
            stack.extend(d for d in current.args.kw_defaults if d is not None)
        else:
            for field_name in current._fields:
                value = getattr(current, field_name, None)
                if isinstance(value, list):
                    for item in value:
                        if isinstance(item, ast.AST) and not isinstance(item, _LEAVES):
                            stack.append(item)
                elif isinstance(value, ast.AST) and not isinstance(value, _LEAVES):
                    stack.append(value)


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


Scope = _Scope  # for relive._scan, which describes statements it parsed itself
describe = _describe
record_aliases = _record_aliases
