"""Lifecycle hooks, kept state and class-shape migration, on real modules."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit, wait_until, write_source

RESOURCE = """
import relive

VERSION = {version}
handle = open(__file__)
closed = []

@relive.before_reload
def close_handle():
    closed.append(handle)
    handle.close()

@relive.after_reload
def reopen_handle():
    global handle
    handle = open(__file__)
"""


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_hooks_close_and_reopen_a_resource_across_100_reloads(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("life_fd", RESOURCE.format(version=0))
    first = mod.handle
    before = _open_fds()
    for version in range(1, 101):
        apply_edit(mod, RESOURCE.format(version=version))
        assert (mod.VERSION, mod.handle.closed) == (version, False)
    assert _open_fds() == before
    assert len(mod.closed) == 100
    assert first.closed and all(handle.closed for handle in mod.closed)
    assert not mod.handle.closed


def test_an_after_hook_that_raises_rolls_the_reload_back(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module(
        "life_raise",
        """
        import relive

        def f():
            return 1

        @relive.after_reload
        def check():
            pass
        """,
    )
    with pytest.raises(relive.ReloadError) as caught:
        apply_edit(
            mod,
            """
            import relive

            def f():
                return 2

            @relive.after_reload
            def check():
                raise ValueError("tables out of date")
            """,
        )
    error = caught.value
    assert mod.f() == 1
    assert error.path == mod.__file__ and error.lineno == 9
    assert error.line == 'raise ValueError("tables out of date")'
    assert "after_reload hook check() raised ValueError" in str(error)
    assert isinstance(error.__cause__, ValueError)


def test_a_failed_reload_runs_after_hooks_again_to_rebuild_what_before_hooks_tore_down(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("life_recover", RESOURCE.format(version=0))
    broken = RESOURCE.format(version=1) + "\n1 / 0\n"
    with pytest.raises(relive.ReloadError, match="ZeroDivisionError"):
        apply_edit(mod, broken)
    assert mod.VERSION == 0
    assert len(mod.closed) == 1 and not mod.handle.closed


def test_a_before_hook_that_raises_rolls_back_and_names_the_hook(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module(
        "life_before",
        """
        import relive

        LIMIT = 1

        @relive.before_reload
        def flush():
            raise OSError("disk full")
        """,
    )
    with pytest.raises(relive.ReloadError, match=r"before_reload hook flush\(\)") as caught:
        apply_edit(mod, "import relive\n\nLIMIT = 2\n")
    assert mod.LIMIT == 1
    assert caught.value.lineno == 8


def test_an_edited_hook_replaces_itself_and_a_removed_hook_stops(
    package: TemporaryPackage, engine: Engine
) -> None:
    source = """
    import relive

    calls = []
    N = {n}

    @relive.after_reload
    def record():
        calls.append(("{tag}", N))
    """
    mod = package.module("life_edit", source.format(n=0, tag="v1"))
    apply_edit(mod, source.format(n=1, tag="v1"))
    apply_edit(mod, source.format(n=2, tag="v2"))
    assert mod.calls == [("v1", 1), ("v2", 2)]
    apply_edit(mod, "import relive\n\ncalls = []\nN = 3\n")
    assert mod.calls == [("v1", 1), ("v2", 2)]


KEPT = """
import relive

class Connection:
    opened = 0

    def __init__(self):
        Connection.opened += 1
        self.closed = False

    def close(self):
        self.closed = True

