"""The engine's front door: what front ends ask it, and the hold-back policy they share.

Front ends (the watcher, IPython, the servers) go through these methods, never through
the engine's tracker or lock.
"""

from __future__ import annotations

import os

import pytest

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage, wait_until, write_source


def test_the_engine_keeps_its_tracker_and_lock_to_itself(engine: Engine) -> None:
    assert not hasattr(engine, "tracker") and not hasattr(engine, "lock")


def test_queries_answer_what_is_tracked_and_what_changed(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("front_q", "X = 1\n")
    path = os.path.realpath(str(mod.__file__))
    assert [tracked.name for tracked in engine.track_new_modules()] == ["front_q"]
    assert engine.track_new_modules() == []  # only the modules imported since
    tracked = engine.tracked_module("front_q")
    assert tracked is not None and tracked.path == path
    assert tracked in engine.tracked_modules()
    assert os.path.dirname(path) in engine.directories()
    assert engine.changed_modules() == [] and engine.changed_modules([path]) == []
    write_source(path, "X = 2\n")
    assert engine.changed_modules() == [tracked] == engine.changed_modules([mod.__file__])
    assert engine.changed_modules([str(package.root / "elsewhere.py")]) == []


def test_apply_changes_holds_back_the_broken_file_and_applies_the_others(
    package: TemporaryPackage, engine: Engine
) -> None:
    good = package.module("front_good", "def value():\n    return 1\n")
    bad = package.module("front_bad", "def value():\n    return 1\n")
    write_source(package.root / "front_good.py", "def value():\n    return 2\n")
    write_source(package.root / "front_bad.py", "def value(:\n    return 2\n")
    with pytest.raises(relive.ReloadError):
        engine.refresh()  # one transaction: the broken file holds back the good one
    assert good.value() == 1
    write_source(package.root / "front_good.py", "def value():\n    return 3\n")
    report, errors = engine.apply_changes()
    assert report.reloaded == ("front_good",) and good.value() == 3
    assert [error.path for error in errors] == [os.path.realpath(str(bad.__file__))]
    assert bad.value() == 1
    assert [tracked.name for tracked in engine.changed_modules()] == ["front_bad"]
    write_source(package.root / "front_bad.py", "def value():\n    return 4\n")
    report, errors = engine.apply_changes([package.root / "front_bad.py"])
    assert (report.reloaded, errors, bad.value()) == (("front_bad",), [], 4)


def test_the_watcher_applies_a_good_save_while_another_file_stays_broken(
    package: TemporaryPackage, engine: Engine
) -> None:
    good = package.module("front_wgood", "def value():\n    return 1\n")
    bad = package.module("front_wbad", "def value():\n    return 1\n")
    errors: list[relive.ReloadError] = []
    with relive.watch(package.root, on_error=errors.append, quiet=True):
        write_source(package.root / "front_wbad.py", "def value(:\n    return 2\n")
        wait_until(lambda: errors)
        write_source(package.root / "front_wgood.py", "def value():\n    return 2\n")
        wait_until(lambda: good.value() == 2)
    assert bad.value() == 1
    assert {error.path for error in errors} == {os.path.realpath(str(bad.__file__))}
