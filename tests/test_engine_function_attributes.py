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
