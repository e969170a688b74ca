"""Watcher latency and idle cost: relive's FileWatcher beside watchfiles' watch().

For trees of 10,000 and 50,000 generated files, each watcher runs in its own process: time to
ready, median (and p90) write-to-callback latency over --writes writes of one file each, and
the CPU the whole process (all watcher threads; the main thread sleeps) uses while idle.
relive's polling fallback is measured on the smallest tree only, with 5 writes.

    .venv/bin/python bench/watch_bench.py [--sizes 10000 50000] [--writes 50] [--idle 5]

The trees go to /dev/shm when it is writable: generating them on a busy disk takes minutes,
and inotify and the page cache behave the same on tmpfs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILES_PER_DIR = 100
PART_SIZE = 10_000  # the tree is made of parts of this many files; a size watches N parts

WATCHERS = {
    "relive FileWatcher (inotify)": ("relive", {}),
    "relive FileWatcher (polling)": ("relive", {"force_polling": True}),
    "watchfiles watch(), step=50 (default)": ("watchfiles", {}),
    "watchfiles watch(), step=1": ("watchfiles", {"step": 1}),
}


def make_tree(root: Path, size: int) -> None:
    """Write `size` small modules under `root`, in parts of PART_SIZE files."""
    for first in range(0, size, FILES_PER_DIR):
        part, rest = divmod(first, PART_SIZE)
        directory = root / f"part{part}" / f"pkg{rest // 1000}" / f"mod{rest // FILES_PER_DIR}"
        directory.mkdir(parents=True)
        directory_fd = os.open(directory, os.O_RDONLY)
        try:  # os.open relative to the directory: 10x faster than Path.write_text
            for index in range(first, first + FILES_PER_DIR):
                fd = os.open(f"m{index}.py", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=directory_fd)
                os.write(fd, f"value = {index}\n".encode())
                os.close(fd)
        finally:
            os.close(directory_fd)


class Seen:
    """When each path was reported by the watcher under test."""

    def __init__(self) -> None:
        self._times: dict[str, float] = {}
        self._cond = threading.Condition()

    def report(self, paths: Iterator[str]) -> None:
        now = time.perf_counter()
        with self._cond:
            for path in paths:
                self._times[path] = now
            self._cond.notify_all()

    def wait_for(self, path: str, after: float, timeout: float = 10.0) -> float | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._times.get(path, 0.0) < after:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self._times[path]


@contextmanager
def relive_watcher(roots: list[Path], seen: Seen, options: dict[str, object]) -> Iterator[None]:
    from relive._filewatch import FileWatcher

    watcher = FileWatcher(
        roots,
        lambda batch: seen.report(str(path) for path in batch.changed),
        **options,  # type: ignore[arg-type]
    )
    with watcher:
        yield


@contextmanager
def watchfiles_watcher(roots: list[Path], seen: Seen, options: dict[str, object]) -> Iterator[None]:
    import watchfiles

    stop = threading.Event()

    def run() -> None:
        for changes in watchfiles.watch(*roots, stop_event=stop, **options):  # type: ignore[arg-type]
            seen.report(path for _change, path in changes)

    thread = threading.Thread(target=run, name="watchfiles-bench", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def wait_ready(probe: Path, seen: Seen, timeout: float = 30.0) -> None:
    """Write `probe` until the watcher reports it: watchfiles gives no ready signal."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        written = time.perf_counter()
        probe.write_text(f"probe = {written}\n")
        if seen.wait_for(str(probe), written, timeout=0.2) is not None:
            return
    raise TimeoutError(f"watcher never reported {probe}")


def measure(
    kind: str, options: dict[str, object], root: Path, parts: int, args: argparse.Namespace
) -> dict[str, float]:
    roots = [root / f"part{part}" for part in range(parts)]
    targets = sorted((roots[0] / "pkg0").rglob("*.py"))
    random.Random(0).shuffle(targets)
    seen = Seen()
    factory = relive_watcher if kind == "relive" else watchfiles_watcher
    started = time.perf_counter()
    with factory(roots, seen, options):
        wait_ready(roots[0] / "probe.py", seen)
        ready = time.perf_counter() - started
        latencies = []
        for index, target in enumerate(targets[: args.writes]):
            written = time.perf_counter()
            target.write_text(f"value = {index} # edited\n")
            reported = seen.wait_for(str(target), written)
            if reported is not None:
                latencies.append(reported - written)
            time.sleep(0.01)
        time.sleep(0.2)  # let the last batch go
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        time.sleep(args.idle)
        idle_cpu = (time.process_time() - cpu_before) / (time.perf_counter() - wall_before)
    latencies.sort()
    return {
        "ready": ready,
        "median": statistics.median(latencies),
        "p90": latencies[int(0.9 * (len(latencies) - 1))],
        "missed": args.writes - len(latencies),
        "idle_cpu": 100 * idle_cpu,
    }


def run_worker(args: argparse.Namespace) -> None:
    kind, options = WATCHERS[args.worker]
    result = measure(kind, options, Path(args.root), args.parts, args)
    print(json.dumps(result))


def watchfiles_installed() -> bool:
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        return False
    return True


def run_all(args: argparse.Namespace) -> None:
    names = [name for name in WATCHERS if WATCHERS[name][0] == "relive" or watchfiles_installed()]
    if len(names) < len(WATCHERS):
        print("watchfiles is not installed: `.venv/bin/pip install watchfiles` to compare\n")
    with tempfile.TemporaryDirectory(prefix="relive-watch-bench-", dir=args.dir) as tmp:
        root = Path(tmp).resolve()
        started = time.perf_counter()
        make_tree(root, max(args.sizes))
        elapsed = time.perf_counter() - started
        print(f"generated {max(args.sizes):,} files in {root.parent} in {elapsed:.1f} s\n")
        print("| watcher | files | ready (s) | latency median (ms) | p90 (ms) | idle CPU % |")
        print("|---|---:|---:|---:|---:|---:|")
        for size in args.sizes:
            for name in names:
                if "polling" in name and size > PART_SIZE:
                    continue  # a scan of the tree takes seconds: not worth the wait
                print(run_one(name, root, size, args), flush=True)


def run_one(name: str, root: Path, size: int, args: argparse.Namespace) -> str:
    writes = args.writes if "polling" not in name else min(args.writes, 5)
    command = [
        sys.executable, __file__, "--worker", name, "--root", str(root),
        "--parts", str(size // PART_SIZE), "--writes", str(writes), "--idle", str(args.idle),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"| {name} | {size:,} | failed: {done.stderr.strip().splitlines()[-1:]} | | | |"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    missed = f" ({result['missed']} missed)" if result["missed"] else ""
    return (
        f"| {name} | {size:,} | {result['ready']:.2f} | {1000 * result['median']:.1f}{missed}"
        f" | {1000 * result['p90']:.1f} | {result['idle_cpu']:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--writes", type=int, default=50)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument(
        "--dir",
        default="/dev/shm" if os.access("/dev/shm", os.W_OK) else None,
        help="where to generate the trees (default: /dev/shm, a tmpfs, if writable)",
    )
    parser.add_argument("--worker", choices=list(WATCHERS), help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--parts", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 10,000 files, 10 writes, 1 s idle"
    )
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.writes, args.idle = [10_000], 10, 1.0
    if any(size % PART_SIZE for size in args.sizes):
        parser.error(f"sizes must be multiples of {PART_SIZE}")
    if args.worker:
        run_worker(args)
    else:
        run_all(args)


if __name__ == "__main__":
    main()
