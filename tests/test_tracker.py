"""The tracker's import graph follows reloads: who imports whom, as the sources say now."""

from __future__ import annotations

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage, write_source


def importers(engine: Engine, name: str) -> set[str]:
    engine.track_new_modules()  # as every reload does first
    return {tracked.name for tracked in engine._tracker.importers_of(name)}  # the internals


def test_importers_follow_edits_that_add_and_drop_imports(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.module("graph_a", "X = 1\n")
    package.module("graph_c", "Y = 2\n")
    b = package.module("graph_b", "from graph_a import X\n")
    assert importers(engine, "graph_a") == {"graph_b"}
    assert importers(engine, "graph_c") == set()

    write_source(b.__file__, "from graph_c import Y\n")
    relive.reload(b)
    assert importers(engine, "graph_a") == set()
    assert importers(engine, "graph_c") == {"graph_b"}

    write_source(b.__file__, "import graph_a\nfrom graph_c import Y\n")
    relive.reload(b)
    assert importers(engine, "graph_a") == {"graph_b"}


def test_a_failed_reload_leaves_the_graph_as_it_was(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.module("graph_d", "X = 1\n")
    e = package.module("graph_e", "from graph_d import X\n")
    write_source(e.__file__, "import graph_missing_module\n")
    try:
        relive.reload(e)
    except relive.ReloadError:
        pass
    else:
        raise AssertionError("importing a missing module must fail the reload")
    assert importers(engine, "graph_d") == {"graph_e"}


def test_a_forgotten_module_is_no_importer(package: TemporaryPackage, engine: Engine) -> None:
    import sys

    package.module("graph_f", "X = 1\n")
    package.module("graph_g", "from graph_f import X\n")
    assert importers(engine, "graph_f") == {"graph_g"}
    del sys.modules["graph_g"]
    assert importers(engine, "graph_f") == set()


def test_a_good_file_from_a_failed_batch_applies_with_the_fix(
    package: TemporaryPackage, engine: Engine
) -> None:
    good = package.module("batch_good", "def value():\n    return 1\n")
    bad = package.module("batch_bad", "def value():\n    return 1\n")
    write_source(good.__file__, "def value():\n    return 2\n")
    write_source(bad.__file__, "def value(:\n    return 2\n")
    try:
        engine.apply_paths([good.__file__, bad.__file__])
    except relive.ReloadError as exc:
        assert exc.path is not None and exc.path.endswith("batch_bad.py")
    else:
        raise AssertionError("the broken file must fail the batch")
    assert good.value() == 1  # one transaction: nothing applied
    # The watcher's next batch holds only the fixed file; the good edit comes along.
    write_source(bad.__file__, "def value():\n    return 3\n")
    report = engine.apply_paths([bad.__file__])
    assert set(report.reloaded) == {"batch_good", "batch_bad"}
    assert (good.value(), bad.value()) == (2, 3)


BLIND = """import functools
import reach_pkg.base


def transform(x):
    return x * 2


@functools.lru_cache
def cached(x):
    return transform(x)


Y = transform(3)
"""


def test_importers_of_the_package_follow_an_edit_only_when_their_text_names_the_module(
    package: TemporaryPackage, engine: Engine
) -> None:
    # Every module imports the package (``import reach_pkg.base``), so each could reach
    # ``reach_pkg.leaf`` as an attribute; only text naming ``leaf`` (or a star import) can:
    # ``blind`` is not even looked at for an edit of the leaf.
    package.write("reach_pkg/__init__.py", "")
    package.write("reach_pkg/base.py", "BASE = 1\n")
    leaf = package.module("reach_pkg.leaf", "def transform(x):\n    return x + 1\n")
    package.write(
        "reach_pkg/blind.py",
        BLIND,
    )
    package.write(
        "reach_pkg/named.py",
        "import reach_pkg.base\nimport reach_pkg.leaf\n\nY = reach_pkg.leaf.transform(3)\n",
    )
    blind, named = (package.module(f"reach_pkg.{n}") for n in ("blind", "named"))
    assert (blind.Y, named.Y, blind.cached(3)) == (6, 4, 6)
    relive.refresh()

    write_source(leaf.__file__, "def transform(x):\n    return x + 10\n")
    relive.reload(leaf)
    assert (blind.Y, named.Y) == (6, 13)
    # Its cache of its own ``transform`` stays (it was cleared as stale before).
    assert blind.cached.cache_info().currsize == 1
    # Once its text names the module, it is followed again.
    write_source(
        blind.__file__,
        BLIND + "import reach_pkg.leaf\n\nZ = reach_pkg.leaf.transform(0)\n",
    )
    relive.reload(blind)
    assert blind.Z == 10
    write_source(leaf.__file__, "def transform(x):\n    return x + 20\n")
    relive.reload(leaf)
    assert (blind.Y, blind.Z, named.Y) == (6, 20, 23)
