"""Starting a watcher on a project root that holds trees which are never source.

The project: `src/` (50 packages of 10 modules) beside `node_modules/` (2,000 packages of 10
subdirectories, a file in each), `.venv/` (a `pyvenv.cfg` and 3,000 directories) and
`.git/objects/` (256 directories). Each trial runs one watcher in a fresh process: relive's
`FileWatcher([root], ...).start()`, watchdog's `Observer().schedule(handler, root,
recursive=True)` + `start()`, or watchfiles' `watch(root)` (defaults) in a thread. Right after
the start call it writes a new `src/probe_N.py` every 5 ms until the watcher reports one, and
measures from the start call: when it returned; when the earliest probe the watcher reported
was written (it began catching edits in the 5 ms before); when the first report came.
Then, after 0.3 s of quiet, the latency of one lone probe; the process's inotify watches
(`inotify wd:` lines in /proc/self/fdinfo/*), the OS threads the watcher added, and the
warnings logged. Watchers take turns within each round of trials; medians are printed.

    .venv/bin/python bench/watch_start_bench.py [--trials 9] [--timeout 20] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

WATCHERS = ["relive FileWatcher", "watchdog Observer, recursive", "watchfiles watch()"]
PROBE_EVERY = 0.005
Result = dict[str, float | None]


def make_project(root: Path, scale: int) -> None:
    """Write the project; `scale` divides node_modules and .venv (10 for --quick)."""

    def put(path: Path, text: str = "") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    for i in range(500):  # 50 packages of 10 modules
        name = f"m{i % 10}.py" if i % 10 else "__init__.py"
        put(root / "src" / f"pkg{i // 10:02}" / name, f"value = {i}\n")
    for i in range(20_000 // scale):  # packages of 10 subdirectories, a file in each
        put(root / "node_modules" / f"pkg{i // 10}" / f"sub{i % 10}" / "index.js", "x = 1;\n")
    put(root / ".venv" / "pyvenv.cfg", "home = /usr/bin\n")
    for i in range(3_000 // scale):  # packages of 10 directories: the package and 9 below
        sub = f"dist{i // 10}" + (f"/sub{i % 10}" if i % 10 else "")
        put(root / ".venv" / "lib" / "python3.11" / "site-packages" / sub / "__init__.py")
    for i in range(256):
        put(root / ".git" / "objects" / f"{i:02x}" / ("0" * 38), "x")


class Probes:
    """When the watcher under test first reported each probe file, by probe number."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self.cond = threading.Condition()

    def report(self, paths: Iterable[str]) -> None:
        now = time.perf_counter()
        with self.cond:
            for name in map(os.path.basename, paths):
                if name.startswith("probe_") and name.endswith(".py"):
                    self.seen.setdefault(int(name[6:-3]), now)
            self.cond.notify_all()

    def wait(self, index: int | None, timeout: float) -> bool:
        """Wait until probe `index` (None: any probe) is reported."""
        with self.cond:
            return self.cond.wait_for(
                lambda: index in (*self.seen, *[None][: len(self.seen)]), timeout
            )


def start_watcher(name: str, root: Path, probes: Probes) -> list[Callable[[], object]]:
    """Start watching `root`; return the calls that stop it."""
    if name == "relive FileWatcher":
        from relive._filewatch import FileWatcher

        watcher = FileWatcher([root], lambda batch: probes.report(map(str, batch.changed)))
        watcher.start()
        return [watcher.stop]
    if name == "watchdog Observer, recursive":
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                probes.report([os.fsdecode(event.src_path)])

        observer = Observer()
        observer.schedule(Handler(), str(root), recursive=True)
        observer.start()
        return [observer.stop, observer.join]
    import watchfiles

    stop = threading.Event()

    def run() -> None:
        for changes in watchfiles.watch(root, stop_event=stop):
            probes.report(path for _change, path in changes)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return [stop.set, thread.join]


def inotify_watches() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fdinfo"):
        with contextlib.suppress(OSError):  # the descriptor listdir used, closed already
            count += Path(f"/proc/self/fdinfo/{fd}").read_text().count("\ninotify wd:")
    return count


