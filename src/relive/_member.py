"""A process of the program other than the one that watches: it applies what it is sent.

Under ``relive run``, a process forked from an armed process (``os.fork``, multiprocessing
"fork" and "forkserver", prefork servers) arms itself right after the fork; a process
spawned from one (multiprocessing "spawn", ``uvicorn --workers``, any ``python``) is armed
by ``relive/_boot/sitecustomize.py``, which ``PYTHONPATH`` puts first, as it starts. An
armed process connects to the hub (``relive._hub``) and takes part in each round.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import json
import os
import sys
import sysconfig
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, final

from relive._errors import ReloadError
from relive._family import (
    Channel,
    Message,
    Participant,
    connect,
    error_record,
    module_record,
)
from relive._sources import StatKey, read_source, stat_key

if TYPE_CHECKING:
    from types import ModuleType

    from relive._engine import Engine
    from relive._hub import Hub
    from relive._integrations.servers import ServerSupport

__all__ = [
    "BOOT_DIR",
    "DECISION_TIMEOUT",
    "Member",
    "arm",
    "arm_spawned",
    "gated_by",
    "hub_environment",
]

HUB_ENV = "RELIVE_HUB"  # relive._protocol.HUB_ENV (not imported: a spawned process starts light)
BOOT_DIR = str(Path(__file__).resolve().parent / "_boot")
DECISION_TIMEOUT = 30.0  # a prepared member waits this long for the decision, then rolls back


@final
class Member:
    """This process's link to the hub: a thread that applies each round it is sent."""

    def __init__(self, address: str, participant: Participant, round_: int | None = None) -> None:
        self.address = address
        self.participant = participant
        self.round = round_  # the last round this process's code is at (None: spawned)
        self._channel: Channel | None = None

    def start(self) -> Member:
        """Connect and serve rounds from a daemon thread; a hub that cannot be reached
        leaves this process as it is (its code is then not updated)."""
        try:
            self._channel = Channel(connect(self.address))
        except OSError:
            return self
        self._channel.send({"op": "hello", "pid": os.getpid(), "round": self.round})
        threading.Thread(target=self._serve, name="relive-member", daemon=True).start()
        return self

    def forget(self) -> None:
        """In a forked child: close the inherited copy of the parent's connection."""
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()

    def _serve(self) -> None:
        channel = self._channel
        if channel is None or not self._catch_up(channel):
            return
        while channel is self._channel:
            message = channel.receive()
            if message is None:
                return  # the hub is gone: the program is ending
            if message.get("op") == "prepare":
                self._round(channel, message)

    def _catch_up(self, channel: Channel) -> bool:
        """Apply what was committed between this process's fork and its joining."""
        message = channel.receive()
        if message is None:
            return False
        texts = message.get("texts") or {}
        try:
            if texts:
                self.participant.apply(texts, lambda: True)
        except ReloadError as exc:
            print(f"relive: process {os.getpid()} keeps its code: {exc}", file=sys.stderr)
        self.round = message.get("round")
        return True

    def _round(self, channel: Channel, message: Message) -> None:
        number = message.get("round")
        voted = False

        def confirm() -> bool:
            nonlocal voted
            voted = True
            channel.send({"op": "vote", "round": number, "ok": True})
            while True:
                reply = channel.receive(DECISION_TIMEOUT)
                if reply is None:
                    return False
                if reply.get("op") == "decide" and reply.get("round") == number:
                    return bool(reply.get("commit"))

        try:
            report = self.participant.apply(message.get("texts") or {}, confirm)
        except Exception as exc:
            op = "done" if voted else "vote"
            called_off = voted and isinstance(exc, ReloadError) and exc.path is None
            error = None if called_off else error_record(exc)
            channel.send({"op": op, "round": number, "ok": False, "error": error})
            return
        self.round = number if isinstance(number, int) else self.round
        channel.send(
            {
                "op": "done",
                "round": number,
                "ok": True,
                "modules": [module_record(module) for module in report.modules],
                "committed_at": self.participant.committed_at,
            }
        )


@dataclass
class _Armed:
    """What this process holds as part of a program under ``relive run``."""

    address: str
    participant: Participant
    hub: Hub | None = None
    member: Member | None = None


_armed: _Armed | None = None  # this process's part in the program, once armed


