"""Shared fixtures: every test gets a clean engine, module table, path and environment."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import relive._engine
from relive._engine import Engine
from relive.testing import TemporaryPackage


@pytest.fixture(autouse=True)
def _isolated_process_state() -> Iterator[None]:
    """Restore sys.modules, sys.path, os.environ and the process engine after each test."""
    modules = dict(sys.modules)
    path = list(sys.path)
    environ = dict(os.environ)
    engine = relive._engine._engine
    relive._engine._engine = None
    try:
        yield
    finally:
        for name in [name for name in sys.modules if name not in modules]:
            del sys.modules[name]
        sys.modules.update(modules)
        sys.path[:] = path
        os.environ.clear()
        os.environ.update(environ)
        current = relive._engine._engine
        if current is not None and current is not engine:
            current.close()
        relive._engine._engine = engine


@pytest.fixture
def package(tmp_path: Path) -> Iterator[TemporaryPackage]:
    """A directory on sys.path for the test's modules."""
    with TemporaryPackage(tmp_path / "src") as pkg:
        yield pkg


@pytest.fixture
def engine() -> Iterator[Engine]:
    """A fresh engine (also installed as the process engine for relive.reload/refresh)."""
    fresh = Engine()
    relive._engine._engine = fresh
    yield fresh
    fresh.close()
