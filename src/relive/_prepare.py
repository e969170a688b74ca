"""A changed module, parsed, planned and compiled before anything is applied.

Between the diff and the patcher: everything that can fail without touching the running
program (syntax errors, edits that need a restart) fails here.
"""

from __future__ import annotations
import __future__

import ast
import copy
import types
from collections.abc import Sequence
from dataclasses import dataclass, field

from relive._diff import Action, BodyPlan, Step, plan_module
from relive._errors import ReloadError, RestartRequired
from relive._reparse import edit_region, source_lines
from relive._sources import StatKey, stat_key
from relive._statements import (
    FUTURE_IMPORT,
    Lines,
    Statement,
    analyze_body,
    future_flags,
    imported_at_top,
    leading_future_flags,
    names_read,
)
from relive._tracker import TrackedModule, imported_names

__all__ = ["CodeCache", "Prepared", "prepare", "restart_required", "source_line"]


class CodeCache:
    """Compiles the statements a plan needs, each once, as a fresh import compiles them:
    with the module's future flags, and knowing the names its imports bind at the top
    level (``imported``: the compiler compiles ``m.f()`` on such a name as an attribute
    call, on another as a method call)."""

    def __init__(self, filename: str, flags: int, imported: frozenset[str] = frozenset()) -> None:
        self.filename = filename
        self.flags = flags
        self.imported = imported
        self._codes: dict[tuple[int, str], types.CodeType] = {}

    def compile_nodes(self, nodes: list[ast.stmt], *, run: bool = True) -> types.CodeType:
        """The module code of ``nodes``, whose nested code (functions, classes, lambdas,
        comprehensions) is compiled knowing the module's imports. The code that runs
        (``run``) is compiled without them: their names would be its names too."""
        code = self._plain(nodes) if run or not self.imported else None
        if not self.imported or (code is not None and not _has_nested(code)):
            assert code is not None
            return code
        guard = ast.If(
            test=ast.Constant(0),
            body=[ast.Import(names=[ast.alias(name=name) for name in sorted(self.imported)])],
            orelse=[],
        )
        located = ast.fix_missing_locations(ast.copy_location(guard, nodes[0]))
        guarded = self._plain([located, *nodes])
        if code is None:
            return guarded
        nested = iter([const for const in guarded.co_consts if type(const) is types.CodeType])
        consts = tuple(
            next(nested) if type(const) is types.CodeType else const for const in code.co_consts
        )
        return code.replace(co_consts=consts)

    def _plain(self, nodes: list[ast.stmt]) -> types.CodeType:
        module = ast.Module(body=nodes, type_ignores=[])
        code: types.CodeType = compile(
            module, self.filename, "exec", flags=self.flags, dont_inherit=True
        )
        return code

    def statement(self, node: ast.stmt) -> types.CodeType:
        """Code that executes ``node`` as a top-level statement."""
        key = (id(node), "statement")
        if key not in self._codes:
            # A string alone would be compiled as a module docstring, stored in __doc__.
            docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            prefix: list[ast.stmt] = [ast.copy_location(ast.Pass(), node)] if docstring else []
            self._codes[key] = self.compile_nodes([*prefix, node])
        return self._codes[key]

    def bare(self, node: ast.stmt) -> types.CodeType:
        """Code that defines the function ``node`` without applying its decorators."""
        key = (id(node), "bare")
        if key not in self._codes:
            stripped = copy.copy(node)
            decorators: list[ast.expr] = getattr(node, "decorator_list", [])
            # The function's first line stays its first decorator's, as the compiler has it.
            stripped.lineno = min([node.lineno, *(d.lineno for d in decorators)])
            stripped.decorator_list = []  # type: ignore[attr-defined]
            self._codes[key] = self.compile_nodes([stripped])
        return self._codes[key]

    def decorators(self, node: ast.stmt) -> list[types.CodeType]:
        """Code evaluating each decorator expression of ``node``, top to bottom."""
        return [
            compile(
                ast.Expression(body=decorator),
                self.filename,
                "eval",
                flags=self.flags,
                dont_inherit=True,
            )
            for decorator in getattr(node, "decorator_list", ())
        ]

    def function(self, node: ast.stmt, chain: Sequence[ast.ClassDef] = ()) -> types.CodeType:
        """The code object of function ``node`` (a method of the classes in ``chain``)."""
        key = (id(node), "function")
        if key not in self._codes:
            wrapped: ast.stmt = node
            for cls in reversed(chain):
                skeleton = ast.ClassDef(
                    name=cls.name, bases=[], keywords=[], body=[wrapped], decorator_list=[]
                )
                wrapped = ast.copy_location(skeleton, cls)
            names = [cls.name for cls in chain]
            qualname = ".".join([*names, getattr(node, "name", "")])
            code = _nested_code(self.compile_nodes([wrapped], run=False), qualname)
            if code is None:  # pragma: no cover - the compiler always emits it
                raise LookupError(f"no code for {qualname}")
            self._codes[key] = code
        return self._codes[key]


