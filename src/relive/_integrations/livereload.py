"""Browser live reload (``relive run --livereload``): open pages reload after each edit.

A small server-sent-events endpoint, bound to 127.0.0.1 only, on a port the supervisor
keeps across restarts, tells connected pages to reload after each applied edit (code,
template, static file). Middleware around the served app adds a short script to HTML
responses that listens to it; while the last edit failed, HTML responses also carry an
overlay with the error (file, line, message).
"""

from __future__ import annotations

import contextlib
import html
import json
import queue
import re
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, final

from relive._errors import ReloadError
from relive._integrations.asgi import ASGIApp, Message, Receive, Scope, Send
from relive._integrations.wsgi import WSGIApp

__all__ = ["EVENTS_PATH", "LiveReload", "LiveReloadASGI", "LiveReloadWSGI"]

EVENTS_PATH: Final = "/relive/events"
KEEP_ALIVE: Final = 15.0  # seconds between comments that keep an idle stream open

_SCRIPT: Final = """<script data-relive>(() => {
  const source = new EventSource("%(url)s");
  let lost = false;
  source.addEventListener("reload", () => { source.close(); location.reload(); });
  source.onerror = () => { lost = true; };
  source.onopen = () => { if (lost) location.reload(); };  /* relive restarted the server */
})();</script>"""

_OVERLAY: Final = (
    '<div data-relive-error style="position:fixed;left:0;right:0;bottom:0;'
    "z-index:2147483647;margin:0;padding:12px 16px;background:#3b0d0c;color:#ffd7d5;"
    'font:13px/1.5 monospace;white-space:pre-wrap;border-top:3px solid #ff5f56">'
    "relive: the last edit was not applied; the page runs the previous code\n%(error)s</div>"
)

_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)


@final
class LiveReload:
    """The events endpoint and what HTML responses get.

    Args:
        port: The port on 127.0.0.1 (0: any free one).

    Attributes:
        error: The last edit's error, shown in pages until an edit applies again.
    """

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._clients: list[queue.SimpleQueue[str | None]] = []
        self._lock = threading.Lock()
        self.error: ReloadError | None = None

    @property
    def url(self) -> str:
        """The events endpoint's URL."""
        port = self._server.server_address[1] if self._server is not None else self._port
        return f"http://127.0.0.1:{port}{EVENTS_PATH}"

    @property
    def clients(self) -> int:
        """Pages listening now."""
        with self._lock:
            return len(self._clients)

    def start(self) -> None:
        """Serve the events endpoint on 127.0.0.1 (idempotent).

        Raises:
            OSError: The port cannot be bound.
        """
        if self._server is not None:
            return
        handler = type("EventsHandler", (_EventsHandler,), {"live": self})
        server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, name="relive-livereload", daemon=True).start()

    def stop(self) -> None:
        """Close every stream and stop serving (idempotent)."""
        server, self._server = self._server, None
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.put(None)
        if server is not None:
            server.shutdown()
            server.server_close()

    def notify(self, error: ReloadError | None = None) -> None:
        """Tell every open page to reload; with ``error``, pages show it until the next
        edit applies."""
        self.error = error
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.put("reload")

    def snippet(self) -> bytes:
        """What HTML responses get before ``</body>``: the script, and the error overlay."""
        text = _SCRIPT % {"url": self.url}
        error = self.error
        if error is not None:
            text += _OVERLAY % {"error": html.escape(error.describe())}
        return text.encode()

    def inject(self, body: bytes) -> bytes:
        """``body`` with :meth:`snippet` before its last ``</body>`` (or at its end)."""
        matches = list(_BODY_END.finditer(body))
        at = matches[-1].start() if matches else len(body)
        return body[:at] + self.snippet() + body[at:]

    def _listen(self) -> queue.SimpleQueue[str | None]:
        client: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        with self._lock:
            self._clients.append(client)
        return client

    def _forget(self, client: queue.SimpleQueue[str | None]) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._clients.remove(client)


class _EventsHandler(BaseHTTPRequestHandler):
    """One page's stream of events: ``reload`` when an edit was applied."""

    live: LiveReload

    def do_GET(self) -> None:
        if self.path.split("?")[0] != EVENTS_PATH:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        client = self.live._listen()
        try:
            self._stream(client)
        except OSError:
            pass  # the page went away
        finally:
            self.live._forget(client)

    def _stream(self, client: queue.SimpleQueue[str | None]) -> None:
        self.wfile.write(b": relive\n\n")
        self.wfile.flush()
        while True:
            try:
                event = client.get(timeout=KEEP_ALIVE)
            except queue.Empty:
                self.wfile.write(b": keep-alive\n\n")
            else:
                if event is None:
                    return
                data = json.dumps({"error": str(self.live.error) if self.live.error else None})
                self.wfile.write(f"event: {event}\ndata: {data}\n\n".encode())
            self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per page load would drown relive's own lines


def _is_html(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "text/html"


@final
class LiveReloadWSGI:
    """Adds the live-reload snippet to a WSGI app's HTML responses (buffered, uncompressed)."""

    def __init__(self, app: WSGIApp, live: LiveReload) -> None:
        self.app = app
        self.live = live

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        started: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            started[:] = [status, headers, *exc_info]
            return _unbuffered_write

        result = self.app(environ, capture)
        status, headers = started[0], started[1]
        if not _injectable(headers):
            start_response(status, headers, *started[2:])
            return result
        try:
            body = self.live.inject(b"".join(result))
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        start_response(status, _with_length(headers, len(body)), *started[2:])
        return [body]

    def __getattr__(self, name: str) -> Any:
        if name == "app":
            raise AttributeError(name)
        return getattr(self.app, name)


def _unbuffered_write(data: bytes) -> None:
    raise RuntimeError("relive --livereload does not support the WSGI write() callable")


@final
class LiveReloadASGI:
    """Adds the live-reload snippet to an ASGI app's HTML responses (buffered, uncompressed)."""

    def __init__(self, app: ASGIApp, live: LiveReload) -> None:
        self.app = app
        self.live = live

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def relay(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if _injectable(_decoded(message.get("headers", ()))):
                    start = message
                    return
            elif start is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = self.live.inject(b"".join(chunks))
                headers = _with_length(_decoded(start["headers"]), len(body))
                await send({**start, "headers": _encoded(headers)})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, relay)


def _injectable(headers: list[tuple[str, str]]) -> bool:
    values = {name.lower(): value for name, value in headers}
    return _is_html(values.get("content-type", "")) and "content-encoding" not in values


def _with_length(headers: list[tuple[str, str]], length: int) -> list[tuple[str, str]]:
    kept = [(name, value) for name, value in headers if name.lower() != "content-length"]
    return [*kept, ("Content-Length", str(length))]


def _decoded(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


def _encoded(headers: Iterable[tuple[str, str]]) -> list[Any]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
