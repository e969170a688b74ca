"""Flask under ``relive run`` end to end: Werkzeug's server on 127.0.0.1, real HTTP, real edits.

The headline: 50 edits (views, helpers, an after-request hook, a class) applied under
steady load, with no failed request, no restart, the in-memory state kept, every edit
served and no request seeing half an edit.
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

pytest.importorskip("flask")


# The example, as its README shows it ----------------------------------------------------


def test_example_is_edited_live_then_restarted_when_the_app_is_made_anew(
    tmp_path: Path, start: Start
) -> None:
    copy_example("flask_app", tmp_path)
    port = free_port()
    relive = start("-m", "flask", "--app", "app", "run", "--debug", "--port", str(port))
    first = wait_for_server(relive, port)
    pid = served_pid(first)
    relive.pids.add(pid)
    assert first.json() == {"message": "Hello, Flask!", "visit": 1}
    relive.wait_for_line(
        "relive: Flask's reloader is off: relive applies edits in place, between requests",
        stream="stderr",
    )

    greetings = tmp_path / "greetings.py"
    write_source(greetings, greetings.read_text().replace("Hello", "Howdy"))
    edited = wait_for_answer(port, "/", lambda r: "Howdy" in r.body)
    assert edited.json()["visit"] > 1 and served_pid(edited) == pid  # in place, state kept

    template = tmp_path / "templates" / "page.html"
    write_source(template, template.read_text().replace("<h1>", "<h1 class='edited'>"))
    assert "<h1 class='edited'>Howdy, Flask!</h1>" in request(port, "/page").body

    app = tmp_path / "app.py"
    source = app.read_text().replace('@app.route("/")', '@app.route("/home")')
    source += '\n\n@app.route("/new")\ndef new() -> str:\n    return "new route"\n'
    write_source(app, source)
    wait_for_answer(port, "/new", lambda r: r.status == 200 and r.body == "new route")
    assert request(port, "/home").json()["message"] == "Howdy, Flask!"
    assert request(port, "/").status == 404  # the old rule is gone

    write_source(app, app.read_text().replace("def new() -> str:", "def new( -> str:"))
    error = relive.wait_for_line("SyntaxError", stream="stderr")
    assert "app.py:" in error
    assert request(port, "/new").body == "new route"  # the last good code keeps serving

    write_source(app, app.read_text().replace("def new( -> str:", "def new() -> str:"))
    write_source(app, app.read_text().replace("app = Flask(__name__)", "app = Flask('app')"))
    relive.wait_for_line(
        "relive: restarting: app.py:17: app is a new app object after this edit", stream="stderr"
    )
    restarted = wait_for_answer(port, "/home", served_by_another(pid))
    assert restarted.json()["visit"] == 1
    relive.pids.add(served_pid(restarted))
    wait_until(lambda: not exists(pid), timeout=EVENT_TIMEOUT)


# 50 edits under load ---------------------------------------------------------------------

APP = """\
import itertools
import logging
import os
import time
import uuid

from flask import Flask, Response

import helpers
import services

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
app = Flask(__name__)
BOOT = uuid.uuid4().hex  # module state: an in-place edit keeps it
hits = itertools.count(1)


@app.after_request
def stamp(response: Response) -> Response:
    response.headers["X-Hook"] = "V_HOOK"
    return response


@app.route("/")
def index() -> dict[str, object]:
    first = helpers.first()
    time.sleep(0.002)  # in flight while an edit may arrive
    return {
        "pid": os.getpid(),
        "boot": BOOT,
        "hit": next(hits),
        "view": V_VIEW,
        "first": first,
        "second": helpers.second(),
        "service": services.pricing.version(),
    }
"""

FILES = {
    "app.py": APP,
    "helpers.py": "def first() -> int:\n    return V_HELPERS\n\n\ndef second() -> int:\n"
    "    return V_HELPERS\n",
    "services.py": "class Pricing:\n    def version(self) -> int:\n        return V_SERVICE\n\n\n"
    "pricing = Pricing()  # an instance made at start-up: it sees the edits\n",
}
KINDS = ("VIEW", "HELPERS", "SERVICE", "HOOK")
WHERE = {"VIEW": "app.py", "HELPERS": "helpers.py", "SERVICE": "services.py", "HOOK": "app.py"}
FIELD = {"VIEW": "view", "HELPERS": "first", "SERVICE": "service", "HOOK": "hook"}


def parse(response: Response) -> dict[str, object]:
    record: dict[str, object] = response.json()
    record["hook"] = int(response.headers["x-hook"])
    return record


SCENARIO = EditsUnderLoad(FILES, KINDS, WHERE, FIELD, parse)


def test_fifty_edits_under_load_fail_no_request(tmp_path: Path, start: Start) -> None:
    SCENARIO.run(
        tmp_path,
        start,
        lambda port: ["-m", "flask", "--app", "app", "run", "--port", str(port)],
        threads=4,
        pause=0.005,
    )


# app.run() in a script ---------------------------------------------------------------------

SCRIPT = """\
import os

from flask import Flask

import views

app = Flask(__name__)
app.register_blueprint(views.blueprint)


@app.route("/pid")
def pid() -> str:
    return str(os.getpid())


if __name__ == "__main__":
    app.run(port=PORT, debug=True)
"""

VIEWS = """\
from flask import Blueprint

blueprint = Blueprint("views", __name__)


@blueprint.route("/")
def index() -> str:
    return "one"
"""


def test_app_run_in_a_script_blueprint_edits_in_place_new_blueprint_route_restarts(
    tmp_path: Path, start: Start
) -> None:
    port = free_port()
    write_source(tmp_path / "server.py", SCRIPT.replace("PORT", str(port)), dedent=False)
    write_source(tmp_path / "views.py", VIEWS, dedent=False)
    relive = start("server.py")
    wait_for_server(relive, port)
    pid = int(request(port, "/pid").body)
    relive.pids.add(pid)
    relive.wait_for_line("relive: Flask's reloader is off", stream="stderr")

    write_source(tmp_path / "views.py", VIEWS.replace('"one"', '"two"'), dedent=False)
    wait_for_answer(port, "/", lambda r: r.body == "two")
    assert int(request(port, "/pid").body) == pid

    route = '\n\n@blueprint.route("/more")\ndef more() -> str:\n    return "more"\n'
    write_source(tmp_path / "views.py", VIEWS.replace('"one"', '"two"') + route, dedent=False)
    relive.wait_for_line(
        "relive: restarting: blueprint 'views' got a new route or hook", stream="stderr"
    )
    wait_for_answer(port, "/more", lambda r: r.status == 200 and r.body == "more")
    relive.pids.add(int(request(port, "/pid").body))
    assert int(request(port, "/pid").body) != pid
