"""Flask apps after an edit: setup methods allowed again, routes and hooks kept current.

Flask refuses ``@app.route`` and the other setup methods once it has handled a request;
relive lifts that flag while an edit is applied (no request runs then) so new routes and
hooks appear on the running app. Afterwards the rules of removed or re-decorated views
are dropped, hooks registered twice are kept once, and templates reload when changed.
A route added to an already registered blueprint needs a restart: Flask copies a
blueprint's routes into the app once, when it is registered.
"""

from __future__ import annotations

from typing import Any, final

from relive._engine import Report
from relive._errors import RestartRequired
from relive._integrations.adapter import AppAdapter
from relive._integrations.binding import AppBinding
from relive._integrations.starlette import removed_definition

__all__ = ["FlaskAdapter", "find_flask_app"]

# The app's hook registries: {blueprint name or None: [functions]}.
HOOKS = (
    "before_request_funcs",
    "after_request_funcs",
    "teardown_request_funcs",
    "template_context_processors",
    "url_value_preprocessors",
    "url_default_functions",
)


def find_flask_app(app: object) -> Any:
    """The Flask app in ``app`` or inside the layers wrapping it (the debugger), if any."""
    for _ in range(8):
        if any(_is_flask_class(cls) for cls in type(app).__mro__):
            return app
        app = getattr(app, "app", None)
        if app is None:
            break
    return None


def _is_flask_class(cls: type) -> bool:
    return cls.__name__ == "Flask" and cls.__module__.startswith("flask")


@final
class FlaskAdapter(AppAdapter):
    """Keeps a Flask app's URL map, views and hooks in step with edits."""

    def __init__(self, app: Any, binding: AppBinding | None) -> None:
        super().__init__(app, binding, "Flask app")
        if app.config.get("TEMPLATES_AUTO_RELOAD") is None:
            app.config["TEMPLATES_AUTO_RELOAD"] = True  # what relive's users expect in dev
            if "jinja_env" in vars(app):
                app.jinja_env.auto_reload = True
        self._first_request = False
        self._blueprints: list[tuple[Any, bool, int]] = []
        self._rules: list[Any] = []
        self._views: dict[str, Any] = {}
        self._hooks: dict[str, dict[Any, list[Any]]] = {}

    def prepare(self) -> None:
        app = self.app
        self._first_request, app._got_first_request = app._got_first_request, False
        self._blueprints = [
            (blueprint, blueprint._got_registered_once, len(blueprint.deferred_functions))
            for blueprint in app.blueprints.values()
        ]
        for blueprint, _, _ in self._blueprints:
            blueprint._got_registered_once = False
        self._rules = list(app.url_map.iter_rules())
        self._views = dict(app.view_functions)
        self._hooks = {
            name: {key: list(functions) for key, functions in getattr(app, name).items()}
            for name in HOOKS
        }

    def settle(self, report: Report | None) -> None:
        try:
            if report is None:
                self._restore()
                return
            self._check_blueprints()
            reloaded = set(report.reloaded)
            self._update_rules(reloaded)
            self._update_hooks(reloaded)
        finally:
            self.app._got_first_request = self._first_request
            for blueprint, registered, _ in self._blueprints:
                blueprint._got_registered_once = registered
        super().settle(report)

    def _restore(self) -> None:
        app = self.app
        app.view_functions.clear()
        app.view_functions.update(self._views)
        for name, saved in self._hooks.items():
            registry = getattr(app, name)
            registry.clear()
            registry.update(saved)
        for blueprint, _, count in self._blueprints:
            del blueprint.deferred_functions[count:]
        rules = list(app.url_map.iter_rules())
        if len(rules) != len(self._rules) or any(
            a is not b for a, b in zip(rules, self._rules, strict=True)
        ):
            app.url_map = _rebuilt_map(app.url_map, self._rules)

    def _check_blueprints(self) -> None:
        for blueprint, _, count in self._blueprints:
            if len(blueprint.deferred_functions) > count:
                del blueprint.deferred_functions[count:]
                raise RestartRequired(
                    f"blueprint {blueprint.name!r} got a new route or hook: Flask copies a"
                    " blueprint's routes into the app once, when it is registered"
                )

    def _update_rules(self, reloaded: set[str]) -> None:
        app = self.app
        before = {id(rule) for rule in self._rules}
        rules = list(app.url_map.iter_rules())
        again = {rule.endpoint for rule in rules if id(rule) not in before}
        gone = {
            endpoint
            for endpoint, view in app.view_functions.items()
            if removed_definition(view, reloaded)
        }

        def stale(rule: Any) -> bool:
            return id(rule) in before and (rule.endpoint in again or rule.endpoint in gone)

        kept = [rule for rule in rules if not stale(rule)]
        for endpoint in gone:
            del app.view_functions[endpoint]
        if len(kept) != len(rules):
            app.url_map = _rebuilt_map(app.url_map, kept)

    def _update_hooks(self, reloaded: set[str]) -> None:
        for name in HOOKS:
            for functions in getattr(self.app, name).values():
                unique: list[Any] = []
                for function in functions:
                    if not removed_definition(function, reloaded) and not any(
                        function is seen for seen in unique
                    ):
                        unique.append(function)
                functions[:] = unique


def _rebuilt_map(old: Any, rules: list[Any]) -> Any:
    """A new URL map with ``old``'s settings and copies of ``rules`` (a Werkzeug map
    cannot remove a rule)."""
    new = type(old)(
        default_subdomain=old.default_subdomain,
        strict_slashes=old.strict_slashes,
        merge_slashes=old.merge_slashes,
        redirect_defaults=old.redirect_defaults,
        converters=old.converters,
        sort_parameters=old.sort_parameters,
        sort_key=old.sort_key,
        host_matching=old.host_matching,
    )
    for rule in rules:
        copy = rule.empty()
        for name, value in vars(rule).items():  # what Flask set on the rule after creation
            if not name.startswith("_"):
                vars(copy).setdefault(name, value)
        new.add(copy)
    return new
