"""Which tracked modules a statement's code can reach, when that is sure.

Before a statement runs again, :class:`~relive._undo.SideEffects` records the mutable
state of the modules it could change (a rollback puts it back). The modules a module
imports, transitively, are always enough, but recording them costs as much as the
project. :func:`reached_modules` follows what the statement's code names instead: the
functions it may call (their code's names, in their globals), the classes (their
members), the modules (the names read, looked up in each; those an import inside a
function names, too), and what
containers, defaults and closures hold. Anything it cannot follow
for sure (a function or object of a module not tracked, a builtin that may run other code
or reach any module) makes it answer None: the caller
records the whole import closure then, as before.
"""

from __future__ import annotations

import builtins
import dis
import functools
import importlib.util
import inspect
import sys
import types
from collections.abc import Callable
from typing import Any

__all__ = ["reached_modules"]

_LIMIT = 5000  # objects looked at before giving up (the caller records the closure then)

# Builtins that run no code but the objects' own (reached anyway) and reach no module.
_SAFE_BUILTINS = frozenset(
    {
        "abs", "all", "any", "ascii", "bin", "bool", "bytearray", "bytes", "callable", "chr",
        "complex", "dict", "divmod", "enumerate", "filter", "float", "format", "frozenset",
        "hash", "hex", "id", "int", "isinstance", "issubclass", "iter", "len", "list", "map",
        "max", "min", "next", "object", "oct", "ord", "pow", "range", "repr", "reversed",
        "round", "set", "slice", "sorted", "str", "sum", "super", "tuple", "type", "zip",
        "property", "classmethod", "staticmethod", "None", "True", "False", "Ellipsis",
        "NotImplemented",
    }
)  # fmt: skip
# Dunder names read safely; any other (``__dict__`` of a module, ``__subclasses__``,
# ``__globals__``) and the frames' attributes reach past what the walk follows.
_DUNDER_OK = frozenset(
    {
        "__init__", "__new__", "__name__", "__qualname__", "__doc__", "__class__", "__call__",
        "__init_subclass__", "__set_name__", "__eq__", "__hash__", "__repr__", "__str__",
        "__len__", "__iter__", "__next__", "__getitem__", "__setitem__", "__contains__",
        "__enter__", "__exit__", "__annotations__",
    }
)  # fmt: skip
_FRAMES = frozenset({"f_globals", "f_locals", "f_back", "f_builtins", "tb_frame", "gi_frame",
                     "cr_frame", "ag_frame", "f_code"})  # fmt: skip
_SCALARS = frozenset(
    {int, float, complex, str, bytes, bool, type(None), range, type(Ellipsis), type(NotImplemented)}
)
_EMPTY = inspect.Parameter.empty
_IMPORT_NAME = dis.opmap["IMPORT_NAME"]


class _Unsure(Exception):
    """Something the walk cannot follow for sure."""


def reached_modules(
    code: types.CodeType,
    namespace: dict[str, Any],
    tracked: Callable[[str], bool],
    code_of: Callable[[types.FunctionType], types.CodeType],
) -> tuple[set[str], list[object]] | None:
    """The tracked modules whose state running ``code`` in ``namespace`` can change (its
    own included) and the lists, dicts and sets it can reach beside theirs (held by a
    default, a closure, an object), or None when that is not sure.

    Args:
        tracked: Whether a module (by name) is tracked.
        code_of: The code a function runs in this transaction (staged code included).
    """
    walk = _Walk(tracked, code_of)
    try:
        walk.module(namespace)
        walk.code(code, namespace)
        walk.run()
    except _Unsure:
        return None
    return walk.modules, walk.containers


