"""Whether what a statement uses is stale after one transaction's edits, judged on the live
objects across modules: a fresh import computes ``D = f(10)`` with ``f`` as it is now.

A function is stale when its code changed in this transaction, or its code reads (through
its own module's globals, another module's attributes, the classes it uses and their
methods) a name rebound or a function that is stale. A class read whole (``len(E)``,
``C.K``, ``C()``) is stale when one of its members was rebound (added, removed, another
value); a method called on a class or an instance (``Maker().build()``, ``obj.make()``)
when that method is. Instances made from a class whose methods were patched keep their
state: calling the class is not calling its methods.
"""

from __future__ import annotations

import dis
import functools
import re
import sys
import types
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from relive._derived import code_names
from relive._gate import gated_member
from relive._handed import MISSING, Handed, class_mro, holds, member_of, resolve
from relive._patch import Journal
from relive._tracker import function_bodies

__all__ = ["Staleness", "identifiers"]

Key = tuple[str, str]
_LRU = type(functools.lru_cache(lambda: None))
_MISSING: Any = object()
_DEPTH = 4  # wrappers unwrapped (a decorator's closure, a cache, a partial)


class Staleness:
    """What one transaction changed (code swapped, names rebound), and what depends on it.

    Args:
        journal: The transaction's journal (which functions were given other code).
        tracked: Whether a module, by name, is one relive follows (others are not read).
    """

    def __init__(self, journal: Journal, tracked: Callable[[str], bool]) -> None:
        self.journal = journal
        self.tracked = tracked
        self._rebound: dict[str, list[set[str]]] = {}  # by module: the sets its runs rebind
        self._memo: dict[int, tuple[object, bool]] = {}
        self._state: tuple[int, int] = (-1, -1)
        # The sets still growing (their run is not over), and how many names the others
        # hold: what has changed is known without counting every module's names again.
        self._open: list[set[str]] = []
        self._closed = 0
        # Statements run again for what they use (module, line): the code changes then.
        self._ran: dict[tuple[str, int], tuple[int, int]] = {}
        self._pending: list[tuple[str, int]] = []  # run again, their module's run going on
        self._differing = (0, 0)  # functions staged counted, of them given other code

    def share(self, module: str, rebound: set[str]) -> None:
        """``rebound``: the names a run of ``module`` rebinds (read as it grows)."""
        sets = self._rebound.setdefault(module, [])
        if not any(known is rebound for known in sets):
            sets.append(rebound)
            self._open.append(rebound)

    def close(self, rebound: set[str]) -> None:
        """The run that rebinds ``rebound`` (shared before) is over: it grows no more."""
        if self._pending:
            code = self.code_state()
            self._ran.update(dict.fromkeys(self._pending, code))
            self._pending.clear()
        for index, known in enumerate(self._open):
            if known is rebound:
                del self._open[index]
                self._closed += len(rebound)
                return

    def unshare(self, module: str, rebound: set[str]) -> None:
        """Stop reading ``rebound`` for ``module`` (what was judged with it is forgotten)."""
        sets = self._rebound.get(module, [])
        self._rebound[module] = [known for known in sets if known is not rebound]
        self._open = [known for known in self._open if known is not rebound]
        self._state = (-1, -1)

    def rebinds(self, module: str, names: Iterable[str]) -> bool:
        """Whether ``module`` rebound one of ``names`` in this transaction."""
        sets = self._rebound.get(module, ())
        return any(name in known for known in sets for name in names)

    def class_rebound(self, cls: type) -> bool:
        """Whether a member of ``cls`` (a class of a followed module) was rebound."""
        module = cls.__dict__.get("__module__")
        sets = self._rebound.get(module) if isinstance(module, str) else None
        if not sets:
            return False
        prefix = type.__getattribute__(cls, "__qualname__") + "."
        return any(name.startswith(prefix) for known in sets for name in known)

    def ran(self, statement: tuple[str, int]) -> None:
        """``statement`` (module, line) was run again with the code as it is now: what
        changed when its module's run is over (its functions defined below it) counts as
        known then."""
        self._ran.pop(statement, None)
        self._pending.append(statement)

    def ran_since_change(self, statement: tuple[str, int]) -> bool:
        """Whether ``statement`` was run again in this transaction and no code changed
        since its module's run was over: what it made is what a fresh import makes (its
        members rebound by that run do not make it stale again; an import cycle would run
        it without end). Functions given the code they had (a class run again in another
        module, its methods patched with their own code) are no change."""
        known = self._ran.get(statement)
        return known is not None and known == self.code_state()

    def code_state(self) -> tuple[int, int]:
        """How many functions were given other code (not only moved lines), and how many
        code objects replaced by other code, in this transaction."""
        counted, differing = self._differing
        staged = self.journal.staged
        if staged != counted:
            changes = self.journal.staged_codes(counted)
            differing += sum(1 for old, new in changes if code_differs(old, new))
            self._differing = (staged, differing)
        replaced = self.journal.replaced_codes()
        return differing, sum(1 for old, new in replaced if code_differs(old, new))

    def anything(self) -> bool:
        """Whether code changed or a name was rebound in this transaction at all."""
        if self.journal.code_changes:
            return True
        return any(known for sets in self._rebound.values() for known in sets)

    def stale(self, value: object) -> bool:
        """Whether calling ``value`` (a function, a cache, a partial, a method) runs code
        that changed or reads something that did."""
        self._refresh()
        return self._stale(value, set())

    def member_stale(self, cls: type, name: str) -> bool:
        """Whether ``cls.name`` (looked up on the class, not called) runs stale code."""
        self._refresh()
        return self._member_stale(cls, name, set())

    def uses_stale(
        self,
        namespace: dict[str, Any],
        uses: Iterable[Key],
        calls: frozenset[Key],
        *,
        binds: bool = True,
        only_called: frozenset[Key] = frozenset(),
        handed: frozenset[Handed] = frozenset(),
        results: Callable[[], Iterable[object]] = tuple,
    ) -> bool:
        """Whether a top-level statement of ``namespace`` reading ``uses`` and calling
        ``calls`` (``(".", m)`` for a method ``m`` called on something) computed its value
        with code or classes that changed since.

        ``binds``: the statement binds what it computes (``X = obj.make()``). Methods called
        on an instance the program holds count only then: ``for c in counters: c.tick()``
        or ``server.serve()`` act on state, which a second run would act on again.
        ``only_called``: what the statement only calls (``p = Plugin()``): a class there
        is judged by the code its construction runs, not by its other members.
        ``handed``: what it hands to calls and reaches through receivers (see _handed);
        ``results``: what it bound (a function handed on that they hold runs its new
        code: ``g = partial(f, 1)`` need not run again)."""
        self._refresh()
        if binds and handed and self._handed_stale(namespace, handed, results):
            return True
        methods = [name for module, name in calls if module == "."]
        for module, name in uses:
            if module:
                container = self._resolve(module)
                if issubclass(type(container), type):  # ``C.K``, ``C.create()``: a member
                    if self._member_read(container, name):
                        return True
                    continue
                if container is None:
                    continue
                value = container.__dict__.get(name, _MISSING)
            else:
                value = namespace.get(name, _MISSING)
            if value is _MISSING or issubclass(type(value), types.ModuleType):
                continue
            key = (module, name)
            called = key in calls
            if self._value_stale(value, called, methods, binds=binds, only=key in only_called):
                return True
        return False

    def _handed_stale(
        self,
        namespace: dict[str, Any],
        handed: frozenset[Handed],
        results: Callable[[], Iterable[object]],
    ) -> bool:
        """A function or method a statement handed to a call (``map(f, xs)``,
        ``sorted(xs, key=K.rank)``), or called through a receiver (``COUNTERS[0].val()``),
        that runs stale code; one handed on counts only if what it bound does not hold it."""
        for path, member, mode in sorted(handed):
            receiver = resolve(namespace, path)
            if receiver is MISSING:
                continue
            owner, value = member_of(receiver, member)
            if owner is not None:
                if not self._member_stale(owner, member, set()):
                    continue
                value = _lookup(owner, member)
            elif value is MISSING or not self._stale(value, set()):
                continue
            if mode == "call":
                return True
            targets = {id(value), *(id(function) for function in self._functions(value))}
            if not holds(results(), targets, lambdas=mode == "lambda"):
                return True
        return False

    def _value_stale(
        self, value: object, called: bool, methods: list[str], *, binds: bool, only: bool
    ) -> bool:
        """A value a statement reads: a class read whole, constructed (``only`` called) or
        its methods called, a function called, an instance whose methods are called."""
        if issubclass(type(value), type):
            if only and not _generated(value):  # type: ignore[arg-type]
                whole = self.construction_stale(value)  # type: ignore[arg-type]
            else:
                whole = self.class_rebound(value)  # type: ignore[arg-type]
            return whole or self._methods_stale(value, methods)  # type: ignore[arg-type]
        if called and self._stale(value, set()):
            return True
        return binds and bool(methods) and self._methods_stale(type(value), methods)

    def construction_stale(self, cls: type) -> bool:
        """Whether calling class ``cls`` makes another instance than before: a member its
        construction runs or reads was rebound (added, removed, another value) along the
        MRO: ``__new__``, ``__init__``, ``__post_init__``, the metaclass's ``__call__``,
        what their code reads (``self.DEFAULT``). Code changed in place does not count (a
        patched ``__init__`` runs for new instances only; ``__relive_migrate__`` upgrades
        the kept ones), nor do its other members: an instance's class is patched in place."""
        self._refresh()
        if not self._follows(cls):
            return False
        names = {*_CONSTRUCTION, "__call__"}
        runs: list[types.FunctionType] = []
        call = _lookup(type(cls), "__call__")
        if call is not _MISSING and call is not type.__dict__["__call__"]:
            if not self._follows(_definer(type(cls), "__call__")):
                return self.class_rebound(cls)  # another library's metaclass (an Enum's)
            runs.extend(_python_functions(call))
        for name in _CONSTRUCTION:
            runs.extend(_python_functions(_lookup(cls, name)))
        for function in runs:
            names |= code_names(self.journal.code_of(function))
        return any(
            self.rebinds(klass.__dict__["__module__"], [f"{_qualname(klass)}.{n}" for n in names])
            for klass in (*class_mro(cls), *class_mro(type(cls)))
            if self._follows(klass)
        )

    def _resolve(self, dotted: str) -> Any:
        """The followed module, or a class in one, that ``dotted`` names (None if none)."""
        parts = dotted.split(".")
        for index in range(len(parts), 0, -1):
            found = sys.modules.get(".".join(parts[:index]))
            if found is None:
                continue
            if not self.tracked(found.__name__):
                return None
            current: Any = found
            for part in parts[index:]:
                current = current.__dict__.get(part)
                if not issubclass(type(current), type):
                    return None
            return current
        return None

    def _member_read(self, cls: type, name: str) -> bool:
        module = cls.__dict__.get("__module__")
        if not isinstance(module, str) or not self.tracked(module):
            return False
        qualname = type.__getattribute__(cls, "__qualname__")
        return self.rebinds(module, [f"{qualname}.{name}"]) or self._member_stale(cls, name, set())

    def stale_members(self, cls: type) -> set[str]:
        """The members of class ``cls`` (not special ones) whose code is stale."""
        if not self._follows(cls):
            return set()
        return {
            member
            for member, item in list(cls.__dict__.items())
            if not (member.startswith("__") and member.endswith("__")) and self.stale(item)
        }

    def stale_named(
        self, namespace: dict[str, Any], source: str, *, top_level: bool = False
    ) -> set[str]:
        """The names ``source`` uses (outside function bodies and imports, if
        ``top_level``) of the functions, caches and classes in ``namespace`` that run stale
        code; for a class, the names of its stale members it uses too (``obj.make()``)."""
        return self.stale_among(namespace, _identifiers(source, top_level=top_level))

    @property
    def state(self) -> tuple[int, int]:
        """Grows with what changed: answers given in one state hold in it."""
        self._refresh()
        return self._state

    def stale_among(
        self, namespace: dict[str, Any], words: frozenset[str], *, classes: bool = False
    ) -> set[str]:
        """The names among ``words`` of the functions, caches and classes in ``namespace``
        that run stale code; for a class, the names among ``words`` of its stale members
        (and the class's name then, or if ``classes`` whenever a member is stale: its
        subclasses and instances elsewhere run it)."""
        found: set[str] = set()
        for name in words & namespace.keys():
            value = namespace[name]
            kind = type(value)
            if issubclass(kind, type):
                stale = self.stale_members(value) if classes else set()
                members = {
                    member
                    for member in words & value.__dict__.keys()
                    if not member.startswith("__") and self._member_stale(value, member, set())
                }
                if members or stale or self.class_rebound(value):
                    found |= members | {name}
            elif kind in _CALLABLES and self.stale(value):
                found.add(name)
        return found

    # -- the walk -------------------------------------------------------------------------

    def _refresh(self) -> None:
        rebound = self._closed + sum(len(known) for known in self._open)
        state = (self.journal.code_changes, rebound)
        if state != self._state:
            self._memo.clear()
            self._state = state

    def _methods_stale(self, cls: type, methods: list[str]) -> bool:
        return any(self._member_stale(cls, name, set()) for name in methods)

    def _member_stale(self, cls: type, name: str, seen: set[int]) -> bool:
        for klass in class_mro(cls):
            module = klass.__dict__.get("__module__")
            if not isinstance(module, str) or not self.tracked(module):
                continue
            member = klass.__dict__.get(name, _MISSING)
            if member is not _MISSING:
                return self._stale(member, seen)
        return False

    def _stale(self, value: object, seen: set[int]) -> bool:
        key = id(value)
        known = self._memo.get(key)
        if known is not None and known[0] is value:
            return known[1]
        if key in seen:
            return False  # a cycle: decided by the others on it
        seen.add(key)
        result = any(self._function_stale(function, seen) for function in self._functions(value))
        self._memo[key] = (value, result)
        return result

    def _functions(self, value: object) -> Iterator[types.FunctionType]:
        """The functions of followed modules behind ``value`` (unwrapping decorators)."""
        stack = [(value, 0)]
        while stack:
            current, depth = stack.pop()
            kind = type(current)
            if depth > _DEPTH:
                continue
            inner: list[object] = []
            if kind is types.FunctionType:
                module = current.__globals__.get("__name__")  # type: ignore[attr-defined]
                if isinstance(module, str) and self.tracked(module):
                    yield current  # type: ignore[misc]
                wrapped = getattr(current, "__wrapped__", None)  # (no ``__dict__`` made)
                inner = [wrapped] if wrapped is not None else []
            elif kind in (staticmethod, classmethod, types.MethodType):
                inner = [current.__func__]  # type: ignore[attr-defined]
            elif kind is _LRU:
                inner = [current.__wrapped__]  # type: ignore[attr-defined]
            elif kind is functools.partial:
                inner = [current.func]  # type: ignore[attr-defined]
            elif kind is property:
                inner = [current.fget, current.fset, current.fdel]  # type: ignore[attr-defined]
            elif kind is functools.cached_property:
                inner = [current.func]  # type: ignore[attr-defined]
            stack.extend((item, depth + 1) for item in inner if item is not None)

    def _function_stale(self, function: types.FunctionType, seen: set[int]) -> bool:
        """Whether ``function``'s code changed, reads a name rebound, or calls (or reads as
        a property) what is stale. A function it only refers to (``add_step(transform)``,
        ``{"/": index}``) is patched in place: what holds it runs the new code."""
        change = self.journal.code_change(function)
        if change is not None and code_differs(*change):
            return True
        code = self.journal.code_of(function)
        reads = Reads(code_names(code), code_calls(code))
        scope = function.__globals__
        module = scope.get("__name__")
        if isinstance(module, str) and self.rebinds(module, reads.names):
            return True
        owner = _owner(function, scope)
        if owner is not None and self._class_reads(owner, reads, seen, whole=False):
            return True  # ``self.K``, ``self.helper()``: members of its own class
        for name in reads.names:
            target = scope.get(name, _MISSING)
            if target is _MISSING:
                continue
            kind = type(target)
            if issubclass(kind, types.ModuleType):
                if self._module_reads(target, reads, seen):
                    return True
            elif issubclass(kind, type):
                if self._class_reads(target, reads, seen):
                    return True
            elif name in reads.calls and self._stale(target, seen):
                return True
        return False

    def _module_reads(
        self, module: types.ModuleType, reads: Reads, seen: set[int], depth: int = 0
    ) -> bool:
        """``m.K``, ``m.f()``, ``pkg.m.K`` in the code: a name of a followed module ``m``
        rebound, or stale and called."""
        name = module.__dict__.get("__name__")
        followed = isinstance(name, str) and self.tracked(name)
        if followed and self.rebinds(name, reads.names):  # type: ignore[arg-type]
            return True
        space = module.__dict__
        for attr in reads.names:
            value = space.get(attr, _MISSING)
            if value is _MISSING:
                continue
            if issubclass(type(value), types.ModuleType):
                if depth < _DEPTH and self._module_reads(value, reads, seen, depth + 1):
                    return True
            elif not followed:
                continue
            elif issubclass(type(value), type):
                if self._class_reads(value, reads, seen):
                    return True
            elif attr in reads.calls and self._stale(value, seen):
                return True
        return False

    def _class_reads(self, cls: type, reads: Reads, seen: set[int], *, whole: bool = True) -> bool:
        """Code reading class ``cls``: stale if a member was rebound (one it names, unless
        it reads the class ``whole``: ``len(E)``), or a member it calls (``cls.build()``,
        ``Maker().build()``) or reads as a property is stale."""
        module = cls.__dict__.get("__module__")
        if not isinstance(module, str) or not self.tracked(module):
            return False
        if whole and self.class_rebound(cls):
            return True
        if not whole:
            qualname = type.__getattribute__(cls, "__qualname__")
            if self.rebinds(module, [f"{qualname}.{name}" for name in reads.names]):
                return True
        running = [name for name in reads.names if not name.startswith("__")]
        running = [name for name in running if name in reads.calls or _is_property(cls, name)]
        if not whole and "super" in reads.names:  # ``super().who()``: the bases' ``who`` too
            return any(
                self._stale(klass.__dict__[name], seen)
                for klass in class_mro(cls)
                if self._follows(klass)
                for name in running
                if name in klass.__dict__
            )
        return any(self._member_stale(cls, name, seen) for name in running)

    def _follows(self, cls: type) -> bool:
        """Whether ``cls`` is a class of a followed module."""
        module = cls.__dict__.get("__module__")
        return isinstance(module, str) and self.tracked(module)


