"""Long-running loops that pick up edits of their body at the next iteration.

``for item in relive.loop(items):`` runs the caller's own body until the loop's source
changes; from then on the iterator runs each iteration itself, with the body compiled from
the file as it is now and the loop's variables carried from one iteration to the next.
"""

from __future__ import annotations

import ast
import ctypes
import linecache
import sys
import time
import traceback
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from relive._errors import ReloadError
from relive._output import Rejected, default_console
from relive._reparse import source_lines
from relive._sources import fingerprint, read_bytes, written_recently
from relive._switch import disabled
from relive._writers import being_written

__all__ = ["loop"]


def _line(data: bytes, lineno: int | None) -> str:
    """Line ``lineno`` of a file's bytes (empty when out of range)."""
    lines = source_lines(data.decode("utf-8", "replace"))
    return lines[lineno - 1] if lineno is not None and 0 < lineno <= len(lines) else ""


def _say(error: ReloadError) -> None:
    """A loop body that was not reloaded: said like every other refused edit."""
    default_console().emit(Rejected(error))


T = TypeVar("T")
_BODY = "__relive_loop_body__"
_PREFIX = "__relive_"  # names the compiled body uses for itself
_BROKE, _ITEM, _NS, _ONCE, _MAKE = (
    "__relive_broke__",
    "__relive_item__",
    "__relive_ns__",
    "__relive_once__",
    "__relive_make_body__",
)
_CLASS = "__class__"  # the cell zero-argument super() reads, in a method
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)


def loop(iterable: Iterable[T], *, interval: float = 0.0) -> Iterator[T]:
    """Iterate over ``iterable``, running the current source of the loop's body each time.

    Write it as the iterable of a ``for`` statement, in a function or at module level::

        for batch in relive.loop(batches):
            loss = step(model, batch)

    Until the body is edited, the loop runs as written, at full speed (one ``stat`` of
    the file per iteration). Once the file holds a different body that compiles, the next
    iteration and every one after runs the new body, with the loop's variables (the
    function's locals, or the module's globals) carried over, and written back to the
    function when the loop ends. A body that does not compile, or that uses ``return``,
    ``yield`` or ``await``, is reported in one line on stderr and the previous body keeps
    running.

    Args:
        iterable: What the loop iterates over.
        interval: Look at the file at most this often (seconds); 0, the default, looks
            before every iteration (about 3 µs each), so no iteration after an edit runs
            the old body.
    """
    if disabled():  # production: a plain iterator, whatever the file says later
        return iter(iterable)
    return LiveLoop(iter(iterable), sys._getframe(1), interval=interval)


@dataclass(frozen=True)
class _Address:
    """Where the loop is, in a way that survives edits: its scope and its rank there."""

    scope: tuple[str, ...]  # names of the enclosing functions and classes
    call: str  # ast.dump of the callee, e.g. relive.loop
    index: int  # among the loops with that callee in that scope