db = relive.keep("db", Connection{rebuild})
"""


def test_kept_state_survives_an_edit_of_its_own_line_and_a_whole_rerun(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("life_keep", KEPT.format(rebuild=""))
    db = mod.db
    assert apply_edit(mod, KEPT.format(rebuild=", rebuild=False")).modules[0].executed
    assert mod.db is db
    apply_edit(mod, KEPT.format(rebuild=", rebuild=len(__name__) < 0"))
    assert mod.db is db
    import importlib

    importlib.reload(mod)
    assert mod.db is db and not db.closed


def test_a_forced_rebuild_closes_the_old_object_once_the_reload_commits(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("life_rebuild", KEPT.format(rebuild=""))
    old = mod.db
    with pytest.raises(relive.ReloadError):
        apply_edit(mod, KEPT.format(rebuild=", rebuild=True") + "\n1 / 0\n")
    assert mod.db is old and not old.closed
    assert relive.keep("db", object) is not old  # another module, another slot
    apply_edit(mod, KEPT.format(rebuild=", rebuild=True"))
    assert mod.db is not old and old.closed and not mod.db.closed
    forgotten = mod.db
    relive.drop_kept(mod, "db")
    apply_edit(mod, KEPT.format(rebuild=""))
    assert mod.db is not forgotten and not forgotten.closed


def test_keep_takes_a_name_then_a_factory_whatever_the_types() -> None:
    kept = relive.keep("table", dict)
    assert relive.keep("table", list) is kept  # the name decides, not the factory
    with pytest.raises(TypeError, match="factory"):
        relive.keep(dict)
    with pytest.raises(TypeError, match=r"keep\(name, factory\): the first argument"):
        relive.keep(dict, dict)
    with pytest.raises(TypeError, match="must be callable"):
        relive.keep("table", 3)


def test_drop_kept_lets_go_of_one_name_or_all_of_a_module() -> None:
    first, second = relive.keep("first", dict), relive.keep("second", dict)
    relive.drop_kept(__name__, "first")
    assert relive.keep("first", dict) is not first and relive.keep("second", dict) is second
    relive.drop_kept(sys.modules[__name__])
    assert relive.keep("second", dict) is not second


SHAPE_V1 = """
class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

class Point3(Point):
    pass
"""

SHAPE_V2 = """
class Point:
    def __init__(self, x, y, z=0):
        self.x, self.y, self.z = x, y, z

    def __relive_migrate__(self):
        if not hasattr(self, "z"):
            self.z = {fill}

    def norm(self):
        return self.x + self.y + self.z

class Point3(Point):
    pass
"""


def test_existing_instances_are_migrated_when_their_class_changes_shape(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("life_shape", SHAPE_V1)
    points = [mod.Point(1, 2), mod.Point3(3, 4)]
    apply_edit(mod, SHAPE_V2.format(fill="self.x * 10"))
    assert [p.z for p in points] == [10, 30]
    assert [p.norm() for p in points] == [13, 37]
    assert mod.Point(1, 1).z == 0


def test_a_migration_that_raises_rolls_the_class_and_the_instances_back(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("life_shape_fail", SHAPE_V1)
    points = [mod.Point(1, 2), mod.Point(0, 2)]
    with pytest.raises(relive.ReloadError, match="__relive_migrate__") as caught:
        apply_edit(mod, SHAPE_V2.format(fill="self.y // self.x"))
    assert isinstance(caught.value.__cause__, ZeroDivisionError)
    assert caught.value.lineno == 8
    assert [vars(p) for p in points] == [{"x": 1, "y": 2}, {"x": 0, "y": 2}]
    assert not hasattr(mod.Point, "norm")


RESTARTED = """
import os
import time
import relive

@relive.before_reload
def flush():
    with open("flushed.txt", "a") as log:
        log.write(f"{os.getpid()}\\n")

print("pid", os.getpid(), flush=True)
while True:
    time.sleep(3600)  # the program's own idle loop
"""


def test_before_hooks_run_when_relive_run_restarts_the_program(tmp_path: Path) -> None:
    from harness import Relive  # the end-to-end harness of `relive run`

    write_source(tmp_path / "app.py", RESTARTED)
    relive_run = Relive(tmp_path, ["app.py"])
    try:
        first = relive_run.wait_for_start(1)
        write_source(tmp_path / "app.py", RESTARTED.replace("3600", "3601"))  # the loop
        relive_run.wait_for_start(2)
        flushed = tmp_path / "flushed.txt"
        wait_until(lambda: flushed.exists() and flushed.read_text() == f"{first}\n")
    finally:
        relive_run.close()
