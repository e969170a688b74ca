"""The request gate as WSGI middleware: each request holds the gate's shared side.

Installed around the served app by relive for the WSGI servers it knows (Werkzeug's, so
Flask's; Django's runserver). The shared side is held until the server closes the
response iterable (PEP 3333), so a response generated lazily still runs on one version
of the code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, final

from relive._integrations.gate import Gate, Ticket

__all__ = ["GatedWSGI", "WSGIApp"]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


@final
class GatedWSGI:
    """Wraps a WSGI app: a request runs holding ``gate``'s shared side until its response
    is closed.

    Attributes:
        app: The wrapped app.
        gate: The gate reloads close.
    """

    def __init__(self, app: WSGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        ticket = self.gate.enter()
        try:
            result = self.app(environ, start_response)
        except BaseException:
            ticket.release()
            raise
        return GatedResponse(result, ticket)

    def __getattr__(self, name: str) -> Any:
        # Servers and tools look for attributes of the app they were given.
        if name == "app":
            raise AttributeError(name)
        return getattr(self.app, name)


@final
class GatedResponse:
    """A response iterable that gives the gate back when the server closes it."""

    def __init__(self, result: Iterable[bytes], ticket: Ticket) -> None:
        self._result = result
        self._ticket = ticket

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        """Close the app's iterable (running its clean-up), then release the gate."""
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._ticket.release()

    def __del__(self) -> None:
        # A server that never calls close() must not hold every later reload back.
        self._ticket.release()
