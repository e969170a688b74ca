"""What a refused or failed edit leaves behind: nothing, anywhere, and it stays refused."""

from __future__ import annotations

import sys

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage


def _refresh_outcome() -> str:
    try:
        return relive.refresh().summary()
    except relive.RestartRequired:
        return "restart"
    except relive.ReloadError:
        return "error"


def test_a_refused_text_saved_again_is_refused_again(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = "class P:\n    __slots__ = ('a',)\n\n    def f(self):\n        return 1\n"
    mod = package.module("rb_slots", v1)
    refused = v1.replace("('a',)", "('a', 'b')")
    outcomes = []
    for text in (refused, v1, refused, refused.replace("return 1", "return 3"), v1):
        package.write("rb_slots.py", text)
        outcomes.append(_refresh_outcome())
    assert outcomes == ["restart", "nothing changed", "restart", "restart", "nothing changed"]
    package.write("rb_slots.py", v1.replace("return 1", "return 2"))
    assert relive.refresh().reloaded == ("rb_slots",)
    assert mod.P().f() == 2 and mod.P.__slots__ == ("a",)


def test_a_broken_text_saved_twice_is_reported_once(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.module("rb_twice", "X = 1\n")
    package.write("rb_twice.py", "X = undefined\n")
    assert _refresh_outcome() == "error"
    package.write("rb_twice.py", "X = undefined\n")
    assert _refresh_outcome() == "nothing changed"
    assert sys.modules["rb_twice"].X == 1
