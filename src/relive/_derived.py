"""What the text and code of a statement say it reads and calls: the syntax-level half of
following derived values (``_stale`` judges the live objects).

A fresh import computes ``D = f(10)`` with ``f`` as it is now: the names a function's code
reads, the calls a top-level statement makes (functions, ``m.f()``, methods), and a quick
text test of whether a module's top-level code mentions a name at all.
"""

from __future__ import annotations

import ast
import bisect
import functools
import re
import sys
import types
from collections.abc import Iterable, Iterator
from typing import Any

from relive._tracker import function_bodies

__all__ = [
    "attributes_set",
    "cached_functions",
    "called_keys",
    "code_names",
    "only_called",
    "outside_functions",
    "top_level_mentions",
]

Key = tuple[str, str]
_LRU = type(functools.lru_cache(lambda: None))


def code_names(code: types.CodeType) -> frozenset[str]:
    """``co_names`` of ``code`` and of the code nested in it (closures, comprehensions).

    Not cached by code object: a cache holding old code objects would make the patcher
    believe the program still holds them, and walk the heap to find them, every reload.
    """
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= code_names(const)
    return frozenset(names)


def cached_functions(namespace: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """The ``functools.lru_cache`` wrappers bound at the top of a namespace."""
    for name, value in list(namespace.items()):
        if type(value) is _LRU:
            yield name, value


def top_level_mentions(source: str, names: Iterable[str]) -> bool:
    """Whether one of ``names`` occurs in ``source`` outside function bodies and import
    lines (where a top-level statement could use it): a quick test before a parse."""
    found = [name for name in names if name in source]
    if not found:
        return False
    bodies: list[tuple[int, int]] | None = None
    pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, sorted(found))) + r")\b")
    for match in pattern.finditer(source):
        start = source.rfind("\n", 0, match.start()) + 1
        line = source[start : source.find("\n", match.start())]
        if line.lstrip().startswith(("import ", "from ")):
            continue
        defined = _DEFINES.match(line)
        if defined is not None and start + defined.start(1) == match.start():
            continue  # the name a ``def`` or ``class`` defines: not a use
        if line[:1].isidentifier():
            return True  # a statement at column 0 (not a def: its name is not called)
        bodies = function_bodies(source) if bodies is None else bodies
        index = bisect.bisect_right(bodies, (match.start(), sys.maxsize)) - 1
        if index < 0 or not bodies[index][0] <= match.start() < bodies[index][1]:
            return True
    return False


_DEFINES = re.compile(r"\s*(?:async\s+)?(?:def|class)\s+(\w+)")


def called_keys(node: ast.AST, aliases: dict[str, str]) -> frozenset[Key]:
    """What a statement calls while it runs: ``("", f)`` for ``f(...)``, ``(module, f)``
    for ``m.f(...)`` where ``m`` is imported as ``module``, ``(".", f)`` for a method
    ``x.f(...)`` of anything else (function bodies skipped).

    Memoized on the node (relive's own trees, never the program's): a table of its own
    would keep the trees of statements that are let go of alive.
    """
    key = tuple(aliases.items())
    cached: tuple[tuple[tuple[str, str], ...], frozenset[Key]] | None = getattr(
        node, "_relive_called", None
    )
    if cached is None or cached[0] != key:
        cached = (key, _called_keys(node, aliases))
        node._relive_called = cached  # type: ignore[attr-defined]
    return cached[1]


def _called_keys(node: ast.AST, aliases: dict[str, str]) -> frozenset[Key]:
    keys: set[Key] = set()
    stack: list[ast.AST] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(current, ast.Call):
            func = current.func
            if isinstance(func, ast.Name):
                keys.add(("", func.id))
            elif isinstance(func, ast.Attribute):
                parts = [func.attr]
                value = func.value
                while isinstance(value, ast.Attribute):
                    parts.append(value.attr)
                    value = value.value
                if isinstance(value, ast.Name) and value.id in aliases:
                    dotted = [aliases[value.id], *reversed(parts)]
                    keys.add((".".join(dotted[:-1]), dotted[-1]))
                if not (isinstance(value, ast.Name) and value.id in aliases and len(parts) == 1):
                    keys.add((".", func.attr))  # a method: ``obj.make()``, ``C().build()``
        stack.extend(ast.iter_child_nodes(current))
    return frozenset(keys)


def only_called(node: ast.AST, aliases: dict[str, str]) -> frozenset[Key]:
    """The keys (as :func:`called_keys` names them: ``("", C)``, ``(module, C)``) of what
    a statement only calls, never reads otherwise (``p = Plugin()``, not ``len(E)`` nor
    ``E.K``): a class among them is judged by the code its construction runs."""
    called: set[Key] = set()
    other: set[Key] = set()
    stack: list[ast.AST] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(current, ast.Call):
            key = _dotted_key(current.func, aliases)
            if key is not None:
                called.add(key)
                stack.extend([*current.args, *current.keywords])
                continue
        elif isinstance(current, (ast.Name, ast.Attribute)):
            key = _dotted_key(current, aliases)
            if key is not None:
                other.add(key)
        stack.extend(ast.iter_child_nodes(current))
    return frozenset(called - other)


def _dotted_key(node: ast.AST, aliases: dict[str, str]) -> Key | None:
    """``("", name)`` for a name, ``(module, attr)`` for ``m.attr`` of an imported module."""
    if isinstance(node, ast.Name):
        return ("", node.id)
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if parts and isinstance(node, ast.Name) and node.id in aliases:
        dotted = [aliases[node.id], *reversed(parts)]
        return (".".join(dotted[:-1]), dotted[-1])
    return None


def attributes_set(nodes: Iterable[ast.AST], name: str) -> set[str] | None:
    """The attributes of ``name`` the statements ``nodes`` set (``name.attr = ...``,
    ``setattr(name, "attr", ...)``); None if one reaches its ``__dict__`` or sets an
    attribute named at run time (then any may be theirs)."""
    found: set[str] = set()
    for statement in nodes:
        for node in outside_functions(statement):
            if isinstance(node, ast.Attribute) and _is_name(node.value, name):
                if node.attr == "__dict__":
                    return None
                if isinstance(node.ctx, ast.Store):
                    found.add(node.attr)
            elif (
                isinstance(node, ast.Call)
                and _is_name(node.func, "setattr")
                and node.args
                and _is_name(node.args[0], name)
            ):
                attribute = node.args[1] if len(node.args) > 1 else None
                if not isinstance(attribute, ast.Constant):
                    return None
                found.add(str(attribute.value))
    return found


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def outside_functions(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a statement that run with it: function and lambda bodies left out."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        yield current
        stack.extend(ast.iter_child_nodes(current))
