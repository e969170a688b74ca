"""Framework rules around a reload, in-process: an app as v1, an edit as v2, what must hold.

Each test imports a small app from a temporary package, serves it through
``ServerSupport`` (its gate and adapter) with the framework's own test client, saves an
edit and applies it as the watcher would (``support.apply_paths``).
"""

from __future__ import annotations

import asyncio
import importlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from relive._engine import Engine
from relive._errors import ReloadError, RestartRequired
from relive._integrations.binding import find_binding
from relive._integrations.django import restart_reason
from relive._integrations.imports import ImportHooks
from relive._integrations.servers import ServerSupport
from relive.testing import TemporaryPackage

# Import hooks ----------------------------------------------------------------------------


def test_a_hook_runs_right_after_the_module_with_its_real_loader(
    package: TemporaryPackage,
) -> None:
    package.write("hooked.py", "VALUE = 1\n")
    hooks = ImportHooks()
    seen: list[tuple[int, str]] = []
    hooks.add(
        "hooked", lambda module: seen.append((module.VALUE, type(module.__loader__).__name__))
    )
    try:
        module = package.module("hooked")
    finally:
        hooks.remove()
    assert seen == [(1, "SourceFileLoader")]
    assert type(module.__spec__.loader).__name__ == "SourceFileLoader"
    assert hooks.pending() == []


def test_a_failing_hook_is_reported_and_the_import_goes_on(
    package: TemporaryPackage, capsys: pytest.CaptureFixture[str]
) -> None:
    package.write("fragile.py", "VALUE = 2\n")
    hooks = ImportHooks()

    def broken(module: object) -> None:
        raise RuntimeError("bug in relive")

    hooks.add("fragile", broken)
    try:
        assert package.module("fragile").VALUE == 2
    finally:
        hooks.remove()
    assert "relive: could not hook into fragile (RuntimeError('bug in relive'))" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("mysite.settings", "Django reads its settings once, at start-up"),
        ("mysite.settings.dev", "Django reads its settings once, at start-up"),
        ("notes.models", "Django registers models once, at start-up"),
        ("notes.apps", "Django reads app configs once, at start-up"),
        ("notes.admin", "Django's admin registrations run once, at start-up"),
        ("notes.views", None),
        ("mysite.urls", None),
    ],
)
def test_django_restart_reasons(name: str, reason: str | None) -> None:
    assert restart_reason(name, object(), "mysite.settings") == reason


def test_django_settings_package_restarts_for_each_of_its_modules() -> None:
    settings = "mysite.settings.dev"
    assert restart_reason("mysite.settings.base", object(), settings) is not None
    assert restart_reason("mysite.views", object(), settings) is None


# Starlette and FastAPI -------------------------------------------------------------------

FASTAPI_APP = """\
from fastapi import FastAPI, Request

import shapes

app = FastAPI()


@app.get("/")
def index() -> dict[str, object]:
    return {"value": 1}


@app.get("/item")
def item() -> shapes.Item:
    return shapes.Item(name="kettle")
"""

