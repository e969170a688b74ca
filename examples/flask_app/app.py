"""A Flask app to edit while it serves; its state lives in memory.

    cd examples/flask_app
    relive run -m flask --app app run --debug

relive switches Flask's reloader off (the debugger stays on) and applies each saved edit
inside this process, between requests: edit a view, the after-request hook, a template
or greetings.py, and the next request runs the new code with the visit counter intact.
"""

import itertools
import os

import greetings
from flask import Flask, Response, render_template

app = Flask(__name__)
visits = itertools.count(1)  # kept across in-place edits, reset by a restart


@app.after_request
def served_by(response: Response) -> Response:
    response.headers["X-Served-By"] = f"relive pid {os.getpid()}"
    return response


@app.route("/")
def index() -> dict[str, object]:
    return {"message": greetings.greet("Flask"), "visit": next(visits)}


@app.route("/page")
def page() -> str:
    return render_template("page.html", message=greetings.greet("Flask"))
