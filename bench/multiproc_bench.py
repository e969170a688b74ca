"""Multi-worker bench: one edit, every worker, relive beside ``gunicorn --reload``.

A 4-worker app (Flask on gunicorn's sync workers, FastAPI on ``UvicornWorker``) under
steady load of new connections (about 150 requests/s) takes 10 saves: edits of a helper
module, a syntax error and its fix, and a new route. For each tool it counts the failed
requests, times each save until no worker serves the old code any more (observed: the last
response of the old version was sent that long after the save; for relive also as relive
reports it: save-to-committed-in-all-workers), and says what became of the workers (pids
replaced, counters restarted). Prints a markdown table.
Usage: `.venv/bin/python bench/multiproc_bench.py [--quick] [--workers N]`.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RATE = 150.0  # requests per second, each on a new connection
LOAD_THREADS = 6
EDIT_TIMEOUT = 10.0
BROKEN_FOR = 1.5  # seconds the syntax error stays on disk

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
FLASK_ROUTE = '\n@app.route("/new")\ndef new():\n    return jsonify(pid=os.getpid())\n'

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
FASTAPI_ROUTE = '\n@app.get("/new")\ndef new():\n    return {"pid": os.getpid()}\n'


@dataclass
class Sample:
    sent: float
    done: float
    status: int
    body: dict[str, Any] = field(default_factory=dict)


class Load:
    """``LOAD_THREADS`` clients sharing ``RATE`` requests/s, each on a new connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, daemon=True) for _ in range(LOAD_THREADS)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _run(self) -> None:
        pause = LOAD_THREADS / RATE
        while not self._stop.is_set():
            sent = time.monotonic()
            sample = Sample(sent, sent, 0)
            try:
                status, body = get(self.port, "/")
                sample.status, sample.body = status, body
            except Exception:
                sample.status = -1
            sample.done = time.monotonic()
            with self._lock:
                self.samples.append(sample)
            self._stop.wait(max(0.0, pause - (sample.done - sent)))

    def since(self, moment: float) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if s.sent >= moment]


def get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        data = answer.read()
        return answer.status, json.loads(data) if answer.status == 200 else {}
    finally:
        connection.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Run:
    tool: str
    worker: str
    failed: int = 0
    requests: int = 0
    latencies: list[float] = field(default_factory=list)  # observed, seconds
    reported: list[float] = field(default_factory=list)  # relive's own line, seconds
    windows: list[float] = field(default_factory=list)  # relive --verbose, seconds
    missed: int = 0  # edits never served within EDIT_TIMEOUT
    new_route: bool = False
    pids_replaced: int = 0
    state_kept: bool = True  # no worker replaced, each worker's counter never went back


