"""Web servers under ``relive run``: their reloaders off, a request gate, framework rules.

The worker creates one :class:`ServerSupport` before the program starts. It registers
import hooks for the servers relive knows (uvicorn, Werkzeug/Flask, Django's runserver):
each switches the server's own reloader off (saying so in one line) and wraps the served
app in the request gate. The in-process watcher then applies every batch of edits
through :meth:`ServerSupport.apply_paths`: between requests, with each framework's rules
(what must restart, what must be rebuilt after the edit).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Final, Self, TextIO, final

from relive._engine import Engine, Report, get_engine
from relive._errors import ReloadError, RestartRequired
from relive._filewatch import Batch, FileWatcher
from relive._integrations.asgi import ASGIApp, GatedASGI
from relive._integrations.gate import Gate
from relive._integrations.imports import Hook, ImportHooks
from relive._integrations.pydantic import rebuild_models
from relive._integrations.wsgi import GatedWSGI, WSGIApp
from relive._output import Console, Note

if TYPE_CHECKING:
    from relive._integrations.adapter import AppAdapter
    from relive._integrations.livereload import LiveReload

__all__ = ["PATCHES", "ServerSupport"]

PATCHES: Final = (
    ("uvicorn.config", "relive._integrations.uvicorn", "patch_config"),
    ("uvicorn.server", "relive._integrations.uvicorn", "patch_server"),
    ("werkzeug.serving", "relive._integrations.werkzeug", "patch_serving"),
    ("django.utils.autoreload", "relive._integrations.django", "patch_autoreload"),
    ("django.core.servers.basehttp", "relive._integrations.django", "patch_basehttp"),
    ("fastapi.routing", "relive._integrations.fastapi", "record_route_arguments"),
    ("gunicorn.arbiter", "relive._integrations.gunicorn", "patch_arbiter"),
    ("gunicorn.workers.base", "relive._integrations.gunicorn", "patch_worker"),
)
"""Which module of the program's, once it is imported, is patched by which function of
relive's (its integration module is imported only then)."""

ASSET_FILES: Final = (
    *("*.html", "*.htm", "*.jinja", "*.jinja2", "*.j2"),
    *("*.css", "*.js", "*.mjs", "*.svg", "*.png", "*.jpg", "*.jpeg", "*.gif", "*.webp"),
)
"""Templates and static files: a change clears template caches and reloads open pages
(not ``*.txt``: a log file written next to the code would reload pages without end)."""


