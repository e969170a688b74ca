"""Class members an edit replaces change at the commit point, for every other thread.

A member replaced by a new object (a class attribute's value, a method that became a
``classmethod``, a member added or removed) is shown only to the thread applying the
edit until every statement of the transaction has run; rolled back, no other thread
ever saw it; committed, every thread sees the whole edit from the commit point on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from types import ModuleType

import pytest

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage, wait_until

V1 = """\
import os


class C:
    K = 1
    gone = "v1"

    @staticmethod
    def tag():
        return "v1"

    def method(self):
        return "m1"


def seen(instance):
    return (
        C.K,
        instance.K,
        C.tag(),
        getattr(C, "added", None),
        getattr(instance, "gone", None),
        instance.method(),
    )
"""
V2 = (
    V1.replace("K = 1", "K = 2")
    .replace('    gone = "v1"\n', '    added = "v2"\n')
    .replace(
        '@staticmethod\n    def tag():\n        return "v1"',
        '@classmethod\n    def tag(cls):\n        return "v2"',
    )
    .replace('"m1"', '"m2"')
)
OLD = (1, 1, "v1", None, "v1", "m1")
NEW = (2, 2, "v2", "v2", None, "m2")
PAUSE = (
    "\n\nos.environ['CC_SEEN'] = repr(seen(C()))\n"
    "import cc_sync\n\ncc_sync.started.set()\ncc_sync.proceed.wait(10)\n"
)


@pytest.fixture
def hammered(
    package: TemporaryPackage, engine: Engine
) -> Iterator[tuple[ModuleType, set[object], set[object]]]:
    """The module, what another thread saw reading the class in a loop, and what it saw
    while the transaction waited in the middle (after the class was patched)."""
    sync = package.module("cc_sync", "import threading\n\nstarted = threading.Event()\n")
    sync.proceed = threading.Event()
    mod = package.module("cc_members", V1)
    seen: set[object] = set()
    during: set[object] = set()
    stop = threading.Event()

    def hammer() -> None:
        instance = mod.C()
        while not stop.is_set():
            seen.add(mod.seen(instance))
            if sync.started.is_set() and not sync.proceed.is_set():
                for _ in range(2000):
                    during.add(mod.seen(instance))
                sync.proceed.set()

    thread = threading.Thread(target=hammer, name="hammer", daemon=True)
    thread.start()
    try:
        yield mod, seen, during
    finally:
        stop.set()
        sync.proceed.set()
        thread.join(timeout=10)
        os.environ.pop("CC_SEEN", None)


def test_a_rolled_back_edit_never_shows_its_class_members_to_another_thread(
    package: TemporaryPackage, hammered: tuple[ModuleType, set[object], set[object]]
) -> None:
    mod, seen, during = hammered
    package.write("cc_members.py", V2 + PAUSE + "\nBOOM = 1 / 0\n", dedent=False)
    with pytest.raises(relive.ReloadError):
        relive.refresh()
    assert os.environ["CC_SEEN"] == repr(NEW)  # the reloading thread saw the edit
    assert during == {OLD}
    assert seen == {OLD}
    assert mod.seen(mod.C()) == OLD
    assert "added" not in vars(mod.C) and vars(mod.C)["K"] == 1


def test_a_committed_edit_shows_its_class_members_from_the_commit_point(
    package: TemporaryPackage, hammered: tuple[ModuleType, set[object], set[object]]
) -> None:
    mod, seen, during = hammered
    package.write("cc_members.py", V2 + PAUSE, dedent=False)
    relive.refresh()
    assert os.environ["CC_SEEN"] == repr(NEW)
    assert during == {OLD}  # before the commit point: the old class, whole
    wait_until(lambda: NEW in seen)
    assert mod.seen(mod.C()) == NEW
    assert type(vars(mod.C)["tag"]) is classmethod and vars(mod.C)["K"] == 2
