"""One commit point for function code: new code runs in the reloading thread only.

A function patched during a transaction gets a gate as its code until the commit point:
the thread applying the reload (whose statements must see the edit) runs the new code,
every other thread the old one. At the commit point all gated functions switch at once
to their new code; rolled back, to their old one. No other thread runs a rejected edit.
Class members (:class:`MemberGate`) and instances' attributes (:class:`StateGate`) are
gated the same way; _commit says which.
"""

from __future__ import annotations

import inspect
import threading
import time
import types
import warnings
from typing import Any

from relive._heap import thread_frames

__all__ = [
    "ABSENT",
    "CommitPoint",
    "Gate",
    "MemberGate",
    "StateGate",
    "gate_code",
    "gated_member",
    "is_runner",
    "ungated",
    "wait_for_calls",
]

_SENTINEL = "__relive_gate__"
_GATE_NAME = "__relive_args"  # a parameter of every gate's code, and of no other code
_RUNNER = "__relive_runner__"
_TEMPLATES: dict[tuple[int, tuple[str, ...]], types.CodeType] = {}


class CommitPoint:
    """Shared by every gate of one transaction: one store flips them all at once."""

    def __init__(self) -> None:
        self.owner = threading.get_ident()  # the reloading thread
        self.closed = False  # passed: every thread runs the final code
        self.committed = False

    def close(self, *, committed: bool) -> None:
        """Calls still coming through a gate (a thread read the gate as its function's
        code just before) run the final code: the new one if committed."""
        self.committed = committed
        self.closed = True


class Gate:
    """Calls ``function`` with its new code in the owner thread, its old code elsewhere."""

    def __init__(
        self, function: types.FunctionType, old: types.CodeType, point: CommitPoint
    ) -> None:
        self.function = function
        self.old = old
        self.point = point
        self.new: dict[str, Any] = {}  # __code__, __defaults__, __kwdefaults__ as staged
        self.defaults = function.__defaults__
        self.kwdefaults = function.__kwdefaults__
        self._runners: dict[tuple[int, int, int], types.FunctionType] = {}
        self.signed = False  # whether the gate set the function's __signature__
        self.lent: list[object] = []  # the signatures it set (``functools.wraps`` copies them)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        point = self.point
        if threading.get_ident() == point.owner or (point.closed and point.committed):
            view = (
                self.new.get("__code__", self.old),
                self.new.get("__defaults__", self.defaults),
                self.new.get("__kwdefaults__", self.kwdefaults),
            )
        else:
            view = (self.old, self.defaults, self.kwdefaults)
        return self._runner(*view)(*args, **kwargs)

    def _runner(self, code: types.CodeType, defaults: Any, kwdefaults: Any) -> Any:
        """A function running ``code`` as the gated one would (made once per view)."""
        key = (id(code), id(defaults), id(kwdefaults))
        runner = self._runners.get(key)
        if runner is None:
            function = self.function
            runner = types.FunctionType(
                code, function.__globals__, function.__name__, defaults, function.__closure__
            )
            runner.__kwdefaults__ = kwdefaults
            runner.__dict__[_RUNNER] = True
            self._runners[key] = runner
        return runner

    def signature(self) -> inspect.Signature | None:
        """The function's signature as the owner thread sees it (``inspect`` reads it from
        ``__signature__`` while the gate stands in for the code)."""
        function = self.function
        view = types.FunctionType(
            self.new.get("__code__", self.old),
            function.__globals__,
            function.__name__,
            self.new.get("__defaults__", self.defaults),
            function.__closure__,
        )
        view.__kwdefaults__ = self.new.get("__kwdefaults__", self.kwdefaults)
        view.__annotations__ = function.__annotations__
        try:
            return inspect.signature(view)
        except (TypeError, ValueError):  # pragma: no cover - any function has one
            return None


ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "<absent>"})()  # no member


