"""Lifecycle of a reload: hooks a module marks, state it keeps, instances it migrates.

The engine opens a :class:`HookRun` per transaction and calls it at fixed moments: before
an edited module's statements run, after every module is patched. Everything a hook does
happens inside the transaction, so a hook that raises rolls the whole reload back.
"""

from __future__ import annotations

import gc
import linecache
import logging
import sys
import threading
import traceback
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from relive._errors import ReloadError
from relive._patch import Journal

__all__ = ["HookRun", "after_reload", "before_exit", "before_reload", "drop_kept", "keep"]

logger = logging.getLogger("relive")

F = TypeVar("F", bound=Callable[[], object])
T = TypeVar("T")
Kind = Literal["before_reload", "after_reload"]
_MIGRATE = "__relive_migrate__"


@dataclass
class _Registry:
    """Hooks and kept objects of the process, keyed by module name.

    Module-level by necessity: hooks and kept objects are registered while a module is
    first imported, before any engine needs to exist.
    """

    lock: threading.RLock = field(default_factory=threading.RLock)
    hooks: dict[tuple[str, Kind], dict[str, Callable[[], object]]] = field(default_factory=dict)
    kept: dict[tuple[str, str], object] = field(default_factory=dict)


_registry = _Registry()
_current = threading.local()  # .run: the HookRun of the reload this thread is applying


# -- hooks ------------------------------------------------------------------------------


def after_reload(function: F) -> F:
    """Mark a module-level function to be called after each reload of its module.

    Use it to re-register handlers, rebuild derived tables or clear caches. It is called
    with no arguments, inside the reload's transaction: if it raises, the reload is rolled
    back and reported as a [`ReloadError`][relive.ReloadError] naming the hook's file and
    line. A hook is keyed by its module and name, so an edited hook replaces itself.
    """
    return _register("after_reload", function)


def before_reload(function: F) -> F:
    """Mark a module-level function to be called before its module's edited statements run.

    Use it to close a connection, flush a file or stop a thread the module started; the
    code that runs is the module's old code. If the reload then fails, the module's
    [`after_reload`][relive.after_reload] hooks run again (with the old code) so what was
    torn down is rebuilt. A hook that raises rolls the reload back.
    """
    return _register("before_reload", function)


def _register(kind: Kind, function: F) -> F:
    if not isinstance(function, types.FunctionType):
        raise TypeError(f"@relive.{kind} expects a function, not {type(function).__name__}")
    hooks = _registry.hooks.setdefault((function.__module__, kind), {})
    name = function.__qualname__
    with _registry.lock:
        previous = hooks.get(name)
        hooks[name] = function
    run: HookRun | None = getattr(_current, "run", None)
    if run is not None and previous is not None:  # registered again by a reload

        def restore() -> None:
            with _registry.lock:
                hooks[name] = previous

        run.journal.on_rollback(restore)
    return function


_exiting = threading.Event()  # before_exit ran: the process is ending


def before_exit() -> None:
    """Call every module's before-reload hooks: the process is about to end (a restart).

    Once per process (the supervisor's word and SIGTERM may both ask). Errors are logged,
    not raised: the process ends anyway.
    """
    with _registry.lock:
        if _exiting.is_set():
            return
        _exiting.set()
        modules = [module for module, kind in _registry.hooks if kind == "before_reload"]
    for module in modules:
        for hook in _hooks(module, "before_reload"):
            try:
                hook()
            except Exception:
                logger.exception("relive: before_reload hook %s failed", hook.__qualname__)


def _hooks(module: str, kind: Kind, journal: Journal | None = None) -> list[Callable[[], object]]:
    """The module's live hooks of ``kind``; hooks whose definition was removed (or is
    removed by the ``journal``'s transaction) are dropped."""
    namespace = vars(sys.modules[module]) if module in sys.modules else {}
    gone = journal.removing(namespace) if journal is not None else set()
    with _registry.lock:
        registered = _registry.hooks.get((module, kind), {})
        for name in [
            name
            for name, hook in registered.items()
            if namespace.get(name) is not hook or name in gone
        ]:
            del registered[name]
        return list(registered.values())


def _call(kind: str, function: Callable[..., object], *args: object) -> None:
    try:
        function(*args)
    except ReloadError:
        raise
    except Exception as exc:
        raise _hook_failure(kind, function, exc) from exc


def _hook_failure(kind: str, function: Callable[..., object], exc: Exception) -> ReloadError:
    """A ReloadError at the innermost line of the hook's file in the traceback."""
    code: types.CodeType = function.__code__
    lineno = code.co_firstlineno
    for frame, frame_line in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == code.co_filename and frame_line:
            lineno = frame_line
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return ReloadError(
        f"{kind} hook {function.__qualname__}() raised {what}",
        path=code.co_filename,
        lineno=lineno,
        line=linecache.getline(code.co_filename, lineno).strip() or None,
        module=getattr(function, "__module__", None),
    )


# -- kept state -------------------------------------------------------------------------


