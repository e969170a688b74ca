"""What a definition that is gone registered leaves the registries, as a fresh import would.

A ``@register``-ed function renamed, undecorated or removed, one of several same-named
definitions removed, a ``singledispatch`` registration removed (its dispatch cache too), a
registry of names or of ``(name, function)`` pairs: after the edit, every registry holds
what a fresh import of the file holds. A rolled-back edit leaves them exactly as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

import relive
from harness import fresh_import
from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit

LIST = "R = []\n\n\ndef reg(f):\n    R.append(f)\n    return f\n\n\n"
NAMES = "R = []\n\n\ndef reg(f):\n    R.append(f.__name__)\n    return f\n\n\n"
PAIRS = "R = set()\n\n\ndef reg(f):\n    R.add((f.__name__, f))\n    return f\n\n\n"
DISPATCH = "import functools\n\n\n@functools.singledispatch\ndef fmt(x):\n    return 'object'\n\n\n"
INT = "@fmt.register\ndef _(x: int):\n    return 'int'\n\n\n"
STR = "@fmt.register\ndef _(x: str):\n    return 'str'\n\n\n"
METHOD = (
    "import functools\n\n\nclass K:\n    @functools.singledispatchmethod\n"
    "    def fmt(self, x):\n        return 'object'\n\n"
)
M_INT = "    @fmt.register\n    def _(self, x: int):\n        return 'int'\n\n"
M_STR = "    @fmt.register\n    def _(self, x: str):\n        return 'str'\n\n"
SAMPLES = (1, "a", 1.5)


def called(module: ModuleType) -> object:
    return sorted(str(entry() if callable(entry) else entry) for entry in module.R)


def pairs(module: ModuleType) -> object:
    return sorted((name, f()) for name, f in module.R)


def dispatched(module: ModuleType) -> object:
    types = sorted(t.__name__ for t in module.fmt.registry)
    return [module.fmt(sample) for sample in SAMPLES], types


def dispatched_method(module: ModuleType) -> object:
    registry = module.K.__dict__["fmt"].dispatcher.registry
    return [module.K().fmt(sample) for sample in SAMPLES], sorted(t.__name__ for t in registry)


CASES: dict[str, tuple[str, str, Callable[[ModuleType], object]]] = {
    "renamed": (
        LIST + "@reg\ndef a():\n    return 'a'\n",
        LIST + "@reg\ndef b():\n    return 'b'\n",
        called,
    ),
    "one of two same-named definitions removed (the first)": (
        LIST + "@reg\ndef g():\n    return 1\n\n\n@reg\ndef g():\n    return 2\n",
        LIST + "@reg\ndef g():\n    return 2\n",
        called,
    ),
    "one of two same-named definitions removed (the last)": (
        LIST + "@reg\ndef g():\n    return 1\n\n\n@reg\ndef g():\n    return 2\n",
        LIST + "@reg\ndef g():\n    return 1\n",
        called,
    ),
    "a name registry, renamed": (
        NAMES + "@reg\ndef a():\n    pass\n",
        NAMES + "@reg\ndef b():\n    pass\n",
        called,
    ),
    "a registry of (name, function) pairs, renamed": (
        PAIRS + "@reg\ndef a():\n    return 1\n",
        PAIRS + "@reg\ndef b():\n    return 1\n",
        pairs,
    ),
    "a name still written elsewhere stays": (
        NAMES
        + "__all__ = ['a', 'b']\n\n\n@reg\ndef a():\n    pass\n\n\n@reg\ndef b():\n    pass\n",
        NAMES + "__all__ = ['a', 'b']\n\n\n@reg\ndef b():\n    pass\n",
        lambda module: (called(module), module.__all__),
    ),
    "singledispatch: the only registration removed": (DISPATCH + INT, DISPATCH, dispatched),
    "singledispatch: one of two removed": (DISPATCH + INT + STR, DISPATCH + STR, dispatched),
    "singledispatch: a named registration undecorated": (
        DISPATCH + "@fmt.register\ndef on_int(x: int):\n    return 'int'\n",
        DISPATCH + "def on_int(x: int):\n    return 'int'\n",
        dispatched,
    ),
    "singledispatchmethod: the only registration removed": (
        METHOD + M_INT,
        METHOD,
        dispatched_method,
    ),
    "singledispatchmethod: one of two removed": (
        METHOD + M_INT + M_STR,
        METHOD + M_STR,
        dispatched_method,
    ),
    "a class attribute bound twice, the second removed": (
        "class K:\n    x = 1\n    x = 2\n",
        "class K:\n    x = 1\n",
        lambda module: module.K.x,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_registries_hold_what_a_fresh_import_holds(
    package: TemporaryPackage, engine: Engine, case: str
) -> None:
    v1, v2, observe = CASES[case]
    name = f"reg_{sorted(CASES).index(case)}"
    module = package.module(name, v1)
    if hasattr(module, "fmt"):  # the dispatch cache filled by the old registrations
        dispatched(module) if "K" not in vars(module) else dispatched_method(module)
    apply_edit(module, v2, dedent=False)
    assert observe(module) == observe(fresh_import(module))


def test_registrations_in_another_module_leave_with_their_definition(
    package: TemporaryPackage, engine: Engine
) -> None:
    bus = package.module("reg_bus", LIST + DISPATCH)
    v1 = (
        "from reg_bus import fmt, reg\n\n\n@reg\ndef a():\n    return 'a'\n\n\n"
        "@fmt.register\ndef _(x: int):\n    return 'int'\n"
    )
    plug = package.module("reg_plug", v1)
    assert bus.fmt(1) == "int" and [f() for f in bus.R] == ["a"]
    apply_edit(plug, "from reg_bus import fmt, reg\n\n\n@reg\ndef b():\n    return 'b'\n")
    assert bus.fmt(1) == "object" and [f() for f in bus.R] == ["b"]


def test_a_rolled_back_removal_leaves_registries_and_dispatch_as_they_were(
    package: TemporaryPackage, engine: Engine
) -> None:
    module = package.module("reg_rollback", LIST + DISPATCH + INT + "@reg\ndef a():\n    pass\n")
    registered, dispatch = list(module.R), module.fmt.registry[int]
    assert module.fmt(1) == "int"
    broken = LIST + DISPATCH + "X = undefined_name\n"
    package.write("reg_rollback.py", broken, dedent=False)
    with pytest.raises(relive.ReloadError):
        relive.refresh()
    assert list(module.R) == registered and module.fmt.registry[int] is dispatch
    assert module.fmt(1) == "int"
    package.write("reg_rollback.py", LIST + DISPATCH, dedent=False)
    relive.refresh()
    assert module.R == [] and module.fmt(1) == "object"


def test_what_an_edit_registers_takes_its_place_in_the_text(
    package: TemporaryPackage, engine: Engine
) -> None:
    base = (
        "class Base:\n    registry = []\n\n    def __init_subclass__(cls, **kwargs):\n"
        "        super().__init_subclass__(**kwargs)\n        Base.registry.append(cls)\n\n\n"
    )
    v1 = base + LIST + "class A(Base):\n    pass\n\n\n@reg\ndef a():\n    return 'a'\n\n\n"
    v1 += "class Z(Base):\n    pass\n\n\n@reg\ndef z():\n    return 'z'\n"
    module = package.module("reg_order", v1)
    v2 = v1.replace(
        "class Z(Base)",
        "class M(Base):\n    pass\n\n\n@reg\ndef m():\n    return 'm'\n\n\nclass Z(Base)",
    )
    apply_edit(module, v2, dedent=False)
    fresh = fresh_import(module)
    assert [c.__name__ for c in module.Base.registry] == ["A", "M", "Z"]
    assert [f() for f in module.R] == [f() for f in fresh.R] == ["a", "m", "z"]


METHODS = (
    "class K:\n    x = 1\n\n    @reg\n    def g(self):\n        return 1\n\n"
    "    @reg\n    def g(self):\n        return 2\n"
)
ONE_METHOD = "class K:\n    x = 1\n\n    @reg\n    def g(self):\n        return 1\n"
METHOD_CASES = {
    "the class rebuilt for another member": METHODS.replace("x = 1", "x = 2"),
    "one method, the class rebuilt for another member": ONE_METHOD.replace("x = 1", "x = 2"),
    "one method undecorated": ONE_METHOD.replace("    @reg\n", ""),
    "one method renamed": ONE_METHOD.replace("def g", "def h"),
    "the first of two stacked methods removed": METHODS.replace(
        "    @reg\n    def g(self):\n        return 1\n\n", ""
    ),
    "the first of two stacked methods undecorated": METHODS.replace(
        "    @reg\n    def g(self):\n        return 1\n", "    def g(self):\n        return 1\n"
    ),
    "the last of two stacked methods undecorated": METHODS.replace(
        "    @reg\n    def g(self):\n        return 2\n", "    def g(self):\n        return 2\n"
    ),
    "the last made a staticmethod": METHODS.replace(
        "@reg\n    def g(self):\n        return 2",
        "@reg\n    @staticmethod\n    def g(self):\n        return 2",
    ),
    "the last renamed": METHODS.replace(
        "def g(self):\n        return 2", "def h(self):\n        return 2"
    ),
    "one added above": METHODS.replace(
        "    x = 1\n", "    x = 1\n\n    @reg\n    def g(self):\n        return 0\n"
    ),
}


@pytest.mark.parametrize("case", sorted(METHOD_CASES))
def test_methods_registered_by_a_class_body_as_a_fresh_import_registers_them(
    package: TemporaryPackage, engine: Engine, case: str
) -> None:
    name = f"reg_methods_{sorted(METHOD_CASES).index(case)}"
    module = package.module(name, LIST + (ONE_METHOD if "one method" in case else METHODS))
    held = list(module.R)
    apply_edit(module, LIST + METHOD_CASES[case], dedent=False)
    fresh = fresh_import(module)
    assert [f(None) for f in module.R] == [f(None) for f in fresh.R]
    kept = [f for f in module.R if any(f is old for old in held)]
    assert len(kept) == len({id(f) for f in kept})  # no entry twice
    assert [type(f) for f in module.R] == [type(f) for f in fresh.R]


def test_a_rolled_back_class_edit_leaves_its_registrations(
    package: TemporaryPackage, engine: Engine
) -> None:
    module = package.module("reg_methods_rollback", LIST + METHODS)
    held = list(module.R)
    broken = (
        METHODS.replace("    @reg\n    def g(self):\n        return 1\n\n", "") + "X = undefined\n"
    )
    package.write("reg_methods_rollback.py", LIST + broken, dedent=False)
    with pytest.raises(relive.ReloadError):
        relive.refresh()
    assert len(module.R) == len(held) and all(a is b for a, b in zip(module.R, held, strict=True))
