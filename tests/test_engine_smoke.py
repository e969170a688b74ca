"""First swap snippets: a module as v1, its edit as v2, and what must hold after the reload."""

from __future__ import annotations

import pytest

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage, write_source


def test_function_body_patched_in_place_and_state_kept(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module(
        "smoke_a",
        """
        cache = {}
        def f(x):
            return x + 1
        """,
    )
    f = mod.f
    mod.cache["k"] = 1
    write_source(mod.__file__, "cache = {}\ndef f(x):\n    return x + 2\n")
    report = relive.reload(mod)
    assert report.reloaded == ("smoke_a",)
    assert f(1) == 3 and mod.f is f
    assert mod.cache == {"k": 1}


def test_syntax_error_changes_nothing(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("smoke_b", "def f():\n    return 1\n")
    write_source(mod.__file__, "def f():\n    return (\n")
    with pytest.raises(relive.ReloadError) as info:
        relive.reload(mod)
    assert info.value.path is not None and info.value.path.endswith("smoke_b.py")
    assert info.value.lineno == 2
    assert isinstance(info.value.__cause__, SyntaxError)
    assert mod.f() == 1
