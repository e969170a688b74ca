"""The request gate as ASGI middleware: each HTTP request holds the gate's shared side.

Installed around the served app by relive for the ASGI servers it knows (uvicorn), so a
reload waits for requests in flight and holds new ones while it applies. Lifespan and
websocket connections pass through ungated: they last as long as the server or the
connection, and a reload must not wait for them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, final

from relive._integrations.gate import Gate

__all__ = ["ASGIApp", "GatedASGI"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@final
class GatedASGI:
    """Wraps an ASGI 3 app: an HTTP request runs holding ``gate``'s shared side.

    Attributes:
        app: The wrapped app.
        gate: The gate reloads close.
    """

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        ticket = await self.gate.enter_async()
        try:
            await self.app(scope, receive, send)
        finally:
            ticket.release()
