"""Class statements built as a fresh import builds them, whatever became of the metaclass.

A module may change its metaclass after the classes are made (jinja2's ``nodes.py`` ends
with ``NodeType.__new__ = staticmethod(_failing_new)``, so that no one makes new node
types). A fresh import builds each class with the metaclass as its body defined it; relive
builds a class statement again (a throwaway to merge, or a new class) with a stand-in: a
subclass of the metaclass holding the creation hooks its body defined, swapped for the
real metaclass as soon as the class exists.
"""

from __future__ import annotations
import __future__

import ast
import inspect
import textwrap
import types
from collections.abc import Mapping
from typing import Any

from relive._gate import gated_member

__all__ = ["BUILD_NAME", "MetaclassStandIns", "replaced_init_subclass", "with_stand_in"]

BUILD_NAME = "__relive_build__"  # what a rewritten class statement calls as its metaclass
_GIVEN = "__relive_metaclass__"  # the metaclass the statement names, passed on
_HOOKS = ("__new__", "__init__", "__prepare__")  # what a class statement calls on it
_HEAP_TYPE = 1 << 9


class MetaclassStandIns:
    """For each metaclass met, a stand-in with its body's creation hooks (or None when
    nothing was changed after the body)."""

    def __init__(self) -> None:
        self._stand_ins: dict[int, tuple[type, type | None]] = {}

    def stand_in(self, meta: type) -> type | None:
        """A subclass of ``meta`` creating classes as ``meta``'s body defined it, if a
        later statement replaced one of its creation hooks (of it or a base metaclass)."""
        known = self._stand_ins.get(id(meta))
        if known is not None and known[0] is meta:
            return known[1]
        members: dict[str, Any] = {}
        for owner in reversed(meta.__mro__):
            if owner is not type and owner is not object and owner.__flags__ & _HEAP_TYPE:
                members.update(_body_hooks(owner))
        made: type | None = None
        if members:
            members.update(__module__=meta.__module__, __qualname__=meta.__qualname__)
            made = type(meta)(meta.__name__, (meta,), members)
        self._stand_ins[id(meta)] = (meta, made)
        return made

    def needed(self, meta: type) -> bool:
        """Whether classes of ``meta`` are built with a stand-in."""
        return meta is not type and _replaced(meta) and self.stand_in(meta) is not None

    def affects(self, namespace: Mapping[str, object]) -> bool:
        """Whether a class statement run in ``namespace`` may need a stand-in: one of the
        metaclasses there (or of its classes) had a creation hook replaced."""
        metas: dict[int, type] = {}
        for value in list(namespace.values()):
            if isinstance(value, type):
                metas[id(type(value))] = type(value)
                if issubclass(value, type):
                    metas[id(value)] = value
        return any(self.needed(meta) for meta in metas.values())

    def builder(self) -> Any:
        """What a rewritten class statement calls instead of its metaclass."""
        return _Builder(self)


def replaced_init_subclass(cls: type) -> str | None:
    """Why ``cls`` cannot be built again as a fresh import builds it: a base's
    ``__init_subclass__`` was replaced after that base's body ran (the class statement
    would call the replacement; no stand-in can change what its bases do), or None."""
    for base in cls.__mro__[1:]:
        if base is object or not base.__flags__ & _HEAP_TYPE:
            continue
        held = _function(gated_member(base.__dict__.get("__init_subclass__")))
        if held is None or not _foreign(held, base, "__init_subclass__"):
            continue
        if _body_defs(base, ("__init_subclass__",)) is not None:
            return (
                f"{base.__qualname__}.__init_subclass__ was replaced (by {held.__qualname__}) "
                f"after class {base.__qualname__} was made: {cls.__qualname__} cannot be "
                "built again as a fresh import builds it"
            )
    return None


def _replaced(meta: type) -> bool:
    """Whether a creation hook of ``meta`` (or a base metaclass) is held by a function
    that no ``def`` of that class's body made (cheap: no source is read)."""
    for owner in meta.__mro__:
        if owner is type or owner is object or not owner.__flags__ & _HEAP_TYPE:
            continue
        for name in _HOOKS:
            held = _function(gated_member(owner.__dict__.get(name)))
            if held is not None and _foreign(held, owner, name):
                return True
    return False


def _function(member: object) -> types.FunctionType | None:
    inner = getattr(member, "__func__", member)
    return inner if isinstance(inner, types.FunctionType) else None


def _foreign(function: types.FunctionType, owner: type, name: str) -> bool:
    qualname = function.__qualname__
    return qualname != f"{owner.__qualname__}.{name}" and "<locals>" not in qualname


