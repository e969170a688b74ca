"""``relive run --livereload`` in front of real servers: every WSGI and ASGI app answers
as it does without it, its HTML pages carry the script, and the events stream is served
on the app's own port.

Each test starts the real command (``relive run --livereload ...``) and requests the
server on 127.0.0.1: Flask's debug mode (Werkzeug's debugger starts the response while
its body is iterated), ``app.run(debug=True)``, a raw WSGI app that starts its response
lazily and writes through ``write()``, Django's runserver and FastAPI under uvicorn.
"""

from __future__ import annotations

import html
import http.client
import signal
from pathlib import Path

import pytest

from harness import (
    EVENT_TIMEOUT,
    Start,
    copy_example,
    free_port,
    request,
    wait_for_server,
)
from relive.testing import wait_until, write_source

SCRIPT = b"<script data-relive>"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """The app runs from tmp_path/app (the ``start`` fixture runs ``relive run`` there)."""
    return tmp_path / "app"


def first_event_line(port: int) -> bytes:
    """Open the events stream on the app's own port; its status and first line."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/relive/events")
        response = connection.getresponse()
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        return response.readline()
    finally:
        connection.close()


def assert_page_has_script(port: int, path: str) -> str:
    page = request(port, path)
    assert page.status == 200, page
    assert SCRIPT.decode() in page.body
    assert 'new EventSource("/relive/events")' in page.body
    assert int(page.headers["content-length"]) == len(page.body.encode())
    return page.body


def test_flask_debug_mode_answers_and_its_debugger_page_gets_the_script(
    tmp_path: Path, start: Start
) -> None:
    root = copy_example("flask_app", tmp_path / "app")
    (root / "app.py").write_text(
        (root / "app.py").read_text()
        + '\n\n@app.route("/boom")\ndef boom() -> str:\n    raise KeyError("boom")\n'
    )
    port = free_port()
    relive = start(
        "--livereload", "-m", "flask", "--app", "app", "run", "--debug", "--port", str(port)
    )
    assert wait_for_server(relive, port).json()["visit"] == 1
    assert_page_has_script(port, "/page")
    broken = request(port, "/boom")  # Werkzeug's debugger starts its 500 page lazily
    assert broken.status == 500
    assert "KeyError" in broken.body and SCRIPT.decode() in broken.body
    assert request(port, "/missing").status == 404
    assert first_event_line(port) == b": relive\n"
    assert "IndexError" not in relive.error_text()

    # A refused edit shows over the page, its path as the terminal says it: relative.
    greetings = root / "greetings.py"
    write_source(greetings, greetings.read_text().replace("def greet(", "def greet(("))
    line = relive.wait_for_line("relive: greetings.py:", stream="stderr")
    overlay = request(port, "/page").body.split("data-relive-error", 1)[1]
    assert html.escape(line.removeprefix("relive: ")) in overlay
    assert str(tmp_path) not in overlay


def test_app_run_debug_true_answers(tmp_path: Path, start: Start) -> None:
    root = copy_example("flask_app", tmp_path / "app")
    port = free_port()
    (root / "serve.py").write_text(f"from app import app\n\napp.run(port={port}, debug=True)\n")
    relive = start("--livereload", "serve.py")
    wait_for_server(relive, port)
    assert_page_has_script(port, "/page")
    assert first_event_line(port) == b": relive\n"


RAW_APP = '''\
import sys
from pathlib import Path

from werkzeug.serving import run_simple


class Body:
    """A response iterable that starts the response when iterated, and records close()."""

    def __init__(self, environ, start_response):
        self.environ, self.start_response = environ, start_response

    def __iter__(self):
        kind = "text/html" if self.environ["PATH_INFO"] == "/" else "text/plain"
        write = self.start_response("200 OK", [("Content-Type", kind)])
        write(b"<html><body><p>written</p>")
        yield b"<p>yielded</p></body></html>"

    def close(self):
        Path("closed").write_text(self.environ["PATH_INFO"] + "\\n")


def app(environ, start_response):
    return Body(environ, start_response)


run_simple("127.0.0.1", int(sys.argv[1]), app)
'''


def test_raw_wsgi_app_that_starts_late_and_writes_is_served_whole(
    tmp_path: Path, start: Start
) -> None:
    root = tmp_path / "app"
    root.mkdir()
    (root / "raw.py").write_text(RAW_APP)
    port = free_port()
    relive = start("--livereload", "raw.py", str(port))
    wait_for_server(relive, port)
    wait_until(lambda: (root / "closed").exists())
    body = assert_page_has_script(port, "/")
    assert body.startswith("<html><body><p>written</p><p>yielded</p><script data-relive>")
    plain = request(port, "/text")
    assert plain.status == 200 and SCRIPT.decode() not in plain.body
    assert plain.body == "<html><body><p>written</p><p>yielded</p></body></html>"
    wait_until(lambda: (root / "closed").read_text() == "/text\n")  # close() reached the app


def test_django_runserver_pages_get_the_script(tmp_path: Path, start: Start) -> None:
    copy_example("django_app", tmp_path / "app")
    port = free_port()
    relive = start("--livereload", "manage.py", "runserver", "--noreload", str(port))
    wait_for_server(relive, port)
    assert_page_has_script(port, "/page/")
    assert first_event_line(port) == b": relive\n"


def test_fastapi_html_route_gets_the_script_and_ctrl_c_does_not_wait_for_open_pages(
    tmp_path: Path, start: Start
) -> None:
    copy_example("fastapi_app", tmp_path / "app")
    port = free_port()
    relive = start("--livereload", "--grace", "60", "-m", "uvicorn", "app:app", "--port", str(port))
    first = wait_for_server(relive, port)
    assert first.json()["visit"] == 1
    assert "Hello, FastAPI!" in assert_page_has_script(port, "/page")
    page = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        page.request("GET", "/relive/events")
        stream = page.getresponse()
        assert stream.readline() == b": relive\n"
        relive.proc.send_signal(signal.SIGINT)  # uvicorn waits for open responses to end
        assert relive.wait_for_exit(timeout=EVENT_TIMEOUT) == 130  # not after the 60 s grace
    finally:
        page.close()
