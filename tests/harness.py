"""The end-to-end harness the tests share: ``relive run`` in a child process, and the web
servers it runs, requested and loaded.

No tests here. A program runs under ``relive run`` in its own session (:class:`Relive`:
its whole tree is ended in ``finally`` and every pid checked gone); requests go to
127.0.0.1 on a free port, each on a fresh connection so a server closing an idle
keep-alive connection is never mistaken for a failed request. ``conftest.py`` turns
:func:`starting` into the ``start`` fixture.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from relive.testing import wait_until, write_source

START_TIMEOUT = 15.0  # a cold start on a loaded 2-core machine
EVENT_TIMEOUT = 10.0
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EDIT_TIMEOUT = 15.0  # from a save to the new response, on a loaded 2-core machine


def exists(pid: int) -> bool:
    """Whether ``pid`` is still in the process table (running or an unreaped zombie)."""
    return Path(f"/proc/{pid}").exists()


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot; None if there is none): with the pid,
    it names one process, as a pid alone does not once pids wrap."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()
    except OSError:
        return None
    return int(fields[19])


def still_there(pid: int, started: int | None) -> bool:
    """Whether the process ``pid`` that started at ``started`` is still in the process
    table (running or an unreaped zombie), not another one given its pid since."""
    return started is not None and start_time(pid) == started


class Relive:
    """A ``relive run`` started in ``cwd`` in a new session, its output collected by line."""

    def __init__(self, cwd: Path, args: list[str], env: dict[str, str] | None = None) -> None:
        environ = {key: value for key, value in os.environ.items() if key != "RELIVE"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "relive", "run", *args],
            cwd=cwd,
            env={**environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.pids = {self.proc.pid}  # every pid seen: checked gone at the end
        self.orphans: set[int] = set()  # pids left to init on purpose: not checked
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout)),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr)),
        ]
        for index, reader in enumerate(self._readers):
            reader.name, reader.daemon = f"test-relive-reader-{index}", True
            reader.start()

    @staticmethod
    def _read(stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line.rstrip("\n"))

    def error_text(self) -> str:
        return "\n".join(self.stderr)

    def program_pids(self) -> list[int]:
        """The pids the program printed, one per start, in order."""
        return [int(line.split()[1]) for line in self.stdout if line.startswith("pid ")]

    def wait_for_start(self, count: int, timeout: float = START_TIMEOUT) -> int:
        """Wait for the ``count``-th start of the program; its pid."""
        wait_until(lambda: len(self.program_pids()) >= count or self.proc.poll(), timeout=timeout)
        pids = self.program_pids()
        assert len(pids) >= count, f"start {count} never came; stderr:\n{self.error_text()}"
        self.pids.update(pids)
        return pids[count - 1]

    def wait_for_line(
        self, text: str, *, stream: str = "stdout", timeout: float = EVENT_TIMEOUT
    ) -> str:
        """Wait for a line containing ``text``; that line."""
        lines = self.stdout if stream == "stdout" else self.stderr
        try:
            wait_until(lambda: any(text in line for line in lines), timeout=timeout)
        except TimeoutError:
            pytest.fail(
                f"no {stream} line with {text!r}; stdout={self.stdout} stderr={self.stderr}"
            )
        return next(line for line in lines if text in line)

    def wait_for_exit(self, timeout: float = EVENT_TIMEOUT) -> int:
        """Wait for ``relive run`` to exit and for what it wrote to be read (the readers
        stop at the end of the output: its exit alone does not mean they read it all); its
        exit code."""
        deadline = time.monotonic() + timeout
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:  # a process it left running may keep the pipe open
            reader.join(timeout=max(0.0, deadline - time.monotonic()))
        return code

    def close(self) -> None:
        """End the whole tree (SIGTERM to the supervisor; SIGKILL if it fails), then check
        that every pid seen is gone: exited and reaped."""
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                self.proc.wait(timeout=EVENT_TIMEOUT)
        finally:
            if self.proc.poll() is None:
                for pid in self.pids:  # only after a failure: the groups we know of
                    _kill_group(pid)
            self.proc.wait()
            for reader in self._readers:
                reader.join(timeout=5)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
            self.pids.update(self.program_pids())
        left = self.pids - self.orphans
        wait_until(lambda: not any(exists(pid) for pid in left), timeout=5)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


Start = Callable[..., Relive]


def starting(cwd: Path) -> Iterator[Start]:
    """Body of a ``start`` fixture: ``start(*args, env=None)`` runs ``relive run`` in
    ``cwd``; every server started is ended after the test."""
    started: list[Relive] = []

    def starter(*args: str, env: dict[str, str] | None = None) -> Relive:
        relive = Relive(cwd, list(args), env)
        started.append(relive)
        return relive

    try:
        yield starter
    finally:
        for relive in started:
            relive.close()


def copy_example(name: str, target: Path) -> Path:
    """Copy ``examples/<name>`` into ``target`` (without caches); ``target``."""
    shutil.copytree(
        EXAMPLES / name, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def request(port: int, path: str = "/", *, timeout: float = 10.0) -> Response:
    """One GET on a fresh connection to 127.0.0.1:``port``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        body = answer.read().decode()
        headers = {name.lower(): value for name, value in answer.getheaders()}
        return Response(answer.status, headers, body)
    finally:
        connection.close()


