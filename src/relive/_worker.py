"""The worker: the child process in which ``relive run`` runs a Python program.

The supervisor (``relive._supervisor``) starts ``python -m relive._worker SCRIPT [ARGS]`` or
``python -m relive._worker -m MODULE [ARGS]``. The worker sets up ``sys.argv`` and
``sys.path`` as ``python SCRIPT`` / ``python -m MODULE`` would, starts relive's in-process
watcher so edits are applied in place, then runs the program as ``__main__`` with runpy.

The channel between the two processes is described in ``relive._protocol``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import runpy
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from relive._errors import RestartRequired
from relive._lifecycle import before_exit
from relive._output import Console, default_console
from relive._protocol import (
    EVENT_ENDING,
    EVENT_HOOKS_RAN,
    EVENT_MEMBER,
    EVENT_NO_RELOAD,
    EVENT_NOT_STARTED,
    EVENT_READY,
    EVENT_RESTART,
    WORKER_ENV,
    WorkerOptions,
)
from relive._watcher import Watcher, Wiring, watch_wired

if TYPE_CHECKING:
    from relive._hub import Hub
    from relive._integrations.servers import ServerSupport

__all__ = ["SupervisorLink", "Target", "main"]

# Frames of these files are relive's own, not the user's: hidden from a crash's traceback.
_OWN_FILES = frozenset({__file__, runpy.__file__, "<frozen runpy>"})


class SupervisorLink:
    """The worker's end of the socket pair: send events, notice when the supervisor dies."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, fd: int) -> SupervisorLink | None:
        """Wrap the inherited descriptor ``fd``; None when there is none (run by hand)."""
        if fd < 0:
            return None
        sock = socket.socket(fileno=fd)
        # The program's own child processes must not inherit the channel.
        sock.set_inheritable(False)
        link = cls(sock)
        threading.Thread(
            target=link._watch_supervisor, name="relive-worker-link", daemon=True
        ).start()
        return link

    def send(self, event: str, **fields: object) -> None:
        """Send one event; a supervisor that is gone is handled by the link thread."""
        line = json.dumps({"event": event, **fields}) + "\n"
        # A supervisor that died cannot be told; _watch_supervisor ends this process.
        with self._lock, contextlib.suppress(OSError):
            self._sock.sendall(line.encode())

    def _watch_supervisor(self) -> None:
        """Answer the supervisor's word that the program is ending (run the before_reload
        hooks now: the program may have a SIGTERM handler of its own); end this process
        when the supervisor is gone."""
        try:
            with self._sock.makefile("rb") as lines:
                for line in lines:
                    if _event(line) == EVENT_ENDING:
                        before_exit()
                        self.send(EVENT_HOOKS_RAN)
        except OSError:
            pass  # a reset connection means the same as end-of-file: the supervisor is gone
        os.kill(os.getpid(), signal.SIGTERM)


def _event(line: bytes) -> object:
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message.get("event") if isinstance(message, dict) else None


@dataclass(frozen=True)
class Target:
    """The program to run: a script path or a module name, and its arguments."""

    script: str | None = None
    module: str | None = None
    args: tuple[str, ...] = field(default=())

    @classmethod
    def parse(cls, argv: Sequence[str]) -> Target:
        """``["app.py", *args]`` or ``["-m", "pkg.mod", *args]``, as after ``python``."""
        if len(argv) >= 2 and argv[0] == "-m":
            return cls(module=argv[1], args=tuple(argv[2:]))
        if argv and argv[0] != "-m":
            return cls(script=argv[0], args=tuple(argv[1:]))
        raise ValueError("expected SCRIPT [ARGS] or -m MODULE [ARGS]")

    def prepare_sys(self) -> None:
        """Set ``sys.argv`` and ``sys.path[0]`` as ``python SCRIPT|-m MODULE`` does."""
        if self.script is not None:
            sys.argv = [self.script, *self.args]
            sys.path[0] = os.path.dirname(os.path.realpath(self.script))
        else:
            # runpy replaces "-m" with the module's file once it is found, as python does.
            sys.argv = ["-m", *self.args]
            sys.path[0] = os.getcwd()

    def run(self) -> None:
        """Run the program as ``__main__``."""
        if self.script is not None:
            runpy.run_path(self.script, run_name="__main__")
        else:
            assert self.module is not None
            runpy.run_module(self.module, run_name="__main__", alter_sys=True)


@functools.cache
def console_for(options: WorkerOptions) -> Console:
    """The worker's one console: the watcher, the servers and the worker say everything
    through it."""
    return Console(quiet=options.quiet, verbose=options.verbose)


def start_server_support(options: WorkerOptions) -> ServerSupport | None:
    """Hook the web servers relive knows (their reloaders off, requests gated); None when
    that could not be set up (the program then runs without it)."""
    try:
        from relive._integrations.servers import ServerSupport

        support = ServerSupport(
            in_place=options.reload,
            console=console_for(options),
            livereload=options.livereload,
        )
        return support.install()
    except Exception as exc:
        console_for(options).warn(f"web server support unavailable ({exc!r})")
        return None


