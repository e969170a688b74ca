"""The rest of the heap: objects a reload must reach without knowing where they are.

Closures made before an edit hold old nested code; registries filled by a rebuilt class's
decorators hold the throwaway class. Both are found with one ``gc.get_referrers`` pass,
which walks the whole heap, so reference counts decide first whether anything can need it.
Other threads may be in the middle of old code that reads a name the edit removes: the
removal waits a moment for them (:func:`wait_for_readers`).
"""

from __future__ import annotations

import functools
import gc
import sys
import threading
import time
import types
from collections.abc import Callable, Collection
from typing import Any

__all__ = [
    "PROBE_CODE",
    "internal_references",
    "probe_class",
    "redirect_in",
    "thread_frames",
    "wait_for_readers",
]

Undo = Callable[[], None]
_MISSING: Any = object()
_MAX_VISITS = 20_000  # references looked at in one class's structure
_READERS_TIMEOUT = 0.25  # seconds a removal waits for other threads to leave old code

# Two versions of a function with nested code, no function ever made from the nested
# code: the reference count of a nested code object that only its parent holds.
PROBE_CODE: tuple[types.CodeType, ...] = tuple(
    compile(f"def probe():\n    def nested():\n        return {n}\n", "<relive>", "exec").co_consts[
        0
    ]
    for n in (1, 2)
)
_PROBE_CLASS = compile(
    "class Probe:\n"
    "    attr = 1\n"
    "    def method(self):\n"
    "        return super().method()\n"
    "    @property\n"
    "    def prop(self):\n"
    "        return __class__\n",
    "<relive>",
    "exec",
)


def probe_class() -> type:
    """A new class that nothing outside refers to: the baseline for rebuilt classes."""
    namespace: dict[str, Any] = {}
    exec(_PROBE_CLASS, namespace)
    cls: type = namespace.pop("Probe")
    return cls


def internal_references(cls: object) -> int:
    """How many references to ``cls`` come from what makes it up.

    Its namespace, MRO, members, their closures and instances held in its namespace
    (enum members) refer to it; other classes, modules and module namespaces are not
    followed. A reference count above this (and the baseline) means something else holds
    the class. Stops early on very large structures (then the count is low: a pass runs).
    """
    count = 0
    seen = {id(cls)}
    stack: list[object] = [cls]
    budget = _MAX_VISITS
    while stack:
        current = stack.pop()
        for referent in gc.get_referents(current):
            budget -= 1
            if budget < 0:
                return count
            if referent is cls:
                count += current is not cls
            elif id(referent) not in seen and not _foreign(referent):
                seen.add(id(referent))
                stack.append(referent)
    return count


def _foreign(obj: object) -> bool:
    """Objects that do not belong to one class: other classes, modules, global namespaces."""
    if isinstance(obj, (type, types.ModuleType, types.CodeType, str, bytes, int, float)):
        return True
    return isinstance(obj, dict) and "__builtins__" in obj and "__name__" in obj


def wait_for_readers(filename: str, names: Collection[str]) -> None:
    """Wait (briefly) until no other thread runs code of ``filename`` that reads ``names``.

    A call that started before its function was patched finishes with the old code; if
    that code reads a name the edit removes, removing it under its feet would raise an
    error no version of the program raises. Code that stays longer (a loop that never
    returns) gets the edit as it is.
    """
    if not names:
        return
    deadline = time.monotonic() + _READERS_TIMEOUT
    while _readers(filename, frozenset(names)) and time.monotonic() < deadline:
        time.sleep(0.0005)


def thread_frames(*, this_thread: bool = False) -> list[types.FrameType]:
    """The innermost frame of every other thread (and of this one, ``this_thread``: the
    caller's caller's, so that no frame holds itself in a local).

    A frame kept in one of its own locals is a reference cycle: it and every frame it was
    called from (with all their locals: a reload's plan, its compiled code) stay alive
    until the next full collection.
    """
    me = threading.get_ident()
    frames = [frame for thread, frame in sys._current_frames().items() if thread != me]
    if this_thread:
        frames.append(sys._getframe(2))
    return frames


