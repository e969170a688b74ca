"""gunicorn under ``relive run``: ``--reload`` off, each worker's app behind the request gate.

``relive run -m gunicorn app:app -w 4`` runs gunicorn's master in relive's worker process;
its workers are forked from it and join every edit (``relive._member``). relive hooks
``gunicorn.arbiter`` (the master: ``--reload`` is switched off, and an edit that needs a
restart restarts the workers through gunicorn's own graceful path, ``SIGHUP``, the
listening sockets held) and ``gunicorn.workers.base`` (each WSGI worker serves its app
behind its request gate). ``-k uvicorn.workers.UvicornWorker`` is gated by the uvicorn hook.
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from relive._integrations.werkzeug import adapter_for

if TYPE_CHECKING:
    from relive._integrations.servers import ServerSupport

__all__ = ["patch_arbiter", "patch_worker"]

# gunicorn's own workers that call a WSGI app (its ASGI worker, gasgi, is not gated).
_WSGI_WORKERS = ("gunicorn.workers.sync", "gunicorn.workers.gthread", "gunicorn.workers.ggevent")


def patch_arbiter(arbiter_module: ModuleType, support: ServerSupport) -> None:
    """Wrap ``Arbiter.setup`` (run at start and on each ``SIGHUP``): ``--reload`` off, and
    restarts go through the master's graceful reload."""
    arbiter_class: Any = arbiter_module.Arbiter
    original: Callable[..., None] = arbiter_class.setup

    @functools.wraps(original)
    def setup(self: Any, app: Any) -> None:
        if app.cfg.reload:
            app.cfg.set("reload", False)
            support.reloader_off("gunicorn's --reload")
        original(self, app)
        master = os.getpid()
        # With --preload the workers fork the master's code, which a reload keeps: only a
        # new master (relive run's restart) runs the edit.
        preload = bool(app.cfg.preload_app)
        support.restart_workers = None if preload else lambda: _reload_gracefully(master)

    arbiter_class.setup = setup


def _reload_gracefully(master: int) -> bool:
    """gunicorn's graceful reload: new workers from the current files, the old ones end
    after their requests, the listening sockets are kept."""
    os.kill(master, signal.SIGHUP)
    return True


def patch_worker(base_module: ModuleType, support: ServerSupport) -> None:
    """Wrap ``Worker.load_wsgi``: a WSGI worker's app is served behind the request gate."""
    worker_class: Any = base_module.Worker
    original: Callable[[Any], None] = worker_class.load_wsgi

    @functools.wraps(original)
    def load_wsgi(self: Any) -> None:
        original(self)
        if support.in_place and type(self).__module__ in _WSGI_WORKERS:
            self.wsgi = support.gate_wsgi(self.wsgi, adapter_for(self.wsgi, support))

    worker_class.load_wsgi = load_wsgi
