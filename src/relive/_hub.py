"""The coordinator of a program's processes: the process that watches tells the others.

Under ``relive run``, the worker process owns a Unix socket; every other Python process of
the program (forked or spawned, see ``relive._member``) connects to it. Each batch of
changed files becomes one round: the texts are read once, here, and sent to every member;
each process (this one included) applies them up to the engine's commit point and votes;
all commit, or all roll back. The round is reported once, for the whole program.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from relive._engine import ModuleReport, Report, get_engine
from relive._errors import ReloadError
from relive._family import (
    Channel,
    Message,
    Participant,
    bind_address,
    error_from_record,
    error_record,
    new_address,
)
from relive._member import arm, gated_by, hub_environment
from relive._sources import read_source

if TYPE_CHECKING:
    from relive._integrations.servers import ServerSupport

__all__ = ["VOTE_TIMEOUT", "Hub", "start_hub"]

VOTE_TIMEOUT = 15.0  # seconds a member may take to prepare (its requests drain first)
DONE_TIMEOUT = 5.0  # seconds a member may take to commit once told to
HELLO_TIMEOUT = 5.0

ApplyChanges = Callable[[set[str]], tuple[Report, list[ReloadError]]]


def module_from_record(record: Message) -> ModuleReport:
    """The module report a record stands for."""
    return ModuleReport(
        name=str(record["name"]),
        path=str(record["path"]),
        patched=tuple(record["patched"]),
        added=tuple(record["added"]),
        removed=tuple(record["removed"]),
        executed=tuple(record["executed"]),
        rebound=tuple(record["rebound"]),
        dependent=bool(record["dependent"]),
    )


@dataclass(frozen=True)
class FamilyReport(Report):
    """What one edit did across the processes of the program.

    Attributes:
        processes: How many processes changed their code with this edit.
    """

    processes: int = 1

    def summary(self) -> str:
        """``handlers.py: 1 patched in 4 processes in 6.1 ms``."""
        if not self.modules or self.processes <= 1:
            return super().summary()
        body = "; ".join(module.summary() for module in self.modules)
        return f"{body} in {self.processes} processes in {self.duration * 1000:.1f} ms"


def _read_texts(paths: Iterable[str]) -> dict[str, str | None]:
    texts: dict[str, str | None] = {}
    for path in paths:
        try:
            texts[path] = read_source(path)
        except (OSError, UnicodeDecodeError, SyntaxError):
            texts[path] = None
    return texts


class _Round:
    """One edit across the members: their votes, the decision, their reports."""

    def __init__(self, number: int, members: dict[int, Channel]) -> None:
        self.number = number
        self.members = members
        self.refusals: list[tuple[int, Message]] = []
        self.ready: list[int] = []  # members that voted yes and wait for the decision
        self.gone: list[int] = []
        self.decided = False

    def prepare(self, texts: dict[str, str | None]) -> None:
        message = {"op": "prepare", "round": self.number, "texts": texts}
        for pid, channel in self.members.items():
            if not channel.send(message):
                self.gone.append(pid)

    def _next(self, pid: int, op: str, deadline: float) -> Message | None:
        """The member's next ``op`` message of this round; None when it is gone."""
        channel = self.members[pid]
        while True:
            message = channel.receive(max(0.0, deadline - time.monotonic()))
            if message is None:
                return None
            if message.get("op") == op and message.get("round") == self.number:
                return message

    def collect_votes(self) -> None:
        deadline = time.monotonic() + VOTE_TIMEOUT
        for pid in self.members:
            if pid in self.gone:
                continue
            try:
                vote = self._next(pid, "vote", deadline)
            except TimeoutError:
                late = {"message": f"no answer within {VOTE_TIMEOUT:g} s", "restart": False}
                self.refusals.append((pid, late))
                self.ready.append(pid)  # it gets the decision when it votes
                continue
            if vote is None:
                self.gone.append(pid)
            elif vote.get("ok"):
                self.ready.append(pid)
            else:
                self.refusals.append((pid, vote.get("error") or {}))

    def decide(self, commit: bool) -> None:
        self.decided = commit
        for pid in self.ready:
            self.members[pid].send({"op": "decide", "round": self.number, "commit": commit})

    def collect_done(self) -> tuple[list[Message], list[tuple[int, Message]]]:
        """The members' reports, and the errors they met after committing."""
        deadline = time.monotonic() + DONE_TIMEOUT
        done: list[Message] = []
        errors: list[tuple[int, Message]] = []
        for pid in self.ready:
            try:
                message = self._next(pid, "done", deadline)
            except TimeoutError:
                continue
            if message is None:
                self.gone.append(pid)
            elif message.get("error"):
                errors.append((pid, message["error"]))
            else:
                done.append(message)
        return done, errors


