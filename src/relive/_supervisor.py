"""The supervisor: the parent process of ``relive run``; it never imports the user's code.

It runs the program in a child process that leads its own process group (``relive._worker``
for a Python program, the command itself after ``--``), restarts it when it must (the worker
asks, a ``--restart-on`` file changed, a change follows a crash), and forwards Ctrl-C and
SIGTERM to that group so the whole tree ends with it. The worker's channel is described in
``relive._worker``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from relive._filewatch import Batch, FileWatcher, matches
from relive._observers import FORCE_POLLING_ENV
from relive._output import Console, Exited, Restarting, Watching, relative
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
from relive._tree import descendants, end_processes

__all__ = ["DEFAULT_GRACE", "Backoff", "ChangeFilter", "RunConfig", "Supervisor", "run"]

DEFAULT_GRACE = 3.0
QUICK_EXIT = 1.0  # a crash sooner than this after the start counts towards a crash loop
MAX_BACKOFF = 8.0
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class RunConfig:
    """What to run and when to restart it; built by ``relive._cli``.

    Attributes:
        argv: ``[script, *args]`` or ``["-m", module, *args]`` when ``python``, else the
            command to run.
        python: Run ``argv`` in ``relive._worker`` (in-place reload); else as a command.
        label: How the program is named in messages (``app.py``).
        roots: Directories the supervisor watches.
        worker_paths: Directories given with ``--watch``, passed to the in-process watcher.
        restart_on: Globs of files whose change means restart.
        always_restart: Restart on every code change instead of reloading in place.
        livereload: Browser live reload (served on the app's own port).
    """

    argv: tuple[str, ...]
    python: bool = True
    label: str = ""
    roots: tuple[Path, ...] = ()
    worker_paths: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    restart_on: tuple[str, ...] = ()
    always_restart: bool = False
    keep_alive: bool = False
    livereload: bool = False
    grace: float = DEFAULT_GRACE
    quiet: bool = False
    verbose: bool = False


# Events, all handled one at a time by the supervisor's main thread.
@dataclass(frozen=True)
class FilesChanged:
    batch: Batch


@dataclass(frozen=True, eq=False)
class ChildExited:
    child: Child


@dataclass(frozen=True, eq=False)
class WorkerMessage:
    child: Child
    message: dict[str, Any]


@dataclass(frozen=True)
class Signalled:
    signum: int


@dataclass(frozen=True)
class StartDue:
    pass


Event = FilesChanged | ChildExited | WorkerMessage | Signalled | StartDue


@contextlib.contextmanager
def _signals_blocked(signals: tuple[int, ...] = FORWARDED_SIGNALS) -> Iterator[None]:
    """Threads and processes started inside inherit a mask that blocks ``signals`` (by
    default: leaves ours to the main thread)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    with _signals_blocked():
        thread.start()
    return thread


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to process group ``pgid``; False when the group is gone."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a member changed user; it still exists
    return True


def _reap_group(pgid: int) -> None:
    """Reap the members of ``pgid`` that ended as our children (we are their subreaper)."""
    with contextlib.suppress(ChildProcessError):  # none left
        while os.waitpid(-pgid, os.WNOHANG)[0] != 0:
            pass


def _end_group(pgid: int, deadline: float) -> None:
    """End what a group's leader (already reaped) left behind: SIGTERM, SIGKILL at deadline."""
    if not _signal_group(pgid, signal.SIGTERM):
        return
    killed = False
    while True:
        _reap_group(pgid)
        if not _signal_group(pgid, 0):
            return
        if time.monotonic() >= deadline:
            if killed:
                return  # left to init: members that are not our children and will not go
            _signal_group(pgid, signal.SIGKILL)
            killed, deadline = True, time.monotonic() + 1.0
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: reaped here if it is ours)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False
    except OSError:
        return True  # not ours to read or signal, but it exists


def _end_members(pids: set[int], signum: int, deadline: float) -> None:
    """End the program's processes that left its group (a server's workers in their own
    session): ``signum``, then SIGKILL at ``deadline``."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _become_subreaper() -> None:
    """Adopt orphaned descendants (Linux) so they are reaped here, never left as zombies."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # without it, init adopts them
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


