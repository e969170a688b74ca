"""Class attributes computed from changed code are computed again, as a fresh import would
(``class C: K = f(1)``, ``N = len(E)`` after a member is added), in the module and in its
importers; class attributes that depend on nothing changed keep their value."""

from __future__ import annotations

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage

BASE = """\
import enum


def f(x):
    return x + 1


class E(enum.Enum):
    A = 1
    B = 2


class C:
    \"\"\"Values computed by the class body.\"\"\"

    K = f(1)
    N = len(E)
    NAMES = [member.name for member in E]

    def m(self):
        return self.K
"""

IMPORTER = """\
from cv_base import f, E


class D:
    K = f(10)
    PLAIN = [7]
"""


def test_class_attributes_follow_the_code_that_computed_them(
    package: TemporaryPackage, engine: Engine
) -> None:
    base = package.module("cv_base", BASE)
    importer = package.module("cv_importer", IMPORTER)
    c_class, d_class = base.C, importer.D
    assert (base.C.K, base.C.N, base.C.NAMES, importer.D.K) == (2, 2, ["A", "B"], 11)

    package.write(
        "cv_base.py",
        BASE.replace("x + 1", "x + 100").replace("    B = 2\n", "    B = 2\n    Z = 3\n"),
    )
    relive.refresh()

    assert base.C is c_class and importer.D is d_class
    assert (base.C.K, base.C.N, base.C.NAMES, base.C().m()) == (101, 3, ["A", "B", "Z"], 101)
    assert (importer.D.K, importer.D.PLAIN) == (110, [7])