def _has_nested(code: types.CodeType) -> bool:
    return any(type(const) is types.CodeType for const in code.co_consts)


def _nested_code(code: types.CodeType, qualname: str) -> types.CodeType | None:
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            if const.co_qualname == qualname:
                return const
            found = _nested_code(const, qualname)
            if found is not None:
                return found
    return None


@dataclass
class Prepared:
    """A changed module, parsed, planned and compiled, ready to apply."""

    tracked: TrackedModule
    source: str
    lines: list[str]
    statements: list[Statement]
    plan: BodyPlan
    flags: int
    stat: StatKey | None = None
    old: list[Statement] = field(default_factory=list)  # the statements the plan's steps continue
    codes: CodeCache = field(init=False)
    early_removal: frozenset[str] = field(init=False)  # removed names the new code reads
    imports: frozenset[str] = field(init=False)  # the modules the new source imports
    docstring: str | None = None  # the module's, for __doc__
    docstring_changed: bool = True  # whether the docstring literal differs from the old one

    def __post_init__(self) -> None:
        self.codes = CodeCache(self.tracked.filename, self.flags, imported_at_top(self.statements))
        self.imports = imported_names(self.source, self.tracked.package)
        removed = self.plan.removed
        if removed:  # only a statement whose text has the name can read it
            reading = (statement for statement in self.statements if statement.mentions(removed))
            self.early_removal = removed & names_read(reading)
        else:
            self.early_removal = removed
        self.stat = self._read_at()

    def _read_at(self) -> StatKey | None:
        """The file status this source was read at (None: unknown, so the next check
        compares content). A text given rather than read (``apply_sources``) takes the
        file's status now, as the file holds what the caller says it holds."""
        read = self.tracked.read
        if read is not None and read[0] is self.source:
            return read[1]
        try:
            return stat_key(self.tracked.path)
        except OSError:
            return None

    def compile_all(self) -> None:
        """Compile every statement the plan will run, so syntax errors surface first."""
        for step in self.plan.steps:
            _compile_step(self.codes, step, ())


def _compile_step(codes: CodeCache, step: Step, chain: tuple[ast.ClassDef, ...]) -> None:
    if step.action is Action.KEEP:
        return  # nothing runs (and a statement that moved has no tree until asked)
    node = step.new.node
    if step.action in (Action.EXECUTE, Action.DEFINE):
        codes.statement(node)
    elif step.action is Action.PATCH_BODY:
        codes.function(node, chain)
    elif step.action in (Action.PATCH_FUNCTION, Action.REDEFINE):
        codes.bare(node)
        codes.decorators(node)
    elif step.action is Action.PATCH_CLASS and step.cls is not None:
        assert isinstance(node, ast.ClassDef)
        if step.cls.rebuild or chain:
            codes.statement(node) if not chain else None
        if not step.cls.rebuild:
            for inner in step.cls.body.steps:
                _compile_step(codes, inner, (*chain, node))


def prepare(tracked: TrackedModule, source: str) -> Prepared:
    """Parse, diff and compile one changed module.

    Only the top-level statements the edit touched are parsed and diffed (see
    :func:`~relive._reparse.edit_region`), unless the edit touches an import statement
    (what every statement reads depends on the imports) or the new chunk does not parse.

    Raises:
        ReloadError: A syntax error.
        RestartRequired: The edit cannot be applied in place.
    """
    old = tracked.statements() if tracked.source is not None else []
    lines = source_lines(source)
    partial = _partial(tracked, old, source) if old and tracked.source is not None else None
    if partial is not None:
        statements, plan, used = partial
        flags = leading_future_flags(statements)
        docstring = _docstring(statements)
    else:
        try:
            tree = ast.parse(source, tracked.path)
        except SyntaxError as exc:
            raise _syntax_error(exc, tracked) from exc
        statements = analyze_body(
            tree.body, lines, module=tracked.name, package=tracked.package, previous=old
        )
        plan, used = plan_module(old, statements), old
        flags, docstring = future_flags(tree), ast.get_docstring(tree, clean=False)
    misplaced = misplaced_future(statements, source)
    if misplaced is not None:
        raise ReloadError(
            "SyntaxError: from __future__ imports must occur at the beginning of the file",
            path=tracked.path,
            lineno=misplaced.lineno,
            line=source_line(lines, misplaced.lineno),
            module=tracked.name,
        )
    if plan.restart_reasons:
        lineno, why = plan.restart_reasons[0]
        raise restart_required(why, tracked, lineno, lines)
    if old and _futures_changed(tracked, old, flags):
        # Every function and annotation of the module compiles differently under other
        # future flags; statements whose text did not change would keep their old code.
        raise restart_required("the module's `from __future__` imports changed", tracked, 1, lines)
    item = Prepared(tracked, source, lines, statements, plan, flags, old=used)
    item.docstring = docstring
    # A module may set __doc__ itself (``__doc__ = ...``): it is left alone unless the
    # docstring literal changed.
    item.docstring_changed = tracked.source is None or item.docstring != _docstring(old)
    try:
        item.compile_all()
    except SyntaxError as exc:
        raise _syntax_error(exc, tracked) from exc
    return item