class Child:
    """One run of the program: a process leading its own group, and the worker's channel."""

    def __init__(self, config: RunConfig, events: queue.SimpleQueue[Event]) -> None:
        self.started_at = time.monotonic()
        self.in_place = config.python and not config.always_restart
        self.changed = False  # a code change arrived while it ran
        self.not_started = False  # the worker said the program could not start
        self.members: set[int] = set()  # the program's other processes, as the worker said
        self._events = events
        self._sock: socket.socket | None = None
        self._hooks_ran = threading.Event()  # the worker ran the program's before hooks
        self._reader: threading.Thread | None = None
        if config.python:
            self.proc = self._spawn_worker(config)
        else:
            self.proc = subprocess.Popen(config.argv, start_new_session=True)
        self.pid = self.proc.pid
        _start_thread(self._wait, f"relive-wait-{self.pid}")

    def _spawn_worker(self, config: RunConfig) -> subprocess.Popen[bytes]:
        ours, theirs = socket.socketpair()
        options = WorkerOptions(
            fd=theirs.fileno(),
            reload=self.in_place,
            quiet=config.quiet,
            verbose=config.verbose,
            paths=config.worker_paths,
            include=config.include,
            exclude=config.exclude,
            livereload=config.livereload,
        )
        command = [sys.executable, "-m", "relive._worker", *config.argv]
        env = {**os.environ, WORKER_ENV: options.to_env()}
        try:
            # The worker starts with SIGINT blocked and unblocks it when the program starts:
            # a Ctrl-C while relive itself is starting ends it quietly, not in an import.
            with _signals_blocked((signal.SIGINT,)):
                proc = subprocess.Popen(
                    command, start_new_session=True, pass_fds=(theirs.fileno(),), env=env
                )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours
        self._reader = _start_thread(self._read_messages, f"relive-link-{proc.pid}")
        return proc

    def _wait(self) -> None:
        self.proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=1.0)  # its last messages come before its exit
        self._events.put(ChildExited(self))

    def _read_messages(self) -> None:
        assert self._sock is not None
        with self._sock.makefile("rb") as lines:
            for line in lines:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue  # not a line our worker wrote: the program wrote to the socket
                if isinstance(message, dict) and message.get("event") == EVENT_HOOKS_RAN:
                    self._hooks_ran.set()
                elif isinstance(message, dict):
                    self._events.put(WorkerMessage(self, message))

    def stop(self, first_signal: int, grace: float) -> None:
        """End the whole group: ``first_signal``, then SIGKILL after ``grace`` seconds.

        Before SIGTERM, the worker is asked to run the program's before_reload hooks (the
        program's own SIGTERM handler, if it has one, would not run them); the grace
        covers them too.
        """
        deadline = time.monotonic() + grace
        if first_signal == signal.SIGTERM:
            self._run_hooks(deadline)
        _signal_group(self.pid, first_signal)
        self._signal_members(first_signal)
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait()
        self.close(deadline)

    def _run_hooks(self, deadline: float) -> None:
        """Ask the worker to run the before_reload hooks; wait for them until ``deadline``."""
        if self._sock is None:
            return
        try:
            self._sock.sendall(json.dumps({"event": EVENT_ENDING}).encode() + b"\n")
        except OSError:
            return  # the worker is gone already
        while not self._hooks_ran.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() >= deadline:
                return

    def kill(self) -> None:
        """SIGKILL the whole group now."""
        _signal_group(self.pid, signal.SIGKILL)
        self._signal_members(signal.SIGKILL)

    def _signal_members(self, signum: int) -> None:
        for pid in self._members_outside():
            with contextlib.suppress(OSError):
                os.kill(pid, signum)

    def _members_outside(self) -> set[int]:
        """The program's processes that are not in the group of its first process."""
        outside = set()
        for pid in self.members:
            with contextlib.suppress(OSError):
                if os.getpgid(pid) != self.pid:
                    outside.add(pid)
        return outside

    def close(self, deadline: float) -> None:
        """After the leader ended: end the rest of its group, the program's processes outside
        it (members, and every process it started in a session of its own, adopted here),
        close the channel."""
        outside = self._members_outside()
        _end_group(self.pid, deadline)
        _end_members(outside, signal.SIGTERM, deadline)
        end_processes(descendants(os.getpid()), deadline)
        if self._sock is not None:
            with contextlib.suppress(OSError):  # already shut down by the worker's exit
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()


