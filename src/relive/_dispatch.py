"""The caches ``functools.singledispatch`` keeps beside its registry, across a transaction.

A dispatcher remembers which implementation each class got (``dispatch_cache``, and a
``singledispatchmethod``'s bound methods since 3.13) in weak dictionaries that no list,
dict or set record sees. A rolled-back edit puts them back exactly as they were (with the
registry, which :class:`~relive._undo.SideEffects` restores); a committed one clears those
of every dispatcher whose registry changed, so no class keeps an implementation that a
fresh import would not pick.
"""

from __future__ import annotations

import functools
import types
import weakref
from collections.abc import Iterable
from typing import Any

__all__ = ["DispatchCaches", "dispatch_caches"]

_Saved = tuple[weakref.WeakKeyDictionary[Any, Any], dict[Any, Any]]  # a cache, as it was


def _dispatcher(value: object) -> types.FunctionType | None:
    """The ``singledispatch`` function behind ``value`` (itself, or a method's)."""
    if isinstance(value, functools.singledispatchmethod):
        value = value.dispatcher
    # (``getattr``: reading ``__dict__`` would make one for every function looked at)
    if type(value) is types.FunctionType and all(
        getattr(value, name, None) is not None for name in ("registry", "dispatch")
    ):
        return value
    return None


def dispatch_caches(value: object) -> list[weakref.WeakKeyDictionary[Any, Any]]:
    """The weak caches of a ``singledispatch`` function or ``singledispatchmethod``."""
    caches: list[weakref.WeakKeyDictionary[Any, Any]] = []
    dispatcher = _dispatcher(value)
    if dispatcher is None:
        return caches
    clear = dispatcher.__dict__.get("_clear_cache")
    owner = getattr(clear, "__self__", None)
    if isinstance(owner, weakref.WeakKeyDictionary):
        caches.append(owner)
    if isinstance(value, functools.singledispatchmethod):
        methods = value.__dict__.get("_method_cache")
        if isinstance(methods, weakref.WeakKeyDictionary):
            caches.append(methods)
    return caches


class DispatchCaches:
    """The dispatch caches of the dispatchers met, as they were when first met."""

    def __init__(self) -> None:
        # id of the dispatcher -> its registry (a mapping proxy) as it was, and its caches
        self._dispatchers: dict[int, tuple[Any, dict[Any, Any], list[_Saved]]] = {}

    def record(self, values: Iterable[object]) -> None:
        """Record the caches of the dispatchers among ``values``."""
        for value in values:
            dispatcher = _dispatcher(value)
            if dispatcher is None:
                continue
            registry = dispatcher.__dict__["registry"]
            entry = self._dispatchers.setdefault(id(dispatcher), (registry, dict(registry), []))
            known = {id(cache) for cache, _ in entry[2]}
            for cache in dispatch_caches(value):
                if id(cache) not in known:
                    entry[2].append((cache, dict(_data(cache))))

    def restore(self) -> None:
        """Put every cache recorded back as it was (its registry was put back too)."""
        for _, _, caches in self._dispatchers.values():
            for cache, saved in caches:
                data = _data(cache)
                if len(data) != len(saved) or any(
                    data.get(key) is not value for key, value in saved.items()
                ):
                    data.clear()
                    data.update(saved)

    def commit(self) -> None:
        """Clear the caches of the dispatchers whose registry changed."""
        for registry, saved, caches in self._dispatchers.values():
            if len(registry) != len(saved) or any(
                registry.get(key) is not value for key, value in saved.items()
            ):
                for cache, _ in caches:
                    cache.clear()


def _data(cache: weakref.WeakKeyDictionary[Any, Any]) -> dict[Any, Any]:
    """The dictionary behind a weak one: weak references of the keys -> values."""
    data: dict[Any, Any] = vars(cache)["data"]
    return data
