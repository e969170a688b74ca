"""Pydantic models after an edit: validators and serializers rebuilt for the live classes.

The engine patches an edited model class in place (same class object, its fields
updated), but Pydantic compiled a validator and a serializer for it at class creation,
and models that nest it compiled its schema into theirs. After each reload that patched a
model, every model of the user's modules is rebuilt, in creation order, so validation
builds instances of the live class and nested models see the new fields.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from relive._engine import Report

__all__ = ["rebuild_models"]


def rebuild_models(report: Report, user_modules: set[str]) -> list[str]:
    """Rebuild the Pydantic models of ``user_modules`` when ``report`` patched one; the
    names of the models that could not be rebuilt (they keep their last schema)."""
    main = sys.modules.get("pydantic.main")
    base: Any = getattr(main, "BaseModel", None)
    if base is None or not _patched_a_model(report, base):
        return []
    failed = []
    for model in _subclasses(base):
        if model.__module__ not in user_modules:
            continue
        try:
            model.model_rebuild(force=True)
        except Exception:
            failed.append(f"{model.__module__}.{model.__qualname__}")
    return failed


def _patched_a_model(report: Report, base: type) -> bool:
    for module_report in report.modules:
        module = sys.modules.get(module_report.name)
        namespace = vars(module) if module is not None else {}
        for name in module_report.patched:
            value = namespace.get(name.split(".")[0])
            if isinstance(value, type) and issubclass(value, base):
                return True
    return False


def _subclasses(base: type) -> Iterator[Any]:
    """Every subclass of ``base``, each after its bases, siblings in creation order."""
    seen: set[type] = set()
    stack: list[type] = list(reversed(base.__subclasses__()))
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        yield cls
        stack.extend(reversed(cls.__subclasses__()))
