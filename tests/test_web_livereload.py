"""``relive run --livereload``: an open page reloads itself after each edit.

The snippet and the events endpoint are checked in-process; then a real headless Chromium
keeps the Flask example's page open while code, a template and the app itself are
edited, and the server counts the page's loads. Chromium runs in its own session and its
whole process group is ended in ``finally``, every pid checked gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import (
    EVENT_TIMEOUT,
    Start,
    copy_example,
    free_port,
    request,
    served_pid,
    wait_for_answer,
    wait_for_server,
)
from relive._errors import ReloadError
from relive._integrations.livereload import LiveReload, LiveReloadASGI, LiveReloadWSGI
from relive.testing import wait_until, write_source

PAGE = b"<html><body><h1>hi</h1></body></html>"


@pytest.fixture
def live() -> Iterator[LiveReload]:
    server = LiveReload()
    try:
        yield server
    finally:
        server.stop()


# The snippet and the endpoint, in-process ------------------------------------------------


def test_html_gets_the_script_before_body_end_and_a_right_length(live: LiveReload) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        kind = "text/html; charset=utf-8" if environ["PATH_INFO"] == "/" else "text/plain"
        start_response("200 OK", [("Content-Type", kind), ("Content-Length", "38")])
        return [PAGE]

    started: list[Any] = []
    wrapped = LiveReloadWSGI(app, live)
    body = b"".join(wrapped({"PATH_INFO": "/"}, lambda *args: started.append(args)))
    assert body.startswith(b"<html><body><h1>hi</h1><script data-relive>")
    assert body.endswith(b"</script></body></html>")
    assert b'new EventSource("/relive/events")' in body
    assert ("Content-Length", str(len(body))) in started[0][1]

    plain = b"".join(wrapped({"PATH_INFO": "/text"}, lambda *args: None))
    assert plain == PAGE  # not HTML: untouched


def test_asgi_html_is_injected_and_an_error_shows_as_an_overlay(live: LiveReload) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/html"), (b"content-length", b"38")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": PAGE[:10], "more_body": True})
        await send({"type": "http.response.body", "body": PAGE[10:]})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    live.notify(ReloadError("SyntaxError: invalid syntax", path="app.py", lineno=3))
    asyncio.run(LiveReloadASGI(app, live)({"type": "http"}, None, send))  # type: ignore[arg-type]
    body = sent[1]["body"]
    assert b"data-relive-error" in body and b"app.py:3: SyntaxError: invalid syntax" in body
    assert (b"Content-Length", str(len(body)).encode()) in sent[0]["headers"]


def test_events_stream_sends_a_reload_per_edit_and_ends_when_relive_stops(
    live: LiveReload,
) -> None:
    started: list[Any] = []
    app = LiveReloadWSGI(lambda environ, start_response: [], live)
    stream = app({"PATH_INFO": "/relive/events"}, lambda *args: started.append(args))
    chunks = iter(stream)
    assert started[0][0] == "200 OK"
    assert next(chunks) == b": relive\n\n"
    assert live.clients == 1
    live.notify()
    assert next(chunks) == b'event: reload\ndata: {"error": null}\n\n'
    live.stop()
    assert list(chunks) == []
    stream.close()  # type: ignore[attr-defined]
    assert live.clients == 0


# A real browser --------------------------------------------------------------------------

BROWSER_TIMEOUT = 20.0  # an edit to the page's reload, with Chromium on a loaded machine
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """The app runs from tmp_path/app (the ``start`` fixture runs ``relive run`` there)."""
    return tmp_path / "app"


def group_members(pgid: int) -> set[int]:
    members = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:
                    members.add(int(entry.name))
    return members


@contextlib.contextmanager
def chromium(url: str, profile: Path) -> Iterator[subprocess.Popen[bytes]]:
    assert CHROMIUM is not None
    proc = subprocess.Popen(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        seen = group_members(proc.pid) | {proc.pid}
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        wait_until(lambda: not group_members(proc.pid), timeout=EVENT_TIMEOUT)
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in seen), timeout=10)


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
def test_an_open_page_reloads_after_code_template_error_and_restart(
    tmp_path: Path, start: Start
) -> None:
    root = copy_example("flask_app", tmp_path / "app")
    port = free_port()
    relive = start("--livereload", "-m", "flask", "--app", "app", "run", "--port", str(port))
    first = wait_for_server(relive, port)
    relive.pids.add(int(first.headers["x-served-by"].rsplit(" ", 1)[1]))

    def loads() -> int:  # the browser's page loads, as Werkzeug logs them
        return sum('"GET /page?browser HTTP/1.1" 200' in line for line in relive.stderr)

    def listening(count: int) -> bool:
        """The page was loaded ``count`` times, and its events stream is open (Werkzeug logs
        a stream once it is listening)."""
        opened = sum('"GET /relive/events HTTP/1.1" 200' in line for line in relive.stderr)
        return loads() == count and opened == count

    with chromium(f"http://127.0.0.1:{port}/page?browser", tmp_path / "profile"):
        wait_until(lambda: listening(1), timeout=30)

        greetings = root / "greetings.py"
        write_source(greetings, greetings.read_text().replace("Hello", "Hi"))
        wait_until(lambda: listening(2), timeout=BROWSER_TIMEOUT)

        template = root / "templates" / "page.html"
        write_source(template, template.read_text().replace("<h1>", "<h1 class='x'>"))
        wait_until(lambda: listening(3), timeout=BROWSER_TIMEOUT)

        write_source(greetings, greetings.read_text().replace("def greet(", "def greet(("))
        wait_until(lambda: listening(4), timeout=BROWSER_TIMEOUT)
        assert "data-relive-error" in request(port, "/page").body  # what the page now shows

        write_source(greetings, greetings.read_text().replace("def greet((", "def greet("))
        wait_until(lambda: listening(5), timeout=BROWSER_TIMEOUT)
        assert "data-relive-error" not in request(port, "/page").body

        app = root / "app.py"
        write_source(app, app.read_text().replace("app = Flask(__name__)", "app = Flask('app')"))
        relive.wait_for_line("relive: restarting: ", stream="stderr")
        restarted = wait_for_answer(port, "/", lambda r: r.json()["visit"] == 1)
        relive.pids.add(int(restarted.headers["x-served-by"].rsplit(" ", 1)[1]))
        wait_until(lambda: loads() >= 6, timeout=30)  # reconnected to the new server: reloaded


class Forwarder:
    """A TCP port forwarded to the app's port, as ``ssh -L`` or a container runtime does:
    the browser knows this port only."""

    def __init__(self, target: int) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self._target = target
        self._sockets: list[socket.socket] = [self.server]
        self._thread = threading.Thread(target=self._accept, name="test-forwarder", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(("127.0.0.1", self._target))
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), name="test-pump", daemon=True
                ).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
def test_a_page_behind_a_forwarded_port_reloads_after_an_edit(tmp_path: Path, start: Start) -> None:
    root = copy_example("flask_app", tmp_path / "app")
    port = free_port()
    relive = start("--livereload", "-m", "flask", "--app", "app", "run", "--port", str(port))
    server = served_pid(wait_for_server(relive, port))
    relive.pids.add(server)
    assert listening_ports(server) == {port}  # live reload needs no port of its own
    forwarded = Forwarder(port)
    try:

        def listening(count: int) -> bool:
            loads = sum('"GET /page?forwarded HTTP/1.1" 200' in line for line in relive.stderr)
            opened = sum('"GET /relive/events HTTP/1.1" 200' in line for line in relive.stderr)
            return loads == count and opened == count

        with chromium(f"http://127.0.0.1:{forwarded.port}/page?forwarded", tmp_path / "p"):
            wait_until(lambda: listening(1), timeout=30)
            greetings = root / "greetings.py"
            write_source(greetings, greetings.read_text().replace("Hello", "Hi"))
            wait_until(lambda: listening(2), timeout=BROWSER_TIMEOUT)
    finally:
        forwarded.close()


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (its sockets, matched by inode)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
