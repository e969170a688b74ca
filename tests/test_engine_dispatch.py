"""What ``functools.singledispatch`` and ``typing.overload`` keep beside the functions.

A dispatcher's cache (which implementation each class got) and typing's overload registry
(keyed by first line) live outside the module's namespace: after an edit they hold what a
fresh import would, and a rolled-back edit leaves them exactly as they were.
"""

from __future__ import annotations

import functools
import inspect
import typing
from types import ModuleType

import pytest

from harness import fresh_import
from relive import ReloadError
from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit

HIERARCHY = """\
import functools

class A:
    pass

class B(A):
    pass

@functools.singledispatch
def fmt(x):
    return "object"

@fmt.register
def _(x: A):
    return "A"
"""
FOR_B = '\n@fmt.register\ndef _(x: B):\n    return "B"\n'


def dispatch_cache(dispatcher: typing.Any) -> dict[typing.Any, typing.Any]:
    """What the dispatcher's cache holds now, by class."""
    return dict(dispatcher._clear_cache.__self__.items())


def test_a_new_registration_for_a_subclass_dispatches_at_once(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("dispatch_subclass", HIERARCHY)
    assert mod.fmt(mod.B()) == "A"  # cached: B -> A's implementation
    apply_edit(mod, HIERARCHY + FOR_B, dedent=False)
    assert mod.fmt(mod.B()) == "B" and mod.fmt(mod.A()) == "A"


def test_a_rolled_back_registration_leaves_the_dispatch_cache_as_it_was(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("dispatch_rollback", HIERARCHY)
    assert (mod.fmt(mod.B()), mod.fmt(1)) == ("A", "object")
    cache = dispatch_cache(mod.fmt)
    # The rejected edit registers B, dispatches (caching B -> "B"), then fails.
    broken = HIERARCHY + FOR_B + "\nSEEN = fmt(B())\nX = undefined_name\n"
    with pytest.raises(ReloadError):
        apply_edit(mod, broken, dedent=False)
    assert dispatch_cache(mod.fmt) == cache
    assert mod.fmt(mod.B()) == "A"
    assert set(mod.fmt.registry) == {object, mod.A}


def test_a_rolled_back_edit_of_a_dispatching_method_leaves_its_caches(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """\
import functools

class A:
    pass

class B(A):
    pass

class Formatter:
    @functools.singledispatchmethod
    def fmt(self, x):
        return "object"

    @fmt.register
    def _(self, x: A):
        return "A"
"""
    mod = package.module("dispatch_method_rollback", v1)
    formatter = mod.Formatter()
    assert formatter.fmt(mod.B()) == "A"
    method = mod.Formatter.__dict__["fmt"]
    caches = [dict(cache.items()) for cache in _caches_of(method)]
    broken = (
        v1
        + '\n    @fmt.register\n    def _(self, x: B):\n        return "B"\n'
        + "\nSEEN = Formatter().fmt(B())\nX = undefined_name\n"
    )
    with pytest.raises(ReloadError):
        apply_edit(mod, broken, dedent=False)
    assert formatter.fmt(mod.B()) == "A"
    assert [dict(cache.items()) for cache in _caches_of(method)] == caches


def _caches_of(method: functools.singledispatchmethod[typing.Any]) -> list[typing.Any]:
    caches = [method.dispatcher._clear_cache.__self__]  # type: ignore[attr-defined]
    own = vars(method).get("_method_cache")  # 3.13: bound methods by instance
    return [*caches, own] if own is not None else caches


# -- several definitions of one name in a class body ---------------------------------------

METHODS = """\
import functools

HELD = []

def hold(function):
    HELD.append(function)
    return function

class Formatter:
    K = 1

    @functools.singledispatchmethod
    def fmt(self, x):
        return "object"

    @fmt.register
    def _(self, x: int):
        return "int"

    @fmt.register
    def _(self, x: str):
        return "str"

    @hold
    def twice(self):
        return "first"

    @hold
    def twice(self):
        return "second"
"""


def dispatching(mod: ModuleType) -> list[str]:
    formatter = mod.Formatter()
    return [formatter.fmt(1), formatter.fmt("a")]


def held_handles(mod: ModuleType) -> list[typing.Any]:
    registry = mod.Formatter.__dict__["fmt"].dispatcher.registry
    return [registry[int], registry[str]]


@pytest.mark.parametrize(
    ("label", "edit"),
    [
        ("body of the first", lambda s: s.replace('"int"', '"int v2"')),
        ("body of the first twin", lambda s: s.replace('"first"', '"first v2"')),
        (
            "with a class attribute (the class is built again)",
            lambda s: s.replace('"int"', '"int v2"').replace("K = 1", "K = 2"),
        ),
        (
            "lines moved, then the first edited",
            lambda s: s.replace("    K = 1\n", "    K = 1\n    # a note\n    # another\n"),
        ),
    ],
)
def test_each_same_named_method_runs_its_own_new_code(
    package: TemporaryPackage, engine: Engine, label: str, edit: typing.Any
) -> None:
    mod = package.module(f"same_methods_{abs(hash(label))}", METHODS)
    handles = held_handles(mod)
    held = list(mod.HELD)
    v2 = edit(METHODS)
    apply_edit(mod, v2, dedent=False)
    if "moved" in label:  # the definitions are known by their new lines now
        v2 = v2.replace('"int"', '"int v2"').replace('"first"', '"first v2"')
        apply_edit(mod, v2, dedent=False)
    fresh = fresh_import(mod)
    assert dispatching(mod) == dispatching(fresh)
    expected_handles = [h(fresh.Formatter(), None) for h in held_handles(fresh)]
    assert [h(mod.Formatter(), None) for h in handles] == expected_handles
    # Twins are held in HELD: each held one runs its own definition's new code.
    assert [f(mod.Formatter()) for f in held] == [f(fresh.Formatter()) for f in fresh.HELD]
    assert held == mod.HELD


def test_a_registration_inserted_above_in_a_class_keeps_the_held_ones(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("same_methods_insert", METHODS)
    handles = held_handles(mod)
    float_first = '    @fmt.register\n    def _(self, x: float):\n        return "float"\n\n'
    v2 = METHODS.replace(
        "    @fmt.register\n    def _(self, x: int)",
        float_first + "    @fmt.register\n    def _(self, x: int)",
    )
    apply_edit(mod, v2, dedent=False)
    formatter = mod.Formatter()
    assert [formatter.fmt(s) for s in (1, "a", 1.5)] == ["int", "str", "float"]
    v3 = v2.replace('"int"', '"int v3"').replace('"str"', '"str v3"')
    apply_edit(mod, v3, dedent=False)
    fresh = fresh_import(mod)
    expected = [fresh.Formatter().fmt(s) for s in (1, "a", 1.5)]
    assert [formatter.fmt(s) for s in (1, "a", 1.5)] == expected == ["int v3", "str v3", "float"]
    assert [handle(formatter, None) for handle in handles] == ["int v3", "str v3"]


# -- typing.get_overloads ------------------------------------------------------------------

OVERLOADS = """\
import typing

@typing.overload
def double(x: int) -> int: ...

@typing.overload
def double(x: str) -> str: ...

def double(x):
    return x * 2

class C:
    @typing.overload
    def m(self, x: int) -> int: ...

    @typing.overload
    def m(self, x: str) -> str: ...

    def m(self, x):
        return x
"""
FLOAT_STUBS = OVERLOADS.replace(
    "def double(x):", "@typing.overload\ndef double(x: float) -> float: ...\n\ndef double(x):"
).replace(
    "    def m(self, x):",
    "    @typing.overload\n    def m(self, x: float) -> float: ...\n\n    def m(self, x):",
)
NO_STR = FLOAT_STUBS.replace("@typing.overload\ndef double(x: str) -> str: ...\n\n", "").replace(
    "    @typing.overload\n    def m(self, x: str) -> str: ...\n\n", ""
)
LIST_ON_TOP = OVERLOADS.replace(
    "import typing\n", "import typing\n\n@typing.overload\ndef double(x: list) -> list: ...\n"
)
EDITS = {
    "a stub made a plain function in place (no line moves)": OVERLOADS.replace(
        "@typing.overload\ndef double(x: str) -> str: ...\n", "def unrelated(): ...\n\n"
    ),
    "an implementation edited": OVERLOADS.replace("x * 2", "x * 3"),
    "lines moved": "# a comment\n\n" + OVERLOADS,
    "a stub edited": OVERLOADS.replace("x: str) -> str", "x: bytes) -> bytes"),
    "a stub added": FLOAT_STUBS,
    "a stub inserted on top": LIST_ON_TOP,
}


def overloads(module: ModuleType) -> list[list[tuple[str, int]]]:
    """The signatures and first lines of what ``typing.get_overloads`` gives for the
    module's two functions."""
    functions = (module.double, module.C.m)
    return [
        [(str(inspect.signature(o)), o.__code__.co_firstlineno) for o in typing.get_overloads(f)]
        for f in functions
    ]


def fresh_overloads(module: ModuleType) -> list[list[tuple[str, int]]]:
    fresh = fresh_import(module)
    try:
        return overloads(fresh)
    finally:
        typing._overload_registry.pop(fresh.__name__, None)  # type: ignore[attr-defined]


@pytest.mark.parametrize("label", sorted(EDITS))
def test_get_overloads_after_an_edit_is_a_fresh_imports(
    package: TemporaryPackage, engine: Engine, label: str
) -> None:
    mod = package.module(f"overloads_{sorted(EDITS).index(label)}", OVERLOADS)
    apply_edit(mod, EDITS[label], dedent=False)
    assert overloads(mod) == fresh_overloads(mod)


def test_get_overloads_through_a_sequence_of_edits(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("overloads_sequence", OVERLOADS)
    stubs = typing.get_overloads(mod.double)
    for source in (FLOAT_STUBS, NO_STR, OVERLOADS, LIST_ON_TOP, "# moved\n" + NO_STR):
        apply_edit(mod, source, dedent=False)
        assert overloads(mod) == fresh_overloads(mod), source
    assert typing.get_overloads(mod.double)[0] is stubs[0]  # the int stub is the one it was


def test_a_rolled_back_edit_leaves_get_overloads_as_it_was(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("overloads_rollback", OVERLOADS)
    before = [typing.get_overloads(f) for f in (mod.double, mod.C.m)]
    with pytest.raises(ReloadError):
        apply_edit(mod, LIST_ON_TOP + "\nX = undefined_name\n", dedent=False)
    after = [typing.get_overloads(f) for f in (mod.double, mod.C.m)]
    assert [len(stubs) for stubs in after] == [2, 2]
    assert all(
        a is b
        for old, new in zip(before, after, strict=True)
        for a, b in zip(old, new, strict=True)
    )


PROPERTY = """\
class Box:
    K = 1

    @property
    def size(self):
        return ("get", 1)

    @size.setter
    def size(self, value):
        self.stored = ("set", 1, value)
"""


@pytest.mark.parametrize("rebuilt", [False, True])
def test_a_property_and_its_setter_each_run_their_new_code(
    package: TemporaryPackage, engine: Engine, rebuilt: bool
) -> None:
    mod = package.module(f"same_property_{int(rebuilt)}", PROPERTY)
    getter, setter = mod.Box.size.fget, mod.Box.size.fset
    box = mod.Box()
    v2 = PROPERTY.replace('("get", 1)', '("get", 2)').replace('("set", 1,', '("set", 2,')
    if rebuilt:
        v2 = v2.replace("K = 1", "K = 2")
    apply_edit(mod, v2, dedent=False)
    box.size = "x"
    setter(box, "y")
    assert (box.size, getter(box), box.stored) == (("get", 2), ("get", 2), ("set", 2, "y"))
    fresh = fresh_import(mod).Box()
    fresh.size = "y"
    assert (fresh.size, fresh.stored) == (box.size, box.stored)