def run_worker(name: str, root: Path, timeout: float) -> Result:
    for module in ("relive.watch", "watchdog.observers", "watchfiles"):
        importlib.import_module(module)  # imports are not timed
    logging.basicConfig(format="warning: %(message)s", level=logging.WARNING)
    probes, src = Probes(), root / "src"
    threads_before = len(os.listdir("/proc/self/task"))
    started = time.perf_counter()
    stops = start_watcher(name, root, probes)
    returned = time.perf_counter()
    written: list[float] = []
    while time.perf_counter() - started < timeout:
        written.append(time.perf_counter())
        (src / f"probe_{len(written) - 1}.py").write_text("probe = 1\n")
        if probes.wait(None, PROBE_EVERY):
            break
    result: Result = {"returned": returned - started, "ready": None, "seen": None, "lone": None}
    if probes.seen:
        time.sleep(0.3)  # an earlier probe may come in a later batch than the first report
        with probes.cond:
            result["ready"] = written[min(probes.seen)] - started
            result["seen"] = min(probes.seen.values()) - started
        written.append(time.perf_counter())
        (src / f"probe_{len(written) - 1}.py").write_text("probe = 1\n")
        if probes.wait(len(written) - 1, 5.0):
            result["lone"] = probes.seen[len(written) - 1] - written[-1]
    result["watches"] = inotify_watches()
    result["threads"] = len(os.listdir("/proc/self/task")) - threads_before
    for step in stops:
        step()
    for index in range(len(written)):
        (src / f"probe_{index}.py").unlink()
    return result


def run_one(name: str, root: Path, timeout: float) -> Result:
    command = [sys.executable, __file__, "--worker", name, "--root", str(root)]
    command += ["--timeout", str(timeout)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{done.stderr}")
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    for line in dict.fromkeys(warnings):
        print(f"  {line}", file=sys.stderr)
    result: Result = json.loads(done.stdout.strip().splitlines()[-1])
    return result | {"warnings": len(warnings)}


def median(rows: list[Result], key: str) -> float | None:
    values = [value for row in rows if (value := row[key]) is not None]
    return statistics.median(values) if values else None


def cell(key: str, rows: list[Result], base: list[Result] | None) -> str:
    value, against = median(rows, key), median(base or [], key)
    if value is None:
        return "none"
    text = f"{value:,.0f}" if key in ("watches", "threads", "warnings") else f"{1e3 * value:,.1f}"
    if against and key not in ("lone", "threads", "warnings"):
        ratio = value / against
        text += f" ({ratio:,.0f}x)" if ratio >= 10 else f" ({ratio:.2f}x)"
    return text


def run_all(args: argparse.Namespace) -> None:
    from importlib.metadata import version

    scale = 10 if args.quick else 1
    results: dict[str, list[Result]] = {name: [] for name in WATCHERS}
    loads: list[float] = []
    with tempfile.TemporaryDirectory(prefix="relive-watch-start-", dir=args.dir) as tmp:
        root = Path(tmp).resolve() / "project"
        make_project(root, scale)
        dirs = sum(1 for _ in os.walk(root))
        for trial in range(args.trials):
            for name in WATCHERS[trial % 3 :] + WATCHERS[: trial % 3]:
                loads.append(float(Path("/proc/loadavg").read_text().split()[0]))
                results[name].append(run_one(name, root, args.timeout))
                print(f"trial {trial + 1} {name}: {results[name][-1]}", file=sys.stderr)
    print(f"{dirs:,} directories ({20_000 // scale:,} in node_modules) in {Path(tmp).parent};")
    print(f"Python {sys.version.split()[0]}, watchdog {version('watchdog')}, watchfiles", end="")
    print(f" {version('watchfiles')}, relive {version('relive')}; nproc {os.cpu_count()};")
    print(f"1-minute load average before each trial: {min(loads):.2f} to {max(loads):.2f}.\n")
    print(f"Medians of {args.trials} trials, ms; in brackets, the ratio to relive's median.\n")
    print(
        "| watcher | start call returned | edits caught from | first report | a lone edit, once"
        " ready | inotify watches | threads added | warnings logged | trials with no report |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    keys = ("returned", "ready", "seen", "lone", "watches", "threads", "warnings")
    for name in WATCHERS:
        rows, base = results[name], results[WATCHERS[0]] if name != WATCHERS[0] else None
        missed = sum(row["seen"] is None for row in rows)
        cells = [cell(key, rows, base) for key in keys] + [f"{missed} of {len(rows)}"]
        print(f"| {name} | {' | '.join(cells)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=9, help="per watcher (default 9)")
    parser.add_argument("--timeout", type=float, default=20.0, help="s to wait for a report")
    parser.add_argument("--quick", action="store_true", help="a smoke run: trees / 10, 3 trials")
    parser.add_argument(
        "--dir",
        default="/dev/shm" if os.access("/dev/shm", os.W_OK) else None,
        help="where to generate the project (default: /dev/shm, a tmpfs, if writable)",
    )
    parser.add_argument("--worker", choices=WATCHERS, help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_worker(args.worker, Path(args.root), args.timeout)))
        return
    if args.quick:
        args.trials = 3
    run_all(args)


if __name__ == "__main__":
    main()