def _after_fork_in_child() -> None:
    """The child of a fork has only the forking thread: the hub and the link it inherited
    are dead copies (the watcher forgets itself). It closes them and joins as a member."""
    armed = _armed
    if armed is None:
        return
    known = armed.hub.committed if armed.hub is not None else None
    if armed.member is not None:
        known = armed.member.round
    if armed.hub is not None:
        armed.hub.forget()
        armed.hub = None
    if armed.member is not None:
        armed.member.forget()
    armed.member = Member(armed.address, armed.participant, known).start()


def arm(
    address: str,
    participant: Participant,
    *,
    hub: Hub | None = None,
) -> None:
    """Make this process part of the program: its forked children arm themselves. The
    process that watches passes its ``hub``; another process connects to it."""
    global _armed
    first = _armed is None
    _armed = _Armed(address, participant, hub=hub)
    if hub is None:
        _armed.member = Member(address, participant).start()
    if first:
        os.register_at_fork(after_in_child=_after_fork_in_child)


def hub_environment(address: str, *, verbose: bool = False) -> dict[str, str]:
    """The environment a spawned process needs to find the hub and arm itself."""
    paths = [BOOT_DIR, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    options = json.dumps({"address": address, "verbose": verbose})
    return {HUB_ENV: options, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def gated_by(support: ServerSupport) -> Callable[[set[str], Callable[[], Any]], Any]:
    """A participant's way through ``support``: between requests, the frameworks' rules."""

    def gated(paths: set[str], run_engine: Callable[[], Any]) -> Any:
        return support.apply_paths(paths, run_engine=run_engine)

    return gated


class _EarlySources:
    """Until the engine exists: the text of each source file imported, as it was imported
    (a ``sys.meta_path`` finder just before ``PathFinder``, finding what it finds), so that
    a spawned process pays for the engine only when an edit first reaches it."""

    def __init__(self) -> None:
        paths = sysconfig.get_paths()
        self.skipped = tuple(
            {os.path.realpath(paths[key]) + os.sep for key in _LIBRARY_PATHS if key in paths}
        )
        self.sources: dict[str, tuple[str, StatKey]] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        origin = getattr(spec, "origin", None)
        if isinstance(origin, str) and origin.endswith(".py"):
            real = os.path.realpath(origin)
            if not real.startswith(self.skipped):
                with contextlib.suppress(OSError, UnicodeDecodeError, SyntaxError):
                    self.sources[real] = (read_source(real), stat_key(real))
        return spec

    def install(self) -> None:
        finders = sys.meta_path
        index = next(
            (i for i, f in enumerate(finders) if f is importlib.machinery.PathFinder),
            len(finders),
        )
        finders.insert(index, self)


_LIBRARY_PATHS = ("stdlib", "platstdlib", "purelib", "platlib")
_SERVER_PACKAGES = frozenset({"uvicorn", "werkzeug", "django", "fastapi", "gunicorn"})


class _ServerWatch:
    """Finds nothing: the first import of a web server relive knows sets up its support
    (reloader off, requests gated) before the server's own modules run."""

    def __init__(self, on_server: Callable[[], None]) -> None:
        self._on_server = on_server

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        if fullname in _SERVER_PACKAGES and self in sys.meta_path:
            sys.meta_path.remove(self)
            self._on_server()


class _LazyArming:
    """A spawned process's engine and server support, made when first needed."""

    def __init__(self) -> None:
        self.early = _EarlySources()
        self.participant = Participant(self.engine)
        self._engine: Engine | None = None
        self._lock = threading.RLock()

    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                from relive._engine import Engine, replace_engine

                engine = Engine(imported=self.early.sources)
                with contextlib.suppress(ValueError):
                    sys.meta_path.remove(self.early)
                previous = replace_engine(engine)
                if previous is not None:  # the program made one itself: it stays
                    replace_engine(previous)
                    engine.close()
                    engine = previous
                self._engine = engine
            return self._engine

    def server_support(self) -> None:
        from relive._integrations.servers import ServerSupport

        support = ServerSupport(quiet=True, engine=self.engine()).install()
        self.participant.gated = gated_by(support)


def arm_spawned() -> None:
    """Called by relive's sitecustomize as a spawned process of the program starts."""
    value = os.environ.get(HUB_ENV)
    if not value or _armed is not None:
        return
    try:
        options = json.loads(value)
        lazy = _LazyArming()
        lazy.early.install()
        sys.meta_path.insert(0, _ServerWatch(lazy.server_support))
        arm(str(options["address"]), lazy.participant)
    except Exception as exc:  # the program runs on, without edits in this process
        print(f"relive: process {os.getpid()} gets no edits ({exc!r})", file=sys.stderr)
