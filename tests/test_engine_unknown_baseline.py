"""A module edited before relive first saw it: its text at import is not known for certain.

``import m``, edit ``m.py``, then ``relive.get_engine()`` (``%load_ext relive``,
``relive.watch()`` started after the imports): the first apply makes the module what a
fresh import of the current text makes it, never assuming the file on disk is what ran.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

import relive
from relive.testing import TemporaryPackage, write_source

V1 = """\
LIMIT = 1

class Box:
    size = 1
    colour = "red"

    def describe(self):
        return f"box v1 {self.size}"

def gone():
    return "gone"

def f():
    return "f v1"
"""
V2 = """\
LIMIT = 2

class Box:
    size = 2

    def describe(self):
        return f"box v2 {self.size}"

def f():
    return "f v2"
"""


@pytest.fixture
def bytecode() -> Iterator[None]:
    """Imports write .pyc files (the environment may turn that off)."""
    before = sys.dont_write_bytecode
    sys.dont_write_bytecode = False
    try:
        yield
    finally:
        sys.dont_write_bytecode = before


def test_the_first_apply_is_a_fresh_import_of_the_current_text(
    package: TemporaryPackage,
) -> None:
    mod = package.module("unknown_first", V1)
    box, f, box_class = mod.Box(), mod.f, mod.Box
    write_source(mod.__file__ or "", V2)
    relive.get_engine()  # relive sees the module only now
    relive.refresh()
    assert (mod.LIMIT, mod.Box.size, box.describe(), f()) == (2, 2, "box v2 2", "f v2")
    assert mod.Box is box_class and mod.f is f and isinstance(box, mod.Box)
    assert not hasattr(mod, "gone") and not hasattr(mod.Box, "colour")
    # From then on, its text is known: the next edit is an ordinary one.
    write_source(mod.__file__ or "", V2.replace("f v2", "f v3"))
    report = relive.refresh()
    assert f() == "f v3" and report.modules[0].patched == ("f",)


def test_a_same_size_edit_within_the_second_of_the_pyc_is_not_trusted(
    package: TemporaryPackage, bytecode: None
) -> None:
    v1 = "X = 1\n\ndef g():\n    return 1\n"
    mod = package.module("unknown_same_second", v1)
    assert mod.__cached__ and os.path.exists(mod.__cached__)
    path = mod.__file__ or ""
    status = os.stat(path)
    write_source(path, v1.replace("1", "2"))  # the same size
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))  # and the same time stamp
    relive.get_engine()
    relive.refresh()
    assert (mod.X, mod.g()) == (2, 2)


def test_a_pyc_of_the_text_on_disk_is_trusted(package: TemporaryPackage, bytecode: None) -> None:
    v1 = "import itertools\nCOUNTER = itertools.count()\n\ndef g():\n    return next(COUNTER)\n"
    mod = package.module("unknown_trusted", v1)
    counter = mod.COUNTER
    relive.get_engine()
    write_source(mod.__file__ or "", v1.replace("next(COUNTER)", "next(COUNTER) * 10"))
    relive.refresh()
    assert mod.COUNTER is counter and mod.g() == 0  # the unchanged statement kept its state


def test_names_set_by_code_run_at_import_stay(package: TemporaryPackage) -> None:
    v1 = "def init():\n    global CONFIG\n    CONFIG = 5\n\ninit()\n\ndef f():\n    return CONFIG\n"
    mod = package.module("unknown_global", v1)
    write_source(mod.__file__ or "", v1.replace("return CONFIG", "return CONFIG + 1"))
    relive.get_engine()
    relive.refresh()
    assert mod.CONFIG == 5 and mod.f() == 6