class Backoff:
    """Delays restarts while the program keeps dying right after it starts."""

    def __init__(self) -> None:
        self._quick_crashes = 0

    def record(self, lifetime: float, *, crashed: bool) -> None:
        """Note how a run ended: a quick crash extends the streak, anything else ends it."""
        self._quick_crashes = self._quick_crashes + 1 if crashed and lifetime < QUICK_EXIT else 0

    def delay(self) -> float:
        """Seconds to wait before the next start: none for a first crash, then doubling."""
        if self._quick_crashes < 2:
            return 0.0
        return float(min(0.5 * 2 ** (self._quick_crashes - 2), MAX_BACKOFF))


class ChangeFilter:
    """What a batch of changed files means: a restart trigger, a code change, or nothing."""

    def __init__(self, config: RunConfig) -> None:
        self._restart_on = config.restart_on
        self._cwd = Path.cwd()

    def classify(self, batch: Batch) -> tuple[Path | None, Path | None]:
        """The first path matching ``--restart-on``, and the first other one (code).

        The watcher has already dropped what is neither (``watch_files``'s globs)."""
        restart = code = None
        for path in sorted(batch.changed | batch.removed):
            if self._restart_on and matches(path, self._restart_on, (), root=self._cwd):
                restart = restart or path
            else:
                code = code or path
        return restart, code


def watch_files(config: RunConfig, on_batch: Callable[[Batch], None]) -> FileWatcher:
    """Start watching what can trigger a restart: code (or, for a command, every file not
    excluded) and the ``--restart-on`` globs, under ``config.roots``."""
    include = (*config.include, *config.restart_on)
    if config.python:
        include = ("*.py", *include)
    elif not config.include:
        include = ()  # a command: every file is a trigger
    watcher = FileWatcher(
        config.roots, on_batch, include=include, exclude=config.exclude, name="relive-supervisor"
    )
    with _signals_blocked():  # its threads leave our signals to the main thread
        watcher.start()
    return watcher


