"""Plan → live objects: patch functions and classes in place, with an undo journal.

Object identity is kept: a patched function keeps its object and gets the new code, so
every reference (``from m import f`` copies, registries, bound methods, wrappers) runs the
new code. Every change goes through a :class:`Journal` so a failed reload can be undone.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import gc
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Journal",
    "find_functions",
    "fix_class_cells",
    "patch_class_members",
    "patch_function",
    "shift_lines",
    "swap_code",
]

_MISSING: Any = object()
_CodeMap = dict[types.CodeType, types.CodeType]
_SKIPPED_CLASS_ATTRS = frozenset({"__dict__", "__weakref__", "__module__", "__qualname__"})
# The member tables of an enum, merged by _patch_enum_members rather than copied.
_ENUM_TABLES = frozenset({"_member_map_", "_member_names_", "_value2member_map_"})
# Code of comprehensions: never held by a live function between calls.
_COMPREHENSIONS = frozenset({"<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"})


@dataclass
class Journal:
    """Every change made to live objects during one reload, so it can be undone.

    It also collects the nested code replaced on the way (:meth:`follow_nested`), so that
    closures made from it before the reload follow in one pass (:meth:`patch_closures`).
    """

    _undo: list[Callable[[], None]] = field(default_factory=list)
    _namespaces: dict[int, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    _nested: _CodeMap = field(default_factory=dict)

    def remember_namespace(self, namespace: dict[str, Any]) -> None:
        """Take a shallow copy of a namespace the first time it is about to change."""
        if id(namespace) not in self._namespaces:
            self._namespaces[id(namespace)] = (namespace, dict(namespace))

    def setattr(self, obj: object, name: str, value: object) -> None:
        """Set an attribute, remembering its old value (or its absence)."""
        setter = type.__setattr__ if isinstance(obj, type) else object.__setattr__
        old = _own_attribute(obj, name)
        setter(obj, name, value)
        self._undo.append(functools.partial(_restore_attribute, obj, name, old))

    def delattr(self, obj: object, name: str) -> None:
        """Delete an attribute, remembering its old value."""
        old = _own_attribute(obj, name)
        if old is _MISSING:
            return
        (type.__delattr__ if isinstance(obj, type) else object.__delattr__)(obj, name)
        self._undo.append(functools.partial(_restore_attribute, obj, name, old))

    def set_cell(self, cell: types.CellType, value: object) -> None:
        """Change what a closure cell holds."""
        old = cell.cell_contents
        cell.cell_contents = value
        self._undo.append(functools.partial(setattr, cell, "cell_contents", old))

    def follow_nested(self, old: types.CodeType, new: types.CodeType) -> None:
        """Record that functions made from code nested in ``old`` must get ``new``'s."""
        for old_code, new_code in _paired_nested(old, new):
            if old_code.co_name not in _COMPREHENSIONS and not _same_code(old_code, new_code):
                self._nested[old_code] = new_code

    def patch_closures(self) -> int:
        """Give the live closures made from replaced nested code their new code.

        One pass over the heap for the whole reload, and none when no nested code changed.
        Returns how many functions were patched.
        """
        replacements = {old: _latest(new, self._nested) for old, new in self._nested.items()}
        self._nested.clear()
        if not replacements:
            return 0
        patched = 0
        for referrer in gc.get_referrers(*replacements):
            if isinstance(referrer, types.FunctionType) and referrer.__code__ in replacements:
                patched += swap_code(referrer, replacements[referrer.__code__], self)
        return patched

    def on_rollback(self, action: Callable[[], None]) -> None:
        """Register an extra undo action (run in reverse order of registration)."""
        self._undo.append(action)

    def rollback(self) -> None:
        """Undo every change, newest first, then restore the remembered namespaces."""
        while self._undo:
            self._undo.pop()()
        for namespace, saved in self._namespaces.values():
            _restore_namespace(namespace, saved)
        self._namespaces.clear()
        self._nested.clear()

    def commit(self) -> None:
        """Forget the undo information: the changes are final."""
        self._undo.clear()
        self._namespaces.clear()
        self._nested.clear()


def _latest(code: types.CodeType, replacements: _CodeMap) -> types.CodeType:
    """Follow a chain of replacements (a module patched twice in one reload) to its end."""
    for _ in range(len(replacements)):
        following = replacements.get(code)
        if following is None or following is code:
            break
        code = following
    return code


