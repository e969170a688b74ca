"""Browser live reload (``relive run --livereload``): open pages reload after each edit.

Middleware around the served app answers ``/relive/events`` on the app's own port (a
server-sent-events stream, so it works behind port forwarding and in containers) and adds
a short script to HTML responses that listens to it; while the last edit failed, HTML
responses also carry an overlay with the error (file, line, message). The stream is
answered before the request gate, so an open page never holds a reload back.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
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
_STREAM_HEADERS: Final = (
    ("Content-Type", "text/event-stream"),
    ("Cache-Control", "no-store"),
    ("X-Accel-Buffering", "no"),  # proxies (nginx) pass each event at once
)
_NO_BODY_STATUSES: Final = frozenset({204, 304})

Listener = Callable[[str | None], None]


@final
class LiveReload:
    """The pages' event streams and what HTML responses get.

    Attributes:
        error: The last edit's error, shown in pages until an edit applies again.
        describe: Renders an error for the overlay (default: ``ReloadError.describe``).
    """

    def __init__(self, describe: Callable[[ReloadError], str] | None = None) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self.error: ReloadError | None = None
        self.describe = describe or ReloadError.describe

    @property
    def clients(self) -> int:
        """Pages listening now."""
        with self._lock:
            return len(self._listeners)

    def stop(self) -> None:
        """End every open stream (the server is going away)."""
        with self._lock:
            listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener(None)

    def notify(self, error: ReloadError | None = None) -> None:
        """Tell every open page to reload; with ``error``, pages show it until the next
        edit applies."""
        self.error = error
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener("reload")

    def snippet(self) -> bytes:
        """What HTML responses get before ``</body>``: the script, and the error overlay."""
        text = _SCRIPT % {"url": EVENTS_PATH}
        error = self.error
        if error is not None:
            text += _OVERLAY % {"error": html.escape(self.describe(error))}
        return text.encode()

    def inject(self, body: bytes) -> bytes:
        """``body`` with :meth:`snippet` before its last ``</body>`` (or at its end)."""
        matches = list(_BODY_END.finditer(body))
        at = matches[-1].start() if matches else len(body)
        return body[:at] + self.snippet() + body[at:]

    def event(self, name: str) -> bytes:
        """One server-sent event, as the stream writes it."""
        data = json.dumps({"error": str(self.error) if self.error else None})
        return f"event: {name}\ndata: {data}\n\n".encode()

    def listen(self, listener: Listener) -> None:
        """Call ``listener("reload")`` after each edit, ``listener(None)`` at the end."""
        with self._lock:
            self._listeners.append(listener)

    def forget(self, listener: Listener) -> None:
        """Stop calling ``listener`` (its page went away)."""
        with self._lock, contextlib.suppress(ValueError):
            self._listeners.remove(listener)


# WSGI ------------------------------------------------------------------------------------


@final
class _WSGIStream:
    """One page's event stream as a WSGI response iterable (a thread per page)."""

    def __init__(self, live: LiveReload) -> None:
        self._live = live
        self._events: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        live.listen(self._events.put)

    def __iter__(self) -> Iterator[bytes]:
        yield b": relive\n\n"
        while True:
            try:
                event = self._events.get(timeout=KEEP_ALIVE)
            except queue.Empty:
                yield b": keep-alive\n\n"
                continue
            if event is None:
                return
            yield self._live.event(event)

    def close(self) -> None:
        self._live.forget(self._events.put)


@final
class _Capture:
    """The ``start_response`` the app is given: HTML is held back to be injected, anything
    else goes to the server as it comes. The status may arrive late (an app that calls
    ``start_response`` while its body is iterated, as Werkzeug's debugger does)."""

    def __init__(self, start_response: Callable[..., Any], head_only: bool) -> None:
        self._start_response = start_response
        self._head_only = head_only
        self.started: tuple[str, list[tuple[str, str]]] | None = None
        self.held = False  # the response is HTML, held back to be injected
        self.body: list[bytes] = []
        self._write: Callable[[bytes], Any] | None = None

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], Any]:
        if self.started is not None and not self.held:
            write: Callable[[bytes], Any] = self._start_response(status, headers, exc_info)
            return write  # the server re-raises exc_info once the headers were sent
        self.started, self.body = (status, headers), []
        self.held = _injectable(status, headers) and not self._head_only
        if not self.held:
            self._write = self._start_response(status, headers, exc_info)
        return self.write

    def write(self, data: bytes) -> None:
        """The ``write()`` callable (PEP 3333): held back with the body, or passed on."""
        if self.held:
            self.body.append(data)
        elif self._write is not None:
            self._write(data)

    def finish(self, live: LiveReload) -> bytes:
        """Start the held response with its new length; its injected body."""
        assert self.started is not None
        status, headers = self.started
        body = live.inject(b"".join(self.body))
        self._start_response(status, _with_length(headers, len(body)))
        return body


