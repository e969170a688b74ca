"""Enum members whose value changes: consistent in every protocol, or refused.

A plain ``Enum`` member keeps its value in its ``__dict__``: the new value is taken and
``==``, ``hash``, ``E(value)`` and the value table all follow. A member of a mixin enum
(``IntEnum``, ``StrEnum``, ``IntFlag``, ``class E(float, Enum)``, a date mixin) *is* an
``int`` or ``str``: its payload cannot change in place, so the edit needs a restart and
changes nothing.
"""

from __future__ import annotations

import enum

import pytest

from relive import RestartRequired
from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit

MIXINS = {
    "IntEnum": ("enum.IntEnum", "1", "3"),
    "StrEnum": ("enum.StrEnum", "'x'", "'y'"),
    "IntFlag": ("enum.IntFlag", "1", "4"),
    "float": ("float, enum.Enum", "1.5", "2.5"),
    "date": ("datetime.date, enum.Enum", "(2020, 1, 1)", "(2021, 1, 1)"),
}


@pytest.mark.parametrize("mixin", list(MIXINS))
def test_a_mixin_member_changing_value_is_refused_changing_nothing(
    mixin: str, package: TemporaryPackage, engine: Engine
) -> None:
    bases, old, new = MIXINS[mixin]
    v1 = (
        f"import datetime, enum\n\nclass E({bases}):\n    A = {old}\n\n"
        "    def tag(self):\n        return 'v1'\n\nX = 1\n"
    )
    mod = package.module(f"enum_mixin_{mixin.lower()}", v1)
    member, value = mod.E.A, mod.E.A.value
    v2 = v1.replace(f"A = {old}", f"A = {new}").replace("'v1'", "'v2'").replace("X = 1", "X = 2")
    with pytest.raises(RestartRequired) as caught:
        apply_edit(mod, v2, dedent=False)
    assert "E.A" in str(caught.value) and caught.value.lineno == 3
    assert mod.E.A is member and member.value == value and member == value
    assert mod.E(value) is member and member.tag() == "v1" and mod.X == 1


@pytest.mark.parametrize("mixin", list(MIXINS))
def test_a_mixin_enum_edited_otherwise_applies(
    mixin: str, package: TemporaryPackage, engine: Engine
) -> None:
    bases, old, new = MIXINS[mixin]
    v1 = f"import datetime, enum\n\nclass E({bases}):\n    A = {old}\n\n"
    v1 += "    def tag(self):\n        return 'v1'\n"
    mod = package.module(f"enum_mixin_ok_{mixin.lower()}", v1)
    member = mod.E.A
    apply_edit(mod, v1.replace("'v1'", "'v2'") + "\nB = E(E.A.value)\n", dedent=False)
    assert mod.B is member
    v3 = v1.replace("'v1'", "'v2'").replace(f"A = {old}", f"A = {old}\n    B = {new}")
    apply_edit(mod, v3, dedent=False)
    assert mod.E.A is member and member.tag() == "v2"
    assert mod.E(member.value) is member and mod.E.B.value == mod.E.B._value_
    assert list(mod.E) == [member, mod.E.B]


def test_a_plain_member_takes_its_new_value_in_every_protocol(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = "import enum\n\nclass E(enum.Enum):\n    A = 1\n    B = 2\n"
    mod = package.module("enum_plain_value", v1)
    a, b = mod.E.A, mod.E.B
    table = {a: "a"}
    apply_edit(mod, v1.replace("A = 1", "A = 3"), dedent=False)
    assert a.value == 3 and mod.E(3) is a and mod.E._value2member_map_ == {3: a, 2: b}
    assert table[a] == "a" and hash(a) == hash(mod.E.A) and a == mod.E.A
    assert (str(a), repr(a), format(a)) == ("E.A", "<E.A: 3>", "E.A")
    with pytest.raises(ValueError):
        mod.E(1)


def test_a_flag_member_takes_its_new_value(package: TemporaryPackage, engine: Engine) -> None:
    v1 = "import enum\n\nclass F(enum.Flag):\n    R = 1\n    W = 2\n"
    mod = package.module("enum_flag_value", v1)
    r, w = mod.F.R, mod.F.W
    apply_edit(mod, v1.replace("R = 1", "R = 4"), dedent=False)
    assert r.value == 4 and mod.F(4) is r and (r | w).value == 6
    assert mod.F(6) == r | w and ~r == w and list(mod.F) == [r, w]
    assert enum.Flag in type(r).__mro__
