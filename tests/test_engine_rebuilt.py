"""What a class statement builds, built again as a fresh import would: dataclass field order
and frozenness, bases compared as objects, a module's own ``__doc__``, and code objects the
program keeps."""

from __future__ import annotations

import dataclasses
import gc
import types

import pytest

from relive import RestartRequired
from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit

POINT = """\
import dataclasses

@dataclasses.dataclass{options}
class Point:
    x: int = 1
    y: int = 2

    def norm(self):
        return abs(self.x) + abs(self.y)
"""


def test_reordered_dataclass_fields(package: TemporaryPackage, engine: Engine) -> None:
    v1 = POINT.format(options="(frozen=True)")
    mod = package.module("rebuilt_order", v1)
    point_class, old = mod.Point, mod.Point(3, 4)
    v2 = v1.replace("    x: int = 1\n    y: int = 2\n", "    y: int = 2\n    x: int = 1\n")
    apply_edit(mod, v2, dedent=False)
    assert mod.Point is point_class
    assert [f.name for f in dataclasses.fields(mod.Point)] == ["y", "x"]
    point = mod.Point(5)
    assert (point.y, point.x, repr(point)) == (5, 1, "Point(y=5, x=1)")
    assert mod.Point(1, 2) == mod.Point(y=1, x=2) and hash(mod.Point(1, 2)) == hash((1, 2))
    assert mod.Point.__match_args__ == ("y", "x")
    assert old.norm() == 7 and isinstance(old, mod.Point)


def test_frozen_dataclass_made_plain_and_frozen_again(
    package: TemporaryPackage, engine: Engine
) -> None:
    frozen = POINT.format(options="(frozen=True)")
    mod = package.module("rebuilt_frozen", frozen)
    point = mod.Point()
    apply_edit(mod, POINT.format(options=""), dedent=False)
    point.x = 10
    del point.y
    assert point.x == 10 and "__setattr__" not in vars(mod.Point)
    assert mod.Point.__hash__ is None  # eq without frozen: unhashable, as a fresh import
    apply_edit(mod, frozen, dedent=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 11
    assert hash(mod.Point(1, 2)) == hash((1, 2))


def test_a_class_no_longer_a_dataclass(package: TemporaryPackage, engine: Engine) -> None:
    v1 = POINT.format(options="(order=True)")
    mod = package.module("rebuilt_undecorated", v1)
    v2 = v1.replace("@dataclasses.dataclass(order=True)\n", "")
    apply_edit(mod, v2, dedent=False)
    assert not dataclasses.is_dataclass(mod.Point)
    assert "__lt__" not in vars(mod.Point) and "__init__" not in vars(mod.Point)
    assert mod.Point().x == 1


def test_the_same_base_class_named_another_way(package: TemporaryPackage, engine: Engine) -> None:
    package.module("rebuilt_base", "class A:\n    def who(self):\n        return 'A'\n")
    v1 = "import rebuilt_base\n\nclass B(rebuilt_base.A):\n    def f(self):\n        return 1\n"
    mod = package.module("rebuilt_sub", v1)
    b_class, b = mod.B, mod.B()
    v2 = "from rebuilt_base import A\n\nclass B(A):\n    def f(self):\n        return 2\n"
    apply_edit(mod, v2, dedent=False)
    assert mod.B is b_class and b.f() == 2 and b.who() == "A"


def test_another_base_class_is_refused_changing_nothing(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = "class A:\n    pass\n\nclass C:\n    pass\n\nclass B(A):\n    x = 1\n"
    mod = package.module("rebuilt_other_base", v1)
    with pytest.raises(RestartRequired) as caught:
        apply_edit(mod, v1.replace("class B(A):\n    x = 1", "class B(C):\n    x = 2"))
    assert caught.value.lineno == 7 and "bases of class B" in str(caught.value)
    assert mod.B.__bases__ == (mod.A,) and mod.B.x == 1


def test_a_nested_class_given_another_base_is_refused(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = "class A:\n    pass\n\nclass O:\n    class I(A):\n        x = 1\n"
    mod = package.module("rebuilt_nested_base", v1)
    inner = mod.O.I
    with pytest.raises(RestartRequired) as caught:
        apply_edit(mod, v1.replace("class I(A):\n        x = 1", "class I:\n        x = 2"))
    assert caught.value.lineno == 5
    assert mod.O.I is inner and inner.__bases__ == (mod.A,) and inner.x == 1


def test_a_module_that_sets_its_own_doc_keeps_it(package: TemporaryPackage, engine: Engine) -> None:
    v1 = "# A library.\n__doc__ = 'set by the module'\n\ndef f():\n    return 1\n"
    mod = package.module("rebuilt_doc", v1)
    apply_edit(mod, v1.replace("return 1", "return 2"), dedent=False)
    assert mod.__doc__ == "set by the module"
    literal = '"""The literal."""\n\ndef f():\n    return 1\n'
    apply_edit(mod, literal, dedent=False)
    assert mod.__doc__ == "The literal."
    apply_edit(mod, literal.replace("The literal.", "Another."), dedent=False)
    assert mod.__doc__ == "Another."


def test_code_objects_the_program_keeps_follow_the_patch(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """\
HIDDEN = set()
NAMES = {}
ORDER = []

def internal(function):
    HIDDEN.add(function.__code__)
    NAMES[function.__code__] = function.__name__
    ORDER.append(function.__code__)
    return function

@internal
def render():
    return "v1"

def plain():
    return "plain v1"
"""
    mod = package.module("rebuilt_codes", v1)
    plain_code = mod.plain.__code__
    apply_edit(mod, v1.replace('"v1"', '"v2"').replace("plain v1", "plain v2"), dedent=False)
    code = mod.render.__code__
    assert code in mod.HIDDEN and len(mod.HIDDEN) == 1
    assert {code: "render"} == mod.NAMES and [code] == mod.ORDER
    assert mod.plain() == "plain v2" and plain_code is not mod.plain.__code__


def test_a_reload_leaves_no_garbage_cycles_holding_its_work(
    package: TemporaryPackage, engine: Engine
) -> None:
    # A cycle (a recursive closure, a frame held in its own local) keeps the batch, its
    # plans and compiled code alive until a full collection: old code objects then look
    # held by the program, and every edit pays a pass over the heap.
    from relive._apply import ModuleApplier
    from relive._prepare import Prepared

    mod = package.module("rebuilt_garbage", "def f():\n    return 1\n")
    gc.collect()
    gc.disable()
    try:
        for value in (2, 3):
            apply_edit(mod, f"def f():\n    return {value}\n")
        left = [o for o in gc.get_objects() if isinstance(o, (ModuleApplier, Prepared))]
        frames = [o for o in gc.get_objects() if isinstance(o, types.FrameType)]
        relive_frames = [f for f in frames if "relive" in f.f_code.co_filename]
    finally:
        gc.enable()
    assert mod.f() == 3
    assert left == []
    assert [f.f_code.co_name for f in relive_frames] == []
