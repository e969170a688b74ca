"""Special members and enum members change at the commit point too, for every other thread.

What the interpreter looks up on the type (``==``, ``hash``, ``repr``, ``len``: a
dataclass's generated methods, a ``__len__`` that became another kind of member) and an
enum's members, tables and member values are shown only to the thread applying the edit
until every statement of the transaction has run; rolled back, no other thread ever ran
or saw them; committed, every thread sees them from the commit point on.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator
from types import ModuleType

import pytest

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage, wait_until

V1 = """\
import dataclasses
import enum
import functools


def _count(self, factor):
    return factor * len(self.items)


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


class Bag:
    def __init__(self, items):
        self.items = list(items)

    def __len__(self):
        return len(self.items)


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


def _hash(point):
    try:
        return hash(point) == hash((point.x,))
    except TypeError:
        return "unhashable"


def _lookup(find):
    try:
        return find().name
    except (KeyError, ValueError):
        return None


def seen(p, q, bag):
    return (
        p == q,
        _hash(p),
        repr(p),
        len(bag),
        _lookup(lambda: Color(2)),
        _lookup(lambda: Color["BLUE"]),
        getattr(getattr(Color, "BLUE", None), "name", None),
        Color.GREEN.value,
        len(Color),
        tuple(member.name for member in Color),
        _lookup(lambda: Level(3)),
        len(Level),
    )