SHAPES = """\
from pydantic import BaseModel


class Item(BaseModel):
    name: str


class Order(BaseModel):
    items: list[Item]
"""


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class ASGIClient:
    """GET requests straight into an ASGI app, each in its own event loop."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def get(self, target: str) -> Answer:
        return asyncio.run(self._get(target))

    async def _get(self, target: str) -> Answer:
        path, _, query = target.partition("?")
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": query.encode(), "headers": [(b"host", b"test")],
            "client": ("127.0.0.1", 1), "server": ("test", 80),
        }  # fmt: skip
        sent: list[dict[str, Any]] = []
        requested = False
        answered = asyncio.Event()

        async def receive() -> dict[str, Any]:
            # As a server does: the (empty) body once, then a disconnect once answered.
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await answered.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered.set()

        await self.app(scope, receive, send)
        start = next(message for message in sent if message["type"] == "http.response.start")
        headers = {key.decode().lower(): value.decode() for key, value in start["headers"]}
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return Answer(start["status"], headers, body)


@pytest.fixture
def fastapi_app(package: TemporaryPackage, engine: Engine) -> tuple[ServerSupport, Any]:
    pytest.importorskip("fastapi")
    from relive._integrations.fastapi import record_route_arguments
    from relive._integrations.starlette import StarletteAdapter

    record_route_arguments(importlib.import_module("fastapi.routing"))
    package.write("shapes.py", SHAPES)
    module = package.module("webapp", FASTAPI_APP)
    support = ServerSupport(engine=engine, stream=io.StringIO())
    binding = find_binding(engine, module.app)
    gated = support.gate_asgi(module.app, StarletteAdapter(module.app, binding, "FastAPI app"))
    return support, ASGIClient(gated)


def edit(support: ServerSupport, path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))
    support.apply_paths([path])


def test_fastapi_signature_new_route_and_middleware_follow_edits(
    package: TemporaryPackage, fastapi_app: tuple[ServerSupport, Any]
) -> None:
    support, client = fastapi_app
    app = package.root / "webapp.py"
    assert client.get("/").json() == {"value": 1}

    middleware = (
        '\n\n@app.middleware("http")\nasync def stamp(request: Request, call_next):\n'
        "    response = await call_next(request)\n"
        '    response.headers["X-Stamp"] = "yes"\n    return response\n'
        '\n\n@app.get("/new")\ndef new() -> str:\n    return "new"\n'
    )
    path = app
    path.write_text(
        path.read_text().replace("def index() -> dict", "def index(q: int = 0) -> dict")
        .replace('{"value": 1}', '{"value": q}')
        + middleware
    )  # fmt: skip
    support.apply_paths([path])

    assert client.get("/?q=5").json() == {"value": 5}  # the route was analysed again
    answer = client.get("/new")
    assert answer.json() == "new" and answer.headers["x-stamp"] == "yes"


def test_fastapi_removed_and_moved_routes_are_gone(
    package: TemporaryPackage, fastapi_app: tuple[ServerSupport, Any]
) -> None:
    support, client = fastapi_app
    app = package.root / "webapp.py"
    edit(support, app, '@app.get("/")', '@app.get("/home")')
    assert client.get("/").status_code == 404
    assert client.get("/home").json() == {"value": 1}

    source = app.read_text()
    start = source.index('@app.get("/item")')
    app.write_text(source[:start])
    support.apply_paths([app])
    assert client.get("/item").status_code == 404


def test_pydantic_field_added_reaches_routes_and_nested_models(
    package: TemporaryPackage, fastapi_app: tuple[ServerSupport, Any]
) -> None:
    support, client = fastapi_app
    shapes = importlib.import_module("shapes")
    item_class = shapes.Item
    edit(
        support, package.root / "shapes.py", "    name: str\n", "    name: str\n    size: int = 3\n"
    )

    assert client.get("/item").json() == {"name": "kettle", "size": 3}
    order = shapes.Order.model_validate({"items": [{"name": "cup"}]})
    assert type(order.items[0]) is item_class  # validation builds the live class
    assert order.items[0].size == 3  # the nesting model saw the new field


def test_fastapi_rejected_edit_leaves_no_route_behind(
    package: TemporaryPackage, fastapi_app: tuple[ServerSupport, Any]
) -> None:
    support, client = fastapi_app
    app = package.root / "webapp.py"
    broken = '\n\n@app.get("/half")\ndef half() -> int:\n    return 1\n\n\nboom = 1 / 0\n'
    app.write_text(app.read_text() + broken)
    with pytest.raises(ReloadError, match="ZeroDivisionError"):
        support.apply_paths([app])
    assert client.get("/half").status_code == 404
    assert client.get("/").json() == {"value": 1}


def test_fastapi_app_made_anew_needs_a_restart(
    package: TemporaryPackage, fastapi_app: tuple[ServerSupport, Any]
) -> None:
    support, _ = fastapi_app
    app = package.root / "webapp.py"
    with pytest.raises(RestartRequired, match="app is a new app object") as caught:
        edit(support, app, "app = FastAPI()", "app = FastAPI(title='x')")
    assert caught.value.lineno == 5


# Flask -----------------------------------------------------------------------------------

FLASK_APP = """\
from flask import Flask, g

app = Flask(__name__)


@app.route("/")
def index() -> str:
    return "one"
"""


@pytest.fixture
def flask_app(package: TemporaryPackage, engine: Engine) -> tuple[ServerSupport, Any]:
    pytest.importorskip("flask")
    from relive._integrations.flask import FlaskAdapter

    module = package.module("flaskapp", FLASK_APP)
    support = ServerSupport(engine=engine, stream=io.StringIO())
    support.gate_wsgi(module.app, FlaskAdapter(module.app, find_binding(engine, module.app)))
    client = module.app.test_client()
    assert client.get("/").text == "one"  # the app has handled a request: setup is over
    return support, client


def test_flask_new_route_and_hook_after_the_first_request(
    package: TemporaryPackage, flask_app: tuple[ServerSupport, Any]
) -> None:
    support, client = flask_app
    app = package.root / "flaskapp.py"
    added = (
        '\n\n@app.route("/new")\ndef new() -> str:\n    return "new " + g.stamp\n'
        '\n\n@app.before_request\ndef stamp() -> None:\n    g.stamp = "stamped"\n'
    )
    app.write_text(app.read_text() + added)
    support.apply_paths([app])
    assert client.get("/new").text == "new stamped"

    edit(support, app, 'g.stamp = "stamped"', 'g.stamp = "again"')
    assert client.get("/new").text == "new again"
    flask_module = importlib.import_module("flaskapp")
    assert flask_module.app.before_request_funcs[None] == [flask_module.stamp]


def test_flask_moved_and_removed_views(
    package: TemporaryPackage, flask_app: tuple[ServerSupport, Any]
) -> None:
    support, client = flask_app
    app = package.root / "flaskapp.py"
    edit(support, app, '@app.route("/")', '@app.route("/home")')
    assert client.get("/").status_code == 404
    assert client.get("/home").text == "one"

    source = app.read_text()
    app.write_text(source[: source.index('@app.route("/home")')])
    support.apply_paths([app])
    assert client.get("/home").status_code == 404


def test_flask_rejected_edit_leaves_no_rule_behind(
    package: TemporaryPackage, flask_app: tuple[ServerSupport, Any]
) -> None:
    support, client = flask_app
    app = package.root / "flaskapp.py"
    broken = '\n\n@app.route("/half")\ndef half() -> str:\n    return "half"\n\n\nboom = 1 / 0\n'
    app.write_text(app.read_text() + broken)
    with pytest.raises(ReloadError, match="ZeroDivisionError"):
        support.apply_paths([app])
    assert client.get("/half").status_code == 404
    assert client.get("/").text == "one"
