"""What a top-level statement hands to other code, and the methods it reaches through
receivers: the half of following derived values that names alone do not show.

``T = list(map(f, xs))``, ``sorted(xs, key=f)``, ``reduce(lambda a, b: a + f(b), xs)``:
``f`` is passed, not called, yet ``T`` is computed with it; ``T = COUNTERS[0].val(3)``,
``T = H.C.val(3)``, ``map(Counter().val, xs)``: ``val`` is reached through a receiver that
is no plain name. :func:`handed_values` reads them from the statement's tree (plain
tuples of strings, kept marshalled with its summary); :func:`resolve` finds the receiver
among the live objects without running the program's code, and :func:`holds` tells
whether what the statement bound still holds the function it was handed (``g =
partial(f, 1)``, ``HANDLERS = [on_a]``, ``f = wrapper(f)``: what holds it runs the new
code, so the statement need not run again).
"""

from __future__ import annotations

import ast
import functools
import types
from collections.abc import Iterable
from typing import Any

from relive._derived import outside_functions

__all__ = [
    "MISSING",
    "Handed",
    "bound_names",
    "class_mro",
    "handed_values",
    "holds",
    "member_of",
    "resolve",
]

# (receiver path, member, mode): the path is the root name then ".attr", "()" (a class
# called: its instance), "[i:3" or "[s:key" (a constant subscript); the member is "" for
# the receiver itself. Modes: "call" (called through the receiver), "pass" (handed to a
# call as a value), "lambda" (called in a lambda handed to a call).
Handed = tuple[tuple[str, ...], str, str]
MISSING: Any = object()
_LIMIT = 2000  # objects looked at in what a statement bound
_DEPTH = 4


def handed_values(node: ast.AST, aliases: dict[str, str]) -> frozenset[Handed]:
    """What statement ``node`` hands to calls as values, and the methods it calls through
    receivers that are no plain name (function bodies left out)."""
    found: set[Handed] = set()
    for current in outside_functions(node):
        if not isinstance(current, ast.Call):
            continue
        func = current.func
        if isinstance(func, ast.Attribute):
            path = _path(func.value)
            if path is not None and _reached(path, aliases):
                found.add((path, func.attr, "call"))
        for argument in [*current.args, *(keyword.value for keyword in current.keywords)]:
            found |= _passed(argument, "pass")
            if isinstance(argument, ast.Lambda):
                for inner in ast.walk(argument.body):
                    if isinstance(inner, ast.Call):
                        found |= _passed(inner.func, "lambda")
    return frozenset(found)


def bound_names(node: ast.AST) -> frozenset[str]:
    """The names an assignment binds (``T = ...``, ``A, B = ...``, ``T: int = ...``)."""
    targets: list[ast.AST] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    names: set[str] = set()
    for target in targets:
        names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return frozenset(names)


def _reached(path: tuple[str, ...], aliases: dict[str, str]) -> bool:
    """A receiver the names a statement uses do not show: one with a subscript or a call
    on the way, or attributes of something other than an imported module."""
    if any(step[0] in "([" for step in path[1:]):
        return True
    return len(path) > 1 and path[0] not in aliases


def _passed(node: ast.AST, mode: str) -> set[Handed]:
    if isinstance(node, ast.Name):
        return {((node.id,), "", mode)}
    if isinstance(node, ast.Attribute):
        path = _path(node.value)
        if path is not None:
            return {(path, node.attr, mode)}
    return set()


def _path(node: ast.AST) -> tuple[str, ...] | None:
    """``a.b[0]().c`` as ``("a", ".b", "[i:0", "()", ".c")``; None for anything else."""
    steps: list[str] = []
    while True:
        if isinstance(node, ast.Name):
            return (node.id, *reversed(steps))
        if isinstance(node, ast.Attribute):
            steps.append(f".{node.attr}")
            node = node.value
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
            if type(key) is int:
                steps.append(f"[i:{key}")
            elif type(key) is str:
                steps.append(f"[s:{key}")
            else:
                return None
            node = node.value
        elif isinstance(node, ast.Call) and not node.args and not node.keywords:
            steps.append("()")
            node = node.func
        else:
            return None


class Instance:
    """An instance of ``cls`` a receiver makes (``Counter().val``), never made here."""

    def __init__(self, cls: type) -> None:
        self.cls = cls


