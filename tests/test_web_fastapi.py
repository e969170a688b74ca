"""FastAPI under ``relive run`` end to end: a real uvicorn on 127.0.0.1, real HTTP, real edits.

The headline: 50 edits (routes, helpers, a dependency, a Pydantic model, middleware)
applied under steady load, with no failed request, no restart, the in-memory state kept,
every edit served and no request seeing half an edit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import (
    EVENT_TIMEOUT,
    EditsUnderLoad,
    Response,
    Start,
    copy_example,
    exists,
    free_port,
    request,
    served_by_another,
    served_pid,
    wait_for_answer,
    wait_for_server,
)
from relive.testing import wait_until, write_source

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


# The example, as its README shows it ----------------------------------------------------


def test_example_is_edited_live_then_restarted_when_the_app_is_made_anew(
    tmp_path: Path, start: Start
) -> None:
    copy_example("fastapi_app", tmp_path)
    port = free_port()
    relive = start(
        "-m", "uvicorn", "app:app", "--reload", "--port", str(port), "--log-level", "warning"
    )
    first = wait_for_server(relive, port)
    pid = served_pid(first)
    relive.pids.add(pid)
    assert first.json() == {"message": "Hello, FastAPI!", "visit": 1}
    relive.wait_for_line(
        "relive: uvicorn's --reload is off: relive applies edits in place, between requests",
        stream="stderr",
    )

    greetings = tmp_path / "greetings.py"
    write_source(greetings, greetings.read_text().replace('"Hello"', '"Howdy"'))
    edited = wait_for_answer(port, "/", lambda r: "Howdy" in r.body)
    assert edited.json()["visit"] > 1 and served_pid(edited) == pid  # in place, state kept

    app = tmp_path / "app.py"
    source = app.read_text()
    source = source.replace("def language() -> str:", "def language(lang: str = 'en') -> str:")
    source = source.replace('    return "en"', "    return lang")  # a dependency's new param
    source += '\n\n@app.get("/new")\ndef new() -> dict[str, str]:\n    return {"new": "route"}\n'
    write_source(app, source)
    assert wait_for_answer(port, "/?lang=fr", lambda r: "Bonjour" in r.body).status == 200
    assert request(port, "/new").json() == {"new": "route"}

    models = tmp_path / "models.py"
    write_source(models, models.read_text() + "    price: float = 9.5\n")
    item = wait_for_answer(port, "/items/1", lambda r: "price" in r.body).json()
    assert item == {"id": 1, "name": "kettle", "price": 9.5}

    write_source(greetings, greetings.read_text().replace("def greet(", "def greet(("))
    error = relive.wait_for_line("SyntaxError", stream="stderr")
    assert "greetings.py:" in error
    assert "Howdy" in request(port, "/").body  # the last good code keeps serving

    write_source(greetings, greetings.read_text().replace("def greet((", "def greet("))
    write_source(app, app.read_text().replace('title="relive FastAPI example"', 'title="x"'))
    relive.wait_for_line(
        "relive: restarting: app.py:19: app is a new app object after this edit", stream="stderr"
    )
    restarted = wait_for_answer(port, "/", served_by_another(pid))
    assert restarted.json()["visit"] == 1
    relive.pids.add(served_pid(restarted))
    wait_until(lambda: not exists(pid), timeout=EVENT_TIMEOUT)


# 50 edits under load ---------------------------------------------------------------------

APP = """\
import asyncio
import itertools
import os
import uuid

from fastapi import Depends, FastAPI, Request

import deps
import helpers
from models import Info

app = FastAPI()
BOOT = uuid.uuid4().hex  # module state: an in-place edit keeps it
hits = itertools.count(1)


@app.middleware("http")
async def stamp(request: Request, call_next):
    response = await call_next(request)
    response.headers["X-Middleware"] = "V_MIDDLEWARE"
    return response


@app.get("/")
async def index(dep: int = Depends(deps.version)) -> dict[str, object]:
    first = helpers.first()
    await asyncio.sleep(0.002)  # in flight while an edit may arrive
    return {
        "pid": os.getpid(),
        "boot": BOOT,
        "hit": next(hits),
        "view": V_VIEW,
        "first": first,
        "second": helpers.second(),
        "dep": dep,
        "model": Info().version,
    }