def command(tool: str, worker: str, port: int, workers: int) -> list[str]:
    base = ["-m", "gunicorn", "app:app", "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    if worker == "uvicorn":
        base += ["-k", "uvicorn.workers.UvicornWorker"]
    if tool == "relive":
        return [sys.executable, "-m", "relive", "run", "--verbose", *base]
    return [sys.executable, *base, "--reload"]


def wait_for_server(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if get(port, "/")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server never answered")


def wait_for_version(load: Load, saved: float, version: int, workers: int) -> float | None:
    """Seconds from the save until no worker serves an older version (the last old
    response's send time), once every worker has served ``version``; None on timeout."""
    deadline = saved + EDIT_TIMEOUT
    while time.monotonic() < deadline:
        samples = load.since(saved)
        fresh = {s.body.get("pid") for s in samples if s.body.get("v", 0) >= version}
        if len(fresh) >= workers:
            old = [s.sent for s in samples if 0 < s.body.get("v", version) < version]
            return (max(old) - saved) if old else 0.0
        time.sleep(0.01)
    return None


def edit_all(
    root: Path, app: str, route: str, run: Run, load: Load, workers: int, edits: int
) -> None:
    handlers = root / "handlers.py"
    version = 1
    for number in range(1, edits + 1):
        if number == 4:  # a syntax error, left on disk a while, then fixed by the next save
            handlers.write_text(f"def version(:\n    return {version + 1}\n")
            time.sleep(BROKEN_FOR)
            continue
        if number == 7:  # a new route
            (root / "app.py").write_text(app + route)
            deadline = time.monotonic() + EDIT_TIMEOUT
            while time.monotonic() < deadline and not run.new_route:
                with contextlib.suppress(OSError):
                    run.new_route = get(load.port, "/new")[0] == 200
                time.sleep(0.02)
            continue
        version += 1
        saved = time.monotonic()
        handlers.write_text(f"def version():\n    return {version}\n")
        latency = wait_for_version(load, saved, version, workers)
        if latency is None:
            run.missed += 1
        else:
            run.latencies.append(latency)
        time.sleep(0.3)


def measure(tool: str, worker: str, workers: int, edits: int) -> Run:
    run = Run(tool, worker)
    app, route = (FLASK_APP, FLASK_ROUTE) if worker == "sync" else (FASTAPI_APP, FASTAPI_ROUTE)
    with tempfile.TemporaryDirectory(prefix="relive-multiproc-") as directory:
        root = Path(directory)
        (root / "handlers.py").write_text("def version():\n    return 1\n")
        (root / "app.py").write_text(app)
        port = free_port()
        proc = subprocess.Popen(
            command(tool, worker, port, workers),
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True)
        reader.start()
        try:
            wait_for_server(port, proc)
            with Load(port) as load:
                time.sleep(1.0)
                edit_all(root, app, route, run, load, workers, edits)
                time.sleep(0.5)
            samples = load.samples
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            reader.join(5)
    run.requests = len(samples)
    run.failed = sum(1 for s in samples if s.status != 200)
    pids = {s.body["pid"] for s in samples if "pid" in s.body}
    run.pids_replaced = max(0, len(pids) - workers)
    for pid in pids:
        hits = [s.body["hits"] for s in samples if s.body.get("pid") == pid]
        run.state_kept = run.state_kept and len(set(hits)) == len(hits)
    run.state_kept = run.state_kept and run.pids_replaced == 0
    for line in lines:
        if match := re.search(r"handlers\.py: 1 patched.*? in \d+ processes in ([\d.]+) ms", line):
            run.reported.append(float(match.group(1)) / 1000)
        if match := re.search(r"versions mixed across processes for ([\d.]+) ms", line):
            run.windows.append(float(match.group(1)) / 1000)
    return run


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f}" if values else "-"


def table(runs: list[Run], workers: int, edits: int) -> str:
    rows = [
        f"{workers} workers, ~{RATE:.0f} requests/s of new connections, {edits} saves "
        "(a syntax error and its fix, a new route)",
        "",
        "| tool | workers | requests | failed | save → no worker serves old code, median ms "
        "(max) | relive's report, median ms | versions mixed, median ms | edits not served | "
        "new route | pids replaced | state kept |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        worst = f" ({max(run.latencies) * 1000:.0f})" if run.latencies else ""
        rows.append(
            f"| {run.tool} | {run.worker} | {run.requests} | {run.failed} | "
            f"{ms(run.latencies)}{worst} | {ms(run.reported)} | {ms(run.windows)} | "
            f"{run.missed} | {'yes' if run.new_route else 'no'} | {run.pids_replaced} | "
            f"{'yes' if run.state_kept else 'no'} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 workers, sync only")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--edits", type=int, default=10)
    options = parser.parse_args()
    workers = 2 if options.quick else options.workers
    kinds = ["sync"] if options.quick else ["sync", "uvicorn"]
    runs = []
    for worker in kinds:
        for tool in ("relive", "gunicorn --reload"):
            print(f"{tool} / {worker} ...", file=sys.stderr, flush=True)
            runs.append(measure(tool, worker, workers, options.edits))
    print(table(runs, workers, options.edits))


if __name__ == "__main__":
    main()
