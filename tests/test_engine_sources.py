"""Engine.apply_sources: new text given by module name (not read from disk), as one
transaction whose commit a caller can confirm or call off (relive.dask's two phases)."""

from __future__ import annotations

import pytest

from relive import ReloadError
from relive._engine import Engine
from relive.testing import TemporaryPackage

V1 = "state = []\ndef value():\n    return 1\n"
V2 = "state = []\ndef value():\n    return 2\n"


def test_text_applies_without_touching_the_file(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("src_a", V1)
    value = mod.value
    mod.state.append("kept")
    report = engine.apply_sources({"src_a": V2})
    assert report.reloaded == ("src_a",)
    assert value() == 2 and mod.state == ["kept"]
    assert (package.root / "src_a.py").read_text() == V1
    assert not engine.apply_sources({"src_a": V2})  # the same text again: nothing to do


def test_confirm_sees_the_edit_applied_and_can_call_it_off(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("src_b", V1)
    seen: list[int] = []

    def confirm() -> bool:
        seen.append(mod.value())
        return False

    with pytest.raises(ReloadError, match="called off"):
        engine.apply_sources({"src_b": V2}, confirm=confirm)
    assert seen == [2] and mod.value() == 1
    assert engine.apply_sources({"src_b": V2}, confirm=lambda: True).reloaded == ("src_b",)
    assert mod.value() == 2


def test_a_refusal_raised_by_confirm_rolls_back_and_propagates(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("src_c", V1)

    def confirm() -> bool:
        raise ReloadError("a worker refused", path="elsewhere.py", lineno=3)

    with pytest.raises(ReloadError, match=r"elsewhere\.py:3: a worker refused"):
        engine.apply_sources({"src_c": V2}, confirm=confirm)
    assert mod.value() == 1


def test_a_broken_text_fails_before_confirm(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("src_d", V1)
    asked: list[bool] = []
    with pytest.raises(ReloadError) as caught:
        engine.apply_sources({"src_d": "def value(:\n"}, confirm=lambda: asked.append(True) or True)
    assert caught.value.lineno == 1 and not asked and mod.value() == 1
    with pytest.raises(ReloadError, match="boom"):
        engine.apply_sources({"src_d": V2 + "raise RuntimeError('boom')\n"})
    assert mod.value() == 1


def test_unchanged_text_still_asks_confirm(package: TemporaryPackage, engine: Engine) -> None:
    package.module("src_e", V1)
    with pytest.raises(ReloadError, match="called off"):
        engine.apply_sources({"src_e": V1}, confirm=lambda: False)
    assert not engine.apply_sources({"src_e": V1}, confirm=lambda: True)