def misplaced_future(statements: Sequence[Statement], source: str) -> Statement | None:
    """The first ``from __future__`` import that a fresh import would refuse (one that
    follows anything but the module's docstring), or None.

    The parser accepts such a file; only the compiler of the whole module refuses it, and
    relive compiles statements one at a time, so the rule is checked here.
    """
    if "__future__" not in source:
        return None
    allowed = True
    for index, statement in enumerate(statements):
        if FUTURE_IMPORT.match(statement.text):
            if not allowed:
                return statement
        elif not (index == 0 and _is_docstring(statement)):
            allowed = False
    return None


def _futures_changed(tracked: TrackedModule, old: Sequence[Statement], flags: int) -> bool:
    if tracked.source is None or ("__future__" not in tracked.source and not flags):
        return False
    return (leading_future_flags(old) ^ flags) & _EFFECTIVE_FUTURES != 0


# The future features that still change how code compiles (the others are the default).
_EFFECTIVE_FUTURES = __future__.annotations.compiler_flag | __future__.barry_as_FLUFL.compiler_flag


def _is_docstring(statement: Statement) -> bool:
    if statement.text.lstrip("rRbBuU")[:1] not in ("'", '"'):
        return False
    node = statement.node
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _partial(
    tracked: TrackedModule, old: list[Statement], source: str
) -> tuple[list[Statement], BodyPlan, list[Statement]] | None:
    """The new statements, the plan and the old statements it pairs them with, from the
    statements the edit touched alone (None: the whole module must be analysed)."""
    assert tracked.source is not None
    spans = [(statement.lineno, statement.last) for statement in old]
    region = edit_region(tracked.source, source, spans, tracked.path)
    if region is None or _has_import(region.old_nodes) or _has_import(region.new_nodes):
        return None
    name, package, scope = tracked.name, tracked.package, old[0].scope
    was = analyze_body(
        region.old_nodes,
        Lines(region.start, region.old_lines),
        module=name,
        package=package,
        previous=old[region.lo : region.hi],
        scope=scope,
    )
    now = analyze_body(
        region.new_nodes,
        Lines(region.start, region.new_lines),
        module=name,
        package=package,
        previous=was,
        scope=scope,
    )
    before, after = old[: region.lo], old[region.hi :]
    moved = [statement.moved(region.shift) for statement in after] if region.shift else after
    chunk = plan_module(was, now)
    removed = chunk.removed
    if removed:  # still bound by a statement the edit did not touch?
        removed = removed - frozenset().union(*(s.binds for s in (*before, *after)))
    steps = (
        *(Step(Action.KEEP, statement, statement) for statement in before),
        *chunk.steps,
        *(Step(Action.KEEP, new, was_) for new, was_ in zip(moved, after, strict=True)),
    )
    plan = BodyPlan(steps, removed, chunk.restart_reasons, chunk.dropped)
    return [*before, *now, *moved], plan, [*before, *was, *after]


def _has_import(nodes: Sequence[ast.stmt]) -> bool:
    return any(isinstance(node, (ast.Import, ast.ImportFrom)) for node in nodes)


def _docstring(statements: Sequence[Statement]) -> str | None:
    """The docstring of a module whose top-level statements are ``statements``."""
    if not statements or statements[0].text.lstrip("rRbBuU")[:1] not in ("'", '"'):
        return None
    return ast.get_docstring(ast.Module(body=[statements[0].node], type_ignores=[]), clean=False)


def _syntax_error(exc: SyntaxError, tracked: TrackedModule) -> ReloadError:
    return ReloadError(
        f"SyntaxError: {exc.msg}",
        path=tracked.path,
        lineno=exc.lineno,
        line=(exc.text or "").strip() or None,
        module=tracked.name,
    )


def restart_required(
    why: str, tracked: TrackedModule, lineno: int, lines: list[str]
) -> RestartRequired:
    """The error for an edit of ``tracked`` at ``lineno`` that cannot be applied in place."""
    return RestartRequired(
        f"{why}: this edit cannot be applied in place",
        path=tracked.path,
        lineno=lineno,
        line=source_line(lines, lineno),
        module=tracked.name,
    )


def source_line(lines: list[str], lineno: int) -> str | None:
    """Line ``lineno`` (1-based) of ``lines``, stripped; None when out of range."""
    return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else None