class MemberGate:
    """Stands in a class's namespace for a member the transaction replaces, adds or
    removes: the reloading thread sees the new member, every other thread the old one,
    until the commit point (then all see the final one, and it takes the gate's place).

    A data descriptor, so that it decides every lookup of the name; it behaves as the
    member it shows would (an instance's own attribute wins over a plain member, a
    missing member is looked for further along the MRO).
    """

    __slots__ = ("__weakref__", "cls", "name", "new", "old", "point")

    def __init__(self, cls: type, name: str, old: object, point: CommitPoint) -> None:
        self.cls = cls
        self.name = name
        self.old = old
        self.new: object = old
        self.point = point

    def shown(self) -> object:
        """The member this thread sees now (ABSENT: none)."""
        point = self.point
        if threading.get_ident() == point.owner or (point.closed and point.committed):
            return self.new
        return self.old

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        value = self.shown()
        owner = owner if owner is not None else type(obj)
        if value is ABSENT:
            value = _further(self.cls, self.name, owner)
        if isinstance(obj, type) and not _is_data(value):
            # A metaclass's member: a class's own (or inherited) attribute wins over it.
            found = _in_mro(obj, self.name)
            if found is not ABSENT:
                get = getattr(type(found), "__get__", None)
                return get(found, None, obj) if get is not None else found
        if obj is not None and not _is_data(value):
            own = _own_dict(obj)
            if own is not None and self.name in own:
                return own[self.name]
        if value is ABSENT:
            raise AttributeError(self.name)
        get = getattr(type(value), "__get__", None)
        return get(value, obj, owner) if get is not None else value

    def __set__(self, obj: object, value: object) -> None:
        shown = self.shown()
        setter = getattr(type(shown), "__set__", None)
        if setter is not None:
            setter(shown, obj, value)
            return
        if isinstance(obj, type):  # a class of this metaclass: into the class's own dict
            self._past(type.__setattr__, obj, value)
            return
        own = _own_dict(obj)
        if own is None:
            raise AttributeError(self.name)
        own[self.name] = value

    def __delete__(self, obj: object) -> None:
        shown = self.shown()
        deleter = getattr(type(shown), "__delete__", None)
        if deleter is not None:
            deleter(shown, obj)
            return
        if isinstance(obj, type):
            self._past(type.__delattr__, obj)
            return
        own = _own_dict(obj)
        if own is None or self.name not in own:
            raise AttributeError(self.name)
        del own[self.name]

    def _past(self, action: Any, cls: type, *value: object) -> None:
        """``action`` on a class whose metaclass holds this gate, as without the gate: a
        class's own attribute is not the metaclass's to decide (type.__setattr__ would call
        the gate again). The gate steps aside for that one call."""
        meta = self.cls
        type.__delattr__(meta, self.name)
        try:
            action(cls, self.name, *value)
        finally:
            type.__setattr__(meta, self.name, self)

    @property
    def __isabstractmethod__(self) -> bool:
        return bool(getattr(self.shown(), "__isabstractmethod__", False))


class StateGate:
    """Stands in a class's namespace for an attribute of some of its instances (an enum
    member's ``_value_``) that the transaction changes: the reloading thread sees each
    instance's new value, every other thread its own ``__dict__``, until the commit point
    (then the gate leaves, and committed, the new values are written into the instances).

    Only put where no class of the MRO defines the name, so that it decides nothing else.
    """

    __slots__ = ("__weakref__", "cls", "name", "new", "point")

    def __init__(self, cls: type, name: str, point: CommitPoint) -> None:
        self.cls = cls
        self.name = name
        self.point = point
        self.new: dict[int, tuple[object, object]] = {}  # by id: (instance, its new value)

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            raise AttributeError(self.name)
        point = self.point
        staged = self.new.get(id(obj))
        if staged is not None and (
            threading.get_ident() == point.owner or (point.closed and point.committed)
        ):
            return staged[1]
        own = _own_dict(obj)
        if own is None or self.name not in own:
            raise AttributeError(self.name)
        return own[self.name]

    def __set__(self, obj: object, value: object) -> None:
        self.new.pop(id(obj), None)  # set anew: by everyone, from now on
        own = _own_dict(obj)
        if own is None:
            raise AttributeError(self.name)
        own[self.name] = value

    def __delete__(self, obj: object) -> None:
        self.new.pop(id(obj), None)
        own = _own_dict(obj)
        if own is None or self.name not in own:
            raise AttributeError(self.name)
        del own[self.name]

    def close(self, *, committed: bool) -> None:
        """Leave the class; committed, the instances take their new values first."""
        if committed:
            for obj, value in self.new.values():
                _own_dict(obj)[self.name] = value  # type: ignore[index]
        if self.cls.__dict__.get(self.name) is self:
            type.__delattr__(self.cls, self.name)
        self.new.clear()


def gated_member(value: object) -> object:
    """What a class namespace entry stands for in this thread (a gate's member)."""
    return value.shown() if isinstance(value, MemberGate) else value


def _further(cls: type, name: str, owner: type) -> object:
    """``name`` in the classes after ``cls`` in ``owner``'s MRO (as if ``cls`` lacked it)."""
    mro = owner.__mro__
    start = mro.index(cls) + 1 if cls in mro else len(mro)
    for klass in mro[start:]:
        if name in klass.__dict__:
            return gated_member(klass.__dict__[name])
    return ABSENT