@dataclass(frozen=True)
class Reads:
    """The global names a function's code reads, and those it calls."""

    names: frozenset[str]
    calls: frozenset[str]


_LOAD_GLOBAL = dis.opmap["LOAD_GLOBAL"]
_LOAD_ATTR = dis.opmap["LOAD_ATTR"]
_LOAD_METHOD = dis.opmap.get("LOAD_METHOD", -1)  # 3.11
_LOAD_SUPER_ATTR = dis.opmap.get("LOAD_SUPER_ATTR", -1)  # 3.12+
_EXTENDED_ARG = dis.opmap["EXTENDED_ARG"]
_CACHE = dis.opmap.get("CACHE", 0)
_PUSH_NULL = dis.opmap["PUSH_NULL"]
_METHOD_BIT = sys.version_info >= (3, 12)  # LOAD_ATTR's low bit: a method load
_CALLS: weakref.WeakKeyDictionary[types.CodeType, frozenset[str]] = weakref.WeakKeyDictionary()


def code_calls(code: types.CodeType) -> frozenset[str]:
    """The names ``code`` (and the code nested in it) loads to call them: globals pushed
    with a NULL for the call (``f(...)``; ``m.f(...)`` of an imported module ``m``, whose
    attributes after it are counted too) and methods (``obj.f(...)``, ``super().f(...)``).
    Kept per code object, weakly (the code's life is the program's)."""
    known = _CALLS.get(code)
    if known is not None:
        return known
    names, raw, called = code.co_names, code.co_code, set()
    # After ``NULL + m`` (3.11, 3.12), ``m.f`` is what is called; on 3.13 a ``PUSH_NULL``
    # right after ``m.f`` says so.
    extended, chain, attribute = 0, False, ""
    for index in range(0, len(raw), 2):
        op, arg = raw[index], raw[index + 1] | extended
        extended = arg << 8 if op == _EXTENDED_ARG else 0
        if op in (_CACHE, _EXTENDED_ARG):
            continue
        if op == _PUSH_NULL and attribute:
            called.add(attribute)
        attribute = ""
        if op == _LOAD_GLOBAL:
            chain = bool(arg & 1)
            if chain:
                called.add(names[arg >> 1])
        elif op == _LOAD_ATTR:
            attribute = names[arg >> 1] if _METHOD_BIT else names[arg]
            if chain or (_METHOD_BIT and arg & 1):
                called.add(attribute)
        elif op == _LOAD_METHOD:
            called.add(names[arg])
        elif op == _LOAD_SUPER_ATTR and arg & 1:
            called.add(names[arg >> 2])
        else:
            chain = False
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            called |= code_calls(const)
    found = frozenset(called)
    _CALLS[code] = found
    return found


