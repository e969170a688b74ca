"""Several top-level definitions of one name: each is known by its position among them.

``@fmt.register`` + ``def _`` (singledispatch), stacked and conditional redefinitions,
``@overload`` stubs: the k-th definition of a name patches the object the k-th statement
made, not what the name holds now, and every held reference runs its own definition's code.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from harness import fresh_import
from relive import ReloadError
from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit

DISPATCH = """\
import functools

@functools.singledispatch
def fmt(x):
    return "object"

@fmt.register
def _(x: int):
    return "int"
"""
STR = '\n@fmt.register\ndef _(x: str):\n    return "str"\n'
FLOAT = '\n@fmt.register\ndef _(x: float):\n    return "float"\n'
SAMPLES = [1, "a", 1.5, None]


def dispatched(module: ModuleType) -> list[str]:
    return [module.fmt(sample) for sample in SAMPLES]


def test_a_registration_added_below_leaves_the_others_alone(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("same_add", DISPATCH)
    handle_int = mod.fmt.registry[int]
    apply_edit(mod, DISPATCH + STR, dedent=False)
    assert dispatched(mod) == dispatched(fresh_import(mod)) == ["int", "str", "object", "object"]
    assert handle_int(1) == "int"
    assert mod.fmt.registry[int] is handle_int


def test_a_registration_added_above_leaves_the_others_alone(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("same_add_above", DISPATCH + STR)
    handles = dict(mod.fmt.registry)
    v2 = DISPATCH.replace("@fmt.register", FLOAT.strip() + "\n\n@fmt.register") + STR
    apply_edit(mod, v2, dedent=False)
    assert dispatched(mod) == dispatched(fresh_import(mod)) == ["int", "str", "float", "object"]
    assert mod.fmt.registry[int] is handles[int] and handles[int](1) == "int"
    assert mod.fmt.registry[str] is handles[str] and handles[str]("a") == "str"


def test_each_same_named_definition_is_patched_with_its_own_code(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("same_edit", DISPATCH + STR + FLOAT)
    handles = dict(mod.fmt.registry)
    v2 = (DISPATCH + STR + FLOAT).replace('return "str"', 'return "str v2"')
    apply_edit(mod, v2, dedent=False)
    assert dispatched(mod) == dispatched(fresh_import(mod)) == ["int", "str v2", "float", "object"]
    assert [handles[t](None) for t in (int, str, float)] == ["int", "str v2", "float"]
    assert mod._ is handles[float]


def test_a_removed_registration_leaves_the_others_their_code(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("same_remove", DISPATCH + STR + FLOAT)
    handles = dict(mod.fmt.registry)
    apply_edit(mod, (DISPATCH + FLOAT).replace('"float"', '"float v2"'), dedent=False)
    assert [handles[t](None) for t in (int, float)] == ["int", "float v2"]
    assert mod.fmt(1) == "int" and mod.fmt(1.5) == "float v2"
    assert mod._ is handles[float]


def test_reordered_registrations_dispatch_as_a_fresh_import(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("same_reorder", DISPATCH + STR)
    apply_edit(mod, DISPATCH.replace("@fmt.register", STR.strip() + "\n\n@fmt.register"))
    assert dispatched(mod) == dispatched(fresh_import(mod)) == ["int", "str", "object", "object"]


def test_stacked_definitions_each_keep_their_holders(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """\
HELD = []

def hold(function):
    HELD.append(function)
    return function

@hold
def f():
    return "first"

@hold
def f():
    return "second"
"""
    mod = package.module("same_stacked", v1)
    first, second = mod.HELD
    apply_edit(mod, v1.replace('"first"', '"first v2"'), dedent=False)
    assert (first(), second()) == ("first v2", "second")
    assert mod.f is second and [first, second] == mod.HELD
    apply_edit(mod, v1.replace('"second"', '"second v2"'), dedent=False)
    assert (first(), second()) == ("first", "second v2")
    assert mod.f is second


def test_a_new_definition_above_does_not_take_the_later_ones_object(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = "def f():\n    return 'only'\n\nX = f()\n"
    mod = package.module("same_shadow_above", v1)
    f = mod.f
    apply_edit(mod, "def f():\n    return 'new first'\n\n" + v1, dedent=False)
    assert mod.f is f and f() == "only"
    assert mod.X == "only"


def test_conditional_redefinition(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """\
import sys

def where():
    return "generic"

if sys.platform != "no such platform":
    def where():
        return "specific"
"""
    mod = package.module("same_conditional", v1)
    where = mod.where
    apply_edit(mod, v1.replace('"generic"', '"generic v2"'), dedent=False)
    assert mod.where is where and where() == "specific"
    apply_edit(mod, v1.replace('"specific"', '"specific v2"'), dedent=False)
    assert mod.where is where and where() == "specific v2"


def test_overloads_and_their_implementation(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """\
import typing

@typing.overload
def double(x: int) -> int: ...

@typing.overload
def double(x: str) -> str: ...

def double(x):
    return x * 2
"""
    mod = package.module("same_overload", v1)
    double = mod.double
    v2 = v1.replace(
        "import typing\n", "import typing\n\n@typing.overload\ndef double(x: bytes) -> bytes: ...\n"
    )
    apply_edit(mod, v2.replace("x * 2", "x * 3"), dedent=False)
    assert mod.double is double and double(2) == 6
    apply_edit(mod, v2.replace("x * 2", "x * 4"), dedent=False)
    assert mod.double is double and double(2) == 8


def test_a_singledispatchmethod_gains_a_registration(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """\
import functools

class Formatter:
    @functools.singledispatchmethod
    def fmt(self, x):
        return "object"

    @fmt.register
    def _(self, x: int):
        return "int"
"""
    mod = package.module("same_method", v1)
    formatter = mod.Formatter()
    handle_int = mod.Formatter.__dict__["_"]
    v2 = v1 + '\n    @fmt.register\n    def _(self, x: str):\n        return "str"\n'
    apply_edit(mod, v2, dedent=False)
    assert [formatter.fmt(s) for s in SAMPLES] == ["int", "str", "object", "object"]
    assert handle_int(formatter, 1) == "int"


def test_same_named_definitions_that_moved_keep_their_objects(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("same_moved", DISPATCH + STR + FLOAT)
    handles = dict(mod.fmt.registry)
    moved = "# a comment\n# and another\n" + DISPATCH + STR + FLOAT
    apply_edit(mod, moved, dedent=False)
    apply_edit(mod, moved.replace('"int"', '"int v2"').replace('"str"', '"str v2"'))
    assert [handles[t](None) for t in (int, str, float)] == ["int v2", "str v2", "float"]
    assert dispatched(mod) == ["int v2", "str v2", "float", "object"]
    assert dict(mod.fmt.registry) == handles


def test_a_rejected_save_leaves_no_registration(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("same_rejected", DISPATCH)
    registry = dict(mod.fmt.registry)
    with pytest.raises(ReloadError):
        apply_edit(mod, DISPATCH + STR + "\nBROKEN = undefined_name\n", dedent=False)
    assert dict(mod.fmt.registry) == registry and mod.fmt("a") == "object"
    apply_edit(mod, DISPATCH + STR, dedent=False)
    assert dispatched(mod) == ["int", "str", "object", "object"]