def _own_attribute(obj: object, name: str) -> object:
    if isinstance(obj, type):
        return obj.__dict__.get(name, _MISSING)
    return getattr(obj, name, _MISSING)


def _restore_attribute(obj: object, name: str, old: object) -> None:
    is_type = isinstance(obj, type)
    if old is _MISSING:
        if name in (obj.__dict__ if is_type else ()) or not is_type:
            with contextlib.suppress(AttributeError):
                (type.__delattr__ if is_type else object.__delattr__)(obj, name)
        return
    (type.__setattr__ if is_type else object.__setattr__)(obj, name, old)


def _restore_namespace(namespace: dict[str, Any], saved: dict[str, Any]) -> None:
    # Key by key rather than clear() + update(): other threads never see a missing name.
    for name in [name for name in namespace if name not in saved]:
        del namespace[name]
    for name, value in saved.items():
        if namespace.get(name, _MISSING) is not value:
            namespace[name] = value


# ---------------------------------------------------------------------------------------
# Functions


def find_functions(
    obj: object, qualname: str, filename: str, *, caches: list[object] | None = None
) -> list[types.FunctionType]:
    """Find the functions made from source ``filename``/``qualname`` behind ``obj``.

    Follows what decorators leave behind: ``__wrapped__``, ``__func__``, ``func``,
    properties' accessors, and closure cells of wrappers. Objects with a ``cache_clear``
    method met on the way (``functools.lru_cache``) are appended to ``caches``.
    """
    found: list[types.FunctionType] = []
    seen: set[int] = set()
    stack: list[tuple[object, int]] = [(obj, 0)]
    while stack:
        current, depth = stack.pop()
        if id(current) in seen or depth > 6:
            continue
        seen.add(id(current))
        if caches is not None and callable(getattr(current, "cache_clear", None)):
            caches.append(current)
        if isinstance(current, types.FunctionType):
            code = current.__code__
            if code.co_qualname == qualname and code.co_filename == filename:
                found.append(current)
                continue
        stack.extend((inner, depth + 1) for inner in _inner_objects(current))
    return found


def _inner_objects(obj: object) -> Iterator[object]:
    if isinstance(obj, property):
        yield from (f for f in (obj.fget, obj.fset, obj.fdel) if f is not None)
        return
    for name in ("__wrapped__", "__func__", "func", "callback"):
        try:
            inner = object.__getattribute__(obj, name)
        except (AttributeError, TypeError):
            continue
        if inner is not None:
            yield inner
    if isinstance(obj, types.FunctionType) and obj.__closure__:
        for cell in obj.__closure__:
            try:
                contents = cell.cell_contents
            except ValueError:
                continue
            if callable(contents) and not isinstance(contents, type):
                yield contents


def swap_code(function: types.FunctionType, code: types.CodeType, journal: Journal) -> bool:
    """Give ``function`` new code; False when the closures do not line up."""
    if function.__code__.co_freevars != code.co_freevars:
        return False
    if function.__code__ is not code:
        journal.setattr(function, "__code__", code)
    return True


def patch_function(old: types.FunctionType, new: types.FunctionType, journal: Journal) -> bool:
    """Make ``old`` behave as ``new``: code, defaults, annotations, doc and dict.

    Returns False (and changes nothing) when the two capture different variables.
    Functions made at run time from code nested in ``old`` (closures created before the
    edit) get the new nested code as well, when the journal patches closures.
    """
    previous = old.__code__
    if not swap_code(old, new.__code__, journal):
        return False
    for name in ("__defaults__", "__kwdefaults__", "__annotations__", "__doc__"):
        value = getattr(new, name)
        if getattr(old, name) is not value:
            journal.setattr(old, name, value)
    for name, value in new.__dict__.items():
        if old.__dict__.get(name, _MISSING) is not value:
            journal.setattr(old, name, value)
    journal.follow_nested(previous, new.__code__)
    return True


def _paired_nested(
    old: types.CodeType, new: types.CodeType
) -> Iterator[tuple[types.CodeType, types.CodeType]]:
    new_nested: dict[str, list[types.CodeType]] = {}
    for const in new.co_consts:
        if isinstance(const, types.CodeType):
            new_nested.setdefault(const.co_qualname, []).append(const)
    for const in old.co_consts:
        if isinstance(const, types.CodeType):
            candidates = new_nested.get(const.co_qualname)
            if candidates:
                match = candidates.pop(0)
                yield const, match
                yield from _paired_nested(const, match)


