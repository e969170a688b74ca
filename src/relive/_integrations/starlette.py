"""Starlette and FastAPI apps after an edit: routes, middleware and OpenAPI kept current.

Body edits need nothing: endpoints, dependencies and middleware functions are patched in
place and the app already holds those objects. What the app derived from them at
start-up is brought up to date here: FastAPI routes analysed again (new parameters,
dependencies, models), routes of removed or re-decorated endpoints dropped, the
middleware stack rebuilt when middleware or exception handlers were added, the OpenAPI
schema dropped. A rejected edit's side effects on the app (a route it added before
failing) are undone.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any, final

from relive._engine import Report
from relive._errors import RestartRequired
from relive._integrations.adapter import AppAdapter
from relive._integrations.binding import AppBinding
from relive._integrations.fastapi import rebuild_route

__all__ = ["StarletteAdapter", "is_starlette", "removed_definition"]


def is_starlette(app: object) -> bool:
    """Whether ``app`` is a Starlette application (FastAPI included)."""
    return all(hasattr(app, name) for name in ("router", "user_middleware", "middleware_stack"))


def removed_definition(obj: object, reloaded: set[str]) -> bool:
    """Whether ``obj`` is a top-level function or class of a reloaded module whose
    definition the edit removed (its name is gone from the module)."""
    if not isinstance(obj, types.FunctionType | type):
        return False
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    if module is None or module.__name__ not in reloaded or "<locals>" in obj.__qualname__:
        return False
    return obj.__name__ not in vars(module)


@final
class StarletteAdapter(AppAdapter):
    """Keeps a Starlette/FastAPI app's routes and middleware stack in step with edits."""

    def __init__(self, app: Any, binding: AppBinding | None, name: str) -> None:
        super().__init__(app, binding, name)
        self._stack: Any = None
        self._middleware: list[Any] = []
        self._handlers: dict[Any, Any] = {}
        self._routes: list[tuple[Any, list[Any]]] = []

    def prepare(self) -> None:
        app: Any = self.app
        self._stack = app.middleware_stack
        self._middleware = list(app.user_middleware)
        self._handlers = dict(getattr(app, "exception_handlers", {}))
        self._routes = [(router, list(router.routes)) for router in _routers(app)]
        app.middleware_stack = None  # lets add_middleware and @app.middleware run

    def settle(self, report: Report | None) -> None:
        app: Any = self.app
        try:
            if report is None:
                for router, routes in self._routes:
                    router.routes[:] = routes
                app.user_middleware[:] = self._middleware
                _mark_routes_changed(app)
                return
            reloaded = set(report.reloaded)
            self._update_routes(reloaded)
            self._update_middleware(reloaded)
        finally:
            if app.middleware_stack is None:
                app.middleware_stack = self._stack
        super().settle(report)

    # -- routes -----------------------------------------------------------------------

    def _update_routes(self, reloaded: set[str]) -> None:
        added: set[int] = set()
        for router, before in self._routes:
            added |= _drop_stale_routes(router, before, reloaded)
        for route in _all_routes(self.app):
            if id(route) not in added:
                rebuild_route(route)
        _mark_routes_changed(self.app)
        if hasattr(self.app, "openapi_schema"):
            self.app.openapi_schema = None

    # -- middleware -------------------------------------------------------------------

    def _update_middleware(self, reloaded: set[str]) -> None:
        app: Any = self.app
        current = list(app.user_middleware)
        kept = [entry for entry in current if not _stale_middleware(entry, reloaded)]
        new = [entry for entry in kept if not any(entry is old for old in self._middleware)]
        for entry in new:
            dispatch = getattr(entry, "kwargs", {}).get("dispatch")
            if dispatch is not None:
                # Re-decorated: the same function registered again; keep the new entry.
                kept = [
                    old
                    for old in kept
                    if old is entry or getattr(old, "kwargs", {}).get("dispatch") is not dispatch
                ]
            elif any(old.cls is entry.cls for old in self._middleware):
                app.user_middleware[:] = self._middleware
                name = getattr(entry.cls, "__name__", repr(entry.cls))
                raise RestartRequired(
                    f"add_middleware({name}) ran again: the app builds its middleware stack once"
                )
        handlers = dict(getattr(app, "exception_handlers", {}))
        if _same(kept, self._middleware) and handlers == self._handlers:
            return
        app.user_middleware[:] = kept
        app.middleware_stack = app.build_middleware_stack()


def _same(entries: list[Any], others: list[Any]) -> bool:
    return len(entries) == len(others) and all(a is b for a, b in zip(entries, others, strict=True))


def _stale_middleware(entry: Any, reloaded: set[str]) -> bool:
    dispatch = getattr(entry, "kwargs", {}).get("dispatch")
    return removed_definition(dispatch, reloaded) or removed_definition(
        getattr(entry, "cls", None), reloaded
    )


def _drop_stale_routes(router: Any, before: list[Any], reloaded: set[str]) -> set[int]:
    """Drop the routes of endpoints the edit removed or registered again; the ids of the
    routes the edit added."""
    old = {id(route) for route in before}
    routes = list(router.routes)
    added = [route for route in routes if id(route) not in old]
    again = {id(endpoint) for route in added if (endpoint := _endpoint(route)) is not None}

    def stale(route: Any) -> bool:
        if id(route) not in old:
            return False
        endpoint = _endpoint(route)
        return id(endpoint) in again or removed_definition(endpoint, reloaded)

    kept = [route for route in routes if not stale(route)]
    if len(kept) != len(routes):
        router.routes[:] = kept
    return {id(route) for route in added}


def _endpoint(route: Any) -> object:
    return getattr(route, "endpoint", None)


def _routers(app: Any) -> list[Any]:
    """The app's router and every router reachable from it (included, mounted)."""
    found: list[Any] = []
    pending = [app.router]
    while pending:
        router = pending.pop()
        if any(router is seen for seen in found) or not isinstance(
            getattr(router, "routes", None), list
        ):
            continue
        found.append(router)
        for route in router.routes:
            inner = getattr(route, "original_router", None)  # FastAPI's included routers
            if inner is None:
                mounted = getattr(route, "app", None)
                inner = getattr(mounted, "router", mounted)
            if inner is not None:
                pending.append(inner)
    return found


def _all_routes(app: Any) -> Iterator[Any]:
    for router in _routers(app):
        yield from router.routes


def _mark_routes_changed(app: Any) -> None:
    """Tell FastAPI's routers that their routes changed (it caches what it derives)."""
    for router in _routers(app):
        mark = getattr(router, "_mark_routes_changed", None)
        if callable(mark):
            mark()