"""
V2 = (
    V1.replace(
        "@dataclasses.dataclass\nclass Point:\n    x: int\n    y: int = 0",
        "@dataclasses.dataclass(unsafe_hash=True)\nclass Point:\n    x: int\n"
        "    y: int = dataclasses.field(default=0, compare=False, repr=False)",
    )
    .replace(
        "    def __len__(self):\n        return len(self.items)\n",
        "    __len__ = functools.partialmethod(_count, 10)\n",
    )
    .replace("    GREEN = 2\n", "    GREEN = 5\n    BLUE = 3\n")
    .replace("    HIGH = 2\n", "    HIGH = 2\n    MID = 3\n")
)
OLD = (False, "unhashable", "Point(x=1, y=2)", 2, "GREEN", None, None, 2, 2)
OLD += (("RED", "GREEN"), None, 2)
NEW = (True, True, "Point(x=1)", 20, None, "BLUE", "BLUE", 5, 3, ("RED", "GREEN", "BLUE"))
NEW += ("MID", 3)
PAUSE = (
    "\n\nos.environ['SC_SEEN'] = repr(seen(Point(1, 2), Point(1, 3), Bag('ab')))\n"
    "import os, sc_sync\n\nsc_sync.started.set()\nsc_sync.proceed.wait(10)\n"
)


@pytest.fixture
def hammered(
    package: TemporaryPackage, engine: Engine
) -> Iterator[tuple[ModuleType, set[object], set[object]]]:
    """The module, what another thread saw using its classes in a loop, and what it saw
    while the transaction waited in the middle (after the classes were patched)."""
    sync = package.module("sc_sync", "import threading\n\nstarted = threading.Event()\n")
    sync.proceed = threading.Event()
    mod = package.module("sc_members", "import os\n" + V1)
    seen: set[object] = set()
    during: set[object] = set()
    stop = threading.Event()

    def hammer() -> None:
        p, q, bag = mod.Point(1, 2), mod.Point(1, 3), mod.Bag("ab")
        while not stop.is_set():
            seen.add(mod.seen(p, q, bag))
            if sync.started.is_set() and not sync.proceed.is_set():
                for _ in range(500):
                    during.add(mod.seen(p, q, bag))
                sync.proceed.set()

    thread = threading.Thread(target=hammer, name="hammer", daemon=True)
    thread.start()
    wait_until(lambda: bool(seen))
    try:
        yield mod, seen, during
    finally:
        stop.set()
        sync.proceed.set()
        thread.join(timeout=10)
        os.environ.pop("SC_SEEN", None)


def test_a_rolled_back_edit_never_shows_its_special_or_enum_members_to_another_thread(
    package: TemporaryPackage, hammered: tuple[ModuleType, set[object], set[object]]
) -> None:
    mod, seen, during = hammered
    package.write("sc_members.py", "import os\n" + V2 + PAUSE + "\nBOOM = 1 / 0\n", dedent=False)
    with pytest.raises(relive.ReloadError, match="ZeroDivisionError"):
        relive.refresh()
    assert os.environ["SC_SEEN"] == repr(NEW)  # the reloading thread saw the whole edit
    assert during == {OLD}
    assert seen == {OLD}
    assert mod.seen(mod.Point(1, 2), mod.Point(1, 3), mod.Bag("ab")) == OLD
    assert vars(mod.Point)["__hash__"] is None and "BLUE" not in vars(mod.Color)
    assert "_value_" not in vars(mod.Color) and mod.Color.GREEN._value_ == 2
    assert [f.name for f in dataclasses.fields(mod.Point) if f.compare] == ["x", "y"]


def test_a_committed_edit_shows_its_special_and_enum_members_from_the_commit_point(
    package: TemporaryPackage, hammered: tuple[ModuleType, set[object], set[object]]
) -> None:
    mod, seen, during = hammered
    green = mod.Color.GREEN
    package.write("sc_members.py", "import os\n" + V2 + PAUSE, dedent=False)
    relive.refresh()
    assert os.environ["SC_SEEN"] == repr(NEW)
    assert during == {OLD}  # before the commit point: the old classes, whole
    wait_until(lambda: NEW in seen)
    # One instant for everything: a look that the commit point cut in two saw the old
    # classes up to some point and the new ones from there on, never the other way.
    assert all(any(look == OLD[:k] + NEW[k:] for k in range(len(OLD) + 1)) for look in seen)
    assert mod.seen(mod.Point(1, 2), mod.Point(1, 3), mod.Bag("ab")) == NEW
    assert mod.Color.GREEN is green and mod.Color(5) is green
    assert "_value_" not in vars(mod.Color) and vars(green)["_value_"] == 5
    assert [f.name for f in dataclasses.fields(mod.Point) if f.compare] == ["x"]


def test_a_refused_int_enum_value_change_shows_nothing_to_another_thread(
    package: TemporaryPackage, hammered: tuple[ModuleType, set[object], set[object]]
) -> None:
    mod, seen, during = hammered
    high = mod.Level.HIGH
    refused = V2.replace("    HIGH = 2\n", "    HIGH = 4\n")  # the member *is* the int 2
    package.write("sc_members.py", "import os\n" + refused + PAUSE, dedent=False)
    with pytest.raises(relive.RestartRequired, match=r"Level\.HIGH"):
        relive.refresh()
    assert "SC_SEEN" not in os.environ and not during  # refused before any later statement
    assert seen == {OLD}  # what was patched before the refused class never showed
    assert mod.Level.HIGH is high and high == 2 and mod.Level(2) is high
    assert mod.seen(mod.Point(1, 2), mod.Point(1, 3), mod.Bag("ab")) == OLD


ABSTRACT = """\
import abc


class Shape(abc.ABC):
    def area(self):
        return 1


class Square(Shape):
    pass


def made(cls):
    try:
        cls()
    except TypeError:
        return "abstract"
    return "made"
"""


def test_whether_a_class_can_be_instantiated_changes_with_its_members(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("sc_abstract", ABSTRACT)
    abstract = ABSTRACT.replace(
        "    def area(self):", "    @abc.abstractmethod\n    def area(self):"
    )
    later = "\nSEEN = made(Square)\n"
    package.write("sc_abstract.py", abstract + later + "BOOM = 1 / 0\n", dedent=False)
    with pytest.raises(relive.ReloadError, match="ZeroDivisionError"):
        relive.refresh()
    assert mod.made(mod.Shape) == mod.made(mod.Square) == "made"  # rolled back
    assert "SEEN" not in vars(mod)
    package.write("sc_abstract.py", abstract + later, dedent=False)
    relive.refresh()
    assert mod.SEEN == "abstract"  # a later statement of the edit sees it, as a fresh import
    assert mod.made(mod.Shape) == mod.made(mod.Square) == "abstract"
    assert mod.Square.__abstractmethods__ == frozenset({"area"})
