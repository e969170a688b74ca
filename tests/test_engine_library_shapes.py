"""Shapes of real libraries' modules that the library judge (tools/libjudge.py) found
mishandled: an import deleted once used (toolz.curried: ``import toolz``, ``X =
toolz.curry(f)``, ``del toolz``), and a module whose ``__file__`` the program set to another
module's file after the import (``tlz`` shows ``toolz``'s). Each edit must end as a fresh
import of the files as they now are."""

from __future__ import annotations

import pytest

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage

MAKER = "def make(x):\n    return x + 1\n"


@pytest.mark.parametrize(
    ("user", "name"),
    [
        ("import shapes_maker\n\nX = shapes_maker.make(1)\n\ndel shapes_maker\n", "shapes_maker"),
        ("from shapes_pkg import maker\n\nX = maker.make(1)\n\ndel maker\n", "maker"),
    ],
    ids=["import", "from-import"],
)
def test_a_value_derived_through_an_import_deleted_later_is_computed_again(
    package: TemporaryPackage, engine: Engine, user: str, name: str
) -> None:
    package.write("shapes_maker.py", MAKER)
    package.write("shapes_pkg/__init__.py", "")
    package.write("shapes_pkg/maker.py", MAKER)
    mod = package.module("shapes_user", user)
    assert mod.X == 2
    maker = "shapes_maker.py" if name == "shapes_maker" else "shapes_pkg/maker.py"
    package.write(maker, MAKER.replace("x + 1", "x + 2"))
    relive.refresh()
    assert mod.X == 3  # a fresh import computes it with the new code
    assert name not in vars(mod)  # and ends with the name deleted


REAL = '"""Real doc."""\n\n\ndef f():\n    return 1\n'
MIRROR = (
    '"""Mirror doc."""\nimport shapes_real\nfrom shapes_real import f\n\n'
    "__file__ = shapes_real.__file__\n"
)


def test_a_module_showing_another_file_is_not_run_with_that_files_code(
    package: TemporaryPackage, engine: Engine
) -> None:
    real = package.module("shapes_real", REAL)
    mirror = package.module("shapes_mirror", MIRROR)
    assert mirror.__file__ == real.__file__
    package.write("shapes_real.py", "# edited\n" + REAL.replace("return 1", "return 2") + "E = 1\n")
    relive.refresh()
    assert real.f() == 2 and mirror.f() == 2 and real.E == 1
    assert mirror.__doc__ == "Mirror doc."  # not the other file's docstring
    assert "E" not in vars(mirror)  # nor its statements
    package.write("shapes_mirror.py", MIRROR + "Y = 5\n")
    relive.refresh()
    assert mirror.Y == 5  # its own file's edits still apply
    assert mirror.__doc__ == "Mirror doc."


CORE = """\
from functools import partial
from operator import attrgetter

from . import helpers


class Prop(property):
    def __init__(self, fget, classval=None):
        self.classval = classval
        property.__init__(self, fget)


def prop(fget=None, classval=None):
    if fget is None:
        return partial(prop, classval=classval)
    return Prop(fget, classval)


class Compose:
    __wrapped__ = prop(attrgetter("first"))

    def __init__(self, first):
        self.first = first
"""


def test_a_class_run_again_in_an_import_cycle_runs_once_for_the_code_that_changed(
    package: TemporaryPackage, engine: Engine
) -> None:
    """toolz.functoolz's Compose: its body makes members with a factory of an edited class;
    run again, it rebinds them, the package's star import runs again, the package brings
    the module back (``from . import helpers``): judged stale again, it ran without end and
    every edit of a class of the module was refused as an import cycle that keeps changing."""
    package.write("cyc_pkg/__init__.py", "from .core import *\nfrom . import helpers\n")
    package.write("cyc_pkg/helpers.py", "def one():\n    return 1\n")
    package.write("cyc_pkg/core.py", CORE)
    pkg = package.module("cyc_pkg")
    core = package.module("cyc_pkg.core")
    before = vars(core.Compose)["__wrapped__"]
    package.write(
        "cyc_pkg/core.py",
        CORE.replace("fget)\n", "fget)\n\n    def extra(self):\n        return 2\n", 1),
    )
    relive.refresh()
    wrapped = vars(core.Compose)["__wrapped__"]
    assert wrapped is not before and type(wrapped) is core.Prop  # made again, as fresh
    assert wrapped.extra() == 2 and core.Compose(5).__wrapped__ == 5
    assert pkg.Compose is core.Compose and pkg.Prop is core.Prop


META = """\
class Check(type):
    def __instancecheck__(cls, instance):
        return isinstance(instance, cls.__bases__[0])


class Base:
    pass


class Command(Base, metaclass=Check):
    def run(self):
        return "run"
"""


def test_a_method_added_to_a_metaclass_and_its_class_at_once(
    package: TemporaryPackage, engine: Engine
) -> None:
    """click's core.py: a method of one name added to a metaclass and to a class made by
    it. Until the commit the metaclass's new member is a gate (a data descriptor): setting
    the class's own member went through it and the edit was refused (AttributeError)."""
    mod = package.module("meta_both", META)
    command = mod.Command()
    added = "\n    def extra(self):\n        return {!r}\n"
    text = META.replace("cls.__bases__[0])\n", "cls.__bases__[0])\n" + added.format("meta"))
    package.write("meta_both.py", text + added.format("class"))
    relive.refresh()
    assert command.extra() == "class" and mod.Command.extra(command) == "class"
    assert type(mod.Command).extra(mod.Command) == "meta"
    assert isinstance(mod.Base(), mod.Command)
