"""What the statements a transaction runs may change beyond the journal's own records.

Statements run during a reload (decorators, ``__init_subclass__``, plain calls) register
into lists, dicts and sets held by other modules and import new modules. Just before the
first of them runs, :class:`SideEffects` records the tracked modules' mutable state; a
rolled-back transaction puts it back exactly (the containers keep their identity).
:class:`CacheRecord` does the same for the ``lru_cache`` contents of patched functions.
"""

from __future__ import annotations

import builtins
import gc
import sys
import types
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

from relive._dispatch import DispatchCaches
from relive._gate import ABSENT, MemberGate, StateGate

__all__ = ["PLAIN_VALUES", "CacheRecord", "SideEffects", "restore_container"]

_MISSING: Any = object()
_DEPTH = 2  # containers inside containers (a dict of lists), this many levels down


class SideEffects:
    """The lists, dicts and sets of tracked modules and their classes, as they were.

    Args:
        user_module: Whether a module imported during the transaction is the user's (it
            leaves ``sys.modules`` again on rollback; third-party ones stay).
    """

    def __init__(self, user_module: Callable[[ModuleType], bool]) -> None:
        self._user_module = user_module
        self._containers: dict[int, tuple[Any, Any]] = {}
        self.lists: list[tuple[list[Any], list[Any]]] = []  # every list recorded, as it was
        self._classes: dict[int, tuple[type, dict[str, Any]]] = {}
        self._loaded: set[str] = set()
        self.taken = False
        self.modules: set[str] = set()  # the modules recorded
        self._restorers = 0
        self.dispatch = DispatchCaches()  # singledispatch's caches beside its registry

    def take(self, modules: Iterable[ModuleType], containers: Iterable[object] = ()) -> None:
        """Record the state of ``modules`` (their namespaces are the journal's to keep) and
        of ``containers`` (lists, dicts and sets held elsewhere)."""
        if not self.taken:
            self.taken = True
            self._loaded = set(sys.modules)
        for container in containers:
            self._record(container, 1)
        for module in modules:
            name = module.__name__
            for value in vars(module).values():
                kind = type(value)
                if kind in PLAIN_VALUES or value is sys.modules:
                    continue  # (a class's type is its metaclass: never plain)
                if isinstance(value, type):
                    if value.__module__ == name:
                        self._record_class(value)
                elif kind is not ModuleType and (kind in _CONTAINERS or _container(value)):
                    self._record(value, _DEPTH)
            self._record_closures(vars(module).values())

    def _record_closures(self, values: Iterable[object], depth: int = 2) -> None:
        """Containers a decorator keeps in a closure, or in a function it attached:
        ``functools.singledispatch``'s registry (in ``fmt.register``'s closure), a
        ``register`` decorator's list."""
        for value in values:
            if type(value) is not types.FunctionType:
                continue
            inner: list[object] = []
            for cell in value.__closure__ or ():
                try:
                    inner.append(cell.cell_contents)
                except ValueError:  # an empty cell
                    continue
            inner += _attribute_values(value)
            self.dispatch.record((value,))
            for item in inner:
                if type(item) not in PLAIN_VALUES and _container(item):
                    self._record(item, 1)
            if depth > 1:
                self._record_closures(inner, depth - 1)

    def _record_class(self, cls: type) -> None:
        if id(cls) in self._classes:
            return
        attributes = dict(cls.__dict__)
        self._classes[id(cls)] = (cls, attributes)
        self.dispatch.record(attributes.values())
        for value in attributes.values():
            if type(value) not in PLAIN_VALUES and _container(value):
                self._record(value, _DEPTH)

    def _record(self, value: Any, depth: int) -> None:
        if id(value) in self._containers:
            return
        if isinstance(value, dict):
            saved: Any = dict(value)
            inner: Iterable[object] = saved.values()
        else:
            saved = list(value)
            inner = saved
        self._containers[id(value)] = (value, saved)
        if type(value) is list:
            self.lists.append((value, saved))
        if depth > 1:
            for item in inner:
                if type(item) not in PLAIN_VALUES and _container(item):
                    self._record(item, depth - 1)

    def restorer(self) -> Callable[[], None]:
        """What puts back the state recorded since the last call (the first one also
        unloads the user's modules imported since)."""
        containers, self._containers = self._containers, {}
        classes, self._classes = self._classes, {}
        first = not self._restorers
        self._restorers += 1

        def restore() -> None:
            for container, saved in containers.values():
                restore_container(container, saved)
            for cls, attributes in classes.values():
                _restore_class(cls, attributes)
            self.dispatch.restore()  # after the registries
            if first:
                self._unload_new_modules()

        return restore

    def _unload_new_modules(self) -> None:
        for name in [name for name in sys.modules if name not in self._loaded]:
            module = sys.modules[name]
            if isinstance(module, ModuleType) and self._user_module(module):
                _unload(name, module)


