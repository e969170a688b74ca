"""What a definition that is gone registered leaves the registries that hold it.

A decorator or ``__init_subclass__`` registers a function or class into a list, dict or
set of the user's modules (a module global, a class attribute, a container kept in a
decorator's closure such as ``functools.singledispatch``'s registry). When the definition
is removed, renamed, undecorated or re-decorated, a fresh import would not hold what it
registered: :func:`purge_definitions` takes it out (entries holding the object itself, a
tuple holding it, or its name unless the statement that made the registry writes it),
through the journal, so a rolled-back reload puts everything back.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from relive._undo import PLAIN_VALUES

__all__ = ["purge_definitions", "reorder_registries"]

# What a namespace mostly holds, never a container, less the functions and method wrappers
# whose closures this module walks (a decorator's registry).
_PLAIN = PLAIN_VALUES - {types.FunctionType, staticmethod, classmethod}
_CLOSURE_DEPTH = 2  # a decorator's function -> its attribute's closure (``fmt.register``)


class _Gone:
    """What is gone: objects by id, and names no definition binds any more (as strings
    in a registry, except where the statement that made the registry writes them)."""

    def __init__(self, objects: dict[int, object], names: frozenset[str]) -> None:
        self.objects = objects
        self.names = names
        self.written: frozenset[str] = frozenset()  # in the current registry's statement

    def holds(self, item: object) -> bool:
        """Whether a registry entry is (or is a tuple holding) something gone."""
        if id(item) in self.objects:
            return True
        if type(item) is str:  # a list's or a set's entry, or in a tuple
            return item in self.names and item not in self.written
        if type(item) is tuple:
            return any(self.holds(inner) for inner in item if type(inner) is not tuple)
        return False

    def written_by(self, source: Callable[[], str], name: str | None) -> frozenset[str]:
        """The gone names the top-level statement binding ``name`` writes as strings
        (``__all__ = ["f", "g"]``: a fresh import puts them there again)."""
        if name is None or not self.names:
            return frozenset()
        text = _statement_binding(source(), name)
        return frozenset(n for n in self.names if f'"{n}"' in text or f"'{n}'" in text)


def _statement_binding(source: str, name: str) -> str:
    """The text of the first top-level statement of ``source`` binding ``name`` (from its
    line to the next line starting at the first column)."""
    found = re.search(rf"^{re.escape(name)}\s*(?::[^=\n]*)?=", source, re.MULTILINE)
    if found is None:
        return ""
    end = re.compile(r"^\S", re.MULTILINE).search(source, found.end())
    return source[found.start() : end.start() if end is not None else len(source)]


def purge_definitions(
    objects: Iterable[object],
    filename: str,
    modules: Iterable[ModuleType],
    journal: Any,
    names: Iterable[str] = (),
) -> None:
    """Take functions and classes a removed or re-decorated definition of ``filename``
    made (and the functions behind wrappers) out of the registries of the user's
    ``modules`` (registries of installed packages are left alone); ``names``: names the
    module no longer defines, taken out where a registry holds them as strings."""
    from relive._patch import find_functions  # the patcher imports the undo records

    gone: dict[int, object] = {}
    for obj in objects:
        if obj is None:
            continue
        gone[id(obj)] = obj
        if not isinstance(obj, type):
            qualname = getattr(obj, "__qualname__", "")
            for function in find_functions(obj, qualname, filename):
                gone[id(function)] = function
    if not gone and not names:
        return
    record = _Gone(gone, frozenset(names))
    seen: set[int] = set()
    for module in modules:
        if not _user_module(module):
            continue
        source = functools.cache(functools.partial(_read, getattr(module, "__file__", "")))
        for container, owner, name in _containers(module):
            if id(container) not in seen:
                seen.add(id(container))
                record.written = record.written_by(source, name)
                if _drop(container, record, journal) and owner is not None:
                    _clear_dispatch_cache(owner, journal)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _clear_dispatch_cache(function: Any, journal: Any) -> None:
    """A ``singledispatch`` function whose registry changed: its cache of what each type
    dispatches to is stale now, and again once the registry is put back."""
    clear = function.__dict__.get("_clear_cache")
    if callable(clear):
        clear()
        journal.on_rollback(clear)


def _user_module(module: ModuleType) -> bool:
    """A module of the user's (not of the standard library or an installed package)."""
    path = getattr(module, "__file__", None)
    return isinstance(path, str) and not os.path.realpath(path).startswith(_excluded())


@functools.lru_cache(maxsize=1)
def _excluded() -> tuple[str, ...]:
    from relive._tracker import excluded_prefixes

    return excluded_prefixes()


def _container(value: object) -> bool:
    return isinstance(value, (list, dict, set))