def keep(name: str, factory: Callable[[], T], /, *, rebuild: bool = False) -> T:
    """Build an object once per process and return the same object ever after.

    ``db = relive.keep("db", connect)``: the object is kept under the calling module's
    name and ``name``, so re-running the statement (edited, or the module re-run whole)
    returns the object built the first time. ``rebuild=True`` builds a new one; the old
    one is then closed (its ``close()``, if it has one) once the reload that rebuilt it
    commits. [`drop_kept`][relive.drop_kept] lets go of it.

    Raises:
        TypeError: ``name`` is not a string or ``factory`` is not callable.
    """
    if not isinstance(name, str):
        raise TypeError(
            "relive.keep(name, factory): the first argument is the name the object is kept"
            f" under, not {type(name).__name__}"
        )
    if not callable(factory):
        raise TypeError("relive.keep(name, factory): the factory must be callable")
    module = sys._getframe(1).f_globals.get("__name__", "__main__")
    slot = (str(module), name)
    with _registry.lock:
        old = _registry.kept.get(slot, _registry)
        if old is not _registry and not rebuild:
            return old  # type: ignore[return-value]
        value = factory()
        _registry.kept[slot] = value
    if old is not _registry:
        _retire(slot, old, value)
    return value


def _retire(slot: tuple[str, str], old: object, new: object) -> None:
    """Close ``old`` now, or when the reload running in this thread commits."""
    run: HookRun | None = getattr(_current, "run", None)
    if run is None:
        _close(old)
        return

    def restore() -> None:
        with _registry.lock:
            _registry.kept[slot] = old
        _close(new)

    run.journal.on_rollback(restore)
    run.on_commit.append(lambda: _close(old))


def _close(obj: object) -> None:
    close = getattr(obj, "close", None)
    if callable(close):
        close()


def drop_kept(module: str | types.ModuleType, name: str | None = None) -> None:
    """Let go of what [`keep`][relive.keep] holds for ``module``, without closing it.

    Drops the object kept under ``name``, or all of them; the next ``relive.keep`` builds a
    new object.
    """
    module_name = module if isinstance(module, str) else module.__name__
    with _registry.lock:
        for slot in [s for s in _registry.kept if s[0] == module_name and name in (None, s[1])]:
            del _registry.kept[slot]


# -- one transaction ----------------------------------------------------------------------


@dataclass
class HookRun:
    """The lifecycle side of one reload: the engine calls it; it calls the user's hooks."""

    journal: Journal
    torn_down: list[str] = field(default_factory=list)  # modules whose before hooks ran
    on_commit: list[Callable[[], None]] = field(default_factory=list)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Make this run the one :func:`keep` sees while statements execute."""
        _current.run = self
        try:
            yield
        finally:
            _current.run = None

    def before(self, module: str) -> None:
        """Call ``module``'s before-reload hooks (its old code), before it is applied."""
        self.torn_down.append(module)
        self.journal.flush()  # the program's code runs
        for hook in _hooks(module, "before_reload"):
            _call("before_reload", hook)

    def after(self, changed: Iterable[tuple[str, Iterable[str]]]) -> None:
        """Migrate instances of patched classes, then call each module's after hooks.

        ``changed``: each module the reload changed, in the order applied, with the names
        of the functions and classes patched in it.
        """
        changed = list(changed)
        self.journal.flush()  # the hooks run the program's code: it sees the whole edit
        for module, patched in changed:
            self._migrate(module, patched)
        for module, _ in changed:
            for hook in _hooks(module, "after_reload", self.journal):
                _call("after_reload", hook)

    def committed(self) -> None:
        """The reload is final: close what kept objects replaced."""
        for action in self.on_commit:
            try:
                action()
            except Exception:
                logger.exception("relive: closing a replaced kept object failed")
        self.on_commit.clear()

    def rolled_back(self) -> None:
        """The reload was undone: rebuild what the before hooks tore down, with old code."""
        self.on_commit.clear()
        for module in self.torn_down:
            for hook in _hooks(module, "after_reload"):
                try:
                    hook()
                except Exception:
                    logger.exception("relive: after_reload hook failed after a rollback")

    # -- class-shape migration ----------------------------------------------------------------

    def _migrate(self, module: str, patched: Iterable[str]) -> None:
        namespace = vars(sys.modules[module]) if module in sys.modules else {}
        classes: set[type] = set()
        for name in patched:
            obj = namespace.get(name)
            if isinstance(obj, type):
                classes |= _with_subclasses(obj)
        classes = {cls for cls in classes if callable(getattr(cls, _MIGRATE, None))}
        if not classes:
            return
        for instance in [obj for obj in gc.get_objects() if type(obj) in classes]:
            self._remember(instance)
            method = getattr(type(instance), _MIGRATE)
            _call(_MIGRATE, method, instance)

    def _remember(self, instance: object) -> None:
        """Undo what a migration does to the instance's ``__dict__`` on rollback."""
        state: dict[str, Any] | None = getattr(instance, "__dict__", None)
        if not isinstance(state, dict):
            return
        saved = dict(state)

        def restore() -> None:
            state.clear()
            state.update(saved)

        self.journal.on_rollback(restore)


def _with_subclasses(cls: type) -> set[type]:
    found = {cls}
    pending = [cls]
    while pending:
        subclasses: list[type] = type.__subclasses__(pending.pop())
        for sub in subclasses:
            if sub not in found:
                found.add(sub)
                pending.append(sub)
    return found