class LiveLoop(Generic[T]):
    """The iterator :func:`loop` returns (see there for what it carries over)."""

    def __init__(self, items: Iterator[T], frame: types.FrameType, *, interval: float) -> None:
        self._items = items
        self._frame: types.FrameType | None = frame
        self._filename = frame.f_code.co_filename
        self._module_level = frame.f_code.co_name == "<module>"
        self._body: types.FunctionType | types.CodeType | None = None  # None: caller's own
        self._previous: types.FunctionType | types.CodeType | None = None  # the last good one
        self._first = _first_argument(frame.f_code)  # ``self`` of a method, for super()
        self._stat = fingerprint(self._filename)
        self._data: bytes | None = None  # the file's bytes when last looked at
        self._interval, self._next_look = interval, time.monotonic() + interval
        self._declared_globals: set[str] = set()
        node, self._address = self._locate(frame)
        self._node = node  # the body the caller runs itself, until an edit
        self._dump = _body_dump(node) if node is not None else None

    def __iter__(self) -> LiveLoop[T]:
        return self

    def __next__(self) -> T:
        item = next(self._items)
        if self._frame is None or not self._changed():
            return item
        try:
            self._run_from(item)
        finally:
            self._frame = None
        raise StopIteration

    # -- finding the loop ---------------------------------------------------------------

    def _locate(self, frame: types.FrameType) -> tuple[ast.For | None, _Address | None]:
        tree = _parse(self._filename)
        if tree is None:
            return None, None
        line = frame.f_lineno
        found = None
        for scope, call, index, node in _loops(tree):
            if node.lineno <= line <= (node.iter.end_lineno or node.lineno):
                found = node, _Address(scope, call, index)  # the innermost one wins
        if found is None:
            _say(
                ReloadError(
                    "relive.loop() is not a for loop's iterable", path=self._filename, lineno=line
                )
            )
            return None, None
        self._declared_globals = _globals_declared(_scope_node(tree, found[1].scope))
        return found

    def _find(self, tree: ast.Module) -> ast.For | None:
        for scope, call, index, node in _loops(tree):
            if _Address(scope, call, index) == self._address:
                return node
        return None

    def _changed(self) -> bool:
        """Whether the file now holds another body that compiles (then it is loaded)."""
        if self._interval:
            now = time.monotonic()
            if now < self._next_look:
                return False
            self._next_look = now + self._interval
        stat = fingerprint(self._filename)
        unchanged = stat == self._stat and (stat is None or not written_recently(stat[0]))
        if self._address is None or unchanged:
            return False
        data = read_bytes(self._filename)
        if being_written(self._filename) or fingerprint(self._filename) != stat:
            return False  # a save in progress: looked at again next time
        self._stat = stat
        if data is None or data == self._data:
            return False
        self._data = data
        try:
            tree = _parse_bytes(data, self._filename)
            node = self._find(tree)
            if node is None or _body_dump(node) == self._dump:
                return False
            body = self._compile(node)
            previous = self._body or (self._compile(self._node) if self._node else None)
        except SyntaxError as exc:
            line = (exc.text or _line(data, exc.lineno)).strip() or None
            message = f"loop body not reloaded: {exc.msg}"
            _say(ReloadError(message, path=self._filename, lineno=exc.lineno, line=line))
            return False
        self._body, self._previous = body, previous
        self._dump = _body_dump(node)
        return True

    # -- compiling the body ----------------------------------------------------------------

    def _compile(self, node: ast.For) -> types.FunctionType | types.CodeType:
        """The body as code: a function over the loop's variables, or module-level code."""
        _check_takeover(node)
        body = _BreakFlag().visit(ast.Module(node.body, type_ignores=[])).body
        once = ast.For(
            target=node.target,
            iter=ast.Tuple([ast.Name(_ITEM, ast.Load())], ast.Load()),
            body=body,
            orelse=[],
        )
        start: list[ast.stmt] = [_assign(_BROKE, ast.Constant(False))]
        if self._module_level:
            module = ast.Module([*start, once], type_ignores=[])
            return compile(_located(module, node), self._filename, "exec", dont_inherit=True)
        assert self._frame is not None
        function = self._function(node, [*start, once])
        code = compile(_located(function, node), self._filename, "exec", dont_inherit=True)
        namespace: dict[str, Any] = {}
        exec(code, self._frame.f_globals, namespace)
        cls = self._defining_class()
        make = namespace[_MAKE]
        compiled = make(cls) if cls is not None else make()
        assert isinstance(compiled, types.FunctionType)
        return compiled

    def _defining_class(self) -> type | None:
        """The class whose method runs the loop (what zero-argument ``super()`` needs)."""
        frame = self._frame
        if frame is None or self._address is None:
            return None
        if _CLASS in frame.f_code.co_freevars:  # the method uses super() already
            found = frame.f_locals.get(_CLASS)
            return found if isinstance(found, type) else None
        scope = self._address.scope
        owner: object = frame.f_globals.get(scope[0]) if len(scope) >= 2 else None
        for name in scope[1:-1]:
            owner = getattr(owner, name, None)
        if isinstance(owner, type) and scope[-1] in vars(owner):
            return owner
        return None

    def _function(self, node: ast.For, run: list[ast.stmt]) -> ast.Module:
        """A maker of the body as a function over the loop's variables::

        def make(__class__):            # in a method: zero-argument super() works
            if False: <variables> = None
            def body(self, ns):         # ``self``: the method's first argument
                nonlocal <variables>    # one cell each for every iteration: a closure
                <load them from ns>     # made in the body sees the live variable
                <run>
                return locals()
            return body
        """
        assert self._frame is not None
        code = self._frame.f_code
        declared = self._declared_globals
        names = set(code.co_varnames + code.co_cellvars + code.co_freevars)
        names |= _bound_names(node.body) | _bound_names([node.target])
        names -= declared | {_CLASS, self._first or ""}
        cells = sorted(name for name in names if not name.startswith(_PREFIX))
        head: list[ast.stmt] = [ast.Global(sorted(declared))] if declared else []
        head += [ast.Nonlocal(cells)] if cells else []
        loads = [_load(name) for name in sorted({*cells, _ITEM})]
        returned = ast.Return(ast.Call(ast.Name("locals", ast.Load()), [], []))
        params = [ast.arg(name) for name in (self._first, _NS) if name]
        arguments = ast.arguments([], params, None, [], [], None, [])
        body = ast.FunctionDef(_BODY, arguments, [*head, *loads, *run, returned], [], None)
        unbound = [_assign_all(cells)] if cells else []
        make_body: list[ast.stmt] = [*unbound, body, ast.Return(ast.Name(_BODY, ast.Load()))]
        method = self._defining_class() is not None
        outer = ast.arguments([], [ast.arg(_CLASS)] if method else [], None, [], [], None, [])
        return ast.Module([ast.FunctionDef(_MAKE, outer, make_body, [], None)], type_ignores=[])

    # -- running it ---------------------------------------------------------------------

    def _run_from(self, item: T) -> None:
        """Run this and every later iteration with the loaded body, then hand locals back."""
        frame = self._frame
        assert frame is not None
        namespace: dict[str, Any] = frame.f_globals if self._module_level else dict(frame.f_locals)
        try:
            while True:
                namespace = self._guarded(namespace, item)
                if namespace.pop(_BROKE, False):
                    return
                item = next(self._items)
                self._changed()
        except StopIteration:
            return
        finally:
            if not self._module_level:
                _write_locals(frame, namespace)

    def _guarded(self, namespace: dict[str, Any], item: object) -> dict[str, Any]:
        """One iteration; when an edited body raises, it is reported, the loop's variables
        are put back as they were, and the iteration runs again with the last good body
        (the failing one is not tried again until the file changes)."""
        before = dict(namespace)
        try:
            return self._iteration(namespace, item)
        except Exception as exc:
            previous, self._previous = self._previous, None
            if previous is None:
                raise  # the body that ran before any edit: the program's own error
            self._report(exc)
        if self._module_level:
            namespace.clear()
            namespace.update(before)
        self._body = previous
        return self._iteration(before if not self._module_level else namespace, item)

    def _report(self, exc: Exception) -> None:
        lineno, line = _where(exc, self._filename)
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        message = (
            f"loop body raised {what}; the iteration ran again with the previous body,"
            " which runs until the file changes"
        )
        _say(ReloadError(message, path=self._filename, lineno=lineno, line=line or None))

    def _iteration(self, namespace: dict[str, Any], item: object) -> dict[str, Any]:
        namespace[_ITEM] = item
        body = self._body
        if isinstance(body, types.CodeType):
            try:
                exec(body, namespace)
            finally:
                broke = namespace.get(_BROKE, False)
                for name in (_ITEM, _ONCE, _BROKE):
                    namespace.pop(name, None)
            namespace[_BROKE] = broke
            return namespace
        assert body is not None
        result = body(namespace[self._first], namespace) if self._first else body(namespace)
        assert isinstance(result, dict)
        kept = {
            name: value
            for name, value in result.items()
            if not name.startswith(_PREFIX) and name != _CLASS
        }
        kept[_BROKE] = result.get(_BROKE, False)
        return kept