class Supervisor:
    """Runs the program, restarts it when it must, and ends its whole tree on a signal."""

    def __init__(self, config: RunConfig, output: Console | None = None) -> None:
        self.config = config
        self.output = output or Console(quiet=config.quiet, verbose=config.verbose)
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._filter = ChangeFilter(config)
        self._backoff = Backoff()
        self._child: Child | None = None
        self._stopping: Child | None = None
        self._start_timer: threading.Timer | None = None
        self._said_no_reload = False
        self._starts = 0  # how many times the program was started
        self._exiting = False  # a stop signal arrived: start nothing more

    def run(self) -> int:
        """Run until the program exits cleanly or a signal arrives; the exit code."""
        _become_subreaper()
        previous = {signum: signal.signal(signum, self._on_signal) for signum in FORWARDED_SIGNALS}
        watching = watch_files(self.config, self._on_files)
        if watching.backend == "polling":  # said once here: the worker polls without a word
            os.environ[FORCE_POLLING_ENV] = "1"
        self.output.emit(Watching(f"supervisor {watching.describe()}"))
        try:
            self._start_child()
            return self._loop()
        finally:
            self._cancel_start()
            if self._child is not None:
                self._stop_child(signal.SIGTERM)
            watching.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _loop(self) -> int:
        while True:
            code = self._handle(self._events.get())
            if code is not None:
                return code

    def _handle(self, event: Event) -> int | None:
        match event:
            case Signalled(signum):
                return self._on_stop_signal(signum)
            case ChildExited(child) if child is self._child:
                return self._on_exit(child)
            case WorkerMessage(child, message) if child is self._child:
                self._on_message(child, message)
            case FilesChanged(batch):
                self._on_change(batch)
            case StartDue() if self._child is None:
                self._start_child()
        return None

    # Called from other threads or signal handlers: they only queue events.
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._exiting = True
        stopping = self._stopping
        if stopping is not None:
            stopping.kill()  # asked again while the child is ending: do not wait out the grace
        self._events.put(Signalled(signum))

    def _on_files(self, batch: Batch) -> None:
        self._events.put(FilesChanged(batch))

    # Handlers, on the main thread.
    def _on_stop_signal(self, signum: int) -> int:
        if self._child is not None:
            self._stop_child(signum)
        return 128 + signum

    def _on_exit(self, child: Child) -> int | None:
        self._child = None
        child.close(time.monotonic() + self.config.grace)
        code = child.proc.returncode
        assert code is not None, "the waiter thread reaped it"
        if code == 0 and not self.config.keep_alive:
            return 0
        if self._not_started(child):
            return code
        self._backoff.record(time.monotonic() - child.started_at, crashed=code != 0)
        label = self.config.label
        if child.changed:
            self.output.emit(Exited(label, code, "files changed since it started: restarting"))
            self._schedule_start()
        else:
            self.output.emit(Exited(label, code, "waiting for a change to restart"))
        return None

    def _not_started(self, child: Child) -> bool:
        """Whether to end as ``python`` would: the first run could not start at all and no
        file changed since (unless ``--keep-alive``)."""
        if not child.not_started or child.changed or self._starts > 1:
            return False
        if self.config.keep_alive:
            return False
        self.output.warn(
            f"{self.config.label} could not start; exiting (--keep-alive waits for a change)"
        )
        return True

    def _on_message(self, child: Child, message: dict[str, Any]) -> None:
        event, reason = message.get("event"), str(message.get("reason", ""))
        if event == EVENT_RESTART:
            self._restart(reason or "an edit needs it")
        elif event == EVENT_NO_RELOAD:
            child.in_place = False
            if not self._said_no_reload:
                self._said_no_reload = True
                self.output.warn(f"in-place reload unavailable ({reason}); restarting on changes")
        elif event == EVENT_NOT_STARTED:
            child.not_started = True
        elif event == EVENT_MEMBER and isinstance(message.get("pid"), int):
            child.members.add(message["pid"])
            self.output.detail(f"process {message['pid']} joined the edits")
        elif event == EVENT_READY:
            self.output.detail(f"{self.config.label} (pid {child.pid}) ready")

    def _on_change(self, batch: Batch) -> None:
        restart_path, code_path = self._filter.classify(batch)
        trigger = restart_path or code_path
        if trigger is None:
            return
        reason = f"{relative(trigger)} changed"
        child = self._child
        if child is None:
            if self._start_timer is None:
                self.output.emit(Restarting(reason))
            self._schedule_start()
        elif restart_path is not None or not child.in_place:
            self._restart(reason)
        else:
            child.changed = True  # applied in place by the worker; noted for a crash

    # Starting and stopping.
    def _restart(self, reason: str) -> None:
        self.output.emit(Restarting(reason))
        if self._child is not None:
            self._stop_child(signal.SIGTERM)
        self._start_child()

    def _start_child(self) -> None:
        self._cancel_start()
        if self._exiting:
            return
        try:
            self._child = Child(self.config, self._events)
            self._starts += 1
        except OSError as exc:
            self.output.warn(f"cannot start {self.config.label}: {exc}; waiting for a change")
            return
        self.output.detail(f"started {self.config.label} (pid {self._child.pid})")

    def _stop_child(self, first_signal: int) -> None:
        child, self._child = self._child, None
        assert child is not None
        self._stopping = child
        try:
            child.stop(first_signal, self.config.grace)
        finally:
            self._stopping = None
        self._backoff.record(time.monotonic() - child.started_at, crashed=False)

    def _schedule_start(self) -> None:
        if self._start_timer is not None:
            return  # already due: this change will be part of that start
        delay = self._backoff.delay()
        if delay <= 0:
            self._start_child()
            return
        self.output.warn(f"{self.config.label} keeps failing; restarting in {delay:.1f} s")
        timer = threading.Timer(delay, self._events.put, args=(StartDue(),))
        timer.name, timer.daemon = "relive-start-timer", True
        with _signals_blocked():
            timer.start()
        self._start_timer = timer

    def _cancel_start(self) -> None:
        if self._start_timer is not None:
            self._start_timer.cancel()
            self._start_timer = None


def run(config: RunConfig) -> int:
    """Run ``config``'s program under a supervisor; its exit code (128+N after signal N)."""
    return Supervisor(config).run()
