"""The public API is what relive/__init__.py exports, sorted, every name documented."""

from __future__ import annotations

import inspect
import pkgutil

import relive


def test_all_is_sorted_and_complete() -> None:
    assert list(relive.__all__) == sorted(relive.__all__)
    for name in relive.__all__:
        assert hasattr(relive, name), name
    public = {name for name in vars(relive) if not name.startswith("_")}
    submodules = {info.name for info in pkgutil.iter_modules(relive.__path__)}
    assert public - submodules <= set(relive.__all__)


def test_every_public_name_is_documented() -> None:
    for name in relive.__all__:
        obj = getattr(relive, name)
        if callable(obj):
            assert inspect.getdoc(obj), f"relive.{name} has no docstring"


def test_every_module_has_a_docstring_and_all() -> None:
    for info in pkgutil.iter_modules(relive.__path__):
        if info.name.startswith("_"):
            continue
        module = __import__(f"relive.{info.name}", fromlist=["_"])
        assert module.__doc__, f"relive.{info.name} has no module docstring"
        if not info.ispkg:
            assert hasattr(module, "__all__"), f"relive.{info.name} has no __all__"
