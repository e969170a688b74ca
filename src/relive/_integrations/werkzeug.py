"""Werkzeug's development server (``flask run``, ``app.run()``) under ``relive run``.

relive hooks ``werkzeug.serving`` as it is imported: ``run_simple`` runs without its
reloader (relive's watcher runs in this very process instead; the debugger stays as it
was), and ``make_server`` serves the app behind the request gate.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from relive._integrations.adapter import AppAdapter
from relive._integrations.binding import find_binding
from relive._integrations.flask import FlaskAdapter, find_flask_app

if TYPE_CHECKING:
    from relive._integrations.servers import ServerSupport

__all__ = ["adapter_for", "patch_serving"]


def patch_serving(serving: ModuleType, support: ServerSupport) -> None:
    """Wrap ``run_simple`` (reloader off) and ``make_server`` (gate the app)."""
    module: Any = serving
    module.run_simple = _without_reloader(module.run_simple, support)
    module.make_server = _gated(module.make_server, support)


def _without_reloader(run_simple: Callable[..., Any], support: ServerSupport) -> Any:
    signature = inspect.signature(run_simple)

    @functools.wraps(run_simple)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        if bound.arguments.get("use_reloader"):
            bound.arguments["use_reloader"] = False
            app = bound.arguments.get("application")
            flask = find_flask_app(app) is not None
            support.reloader_off("Flask's reloader" if flask else "Werkzeug's reloader")
        return run_simple(*bound.args, **bound.kwargs)

    return wrapper


def _gated(make_server: Callable[..., Any], support: ServerSupport) -> Any:
    signature = inspect.signature(make_server)

    @functools.wraps(make_server)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        app = bound.arguments["app"]
        if support.in_place:
            bound.arguments["app"] = support.gate_wsgi(app, adapter_for(app, support))
        return make_server(*bound.args, **bound.kwargs)

    return wrapper


def adapter_for(app: Any, support: ServerSupport) -> AppAdapter:
    """The adapter of a WSGI app given to Werkzeug (a Flask app inside its debugger, …)."""
    flask_app = find_flask_app(app)
    if flask_app is None:
        return AppAdapter(app, find_binding(support.engine, app), "WSGI app")
    binding = find_binding(support.engine, flask_app, factory=_factory(flask_app))
    return FlaskAdapter(flask_app, binding)


def _factory(flask_app: Any) -> object:
    """The app factory Flask's CLI would call in the app's module, if there is one."""
    module = sys.modules.get(getattr(flask_app, "import_name", ""))
    for name in ("create_app", "make_app"):
        factory = getattr(module, name, None)
        if inspect.isfunction(factory):
            return factory
    return None
