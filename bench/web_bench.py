"""Web bench: edit-to-new-response latency, relive beside each framework's own reloader.

For FastAPI (uvicorn --reload), Flask (its stat reloader) and Django (runserver), on a small
app and on one whose start-up imports take about a second (a module building a lookup
table at import: real work, not a sleep), it saves 20 edits to a helper module, times each
from the save to the first response showing it, and counts the requests that failed
meanwhile under a light steady load. Prints medians and ratios as a markdown table.
Usage: `.venv/bin/python bench/web_bench.py [--quick] [--edits N] [FRAMEWORK ...]`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import recorded

FRAMEWORKS = ("fastapi", "flask", "django")
SIZES = ("small", "heavy")
ANCHORS = {
    "fastapi": "uvicorn --reload",
    "flask": "Flask's reloader, stat",
    "django": "manage.py runserver",
}
START_TIMEOUT = 60.0
EDIT_TIMEOUT = 15.0
SETTLE = 0.15  # untimed pause after each edit is served (a reloader's first scan; the load)
HEAVY_SECONDS = 1.0  # start-up work of the heavy app
LOAD_THREADS = 2
LOAD_PAUSE = 0.02  # each load client: one request, then this pause (up to 100 requests/s)
PROBE_PAUSE = 0.002

# --- the apps ----------------------------------------------------------------------------

HELPERS = "def value() -> int:\n    return {value}\n"

TABLE = '''\
"""Start-up work an app might do at import: a lookup table built from scratch."""

import hashlib

TABLE = {{i: hashlib.sha256(str(i).encode()).hexdigest() for i in range({size})}}
'''

FASTAPI_APP = """\
from fastapi import FastAPI

import helpers
{heavy}
app = FastAPI()


@app.get("/")
def index() -> dict[str, int]:
    return {{"value": helpers.value()}}
"""

# Flask's reloader as `flask run --reload` starts it, with its stat backend: its watchdog
# backend watches all of sys.path recursively, and on a busy machine inotify's queue
# overflows and edits are lost (seen on the shared machine this was first run on).
FLASK_RELOADER = """\
import sys

from werkzeug.serving import run_simple

from app import app

run_simple("127.0.0.1", int(sys.argv[1]), app, use_reloader=True, reloader_type="stat")
"""

FLASK_APP = """\
import logging

from flask import Flask

import helpers
{heavy}
logging.getLogger("werkzeug").setLevel(logging.ERROR)
app = Flask(__name__)


@app.route("/")
def index() -> dict[str, int]:
    return {{"value": helpers.value()}}
"""

DJANGO_FILES = {
    "manage.py": """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
""",
    "settings.py": """\
SECRET_KEY = "bench"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = []
MIDDLEWARE = []
ROOT_URLCONF = "urls"
DATABASES = {{}}
LOGGING = {{"version": 1, "loggers": {{"django.server": {{"level": "ERROR"}}}}}}
""",
    "urls.py": """\
from django.urls import path

import views

urlpatterns = [path("", views.index)]
""",
    "views.py": """\
from django.http import JsonResponse

import helpers
{heavy}

def index(request):
    return JsonResponse({{"value": helpers.value()}})