def _one_error(refusals: list[tuple[int, Message]], *, applied: bool = False) -> ReloadError:
    """One error for the whole program: a plain refusal before a restart, naming the
    processes that said it."""
    plain = [(pid, record) for pid, record in refusals if not record.get("restart")]
    first_pid, first = (plain or refusals)[0]
    same = sorted(pid for pid, record in refusals if record == first)
    where = f"process {first_pid}" if len(same) == 1 else f"{len(same)} processes"
    outcome = "" if applied else "; no process applied it"
    return error_from_record(first, f" (in {where}{outcome})")


@final
class Hub:
    """Listens for the program's other processes and runs each edit as one round.

    Args:
        participant: How this process applies a round.
        single: What applies a batch while no other process is connected (the watcher's
            own way: a broken file held back, the others applied).
        on_member: Told the pid of each process that joins.
        verbose: Say how long versions were mixed across processes.
    """

    def __init__(
        self,
        participant: Participant,
        single: ApplyChanges,
        *,
        on_member: Callable[[int], None] | None = None,
        verbose: bool = False,
    ) -> None:
        self.participant = participant
        self.address = new_address()
        self.last_window: float | None = None  # seconds between first and last commit
        self._single = single
        self._on_member = on_member
        self._verbose = verbose
        self._members: dict[int, Channel] = {}
        self._lock = threading.Lock()
        self._pending: set[str] = set()  # paths of refused rounds: part of the next one
        self._round = 0
        self.committed = 0  # the last round committed (a forked child knows it from here)
        self._latest: dict[str, tuple[int, str | None]] = {}  # path: round, text committed
        self._editing = threading.Lock()  # held by a round; a member joins between rounds
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(bind_address(self.address))
        self._listener.listen(64)
        self._listener.set_inheritable(False)
        self._owner = os.getpid()

    def start(self) -> Hub:
        """Accept members from now on."""
        threading.Thread(target=self._accept, name="relive-hub", daemon=True).start()
        return self

    def members(self) -> list[int]:
        """The pids of the connected members."""
        with self._lock:
            return sorted(self._members)

    def forget(self) -> None:
        """In a forked child: close the inherited copies of the hub's sockets. Takes no
        lock: a thread of the parent may have held one at the fork, and it is not here."""
        members, self._members = self._members, {}
        self._lock = threading.Lock()
        self._editing = threading.Lock()
        for channel in members.values():
            channel.close()
        self._listener.close()
        if not self.address.startswith("@") and os.getpid() == self._owner:
            os.unlink(self.address)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return  # closed
            channel = Channel(sock)
            try:
                hello = channel.receive(HELLO_TIMEOUT)
            except TimeoutError:
                hello = None
            if hello is None or not isinstance(hello.get("pid"), int):
                channel.close()
                continue
            self._join(hello, channel)

    def _join(self, hello: Message, channel: Channel) -> None:
        """Between rounds: a forked child gets the texts committed since its fork (a
        spawned one reads the files), then takes part in the next round."""
        known = hello.get("round")
        with self._editing:
            texts = {}
            if isinstance(known, int):
                texts = {path: text for path, (n, text) in self._latest.items() if n > known}
            channel.send({"op": "catch-up", "round": self.committed, "texts": texts})
            with self._lock:
                self._members[hello["pid"]] = channel
        if self._on_member is not None:
            self._on_member(hello["pid"])

    def _record(self, texts: dict[str, str | None]) -> None:
        """Round ``self._round`` committed ``texts``."""
        for path, text in texts.items():
            self._latest[path] = (self._round, text)
        self.committed = self._round

    # -- one edit -----------------------------------------------------------------------

    def apply_changes(self, changed: set[str]) -> tuple[Report, list[ReloadError]]:
        """Apply a batch of changed files (real paths) in every process of the program."""
        with self._editing:
            return self._apply_changes(changed)

    def _apply_single(self, paths: set[str]) -> tuple[Report, list[ReloadError]]:
        """No other process: this one applies as a lone watcher does."""
        self._pending.clear()
        report, errors = self._single(paths)
        if report:
            engine = self.participant.engine
            self._round += 1
            self._record(
                {
                    module.path: getattr(engine.tracked_module(module.name), "source", None)
                    for module in report.modules
                }
            )
        return report, errors

    def _apply_changes(self, changed: set[str]) -> tuple[Report, list[ReloadError]]:
        with self._lock:
            members = dict(self._members)
        paths = changed | self._pending
        if not members:
            return self._apply_single(paths)
        try:
            report = self._run_round(paths, members)
        except ReloadError as exc:
            held = self._pending - changed
            if not held or exc.path not in held:
                self._pending = paths
                return Report(), [exc]
            # A file refused earlier is still refused: it is held back, the others apply.
            return self._hold_back(held, changed, members, exc)
        self._pending.clear()
        return report, []

    def _hold_back(
        self,
        held: set[str],
        changed: set[str],
        members: dict[int, Channel],
        refusal: ReloadError,
    ) -> tuple[Report, list[ReloadError]]:
        try:
            report = self._run_round(changed, members)
        except ReloadError as exc:
            self._pending = held | changed
            return Report(), [refusal, exc]
        self._pending = held
        return report, [refusal]

    def _run_round(self, paths: set[str], members: dict[int, Channel]) -> Report:
        started = time.perf_counter()
        self._round += 1
        texts = _read_texts(sorted(paths))
        edit = _Round(self._round, members)
        edit.prepare(texts)

        def confirm() -> bool:
            edit.collect_votes()
            edit.decide(not edit.refusals)
            if edit.refusals:
                raise _one_error(edit.refusals)
            return True

        try:
            local = self.participant.apply(texts, confirm)
        except ReloadError as exc:
            self._drop(edit.gone)
            if edit.decided:  # committed everywhere; this process's rules want more
                self._record(texts)
                self._finish(edit, Report(), started)
                raise
            if not edit.ready and not edit.refusals:  # refused here, before the vote
                edit.collect_votes()
                edit.decide(False)
                raise _one_error([(os.getpid(), error_record(exc)), *edit.refusals]) from exc
            raise
        self._record(texts)
        return self._finish(edit, local, started)

    def _finish(self, edit: _Round, local: Report, started: float) -> Report:
        done, errors = edit.collect_done()
        self._drop(edit.gone)
        modules: dict[str, ModuleReport] = {module.name: module for module in local.modules}
        processes = 1 if local else 0
        commits = [self.participant.committed_at] if local else []
        for message in done:
            reported = [module_from_record(record) for record in message.get("modules", [])]
            if reported:
                processes += 1
                commits.append(float(message.get("committed_at", 0.0)))
            for module in reported:
                modules.setdefault(module.name, module)
        self.last_window = max(commits) - min(commits) if len(commits) > 1 else None
        if errors:
            raise _one_error(errors, applied=True)
        report = FamilyReport(tuple(modules.values()), time.perf_counter() - started, processes)
        if self._verbose and self.last_window is not None:
            print(
                f"relive: versions mixed across processes for {self.last_window * 1000:.1f} ms",
                file=sys.stderr,
                flush=True,
            )
        return report

    def _drop(self, pids: Iterable[int]) -> None:
        with self._lock:
            for pid in pids:
                channel = self._members.pop(pid, None)
                if channel is not None:
                    channel.close()


def start_hub(
    support: ServerSupport | None,
    *,
    on_member: Callable[[int], None] | None = None,
    verbose: bool = False,
) -> Hub:
    """Start the hub in the process that watches (``relive run``'s worker): the processes
    it forks or spawns from now on join every edit (``relive._member``).

    Raises:
        OSError: The hub's socket could not be set up.
    """
    engine = get_engine()
    gated = gated_by(support) if support is not None else None
    participant = Participant(lambda: engine, gated)

    def single(changed: set[str]) -> tuple[Report, list[ReloadError]]:
        if support is None:
            return engine.apply_changes(changed)
        try:
            return support.apply_paths(changed), []
        except ReloadError as exc:
            return Report(), [exc]

    hub = Hub(participant, single, on_member=on_member, verbose=verbose).start()
    os.environ.update(hub_environment(hub.address))
    arm(hub.address, participant, hub=hub)
    return hub
