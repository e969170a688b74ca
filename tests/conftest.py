"""Shared fixtures: every test gets a clean engine, module table, path and environment."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import Start, starting
from relive import Engine
from relive.testing import TemporaryPackage, fresh_engine, reset_engine


@pytest.fixture(autouse=True)
def _isolated_process_state() -> Iterator[None]:
    """Restore sys.modules, sys.path, os.environ and the process engine after each test."""
    modules = dict(sys.modules)
    path = list(sys.path)
    environ = dict(os.environ)
    try:
        with reset_engine():
            yield
    finally:
        for name in [name for name in sys.modules if name not in modules]:
            del sys.modules[name]
        sys.modules.update(modules)
        sys.path[:] = path
        os.environ.clear()
        os.environ.update(environ)


@pytest.fixture
def package(tmp_path: Path) -> Iterator[TemporaryPackage]:
    """A directory on sys.path for the test's modules."""
    with TemporaryPackage(tmp_path / "src") as pkg:
        yield pkg


@pytest.fixture
def engine() -> Iterator[Engine]:
    """A fresh engine (also installed as the process engine for relive.reload/refresh)."""
    with fresh_engine() as fresh:
        yield fresh


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """Where the ``start`` fixture runs ``relive run`` (a test module may override it)."""
    return tmp_path


@pytest.fixture
def start(run_dir: Path) -> Iterator[Start]:
    """``start(*args, env=None)`` starts ``relive run`` in ``run_dir``; every process it
    started is ended after the test, and checked gone by pid."""
    yield from starting(run_dir)
