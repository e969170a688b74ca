"""The protocol of ``relive run``: what the supervisor and its worker tell each other.

Imported by both sides and by nothing else heavy, so the supervisor (the parent process)
starts without loading the engine.

The channel between the two processes, kept tiny on purpose:

    RELIVE_WORKER   environment variable set by the supervisor, removed by the worker
                    before the program runs; JSON options:
                    {"fd": 5, "reload": true, "quiet": false, "verbose": false,
                     "paths": [...], "include": [...], "exclude": [...],
                     "livereload": false}
    fd              one end of a socket pair, inherited by the worker.
    worker -> supervisor, one JSON object per line:
        {"event": "ready", "pid": 123}               watcher started; the program starts now
        {"event": "restart", "reason": "app.py: …"}  an edit needs a restart (RestartRequired)
        {"event": "no-reload", "reason": "…"}        in-place reload could not start; the
                                                     supervisor restarts on .py changes instead
        {"event": "not-started"}                     the program could not start (no such
                                                     module, a syntax or import error): sent
                                                     just before the worker exits with 1
        {"event": "member", "pid": 124}              another process of the program (forked
                                                     or spawned) joined the edits: Ctrl-C ends
                                                     it too, even outside the worker's group
        {"event": "hooks-ran"}                       the answer to "ending"
    supervisor -> worker, one JSON object per line:
        {"event": "ending"}                          the program is about to be ended (a
                                                     restart, relive stopping): the worker
                                                     runs the before_reload hooks at once,
                                                     whatever SIGTERM handler the program
                                                     installed, and answers "hooks-ran"
        End-of-file: the supervisor is gone, so the worker sends itself SIGTERM rather than
        live on orphaned.
    RELIVE_HUB      set by the worker for the program's processes: JSON {"address": ...},
                    the Unix socket of ``relive._hub``; ``PYTHONPATH`` starts with
                    ``relive/_boot`` so that a spawned process arms itself (``relive._member``).
    SIGINT          blocked by the supervisor when it starts the worker; the worker unblocks
                    it just before the program runs, so a Ctrl-C that arrives while relive
                    itself starts ends the worker quietly (exit 130, no traceback of relive's).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EVENT_ENDING",
    "EVENT_HOOKS_RAN",
    "EVENT_MEMBER",
    "EVENT_NOT_STARTED",
    "EVENT_NO_RELOAD",
    "EVENT_READY",
    "EVENT_RESTART",
    "HUB_ENV",
    "WORKER_ENV",
    "WorkerOptions",
]

WORKER_ENV = "RELIVE_WORKER"
EVENT_READY = "ready"
EVENT_RESTART = "restart"
EVENT_NO_RELOAD = "no-reload"
EVENT_NOT_STARTED = "not-started"
EVENT_MEMBER = "member"
HUB_ENV = "RELIVE_HUB"
EVENT_ENDING = "ending"
EVENT_HOOKS_RAN = "hooks-ran"


@dataclass(frozen=True)
class WorkerOptions:
    """What the supervisor tells the worker, through the ``RELIVE_WORKER`` variable."""

    fd: int = -1
    reload: bool = True
    quiet: bool = False
    verbose: bool = False
    paths: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    livereload: bool = False  # browser live reload, on the app's own port

    def to_env(self) -> str:
        """Encode as the value of ``RELIVE_WORKER``."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls, value: str | None) -> WorkerOptions:
        """Decode ``RELIVE_WORKER``; defaults when it is not set."""
        data: dict[str, Any] = json.loads(value) if value else {}
        fields: dict[str, Any] = {
            key: tuple(item) if isinstance(item, list) else item for key, item in data.items()
        }
        return cls(**fields)