_CONSTRUCTION = ("__new__", "__init__", "__post_init__")


def _lookup(cls: type, name: str) -> Any:
    """``name`` as the first class along ``cls``'s MRO defines it (``_MISSING`` if none)."""
    for klass in class_mro(cls):
        member = klass.__dict__.get(name, _MISSING)
        if member is not _MISSING:
            return gated_member(member)  # a member the transaction replaces: the new one
    return _MISSING


def _definer(cls: type, name: str) -> type:
    for klass in class_mro(cls):
        if name in klass.__dict__:
            return klass
    return cls


def _python_functions(value: object) -> list[types.FunctionType]:
    """The Python function behind a constructor member (a staticmethod ``__new__``)."""
    for _ in range(_DEPTH):
        if type(value) in (staticmethod, classmethod, types.MethodType):
            value = value.__func__  # type: ignore[attr-defined]
    return [value] if type(value) is types.FunctionType else []


def _qualname(cls: type) -> str:
    return type.__getattribute__(cls, "__qualname__")  # type: ignore[no-any-return]


def _generated(cls: type) -> bool:
    """Whether ``cls``'s constructor is made from its members (a dataclass, an attrs
    class, a named tuple): calling it reads them all."""
    return any(
        "__dataclass_fields__" in klass.__dict__
        or "__attrs_attrs__" in klass.__dict__
        or "_fields" in klass.__dict__
        for klass in class_mro(cls)
    )