# -- source helpers ------------------------------------------------------------------------


def _parse_bytes(data: bytes, filename: str) -> ast.Module:
    """The tree of ``data``; raises SyntaxError (or ValueError for NUL bytes)."""
    try:
        return ast.parse(data, filename)
    except ValueError as exc:
        raise SyntaxError(str(exc)) from exc


def _parse(filename: str, *, strict: bool = False) -> ast.Module | None:
    """The file's tree; None if it cannot be read (or parsed, unless ``strict``)."""
    data = read_bytes(filename)
    if data is None:
        return None
    try:
        return ast.parse(data, filename)
    except (SyntaxError, ValueError):
        if strict:
            raise
        return None


def _loops(tree: ast.Module) -> Iterator[tuple[tuple[str, ...], str, int, ast.For]]:
    """Every ``for`` over a call, with its scope, its callee and its rank among the same."""
    counts: dict[tuple[tuple[str, ...], str], int] = {}

    def visit(
        node: ast.AST, scope: tuple[str, ...]
    ) -> Iterator[tuple[tuple[str, ...], str, int, ast.For]]:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, _SCOPES) and not isinstance(child, ast.Lambda):
                inner = (*scope, child.name)
            if isinstance(child, ast.For) and isinstance(child.iter, ast.Call):
                call = ast.dump(child.iter.func)
                index = counts.get((scope, call), 0)
                counts[(scope, call)] = index + 1
                yield scope, call, index, child
            yield from visit(child, inner)

    yield from visit(tree, ())


def _body_dump(node: ast.For) -> str:
    return ast.dump(ast.Module([*node.body], type_ignores=[])) + ast.dump(node.target)


