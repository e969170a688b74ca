"""Modules and files off the common path: lazily loaded modules, files not in UTF-8.

relive never loads a module the program has not loaded yet (``importlib.util.LazyLoader``),
the engine raises nothing but ``ReloadError``, and a file it cannot decode is reported for
what it is, at its line, never as deleted.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

import relive
from relive._engine import Engine
from relive._watcher import Watcher  # imported once: the fixtures unload what a test imports
from relive.testing import TemporaryPackage, wait_until


def lazy_import(name: str) -> ModuleType:
    """Import ``name`` as ``importlib.util.LazyLoader`` does: loaded on first use."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


def loaded(module: ModuleType) -> bool:
    return type(module) is ModuleType


def test_a_lazy_module_is_never_loaded_by_relive(package: TemporaryPackage, engine: Engine) -> None:
    package.write(
        "lazy_broken.py",
        "import os\nos.environ['RELIVE_LAZY_LOADED'] = '1'\nraise ImportError('not today')\n",
    )
    package.module("lazy_user", "def value():\n    return 1\n")
    module = lazy_import("lazy_broken")
    package.write("lazy_user.py", "def value():\n    return 2\n")

    report = relive.refresh()  # scans sys.modules, where the lazy module waits

    assert report.reloaded == ("lazy_user",)
    assert "RELIVE_LAZY_LOADED" not in os.environ and not loaded(module)


def test_a_lazy_module_is_tracked_once_the_program_loads_it(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.write("lazy_ok.py", "def value():\n    return 1\n")
    module = lazy_import("lazy_ok")
    relive.refresh()
    assert not loaded(module)

    assert module.value() == 1  # the program uses it: loaded now
    package.write("lazy_ok.py", "def value():\n    return 2\n")

    assert relive.refresh().reloaded == ("lazy_ok",)
    assert module.value() == 2


def test_a_latin_1_save_says_it_is_not_utf_8_at_its_line(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("latin", "# prices\ndef label():\n    return 'cafe'\n")
    path = package.root / "latin.py"
    errors: list[relive.ReloadError] = []
    watcher: Watcher
    with relive.watch(package.root, on_error=errors.append, quiet=True) as watcher:
        path.write_bytes("# prices\ndef label():\n    return 'café'\n".encode("latin-1"))
        wait_until(lambda: errors)
        error = errors[0]
        assert str(error).startswith(f"{path}:3: not valid UTF-8 (byte 0xe9)")
        assert "deleted" not in str(error) and error.line == "return 'caf\ufffd'"
        assert mod.label() == "cafe"
        path.write_text("# prices\ndef label():\n    return 'café'\n", encoding="utf-8")
        wait_until(lambda: mod.label() == "café")
    assert len(errors) == 1 and watcher.last_error is None


def test_an_unknown_encoding_in_the_coding_line_is_said(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.module("coded", "def value():\n    return 1\n")
    package.write("coded.py", "# -*- coding: klingon -*-\ndef value():\n    return 2\n")
    try:
        relive.refresh()
    except relive.ReloadError as error:
        assert "unknown encoding" in str(error) and "deleted" not in str(error)
    else:
        raise AssertionError("the edit was applied")


def test_a_module_imported_through_a_retargeted_symlink_follows_the_link(
    package: TemporaryPackage, engine: Engine
) -> None:
    targets = package.root / "targets"
    package.write("targets/first.py", "def value():\n    return 'first'\n")
    package.write("targets/second.py", "def value():\n    return 'second'\n")
    link = package.root / "linked.py"
    link.symlink_to(targets / "first.py")
    mod = package.module("linked")
    value = mod.value
    with relive.watch(package.root, quiet=True):
        staged = package.root / "linked.py.new"  # ln -sfn: a new link renamed over the old
        staged.symlink_to(targets / "second.py")
        os.replace(staged, link)
        wait_until(lambda: value() == "second")
        package.write("targets/first.py", "def value():\n    return 'first, edited'\n")
        package.write("targets/second.py", "def value():\n    return 'second, edited'\n")
        wait_until(lambda: value() == "second, edited")
    assert mod.value is value  # patched in place, as any edit


BLOCKS = """\
import traceback
if True:
    def in_if():
        raise ValueError("in an if")
try:
    def in_try():
        raise ValueError("in a try")
except ImportError:
    pass
fail = lambda: 1 / 0  # noqa: E731
if True:
    class InIf:
        def method(self):
            raise ValueError("in a class in an if")
"""


def _raised_at(call: object) -> int:
    try:
        call()  # type: ignore[operator]
    except Exception as exc:
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        assert tb is not None
        return tb.tb_lineno
    raise AssertionError("it did not raise")


def test_lines_added_above_move_functions_made_in_blocks_and_lambdas(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("blocks", BLOCKS)
    calls = [mod.in_if, mod.in_try, mod.fail, mod.InIf().method]
    before = [_raised_at(call) for call in calls]
    package.write("blocks.py", "# two lines\n# added above\n" + BLOCKS)

    report = relive.refresh()

    assert report.reloaded == ("blocks",) and not report.modules[0].executed
    assert [_raised_at(call) for call in calls] == [line + 2 for line in before]
