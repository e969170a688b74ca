"""relive.watch(): real files, the real watcher, edits applied in the background."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import relive
from relive._engine import Engine
from relive._watcher import Wiring, watch_wired
from relive.testing import TemporaryPackage, wait_until, write_source


def test_saved_edit_is_applied_in_place(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("live_a", "state = []\ndef value():\n    return 1\n")
    value = mod.value
    mod.state.append("kept")
    reports: list[relive.Report] = []
    with relive.watch(package.root, on_report=reports.append):
        write_source(package.root / "live_a.py", "state = []\ndef value():\n    return 2\n")
        wait_until(lambda: value() == 2)
    assert mod.state == ["kept"]
    assert reports and reports[-1].reloaded == ("live_a",)


def test_broken_save_is_reported_then_the_fix_applies(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("live_b", "def value():\n    return 1\n")
    errors: list[relive.ReloadError] = []
    with relive.watch(package.root, on_error=errors.append, quiet=True) as watcher:
        write_source(package.root / "live_b.py", "def value():\n    return (\n")
        wait_until(lambda: errors)
        assert mod.value() == 1
        assert errors[0].lineno == 2 and str(errors[0]).startswith(str(package.root))
        assert watcher.last_error is errors[0]
        write_source(package.root / "live_b.py", "def value():\n    return 3\n")
        wait_until(lambda: mod.value() == 3)
        wait_until(lambda: watcher.last_error is None)


def test_errors_go_to_stderr_by_default(
    package: TemporaryPackage, engine: Engine, capfd: pytest.CaptureFixture[str]
) -> None:
    package.module("live_c", "def value():\n    return 1\n")
    printed: list[str] = []

    def said_it() -> bool:
        printed.append(capfd.readouterr().err)
        return "live_c.py:1: SyntaxError" in "".join(printed)

    with relive.watch(package.root):
        write_source(package.root / "live_c.py", "def value(:\n    return 1\n")
        wait_until(said_it)
    err = "".join(printed) + capfd.readouterr().err
    assert "relive: " in err and "Traceback" not in err


def test_save_made_before_the_watch_was_in_place_is_applied(
    package: TemporaryPackage, engine: Engine
) -> None:
    # relive knows the imported text; the file is saved before watch() has its watch in
    # place, so no event will ever tell of that save: the file on disk must decide.
    mod = package.module("live_window", "def value():\n    return 1\n")
    write_source(package.root / "live_window.py", "def value():\n    return 2\n")
    with relive.watch(package.root, quiet=True):
        wait_until(lambda: mod.value() == 2)


def test_module_imported_later_from_a_new_directory_is_watched(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = tmp_path / "later"
    write_source(later / "live_late.py", "def value():\n    return 1\n")
    with relive.watch(quiet=True) as watcher:
        monkeypatch.syspath_prepend(str(later))
        mod = importlib.import_module("live_late")
        wait_until(lambda: later in watcher.roots)
        write_source(later / "live_late.py", "def value():\n    return 2\n")
        wait_until(lambda: mod.value() == 2)


def test_save_before_the_new_directory_is_watched_is_not_lost(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The module saves its next version while it is being imported: no watch on its
    # directory exists yet, so no event will ever tell of that save.
    later = tmp_path / "early"
    first = (
        "import pathlib\n"
        "pathlib.Path(__file__).write_text('def value():\\n    return 2\\n')\n"
        "def value():\n    return 1\n"
    )
    write_source(later / "live_early.py", first)
    with relive.watch(quiet=True) as watcher:
        monkeypatch.syspath_prepend(str(later))
        mod = importlib.import_module("live_early")
        assert mod.value() == 1
        wait_until(lambda: mod.value() == 2)
        assert later in watcher.roots


def test_edit_of_a_restart_path_asks_for_a_restart(
    package: TemporaryPackage, engine: Engine
) -> None:
    script = write_source(package.root / "main_script.py", "print('hi')\n")
    restarts: list[relive.RestartRequired] = []
    wiring = Wiring(restart_paths=[script], on_restart=restarts.append)  # as relive run does
    with watch_wired(wiring, package.root):
        write_source(script, "print('hello')\n")
        wait_until(lambda: restarts)
    assert "main_script.py changed" in str(restarts[0])
    assert str(restarts[0]).count("main_script.py") == 1


def test_relive_0_makes_watch_inert(
    package: TemporaryPackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELIVE", "0")
    watcher = relive.watch(package.root)
    assert not watcher.running
    watcher.stop()


def test_a_module_imported_from_inside_a_virtualenv_tree_is_watched(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip puts editable VCS installs in <venv>/src; the project's root leaves .venv out.
    project = tmp_path.resolve()
    write_source(project / ".venv" / "pyvenv.cfg", "home = /usr/bin\n")
    mylib = project / ".venv" / "src" / "mylib"
    write_source(mylib / "live_vendored.py", "def value():\n    return 1\n")
    monkeypatch.chdir(project)
    with relive.watch(quiet=True) as watcher:
        monkeypatch.syspath_prepend(str(mylib))
        mod = importlib.import_module("live_vendored")
        wait_until(lambda: mylib in watcher.roots)
        write_source(mylib / "live_vendored.py", "def value():\n    return 2\n")
        wait_until(lambda: mod.value() == 2)
