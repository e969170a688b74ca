"""Names bound in a namespace that is not a module (a notebook's) that follow reloads.

``from m import f, LIMIT`` typed in a notebook copies bindings into the user's namespace;
functions and classes patched in place follow by themselves, but a rebound name (a new
constant, a new object) has to be pushed there, unless the user rebound it since.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator, MutableMapping
from types import ModuleType
from typing import Any, final

__all__ = ["ImportedNames"]

_MISSING: Any = object()
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


class _Binding:
    __slots__ = ("attribute", "module", "value")

    def __init__(self, module: str, attribute: str, value: object) -> None:
        self.module = module
        self.attribute = attribute
        self.value = value


@final
class ImportedNames:
    """The names that ``from m import x`` cells bound in the user's namespace.

    The notebook is not a tracked module, so the engine cannot update its copies of names
    a reload rebinds (constants, new objects). Each cell's ``from`` imports are recorded
    after it ran; after a reload, a name still bound to the object it was imported as gets
    the module's new value, and ``from m import *`` picks up names added to ``m``. A name
    the user rebound is left alone (and no longer followed).
    """

    def __init__(self) -> None:
        self._names: dict[str, _Binding] = {}  # name in the notebook → where it came from
        self._star: set[str] = set()  # modules imported with ``from m import *``

    def record(self, source: str, namespace: MutableMapping[str, Any]) -> None:
        """Record the ``from`` imports of a cell that just ran (its Python source)."""
        if "import" not in source:
            return
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return
        for node in _imports_from(tree):
            module = sys.modules.get(node.module or "") if node.level == 0 else None
            if module is None:
                continue
            for alias in node.names:
                if alias.name == "*":
                    self._star.add(module.__name__)
                    for name in _public_names(module):
                        self._bind(module, name, name, namespace)
                else:
                    self._bind(module, alias.name, alias.asname or alias.name, namespace)

    def _bind(
        self, module: ModuleType, attribute: str, name: str, namespace: MutableMapping[str, Any]
    ) -> None:
        value = getattr(module, attribute, _MISSING)
        if value is not _MISSING and namespace.get(name, _MISSING) is value:
            self._names[name] = _Binding(module.__name__, attribute, value)

    def follow(self, modules: Iterable[str], namespace: MutableMapping[str, Any]) -> list[str]:
        """Update the names imported from ``modules`` (just reloaded); returns those changed."""
        reloaded = set(modules)
        changed: list[str] = []
        for name, binding in list(self._names.items()):
            if binding.module not in reloaded:
                continue
            if namespace.get(name, _MISSING) is not binding.value:
                del self._names[name]  # the user rebound it: theirs now
                continue
            value = getattr(sys.modules.get(binding.module), binding.attribute, _MISSING)
            if value is not _MISSING and value is not binding.value:
                namespace[name] = binding.value = value
                changed.append(name)
        for module_name in sorted(self._star & reloaded):
            changed.extend(self._add_new_names(module_name, namespace))
        return changed

    def _add_new_names(self, module_name: str, namespace: MutableMapping[str, Any]) -> list[str]:
        module = sys.modules.get(module_name)
        if module is None:
            return []
        added = []
        for name in _public_names(module):
            if name not in namespace:
                namespace[name] = getattr(module, name)
                self._bind(module, name, name, namespace)
                added.append(name)
        return added


def _imports_from(node: ast.AST) -> Iterator[ast.ImportFrom]:
    """The ``from`` imports that bind names in the cell's namespace (not in a function)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ImportFrom):
            yield child
        elif not isinstance(child, _SCOPES):
            yield from _imports_from(child)


def _public_names(module: ModuleType) -> list[str]:
    """The names ``from module import *`` binds."""
    names = getattr(module, "__all__", None)
    if isinstance(names, list | tuple):
        return [name for name in names if isinstance(name, str) and hasattr(module, name)]
    return [name for name in list(vars(module)) if not name.startswith("_")]


# ---------------------------------------------------------------------------------------
# Watching between cells