def wait_for_server(relive: Relive, port: int, path: str = "/") -> Response:
    """Wait until the server answers ``path`` with 200; that response. Fails with the
    server's output if it exits or never answers."""
    answers: list[Response] = []

    def answered() -> bool:
        if relive.proc.poll() is not None:
            return True
        try:
            answers.append(request(port, path, timeout=2))
        except OSError:
            return False
        return answers[-1].status == 200

    with contextlib.suppress(TimeoutError):  # the assertion says what happened
        wait_until(answered, timeout=START_TIMEOUT, interval=0.05)
    assert answers and answers[-1].status == 200, (
        f"server never answered; stdout={relive.stdout} stderr={relive.stderr}"
    )
    return answers[-1]


def wait_for_answer(port: int, path: str, condition: Callable[[Response], bool]) -> Response:
    """Request ``path`` until the answer meets ``condition``; that answer."""
    seen: list[Response] = []

    def met() -> bool:
        try:
            seen.append(request(port, path))
        except (OSError, http.client.HTTPException):
            # No server yet, or one a restart ended while it answered (the response cut
            # short: http.client.IncompleteRead): not an answer yet.
            return False
        return condition(seen[-1])

    try:
        wait_until(met, timeout=EDIT_TIMEOUT, interval=0.02)
    except TimeoutError:
        raise AssertionError(f"no answer met the condition; last: {seen[-1:]}") from None
    return seen[-1]


@dataclass
class Load:
    """Steady, bounded load: ``threads`` clients, each sending a request, then pausing.

    Every outcome is recorded: ``responses`` (status 200, parsed by ``parse``) and
    ``failures`` (anything else: a connection error, a timeout, another status).
    """

    port: int
    path: str = "/"
    threads: int = 3
    pause: float = 0.01
    parse: Callable[[Response], dict[str, Any]] = lambda response: response.json()
    responses: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, name=f"test-load-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(15)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                response = request(self.port, self.path)
                outcome = self.parse(response) if response.status == 200 else None
                problem = None if outcome is not None else f"status {response.status}"
            except Exception as exc:
                outcome, problem = None, f"{type(exc).__name__}: {exc}"
            with self._lock:
                if outcome is not None:
                    self.responses.append(outcome)
                else:
                    self.failures.append(problem or "?")
            time.sleep(self.pause)

    def wait_for(self, key: str, value: object) -> None:
        """Wait until some response has ``response[key] == value``."""
        checked = 0

        def seen() -> bool:
            nonlocal checked
            with self._lock:
                fresh = self.responses[checked:]
                checked += len(fresh)
            return any(response.get(key) == value for response in fresh)

        try:
            wait_until(seen, timeout=EDIT_TIMEOUT, interval=0.005)
        except TimeoutError:
            raise AssertionError(
                f"{key}={value!r} never served; failures={self.failures[-5:]}"
                f" last={self.responses[-1:]}"
            ) from None


