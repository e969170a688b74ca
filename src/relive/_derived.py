"""Which names of a module depend on changed code, through what their code reads.

A fresh import computes ``D = f(10)`` with ``f`` as it is now, and ``f`` with whatever it
calls: a top-level statement is run again when a name it reads was rebound, or is a
function or class whose code changed or reads (directly or through other functions and
classes of the module, or another module's changed names) something that changed.
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
    "Dependencies",
    "cached_functions",
    "called_keys",
    "code_names",
    "is_cached",
    "same_outer_code",
    "stale_caches",
    "top_level_mentions",
]

Key = tuple[str, str]
_LRU = type(functools.lru_cache(lambda: None))


class Dependencies:
    """What changed in one module's run, and what depends on it there.

    Args:
        namespace: The module's namespace.
        filename: Its code objects' file name (functions defined there are its own).
        foreign: ``(module, name)`` of other modules whose code or binding changed.
    """

    def __init__(self, namespace: dict[str, Any], filename: str, foreign: set[Key]) -> None:
        self.namespace = namespace
        self.filename = filename
        self.foreign = foreign
        self._foreign_names = {name for _, name in foreign}
        self._memo: dict[str, bool] = {}
        self._state: tuple[int, int] = (0, 0)

    def reads_changed(
        self,
        uses: Iterable[Key],
        calls: frozenset[Key],
        changed: set[str],
        rebound: set[str],
    ) -> bool:
        """Whether a statement reading ``uses`` and calling ``calls`` depends on changed
        code: it calls a function whose code changed (or calls, or reads, something that
        did), or reads a class a member of which was replaced (``len(E)``, ``C.K``).
        Instances made from a class whose methods were patched keep their state."""
        for module, name in uses:
            if module:
                if (module, name) in self.foreign and (module, name) in calls:
                    return True
                continue
            value = self.namespace.get(name)
            if issubclass(type(value), type):
                prefix = name + "."
                if any(bound.startswith(prefix) for bound in rebound):
                    return True
            elif ("", name) in calls and self.depends(name, changed, rebound):
                return True
        return False

    def depends(self, name: str, changed: set[str], rebound: set[str]) -> bool:
        """Whether ``name`` is changed, or its code reads something that is."""
        state = (len(changed), len(rebound))
        if state != self._state:
            self._memo.clear()
            self._state = state
        return self._depends(name, changed, rebound, set())

    def _depends(self, name: str, changed: set[str], rebound: set[str], seen: set[str]) -> bool:
        known = self._memo.get(name)
        if known is not None:
            return known
        if name in changed or name in rebound or name in self._foreign_names:
            self._memo[name] = True
            return True
        if "." in name:
            self._memo[name] = False
            return False
        if name in seen:
            return False  # a cycle: decided by the other names on it
        seen.add(name)
        result = False
        value = self.namespace.get(name)
        for read in self._reads(value):
            target = self.namespace.get(read)
            if issubclass(type(target), types.ModuleType):
                # ``a.K`` in the code: K of module a, if it changed there.
                names = code_names_of(value, self.filename)
                module = types.ModuleType.__getattribute__(target, "__name__")
                if any((module, other) in self.foreign for other in names):
                    result = True
                    break
            elif read in self.namespace and self._depends(read, changed, rebound, seen):
                result = True
                break
        self._memo[name] = result
        return result

    def _reads(self, value: object) -> frozenset[str]:
        if issubclass(type(value), types.ModuleType):
            return frozenset()
        return code_names_of(value, self.filename)


def code_names_of(value: object, filename: str) -> frozenset[str]:
    """The global names the code behind ``value`` (a function of ``filename``, a class
    defined there, a decorator's wrapper) reads."""
    names: set[str] = set()
    for code in _codes(value, filename, 0):
        names |= code_names(code)
    return frozenset(names)


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


def _codes(value: object, filename: str, depth: int) -> Iterator[types.CodeType]:
    """The code objects behind ``value``: types are checked with ``type()`` only (a
    namespace may hold proxies whose attributes raise, as Flask's ``request`` does)."""
    kind = type(value)
    if depth > 4:
        return
    if kind is types.FunctionType:
        code = value.__code__  # type: ignore[attr-defined]
        if code.co_filename == filename:
            yield code
        return
    if issubclass(kind, type):
        if depth > 1:
            return
        for member in list(value.__dict__.values()):
            yield from _codes(member, filename, depth + 1)
        return
    if kind is property:
        for accessor in (value.fget, value.fset, value.fdel):  # type: ignore[attr-defined]
            yield from _codes(accessor, filename, depth + 1)
        return
    if kind in (staticmethod, classmethod):
        yield from _codes(value.__func__, filename, depth + 1)  # type: ignore[attr-defined]
        return
    if kind is _LRU or kind is functools.partial:
        inner = value.__wrapped__ if kind is _LRU else value.func  # type: ignore[attr-defined]
        yield from _codes(inner, filename, depth + 1)


def is_cached(value: object) -> bool:
    """Whether ``value`` is a ``functools.lru_cache`` wrapper."""
    return type(value) is _LRU


def cached_functions(namespace: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """The ``functools.lru_cache`` wrappers bound at the top of a namespace."""
    for name, value in list(namespace.items()):
        if type(value) is _LRU:
            yield name, value


def stale_caches(namespace: dict[str, Any], filename: str, names: set[str]) -> Iterator[Any]:
    """The ``lru_cache`` wrappers of an importer whose function reads one of ``names``
    (changed or rebound in a module it imports): their results are out of date."""
    for _, cache in cached_functions(namespace):
        if not names.isdisjoint(code_names_of(cache, filename)):
            yield cache


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
        if line[:1].isidentifier():
            return True  # a statement at column 0 (not a def: its name is not called)
        bodies = function_bodies(source) if bodies is None else bodies
        index = bisect.bisect_right(bodies, (match.start(), sys.maxsize)) - 1
        if index < 0 or not bodies[index][0] <= match.start() < bodies[index][1]:
            return True
    return False


def called_keys(node: ast.AST, aliases: dict[str, str]) -> frozenset[Key]:
    """What a statement calls while it runs: ``("", f)`` for ``f(...)``, ``(module, f)``
    for ``m.f(...)`` where ``m`` is imported as ``module`` (function bodies skipped)."""
    key = (id(node), tuple(aliases.items()))
    cached = _CALLED.get(key)
    if cached is None or cached[0] is not node:
        cached = _CALLED[key] = (node, _called_keys(node, aliases))
        if len(_CALLED) > 8192:
            _CALLED.clear()
    return cached[1]


_CALLED: dict[tuple[int, tuple[tuple[str, str], ...]], tuple[ast.AST, frozenset[Key]]] = {}


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
        stack.extend(ast.iter_child_nodes(current))
    return frozenset(keys)


def same_outer_code(old: types.CodeType, new: types.CodeType) -> bool:
    """Whether two versions of a function differ only in the functions nested in them."""
    return (
        old.co_code == new.co_code
        and old.co_names == new.co_names
        and old.co_varnames == new.co_varnames
        and _plain_consts(old) == _plain_consts(new)
    )


def _plain_consts(code: types.CodeType) -> list[object]:
    return [
        const.co_qualname if isinstance(const, types.CodeType) else const
        for const in code.co_consts
    ]