def _check_takeover(node: ast.For) -> None:
    """Raise SyntaxError for what a body run outside its function cannot do."""
    if node.orelse:
        raise SyntaxError("a live loop cannot have an else clause", (None, node.lineno, 0, ""))
    for child in _walk_own(node.body):
        if isinstance(child, ast.Return | ast.Yield | ast.YieldFrom | ast.Await):
            what = type(child).__name__.lower().replace("from", " from")
            raise SyntaxError(
                f"'{what}' in a live loop's body cannot be reloaded", (None, child.lineno, 0, "")
            )


def _walk_own(nodes: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """``nodes`` and what they hold, not descending into nested functions or classes."""
    pending: list[ast.AST] = list(nodes)
    while pending:
        node = pending.pop()
        yield node
        if not isinstance(node, _SCOPES):
            pending.extend(ast.iter_child_nodes(node))


def _bound_names(nodes: Iterable[ast.AST]) -> set[str]:
    names: set[str] = set()
    for node in _walk_own(nodes):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return {name for name in names if not name.startswith(_PREFIX)}


def _globals_declared(scope: ast.AST | None) -> set[str]:
    """Names the loop's function declares global (assigning them must not make them local)."""
    if not isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
        return set()
    return {
        name
        for child in _walk_own(scope.body)
        if isinstance(child, ast.Global)
        for name in child.names
    }


def _scope_node(tree: ast.Module, scope: tuple[str, ...]) -> ast.AST | None:
    """The function (or class) that ``scope`` names, or the module."""
    node: ast.AST | None = tree
    for name in scope:
        body = getattr(node, "body", [])
        node = next(
            (
                child
                for child in _walk_own(body)
                if isinstance(child, _SCOPES[:3]) and child.name == name
            ),
            None,
        )
    return node


class _BreakFlag(ast.NodeTransformer):
    """``break`` of the live loop → set a flag, then break out of the one-shot loop."""

    def visit_Break(self, node: ast.Break) -> list[ast.stmt]:
        return [_assign(_BROKE, ast.Constant(True)), node]

    def visit_For(self, node: ast.For) -> ast.AST:
        # A break in its body is its own; one in its else clause is the live loop's.
        node.orelse = self.visit(ast.Module(node.orelse, type_ignores=[])).body
        return node

    visit_While = visit_For  # type: ignore[assignment]
    visit_AsyncFor = visit_For  # type: ignore[assignment]

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]
    visit_ClassDef = visit_FunctionDef  # type: ignore[assignment]


def _first_argument(code: types.CodeType) -> str | None:
    """The first parameter of the loop's function (a method's ``self``), if it has one."""
    if code.co_name == "<module>" or not code.co_argcount:
        return None
    return code.co_varnames[0]


def _where(exc: BaseException, filename: str) -> tuple[int | None, str]:
    """The innermost line of ``filename`` in the traceback, and its text."""
    lineno: int | None = None
    for frame, line in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == filename:
            lineno = line
    text = linecache.getline(filename, lineno).strip() if lineno is not None else ""
    return lineno, text


def _assign_all(names: list[str]) -> ast.stmt:
    """``if False: a = b = None``: the names are the maker's variables, unbound at first."""
    targets: list[ast.expr] = [ast.Name(name, ast.Store()) for name in names]
    return ast.If(ast.Constant(False), [ast.Assign(targets, ast.Constant(None))], [])


def _assign(name: str, value: ast.expr) -> ast.stmt:
    return ast.Assign([ast.Name(name, ast.Store())], value)


def _load(name: str) -> ast.stmt:
    """``if "name" in ns: name = ns["name"]`` (absent names stay unbound)."""
    key = ast.Constant(name)
    found = ast.Compare(key, [ast.In()], [ast.Name(_NS, ast.Load())])
    value = ast.Subscript(ast.Name(_NS, ast.Load()), key, ast.Load())
    return ast.If(found, [_assign(name, value)], [])


def _located(tree: ast.Module, node: ast.For) -> ast.Module:
    """Give the generated statements the ``for`` line; the body keeps its own lines."""
    for child in ast.walk(tree):
        if "lineno" in child._attributes and not hasattr(child, "lineno"):
            child.lineno, child.col_offset = node.lineno, node.col_offset  # type: ignore[attr-defined]
            child.end_lineno, child.end_col_offset = node.lineno, node.col_offset  # type: ignore[attr-defined]
    return tree


def _write_locals(frame: types.FrameType, namespace: dict[str, Any]) -> None:
    """Hand the loop's variables back to the function that runs it."""
    namespace = {name: value for name, value in namespace.items() if not name.startswith(_PREFIX)}
    if sys.version_info >= (3, 13):
        frame.f_locals.update(namespace)  # a write-through proxy (PEP 667)
        return
    current = frame.f_locals  # a snapshot: written back to the frame below
    current.update(namespace)
    ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))