""",
}


def table_size(seconds: float) -> int:
    """How many entries the heavy app's table needs to take ``seconds`` of CPU to build
    here (CPU time: other processes on the machine do not skew it)."""
    size = 20_000
    while True:
        started = time.process_time()
        {i: hashlib.sha256(str(i).encode()).hexdigest() for i in range(size)}
        elapsed = time.process_time() - started
        if elapsed > 0.2:
            return int(size * seconds / elapsed)
        size *= 2


def write_app(root: Path, framework: str, heavy_size: int | None) -> None:
    heavy = "import table  # noqa: F401 - a second of start-up work\n" if heavy_size else ""
    files = {"helpers.py": HELPERS.format(value=0)}
    if heavy_size:
        files["table.py"] = TABLE.format(size=heavy_size)
    if framework == "fastapi":
        files["app.py"] = FASTAPI_APP.format(heavy=heavy)
    elif framework == "flask":
        files["app.py"] = FLASK_APP.format(heavy=heavy)
        files["serve_flask.py"] = FLASK_RELOADER
    else:
        files.update({name: text.format(heavy=heavy) for name, text in DJANGO_FILES.items()})
    for name, text in files.items():
        (root / name).write_text(text)


def command(framework: str, tool: str, port: int) -> list[str]:
    python = sys.executable
    relive = [python, "-m", "relive", "run"] if tool == "relive" else [python]
    if framework == "fastapi":
        server = ["-m", "uvicorn", "app:app", "--port", str(port), "--log-level", "warning"]
        return [*relive, *server] if tool == "relive" else [*relive, *server, "--reload"]
    if framework == "flask" and tool == "relive":
        return [*relive, "-m", "flask", "--app", "app", "run", "--port", str(port)]
    if framework == "flask":
        return [python, "serve_flask.py", str(port)]
    return [*relive, "manage.py", "runserver", f"127.0.0.1:{port}"]


# --- HTTP --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get_value(port: int, timeout: float = 5.0) -> int | None:
    """The app's value, or None when the request failed (refused, reset, not 200)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            return None
        value: int = json.loads(body)["value"]
        return value
    except (OSError, http.client.HTTPException, ValueError, KeyError):
        return None
    finally:
        connection.close()


