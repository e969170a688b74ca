"""Helpers for tests of code that uses relive: write a module, apply an edit, wait for it.

Deterministic and deadline-based: nothing here sleeps blindly. Usable in users' own test
suites as well as relive's.
"""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from relive._engine import Engine, Report, get_engine, replace_engine

__all__ = [
    "TemporaryPackage",
    "apply_edit",
    "fresh_engine",
    "reset_engine",
    "temporary_package",
    "wait_until",
    "write_source",
]


def wait_until(
    condition: Callable[[], object], *, timeout: float = 10.0, interval: float = 0.002
) -> None:
    """Poll ``condition`` until it is true.

    Raises:
        TimeoutError: It was still false after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s: {condition!r}")
        time.sleep(interval)


def write_source(path: str | os.PathLike[str], source: str, *, dedent: bool = True) -> Path:
    """Write a source file so that any observer sees a change (its mtime always advances)."""
    target = Path(path)
    text = textwrap.dedent(source) if dedent else source
    before = target.stat().st_mtime_ns if target.exists() else 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    after = target.stat().st_mtime_ns
    if after <= before:
        bumped = before + 1_000_000
        os.utime(target, ns=(bumped, bumped))
    return target


def apply_edit(module: ModuleType, source: str, *, dedent: bool = True) -> Report:
    """Write ``source`` as ``module``'s file and apply it (raises ReloadError on failure)."""
    path = getattr(module, "__file__", None)
    if not isinstance(path, str):
        raise ValueError(f"module {module.__name__} has no source file")
    write_source(path, source, dedent=dedent)
    return get_engine().reload(module)


class TemporaryPackage:
    """A directory on ``sys.path`` holding modules written by the test.

    On exit, the modules imported from it leave ``sys.modules`` and the directory leaves
    ``sys.path``.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self._owned = root is None
        self.root = Path(tempfile.mkdtemp(prefix="relive-")) if root is None else Path(root)

    def write(self, relative: str, source: str, *, dedent: bool = True) -> Path:
        """Write a file relative to the package root (``pkg/mod.py``)."""
        return write_source(self.root / relative, source, dedent=dedent)

    def module(self, name: str, source: str | None = None) -> ModuleType:
        """Import ``name`` (writing ``source`` as its file first, when given)."""
        import importlib

        if source is not None:
            self.write(name.replace(".", "/") + ".py", source)
        importlib.invalidate_caches()
        return importlib.import_module(name)

    def __enter__(self) -> TemporaryPackage:
        sys.path.insert(0, str(self.root))
        return self

    def __exit__(self, *exc_info: object) -> None:
        root = str(self.root)
        if root in sys.path:
            sys.path.remove(root)
        for name, module in list(sys.modules.items()):
            if str(_file_of(module) or "").startswith(root + os.sep):
                del sys.modules[name]
        if self._owned:
            import shutil

            shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def temporary_package() -> Iterator[TemporaryPackage]:
    """``with temporary_package() as pkg:``: a new directory as a `TemporaryPackage`.

    See [`TemporaryPackage`][relive.testing.TemporaryPackage].
    """
    with TemporaryPackage() as package:
        yield package


@contextmanager
def reset_engine() -> Iterator[None]:
    """``with reset_engine():`` the process starts the block without an engine, as at
    start-up: ``relive.get_engine()`` (and ``reload``, ``refresh``, ``watch``) creates a
    new one on first use. On exit that engine is closed and the previous one is back, so
    each test sees a fresh engine, tracking the modules imported from its first use.
    """
    previous = replace_engine(None)
    try:
        yield
    finally:
        created = replace_engine(previous)
        if created is not None and created is not previous:
            created.close()


@contextmanager
def fresh_engine() -> Iterator[Engine]:
    """``with fresh_engine() as engine:`` a new engine, made the process's engine for the
    block (see [`reset_engine`][relive.testing.reset_engine])."""
    with reset_engine():
        yield get_engine()


def _file_of(module: object) -> object:
    """A module's ``__file__``, read without loading a lazy module (``LazyLoader``)."""
    if isinstance(module, ModuleType):
        try:
            return ModuleType.__getattribute__(module, "__file__")
        except AttributeError:
            return None
    return getattr(module, "__file__", None)