def served_pid(response: Response) -> int:
    """The pid of the server process that answered (the example apps send it)."""
    return int(response.headers["x-served-by"].rsplit(" ", 1)[1])


def served_by_another(pid: int) -> Callable[[Response], bool]:
    """A condition for :func:`wait_for_answer`: a complete response from a process other
    than ``pid``. A restart ends the old server, and a response it had begun can be cut
    after its status line (no headers at all): that one is not an answer yet."""
    return lambda response: bool(response.headers) and served_pid(response) != pid


def assert_served_live(
    load: Load,
    first: dict[str, Any],
    relive: Relive,
    kinds: tuple[str, ...],
    field: dict[str, str],
    edits: int = 50,
) -> None:
    """What issue 4 promises for edits under load, checked on every response.

    No request failed; one process served them all with its module state (boot token, hit
    counter) intact; no request saw half an edit; every edit of every kind was served; and
    relive never restarted the server.
    """
    responses = load.responses
    assert load.failures == []
    assert len(responses) > 100
    assert {r["pid"] for r in responses} == {first["pid"]}, "the server restarted"
    assert {r["boot"] for r in responses} == {first["boot"]}, "module state was reset"
    hits = [r["hit"] for r in responses]
    assert len(set(hits)) == len(hits), "the hit counter started again"
    assert all(r["first"] == r["second"] for r in responses), "a request saw half an edit"
    for kind in kinds:
        served = {r[field[kind]] for r in responses}
        expected = {v for v in range(1, edits + 1) if kinds[v % len(kinds)] == kind}
        assert expected <= served, f"{kind} edits not served: {expected - served}"
    assert not any("restarting" in line for line in relive.stderr)
    assert exists(first["pid"])


@dataclass(frozen=True)
class EditsUnderLoad:
    """Issue 4's headline scenario for one framework: edits saved while clients keep asking.

    ``files`` are templates whose ``V_<KIND>`` markers hold the current version of each kind
    of edit; edit number ``v`` changes kind ``kinds[v % len(kinds)]`` in the file
    ``where[kind]``, and the response field ``field[kind]`` shows which version served it.
    """

    files: dict[str, str]
    kinds: tuple[str, ...]
    where: dict[str, str]
    field: dict[str, str]
    parse: Callable[[Response], dict[str, Any]]

    def write(self, root: Path, values: dict[str, int], only: str | None = None) -> None:
        """Write the templates (or only one) with ``values`` filled in."""
        for name, template in self.files.items():
            if only is not None and name != only:
                continue
            text = template
            for kind, value in values.items():
                text = text.replace(f"V_{kind}", str(value))
            write_source(root / name, text, dedent=False)

    def run(
        self,
        root: Path,
        start: Start,
        command: Callable[[int], list[str]],
        *,
        edits: int = 50,
        threads: int = 3,
        pause: float = 0.01,
    ) -> None:
        """Start ``relive run`` with ``command(port)``, save ``edits`` edits under load,
        and check every response (:func:`assert_served_live`)."""
        values = dict.fromkeys(self.kinds, 0)
        self.write(root, values)
        port = free_port()
        relive = start(*command(port))
        first = wait_for_server(relive, port).json()
        relive.pids.add(first["pid"])
        with Load(port, parse=self.parse, threads=threads, pause=pause) as load:
            for version in range(1, edits + 1):
                kind = self.kinds[version % len(self.kinds)]
                values[kind] = version
                self.write(root, values, only=self.where[kind])
                load.wait_for(self.field[kind], version)
        assert_served_live(load, first, relive, self.kinds, self.field, edits)


_fresh_names = itertools.count()


def fresh_import(module: ModuleType) -> ModuleType:
    """The module's file as it is now, imported anew under another name."""
    name = f"{module.__name__}_fresh_{next(_fresh_names)}"
    spec = importlib.util.spec_from_file_location(name, module.__file__ or "")
    assert spec is not None and spec.loader is not None
    fresh = importlib.util.module_from_spec(spec)
    sys.modules[name] = fresh
    spec.loader.exec_module(fresh)
    return fresh
