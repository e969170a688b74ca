"""Django's runserver under ``relive run manage.py runserver``.

relive hooks Django as it is imported: the autoreloader is skipped (as with
``--noreload``; relive's watcher runs in this very process instead) and the WSGI handler
is served behind the request gate. Views, URLconfs, middleware, forms and helpers are
edited in place; URL caches are cleared after each edit, and template caches after each
template change. What Django reads once, at start-up, restarts the server: settings
(``INSTALLED_APPS``, ``MIDDLEWARE``, …), models, app configs and admin registrations.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence, Set
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, final

from relive._engine import Report
from relive._errors import RestartRequired
from relive._integrations.adapter import AppAdapter
from relive._tracker import TrackedModule

if TYPE_CHECKING:
    from relive._integrations.servers import ServerSupport

__all__ = ["DjangoAdapter", "patch_autoreload", "patch_basehttp", "restart_reason"]

TEMPLATE_FILES = ("*.html", "*.txt", "*.xml", "*.django", "*.jinja", "*.jinja2")


def patch_autoreload(autoreload: ModuleType, support: ServerSupport) -> None:
    """Make ``run_with_reloader`` run the server right here, as ``--noreload`` does."""
    module: Any = autoreload
    original: Callable[..., Any] = module.run_with_reloader

    @functools.wraps(original)
    def run_with_reloader(main_func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        support.reloader_off("Django's autoreloader", "as with --noreload")
        return main_func(*args, **kwargs)

    module.run_with_reloader = run_with_reloader


def patch_basehttp(basehttp: ModuleType, support: ServerSupport) -> None:
    """Make ``run`` serve the WSGI handler behind the request gate."""
    module: Any = basehttp
    original: Callable[..., Any] = module.run
    signature = inspect.signature(original)

    @functools.wraps(original)
    def run(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        if support.in_place:
            handler = bound.arguments["wsgi_handler"]
            adapter = DjangoAdapter(handler, support)
            bound.arguments["wsgi_handler"] = support.gate_wsgi(handler, adapter)
        return original(*bound.args, **bound.kwargs)

    module.run = run


def restart_reason(name: str, module: object, settings_module: str) -> str | None:
    """Why an edit to module ``name`` needs a restart under Django, or None."""
    if _settings(name, settings_module):
        return "Django reads its settings once, at start-up"
    last = name.rpartition(".")[2]
    if last == "models" or _defines_models(module, name):
        return "Django registers models once, at start-up"
    if last == "apps":
        return "Django reads app configs once, at start-up"
    if last == "admin":
        return "Django's admin registrations run once, at start-up"
    return None


def _settings(name: str, settings_module: str) -> bool:
    """Whether ``name`` is the settings module, or a module of its settings package
    (``mysite.settings.base`` beside ``DJANGO_SETTINGS_MODULE=mysite.settings.dev``)."""
    if not settings_module:
        return False
    package = settings_module.rpartition(".")[0]
    if package.rpartition(".")[2] == "settings":
        settings_module = package
    return name == settings_module or name.startswith(settings_module + ".")


def _defines_models(module: object, name: str) -> bool:
    models = sys.modules.get("django.db.models")
    base = getattr(models, "Model", None)
    if base is None:
        return False
    return any(
        isinstance(value, type) and issubclass(value, base) and value.__module__ == name
        for value in list(vars(module).values())
    )


@final
class DjangoAdapter(AppAdapter):
    """Django's rules around a reload: restart for what is read once, caches cleared."""

    def __init__(self, handler: Any, support: ServerSupport) -> None:
        super().__init__(handler, None, "Django project")
        self._support = support

    def check(self, changed: Sequence[TrackedModule]) -> None:
        settings_module = os.environ.get("DJANGO_SETTINGS_MODULE", "")
        for tracked in changed:
            module = sys.modules.get(tracked.name)
            reason = restart_reason(tracked.name, module, settings_module)
            if reason is not None:
                raise RestartRequired(reason, path=tracked.path, module=tracked.name)

    def settle(self, report: Report | None) -> None:
        if report:
            importlib.import_module("django.urls").clear_url_caches()
        super().settle(report)

    def asset_roots(self) -> list[Path]:
        """The directories Django's template engines load from (DIRS and app directories)."""
        try:
            autoreload = importlib.import_module("django.template.autoreload")
            found = {Path(path).resolve() for path in autoreload.get_template_directories()}
        except Exception as exc:  # templates are then reloaded on restart only
            self._support.say(f"template changes need a restart: {exc!r}")
            return []
        return sorted(path for path in found if path.is_dir())

    def assets_changed(self, paths: Set[Path]) -> None:
        """Clear Django's template caches (it keeps compiled templates across requests)."""
        templates = sorted(path.name for path in paths if _template(path))
        if not templates:
            return
        importlib.import_module("django.template.autoreload").reset_loaders()
        plural = "s" if len(templates) > 1 else ""
        self._support.say(f"template{plural} reloaded: {', '.join(templates)}")


def _template(path: Path) -> bool:
    return any(path.match(pattern) for pattern in TEMPLATE_FILES)