def _readers(filename: str, names: frozenset[str]) -> bool:
    for frame in thread_frames():
        walker: types.FrameType | None = frame
        while walker is not None:
            code = walker.f_code
            if code.co_filename == filename and not names.isdisjoint(code.co_names):
                return True
            walker = walker.f_back
    return False


# ---------------------------------------------------------------------------------------
# Redirecting references held in containers


def redirect_in(container: object, objects: dict[int, object]) -> Undo | None:
    """Replace throwaway objects (keyed by id) held by ``container`` with their live ones.

    Lists, dicts (keys and values), sets and closure cells are handled; a list that
    already holds the live object loses the throwaway instead (registered once, not twice).
    Returns how to undo it, or None when nothing changed.
    """
    if isinstance(container, types.CellType):
        return _redirect_cell(container, objects)
    if isinstance(container, list):
        return _redirect_list(container, objects)
    if isinstance(container, dict):
        owner = _owner_class(container)
        if owner is not None:
            return _redirect_class_namespace(owner, container, objects)
        return _redirect_dict(container, objects)
    if isinstance(container, set):
        return _redirect_set(container, objects)
    return None


def _redirect_cell(cell: types.CellType, objects: dict[int, object]) -> Undo | None:
    try:
        old = cell.cell_contents
    except ValueError:
        return None
    live = objects.get(id(old), _MISSING)
    if live is _MISSING:
        return None
    cell.cell_contents = live
    return functools.partial(setattr, cell, "cell_contents", old)


def _redirect_list(items: list[Any], objects: dict[int, object]) -> Undo | None:
    saved = list(items)
    kept: list[Any] = []
    for item in saved:
        live = objects.get(id(item), _MISSING)
        if live is _MISSING:
            kept.append(item)
        elif not any(other is live for other in saved):
            kept.append(live)
    if len(kept) == len(saved) and all(a is b for a, b in zip(kept, saved, strict=True)):
        return None
    items[:] = kept
    return functools.partial(items.__setitem__, slice(None), saved)


def _redirect_dict(mapping: dict[Any, Any], objects: dict[int, object]) -> Undo | None:
    saved = dict(mapping)
    for key, value in saved.items():
        live_value = objects.get(id(value), _MISSING)
        if live_value is not _MISSING:
            mapping[key] = live_value
        live_key = objects.get(id(key), _MISSING)
        if live_key is not _MISSING:
            mapping.setdefault(live_key, mapping.pop(key))
    if mapping.keys() == saved.keys() and all(mapping[k] is v for k, v in saved.items()):
        return None
    return functools.partial(_restore_mapping, mapping, saved)


def _restore_mapping(mapping: dict[Any, Any], saved: dict[Any, Any]) -> None:
    mapping.clear()
    mapping.update(saved)


def _owner_class(mapping: dict[Any, Any]) -> type | None:
    """The class whose namespace ``mapping`` is, if it is one."""
    namespace_of = type.__dict__["__dict__"].__get__
    for referrer in gc.get_referrers(mapping):
        if isinstance(referrer, type) and namespace_of(referrer) == mapping:
            return referrer
    return None


def _redirect_class_namespace(
    owner: type, namespace: dict[str, Any], objects: dict[int, object]
) -> Undo | None:
    """Through ``setattr``, so that the class's attribute caches follow."""
    undo: list[Undo] = []
    for name, value in list(namespace.items()):
        live = objects.get(id(value), _MISSING)
        if live is not _MISSING:
            type.__setattr__(owner, name, live)
            undo.append(functools.partial(type.__setattr__, owner, name, value))
    return functools.partial(_run_all, undo) if undo else None


def _run_all(actions: list[Undo]) -> None:
    for action in reversed(actions):
        action()


def _redirect_set(items: set[Any], objects: dict[int, object]) -> Undo | None:
    found = [item for item in items if id(item) in objects]
    if not found:
        return None
    # Removed first: a set finds by equality, and the live object may equal the one it
    # replaces (code objects that differ only in their line table compare equal).
    items.difference_update(found)
    added = [live for live in (objects[id(item)] for item in found) if live not in items]
    items.update(added)
    return functools.partial(_swap_back, items, found, added)


def _swap_back(items: set[Any], originals: list[Any], replacements: list[Any]) -> None:
    items.difference_update(replacements)
    items.update(originals)
