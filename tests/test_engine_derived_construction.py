"""A top-level statement that calls a class runs again only when the code its construction
runs changed (the metaclass's ``__call__``, ``__new__``, ``__init__``, ``__post_init__``
along the MRO and what they call on the instance), not for another member: an instance's
class is patched in place, so its other methods already run the new code. A class read
whole (``vars(C)``, a dataclass's defaults) still follows every member.
"""

from __future__ import annotations

import sys

from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit

PLUGIN = (
    "import bus\n\n\nclass Plugin:\n    def __init__(self):\n        self.n = 1\n\n"
    "    def run(self):\n        return 1\n\n\np = Plugin()\nbus.REGISTRY.append(p)\n"
)
EXTRA = "    def extra(self):\n        return 0\n\n"


def test_adding_a_method_does_not_register_an_instance_again(
    package: TemporaryPackage, engine: Engine
) -> None:
    bus = package.module("bus", "REGISTRY = []\n")
    plugin = package.module("plugin", PLUGIN)
    held = plugin.p
    with_extra = PLUGIN.replace("    def run", EXTRA + "    def run").replace(
        "return 1", "return 2"
    )
    report = apply_edit(plugin, with_extra, dedent=False)
    assert [held] == bus.REGISTRY and plugin.p is held
    assert held.run() == 2 and held.extra() == 0
    assert all(12 not in module.executed for module in report.modules)


def test_a_changed_init_keeps_the_instance_and_an_added_one_runs_again(
    package: TemporaryPackage, engine: Engine
) -> None:
    """A patched ``__init__`` runs for new instances only (``__relive_migrate__`` upgrades
    the kept ones); an ``__init__`` added (or a default it reads rebound) makes another."""
    package.module("bus", "REGISTRY = []\n")
    plain = PLUGIN.replace("    def __init__(self):\n        self.n = 1\n\n", "")
    plugin = package.module("plugin", plain)
    held = plugin.p
    apply_edit(plugin, plain.replace("return 1", "return 3"), dedent=False)
    assert plugin.p is held
    apply_edit(plugin, PLUGIN, dedent=False)
    assert plugin.p is not held and plugin.p.n == 1
    held = plugin.p
    apply_edit(plugin, PLUGIN.replace("self.n = 1", "self.n = 2"), dedent=False)
    assert plugin.p is held and plugin.Plugin().n == 2
    v1 = PLUGIN.replace("self.n = 1", "self.n = self.N").replace(
        "    def __init__", "    N = 1\n\n    def __init__"
    )
    apply_edit(plugin, v1, dedent=False)
    held = plugin.p
    apply_edit(plugin, v1.replace("N = 1", "N = 7"), dedent=False)
    assert plugin.p is not held and plugin.p.n == 7


def test_a_meta_path_importer_made_at_top_level_is_installed_once(
    package: TemporaryPackage, engine: Engine
) -> None:
    """six's shape: ``_importer = _SixMetaPathImporter(__name__)`` then
    ``sys.meta_path.append(_importer)``; a method added to the importer's class."""
    v1 = (
        "import sys\n\n\nclass _Importer:\n    def __init__(self, name):\n"
        "        self.name = name\n\n    def find_spec(self, fullname, path, target=None):\n"
        "        return None\n\n\n_importer = _Importer(__name__)\n"
        "sys.meta_path.append(_importer)\n"
    )

    def installed() -> list[object]:
        return [item for item in sys.meta_path if type(item).__name__ == "_Importer"]

    try:
        module = package.module("sixlike", v1)
        held = module._importer
        v2 = v1.replace(
            "    def find_spec",
            "    def is_package(self, fullname):\n        return False\n\n    def find_spec",
        )
        apply_edit(module, v2, dedent=False)
        assert installed() == [held] and module._importer.is_package("x") is False
    finally:
        for item in installed():
            sys.meta_path.remove(item)


def test_a_class_read_whole_still_follows_a_new_member(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = (
        "import dataclasses\n\n\nclass C:\n    def a(self):\n        return 0\n\n\n"
        "NAMES = sorted(n for n in vars(C) if not n.startswith('_'))\nc = C()\n\n\n"
        "@dataclasses.dataclass\nclass D:\n    x: int = 1\n\n\nd = D()\n"
    )
    module = package.module("whole", v1)
    held = module.c
    v2 = v1.replace(
        "        return 0\n", "        return 0\n\n    def b(self):\n        return 1\n"
    )
    apply_edit(module, v2.replace("x: int = 1", "x: int = 2"), dedent=False)
    assert module.NAMES == ["a", "b"] and module.c is held and module.d.x == 2


def test_a_value_run_again_in_an_import_cycle_is_not_run_again_for_code_below_it(
    package: TemporaryPackage, engine: Engine
) -> None:
    """pyparsing.core's shape: ``X = P().m()`` runs again for ``m``'s new code; a function
    defined below it is given new code later in the same run; an importer in the cycle
    reads ``X`` and the module again. ``X`` is not stale again: the cycle settles."""
    v1 = (
        "class P:\n    def m(self):\n        return [1]\n\n\nX = P().m()\n\n\n"
        "def later():\n    return 1\n\n\nfrom cyc_b import Y  # noqa: E402\n"
    )
    package.write("cyc_b.py", "from cyc_a import X\n\nY = [X]\n")
    module = package.module("cyc_a", v1)
    other = sys.modules["cyc_b"]
    v2 = v1.replace("return [1]", "return [2]").replace("return 1\n", "return 3\n")
    apply_edit(module, v2, dedent=False)
    assert module.X == [2] and other.Y == [[2]] and module.Y is other.Y
    assert module.later() == 3