def _is_property(cls: type, name: str) -> bool:
    for klass in class_mro(cls):
        member = klass.__dict__.get(name, _MISSING)
        if member is not _MISSING:
            return type(gated_member(member)) in (property, functools.cached_property)
    return False


def code_differs(old: types.CodeType, new: types.CodeType) -> bool:
    """Whether ``new`` runs other code than ``old`` (lines moved alone are no change).

    Functions and lambdas nested in it are compared by name only: the closures made from
    them before follow the new code. Comprehensions and generator expressions run inside
    it: compared whole."""
    if (old.co_code, old.co_names, old.co_varnames) != (new.co_code, new.co_names, new.co_varnames):
        return True
    if len(old.co_consts) != len(new.co_consts):
        return True
    for before, after in zip(old.co_consts, new.co_consts, strict=True):
        if isinstance(before, types.CodeType) and isinstance(after, types.CodeType):
            if _runs_inside(before) and _runs_inside(after):
                if code_differs(before, after):
                    return True
            elif before.co_qualname != after.co_qualname:
                return True
        elif type(before) is not type(after) or before != after:
            return True
    return False


def _runs_inside(code: types.CodeType) -> bool:
    return code.co_name.startswith("<") and code.co_name != "<lambda>"


def _owner(function: types.FunctionType, scope: dict[str, Any]) -> type | None:
    """The class a method was defined in (by its qualified name), if it is at hand."""
    parts = function.__qualname__.split(".")
    if len(parts) < 2 or "<locals>" in parts:
        return None
    current: object = scope.get(parts[0], _MISSING)
    for part in parts[1:-1]:
        if not issubclass(type(current), type):
            return None
        current = current.__dict__.get(part, _MISSING)
    return current if issubclass(type(current), type) else None  # type: ignore[return-value]


