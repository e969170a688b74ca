"""A save that lands while relive reads the file is never taken for applied.

relive fingerprints a file by its status (mtime, size, inode) so that a check of an
unchanged file costs one ``stat``. The status it records must be the one the text it
applies was read at: a status taken later may be that of a newer save, which the next
check would then skip as applied (a lost edit, silently). And a file whose status changed
while it was read is read again: when only its time was set (``touch``, ``os.utime``) no
event follows to bring it back.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import relive._tracker
from relive._engine import Engine
from relive._prepare import prepare
from relive._sources import stat_key
from relive.testing import TemporaryPackage, write_source


def _older(path: Path, seconds: int = 10) -> None:
    """Date the file back, out of the window where statuses are compared by content."""
    when = stat_key(str(path))[0] - seconds * 1_000_000_000
    os.utime(path, ns=(when, when))


def test_the_status_recorded_is_the_one_the_applied_text_was_read_at(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("race_a", "def f():\n    return 1\n")
    path = Path(mod.__file__ or "")
    write_source(path, "def f():\n    return 2\n")
    _older(path, 20)
    engine.track_new_modules()
    tracker = engine._tracker  # the internals: the window between a read and its commit
    [(tracked, source)] = tracker.changed_on_disk(tracker.by_path(os.path.realpath(path)))
    assert source is not None and "return 2" in source
    write_source(path, "def f():\n    return 3\n")  # a newer save, before v2 is prepared
    _older(path, 10)
    item = prepare(tracked, source)
    assert item.stat != stat_key(str(path))  # v2's status, not the newer save's
    engine._run([(tracked, source)])
    assert mod.f() == 2
    engine.refresh()  # v3's status differs from the one recorded: it is read and applied
    assert mod.f() == 3


def test_a_file_touched_while_it_is_read_is_read_again(
    package: TemporaryPackage, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod = package.module("race_b", "def f():\n    return 1\n")
    path = Path(mod.__file__ or "")
    read = relive._tracker.read_source
    calls: list[str] = []

    def read_then_save(name: str) -> str:
        text = read(name)
        if not calls:  # a save and a touch land right after the first read
            path.write_text("def f():\n    return 3\n")
            _older(path, 10)
        calls.append(text)
        return text

    write_source(path, "def f():\n    return 2\n")
    _older(path, 20)
    monkeypatch.setattr(relive._tracker, "read_source", read_then_save)
    engine.refresh()
    assert len(calls) == 2 and mod.f() == 3