def _attribute_values(function: types.FunctionType) -> list[object]:
    """The values of ``function``'s attributes (``fmt.registry``), read from the dict it
    holds, if any: reading ``__dict__`` makes an empty one for a function without, an
    object more for every later collection to walk, for each function of the program.
    Its annotations, when held as a dict, are read alike (types and strings: no matter)."""
    builtins = getattr(function, "__builtins__", None)
    others = (function.__globals__, builtins, function.__kwdefaults__)
    values: list[object] = []
    for referent in gc.get_referents(function):
        if type(referent) is dict and not any(referent is other for other in others):
            values += referent.values()
    return values


def _container(value: object) -> bool:
    return isinstance(value, (list, dict, set))


_CONTAINERS = frozenset({list, dict, set})
# What a namespace mostly holds, never a container: skipped at the cost of a set lookup.
PLAIN_VALUES = frozenset(
    {
        types.FunctionType,
        types.BuiltinFunctionType,
        types.ModuleType,
        int,
        float,
        str,
        bytes,
        bool,
        tuple,
        frozenset,
        type(None),
        staticmethod,
        classmethod,
        property,
        types.GetSetDescriptorType,
        types.MemberDescriptorType,
        types.WrapperDescriptorType,
        types.MethodDescriptorType,
    }
)


def restore_container(container: Any, saved: Any) -> None:
    if isinstance(container, dict):
        if len(container) != len(saved) or any(
            container.get(key, _MISSING) is not value for key, value in saved.items()
        ):
            _restore_dict(container, saved)
    elif isinstance(container, list):
        if len(container) != len(saved) or any(
            a is not b for a, b in zip(container, saved, strict=True)
        ):
            list.__setitem__(container, slice(None), saved)
    elif len(container) != len(saved) or not set.issuperset(container, saved):
        set.clear(container)
        set.update(container, saved)


def _restore_dict(container: dict[Any, Any], saved: dict[Any, Any]) -> None:
    """Put a dict back as it was without emptying it first: it may be the builtins' (a
    module's ``__builtins__``), which every name lookup of every thread reads, this code's
    too. In its old order too, when that changed (a registry's key removed and added)."""
    for key in [key for key in container if key not in saved]:
        _DICT_DELITEM(container, key)
    for key, value in saved.items():
        if container.get(key, _MISSING) is not value:
            _DICT_SETITEM(container, key, value)
    if container is not _BUILTINS and list(container) != list(saved):
        _DICT_CLEAR(container)
        _DICT_UPDATE(container, saved)


_BUILTINS = vars(builtins)
_DICT_DELITEM, _DICT_SETITEM = dict.__delitem__, dict.__setitem__
_DICT_CLEAR, _DICT_UPDATE = dict.clear, dict.update


def _restore_class(cls: type, attributes: dict[str, Any]) -> None:
    # Recorded while the journal gated a member: the member before the transaction (a
    # gate of instances' attributes stood where the class had nothing).
    attributes = {
        name: value.old if isinstance(value, MemberGate) else value
        for name, value in attributes.items()
        if not (isinstance(value, MemberGate) and value.old is ABSENT)
        and not isinstance(value, StateGate)
    }
    current = dict(cls.__dict__)
    for name in current.keys() - attributes.keys():
        type.__delattr__(cls, name)
    for name, value in attributes.items():
        if current.get(name, _MISSING) is not value:
            type.__setattr__(cls, name, value)


def _unload(name: str, module: ModuleType) -> None:
    del sys.modules[name]
    parent_name, _, child = name.rpartition(".")
    parent = sys.modules.get(parent_name)
    if parent is not None and getattr(parent, child, None) is module:
        delattr(parent, child)


class CacheRecord:
    """An ``lru_cache`` met while patching, as it was before the function changed.

    A committed reload clears it. A rolled-back one leaves it alone when nothing was added
    meanwhile; an unbounded cache gets back its exact contents; a bounded one (whose
    entries sit in a linked list no Python code can rebuild) is cleared.
    """

    def __init__(self, cache: Any) -> None:
        self.cache = cache
        info = cache.cache_info()
        self._misses, self._size = info.misses, info.currsize
        self._table: dict[Any, Any] | None = None
        self._saved: dict[Any, Any] | None = None
        if info.maxsize is None:
            own = getattr(cache, "__dict__", None)
            tables = [r for r in gc.get_referents(cache) if type(r) is dict and r is not own]
            if len(tables) == 1 and len(tables[0]) == info.currsize:
                self._table, self._saved = tables[0], dict(tables[0])

    def commit(self) -> None:
        """The new code is final: its results are computed afresh."""
        self.cache.cache_clear()

    def rollback(self) -> None:
        """Back to the contents computed by the old code."""
        info = self.cache.cache_info()
        if info.misses == self._misses and info.currsize == self._size:
            return
        self.cache.cache_clear()
        if self._table is not None and self._saved is not None:
            self._table.update(self._saved)