def _holders(module: ModuleType) -> list[tuple[Any, str | None]]:
    """The module's values that may hold registries, its own classes' attributes too,
    each with its global name (None for a class attribute)."""
    values: list[tuple[Any, str | None]] = []
    for name, value in list(vars(module).items()):
        kind = type(value)
        if kind in _PLAIN or value is sys.modules or name == "__builtins__":
            continue
        if isinstance(value, type):
            if value.__module__ == module.__name__:
                values += [
                    (v, None) for v in list(value.__dict__.values()) if type(v) not in _PLAIN
                ]
        elif kind is not ModuleType:
            values.append((value, name))
    return values


def _containers(module: ModuleType) -> Iterator[tuple[Any, object, str | None]]:
    """The lists, dicts and sets the module holds (one level into them), and those kept
    in the closures of its functions, each with the function whose dispatch cache
    depends on it (``functools.singledispatch``), if any, and the global name."""
    for value, name in _holders(module):
        if _container(value):
            yield value, None, name
            inner = value.values() if isinstance(value, dict) else value
            yield from ((item, None, name) for item in list(inner) if _container(item))
        else:
            function = _dispatcher(value)
            if function is not None:
                owner = function if "_clear_cache" in function.__dict__ else None
                for found in _in_closures(function, _CLOSURE_DEPTH):
                    yield found, owner, None


def _dispatcher(value: object) -> types.FunctionType | None:
    """The function behind a module or class value (a ``singledispatchmethod``'s
    dispatcher, a classmethod's or staticmethod's function)."""
    if isinstance(value, (classmethod, staticmethod)):
        value = value.__func__
    if isinstance(value, functools.singledispatchmethod):
        value = value.dispatcher
    return value if isinstance(value, types.FunctionType) else None


def _in_closures(function: types.FunctionType, depth: int) -> Iterator[Any]:
    """Containers a decorator keeps in a closure, or in a function it attached:
    ``functools.singledispatch``'s registry (in ``fmt.register``'s closure)."""
    inner: list[object] = []
    for cell in function.__closure__ or ():
        try:
            inner.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    inner += function.__dict__.values()
    for item in inner:
        if type(item) not in _PLAIN and _container(item):
            yield item
        elif depth > 1 and type(item) is types.FunctionType:
            yield from _in_closures(item, depth - 1)


def _drop(container: Any, gone: _Gone, journal: Any) -> bool:
    """Take what is gone out of ``container``; whether anything was."""
    from relive._undo import restore_container

    if isinstance(container, dict):
        # Keys that are names stay: a namespace (``__builtins__``) is a dict of names too.
        doomed = [
            key
            for key, value in list(container.items())
            if id(key) in gone.objects
            or (type(key) is not str and gone.holds(key))
            or gone.holds(value)
        ]
        if not doomed:
            return False
        saved: Any = dict(container)
        for key in doomed:
            dict.__delitem__(container, key)
    elif isinstance(container, list):
        kept = [item for item in list(container) if not gone.holds(item)]
        if len(kept) == len(container):
            return False
        saved = list(container)
        list.__setitem__(container, slice(None), kept)
    else:
        doomed = [item for item in list(container) if gone.holds(item)]
        if not doomed:
            return False
        saved = list(container)
        for item in doomed:
            set.discard(container, item)
    journal.on_rollback(lambda: restore_container(container, saved))
    return True


Position = Callable[[object], "tuple[str, int] | None"]


def reorder_registries(lists: Iterable[tuple[list[Any], list[Any]]], position: Position) -> None:
    """Put what a reload registered into lists where a fresh import would: before the
    first entry made further down the same file (``class KindB`` added above ``class
    Leaf`` registers before it, not after it). ``lists``: each list with its entries as
    they were before the reload; ``position``: an entry's (file, first line), if known.
    The lists were recorded for the rollback, which puts them back as they were."""
    for registry, before in lists:
        known = {id(item) for item in before}
        if len(registry) == len(before) and all(id(item) in known for item in registry):
            continue
        added = [item for item in registry if id(item) not in known]
        if any(position(item) is not None for item in added):
            _place(registry, added, position)


def _place(registry: list[Any], added: list[Any], position: Position) -> None:
    order = list(registry)
    for item in added:
        where = position(item)
        if where is None:
            continue
        at = order.index(item)
        del order[at]
        index = next(
            (
                i
                for i, other in enumerate(order)
                if (there := position(other)) is not None
                and there[0] == where[0]
                and there[1] > where[1]
            ),
            None,
        )
        order.insert(at if index is None else index, item)
    if any(a is not b for a, b in zip(order, registry, strict=True)):
        list.__setitem__(registry, slice(None), order)