def _body_hooks(owner: type) -> dict[str, Any]:
    """The creation hooks ``owner``'s body defines with a ``def`` that a later statement
    replaced, as that body makes them (its source as it is now, run again)."""
    if not any(
        (held := _function(owner.__dict__.get(name))) is not None and _foreign(held, owner, name)
        for name in _HOOKS
    ):
        return {}
    fresh = _fresh_class(owner)
    if fresh is None:
        return {}
    hooks: dict[str, Any] = {}
    for name in _HOOKS:
        made = _function(fresh.__dict__.get(name))
        held = _function(owner.__dict__.get(name))
        if made is None or _foreign(made, owner, name):
            continue
        if held is None or _foreign(held, owner, name):  # deleted or replaced since
            _point_class_cells(made, fresh, owner)
            hooks[name] = fresh.__dict__[name]
    return hooks


def _body_defs(owner: type, names: tuple[str, ...]) -> ast.ClassDef | None:
    """``owner``'s class statement as its file is now, with only the ``def`` statements of
    ``names`` in its body and no bases (None if its source cannot be found)."""
    try:
        source = textwrap.dedent(inspect.getsource(owner))
        _, first = inspect.getsourcelines(owner)
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return None
    ast.increment_lineno(tree, first - 1)
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.ClassDef):
        return None
    node = tree.body[0]
    node.bases, node.keywords, node.decorator_list = [], [], []
    node.body = [
        child
        for child in node.body
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and child.name in names
    ]
    return node if node.body else None


def _fresh_class(owner: type) -> type | None:
    """A class holding the creation hooks ``owner``'s body defines, made from its source
    as it is now (only those ``def`` statements run: nothing else of the body)."""
    node = _body_defs(owner, _HOOKS)
    module = inspect.getmodule(owner)
    if node is None or module is None:
        return None
    filename = inspect.getsourcefile(owner) or "<unknown>"
    scratch: dict[str, Any] = {}
    module_code = ast.Module(body=[node], type_ignores=[])
    flags = __future__.annotations.compiler_flag  # the hooks' annotations are not needed
    code = compile(module_code, filename, "exec", flags=flags, dont_inherit=True)
    exec(code, vars(module), scratch)
    fresh = scratch.get(node.name)
    return fresh if isinstance(fresh, type) else None


def _point_class_cells(function: types.FunctionType, fresh: type, owner: type) -> None:
    """Zero-argument ``super()`` in a hook of the throwaway class means the live one."""
    for name, cell in zip(function.__code__.co_freevars, function.__closure__ or (), strict=False):
        if name == "__class__" and cell.cell_contents is fresh:
            cell.cell_contents = owner


class _Builder:
    """Called by a rewritten class statement as its metaclass: finds the metaclass the
    statement would use and builds with its stand-in when it has one."""

    def __init__(self, stand_ins: MetaclassStandIns) -> None:
        self._stand_ins = stand_ins

    def _metaclass(self, bases: tuple[type, ...], given: object) -> Any:
        winner: Any = given
        if isinstance(given, type):
            for base in bases:
                candidate = type(base)
                if issubclass(candidate, winner):
                    winner = candidate
        if not isinstance(winner, type) or winner is type:
            return winner, winner
        stand_in = self._stand_ins.stand_in(winner)
        return winner, stand_in if stand_in is not None else winner

    def __prepare__(self, name: str, bases: tuple[type, ...], **kwargs: Any) -> Any:
        _, meta = self._metaclass(bases, kwargs.pop(_GIVEN, type))
        prepare = getattr(meta, "__prepare__", None)
        return prepare(name, bases, **kwargs) if prepare is not None else {}

    def __call__(self, name: str, bases: tuple[type, ...], namespace: Any, **kwargs: Any) -> Any:
        real, meta = self._metaclass(bases, kwargs.pop(_GIVEN, type))
        made = meta(name, bases, namespace, **kwargs)
        if meta is not real and type(made) is meta:
            made.__class__ = real  # what a fresh import made: an instance of the real one
        return made


def with_stand_in(node: ast.ClassDef) -> ast.ClassDef:
    """``node`` calling :data:`BUILD_NAME` as its metaclass (the one it names passed on)."""
    keywords = [
        ast.keyword(arg=_GIVEN, value=k.value) if k.arg == "metaclass" else k for k in node.keywords
    ]
    keywords.append(ast.keyword(arg="metaclass", value=ast.Name(id=BUILD_NAME, ctx=ast.Load())))
    rewritten = ast.ClassDef(
        name=node.name,
        bases=node.bases,
        keywords=keywords,
        body=node.body,
        decorator_list=node.decorator_list,
        **({"type_params": node.type_params} if hasattr(node, "type_params") else {}),
    )
    return ast.fix_missing_locations(ast.copy_location(rewritten, node))
