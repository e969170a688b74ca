"""Patch live classes member by member from a freshly built class, with the journal.

The class object is kept, so instances, subclasses (in other modules too), ``isinstance``,
``except`` clauses and pickle keep working; the fresh class is thrown away afterwards.
"""

from __future__ import annotations

import abc
import enum
import functools
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from relive._gate import ABSENT
from relive._heap import wait_for_readers
from relive._patch import Journal, find_functions, patch_function

__all__ = [
    "MemberRules",
    "fix_class_cells",
    "incompatibility",
    "patch_class_members",
    "patch_member",
    "source_members",
]

_MISSING: Any = object()
_SKIPPED_CLASS_ATTRS = frozenset({"__dict__", "__weakref__", "__module__", "__qualname__"})
# The member tables of an enum, merged by _patch_enum_members rather than copied.
_ENUM_TABLES = frozenset({"_member_map_", "_member_names_", "_value2member_map_"})
# What an enum member holds about its place in the class, not its value.
_ENUM_OWN = frozenset({"_sort_order_", "__objclass__"})
# Run-time state a class carries in its namespace: kept from the live class.
_CLASS_STATE = frozenset({"_abc_impl"})


def incompatibility(
    live: type, fresh: type, counterpart: Callable[[type], type] | None = None
) -> str | None:
    """Why ``fresh`` cannot be merged into ``live`` (a restart is needed), or None.

    ``counterpart``: the live class a base of ``fresh`` stands for (a class made by the
    same class body run again, merged into the live one)."""
    if type(live) is not type(fresh):
        return f"the metaclass of {live.__qualname__} changed"
    bases = fresh.__bases__
    if counterpart is not None:
        bases = tuple(counterpart(base) for base in bases)
    if live.__bases__ != bases:
        return f"the bases of class {live.__qualname__} changed"
    if live.__dict__.get("__slots__") != fresh.__dict__.get("__slots__"):
        return f"__slots__ of {live.__qualname__} changed"
    if isinstance(live, enum.EnumMeta) and isinstance(fresh, enum.EnumMeta):
        return _enum_payload_changed(live, fresh)
    return None


_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class made by a class statement


def _enum_payload_changed(live: enum.EnumMeta, fresh: enum.EnumMeta) -> str | None:
    """Why a member of a mixin enum (``IntEnum``, ``StrEnum``, ``class E(date, Enum)``)
    cannot take its new value: the member *is* the int or str, and that cannot change."""
    member_type: type = getattr(live, "_member_type_", object)
    payload = [
        base
        for base in member_type.__mro__
        if base is not object and (not base.__flags__ & _HEAP_TYPE or "__slots__" in vars(base))
    ]
    if not payload:
        return None
    fresh_members: dict[str, Any] = fresh._member_map_
    for name, member in live._member_map_.items():
        new = fresh_members.get(name)
        if new is None:
            continue
        old_value, new_value = member._value_, new._value_
        if type(old_value) is not type(new_value) or old_value != new_value:
            return (
                f"the value of {live.__qualname__}.{name} changed ({old_value!r} -> "
                f"{new_value!r}); a {payload[0].__name__} member cannot change its value"
            )
    return None


def source_members(cls: type, filename: str) -> set[str]:
    """Members of ``cls`` defined by its source (functions and the descriptors around them)."""
    return {
        name
        for name, member in cls.__dict__.items()
        if find_functions(member, f"{cls.__qualname__}.{name}", filename)
    }


def fix_class_cells(obj: object, new_cls: type, old_cls: type, journal: Journal) -> None:
    """Point ``__class__`` cells (zero-argument ``super()``) of ``obj`` at the live class."""
    for function in _functions_of(obj):
        for name, cell in zip(
            function.__code__.co_freevars, function.__closure__ or (), strict=False
        ):
            if name == "__class__" and _cell_value(cell) is new_cls:
                journal.set_cell(cell, old_cls)


def _functions_of(obj: object) -> Iterator[types.FunctionType]:
    if isinstance(obj, types.FunctionType):
        yield obj
    elif isinstance(obj, (staticmethod, classmethod)):
        yield from _functions_of(obj.__func__)
    elif isinstance(obj, property):
        for accessor in (obj.fget, obj.fset, obj.fdel):
            yield from _functions_of(accessor)
    elif isinstance(obj, functools.cached_property):
        yield from _functions_of(obj.func)


def _cell_value(cell: types.CellType) -> object:
    try:
        return cell.cell_contents
    except ValueError:
        return _MISSING


