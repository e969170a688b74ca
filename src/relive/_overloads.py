"""``typing.get_overloads`` after an edit: what a fresh import's registry would hold.

``@typing.overload`` files each stub under its module, qualified name and first line, in
one registry of the ``typing`` module. Lines move, stubs are edited, added and removed:
the entries of a module a transaction visited are rebuilt at commit from its text as it
is now (each ``@overload`` definition's object, in the order of the file), and a
rolled-back transaction puts them back as they were.
"""

from __future__ import annotations

import ast
import re
import sys
import types
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["Overloads", "overload_positions"]

_Entries = dict[str, dict[int, Any]]  # qualified name -> first line -> stub
_DECORATOR = re.compile(r"^[ \t]*@[ \t]*(?:[\w.]+\.)?overload\b", re.MULTILINE)


def _registry() -> Any:
    typing = sys.modules.get("typing")
    return getattr(typing, "_overload_registry", None)


class Overloads:
    """The overload entries of the modules one transaction visits, as they were."""

    def __init__(self) -> None:
        self._saved: dict[str, _Entries] = {}
        self._codes: dict[int, types.CodeType] = {}  # each stub's code when first seen
        self._decorators: dict[str, int] = {}  # ``@...overload`` lines of the text before

    @property
    def visited(self) -> set[str]:
        """The modules visited so far."""
        return set(self._saved)

    def visit(self, module: str, source: str | None = None) -> None:
        """Record ``module``'s entries before the transaction runs any of its code
        (``source``: its text as last applied, if known)."""
        if module in self._saved:
            return
        if source is not None:
            self._decorators[module] = len(_DECORATOR.findall(source))
        registry = _registry()
        entries = registry.get(module) if registry is not None else None
        saved = {name: dict(stubs) for name, stubs in (entries or {}).items()}
        self._saved[module] = saved
        for stubs in saved.values():
            for stub in stubs.values():
                code = getattr(stub, "__code__", None)
                if isinstance(code, types.CodeType):
                    self._codes[id(stub)] = code

    def rollback(self) -> None:
        """Every visited module's entries as they were."""
        registry = _registry()
        if registry is not None:
            for module, saved in self._saved.items():
                _store(registry, module, saved)
        self._saved.clear()

    def commit(self, sources: Mapping[str, str | None]) -> None:
        """Rebuild the entries of every visited module from its text as it is now (unless
        nothing an overload is made of changed: a wide module is not parsed for nothing)."""
        registry = _registry()
        if registry is None:
            return
        for module, saved in self._saved.items():
            current = registry.get(module)
            source = sources.get(module)
            if not (current or saved) or source is None:
                continue
            if self._unchanged(module, saved, current or {}, source):
                continue
            _store(registry, module, self._rebuilt(source, saved, current or {}))
        self._saved.clear()

    def _unchanged(
        self, module: str, saved: _Entries, current: Mapping[str, Any], source: str
    ) -> bool:
        """The same stubs under the same keys, each still at its key's line, and as many
        ``@...overload`` decorators in the text as when the module was visited."""
        if self._decorators.get(module) != len(_DECORATOR.findall(source)):
            return False
        if saved.keys() != current.keys():
            return False
        for name, stubs in saved.items():
            now = current[name]
            if now.keys() != stubs.keys() or any(now[line] is not stubs[line] for line in stubs):
                return False
            for line, stub in stubs.items():
                code = getattr(stub, "__code__", None)
                if not isinstance(code, types.CodeType) or code.co_firstlineno != line:
                    return False
        return True

    def _rebuilt(self, source: str, saved: _Entries, current: Mapping[str, Any]) -> _Entries:
        """Each ``@overload`` definition of ``source``'s stub, among what the registry
        held before and holds now (by qualified name and first line, the new line)."""
        if "overload" not in source:
            return {}
        candidates: dict[tuple[str, int], list[Any]] = {}
        for stubs in (*saved.values(), *current.values()):
            for stub in stubs.values():
                code = getattr(stub, "__code__", None)
                if isinstance(code, types.CodeType):
                    key = (getattr(stub, "__qualname__", ""), code.co_firstlineno)
                    found = candidates.setdefault(key, [])
                    if all(other is not stub for other in found):
                        found.append(stub)
        rebuilt: _Entries = {}
        for qualname, line in overload_positions(ast.parse(source)):
            stubs = candidates.get((qualname, line))
            if stubs:
                rebuilt.setdefault(qualname, {})[line] = min(stubs, key=self._rank)
        return rebuilt

    def _rank(self, stub: Any) -> int:
        """Which of two stubs at one place is its definition's: one patched to get there
        (what the old statement made), then a new one, then one left where it was (a
        removed definition's, when another moved onto its line)."""
        before = self._codes.get(id(stub))
        if before is None:
            return 1
        return 0 if stub.__code__ is not before else 2


def _store(registry: Any, module: str, entries: _Entries) -> None:
    if not entries:
        registry.pop(module, None)
        return
    table = registry[module]  # a defaultdict: made if missing
    table.clear()
    table.update({name: dict(stubs) for name, stubs in entries.items()})


def overload_positions(tree: ast.Module) -> list[tuple[str, int]]:
    """``(qualified name, first line)`` of each ``@overload`` definition a module runs at
    import (its top level, class bodies, compound statements), in the file's order."""
    return list(_positions(tree.body, ""))


_CONTAINERS = (ast.stmt, ast.excepthandler, ast.match_case)


def _positions(nodes: list[Any], prefix: str) -> Iterator[tuple[str, int]]:
    for node in nodes:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if any(_is_overload(decorator) for decorator in node.decorator_list):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                yield f"{prefix}{node.name}", first
        elif isinstance(node, ast.ClassDef):
            yield from _positions(node.body, f"{prefix}{node.name}.")
        elif isinstance(node, _CONTAINERS):
            inner = [
                child for child in ast.iter_child_nodes(node) if isinstance(child, _CONTAINERS)
            ]
            yield from _positions(inner, prefix)


def _is_overload(decorator: ast.expr) -> bool:
    """``@overload``, ``@typing.overload``, ``@t.overload``, ``@typing_extensions.overload``."""
    if isinstance(decorator, ast.Name):
        return decorator.id == "overload"
    return isinstance(decorator, ast.Attribute) and decorator.attr == "overload"
