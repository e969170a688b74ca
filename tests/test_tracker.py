"""The tracker's import graph follows reloads: who imports whom, as the sources say now."""

from __future__ import annotations

import relive
from relive.engine import Engine
from relive.testing import TemporaryPackage, write_source


def importers(engine: Engine, name: str) -> set[str]:
    engine.tracker.scan()  # as every reload does first: modules imported since are tracked
    return {tracked.name for tracked in engine.tracker.importers_of(name)}


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
