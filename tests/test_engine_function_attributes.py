"""A function's attributes after an edit are a fresh import's: what its decorators set.

``@tag`` setting ``f.tagged`` removed, added or changed, ``functools.wraps`` copies of its
``__dict__`` (``__wrapped__``), at the top level and in a class body: the function object
keeps its identity (old references run the new code), and its ``__dict__`` holds what a
fresh import's holds. What a later statement of the module set on it stays.
"""

from __future__ import annotations

import types
from typing import Any

import pytest

from harness import fresh_import
from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit

DECORATORS = """\
import functools


def tag(f):
    f.tagged = True
    return f


def tag2(f):
    f.tagged = 2
    f.extra = "x"
    return f


def wrap(f):
    @functools.wraps(f)
    def wrapper(*args):
        return f(*args)

    return wrapper


"""
CASES = {
    "decorator removed": ("@tag\ndef f():\n    return 1\n", "def f():\n    return 1\n"),
    "decorator removed, body edited": (
        "@tag\ndef f():\n    return 1\n",
        "def f():\n    return 2\n",
    ),
    "decorator added": ("def f():\n    return 1\n", "@tag\ndef f():\n    return 1\n"),
    "decorator changed": ("@tag2\ndef f():\n    return 1\n", "@tag\ndef f():\n    return 1\n"),
    "wrapper added": ("@tag\ndef f():\n    return 1\n", "@wrap\n@tag\ndef f():\n    return 1\n"),
    "wrapper removed": ("@wrap\n@tag2\ndef f():\n    return 1\n", "@tag\ndef f():\n    return 1\n"),
    "signature edited, decorator kept": (
        "@tag2\ndef f():\n    return 1\n",
        "@tag2\ndef f(x=1):\n    return 1\n",
    ),
    "an attribute set by a later statement stays": (
        "@tag2\ndef f():\n    return 1\n\n\nf.later = 1\n",
        "def f():\n    return 1\n\n\nf.later = 1\n",
    ),
    "method: decorator removed": (
        "class K:\n    @tag\n    def f(self):\n        return 1\n",
        "class K:\n    def f(self):\n        return 1\n",
    ),
    "method: decorator changed": (
        "class K:\n    @tag2\n    def f(self):\n        return 1\n",
        "class K:\n    @tag\n    def f(self):\n        return 1\n",
    ),
    "method: class rebuilt, decorator kept": (
        "class K:\n    x = 1\n\n    @tag2\n    def f(self):\n        return 1\n",
        "class K:\n    x = 2\n\n    @tag2\n    def f(self):\n        return 1\n",
    ),
}


def function(module: types.ModuleType) -> Any:
    return module.K.__dict__["f"] if "K" in vars(module) else module.f


def attributes(f: Any) -> dict[str, object]:
    """What ``f.__dict__`` holds; a wrapped function by its code's name and result."""
    return {
        name: (value.__qualname__, value(*[None] * value.__code__.co_argcount))
        if name == "__wrapped__"
        else value
        for name, value in vars(f).items()
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_functions_attributes_are_a_fresh_imports(
    package: TemporaryPackage, engine: Engine, case: str
) -> None:
    v1, v2 = CASES[case]
    module = package.module(f"attrs_{sorted(CASES).index(case)}", DECORATORS + v1)
    inner = function(module)
    inner = getattr(inner, "__wrapped__", inner)
    apply_edit(module, DECORATORS + v2, dedent=False)
    live, fresh = function(module), function(fresh_import(module))
    assert attributes(live) == attributes(fresh)
    unwrapped = getattr(live, "__wrapped__", live)
    assert unwrapped is inner  # the function kept its identity
    assert attributes(unwrapped) == attributes(getattr(fresh, "__wrapped__", fresh))


REMOVED_SETTERS = {
    # v1 tail (removed in v2), v2 tail, the owner held, what must be gone, what must stay
    "function": ("f.x = 1\nf.y = 2\n", "f.y = 2\n", "f", {"x"}, {"y"}),
    "setattr": ("setattr(f, 'x', 1)\n", "", "f", {"x"}, set()),
    "augmented": ("f.n = 0\nf.n += 1\n", "", "f", {"n"}, set()),
    "set twice, one left": ("f.x = 1\nf.x = 3\n", "f.x = 3\n", "f", set(), {"x"}),
    "class": ("C.extra = 2\nsetattr(C, 'other', 3)\n", "", "C", {"extra", "other"}, set()),
    "class, other stays": ("C.a = 1\nC.b = 2\n", "C.b = 2\n", "C", {"a"}, {"b"}),
}


@pytest.mark.parametrize("case", sorted(REMOVED_SETTERS))
def test_what_a_removed_statement_set_on_a_definition_goes(
    package: TemporaryPackage, engine: Engine, case: str
) -> None:
    before, after, owner, gone, stays = REMOVED_SETTERS[case]
    base = "def f():\n    return 1\n\n\nclass C:\n    def m(self):\n        return 1\n\n\n"
    name = f"removed_setter_{sorted(REMOVED_SETTERS).index(case)}"
    module = package.module(name, base + before + "Y = 1\n")
    held = getattr(module, owner)
    apply_edit(module, base + after + "Y = 1\n")
    fresh = getattr(fresh_import(module), owner)
    assert getattr(module, owner) is held
    own = {k for k in vars(held) if not k.startswith("__")} - {"m"}
    assert own == {k for k in vars(fresh) if not k.startswith("__")} - {"m"}
    assert not gone & own and stays <= own


def test_a_definition_a_removed_statement_set_attributes_of_is_built_again(
    package: TemporaryPackage, engine: Engine
) -> None:
    # The removed statement's value hid the decorator's (g.tagged) and the class body's (K.k):
    # a fresh import has those, so the definition is built again (same objects).
    base = DECORATORS + "\n\n@tag\ndef g():\n    return 1\n\n\nclass K:\n    k = 1\n\n\n"
    module = package.module("removed_setter_rebuilt", base + "g.tagged = 5\nK.k = 2\nK.z = 3\n")
    g, k = module.g, module.K
    apply_edit(module, base)
    assert (module.g.tagged, module.K.k, hasattr(module.K, "z")) == (True, 1, False)
    assert module.g is g and module.K is k