def _in_mro(cls: type, name: str) -> object:
    """``name`` as the first class of ``cls``'s MRO that holds it holds it (ABSENT: none)."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return gated_member(klass.__dict__[name])
    return ABSENT


def _is_data(value: object) -> bool:
    kind = type(value)
    return hasattr(kind, "__set__") or hasattr(kind, "__delete__")


def _own_dict(obj: object) -> dict[str, Any] | None:
    try:
        own = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return None
    return own if isinstance(own, dict) else None


def ungated(code: types.CodeType) -> types.CodeType:
    """The code a gate's code stands for (what the reloading thread runs), or ``code``: a
    function read while it is gated (a class body run again holds ``staticmethod(f)`` of
    a patched ``f``) gives its gate as its code, which must never become code of its own
    (it would call itself)."""
    if _GATE_NAME not in code.co_varnames:
        return code
    for const in code.co_consts:
        if type(const) is Gate:
            found: types.CodeType = const.new.get("__code__", const.old)
            return found
    return code


def is_runner(obj: object) -> bool:
    """Whether ``obj`` is a function a gate made to run code: no definition made it."""
    return isinstance(obj, types.FunctionType) and hasattr(obj, _RUNNER)  # (no dict made)


def wait_for_calls(timeout: float) -> None:
    """Wait (briefly) until no other thread is inside a call through a gate: it may run
    code that reads names the commit removes. (A call's gate frame exists from the
    moment the function is called, before the gate has chosen which code to run.)"""
    deadline = time.monotonic() + timeout
    while _calls_elsewhere() and time.monotonic() < deadline:
        time.sleep(0.0005)


def _calls_elsewhere() -> bool:
    for frame in thread_frames():
        walker: types.FrameType | None = frame
        while walker is not None:
            if _GATE_NAME in walker.f_code.co_varnames:
                return True
            walker = walker.f_back
    return False


_KINDS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
# What the gate does with the call it passes on, by the kind of function it stands for: a
# gate must be of the same kind (assigning code of another kind to ``__code__`` is
# deprecated since 3.13), and a generator's or coroutine's caller drives what it returns.
_BODIES = {
    0: ("def", "        return {call}\n"),
    inspect.CO_GENERATOR: ("def", "        return (yield from {call})\n"),
    inspect.CO_COROUTINE: ("async def", "        return await {call}\n"),
    inspect.CO_ASYNC_GENERATOR: (  # no `yield from` in an async generator: asend, athrow
        "async def",  # and aclose passed on by hand
        "        __relive_inner = {call}\n"
        "        try:\n"
        "            __relive_value = await __relive_inner.__anext__()\n"
        "            while True:\n"
        "                try:\n"
        "                    __relive_sent = yield __relive_value\n"
        "                except GeneratorExit:\n"
        "                    await __relive_inner.aclose()\n"
        "                    raise\n"
        "                except BaseException as __relive_error:\n"
        "                    __relive_value = await __relive_inner.athrow(__relive_error)\n"
        "                else:\n"
        "                    __relive_value = await __relive_inner.asend(__relive_sent)\n"
        "        except StopAsyncIteration:\n"
        "            return\n",
    ),
}


def gate_code(gate: Gate, like: types.CodeType) -> types.CodeType:
    """Code that calls ``gate`` with whatever it is called with, named as ``like`` and of
    the same kind as the function's code now (plain, generator, coroutine, async
    generator), so that putting it in place never changes the function's kind."""
    kind = gate.old.co_flags & _KINDS
    key = (kind, like.co_freevars)
    template = _TEMPLATES.get(key)
    if template is None:
        template = _TEMPLATES[key] = _template(kind, like.co_freevars)
    consts = tuple(gate if const == _SENTINEL else const for const in template.co_consts)
    return template.replace(
        co_consts=consts,
        co_name=like.co_name,
        co_qualname=like.co_qualname,
        co_filename=like.co_filename,
        co_firstlineno=like.co_firstlineno,
        co_flags=template.co_flags | (gate.old.co_flags & inspect.CO_ITERABLE_COROUTINE),
    )


def _template(kind: int, freevars: tuple[str, ...]) -> types.CodeType:
    """A function of ``kind`` taking anything and passing it on, closing over ``freevars``
    (the same names in the same order as the function it stands for: its closure fits)."""
    cells = " = ".join([*freevars, "None"])
    uses = ", ".join(freevars) or "None"
    keyword, body = _BODIES[kind]
    source = (
        "def outer():\n"
        f"    {cells}\n"
        f"    {keyword} gate(*__relive_args, **__relive_kwargs):\n"
        "        if False:\n"
        f"            {uses}\n"
        + body.format(call=f"{_SENTINEL!r}(*__relive_args, **__relive_kwargs)")
        + "    return gate\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # calling a string constant: replaced below
        module = compile(source, "<relive gate>", "exec")
    outer = next(c for c in module.co_consts if isinstance(c, types.CodeType))
    code = next(c for c in outer.co_consts if isinstance(c, types.CodeType))
    return code.replace(co_freevars=freevars) if code.co_freevars != freevars else code