@final
class _Injected:
    """The app's response iterable: HTML collected and injected, the rest passed on; the
    app's ``close()`` is called when the server closes this."""

    def __init__(self, result: Iterable[bytes], capture: _Capture, live: LiveReload) -> None:
        self._result = result
        self._capture = capture
        self._live = live

    def __iter__(self) -> Iterator[bytes]:
        capture = self._capture
        for chunk in self._result:
            if capture.held:
                capture.body.append(chunk)
            else:
                yield chunk
        if capture.held:
            yield capture.finish(self._live)

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            close()


@final
class LiveReloadWSGI:
    """Serves the events stream and adds the live-reload snippet to a WSGI app's HTML
    responses (buffered, uncompressed)."""

    def __init__(self, app: WSGIApp, live: LiveReload) -> None:
        self.app = app
        self.live = live

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == EVENTS_PATH:
            start_response("200 OK", list(_STREAM_HEADERS))
            return _WSGIStream(self.live)
        capture = _Capture(start_response, environ.get("REQUEST_METHOD") == "HEAD")
        return _Injected(self.app(environ, capture), capture, self.live)

    def __getattr__(self, name: str) -> Any:
        if name == "app":
            raise AttributeError(name)
        return getattr(self.app, name)


# ASGI ------------------------------------------------------------------------------------


@final
class LiveReloadASGI:
    """Serves the events stream and adds the live-reload snippet to an ASGI app's HTML
    responses (buffered, uncompressed)."""

    def __init__(self, app: ASGIApp, live: LiveReload) -> None:
        self.app = app
        self.live = live

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
        elif scope.get("path") == EVENTS_PATH:
            await self._stream(receive, send)
        else:
            await self.app(scope, receive, _Relay(send, self.live, scope.get("method") == "HEAD"))

    async def _stream(self, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[str | None] = asyncio.Queue()

        def listener(event: str | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to tell
                loop.call_soon_threadsafe(events.put_nowait, event)

        headers = _encoded(list(_STREAM_HEADERS))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b": relive\n\n", "more_body": True})
        self.live.listen(listener)
        gone: asyncio.Future[Any] = asyncio.ensure_future(_disconnected(receive))
        try:
            while (body := await _next_event(events, gone, self.live)) is not None:
                await send({"type": "http.response.body", "body": body, "more_body": True})
        finally:
            self.live.forget(listener)
            left = gone.done()
            gone.cancel()
        if not left:  # relive ended the stream: end the response
            await send({"type": "http.response.body", "body": b""})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _next_event(
    events: asyncio.Queue[str | None], gone: asyncio.Future[Any], live: LiveReload
) -> bytes | None:
    """The next chunk of the stream; None when it is over (the page left, relive stops)."""
    waiting: asyncio.Future[Any] = asyncio.ensure_future(events.get())
    done, _ = await asyncio.wait(
        {waiting, gone}, timeout=KEEP_ALIVE, return_when=asyncio.FIRST_COMPLETED
    )
    if waiting not in done:
        waiting.cancel()
        return None if gone in done else b": keep-alive\n\n"
    event = waiting.result()
    return None if event is None else live.event(event)


@final
class _Relay:
    """The ``send`` the app is given: an HTML response is held back and injected."""

    def __init__(self, send: Send, live: LiveReload, head_only: bool) -> None:
        self._send = send
        self._live = live
        self._head_only = head_only
        self._start: Message | None = None
        self._chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            status, headers = message.get("status", 200), _decoded(message.get("headers", ()))
            if _injectable(str(status), headers) and not self._head_only:
                self._start = message
                return
        elif self._start is not None and message["type"] == "http.response.body":
            self._chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = self._live.inject(b"".join(self._chunks))
            headers = _with_length(_decoded(self._start.get("headers", ())), len(body))
            await self._send({**self._start, "headers": _encoded(headers)})
            await self._send({"type": "http.response.body", "body": body})
            return
        await self._send(message)


def _injectable(status: str, headers: list[tuple[str, str]]) -> bool:
    """An HTML page with a body, as sent (not compressed)."""
    code = status.split(None, 1)[0] if status else ""
    if code.isdigit() and (int(code) in _NO_BODY_STATUSES or int(code) < 200):
        return False
    values = {name.lower(): value for name, value in headers}
    kind = values.get("content-type", "").split(";")[0].strip().lower()
    return kind == "text/html" and "content-encoding" not in values


def _with_length(headers: list[tuple[str, str]], length: int) -> list[tuple[str, str]]:
    kept = [(name, value) for name, value in headers if name.lower() != "content-length"]
    return [*kept, ("Content-Length", str(length))]


def _decoded(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


def _encoded(headers: Iterable[tuple[str, str]]) -> list[Any]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
