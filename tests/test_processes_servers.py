"""One edit, every worker: gunicorn and uvicorn with several workers under ``relive run``.

Real servers on 127.0.0.1 under steady load; every response is checked: none failed, the
worker pids did not change, each worker kept its counter, each edit reached every worker.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from tests.harness import Load, Relive, Start, free_port, request, wait_for_server

from relive.testing import wait_until, write_source

pytest.importorskip("gunicorn")

FLASK_APP = """
import os
from flask import Flask, jsonify
import handlers

app = Flask(__name__)
HITS = {"n": 0}

@app.route("/")
def index():
    HITS["n"] += 1
    return jsonify(pid=os.getpid(), v=handlers.version(), hits=HITS["n"])
"""

FASTAPI_APP = """
import os
from fastapi import FastAPI
import handlers

app = FastAPI()
HITS = {"n": 0}

@app.get("/")
def index():
    HITS["n"] += 1
    return {"pid": os.getpid(), "v": handlers.version(), "hits": HITS["n"]}
"""

NEW_FLASK_ROUTE = """

@app.route("/new")
def new():
    return jsonify(pid=os.getpid())
"""


def _handlers(version: int) -> str:
    return f"def version():\n    return {version}\n"


def _wait_for_line(relive: Relive, text: str, count: int = 1) -> None:
    with contextlib.suppress(TimeoutError):  # the assertion says what was said instead
        wait_until(
            lambda: sum(text in line for line in relive.stderr) >= count or relive.proc.poll(),
            timeout=20,
        )
    assert sum(text in line for line in relive.stderr) >= count, relive.error_text()


def _pids(responses: list[dict[str, Any]]) -> set[int]:
    return {response["pid"] for response in responses}


def _start_under_load(relive: Relive, port: int, workers: int) -> tuple[Load, set[int]]:
    wait_for_server(relive, port)
    load = Load(port, threads=3).__enter__()
    wait_until(lambda: len(_pids(load.responses)) >= workers, timeout=20)
    pids = _pids(load.responses)
    relive.pids.update(pids)
    return load, pids


def _edit_reaches_every_worker(
    root: Path, relive: Relive, load: Load, version: int, workers: int, count: int
) -> None:
    write_source(root / "handlers.py", _handlers(version))
    _wait_for_line(relive, f"handlers.py: 1 patched in {workers} processes", count)
    after = len(load.responses) + load.threads  # those in flight may predate the report
    wait_until(lambda: len(load.responses) > after + 3 * workers, timeout=20)
    assert {r["v"] for r in load.responses[after:]} == {version}


def _assert_state_kept(load: Load, pids: set[int]) -> None:
    assert load.failures == []
    assert _pids(load.responses) == pids, "a worker was replaced"
    for pid in pids:
        hits = [r["hits"] for r in load.responses if r["pid"] == pid]
        assert len(set(hits)) == len(hits), "a counter restarted"  # else a value repeats


def test_gunicorn_sync_workers_apply_every_edit_between_requests(
    tmp_path: Path, start: Start
) -> None:
    write_source(tmp_path / "handlers.py", _handlers(1))
    write_source(tmp_path / "app.py", FLASK_APP)
    port = free_port()
    bind = f"127.0.0.1:{port}"
    relive = start("-m", "gunicorn", "app:app", "-w", "3", "-b", bind, "--reload")
    load, pids = _start_under_load(relive, port, 3)
    try:
        for count, version in enumerate((2, 3), start=1):
            _edit_reaches_every_worker(tmp_path, relive, load, version, 3, count)
        write_source(tmp_path / "handlers.py", "def version(:\n    return 4\n")
        _wait_for_line(relive, "(in 3 processes; no process applied it)")
        # Saved while handlers.py is still broken: the new route applies, the broken file
        # is held back until it is fixed.
        write_source(tmp_path / "app.py", FLASK_APP + NEW_FLASK_ROUTE)
        _wait_for_line(relive, "app.py: 1 added, 1 statement run in 3 processes")
        answered: set[int] = set()
        wait_until(lambda: answered.add(request(port, "/new").json()["pid"]) or answered == pids)
        _edit_reaches_every_worker(tmp_path, relive, load, 4, 3, 3)
    finally:
        load.__exit__()
    _assert_state_kept(load, pids)
    assert {r["v"] for r in load.responses} == {1, 2, 3, 4}
    assert "gunicorn's --reload is off" in relive.error_text()
    assert "handlers.py: 1 patched in 3 processes" in relive.stderr[-1]


def test_gunicorn_restarts_its_workers_gracefully_when_an_edit_needs_it(
    tmp_path: Path, start: Start
) -> None:
    write_source(tmp_path / "handlers.py", _handlers(1))
    write_source(tmp_path / "app.py", FLASK_APP)
    port = free_port()
    relive = start("-m", "gunicorn", "app:app", "-w", "2", "-b", f"127.0.0.1:{port}")
    load, pids = _start_under_load(relive, port, 2)
    try:
        # A new app object: the workers must load the app anew.
        write_source(
            tmp_path / "app.py", FLASK_APP.replace("(__name__)", "(__name__, static_folder=None)")
        )
        _wait_for_line(relive, "restarting the workers: app.py:")
        wait_until(lambda: len(_pids(load.responses) - pids) >= 2, timeout=20)
    finally:
        load.__exit__()
    relive.pids.update(_pids(load.responses))
    assert load.failures == [], "a request failed while the workers restarted"
    assert relive.program_pids() == [] or len(set(relive.program_pids())) == 1
    assert not any("restarting:" in line for line in relive.stderr), "the master restarted"


@pytest.mark.parametrize(
    "server",
    [
        ["-m", "gunicorn", "app:app", "-w", "2", "-k", "uvicorn.workers.UvicornWorker", "-b"],
        ["-m", "uvicorn", "app:app", "--workers", "2", "--port"],
    ],
    ids=["gunicorn-uvicorn-worker", "uvicorn-workers"],
)
def test_asgi_workers_apply_every_edit(tmp_path: Path, start: Start, server: list[str]) -> None:
    write_source(tmp_path / "handlers.py", _handlers(1))
    write_source(tmp_path / "app.py", FASTAPI_APP)
    port = free_port()
    where = f"127.0.0.1:{port}" if server[-1] == "-b" else str(port)
    relive = start(*server, where)
    load, pids = _start_under_load(relive, port, 2)
    try:
        _edit_reaches_every_worker(tmp_path, relive, load, 2, 2, 1)
    finally:
        load.__exit__()
    _assert_state_kept(load, pids)
    assert "runs 1 worker" not in relive.error_text()