def start_watcher(
    options: WorkerOptions,
    target: Target,
    link: SupervisorLink | None,
    support: ServerSupport | None = None,
) -> Watcher | None:
    """Start relive's in-process watcher; None when it is off or could not start.

    With ``support``, each batch of edits is applied through it (between requests). The
    script (or ``-m`` module) is edited in place like any module, except its statement
    running now and those after it: their edits restart.
    """
    if not options.reload:
        return None

    console = console_for(options)

    def on_restart(error: RestartRequired) -> None:
        restart_workers = support.restart_workers if support is not None else None
        if restart_workers is not None and restart_workers():
            console.info(f"restarting the workers: {console.formatter.where(error)}")
        elif link is not None:
            link.send(EVENT_RESTART, reason=console.formatter.where(error))

    try:
        hub = start_family(options, link, support)
        wiring = Wiring(
            apply=support.apply_paths if support is not None else None,
            on_restart=on_restart if link is not None else None,
            script=target.script,
            console=console,
            apply_changes=hub.apply_changes if hub is not None else None,
        )
        return watch_wired(
            wiring,
            *options.paths,
            include=options.include,
            exclude=options.exclude,
            quiet=options.quiet,
            verbose=options.verbose,
        )
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if link is not None:
            link.send(EVENT_NO_RELOAD, reason=reason)
        else:
            console.warn(f"in-place reload unavailable ({reason})")
        return None


def start_family(
    options: WorkerOptions, link: SupervisorLink | None, support: ServerSupport | None
) -> Hub | None:
    """The hub through which the program's other processes (forked or spawned) apply each
    edit with this one; None when it cannot be set up (they then keep their code)."""
    from relive._hub import start_hub

    def on_member(pid: int) -> None:
        if link is not None:
            link.send(EVENT_MEMBER, pid=pid)

    try:
        return start_hub(support, on_member=on_member, verbose=options.verbose)
    except OSError as exc:
        print(f"relive: child processes will not get edits ({exc})", file=sys.stderr)
        return None


def _user_traceback(tb: TracebackType | None) -> TracebackType | None:
    while tb is not None and tb.tb_frame.f_code.co_filename in _OWN_FILES:
        tb = tb.tb_next
    return tb


def _print_uncaught(exc: BaseException) -> None:
    tb = _user_traceback(exc.__traceback__)
    if tb is None and not isinstance(exc, KeyboardInterrupt | SyntaxError):
        # Raised by runpy itself: no such module or file, nothing to run.
        default_console().warn(str(exc))
    else:
        # The default hook prints the exception's own __traceback__, not its argument.
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)


def _never_started(exc: BaseException) -> bool:
    """Whether the program could not start at all: runpy found nothing to run, or its
    code does not compile or import."""
    runpy_itself = _user_traceback(exc.__traceback__) is None
    return runpy_itself or isinstance(exc, ImportError | SyntaxError)


def run_program(target: Target, link: SupervisorLink | None = None) -> bool:
    """Run the program; True when Ctrl-C ended it.

    An uncaught exception is printed as ``python`` prints it (without relive's frames) and
    ends the worker with code 1; when the program could not start at all, ``link`` is told.
    """
    try:
        target.run()
    except SystemExit:
        raise
    except BaseException as exc:
        _print_uncaught(exc)
        if isinstance(exc, KeyboardInterrupt):
            return True
        if link is not None and _never_started(exc):
            link.send(EVENT_NOT_STARTED)
        raise SystemExit(1) from None
    return False


def _end_after_hooks(signum: int, frame: object) -> None:
    """SIGTERM (a restart, or the supervisor stopping): run the program's before_reload
    hooks (close connections, flush files), then end as the signal would have."""
    signal.signal(signum, signal.SIG_DFL)
    before_exit()
    os.kill(os.getpid(), signum)


def _end_by_sigint() -> None:
    """End as python does after an uncaught KeyboardInterrupt: killed by SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    os.kill(os.getpid(), signal.SIGINT)


def _allow_ctrl_c() -> bool:
    """Unblock SIGINT (blocked by the supervisor while relive starts); False when one
    arrived meanwhile: the program must not start."""
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    except KeyboardInterrupt:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m relive._worker``."""
    options = WorkerOptions.from_env(os.environ.pop(WORKER_ENV, None))
    target = Target.parse(sys.argv[1:] if argv is None else argv)
    link = SupervisorLink.connect(options.fd)
    target.prepare_sys()
    support = start_server_support(options)
    # The watcher is left running: threads the program leaves behind when its main code
    # returns keep getting edits, and the process's exit ends the watcher's daemon threads.
    start_watcher(options, target, link, support)
    signal.signal(signal.SIGTERM, _end_after_hooks)
    if link is not None:
        link.send(EVENT_READY, pid=os.getpid())
    if not _allow_ctrl_c() or run_program(target, link):
        _end_by_sigint()


if __name__ == "__main__":
    main()
