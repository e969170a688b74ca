"""Which object each top-level definition made: the k-th ``def _`` is the k-th statement's.

A name may be defined more than once (``@fmt.register`` + ``def _``, a fallback that a
later ``try: from ._speedups import f`` shadows, ``f = wrapper(f)``): what the name holds
now is then another statement's object. Each definition statement is known by its first
line in the module's current source, and the object it bound is recorded when relive runs
it; for statements that ran at import, the object is found from the namespace as it was
before the edit (a function carries its first line) or, failing that, in the heap.
Definitions an edit removes go to the module's graveyard: one that comes back under the
same name is the object it was, patched (old instances stay instances of their class).
"""

from __future__ import annotations

import gc
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from relive._diff import Step
from relive._gate import is_runner
from relive._patch import Journal, find_functions
from relive._statements import Statement
from relive._tracker import Definitions

__all__ = ["MISSING", "DefinitionTable", "made_functions", "statement_lines"]

MISSING: Any = object()


class DefinitionTable:
    """One visit of a module by a reload: what each old definition made, what the new ones
    make, and the graveyard, staged into the module's record at the end (:meth:`stage`).

    Args:
        definitions: The module's record.
        before: The module's namespace before the reload.
        filename: The module's file, as its code objects name it.
        module: The module's name.
    """

    def __init__(
        self, definitions: Definitions, before: Mapping[str, object], filename: str, module: str
    ) -> None:
        old_made, graveyard = definitions.current()
        self._definitions = definitions
        self._old_made = dict(old_made)
        self.made: dict[int, object] = {}  # by the first line of the new statements
        self._graveyard = {key: list(objects) for key, objects in graveyard.items()}
        self._before = before
        self.heap = HeapIndex(filename, module)  # the file's functions and classes
        self._old: Sequence[Statement] = ()
        self._binders: dict[str, list[Statement]] | None = None
        self._steps: Sequence[Step] = ()
        self._last_binding: dict[str, int] | None = None
        self._claimed: set[tuple[str, str | None]] | None = None

    def start(
        self, steps: Sequence[Step], old: Sequence[Statement], *, edited: bool = True
    ) -> list[Statement]:
        """Take the plan's steps and the old statements; returns the old statements no new
        statement continues (the objects of definitions among them are buried in the
        graveyard)."""
        self._old, self._steps = old, steps
        if not edited:  # an importer run again: every statement continues, at its lines
            return []
        matched = {id(step.old) for step in steps if step.old is not None}
        dropped = [s for s in old if id(s) not in matched]
        # A name bound more than once: what each statement made is looked for now, before
        # any statement runs (new objects of the same name at the same lines would be
        # mistaken for it).
        for binding in self._binding().values():
            if len(binding) > 1:
                for statement in binding:
                    if statement.name is not None:
                        self.made_by(statement)
        for statement in dropped:
            if statement.name is None:
                continue
            value = self.made_by(statement)
            if value is not MISSING:
                self._graveyard.setdefault((statement.kind, statement.name or ""), []).append(value)
        return dropped

    def made_by(self, old: Statement) -> object:
        """The object the old definition statement bound (MISSING: gone, or not known)."""
        if old.lineno in self._old_made:
            return self._old_made[old.lineno]
        value = resolve_made(old, self._before, self._binding(), self.heap)
        self._old_made[old.lineno] = value
        return value

    def _binding(self) -> dict[str, list[Statement]]:
        """The old statements binding each name."""
        if self._binders is None:
            self._binders = {}
            for statement in self._old:
                for bound in statement.binds:
                    self._binders.setdefault(bound, []).append(statement)
        return self._binders

    def before(self, name: str) -> object:
        """What ``name`` held before the reload (MISSING: nothing)."""
        return self._before.get(name, MISSING)

    def carry_all(self) -> None:
        """Every definition keeps what it made (a module whose lines did not move, of
        which only some statements are visited)."""
        self.made.update(self._old_made)

    def carry(self, step: Step) -> None:
        """An unchanged definition keeps what it made, at its new line."""
        if step.old is not None and step.old.lineno in self._old_made:
            self.made[step.new.lineno] = self._old_made[step.old.lineno]

    def record(self, statement: Statement, value: object) -> None:
        """What a definition statement bound now. A ``def`` whose decorator returned
        something that does not lead to its function (``typing.overload``'s dummy) is not
        recorded: its function is found by its first line when asked for."""
        self.unbury(value)
        if statement.kind == "def" and not made_functions(value, statement, self.heap.filename):
            self.made.pop(statement.lineno, None)
            return
        self.made[statement.lineno] = value

    def bound_later(self, statement: Statement, name: str) -> bool:
        """Whether a later statement of the new source binds ``name`` too."""
        if self._last_binding is None:
            self._last_binding = {}
            for step in self._steps:
                for bound in step.new.binds:
                    self._last_binding[bound] = step.new.lineno
        return self._last_binding.get(name, 0) > statement.lineno

    def adoptable(
        self, statement: Statement, live: object, fits: Callable[[object], bool]
    ) -> object:
        """An object for a new definition: one of its name in the graveyard, else the name's
        live value when no old definition of the name continues (it was defined in another
        kind of statement); MISSING if none ``fits``."""
        buried = self._graveyard.get((statement.kind, statement.name or ""), [])
        for index, obj in enumerate(buried):
            if fits(obj):
                return buried.pop(index)
        if self._claimed is None:
            self._claimed = {(s.old.kind, s.old.name) for s in self._steps if s.old is not None}
        if (statement.kind, statement.name) not in self._claimed and fits(live):
            return live
        return MISSING

    def unbury(self, value: object) -> None:
        for objects in self._graveyard.values():
            for index, obj in enumerate(objects):
                if obj is value:
                    del objects[index]
                    return

    def stage(self, journal: Journal) -> None:
        """Make what this visit recorded the module's record when the reload commits; a
        rolled-back reload leaves the record as it was."""
        graveyard = {key: objects for key, objects in self._graveyard.items() if objects}
        if self._definitions.stage(self.made, graveyard):
            journal.on_rollback(self._definitions.unstage)
            journal.at_end(self._definitions.commit)