class _Walk:
    def __init__(
        self,
        tracked: Callable[[str], bool],
        code_of: Callable[[types.FunctionType], types.CodeType],
    ) -> None:
        self.tracked = tracked
        self.code_of = code_of
        self.modules: set[str] = set()
        self.seen: set[int] = set()
        self.todo: list[object] = []
        self.containers: list[object] = []  # the lists, dicts and sets met
        self.spaces: dict[int, dict[str, Any]] = {}  # the namespaces of the modules reached
        self.names: set[str] = set()  # every name the code walked reads

    def run(self) -> None:
        while self.todo:
            value = self.todo.pop()
            if id(value) in self.seen:
                continue
            self.seen.add(id(value))
            if len(self.seen) > _LIMIT:
                raise _Unsure
            self.value(value)

    def module(self, namespace: dict[str, Any]) -> None:
        """A module reached: every name the code walked reads is looked up in it too (an
        attribute of the module, or a global of its functions)."""
        name = namespace.get("__name__")
        if not isinstance(name, str) or not self.tracked(name):
            raise _Unsure
        self.modules.add(name)
        if id(namespace) not in self.spaces:
            self.spaces[id(namespace)] = namespace
            self.todo.extend(namespace[name] for name in self.names & namespace.keys())

    def code(self, code: types.CodeType, namespace: dict[str, Any]) -> None:
        if _IMPORT_NAME in code.co_code[::2]:  # an import (3.11+: two bytes a unit)
            self.imports(code, namespace)
        for name in code.co_names:
            if name in _FRAMES or (
                name.startswith("__") and name.endswith("__") and name not in _DUNDER_OK
            ):
                raise _Unsure
            if name not in namespace and hasattr(builtins, name) and not _safe_builtin(name):
                raise _Unsure
            if name not in self.names:
                self.names.add(name)
                self.todo.extend(space[name] for space in self.spaces.values() if name in space)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                self.code(const, namespace)

    def imports(self, code: types.CodeType, namespace: dict[str, Any]) -> None:
        """What an import inside the code reaches: the modules it names, whole (one not
        imported yet is recorded when the import runs it)."""
        level: object = None
        for instruction in dis.get_instructions(code):
            if instruction.opname == "LOAD_CONST" and type(instruction.argval) is int:
                level = instruction.argval
            if instruction.opname != "IMPORT_NAME":
                continue
            if type(level) is not int:
                raise _Unsure
            try:
                name = importlib.util.resolve_name(
                    "." * level + instruction.argval, namespace.get("__package__")
                )
            except (ImportError, ValueError, TypeError) as exc:
                raise _Unsure from exc
            parts = name.split(".")
            for end in range(1, len(parts) + 1):  # the packages above it are bound, too
                module = sys.modules.get(".".join(parts[:end]))
                if module is not None:
                    self.todo.append(module)
            level = None

    def value(self, value: Any) -> None:  # noqa: C901 (one case per kind of object)
        kind = type(value)
        if kind in _SCALARS or value is _EMPTY or (kind is type and value.__module__ == "builtins"):
            return
        if kind is types.FunctionType:
            self.function(value)
        elif isinstance(value, type):
            self.cls(value)
        elif kind is types.ModuleType:
            self.module(vars(value))
        elif kind in (tuple, frozenset):
            self.todo.extend(value)
        elif kind in (list, set):
            self.containers.append(value)
            self.todo.extend(value)
        elif kind is dict:
            self.containers.append(value)
            self.todo.extend(value.keys())
            self.todo.extend(value.values())
        elif kind in (staticmethod, classmethod):
            self.todo.append(value.__func__)
        elif kind is property:
            self.todo.extend((value.fget, value.fset, value.fdel))
        elif kind is functools.partial:
            self.todo.extend((value.func, value.args, value.keywords))
        elif kind is types.BuiltinFunctionType and getattr(value, "__self__", None) is builtins:
            if value.__name__ not in _SAFE_BUILTINS:
                raise _Unsure
        elif kind is inspect.Signature:  # pinned on a function given other code
            for parameter in value.parameters.values():
                self.todo.extend((parameter.default, parameter.annotation))
            self.todo.append(value.return_annotation)
        elif kind in (types.GetSetDescriptorType, types.MemberDescriptorType):
            return
        elif self.tracked(getattr(kind, "__module__", "")):
            self.cls(kind)  # an instance of a tracked class: its class and attributes
            self.todo.append(getattr(value, "__dict__", {}))
            if hasattr(kind, "__slots__"):
                raise _Unsure
        else:
            raise _Unsure

    def function(self, function: types.FunctionType) -> None:
        self.module(function.__globals__)
        self.code(function.__code__, function.__globals__)
        self.code(self.code_of(function), function.__globals__)
        for cell in function.__closure__ or ():
            try:
                self.todo.append(cell.cell_contents)
            except ValueError:  # an empty cell
                continue
        self.todo.extend((function.__defaults__, function.__kwdefaults__, function.__dict__))

    def cls(self, cls: type) -> None:
        for base in (*cls.__mro__, type(cls)):
            if base.__module__ == "builtins":
                continue
            if not self.tracked(base.__module__):
                raise _Unsure
            if id(base) not in self.seen or base is cls:
                self.seen.add(id(base))
                self.modules.add(base.__module__)
                self.todo.extend(vars(base).values())


def _safe_builtin(name: str) -> bool:
    """A builtin that runs only the code of what it is given (reached anyway)."""
    value = getattr(builtins, name)
    return name in _SAFE_BUILTINS or (isinstance(value, type) and issubclass(value, BaseException))