def wait_for(condition: Callable[[], bool], timeout: float, pause: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(pause)
    return False


@dataclass
class Load:
    """A light steady load; counts the requests that failed."""

    port: int
    sent: int = 0
    failed: int = 0
    longest: float = 0.0  # seconds: the longest request (one held during a restart)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for index in range(LOAD_THREADS):
            thread = threading.Thread(target=self._run, name=f"bench-load-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            ok = get_value(self.port) is not None
            took = time.perf_counter() - started
            with self._lock:
                self.sent += 1
                self.failed += not ok
                self.longest = max(self.longest, took)
            time.sleep(LOAD_PAUSE)


# --- one run -----------------------------------------------------------------------------


@dataclass
class Result:
    framework: str
    size: str
    tool: str
    latencies: list[float]
    missed: int  # edits never served within EDIT_TIMEOUT
    sent: int
    failed: int
    longest: float

    @property
    def median(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")


@contextlib.contextmanager
def server(argv: list[str], cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("RELIVE", None)
    with log.open("wb") as output:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # what the group leader left behind


def run_one(framework: str, size: str, tool: str, edits: int, heavy_size: int) -> Result:
    root = Path(tempfile.mkdtemp(prefix=f"relive-web-{framework}-{size}-{tool}-"))
    try:
        write_app(root, framework, heavy_size if size == "heavy" else None)
        port = free_port()
        log = root.parent / f"{root.name}.log"
        with server(command(framework, tool, port), root, log) as proc:
            up = wait_for(
                lambda: get_value(port) == 0 or proc.poll() is not None, START_TIMEOUT, 0.05
            )
            if not up:
                raise RuntimeError(f"{framework} ({tool}) did not start; see {log}")
            if proc.poll() is not None:
                raise RuntimeError(f"{framework} ({tool}) exited; see {log}")
            time.sleep(0.5)  # let a reloader finish setting up its watches
            latencies: list[float] = []
            missed = 0
            with Load(port) as load:
                for value in range(1, edits + 1):
                    started = time.perf_counter()
                    (root / "helpers.py").write_text(HELPERS.format(value=value))
                    if wait_for(lambda v=value: get_value(port) == v, EDIT_TIMEOUT, PROBE_PAUSE):
                        latencies.append(time.perf_counter() - started)
                    else:
                        missed += 1
                    time.sleep(SETTLE)
            log.unlink(missing_ok=True)
        return Result(
            framework, size, tool, latencies, missed, load.sent, load.failed, load.longest
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- report ------------------------------------------------------------------------------


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:.1f} ms"


def table(results: dict[tuple[str, str, str], Result], edits: int) -> str:
    lines = [
        "| framework | app | relive | own reloader | faster | failed requests during"
        f" {edits} edits: relive / own reloader | longest request: relive / own reloader |",
        "|---|---|---|---|---|---|---|",
    ]
    for (framework, size, tool), ours in results.items():
        if tool != "relive":
            continue
        theirs = results.get((framework, size, "anchor"))
        if theirs is None:
            continue
        ratio = theirs.median / ours.median if ours.latencies and theirs.latencies else float("nan")
        missed = [f"{r.missed} edits never served" for r in (ours, theirs) if r.missed]
        lines.append(
            f"| {framework} | {size} | {milliseconds(ours.median)} |"
            f" {milliseconds(theirs.median)} ({ANCHORS[framework]}) | {ratio:,.0f}x |"
            f" {ours.failed} of {ours.sent} / {theirs.failed} of {theirs.sent}"
            f"{' (' + '; '.join(missed) + ')' if missed else ''} |"
            f" {milliseconds(ours.longest)} / {milliseconds(theirs.longest)} |"
        )
    return "\n".join(lines)


def results_json(
    results: dict[tuple[str, str, str], Result], edits: int, argv: list[str]
) -> dict[str, Any]:
    """The results as `recorded.write` stores them (bench/results/web.json)."""
    rows = [
        {
            "framework": framework,
            "app": size,
            "tool": "relive" if tool == "relive" else ANCHORS[framework],
            "median_ms": round(result.median * 1000, 2) if result.latencies else None,
            "missed": result.missed,
            "requests": result.sent,
            "failed_requests": result.failed,
            "longest_request_ms": round(result.longest * 1000, 2),
        }
        for (framework, size, tool), result in results.items()
    ]
    packages = ["relive", "fastapi", "uvicorn", "flask", "werkzeug", "django", "watchfiles"]
    return {
        "provenance": recorded.provenance("web_bench.py", argv, packages),
        "data": {"edits": edits, "rows": rows},
    }


def versions() -> str:
    names = ("relive", "fastapi", "uvicorn", "flask", "werkzeug", "django", "watchfiles")
    found = []
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name} {metadata.version(name)}")
    return ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 edits per run instead of 20")
    parser.add_argument("--edits", type=int, default=None, help="edits per run (default 20)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("frameworks", nargs="*", metavar="FRAMEWORK", help=", ".join(FRAMEWORKS))
    args = parser.parse_args(argv)
    unknown = set(args.frameworks) - set(FRAMEWORKS)
    if unknown:
        parser.error(f"unknown framework(s): {', '.join(sorted(unknown))}")
    edits = args.edits or (5 if args.quick else 20)
    frameworks = args.frameworks or list(FRAMEWORKS)
    started = time.monotonic()
    heavy_size = table_size(HEAVY_SECONDS)
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} cores, {versions()}\n"
        f"heavy app: table.py builds {heavy_size:,} entries at import"
        f" ({HEAVY_SECONDS:g} s of CPU here)",
        flush=True,
    )
    results: dict[tuple[str, str, str], Result] = {}
    for framework in frameworks:
        for size in SIZES:
            for tool in ("relive", "anchor"):
                result = run_one(framework, size, tool, edits, heavy_size)
                results[framework, size, tool] = result
                print(
                    f"  {framework:8} {size:6} {tool:7} median {milliseconds(result.median):>9}"
                    f"  failed {result.failed}/{result.sent}  missed {result.missed}"
                    f"  longest request {milliseconds(result.longest)}",
                    file=sys.stderr,
                    flush=True,
                )
    print(flush=True)
    print(table(results, edits))
    print(f"\n({time.monotonic() - started:.0f} s)")
    if args.json:
        argv = sys.argv[1:] if argv is None else argv
        recorded.write(args.json, "web", results_json(results, edits, argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
