"""Post-import hooks: run a function right after a named module is first executed.

How relive reaches into a server without importing it: the worker registers hooks for
``uvicorn.config``, ``werkzeug.serving`` and ``django.utils.autoreload`` before the
program starts, and each hook patches its module the moment the program imports it,
before any other module can bind the names it patches. An exception in a hook is
reported on stderr, never raised into the program.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, cast, final

from relive._output import default_console

__all__ = ["ImportHooks"]

Hook = Callable[[ModuleType], None]


@final
class ImportHooks:
    """A ``sys.meta_path`` finder that finds nothing itself: it wraps the loader of the
    modules it has hooks for, so the hooks run right after the module's own code."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[Hook]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, hook: Hook) -> None:
        """Run ``hook(module)`` once ``name`` is imported (now, if it already is)."""
        module = sys.modules.get(name)
        if module is not None:
            _run(hook, module)
            return
        with self._lock:
            self._hooks.setdefault(name, []).append(hook)
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def pending(self) -> list[str]:
        """Names of the modules whose hooks have not run yet."""
        with self._lock:
            return sorted(self._hooks)

    def remove(self) -> None:
        """Forget the hooks that have not run and leave ``sys.meta_path``."""
        with self._lock:
            self._hooks.clear()
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self._hooks:
            return None
        spec = _find_elsewhere(self, fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        with self._lock:
            hooks = self._hooks.pop(fullname, [])
        if not hooks:
            return spec
        spec.loader = cast(Any, _HookedLoader(spec.loader, hooks))
        return spec


@final
class _HookedLoader:
    """Delegates to the real loader, which the module sees as its own; runs the hooks
    after the module's code."""

    def __init__(self, loader: Any, hooks: list[Hook]) -> None:
        self._loader = loader
        self._hooks = hooks

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        for hook in self._hooks:
            _run(hook, module)

    def __getattr__(self, name: str) -> Any:
        if name in ("_loader", "_hooks"):
            raise AttributeError(name)
        return getattr(self._loader, name)


def _find_elsewhere(
    hooks: ImportHooks, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> ModuleSpec | None:
    for finder in list(sys.meta_path):
        find_spec = getattr(finder, "find_spec", None)
        if finder is hooks or find_spec is None:
            continue
        spec: ModuleSpec | None = find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


def _run(hook: Hook, module: ModuleType) -> None:
    try:
        hook(module)
    except Exception as exc:  # relive's own failure must not stop the program
        default_console().warn(f"could not hook into {module.__name__} ({exc!r}); it runs as usual")