def resolve(namespace: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The live object ``path`` names in ``namespace``, found without running the
    program's code (no properties, no ``__getattr__``, no ``__getitem__`` of its own
    classes): MISSING when it cannot be."""
    value = namespace.get(path[0], MISSING)
    for step in path[1:]:
        if value is MISSING:
            return MISSING
        if step == "()":
            value = Instance(value) if issubclass(type(value), type) else MISSING
        elif step[0] == ".":
            value = _attribute(value, step[1:])
        else:
            value = _item(value, int(step[3:]) if step[1] == "i" else step[3:])
    return value


def member_of(receiver: Any, name: str) -> tuple[type | None, Any]:
    """What ``receiver.name`` looks up: the class whose member it is (None for a module's
    name or the receiver itself), and the value (MISSING if unknown)."""
    if not name:
        return None, receiver
    if isinstance(receiver, Instance):
        return receiver.cls, MISSING
    if isinstance(receiver, types.ModuleType):
        return None, receiver.__dict__.get(name, MISSING)
    if issubclass(type(receiver), type):
        return receiver, MISSING
    return type(receiver), MISSING


def _attribute(value: Any, name: str) -> Any:
    if isinstance(value, Instance):
        return MISSING
    if isinstance(value, types.ModuleType):
        return value.__dict__.get(name, MISSING)
    if not issubclass(type(value), type):
        own = _own_dict(value)
        if own is not None and name in own:
            return own[name]
    cls = value if issubclass(type(value), type) else type(value)
    for klass in class_mro(cls):
        found = klass.__dict__.get(name, MISSING)
        if found is not MISSING:
            # A descriptor would run code of its own (a property, a method binding).
            return MISSING if hasattr(type(found), "__get__") else found
    return MISSING


def _own_dict(value: object) -> dict[str, Any] | None:
    try:
        own = object.__getattribute__(value, "__dict__")
    except (AttributeError, TypeError):
        return None
    return own if type(own) is dict else None


def _item(value: Any, key: int | str) -> Any:
    if type(value) in (list, tuple) and type(key) is int:
        return value[key] if -len(value) <= key < len(value) else MISSING
    if type(value) is dict:
        return value.get(key, MISSING)
    return MISSING


def class_mro(cls: type) -> tuple[type, ...]:
    """``cls``'s method resolution order, read without running its metaclass's code."""
    try:
        mro = type.__getattribute__(cls, "__mro__")
    except AttributeError:
        return (cls,)
    return mro if isinstance(mro, tuple) else (cls,)


def holds(values: Iterable[object], targets: set[int], *, lambdas: bool = False) -> bool:
    """Whether ``values`` (what a statement bound) hold one of ``targets`` (by id) in
    containers, partials, bound methods, closures or instances' attributes, or (with
    ``lambdas``) a lambda: what holds them runs their new code."""
    stack = [(value, 0) for value in values]
    seen: set[int] = set()
    while stack and len(seen) < _LIMIT:
        current, depth = stack.pop()
        if id(current) in targets:
            return True
        if id(current) in seen or depth > _DEPTH:
            continue
        seen.add(id(current))
        kind = type(current)
        if lambdas and isinstance(current, types.FunctionType) and current.__name__ == "<lambda>":
            return True
        stack.extend((inner, depth + 1) for inner in _inside(current, kind))
    return False


_PLAIN = frozenset({int, float, complex, str, bytes, bool, type(None), range})


def _inside(value: Any, kind: type) -> Iterable[object]:
    if kind in _PLAIN or kind is types.ModuleType or issubclass(kind, type):
        return ()
    if kind in (list, tuple, set, frozenset):
        return list(value)
    if kind is dict:
        return [*value.keys(), *value.values()]
    if kind is functools.partial:
        return [value.func, *value.args, *value.keywords.values()]
    if kind is types.MethodType:
        return [value.__func__, value.__self__]
    if kind in (staticmethod, classmethod):
        return [value.__func__]
    if kind is types.FunctionType:
        cells = []
        for cell in value.__closure__ or ():
            try:
                cells.append(cell.cell_contents)
            except ValueError:
                continue
        return [*cells, *value.__dict__.values()]
    own = _own_dict(value)
    return list(own.values()) if own is not None else ()