class HeapIndex:
    """The functions and classes of one source file alive in the heap (one pass, on demand)."""

    def __init__(self, filename: str, module: str) -> None:
        self.filename = filename
        self.module = module
        self._index: dict[str, list[object]] | None = None

    def named(self, qualname: str, *, collect: bool = False) -> list[object]:
        """The objects of ``qualname``; ``collect``: garbage collected first (a throwaway
        of an earlier build, in a reference cycle, is no definition's object)."""
        if collect:
            self._index = None  # it holds what it found
            gc.collect()
        if self._index is None:
            self._index = {}
            for obj in gc.get_objects():
                key = self._key(obj)
                if key is not None:
                    self._index.setdefault(key, []).append(obj)
        return self._index.get(qualname, [])

    def _key(self, obj: object) -> str | None:
        if isinstance(obj, types.FunctionType):
            code = obj.__code__
            if code.co_filename != self.filename or is_runner(obj):
                return None
            if obj.__globals__.get("__name__") != self.module:
                return None  # the same file run as another module (a fresh import of it)
            return code.co_qualname
        if isinstance(obj, type) and obj.__dict__.get("__module__") == self.module:
            return obj.__qualname__
        return None


def statement_lines(statement: Statement) -> range:
    """The lines a top-level statement spans."""
    return range(statement.lineno, statement.lineno + statement.text.count("\n") + 1)


def made_functions(
    value: object, statement: Statement, filename: str, caches: list[object] | None = None
) -> list[types.FunctionType]:
    """The functions ``statement`` (a ``def``) defined, found behind ``value``."""
    name = statement.name or ""
    found = find_functions(value, name, filename, caches=caches)
    return [f for f in found if f.__code__.co_firstlineno == statement.lineno]


def resolve_made(
    statement: Statement,
    before: Mapping[str, object],
    binders: Mapping[str, list[Statement]],
    heap: HeapIndex,
) -> object:
    """What a definition statement that ran before relive recorded anything bound.

    Args:
        statement: The ``def`` or ``class`` statement, in the module's current source.
        before: The module's namespace before this reload.
        binders: For each name, the current source's statements binding it, in order.
        heap: Where to look when the namespace no longer holds it.
    """
    name = statement.name or ""
    value = before.get(name, MISSING)
    if statement.kind == "def":
        if made_functions(value, statement, heap.filename):
            return value
        found = [
            obj
            for obj in heap.named(name)
            if isinstance(obj, types.FunctionType)
            and obj.__code__.co_firstlineno == statement.lineno
        ]
        return found[0] if len(found) == 1 else MISSING
    last = binders.get(name, [])[-1:] == [statement]
    if last and _own_class(value, name, heap.module):
        return value
    classes = [obj for obj in heap.named(name) if isinstance(obj, type)]
    inside = [cls for cls in classes if _defined_within(cls, statement, heap.filename)]
    if len(inside) == 1:
        return inside[0]
    return classes[0] if len(classes) == 1 and not _has_functions(classes[0]) else MISSING


def _own_class(value: object, name: str, module: str) -> bool:
    return isinstance(value, type) and value.__qualname__ == name and value.__module__ == module


def _class_functions(cls: type) -> list[types.FunctionType]:
    found: list[types.FunctionType] = []
    for member in vars(cls).values():
        inner = getattr(member, "__func__", member)
        if isinstance(member, property):
            inner = member.fget
        if isinstance(inner, types.FunctionType):
            found.append(inner)
    return found


def _has_functions(cls: type) -> bool:
    return bool(_class_functions(cls))


def _defined_within(cls: type, statement: Statement, filename: str) -> bool:
    lines = statement_lines(statement)
    functions = [f for f in _class_functions(cls) if f.__code__.co_filename == filename]
    return bool(functions) and all(f.__code__.co_firstlineno in lines for f in functions)