"""

FILES = {
    "app.py": APP,
    "helpers.py": "def first() -> int:\n    return V_HELPERS\n\n\ndef second() -> int:\n"
    "    return V_HELPERS\n",
    "deps.py": "def version() -> int:\n    return V_DEP\n",
    "models.py": "from pydantic import BaseModel\n\n\nclass Info(BaseModel):\n"
    "    version: int = V_MODEL\n    note: str = 'V_MODEL'\n",
}
KINDS = ("VIEW", "HELPERS", "DEP", "MODEL", "MIDDLEWARE")
WHERE = {"VIEW": "app.py", "HELPERS": "helpers.py", "DEP": "deps.py", "MODEL": "models.py"}
WHERE["MIDDLEWARE"] = "app.py"
FIELD = {"VIEW": "view", "HELPERS": "first", "DEP": "dep", "MODEL": "model"}
FIELD["MIDDLEWARE"] = "middleware"


def parse(response: Response) -> dict[str, object]:
    record: dict[str, object] = response.json()
    record["middleware"] = int(response.headers["x-middleware"])
    return record


SCENARIO = EditsUnderLoad(FILES, KINDS, WHERE, FIELD, parse)


def test_fifty_edits_under_load_fail_no_request(tmp_path: Path, start: Start) -> None:
    SCENARIO.run(
        tmp_path,
        start,
        lambda port: ["-m", "uvicorn", "app:app", "--port", str(port), "--log-level", "warning"],
    )


# A script that calls uvicorn.run -------------------------------------------------------

SCRIPT = """\
import os

import uvicorn
from fastapi import FastAPI

app = FastAPI()
calls = 0


@app.get("/")
def index() -> dict[str, object]:
    global calls
    calls += 1
    return {"pid": os.getpid(), "value": "one", "calls": calls}


if __name__ == "__main__":
    uvicorn.run("server:app", port=PORT, log_level="warning", reload=True)
"""


def test_script_calling_uvicorn_run_is_edited_in_place_except_its_run_call(
    tmp_path: Path, start: Start
) -> None:
    port = free_port()
    script = tmp_path / "server.py"
    write_source(script, SCRIPT.replace("PORT", str(port)), dedent=False)
    relive = start("server.py")
    first = wait_for_server(relive, port).json()
    relive.pids.add(first["pid"])
    relive.wait_for_line("relive: uvicorn's --reload is off", stream="stderr")

    write_source(script, script.read_text().replace('"one"', '"two"'), dedent=False)
    edited = wait_for_answer(port, "/", lambda r: r.json()["value"] == "two").json()
    assert edited["pid"] == first["pid"] and edited["calls"] > 1

    write_source(script, script.read_text().replace('log_level="warning"', 'log_level="error"'))
    relive.wait_for_line(
        "relive: restarting: server.py:17: the statement running now changed",
        stream="stderr",
    )
    restarted = wait_for_answer(port, "/", lambda r: r.json()["pid"] != first["pid"]).json()
    relive.pids.add(restarted["pid"])
    assert restarted["value"] == "two" and restarted["calls"] == 1


# An app factory ----------------------------------------------------------------------------

FACTORY = """\
import os

from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/")
    def index() -> dict[str, object]:
        return {"pid": os.getpid(), "value": "one"}

    return app
"""


def test_editing_the_app_factory_restarts(tmp_path: Path, start: Start) -> None:
    write_source(tmp_path / "factory.py", FACTORY, dedent=False)
    port = free_port()
    args = ["factory:create_app", "--factory", "--port", str(port), "--log-level", "warning"]
    relive = start("-m", "uvicorn", *args)
    first = wait_for_server(relive, port).json()
    relive.pids.add(first["pid"])

    write_source(tmp_path / "factory.py", FACTORY.replace('"one"', '"two"'), dedent=False)
    relive.wait_for_line(
        "relive: restarting: factory.py:6: create_app() changed; the app the server runs was"
        " built by the old code",
        stream="stderr",
    )
    restarted = wait_for_answer(port, "/", lambda r: r.json()["pid"] != first["pid"]).json()
    relive.pids.add(restarted["pid"])
    assert restarted["value"] == "two"
