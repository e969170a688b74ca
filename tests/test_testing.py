"""relive.testing's own promises: what users' test suites rely on."""

from __future__ import annotations

import relive
from relive.testing import TemporaryPackage, apply_edit, fresh_engine, reset_engine


def test_reset_engine_starts_a_block_without_an_engine_and_restores_the_last() -> None:
    outer = relive.get_engine()
    with reset_engine():
        inner = relive.get_engine()
        assert inner is not outer and relive.get_engine() is inner
    assert relive.get_engine() is outer


def test_fresh_engine_is_the_process_engine_inside_the_block(package: TemporaryPackage) -> None:
    with fresh_engine() as engine:
        assert relive.get_engine() is engine
        mod = package.module("testing_fresh", "X = 1\n")
        assert apply_edit(mod, "X = 2\n").reloaded == ("testing_fresh",)
        assert engine.tracked_module("testing_fresh") is not None
    assert relive.get_engine() is not engine