def patch_member(
    old: object,
    new: object,
    filename: str,
    journal: Journal,
    lines: Mapping[int, int] | None = None,
) -> bool:
    """Patch a class member in place (functions and the descriptors around them).

    Returns False when the member must be replaced instead (a different kind of member,
    generated code such as a dataclass ``__init__``, or closures that do not line up).
    ``lines`` (new first line -> old first line of the statements an edit kept): a function
    is patched only from the new version of its own statement (a name defined several
    times, such as ``_`` registered with ``@fmt.register``).
    """
    if type(old) is not type(new):
        return False
    if isinstance(old, types.FunctionType):
        assert isinstance(new, types.FunctionType)
        if old.__code__.co_filename != filename or new.__code__.co_filename != filename:
            return False
        if lines is not None and lines.get(new.__code__.co_firstlineno) != (
            old.__code__.co_firstlineno
        ):
            return False
        if not patch_function(old, new, journal, whole=True):
            return False
        # What the body's decorators registered the fresh function as is the live one's.
        journal.redirect(new, old)
        return True
    if isinstance(old, (staticmethod, classmethod)):
        assert isinstance(new, (staticmethod, classmethod))
        return patch_member(old.__func__, new.__func__, filename, journal, lines)
    if isinstance(old, functools.cached_property):
        assert isinstance(new, functools.cached_property)
        return patch_member(old.func, new.func, filename, journal, lines)
    if isinstance(old, property):
        assert isinstance(new, property)
        pairs = [(old.fget, new.fget), (old.fset, new.fset), (old.fdel, new.fdel)]
        if any((a is None) != (b is None) for a, b in pairs):
            return False
        return all(a is None or patch_member(a, b, filename, journal, lines) for a, b in pairs)
    return False


@dataclass(frozen=True)
class MemberRules:
    """Which members of a rebuilt class take their new value."""

    filename: str
    keep_old: frozenset[str]  # bound by unchanged source statements: state kept
    removed: frozenset[str]  # bound before, bound by nothing now
    several: frozenset[str] = frozenset()  # names bound by more than one statement
    lines: Mapping[int, int] = field(default_factory=dict)  # new line -> old line, kept ones


def patch_class_members(
    old: type,
    new: type,
    rules: MemberRules,
    journal: Journal,
    *,
    nested: Callable[[str, type, type], bool],
) -> list[str]:
    """Move the members of a freshly built class ``new`` onto the live class ``old``.

    ``nested(name, old_member, new_member)`` patches a nested class and returns True, or
    returns False to have it replaced. Returns the names of members changed.
    """
    changed: list[str] = []
    if isinstance(old, enum.EnumMeta):
        assert isinstance(new, enum.EnumMeta)
        changed += _patch_enum_members(old, new, journal)
    skipped = _SKIPPED_CLASS_ATTRS | (_CLASS_STATE & old.__dict__.keys())
    if isinstance(new, enum.EnumMeta):
        skipped = skipped | _ENUM_TABLES | new._member_map_.keys()
    for name, value in new.__dict__.items():
        if name in skipped:
            continue
        if _patch_one_member(old, new, name, value, rules, journal, nested):
            changed.append(name)
    current = journal.members(old)  # as the transaction has it (staged changes too)
    removed = rules.removed | _built_before(current, new, skipped)
    wait_for_readers(rules.filename, removed & current.keys())
    for name in removed:
        if name in current and name not in new.__dict__:
            journal.delattr(old, name)
            changed.append(name)
    if isinstance(old, abc.ABCMeta):
        old._abc_caches_clear()  # type: ignore[attr-defined]  # its registrations are kept
        _update_abstract_methods(old, journal)
    journal.redirect(new, old)
    return changed


def _built_before(old: Mapping[str, object], new: type, skipped: frozenset[str]) -> frozenset[str]:
    """Special members the last build (namespace ``old``) made and this one does not: what
    a class decorator generated (a frozen dataclass's ``__setattr__``, ``__dataclass_fields__``
    once ``@dataclass`` is gone). Functions written in some file are left alone (another
    module may have set them on purpose)."""
    return frozenset(
        name
        for name, value in old.items()
        if name.startswith("__")
        and name.endswith("__")
        and name not in new.__dict__
        and name not in skipped
        and (not callable(value) or _generated(value))
    )


def _generated(value: object) -> bool:
    code = getattr(value, "__code__", None)
    return isinstance(code, types.CodeType) and code.co_filename.startswith("<")


