"""The processes of one program under ``relive run``: what each of them does with an edit.

Every Python process of the program (the one ``relive run`` started, and each process
forked or spawned from it) is a participant. The first one watches the files and
coordinates (``relive._hub``); the others are members (``relive._member``). An edit is one
round in two phases: each participant applies the new texts up to the engine's commit point
and votes; when every vote is yes, each commits; otherwise each rolls back. This module
holds what both sides share: the channel, a participant's round, and the family report.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, final

from relive._errors import ReloadError, RestartRequired

if TYPE_CHECKING:  # the engine is imported when a process first applies an edit
    from relive._engine import Engine, ModuleReport, Report

__all__ = [
    "Channel",
    "Participant",
    "bind_address",
    "connect",
    "error_from_record",
    "error_record",
    "module_record",
    "new_address",
]

Message = dict[str, Any]
RunEngine = Callable[[], "Report"]
GatedApply = Callable[[set[str], RunEngine], "Report"]


def new_address() -> str:
    """A fresh address for the hub's socket: abstract on Linux (``@name``, nothing to
    clean up), a file in the temporary directory elsewhere."""
    import secrets
    import tempfile

    name = f"relive-hub-{os.getpid()}-{secrets.token_hex(4)}"
    platform = sys.platform  # checked at run time: a test may run elsewhere
    if platform.startswith("linux"):
        return "@" + name
    return os.path.join(tempfile.gettempdir(), name)


def bind_address(address: str) -> str:
    """What ``bind`` and ``connect`` take for ``address``."""
    return "\0" + address[1:] if address.startswith("@") else address


def connect(address: str) -> socket.socket:
    """A socket connected to the hub at ``address``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(bind_address(address))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


@final
class Channel:
    """JSON objects, one a line, over a connected stream socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""
        self._send_lock = threading.Lock()

    def send(self, message: Message) -> bool:
        """Send one message; False when the other side is gone."""
        data = (json.dumps(message) + "\n").encode()
        with self._send_lock:
            try:
                self.sock.sendall(data)
            except OSError:
                return False
        return True

    def receive(self, timeout: float | None = None) -> Message | None:
        """The next message; None at end-of-file. Raises TimeoutError after ``timeout``."""
        while b"\n" not in self._buffer:
            self.sock.settimeout(timeout)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise
            except OSError:
                return None
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError:
            return self.receive(timeout)
        return message if isinstance(message, dict) else self.receive(timeout)

    def close(self) -> None:
        """Close this process's end (a forked child closes its copies this way: no shutdown,
        so the parent's connection is untouched)."""
        with contextlib.suppress(OSError):
            self.sock.close()


def error_record(exc: BaseException) -> Message:
    """A refusal as plain data, for the coordinator to rebuild and report once."""
    if isinstance(exc, ReloadError):
        return {
            "message": exc.message,
            "path": exc.path,
            "lineno": exc.lineno,
            "line": exc.line,
            "module": exc.module,
            "restart": isinstance(exc, RestartRequired),
        }
    return {"message": f"internal error: {exc!r}", "restart": False}


def error_from_record(record: Message, suffix: str = "") -> ReloadError:
    """The error a refusal record stands for, with ``suffix`` added to its message."""
    kind = RestartRequired if record.get("restart") else ReloadError
    return kind(
        f"{record.get('message', 'refused')}{suffix}",
        path=record.get("path"),
        lineno=record.get("lineno"),
        line=record.get("line"),
        module=record.get("module"),
    )


def module_record(module: ModuleReport) -> Message:
    """A module's report as plain data."""
    return {
        "name": module.name,
        "path": module.path,
        "patched": list(module.patched),
        "added": list(module.added),
        "removed": list(module.removed),
        "executed": list(module.executed),
        "rebound": list(module.rebound),
        "dependent": module.dependent,
    }


@final
class Participant:
    """Applies one round's texts in this process, through ``gated`` (a server's request
    gate and rules) when given, deciding at the engine's commit point with ``confirm``.
    ``engine`` gives the engine when it is first needed."""

    @property
    def engine(self) -> Engine:
        """This process's engine."""
        return self._engine()

    def __init__(self, engine: Callable[[], Engine], gated: GatedApply | None = None) -> None:
        self._engine = engine
        self.gated = gated
        self.committed_at = 0.0  # wall-clock time of the last commit here

    def sources(self, texts: Mapping[str, str | None]) -> dict[str, str]:
        """The new text of each module of this process loaded from one of the paths.

        Raises:
            ReloadError: A module this process runs was loaded from a file now gone.
        """
        self.engine.track_new_modules()
        sources: dict[str, str] = {}
        for tracked in self.engine.tracked_modules():
            if tracked.path not in texts:
                continue
            text = texts[tracked.path]
            if text is None:
                raise ReloadError(
                    "the file was deleted or cannot be read; the program keeps its last code",
                    path=tracked.path,
                    module=tracked.name,
                )
            sources[tracked.name] = text
        return sources

    def apply(self, texts: Mapping[str, str | None], confirm: Callable[[], bool]) -> Report:
        """Apply ``texts`` (by real path) as one transaction; ``confirm`` is asked at the
        commit point (also when nothing here changes), and a False or an exception from it
        rolls everything back.

        Raises:
            ReloadError: Refused here, or called off.
        """
        paths = {os.path.realpath(path) for path in texts}

        def run_engine() -> Report:
            report = self.engine.apply_sources(self.sources(texts), confirm=confirm)
            self.committed_at = time.time()
            return report

        if self.gated is None:
            return run_engine()
        return self.gated(paths, run_engine)
