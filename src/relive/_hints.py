"""Hints after an applied edit: what the edit cannot do to the objects that already exist.

A patched ``__init__`` runs for new instances only: when it now sets an attribute that
instances made before the edit lack, the next use of it on them fails. One line per class
says so, with the way out (``__relive_migrate__``), before that failure can happen.
"""

from __future__ import annotations

import dis
import gc
import sys
import types
from typing import TYPE_CHECKING

from relive._output import Note, relative

if TYPE_CHECKING:
    from relive._engine import ModuleReport, Report

__all__ = ["instance_hints"]

_MIGRATE = "__relive_migrate__"


def instance_hints(report: Report) -> list[Note]:
    """For each class the edit patched whose ``__init__`` sets attributes that existing
    instances lack (and that has no ``__relive_migrate__``): one line saying so."""
    notes: list[Note] = []
    for module in report.modules:
        for cls in _patched_classes(module):
            note = _hint(module.path, cls)
            if note is not None:
                notes.append(note)
    return notes


def _patched_classes(module: ModuleReport) -> list[type]:
    namespace = vars(sys.modules[module.name]) if module.name in sys.modules else {}
    found = []
    for name in module.patched:
        obj = namespace.get(name)
        if isinstance(obj, type) and not callable(getattr(obj, _MIGRATE, None)):
            found.append(obj)
    return found


def _hint(path: str, cls: type) -> Note | None:
    init = cls.__dict__.get("__init__")
    if not isinstance(init, types.FunctionType):
        return None
    wanted = [name for name in _attributes_set(init.__code__) if not hasattr(cls, name)]
    if not wanted:
        return None
    lacking = [
        obj
        for obj in gc.get_referrers(cls)
        if type(obj) is cls and isinstance(getattr(obj, "__dict__", None), dict)
        if any(name not in obj.__dict__ for name in wanted)
    ]
    if not lacking:
        return None
    missing = [name for name in wanted if any(name not in obj.__dict__ for obj in lacking)]
    count = len(lacking)
    names = ", ".join(f"'{name}'" for name in missing)
    them = "it" if len(missing) == 1 else "them"
    instances = f"{count} existing instance{'s' if count != 1 else ''}"
    verb = "does" if count == 1 else "do"
    return Note(
        f"{relative(path)}: {cls.__qualname__}.__init__ now sets {names}; {instances} {verb}"
        f" not have {them} (add {_MIGRATE} to upgrade them)",
        level="warn",
    )


def _attributes_set(code: types.CodeType) -> list[str]:
    """The names ``self.NAME = ...`` assigns in a method's code, in order."""
    if not code.co_varnames or code.co_argcount == 0:
        return []
    me = code.co_varnames[0]
    names: list[str] = []
    previous: dis.Instruction | None = None
    for instruction in dis.get_instructions(code):
        stores = instruction.opname == "STORE_ATTR" and instruction.argval not in names
        if stores and previous is not None and _loads(previous, me):
            names.append(instruction.argval)
        previous = instruction
    return names


def _loads(instruction: dis.Instruction, name: str) -> bool:
    """Whether ``instruction`` leaves local ``name`` on top of the stack."""
    if not instruction.opname.startswith("LOAD_FAST"):
        return False
    value = instruction.argval
    return value == name or (isinstance(value, tuple) and value[-1] == name)
