"""uvicorn under ``relive run``: ``--reload`` off, the app behind the request gate.

Covers ``relive run -m uvicorn app:app`` and a script calling ``uvicorn.run(...)``: both
build a ``uvicorn.Config``, so relive hooks that class as ``uvicorn.config`` is imported.
Its reloader is switched off (relive's watcher runs in this very process instead), and the
loaded app is wrapped in the request gate. With ``--workers N``, each worker is a spawned
process of the program that joins every edit (``relive._member``); what needs a restart
restarts them through uvicorn's process manager (``SIGHUP``), the socket held.
"""

from __future__ import annotations

import functools
import inspect
import os
import signal
import sys
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from relive._integrations.adapter import AppAdapter
from relive._integrations.binding import find_binding
from relive._integrations.starlette import StarletteAdapter, is_starlette

if TYPE_CHECKING:
    from relive._integrations.servers import ServerSupport

__all__ = ["adapter_for", "patch_config", "patch_server", "switch_reloader_off", "unwrap"]


def patch_config(config_module: ModuleType, support: ServerSupport) -> None:
    """Wrap ``Config.__init__`` (reloader off) and ``Config.load`` (gate the app)."""
    config_class: Any = config_module.Config
    original_init: Callable[..., None] = config_class.__init__
    original_load: Callable[[Any], None] = config_class.load

    signature = inspect.signature(original_init)

    @functools.wraps(original_init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        switch_reloader_off(bound.arguments, support)
        original_init(*bound.args, **bound.kwargs)

    @functools.wraps(original_load)
    def load(self: Any) -> None:
        original_load(self)
        if support.in_place:
            adapter = adapter_for(self, unwrap(self.loaded_app), support)
            self.loaded_app = support.gate_asgi(self.loaded_app, adapter)

    config_class.__init__ = __init__
    config_class.load = load


def patch_server(server_module: ModuleType, support: ServerSupport) -> None:
    """Wrap ``Server.shutdown``: open pages' live-reload streams end first (uvicorn waits
    for every open response before it exits; a stream never ends by itself)."""
    server_class: Any = server_module.Server
    original: Callable[..., Any] = server_class.shutdown

    @functools.wraps(original)
    async def shutdown(self: Any, *args: Any, **kwargs: Any) -> None:
        if support.livereload is not None:
            support.livereload.stop()
        await original(self, *args, **kwargs)

    server_class.shutdown = shutdown


def switch_reloader_off(arguments: dict[str, Any], support: ServerSupport) -> None:
    """Turn off uvicorn's reloader and extra workers in ``Config``'s arguments, saying so
    (before ``Config`` sees them: it would announce what it watches)."""
    if arguments.get("reload"):
        arguments["reload"] = False
        for option in ("reload_dirs", "reload_includes", "reload_excludes"):
            if option in arguments:
                arguments[option] = None  # else uvicorn warns it will not reload
        support.reloader_off("uvicorn's --reload")
    workers = arguments.get("workers") or 1
    if workers > 1 and support.in_place and _restarts_on_hup():
        # Its workers are spawned processes of the program: each joins every edit, and an
        # edit that needs a restart restarts them through uvicorn's process manager.
        master = os.getpid()
        support.restart_workers = lambda: _restart_workers(master)


def _restarts_on_hup() -> bool:
    """Whether uvicorn's process manager restarts its workers on SIGHUP (0.30+); before,
    a restart is relive run's own (a new master)."""
    try:
        from uvicorn.supervisors.multiprocess import Multiprocess
    except ImportError:
        return False
    return hasattr(Multiprocess, "restart_all")


def _restart_workers(master: int) -> bool:
    """uvicorn's process manager restarts every worker on SIGHUP, holding the socket."""
    os.kill(master, signal.SIGHUP)
    return True


def unwrap(app: Any) -> Any:
    """The user's app inside the layers uvicorn adds (proxy headers, ASGI2, WSGI, …)."""
    for _ in range(8):
        inner = getattr(app, "app", None)
        if inner is None or not type(app).__module__.startswith("uvicorn."):
            break
        app = inner
    return app


def adapter_for(config: Any, app: Any, support: ServerSupport) -> AppAdapter:
    """The adapter of the app uvicorn loaded from ``config.app`` (``module:attr``)."""
    module = attribute = None
    factory: object = None
    if isinstance(config.app, str) and ":" in config.app:
        module, _, attribute = config.app.partition(":")
        if config.factory:
            factory = _resolve(sys.modules.get(module), attribute)
            attribute = None
    binding = find_binding(support.engine, app, module=module, attribute=attribute, factory=factory)
    if is_starlette(app):
        return StarletteAdapter(app, binding, f"{type(app).__name__} app")
    return AppAdapter(app, binding, "ASGI app")


def _resolve(module: object, attribute: str) -> object:
    value = module
    for part in attribute.split("."):
        value = getattr(value, part, None)
    return value