@final
class ServerSupport:
    """Everything relive does for the web servers it knows, inside the program's process.

    Args:
        in_place: Edits are applied in place (else the supervisor restarts on each change,
            and only the servers' reloaders are switched off).
        quiet: Say nothing but errors and restarts (when no ``console`` is given).
        verbose: Also say which app is served behind the gate (likewise).
        engine: The engine (default: the process's, created on first use).
        stream: Where lines go (default: stderr; likewise).
        console: Where lines go (the worker's, shared with its watcher).
        livereload: Serve browser live reload on the app's own port.

    Attributes:
        gate: The request gate every reload goes through.
        adapters: One per served app, called around each reload.
        livereload: Browser live reload, when asked for.
    """

    def __init__(
        self,
        *,
        in_place: bool = True,
        quiet: bool = False,
        verbose: bool = False,
        engine: Engine | None = None,
        stream: TextIO | None = None,
        console: Console | None = None,
        livereload: bool = False,
    ) -> None:
        self.in_place = in_place
        self.gate = Gate()
        # A server that runs several workers restarts them its own graceful way (True:
        # done); set by its integration in the process that runs the server's master.
        self.restart_workers: Callable[[], bool] | None = None
        self.adapters: list[AppAdapter] = []
        self.console = console or Console(quiet=quiet, verbose=verbose, stream=stream)
        self._engine = engine
        self._hooks = ImportHooks()
        self._assets: FileWatcher | None = None
        self.livereload: LiveReload | None = None
        if livereload and in_place:
            from relive._integrations.livereload import LiveReload

            self.livereload = LiveReload(describe=self.console.formatter.error)

    @property
    def engine(self) -> Engine:
        """The engine applying the edits."""
        if self._engine is None:
            self._engine = get_engine()
        return self._engine

    def install(self) -> Self:
        """Register the import hooks of the servers relive knows."""
        for target, integration, function in PATCHES:
            self.when_imported(target, functools.partial(self._patch, integration, function))
        return self

    def _patch(self, integration: str, function: str, module: ModuleType) -> None:
        patch = getattr(importlib.import_module(integration), function)
        patch(module, self)

    def uninstall(self) -> None:
        """Remove the hooks that have not run yet; stop watching assets and serving live
        reload."""
        self._hooks.remove()
        assets, self._assets = self._assets, None
        if assets is not None:
            assets.stop()
        if self.livereload is not None:
            self.livereload.stop()

    def when_imported(self, name: str, hook: Hook) -> None:
        """Run ``hook(module)`` right after module ``name`` is first executed."""
        self._hooks.add(name, hook)

    # -- what the server integrations call ------------------------------------------------

    def say(self, text: str) -> None:
        """One line on stderr, ``relive: text``; hidden by ``--quiet``."""
        self.console.info(text)

    def detail(self, text: str) -> None:
        """One line only ``--verbose`` shows."""
        self.console.detail(text)

    def reloader_off(self, reloader: str, how: str = "") -> None:
        """Say once per program that a server's own reloader was switched off (``how``,
        if given)."""
        instead = (
            "relive applies edits in place, between requests"
            if self.in_place
            else "relive restarts on changes"
        )
        text = f"{reloader} is off{f' ({how})' if how else ''}: {instead}"
        self.console.emit(Note(text, once=f"reloader off: {reloader}"))

    def gate_asgi(self, app: ASGIApp, adapter: AppAdapter | None) -> ASGIApp:
        """``app`` behind the request gate; ``adapter`` joins the reloads."""
        if not self.in_place:
            return app
        self._serve(adapter)
        gated: ASGIApp = GatedASGI(app, self.gate)
        if self.livereload is not None:
            from relive._integrations.livereload import LiveReloadASGI

            gated = LiveReloadASGI(gated, self.livereload)
        return gated

    def gate_wsgi(self, app: WSGIApp, adapter: AppAdapter | None) -> WSGIApp:
        """``app`` behind the request gate; ``adapter`` joins the reloads."""
        if not self.in_place:
            return app
        self._serve(adapter)
        gated: WSGIApp = GatedWSGI(app, self.gate)
        if self.livereload is not None:
            from relive._integrations.livereload import LiveReloadWSGI

            gated = LiveReloadWSGI(gated, self.livereload)
        return gated

    def _serve(self, adapter: AppAdapter | None) -> None:
        roots = [Path.cwd()] if self.livereload is not None else []
        if adapter is not None and adapter not in self.adapters:
            self.adapters.append(adapter)
            self.detail(f"serving {adapter.name} behind relive's request gate")
            roots += adapter.asset_roots()
        self._watch_assets(roots)

    # -- templates and static files -------------------------------------------------------

    def _watch_assets(self, roots: list[Path]) -> None:
        """Watch templates and static files under ``roots`` (started with the first)."""
        roots = [root for root in roots if root.is_dir()]
        if not roots:
            return
        if self._assets is None:
            assets = FileWatcher(
                roots, self._assets_changed, include=ASSET_FILES, name="relive-assets"
            )
            assets.start()
            self._assets = assets
            return
        for root in roots:
            self._assets.add_root(root)

    def _assets_changed(self, batch: Batch) -> None:
        paths = batch.changed | batch.removed
        with self.gate.exclusive():
            for adapter in list(self.adapters):
                adapter.assets_changed(paths)
        if self.livereload is not None:
            self.livereload.notify(self.livereload.error)  # a template does not fix code

    # -- what the watcher calls -----------------------------------------------------------

    def apply_paths(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        run_engine: Callable[[], Report] | None = None,
    ) -> Report:
        """Apply a batch of changed files between requests, with the frameworks' rules.

        ``run_engine`` applies the edit instead of ``engine.apply_paths`` (the processes of
        a program under ``relive run`` apply the texts of a round, in two phases).

        Raises:
            ReloadError: The edit was rejected; the app serves the last good code.
            RestartRequired: The edit needs a restart (the reason says why).
        """
        changed = {os.path.realpath(path) for path in paths}
        with self.gate.exclusive() as drain:
            if drain.running:
                self.say(
                    f"applying with {drain.running} request{'s' if drain.running > 1 else ''}"
                    f" still running after {drain.waited:.0f} s (a stream or a long poll?)"
                )
            adapters = list(self.adapters)
            self._check(changed, adapters)
            for adapter in adapters:
                adapter.prepare()
            try:
                if run_engine is not None:
                    report = run_engine()
                else:
                    report = self.engine.apply_paths(changed)
            except BaseException as exc:
                self._settle(adapters, None)
                self._tell_pages(exc)
                raise
            if report:
                self._rebuild_models(report)
            self._settle(adapters, report)
        if report or (self.livereload is not None and self.livereload.error is not None):
            self._tell_pages(None)  # new code, or the broken edit was undone
        return report

    def _tell_pages(self, error: BaseException | None) -> None:
        """Open pages reload: to run the new code, or to show why the edit was rejected."""
        live = self.livereload
        if live is None or isinstance(error, RestartRequired):
            return  # a restart reloads the pages as they reconnect
        if error is None or isinstance(error, ReloadError):
            live.notify(error)

    def _check(self, changed: set[str], adapters: list[AppAdapter]) -> None:
        if not adapters:
            return
        modules = self.engine.changed_modules(changed)
        for adapter in adapters:
            adapter.check(modules)

    def _settle(self, adapters: list[AppAdapter], report: Report | None) -> None:
        """Settle every adapter, even when one fails, then raise the first failure; an
        error that is not relive's own becomes a restart (the app may not have followed)."""
        first: ReloadError | None = None
        for adapter in adapters:
            try:
                adapter.settle(report)
            except ReloadError as exc:
                first = first or exc
            except Exception as exc:
                first = first or _restart_for(adapter, exc)
        if first is None:
            return
        if report is None:  # the engine's own error is on its way: report this one beside
            self.say(f"after the rejected edit: {first}")
            return
        raise first

    def _rebuild_models(self, report: Report) -> None:
        if "pydantic" not in sys.modules:
            return
        user_modules = {tracked.name for tracked in self.engine.tracked_modules()}
        for name in rebuild_models(report, user_modules):
            self.say(f"Pydantic model {name} could not be rebuilt; it keeps its last schema")


def _restart_for(adapter: AppAdapter, exc: Exception) -> RestartRequired:
    error = RestartRequired(f"relive could not update the {adapter.name} after this edit: {exc!r}")
    error.__cause__ = exc
    return error
