"""Dask bench: an edit to every worker of a LocalCluster, relive.dask beside Dask's own ways.

On a `LocalCluster(processes=True)`, while a steady stream of small tasks runs, it saves
edits to a module the tasks use and times each from the save (relive.dask) or from the
call (`client.upload_file`, `client.restart()`, which a user runs by hand after saving) to
the moment every worker runs the new code. After the edits it checks what survived: the
module's state (a counter each worker keeps), an instance held in worker memory (does it
run the new method?), scattered data; and counts the tasks that failed meanwhile.
`client.restart()` is timed once per fresh cluster: a second restart of a LocalCluster
hangs until it times out (dask/distributed#8534, open; seen here with distributed 2026.11).
Usage: `.venv/bin/python bench/dask_bench.py [--quick] [--workers N] [--edits N]`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import distributed

import relive.dask
from relive.testing import wait_until, write_source

METHODS = ("relive.dask", "upload_file", "restart")
STREAM_BATCH = 4  # tasks submitted together
STREAM_PAUSE = 0.04  # between batches: about 100 tasks/s
SETTLE = 0.2  # untimed pause after each edit, so edits do not overlap

MODULE = '''\
"""A module the cluster's tasks use, edited while they run."""

STATE = {{"calls": 0}}


def version():
    return {version}


def probe(i):
    STATE["calls"] += 1
    return version()


def calls():
    return STATE["calls"]


class Held:
    def value(self):
        return {version}


def held_value(held):
    return held.value()
'''


@dataclass
class Trial:
    method: str
    latencies: list[float] = field(default_factory=list)  # seconds, save to all workers
    state_kept: bool = False
    held_updated: str = ""
    data_kept: bool = False
    tasks: int = 0
    failed: int = 0
    timed_out: int = 0  # restarts that never got every worker back (dask/distributed#8534)


class Stream:
    """About 100 small tasks per second from a thread; counts the ones that fail."""

    def __init__(self, client: distributed.Client, probe: Callable[[int], int]) -> None:
        self.client, self.probe = client, probe
        self.tasks = self.failed = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        index = 0
        while not self._stopping.is_set():
            futures = self.client.map(self.probe, range(index, index + STREAM_BATCH), pure=False)
            index += STREAM_BATCH
            for future in futures:
                self.tasks += 1
                try:
                    future.result(timeout=60)
                except Exception:
                    self.failed += 1
            self._stopping.wait(STREAM_PAUSE)


def run_trial(method: str, workers: int, edits: int, root: Path) -> Trial:
    name = "benchmod_" + method.replace(".", "_")
    path = root / f"{name}.py"
    write_source(path, MODULE.format(version=0), dedent=False)
    sys.path.insert(0, str(root))  # the workers (spawned) start with this path too
    trial = Trial(method)
    with (
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        handle = relive.dask.watch(client, root, quiet=True) if method == "relive.dask" else None
        module = importlib.import_module(name)
        held = client.submit(module.Held, pure=False)
        (data,) = client.scatter([list(range(10_000))], timeout=60)
        stream = Stream(client, module.probe)
        stream.start()
        wait_until(lambda: stream.tasks >= 4 * workers, timeout=60)
        before = client.run(module.calls)
        for version in range(1, edits + 1):
            try:
                trial.latencies.append(edit(method, client, handle, path, version))
            except TimeoutError:
                if method != "restart":
                    raise
                trial.timed_out += 1
                break
            time.sleep(SETTLE)
        stream.stop()
        if trial.timed_out:
            trial.held_updated = "lost"
            trial.tasks, trial.failed = stream.tasks, stream.failed
            sys.path.remove(str(root))
            return trial
        after = client.run(module.calls)
        trial.state_kept = all(after.get(w, 0) >= count for w, count in before.items())
        trial.held_updated = _held(client, module, held, edits)
        trial.data_kept = _data_kept(data)
        trial.tasks, trial.failed = stream.tasks, stream.failed
        if handle is not None:
            handle.stop()
    sys.path.remove(str(root))
    return trial


def edit(
    method: str,
    client: distributed.Client,
    handle: relive.dask.DaskWatch | None,
    path: Path,
    version: int,
) -> float:
    """Save ``version`` and return the seconds until every worker runs it."""
    module = sys.modules[path.stem]
    started = time.perf_counter()
    write_source(path, MODULE.format(version=version), dedent=False)
    if handle is not None:
        wait_until(lambda: handle.edits >= version, timeout=60, interval=0.0005)
    elif method == "upload_file":
        client.upload_file(str(path))
    else:
        client.restart()
    elapsed = time.perf_counter() - started
    reached = set(client.run(module.version).values())
    if reached != {version}:
        raise RuntimeError(f"{method}: workers run {reached} after edit {version}")
    return elapsed


def _held(client: distributed.Client, module: Any, held: Any, version: int) -> str:
    try:
        value = client.submit(module.held_value, held).result(timeout=30)
    except Exception as exc:
        return f"lost ({type(exc).__name__})"
    return "yes" if value == version else f"no (runs version {value})"


def _data_kept(data: Any) -> bool:
    try:
        return len(data.result(timeout=30)) == 10_000
    except Exception:
        return False


def _merged(runs: list[Trial]) -> Trial:
    """Trials of one method on fresh clusters, as one."""
    first = runs[0]
    return Trial(
        first.method,
        [latency for run in runs for latency in run.latencies],
        all(run.state_kept for run in runs),
        first.held_updated,
        all(run.data_kept for run in runs),
        sum(run.tasks for run in runs),
        sum(run.failed for run in runs),
        sum(run.timed_out for run in runs),
    )


def table(trials: list[Trial], workers: int) -> str:
    rows = [
        f"| method | save → all {workers} workers, median (min-max) | module state kept "
        "| held instance runs the new method | scattered data kept | failed tasks |",
        "|---|---|---|---|---|---|",
    ]
    for trial in trials:
        ms = [latency * 1000 for latency in trial.latencies] or [float("nan")]
        hung = f"; {trial.timed_out} timed out after 120 s" if trial.timed_out else ""
        rows.append(
            f"| {trial.method} | {statistics.median(ms):.0f} ms ({min(ms):.0f}-{max(ms):.0f})"
            f"{hung} "
            f"| {'yes' if trial.state_kept else 'no (reset)'} | {trial.held_updated} "
            f"| {'yes' if trial.data_kept else 'no'} | {trial.failed} of {trial.tasks} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 edits, 2 restarts")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--edits", type=int, default=20, help="edits per method")
    parser.add_argument("--restarts", type=int, default=5, help="edits for restart()")
    parser.add_argument("methods", nargs="*", help=f"some of {METHODS} (default: all)")
    args = parser.parse_args(argv)
    edits, restarts = (3, 2) if args.quick else (args.edits, args.restarts)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(
        f"distributed {metadata.version('distributed')}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, commit {commit}",
        flush=True,
    )
    trials = []
    with tempfile.TemporaryDirectory(prefix="dask-bench-") as tmp:
        for method in args.methods or METHODS:
            if method == "restart":  # once per cluster: dask/distributed#8534 (see README)
                runs = [
                    run_trial(method, args.workers, 1, Path(tmp) / f"{method}{index}")
                    for index in range(restarts)
                ]
                trial = _merged(runs)
            else:
                trial = run_trial(method, args.workers, edits, Path(tmp) / method)
            trials.append(trial)
            print(table([trial], args.workers).splitlines()[-1], flush=True)
    print(table(trials, args.workers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
