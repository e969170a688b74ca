"""Plan → live objects: patch functions in place, with an undo journal.

Object identity is kept: a patched function keeps its object and gets the new code, so
every reference (``from m import f`` copies, registries, bound methods, wrappers) runs the
new code. Every change goes through a :class:`Journal` so a failed reload can be undone.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import sys
import types
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from relive._commit import ClassChanges, one_step
from relive._gate import (
    ABSENT,
    CommitPoint,
    Gate,
    MemberGate,
    gate_code,
    is_runner,
    ungated,
    wait_for_calls,
)
from relive._heap import PROBE_CODE, internal_references, probe_class, redirect_in
from relive._undo import CacheRecord

__all__ = [
    "Journal",
    "closures_reshaped",
    "drop_attributes",
    "find_functions",
    "patch_function",
    "shift_lines",
    "swap_code",
]

_MISSING: Any = object()
_GATE_TIMEOUT = 0.2  # seconds a call through a gate may keep old code running at commit
_STAGED = frozenset({"__code__", "__defaults__", "__kwdefaults__"})  # set at the commit point
_CodeMap = dict[types.CodeType, types.CodeType]
# Code of comprehensions: never held by a live function between calls.
_COMPREHENSIONS = frozenset({"<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"})


@dataclass
class Journal:
    """Every change made to live objects during one reload, so it can be undone.

    It also collects what must follow in the rest of the heap: nested code replaced on
    the way (:meth:`follow_nested`), so that closures made from it before the reload get
    the new code, and throwaway objects whose references go to the live ones
    (:meth:`redirect`). :meth:`settle` does both in one pass over the heap.
    """

    _undo: list[Callable[[], None]] = field(default_factory=list)
    _namespaces: dict[int, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    _nested: _CodeMap = field(default_factory=dict)
    _redirects: dict[int, tuple[object, object]] = field(default_factory=dict)
    _replaced: _CodeMap = field(default_factory=dict)  # functions' code swapped: old -> new
    _finally: list[Callable[[], None]] = field(default_factory=list)
    # Caches met while finding functions (find_functions appends); each is recorded
    # before the first code swap after it was found, cleared on commit.
    caches: list[object] = field(default_factory=list)
    _cache_records: dict[int, CacheRecord] = field(default_factory=dict)
    # Functions whose code and defaults change at the commit point, by id (see _gate).
    _staged: dict[int, Gate] = field(default_factory=dict)
    _removals: dict[int, tuple[dict[str, Any], set[str]]] = field(default_factory=dict)
    _at_commit: list[Callable[[], None]] = field(default_factory=list)
    _point: CommitPoint = field(default_factory=CommitPoint)
    # Class members and enum members' values changed at the commit point (see _commit).
    _classes: ClassChanges = field(default_factory=ClassChanges)
    # Called before the program's own code runs in a module (with the module's name,
    # and the code of the statement about to run, when it is one plain statement).
    before_user_code: Callable[[str, types.CodeType | None], None] | None = None

    def user_code(self, module: str, code: types.CodeType | None = None) -> None:
        """Note that the program's code is about to run in ``module`` (a statement, a
        decorator, a class body); ``code``: the statement's, when that is all that runs."""
        self.flush()
        if self.before_user_code is not None:
            self.before_user_code(module, code)

    def code_of(self, function: types.FunctionType) -> types.CodeType:
        """The code ``function`` has in this transaction (staged or not)."""
        gate = self._staged.get(id(function))
        if gate is None:
            return function.__code__
        code: types.CodeType = gate.new.get("__code__", gate.old)
        return code

    def code_change(
        self, function: types.FunctionType
    ) -> tuple[types.CodeType, types.CodeType] | None:
        """``function``'s code before and in this transaction, if it was given other code."""
        gate = self._staged.get(id(function))
        if gate is None or gate.function is not function:
            return None
        code = gate.new.get("__code__")
        return (gate.old, code) if isinstance(code, types.CodeType) else None

    def staged_codes(self, start: int) -> list[tuple[types.CodeType, types.CodeType]]:
        """The code before and in this transaction of the functions staged after the
        first ``start`` (in the order they were staged)."""
        gates = itertools.islice(self._staged.values(), start, None)
        return [(gate.old, gate.new.get("__code__", gate.old)) for gate in gates]

    def replaced_codes(self) -> list[tuple[types.CodeType, types.CodeType]]:
        """The code objects swapped for others in this transaction, and their new code."""
        return list(self._replaced.items())

    @property
    def staged(self) -> int:
        """How many functions were staged (given other code or defaults)."""
        return len(self._staged)

    @property
    def code_changes(self) -> int:
        """How many functions were given other code or defaults (it only grows)."""
        return len(self._staged) + len(self._replaced)

    def _stage(self, function: types.FunctionType, name: str, value: object) -> None:
        """Change what a function runs at the commit point, not before (see _gate)."""
        gate = self._staged.get(id(function))
        if gate is None:
            gate = self._staged[id(function)] = Gate(function, function.__code__, self._point)
        if name == "__code__" and isinstance(value, types.CodeType):
            value = ungated(value)  # never a gate's code (see ungated)
        gate.new[name] = value
        _open(gate)

    def remove_at_commit(
        self, namespace: dict[str, Any], names: set[str], remove: Callable[[], None]
    ) -> None:
        """Names the transaction removes from ``namespace``: other threads may run old code
        that reads them until the commit point, when ``remove`` deletes them."""
        self._removals.setdefault(id(namespace), (namespace, set()))[1].update(names)
        self._at_commit.append(remove)

    @property
    def has_removals(self) -> bool:
        """Whether names wait for the commit point to be removed."""
        return bool(self._removals)

    def removing(self, namespace: dict[str, Any]) -> set[str]:
        """The names of ``namespace`` removed at the commit point."""
        entry = self._removals.get(id(namespace))
        return entry[1] if entry is not None else set()

    @contextlib.contextmanager
    def hiding(self, names: list[tuple[dict[str, Any], str]]) -> Iterator[None]:
        """Names removed at the commit point, absent while this thread runs a statement
        that reads them (as a fresh import would find them)."""
        held = [(namespace, name, namespace.pop(name)) for namespace, name in names]
        try:
            yield
        finally:
            for namespace, name, value in held:
                namespace.setdefault(name, value)

    def flush(self) -> None:
        """Write the deferred special data of classes where every thread sees it: the
        program's code is about to run again in this transaction, and may read it."""
        if not self._classes.deferred:
            return
        with one_step():  # no other thread sees a class with half of it
            for obj, name, value in self._classes.deferred.take():
                if value is ABSENT:
                    self._delete_now(obj, name)
                else:
                    self._set_now(obj, name, value)

    def _close_gates(self, *, committed: bool) -> None:
        """The commit point (or its undoing, with every other change undone): every staged
        function and class member at once (the deferred data just before), as one step
        for the other threads."""
        with one_step():
            if committed:
                self.flush()
            else:
                self._classes.deferred.take()  # never written: nothing to undo
            self._flip(committed=committed)
            if not committed:
                self._undo_all()
        self._wait_for_calls()

    def _undo_all(self) -> None:
        """Every change undone, newest first, then the remembered namespaces restored."""
        self._removals.clear()
        self._at_commit.clear()
        while self._undo:
            self._undo.pop()()
        for namespace, saved in self._namespaces.values():
            _restore_namespace(namespace, saved)

    def _flip(self, *, committed: bool) -> None:
        gates = list(self._staged.values())
        self._point.close(committed=committed)  # every gate at once
        self._point = CommitPoint()
        self._classes.close(committed=committed)
        for gate in gates:
            function = gate.function
            if gate.signed:
                function.__dict__.pop("__signature__", None)
                _take_back(gate.lent)
            if committed:  # the defaults before the code, so no call mixes the two
                for name in ("__defaults__", "__kwdefaults__"):
                    if name in gate.new:
                        object.__setattr__(function, name, gate.new[name])
            code = gate.new.get("__code__", gate.old) if committed else gate.old
            if function.__code__ is not code:
                function.__code__ = code
        self._staged.clear()

    def _wait_for_calls(self) -> None:
        if self._at_commit:
            wait_for_calls(_GATE_TIMEOUT)

    def _record_caches(self) -> None:
        for cache in self.caches:
            if id(cache) not in self._cache_records:
                self._cache_records[id(cache)] = CacheRecord(cache)

    def remember_namespace(self, namespace: dict[str, Any]) -> None:
        """Take a shallow copy of a namespace the first time it is about to change."""
        if id(namespace) not in self._namespaces:
            self._namespaces[id(namespace)] = (namespace, dict(namespace))

    def namespace_before(self, namespace: dict[str, Any]) -> dict[str, Any]:
        """The namespace as it was before this reload changed it (remembered first)."""
        self.remember_namespace(namespace)
        return self._namespaces[id(namespace)][1]

    def setattr(self, obj: object, name: str, value: object) -> None:
        """Set an attribute, remembering its old value (or its absence)."""
        if name == "__code__" and len(self.caches) != len(self._cache_records):
            self._record_caches()
        if name in _STAGED and isinstance(obj, types.FunctionType):
            self._stage(obj, name, value)
            return
        if isinstance(obj, type) and self._classes.stage(obj, name, value, self._point):
            return
        self._set_now(obj, name, value)

    def set_state(self, obj: object, name: str, value: object) -> None:
        """Change an attribute of ``obj`` (an enum member's ``_value_``) at the commit
        point: until then only the reloading thread sees it (see _gate.StateGate)."""
        if not self._classes.stage_state(obj, name, value, self._point):
            self._set_now(obj, name, value)

    def member(self, cls: type, name: str) -> object:
        """What ``cls`` holds as ``name`` in this transaction (ABSENT: nothing)."""
        return self._classes.member(cls, name)

    def members(self, cls: type) -> dict[str, object]:
        """``cls``'s namespace as this transaction has it (staged changes included)."""
        return self._classes.members(cls)

    def _set_now(self, obj: object, name: str, value: object) -> None:
        setter = type.__setattr__ if isinstance(obj, type) else object.__setattr__
        old = _own_attribute(obj, name)
        setter(obj, name, value)
        self._undo.append(functools.partial(_restore_attribute, obj, name, old))

    def lends_signature(self, function: types.FunctionType) -> bool:
        """Whether ``function``'s ``__signature__`` is its gate's (until the commit point)."""
        gate = self._staged.get(id(function))
        return gate is not None and gate.function is function and gate.signed

    def attributes_may_change(self, function: types.FunctionType) -> None:
        """The program's code is about to set attributes on ``function`` (its decorators
        run again on it): a rollback gives it back the ones it has now."""
        saved = dict(function.__dict__)
        if self.lends_signature(function):
            del saved["__signature__"]
        self._undo.append(functools.partial(_restore_attributes, function, saved))

    def delattr(self, obj: object, name: str) -> None:
        """Delete an attribute, remembering its old value."""
        if isinstance(obj, type) and self.member(obj, name) is ABSENT:
            return
        if isinstance(obj, type) and self._classes.stage(obj, name, ABSENT, self._point):
            return
        self._delete_now(obj, name)

    def _delete_now(self, obj: object, name: str) -> None:
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

    def code_replaced(self, old: types.CodeType, new: types.CodeType) -> None:
        """Record that a function's code ``old`` was swapped for ``new``."""
        self._replaced[old] = new

    def redirect(self, throwaway: object, live: object) -> None:
        """Record that references to ``throwaway`` (a rebuilt class) must go to ``live``.

        Building the throwaway ran decorators and ``__init_subclass__`` hooks, which may have
        registered it in lists, dicts, sets or closures; those get the live object instead.
        """
        self._redirects[id(throwaway)] = (throwaway, live)  # id 0 is the probe's

    def throwaway(self, obj: object) -> bool:
        """Whether ``obj`` was made by a build whose references go to a live object."""
        entry = self._redirects.get(id(obj))
        return entry is not None and entry[0] is obj

    def settle(self) -> None:
        """Patch the rest of the heap: closures follow, throwaway objects are redirected.

        At most one pass over the heap for the whole reload, and none unless a reference
        count shows that something outside may hold old nested code or a throwaway.
        """
        if not (self._nested or self._redirects or self._replaced):
            return
        # Probes sit in the same containers as the real objects: their reference counts
        # are what "held by nothing else" looks like.
        nested_or_thrown = bool(self._nested or self._redirects)
        if nested_or_thrown:
            self.follow_nested(*PROBE_CODE)
            self._redirects[0] = (probe_class(), None)
        if self._replaced:
            swap_code(_probe_function(), _PROBE_SWAPPED, self)
        code = {old: _latest(new, self._nested) for old, new in self._nested.items()}
        throwaways = [throwaway for throwaway, _ in self._redirects.values()]
        objects = {key: live for key, (_, live) in self._redirects.items() if key}
        replaced = {old: _latest(new, self._replaced) for old, new in self._replaced.items()}
        self._nested.clear()
        self._redirects.clear()
        self._replaced.clear()
        undo = self._held_by_undo()
        targets = _held_elsewhere(list(code), throwaways, undo) if nested_or_thrown else []
        # Code objects the program keeps (a decorator recording ``f.__code__`` in a set)
        # follow the swap as references to the functions do.
        held = _held_more(list(replaced), undo)
        targets += held
        objects.update({id(old): replaced[old] for old in held})
        code.update({old: replaced[old] for old in held})
        del throwaways, replaced
        if targets:
            self._follow(targets, code, objects)

    def _held_by_undo(self) -> Counter[int]:
        """How often the undo records refer to each object (by id)."""
        held: Counter[int] = Counter()
        for undo in self._undo:
            if isinstance(undo, functools.partial):
                held.update(id(arg) for arg in undo.args)
        held.update(id(gate.old) for gate in self._staged.values())
        return held

    def _follow(self, targets: list[object], code: _CodeMap, objects: dict[int, object]) -> None:
        self._classes.deferred.redirect(objects)
        for referrer in gc.get_referrers(*targets):
            if referrer is targets:
                continue
            if is_runner(referrer):
                continue
            if isinstance(referrer, types.FunctionType) and self.code_of(referrer) in code:
                swap_code(referrer, code[self.code_of(referrer)], self)
            elif isinstance(referrer, MemberGate) and id(referrer.new) in objects:
                referrer.new = objects[id(referrer.new)]  # the throwaway's member: the live one
            elif objects:
                self._redirect_in(referrer, objects)
        # A dict holding only code objects and strings is not tracked by the collector, so
        # get_referrers misses it: the modules' own dicts are looked at directly.
        for namespace, _ in self._namespaces.values():
            for value in list(namespace.values()):
                if isinstance(value, dict) and not gc.is_tracked(value):
                    self._redirect_in(value, objects)

    def _redirect_in(self, container: object, objects: dict[int, object]) -> None:
        undo = redirect_in(container, objects)
        if undo is not None:
            self._undo.append(undo)

    def on_rollback(self, action: Callable[[], None]) -> None:
        """Register an extra undo action (run in reverse order of registration)."""
        self._undo.append(action)

    def rollback(self) -> None:
        """Undo every change, newest first, then restore the remembered namespaces (one
        step for the other threads, with the gates' undoing)."""
        self._close_gates(committed=False)
        self._namespaces.clear()
        self._nested.clear()
        self._redirects.clear()
        self._replaced.clear()
        self._end_caches(CacheRecord.rollback)
        self._run_finally()

    def commit(self) -> None:
        """Forget the undo information: the changes are final."""
        self._close_gates(committed=True)
        self._removals.clear()
        while self._at_commit:
            self._at_commit.pop(0)()
        self._undo.clear()
        self._namespaces.clear()
        self._nested.clear()
        self._redirects.clear()
        self._replaced.clear()
        self._end_caches(CacheRecord.commit)
        self._run_finally()

    def _end_caches(self, end: Callable[[CacheRecord], None]) -> None:
        self._record_caches()  # found, never swapped: as they are now
        for record in self._cache_records.values():
            end(record)
        self._cache_records.clear()
        self.caches.clear()

    def at_end(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the reload is over, committed or rolled back (clear a cache)."""
        self._finally.append(action)

    def _run_finally(self) -> None:
        while self._finally:
            self._finally.pop(0)()


def _open(gate: Gate) -> None:
    """Give the function its gate as code: new code in the reloading thread only."""
    code = gate.new.get("__code__", gate.old)
    function = gate.function
    if gate.signed or "__signature__" not in function.__dict__:
        signature = gate.signature()
        function.__dict__["__signature__"] = signature
        gate.lent.append(signature)
        gate.signed = True
    function.__code__ = gate_code(gate, code)


def _take_back(lent: list[object]) -> None:
    """Signatures a gate lent its function that were copied into other functions'
    ``__dict__`` (``functools.wraps`` of a gated function) leave them: a fresh import's
    wrapper has none."""
    while lent:
        signature = lent.pop()
        if sys.getrefcount(signature) <= 2:  # this name and the call's argument
            continue
        for holder in gc.get_referrers(signature):
            if type(holder) is dict and holder.get("__signature__") is signature:
                del holder["__signature__"]


_PROBE_SWAPPED = compile("def probe():\n    return 1\n", "<relive>", "exec").co_consts[0]


def _probe_function() -> types.FunctionType:
    """A new function nothing else refers to, nor to its code (the baseline for swaps)."""
    return types.FunctionType(_PROBE_SWAPPED.replace(co_name="probe"), {})


def _held_more(codes: list[types.CodeType], undo: Counter[int]) -> list[types.CodeType]:
    """The replaced code objects held more often than the last one (a probe's)."""
    counts = [sys.getrefcount(code) - undo[id(code)] for code in codes]
    return [code for code, count in zip(codes, counts, strict=True) if count > counts[-1]]


def _held_elsewhere(
    codes: list[types.CodeType], classes: list[object], undo: Counter[int]
) -> list[object]:
    """The nested codes and throwaway classes that something may hold (the last of each
    list is a probe, held only where the others are, and by no undo record)."""
    counts = [sys.getrefcount(code) - undo[id(code)] for code in codes]
    surplus = [sys.getrefcount(cls) - internal_references(cls) - undo[id(cls)] for cls in classes]
    targets: list[object] = [c for c, n in zip(codes, counts, strict=True) if n > counts[-1]]
    targets += [c for c, n in zip(classes, surplus, strict=True) if n > surplus[-1]]
    return targets


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


def _restore_attributes(function: types.FunctionType, saved: dict[str, Any]) -> None:
    attributes = function.__dict__
    for name in [name for name in attributes if name not in saved and name != "__signature__"]:
        del attributes[name]
    attributes.update(saved)


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
    if isinstance(obj, types.FunctionType):
        cells = obj.__closure__ or ()
        yield from _callables(_cell_value(cell) for cell in cells)
    elif not isinstance(obj, (type, types.ModuleType)):
        # A decorator written as a class keeps the function in an attribute.
        try:
            attributes = object.__getattribute__(obj, "__dict__")
        except (AttributeError, TypeError):
            return
        if isinstance(attributes, dict):
            yield from _callables(attributes.values())


def _callables(values: Iterable[object]) -> Iterator[object]:
    return (value for value in values if callable(value) and not isinstance(value, type))


def _cell_value(cell: types.CellType) -> object:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


def swap_code(function: types.FunctionType, code: types.CodeType, journal: Journal) -> bool:
    """Give ``function`` new code; False when the closures do not line up."""
    code = ungated(code)
    current = journal.code_of(function)
    if current.co_freevars != code.co_freevars:
        return False
    if current is not code:
        journal.code_replaced(current, code)
        journal.setattr(function, "__code__", code)
    return True


def patch_function(
    old: types.FunctionType, new: types.FunctionType, journal: Journal, *, whole: bool = False
) -> bool:
    """Make ``old`` behave as ``new``: code, defaults, annotations, doc and dict.

    ``whole``: ``new`` is what a fresh import makes, decorators applied, so ``old``'s
    attributes that ``new`` lacks go too (a removed decorator's ``f.tagged``); otherwise
    ``new`` is the bare function and ``old`` keeps its other attributes.
    Returns False (and changes nothing) when the two capture different variables.
    Functions made at run time from code nested in ``old`` (closures created before the
    edit) get the new nested code as well, when the journal patches closures.
    """
    if new is old:  # a class body run again holds the function itself (``staticmethod(f)``)
        return True
    previous = journal.code_of(old)
    if not swap_code(old, journal.code_of(new), journal):
        return False
    for name in ("__defaults__", "__kwdefaults__", "__annotations__", "__doc__"):
        value = getattr(new, name)
        if getattr(old, name) is not value:
            journal.setattr(old, name, value)
    if whole:
        drop_attributes(old, old.__dict__.keys() - new.__dict__.keys(), journal)
    for name, value in new.__dict__.items():
        if old.__dict__.get(name, _MISSING) is not value:
            journal.setattr(old, name, value)
    journal.follow_nested(previous, journal.code_of(new))
    return True


def drop_attributes(function: types.FunctionType, names: Iterable[str], journal: Journal) -> None:
    """Delete attributes of ``function`` (not the ``__signature__`` its gate lends it)."""
    for name in sorted(names):
        if not (name == "__signature__" and journal.lends_signature(function)):
            journal.delattr(function, name)


def closures_reshaped(old: types.CodeType, new: types.CodeType) -> bool:
    """Whether a closure nested in ``old`` captures other variables in ``new``.

    Closures made from ``old`` before the edit (a decorator's wrappers) cannot take the new
    code then: what made them has to run again.
    """
    return any(a.co_freevars != b.co_freevars for a, b in _paired_nested(old, new))


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
