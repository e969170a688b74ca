"""Which class changes of a transaction wait for its commit point, and how they wait.

Part of the journal (_patch). A class member that is code (a method, a descriptor, a
dataclass's generated ``__eq__``, a slot such as ``__hash__``) or an enum's member or table
is gated (see _gate): the reloading thread sees the new one, every other thread the old
one, until the commit point. A special member that is data (a dataclass's
``__dataclass_fields__``, pydantic's ``__pydantic_core_schema__``), which frameworks read
straight from the class's ``__dict__``, cannot be gated: it is written at the commit point,
or as soon as the program's code runs again in the transaction (a later statement may read
it, and a fresh import would show it the new one), whichever comes first.
"""

from __future__ import annotations

import contextlib
import enum
import sys
from collections.abc import Iterator
from typing import Any, Literal

from relive._gate import ABSENT, CommitPoint, MemberGate, StateGate, gated_member

__all__ = ["ClassChanges", "Deferred", "member_timing", "one_step"]

Timing = Literal["gate", "defer", "now"]

# What a class statement's type sets through its own descriptors (not the namespace's);
# of those, the data a class's own dict holds is deferred like other special data.
_TYPE_DATA = frozenset(
    name for name, value in vars(type).items() if hasattr(type(value), "__set__")
)
_NOW = (_TYPE_DATA - {"__doc__", "__annotations__", "__abstractmethods__"}) | {
    "__slots__",
    "__dict__",
    "__weakref__",
    "_abc_impl",
}
_MISSING: Any = object()
_SWITCH = 0.05  # seconds another thread waits for the interpreter while the commit runs


def member_timing(cls: type, name: str, current: object, value: object) -> Timing:
    """When the other threads see ``cls``'s member ``name`` go from ``current`` to
    ``value`` (ABSENT: none): through a gate at the commit point, written at the
    commit point (or before the program's code runs again), or now."""
    if name in _NOW:
        return "now"
    if not (name.startswith("_") and name.endswith("_")):
        return "gate"
    if isinstance(cls, enum.EnumMeta) and not name.startswith("__"):
        return "gate"  # an enum's tables (read as attributes, never from its __dict__)
    if _is_code(current) or _is_code(value):
        return "gate"  # what runs: the interpreter looks it up through the gate
    return "defer"


def _is_code(value: object) -> bool:
    return value is not ABSENT and (callable(value) or hasattr(type(value), "__get__"))


class Deferred:
    """Special data of classes (and attributes of objects) written at the commit point."""

    def __init__(self) -> None:
        self._writes: dict[tuple[int, str], tuple[object, str, object]] = {}

    def __bool__(self) -> bool:
        return bool(self._writes)

    def put(self, obj: object, name: str, value: object) -> None:
        self._writes[(id(obj), name)] = (obj, name, value)

    def get(self, obj: object, name: str, default: object) -> object:
        """What ``obj``'s ``name`` will be (``default``: nothing deferred for it)."""
        entry = self._writes.get((id(obj), name))
        return entry[2] if entry is not None else default

    def discard(self, obj: object, name: str) -> None:
        self._writes.pop((id(obj), name), None)

    def names(self, obj: object) -> set[str]:
        return {name for (key, name) in self._writes if key == id(obj)}

    def take(self) -> list[tuple[object, str, object]]:
        """Every deferred write, in the order first deferred; none is left."""
        writes = list(self._writes.values())
        self._writes.clear()
        return writes

    def redirect(self, objects: dict[int, object]) -> None:
        """A deferred value that is a throwaway object becomes the live one."""
        for key, (obj, name, value) in list(self._writes.items()):
            if id(value) in objects:
                self._writes[key] = (obj, name, objects[id(value)])


@contextlib.contextmanager
def one_step() -> Iterator[None]:
    """Run the commit point's writes as one step for the other threads: none is given the
    interpreter in between (they would wait for it longer than the writes take)."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(max(interval, _SWITCH))
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


class ClassChanges:
    """What one transaction changes in classes at its commit point: gated members, gated
    attributes of instances (an enum member's value) and deferred special data."""

    def __init__(self) -> None:
        self.gates: dict[tuple[int, str], MemberGate] = {}  # by (id of the class, name)
        self.states: dict[tuple[int, str], StateGate] = {}
        self.deferred = Deferred()

    def stage(self, cls: type, name: str, value: object, point: CommitPoint) -> bool:
        """Change ``cls``'s member ``name`` to ``value`` (ABSENT: remove it) at the commit
        point; False when it is to be changed now instead."""
        if (id(cls), name) in self.gates:
            timing: Timing = "gate"  # gated earlier in the transaction: the gate decides
        else:
            timing = member_timing(cls, name, self.member(cls, name), value)
        if timing == "gate":
            self.deferred.discard(cls, name)  # deferred before, gated from now on
            self._gate(cls, name, value, point)
        elif timing == "defer":
            self.deferred.put(cls, name, value)
        return timing != "now"

    def _gate(self, cls: type, name: str, value: object, point: CommitPoint) -> None:
        gate = self.gates.get((id(cls), name))
        if gate is None:
            old = gated_member(cls.__dict__.get(name, ABSENT))
            if old is value:
                return
            gate = self.gates[(id(cls), name)] = MemberGate(cls, name, old, point)
            gate.new = value
            type.__setattr__(cls, name, gate)
        gate.new = value

    def stage_state(self, obj: object, name: str, value: object, point: CommitPoint) -> bool:
        """Change ``obj``'s own attribute ``name`` at the commit point; False when its
        class defines the name (a gate would decide more than this attribute)."""
        cls = type(obj)
        gate = self.states.get((id(cls), name))
        if gate is None:
            if not hasattr(obj, "__dict__") or any(name in vars(k) for k in cls.__mro__):
                return False
            gate = self.states[(id(cls), name)] = StateGate(cls, name, point)
            type.__setattr__(cls, name, gate)
        gate.new[id(obj)] = (obj, value)
        return True

    def member(self, cls: type, name: str) -> object:
        """What ``cls`` holds as ``name`` in this transaction (ABSENT: nothing)."""
        deferred = self.deferred.get(cls, name, _MISSING)
        if deferred is not _MISSING:
            return deferred
        return gated_member(cls.__dict__.get(name, ABSENT))

    def members(self, cls: type) -> dict[str, object]:
        """``cls``'s namespace as this transaction has it."""
        names = cls.__dict__.keys() | self.deferred.names(cls)
        found = {name: self.member(cls, name) for name in names}
        return {name: value for name, value in found.items() if value is not ABSENT}

    def close(self, *, committed: bool) -> None:
        """Every gate takes its final value (the commit point is closed already)."""
        for gate in self.gates.values():
            final = gate.new if committed else gate.old
            cls, name = gate.cls, gate.name
            if cls.__dict__.get(name) is not gate:
                continue  # the program set it meanwhile: its value stays
            if final is ABSENT:
                type.__delattr__(cls, name)
            else:
                type.__setattr__(cls, name, final)
        self.gates.clear()
        for state in self.states.values():
            state.close(committed=committed)
        self.states.clear()
