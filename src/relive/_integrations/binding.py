"""Where the served app object comes from, and the edits that leave the server behind.

The server holds the app object it was given. An edit that runs ``app = FastAPI(...)``
again, or changes the factory that built the app, makes a new app the server never sees:
those edits restart the server, with the reason in one line.
"""

from __future__ import annotations

import ast
import sys
import types
from dataclasses import dataclass
from typing import final

from relive._engine import Engine, Report
from relive._errors import RestartRequired

__all__ = ["AppBinding", "find_binding"]


@final
@dataclass(frozen=True)
class AppBinding:
    """The module attribute holding the served app, and the function that built it.

    Attributes:
        module: The module's name.
        path: Its file.
        attribute: The dotted attribute holding the app (None: made by a factory only).
        factory: The function that built the app, if a function did (else None).
        lineno: The line binding the attribute, if known.
    """

    module: str
    path: str
    attribute: str | None = None
    factory: object = None
    lineno: int | None = None

    def check(self, app: object, report: Report) -> None:
        """Raise ``RestartRequired`` when the edit in ``report`` leaves ``app`` behind."""
        if self.attribute is not None and self.module in report.reloaded:
            current = _resolve(sys.modules.get(self.module), self.attribute)
            if current is not app:
                raise RestartRequired(
                    f"{self.attribute} is a new app object after this edit; the server"
                    " still holds the old one",
                    path=self.path,
                    lineno=self.lineno,
                    module=self.module,
                )
        factory = self.factory
        if isinstance(factory, types.FunctionType) and _patched(report, factory):
            raise RestartRequired(
                f"{factory.__qualname__}() changed; the app the server runs was built by"
                " the old code",
                path=factory.__code__.co_filename,
                lineno=factory.__code__.co_firstlineno,
                module=factory.__module__,
            )


def find_binding(
    engine: Engine,
    app: object,
    *,
    module: str | None = None,
    attribute: str | None = None,
    factory: object = None,
) -> AppBinding | None:
    """Where ``app`` is bound: the given ``module`` and ``attribute`` (``uvicorn app:app``),
    else the first tracked module holding it; with the function that built it."""
    if module is None or attribute is None:
        module, attribute = _search(engine, app)
    if module is None:
        return _factory_only(engine, factory)
    tracked = engine.tracked_module(module)
    if tracked is None:
        return None
    built_by = factory if isinstance(factory, types.FunctionType) else None
    lineno = None
    if attribute is not None and tracked.source is not None:
        lineno, call = _binding_statement(tracked.source, attribute)
        if built_by is None and call is not None:
            built_by = _callee(sys.modules.get(module), call)
    return AppBinding(module, tracked.path, attribute, built_by, lineno)


def _search(engine: Engine, app: object) -> tuple[str | None, str | None]:
    engine.track_new_modules()
    for tracked in engine.tracked_modules():
        namespace = vars(sys.modules.get(tracked.name, types.ModuleType("-")))
        for name, value in list(namespace.items()):
            if value is app:
                return tracked.name, name
    return None, None


def _factory_only(engine: Engine, factory: object) -> AppBinding | None:
    if not isinstance(factory, types.FunctionType):
        return None
    tracked = engine.tracked_module(factory.__module__)
    if tracked is None:
        return None
    return AppBinding(factory.__module__, tracked.path, None, factory)


def _resolve(module: object, attribute: str) -> object:
    value = module
    for part in attribute.split("."):
        value = getattr(value, part, None)
    return value


def _binding_statement(source: str, attribute: str) -> tuple[int | None, ast.expr | None]:
    """The line of the top-level statement binding ``attribute``, and the call it makes."""
    name = attribute.split(".")[0]
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None, None
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if any(isinstance(target, ast.Name) and target.id == name for target in targets):
            value = getattr(node, "value", None)
            return node.lineno, value.func if isinstance(value, ast.Call) else None
    return None, None


def _callee(module: object, func: ast.expr) -> types.FunctionType | None:
    """The function a call's dotted name refers to in ``module`` (not a class)."""
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.insert(0, func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return None
    value = _resolve(module, ".".join([func.id, *parts]))
    return value if isinstance(value, types.FunctionType) else None


def _patched(report: Report, function: types.FunctionType) -> bool:
    return any(
        module.name == function.__module__ and function.__qualname__ in module.patched
        for module in report.modules
    )