_CALLABLES = (types.FunctionType, _LRU, functools.partial)


_WORD = re.compile(r"[^\W\d]\w*")
_IMPORT_LINE = re.compile(r"^[ \t]*(?:from|import)[ \t].*$", re.MULTILINE)
_IDENTIFIERS: dict[tuple[int, bool], tuple[str, frozenset[str]]] = {}


def identifiers(source: str, *, top_level: bool = False) -> frozenset[str]:
    """The identifiers in ``source`` (outside function bodies and import lines, if
    ``top_level``), kept per text while the text is."""
    return _identifiers(source, top_level=top_level)


def _identifiers(source: str, *, top_level: bool) -> frozenset[str]:
    """The identifiers in ``source`` (outside function bodies and import lines, if
    ``top_level``)."""
    key = (id(source), top_level)
    known = _IDENTIFIERS.get(key)
    if known is not None and known[0] is source:
        return known[1]
    text = source
    if top_level:
        spans = function_bodies(source)
        starts = [0, *(end for _, end in spans)]
        ends = [*(start for start, _ in spans), len(source)]
        text = "\n".join(source[start:end] for start, end in zip(starts, ends, strict=True))
        text = _IMPORT_LINE.sub("", text)  # what an import binds is not a use
    words = frozenset(_WORD.findall(text))
    if len(_IDENTIFIERS) > 4096:  # the sources of a large project, kept between edits
        _IDENTIFIERS.clear()
    _IDENTIFIERS[key] = (source, words)
    return words