def _same_code(a: types.CodeType, b: types.CodeType) -> bool:
    return (
        a.co_code == b.co_code
        and a.co_consts == b.co_consts
        and a.co_names == b.co_names
        and a.co_firstlineno == b.co_firstlineno
        and a.co_linetable == b.co_linetable
    )


def shift_lines(code: types.CodeType, delta: int) -> types.CodeType:
    """The same code, moved ``delta`` lines (nested code objects too)."""
    if not delta:
        return code
    consts = tuple(
        shift_lines(const, delta) if isinstance(const, types.CodeType) else const
        for const in code.co_consts
    )
    return code.replace(co_firstlineno=code.co_firstlineno + delta, co_consts=consts)


# ---------------------------------------------------------------------------------------
# Classes


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


def patch_member(old: object, new: object, filename: str, journal: Journal) -> bool:
    """Patch a class member in place (functions and the descriptors around them).

    Returns False when the member must be replaced instead (a different kind of member,
    generated code such as a dataclass ``__init__``, or closures that do not line up).
    """
    if type(old) is not type(new):
        return False
    if isinstance(old, types.FunctionType):
        assert isinstance(new, types.FunctionType)
        if old.__code__.co_filename != filename or new.__code__.co_filename != filename:
            return False
        return patch_function(old, new, journal)
    if isinstance(old, (staticmethod, classmethod)):
        assert isinstance(new, (staticmethod, classmethod))
        return patch_member(old.__func__, new.__func__, filename, journal)
    if isinstance(old, functools.cached_property):
        assert isinstance(new, functools.cached_property)
        return patch_member(old.func, new.func, filename, journal)
    if isinstance(old, property):
        assert isinstance(new, property)
        pairs = [(old.fget, new.fget), (old.fset, new.fset), (old.fdel, new.fdel)]
        if any((a is None) != (b is None) for a, b in pairs):
            return False
        return all(a is None or patch_member(a, b, filename, journal) for a, b in pairs)
    return False


@dataclass(frozen=True)
class MemberRules:
    """Which members of a rebuilt class take their new value."""

    filename: str
    keep_old: frozenset[str]  # bound by unchanged source statements: state kept
    removed: frozenset[str]  # bound before, bound by nothing now


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
    skipped = _SKIPPED_CLASS_ATTRS
    if isinstance(new, enum.EnumMeta):
        skipped = skipped | _ENUM_TABLES | new._member_map_.keys()
    for name, value in new.__dict__.items():
        if name in skipped:
            continue
        if _patch_one_member(old, new, name, value, rules, journal, nested):
            changed.append(name)
    for name in rules.removed:
        if name in old.__dict__ and name not in new.__dict__:
            journal.delattr(old, name)
            changed.append(name)
    return changed


def _patch_one_member(
    old: type,
    new: type,
    name: str,
    value: object,
    rules: MemberRules,
    journal: Journal,
    nested: Callable[[str, type, type], bool],
) -> bool:
    current = old.__dict__.get(name, _MISSING)
    if current is value:
        return False
    if name == "__doc__":
        journal.setattr(old, name, value)
        return bool(current != value)
    if current is not _MISSING:
        if isinstance(current, type) and isinstance(value, type) and nested(name, current, value):
            return True
        if patch_member(current, value, rules.filename, journal):
            return True
        if name in rules.keep_old:
            return False
    fix_class_cells(value, new, old, journal)
    journal.setattr(old, name, value)
    return True


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
            journal.setattr(old, name, member)
            changed.append(name)
            live = member
        elif _member_state(live) != _member_state(member):
            for attribute, value in _member_state(member).items():
                journal.setattr(live, attribute, value)
            changed.append(name)
        member_map[name] = live
    for name in old_map.keys() - new_map.keys():
        journal.delattr(old, name)
        changed.append(name)
    if changed:
        journal.setattr(old, "_member_map_", member_map)
        journal.setattr(old, "_member_names_", list(new._member_names_))
        values = {m._value_: m for m in member_map.values()}
        journal.setattr(old, "_value2member_map_", values)
    return changed


def _member_state(member: object) -> dict[str, Any]:
    """An enum member's own attributes (its value, and what a custom ``__init__`` set)."""
    return {name: value for name, value in vars(member).items() if name != "_sort_order_"}