def _update_abstract_methods(cls: type, journal: Journal) -> None:
    """Recompute ``__abstractmethods__`` of ``cls`` and its subclasses, parents first, as
    ``abc.update_abstractmethods`` does but from the members as the transaction has them:
    whether the class can be instantiated changes at the commit point with them."""
    before = journal.member(cls, "__abstractmethods__")
    if not isinstance(before, frozenset):
        return  # not an ABC's
    abstracts = {
        name
        for base in cls.__bases__
        for name in _abstract_names(base, journal)
        if getattr(getattr(cls, name, None), "__isabstractmethod__", False)
    }
    abstracts |= {
        name
        for name, value in journal.members(cls).items()
        if getattr(value, "__isabstractmethod__", False)
    }
    if abstracts != before:
        journal.setattr(cls, "__abstractmethods__", frozenset(abstracts))
    subclass: type
    for subclass in cls.__subclasses__():
        _update_abstract_methods(subclass, journal)


def _abstract_names(cls: type, journal: Journal) -> frozenset[str]:
    names = journal.member(cls, "__abstractmethods__")
    if isinstance(names, frozenset):
        return names
    return frozenset(getattr(cls, "__abstractmethods__", ()))


def _patch_one_member(
    old: type,
    new: type,
    name: str,
    value: object,
    rules: MemberRules,
    journal: Journal,
    nested: Callable[[str, type, type], bool],
) -> bool:
    current = journal.member(old, name)  # a member replaced earlier in the transaction
    current = _MISSING if current is ABSENT else current
    if current is value or _layout_descriptor(value, new):
        return False
    if name == "__doc__":
        journal.setattr(old, name, value)
        return bool(current != value)
    if current is not _MISSING:
        if isinstance(current, type) and isinstance(value, type) and nested(name, current, value):
            return True
        if _set_after_the_body(old, name, current, value):
            return False
        lines = rules.lines if name in rules.several else None
        if patch_member(current, value, rules.filename, journal, lines):
            return True
        if name in rules.keep_old:
            return False
    fix_class_cells(value, new, old, journal)
    journal.setattr(old, name, value)
    return True


def _set_after_the_body(cls: type, name: str, current: object, value: object) -> bool:
    """Whether the class body defines ``name`` with a ``def`` but what the class holds now
    was made elsewhere: a later statement set it (``C.__new__ = staticmethod(_fail)``).
    That one is neither patched with the body's code nor replaced: a fresh import runs the
    later statement after the class body, so its binding is what stays."""
    expected = f"{cls.__qualname__}.{name}"
    made = next(_functions_of(value), None)
    held = next(_functions_of(current), None)
    if made is None or held is None:
        return False
    # A decorator's wrapper is a nested function (``deco.<locals>.wrapper``), or carries
    # the wrapped name: only a function of the module's top level, or another class's,
    # is taken as put there by a later statement.
    return (
        made.__qualname__ == expected
        and held.__qualname__ != expected
        and "<locals>" not in held.__qualname__
    )


def _layout_descriptor(value: object, owner: type) -> bool:
    """A slot's descriptor: tied to the memory layout of ``owner``, useless on another class
    (the live class keeps its own: the slots are the same, or the edit needs a restart)."""
    layout = (types.MemberDescriptorType, types.GetSetDescriptorType)
    return isinstance(value, layout) and value.__objclass__ is owner


def _patch_enum_members(old: enum.EnumMeta, new: enum.EnumMeta, journal: Journal) -> list[str]:
    """Existing members keep their identity; new members join; removed ones leave."""
    old_map: dict[str, Any] = dict(old._member_map_)
    new_map: dict[str, Any] = new._member_map_
    member_map: dict[str, Any] = {}
    changed: list[str] = []
    for name, member in new_map.items():
        live = old_map.get(name)
        if live is None:
            journal.setattr(member, "__class__", old)
            if "__objclass__" in vars(member):
                journal.setattr(member, "__objclass__", old)
            journal.setattr(old, name, member)
            changed.append(name)
            live = member
        elif _member_state(live) != _member_state(member):
            for attribute, value in _member_state(member).items():
                if vars(live).get(attribute, _MISSING) is not value:
                    journal.set_state(live, attribute, value)
            changed.append(name)
        member_map[name] = live
    for name in old_map.keys() - new_map.keys():
        journal.delattr(old, name)
        changed.append(name)
    if changed:
        journal.setattr(old, "_member_map_", member_map)
        journal.setattr(old, "_member_names_", list(new._member_names_))
        values = {new_map[name]._value_: member_map[name] for name in new_map}
        journal.setattr(old, "_value2member_map_", values)
    return changed


def _member_state(member: object) -> dict[str, Any]:
    """An enum member's own attributes (its value, and what a custom ``__init__`` set)."""
    return {name: value for name, value in vars(member).items() if name not in _ENUM_OWN}
