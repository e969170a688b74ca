"""Importers are filtered on the names their top-level code loads before anything is parsed."""

from __future__ import annotations

from relive._codenames import may_load, top_level_names
from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit

BASE = "LIMIT = {limit}\n\n\ndef compute():\n    return {result}\n"

READERS = {
    # read only inside function bodies: the top-level code never loads LIMIT or compute
    "cn_bodies": "import cn_base\n\n\ndef live():\n    return cn_base.LIMIT + cn_base.compute()\n",
    # read where code runs at import: each must follow, as a fresh import would
    "cn_class": "import cn_base\n\n\nclass Box:\n    size = cn_base.LIMIT\n",
    "cn_comp": "import cn_base\n\nVALUES = [cn_base.LIMIT * i for i in range(3)]\n",
    "cn_default": "import cn_base\n\n\ndef f(x=cn_base.LIMIT):\n    return x\n",
    "cn_call": "import cn_base\n\nRESULT = cn_base.compute()\n",
    "cn_star": "from cn_base import *\n\nDOUBLE = LIMIT * 2\n",
    "cn_member": "from cn_base import LIMIT as L\n\nDOUBLE = L * 2\n",
    # its own function named like the base's: not a read of it
    "cn_own": "def compute():\n    return 1\n\n\nimport cn_base\n\nOWN = compute()\n",
}


def test_importers_follow_and_those_that_never_load_the_names_are_not_parsed(
    package: TemporaryPackage, engine: Engine
) -> None:
    base = package.module("cn_base", BASE.format(limit=1, result=10))
    users = {name: package.module(name, source) for name, source in READERS.items()}
    apply_edit(base, BASE.format(limit=5, result=20))
    assert users["cn_bodies"].live() == 25
    assert users["cn_class"].Box.size == 5
    assert users["cn_comp"].VALUES == [0, 5, 10]
    assert users["cn_default"].f() == 5
    assert users["cn_call"].RESULT == 20
    assert users["cn_star"].DOUBLE == 10 and users["cn_member"].DOUBLE == 10
    analysed = {name: engine.tracked_module(name).is_analysed for name in READERS}  # type: ignore[union-attr]
    # Parsed whole: only those whose class or definition must be rebuilt, and the star
    # import (no index); the plain statements that read LIMIT are cut out alone.
    whole = ("cn_class", "cn_default", "cn_star")
    assert analysed == {name: name in whole for name in READERS}
    assert users["cn_own"].OWN == 1


def test_top_level_names_cover_class_bodies_comprehensions_and_defaults_not_def_bodies() -> None:
    source = (
        "import m\n"
        "X = [m.A for _ in range(2)]\n"
        "class K:\n    y = m.B\n    def g(self):\n        return m.C\n"
        "def f(z=m.D):\n    return m.E\n"
        "G = (lambda: m.F)()\n"
    )
    names = top_level_names(source, "<test>")
    assert names is not None
    assert {"A", "B", "D", "F"} <= names and not {"C", "E"} & names
    assert top_level_names("from m import *\n", "<test>") is None
    assert top_level_names("x = (\n", "<test>") is None
    assert may_load(names, {"B.member"}) and not may_load(names, {"C", "E"})
    assert may_load(None, {"anything"})
    # Its own names are not another module's: only imported names and attributes count.
    own = top_level_names("from m import X as Y\ndef f():\n    pass\nZ = f() + Y\n", "<t>")
    assert own == {"X"}
