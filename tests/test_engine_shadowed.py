"""A definition that a later, unchanged statement shadows, and definitions that come back.

A fresh import ends with the later binding (``try: from ._speedups import fast``,
``f = wrapper(f)``): editing the earlier definition patches what it made and leaves the
name as the later statement bound it. A function or class removed by one save and restored
by a later one (same qualified name, same module) is the object it was, patched.
"""

from __future__ import annotations

import pytest

from relive import RestartRequired
from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit


def test_an_accelerated_version_stays_bound(package: TemporaryPackage, engine: Engine) -> None:
    package.write("shadow_pkg/__init__.py", "")
    package.write("shadow_pkg/_speedups.py", "def fast():\n    return 'accelerated'\n")
    v1 = """\
def fast():
    return "pure v1"

def slow():
    return "slow v1"

try:
    from ._speedups import fast
except ImportError:
    pass
"""
    mod = package.module("shadow_pkg.core", v1)
    accelerated = mod.fast
    apply_edit(mod, v1.replace("pure v1", "pure v2"), dedent=False)
    assert mod.fast is accelerated and mod.fast() == "accelerated"
    apply_edit(mod, v1.replace("def fast():", "def fast(*args):"), dedent=False)
    assert mod.fast is accelerated and mod.fast() == "accelerated"


def test_a_fallback_without_an_accelerated_version_is_the_one_edited(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """\
def fast():
    return "pure v1"

try:
    from shadow_no_such_module import fast
except ImportError:
    pass
"""
    mod = package.module("shadow_fallback", v1)
    fast = mod.fast
    apply_edit(mod, v1.replace("pure v1", "pure v2"), dedent=False)
    assert mod.fast is fast and fast() == "pure v2"


def test_a_wrapper_bound_over_the_function_stays(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """\
import functools

def wrapper(function):
    @functools.wraps(function)
    def wrapped(*args):
        return ("wrapped", function(*args))
    return wrapped

def f(x):
    return x + 1

f = wrapper(f)
"""
    mod = package.module("shadow_wrapper", v1)
    wrapped = mod.f
    apply_edit(mod, v1.replace("x + 1", "x + 2"), dedent=False)
    assert mod.f is wrapped and wrapped(1) == ("wrapped", 3)
    # A new signature: the function is made again, the wrapper too, as a fresh import does.
    apply_edit(mod, v1.replace("def f(x):\n    return x + 1", "def f(x, y=5):\n    return x + y"))
    assert mod.f(1) == ("wrapped", 6)


def test_a_shadowed_class_is_patched_and_its_subclasses_follow(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """\
class Base:
    def who(self):
        return "base v1"

class Child(Base):
    pass

def registered(cls):
    return cls

Base = registered(Base)
Alias = Base
Base = type("Base", (Base,), {"__module__": __name__})
"""
    mod = package.module("shadow_class", v1)
    child = mod.Child()
    shadow = mod.Base
    apply_edit(mod, v1.replace("base v1", "base v2"), dedent=False)
    assert child.who() == "base v2"
    assert mod.Base is shadow and mod.Alias is type(child).__mro__[1]


def test_a_removed_class_restored_is_the_same_class(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = "class User:\n    kind = 'v1'\n\n    def hi(self):\n        return 'v1'\n\nX = 1\n"
    mod = package.module("graveyard_class", v1)
    user = mod.User()
    apply_edit(mod, "X = 1\n")
    assert not hasattr(mod, "User")
    apply_edit(
        mod, "X = 1\n\nclass User:\n    kind = 'v2'\n\n    def hi(self):\n        return 'v2'\n"
    )
    assert isinstance(user, mod.User)
    assert (user.hi(), mod.User.kind) == ("v2", "v2")


def test_a_removed_function_restored_is_the_same_function(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = "def f():\n    return 1\n"
    mod = package.module("graveyard_function", v1)
    held = mod.f
    apply_edit(mod, "X = 1\n")
    apply_edit(mod, "X = 1\n\ndef f(y=2):\n    return y\n")
    assert mod.f is held and held() == 2


def test_a_class_restored_with_other_bases_is_a_new_class(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("graveyard_bases", "class A:\n    pass\n\nclass B:\n    pass\n")
    old_b = mod.B
    apply_edit(mod, "class A:\n    pass\n")
    apply_edit(mod, "class A:\n    pass\n\nclass B(A):\n    pass\n")
    assert mod.B is not old_b and issubclass(mod.B, mod.A)


def test_a_class_moved_out_of_a_statement_with_other_bases_is_refused(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = "class A:\n    pass\n\nif True:\n    class B:\n        pass\n"
    mod = package.module("moved_bases", v1)
    with pytest.raises(RestartRequired):
        apply_edit(mod, "class A:\n    pass\n\nclass B(A):\n    pass\n")


def test_a_shadowing_statement_removed_gives_the_name_back(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.module("shadow_source", "def fast():\n    return 'accelerated'\n")
    own = "def fast():\n    return 'own'\n"
    v1 = own + "\ntry:\n    from shadow_source import fast\nexcept ImportError:\n    pass\n"
    mod = package.module("shadow_removed", v1)
    assert mod.fast() == "accelerated"
    apply_edit(mod, own, dedent=False)
    assert mod.fast() == "own"
    apply_edit(mod, v1, dedent=False)
    assert mod.fast() == "accelerated"
