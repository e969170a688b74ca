"""Save-to-live latency: `relive run` beside jurigged, watchfiles' CLI and hupper, in one run.

Each tool runs the same small program, which polls `helper.value()` every millisecond and
prints the value with `time.time_ns()` when it changes. The benchmark rewrites `helper.py`
to return a new number and measures from just before the write to the first report of the
new number. Two programs: a bare one and one that imports fastapi and builds an app at
start (a restart pays for that import). The floor is measured in this process: a watchdog
event for the write, then reading and compiling the file.
Usage: `.venv/bin/python bench/run_bench.py [--quick]` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import queue
import random
import re
import shlex
import signal
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
from typing import IO, Any

from watchdog.events import FileClosedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers.inotify import InotifyObserver

import recorded

EDITS = 20
QUICK_EDITS = 8
WARMUP = 1  # untimed edits after start (first-use costs); shown as "first edit"
EDIT_DEADLINE = 5.0  # seconds for one edit to be live, else it is a miss
START_TIMEOUT = 30.0  # seconds for a program to print its first value
START_SETTLE = 1.0  # seconds after the first value before the first edit
GAP = (0.10, 0.20)  # random pause between an observed edit and the next write (seconds)
STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL when ending a tool's tree
PACKAGES = ("relive", "jurigged", "watchfiles", "hupper", "watchdog", "fastapi", "uvicorn")
BIN = Path(sys.executable).parent
MS = 1e6  # nanoseconds per millisecond


# --- the program under test ------------------------------------------------------------

PROGRAM = """\
import os
import sys
import time
{imports}
import helper


def main():
    last = None
    while True:
        current = helper.value()
        if current != last:
            sys.stdout.write(f"BENCH {{os.getpid()}} {{current}} {{time.time_ns()}}\\n")
            sys.stdout.flush()
            last = current
        time.sleep(0.001)


if __name__ == "__main__":
    main()
"""

FASTAPI_APP = """\
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(title="bench")


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.get("/items/{item_id}")
def read_item(item_id: int) -> Item:
    return Item(name=str(item_id), price=1.0)


@app.post("/items")
def create_item(item: Item) -> Item:
    return item
"""

PROGRAMS = {"bare": "", "fastapi": FASTAPI_APP}

HELPER = "def value():\n    return {value}\n"

LEGEND = (
    "median and p90: ms from just before `helper.py` is written (open, write, close) to the"
    " program's first report of the new value; first edit: the untimed warm-up edit;"
    " write: how long the write itself took (median, part of the latency); misses: edits"
    f" not live within {EDIT_DEADLINE:.0f} s; vs relive: median over relive's median."
    " The floor (measured once, in this process) is the same in both tables."
)

LINE = re.compile(r"^BENCH (\d+) (-?\d+) (\d+)$")
RELIVE_REPORT = re.compile(r"patched in ([\d.]+) ms")


def make_project(directory: Path, program: str) -> None:
    """Write `prog.py` (the given program) and `helper.py` (value 0) into `directory`."""
    (directory / "prog.py").write_text(PROGRAM.format(imports=PROGRAMS[program]))
    write_helper(directory, 0)


def write_helper(directory: Path, value: int) -> int:
    """Rewrite `helper.py` in place (truncate, write, close); the write's `time_ns`."""
    started = time.time_ns()
    with open(directory / "helper.py", "w") as file:
        file.write(HELPER.format(value=value))
    return started


# --- the tools -------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    """One way to run the program: its name, how it applies an edit, its command line."""

    name: str
    mode: str  # "in place" or "restart"
    argv: tuple[str, ...]
    command: str  # as a user would type it, for the output


def tools() -> tuple[Tool, ...]:
    """The tools, each with its default settings."""
    python = sys.executable
    return (
        Tool("relive", "in place", (str(BIN / "relive"), "run", "prog.py"), "relive run prog.py"),
        Tool(
            "jurigged",
            "in place",
            (python, "-m", "jurigged", "prog.py"),
            "python -m jurigged prog.py",
        ),
        Tool(
            "watchfiles",
            "restart",
            (str(BIN / "watchfiles"), f"{python} prog.py", "."),
            "watchfiles 'python prog.py' .",
        ),
        Tool("hupper", "restart", (str(BIN / "hupper"), "-m", "prog"), "hupper -m prog"),
    )


def tool_env() -> dict[str, str]:
    """The environment every tool runs in."""
    env = {key: value for key, value in os.environ.items() if key != "RELIVE"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    # helper.py is rewritten several times a second with the same size: a cached .pyc
    # (validated by mtime in whole seconds and size) could hand a restarted program the
    # old value. Not writing bytecode takes that out; site-packages' .pyc are still read.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


# --- processes -------------------------------------------------------------------------


def _parent_pids() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for child, parent in _parent_pids().items():
        children.setdefault(parent, []).append(child)
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot), None when it is gone or a zombie.

    A pid together with its start time names one process even if the pid is reused later.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[19])


def _alive(processes: dict[int, int]) -> list[int]:
    return sorted(pid for pid, started in processes.items() if start_time(pid) == started)


def _wait_gone(processes: dict[int, int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _alive(processes) and time.monotonic() < deadline:
        time.sleep(0.02)


def end_tree(proc: subprocess.Popen[bytes], known: dict[int, int]) -> list[int]:
    """End `proc`, its descendants and the `known` processes; the pids that would not go.

    SIGTERM to the tool's process group (as a terminal's Ctrl-C would reach it), then
    SIGKILL to every group and process of the tree still there after `STOP_GRACE`.
    `known` maps pids to start times, so a pid reused by another process is left alone.
    """
    processes = dict(known)
    for pid in {proc.pid} | descendants(proc.pid):
        if (started := start_time(pid)) is not None:
            processes[pid] = started
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_GRACE)
    _wait_gone(processes, STOP_GRACE)
    for pid in _alive(processes):
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)  # a group leader: its group too
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_GRACE)
    _wait_gone(processes, STOP_GRACE)
    return _alive(processes)


@dataclass
class Observation:
    """A line the program printed: its pid, the value it saw, when (`time_ns`)."""

    pid: int
    value: int
    seen_ns: int


def read_reports(stream: IO[bytes], reports: queue.Queue[Observation | None]) -> None:
    """Put each of the program's `BENCH` lines on `reports`; None at end of file."""
    for raw in stream:
        match = LINE.match(raw.decode(errors="replace").strip())
        if match:
            pid, value, seen = (int(group) for group in match.groups())
            reports.put(Observation(pid, value, seen))
    reports.put(None)


@dataclass
class Session:
    """A running tool: its process, the program's reports, the program pids seen."""

    proc: subprocess.Popen[bytes]
    reports: queue.Queue[Observation | None] = field(default_factory=queue.Queue)
    pids: dict[int, int] = field(default_factory=dict)  # program pid -> its start time
    left_over: list[int] = field(default_factory=list)
    ended: bool = False  # the program's output reached its end: the tool is gone

    def wait_for(self, value: int, timeout: float) -> Observation | None:
        """The first report of `value` within `timeout` seconds; None if none came."""
        deadline = time.monotonic() + timeout
        while not self.ended and (remaining := deadline - time.monotonic()) > 0:
            try:
                report = self.reports.get(timeout=remaining)
            except queue.Empty:
                return None
            if report is None:
                self.ended = True
                return None
            if report.pid not in self.pids:
                self.pids[report.pid] = start_time(report.pid) or 0
            if report.value == value:
                return report
        return None


@contextlib.contextmanager
def running(tool: Tool, directory: Path, log: IO[bytes]) -> Iterator[Session]:
    """Start `tool` on the program in `directory`; end its whole tree on the way out."""
    proc = subprocess.Popen(
        tool.argv,
        cwd=directory,
        env=tool_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,
    )
    session = Session(proc)
    assert proc.stdout is not None
    reader = threading.Thread(
        target=read_reports, args=(proc.stdout, session.reports), name="bench-reader"
    )
    reader.daemon = True
    reader.start()
    try:
        yield session
    finally:
        session.left_over = end_tree(proc, session.pids)
        proc.stdout.close()


# --- measuring -------------------------------------------------------------------------


@dataclass
class Result:
    """One tool on one program: latencies of the timed edits (ms), misses, notes."""

    tool: str
    mode: str
    latencies: list[float] = field(default_factory=list)
    writes: list[float] = field(default_factory=list)  # how long each write itself took
    first: float | None = None
    misses: int = 0
    edits: int = 0
    notes: list[str] = field(default_factory=list)
    left_over: list[int] = field(default_factory=list)  # pids that outlived the cleanup

    @property
    def median(self) -> float | None:
        return statistics.median(self.latencies) if self.latencies else None

    @property
    def p90(self) -> float | None:
        if len(self.latencies) < 2:
            return self.median
        return statistics.quantiles(self.latencies, n=10, method="inclusive")[-1]


WaitFn = Callable[[int, float], int | None]
"""Wait for a value with a timeout in seconds; when it was seen (`time_ns`), or None."""


def edit_values(count: int) -> Iterator[int]:
    """Distinct values, alternating between two ranges, so a report is never ambiguous."""
    for index in range(1, count + 1):
        yield (1000 if index % 2 else 2000) + index


def run_edits(result: Result, edit: Callable[[int], int], wait: WaitFn, count: int) -> None:
    """Make `WARMUP + count` edits, timing each from the write to the observed value."""
    for index, value in enumerate(edit_values(WARMUP + count)):
        time.sleep(random.uniform(*GAP))
        written = edit(value)
        wrote = (time.time_ns() - written) / MS
        seen = wait(value, EDIT_DEADLINE)
        latency = None if seen is None else (seen - written) / MS
        if index < WARMUP:
            result.first = latency
            continue
        result.edits += 1
        result.writes.append(wrote)
        if latency is None:
            result.misses += 1
        else:
            result.latencies.append(latency)


def measure_tool(tool: Tool, program: str, count: int, parent: str | None) -> Result:
    """Run `tool` on a fresh copy of `program` and time `count` edits (after a warm-up)."""
    result = Result(tool.name, tool.mode)
    with tempfile.TemporaryDirectory(prefix=f"relive-run-bench-{tool.name}-", dir=parent) as temp:
        directory = Path(temp)
        make_project(directory, program)
        log_path = directory.parent / f"{directory.name}.log"
        try:
            with open(log_path, "wb") as log, running(tool, directory, log) as session:
                _timed_session(result, session, directory, count)
            _add_log_notes(result, tool, log_path.read_text(errors="replace"))
            result.left_over = session.left_over
            if result.left_over:
                result.notes.append(f"pids still alive after cleanup: {result.left_over}")
        finally:
            log_path.unlink(missing_ok=True)
    return result


def _timed_session(result: Result, session: Session, directory: Path, count: int) -> None:
    started = time.monotonic()
    if session.wait_for(0, START_TIMEOUT) is None:
        result.notes.append(f"program did not start within {START_TIMEOUT:.0f} s")
        result.edits, result.misses = count, count
        return
    result.notes.append(f"start to first value: {time.monotonic() - started:.2f} s")
    time.sleep(START_SETTLE)

    def wait(value: int, timeout: float) -> int | None:
        report = session.wait_for(value, timeout)
        return None if report is None else report.seen_ns

    run_edits(result, lambda value: write_helper(directory, value), wait, count)
    restarts = len(session.pids) - 1
    if restarts:
        result.notes.append(f"{restarts} program restarts")


def _add_log_notes(result: Result, tool: Tool, log: str) -> None:
    if tool.name == "relive":
        applied = [float(ms) for ms in RELIVE_REPORT.findall(log)]
        if applied:
            result.notes.append(
                f"relive's own 'patched in' report: median {statistics.median(applied):.2f} ms"
                f" over {len(applied)} edits"
            )
    if result.misses or result.first is None:
        tail = " | ".join(log.strip().splitlines()[-5:])
        result.notes.append(f"stderr tail: {tail or '(empty)'}")


class _FloorHandler(FileSystemEventHandler):
    """On the close of a write to `helper.py`: read and compile it, report the time."""

    def __init__(self, path: Path, done: queue.Queue[tuple[int, int]]) -> None:
        self._path = str(path)
        self._done = done

    def dispatch(self, event: FileSystemEvent) -> None:
        if not isinstance(event, FileClosedEvent) or os.fsdecode(event.src_path) != self._path:
            return
        evented = time.time_ns()
        source = Path(self._path).read_text()
        compile(source, self._path, "exec")
        self._done.put((evented, time.time_ns()))


def measure_floor(count: int, parent: str | None) -> tuple[Result, list[float]]:
    """The floor: a write seen by watchdog (inotify) in this process, then read + compile.

    Also returns the latencies of the event alone (ms), for the timed edits.
    """
    result = Result("floor", "in process")
    done: queue.Queue[tuple[int, int]] = queue.Queue()
    event_ms: list[float] = []
    with tempfile.TemporaryDirectory(prefix="relive-run-bench-floor-", dir=parent) as temp:
        directory = Path(temp).resolve()
        write_helper(directory, 0)
        observer = InotifyObserver()
        observer.schedule(_FloorHandler(directory / "helper.py", done), str(directory))
        observer.start()
        written = 0

        def edit(value: int) -> int:
            nonlocal written
            written = write_helper(directory, value)
            return written

        def wait(value: int, timeout: float) -> int | None:
            try:
                evented, compiled = done.get(timeout=timeout)
            except queue.Empty:
                return None
            event_ms.append((evented - written) / MS)
            return compiled

        try:
            run_edits(result, edit, wait, count)
        finally:
            observer.stop()
            observer.join()
    return result, event_ms[WARMUP:]


# --- output ----------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ratio(result: Result, relive: Result | None) -> str:
    if relive is None or relive.median is None or result.median is None:
        return "—"
    return f"{result.median / relive.median:.2f}x"


def table(program: str, results: list[Result]) -> str:
    """One program's markdown table, its notes and the targets."""
    relive = next((result for result in results if result.tool == "relive"), None)
    lines = [
        f"### {program} program",
        "",
        "| tool | mode | median ms | p90 ms | first edit ms | write ms | misses | vs relive |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        lines.append(
            f"| {result.tool} | {result.mode} | {_ms(result.median)} | {_ms(result.p90)}"
            f" | {_ms(result.first)} | {_ms(_median(result.writes))}"
            f" | {result.misses}/{result.edits} | {_ratio(result, relive)} |"
        )
    lines.append("")
    for result in results:
        lines.extend(f"- {result.tool}: {note}" for note in result.notes)
    lines.extend(targets(results))
    return "\n".join(lines)


def targets(results: list[Result]) -> list[str]:
    """Issue 8's targets, checked: relive ≤ 10 ms, ≤ jurigged / 5, 40x under a restart."""
    by_name = {result.tool: result for result in results}
    relive = by_name.get("relive")
    if relive is None or relive.median is None:
        return []
    median = relive.median
    checks = [f"relive median {median:.1f} ms ≤ 10 ms: {'met' if median <= 10 else 'MISSED'}"]
    jurigged = by_name.get("jurigged")
    if jurigged is not None and jurigged.median is not None:
        met = median <= jurigged.median / 5
        checks.append(
            f"≤ jurigged / 5 ({jurigged.median / 5:.1f} ms): {'met' if met else 'MISSED'}"
        )
    for name in ("watchfiles", "hupper"):
        restart = by_name.get(name)
        if restart is not None and restart.median is not None:
            factor = restart.median / median
            checks.append(f"{factor:.0f}x faster than {name}'s restart (target 40x)")
    return ["", "Targets: " + "; ".join(checks) + "."]


def filesystem(path: str) -> str:
    """The type of the filesystem holding `path` (the longest mount point above it)."""
    best, kind = "", "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            point = fields[1]
            inside = path == point or path.startswith(point.rstrip("/") + "/")
            if inside and len(point) > len(best):
                best, kind = point, fields[2]
    return kind


def machine() -> str:
    """CPUs, OS, Python, package versions and load: what the numbers depend on."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"Machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()},"
        f" Python {platform.python_version()}; load average at start {load}.\n"
        f"Versions: {', '.join(versions)}."
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def results_json(
    by_program: dict[str, list[Result]], count: int, argv: list[str]
) -> dict[str, Any]:
    """The results as `recorded.write` stores them (bench/results/run.json)."""
    rows = [
        {
            "program": program,
            "tool": result.tool,
            "mode": result.mode,
            "median_ms": _rounded(result.median),
            "p90_ms": _rounded(result.p90),
            "first_ms": _rounded(result.first),
            "misses": result.misses,
            "edits": result.edits,
        }
        for program, results in by_program.items()
        for result in results
    ]
    commands = {tool.name: tool.command for tool in tools()}
    return {
        "provenance": recorded.provenance("run_bench.py", argv, list(PACKAGES)),
        "data": {"edits": count, "commands": commands, "rows": rows},
    }


# --- main ------------------------------------------------------------------------------


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_EDITS} edits per tool")
    parser.add_argument("--edits", type=int, help=f"timed edits per tool (default {EDITS})")
    parser.add_argument("--tools", nargs="+", help="only these tools (floor is always run)")
    parser.add_argument("--dir", help="where to write the programs (default: the temp dir)")
    parser.add_argument("--programs", nargs="+", choices=sorted(PROGRAMS), help="only these")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    # A SIGTERM (a CI timeout, `kill`) must still run the `finally` blocks that end the tools.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    count = args.edits or (QUICK_EDITS if args.quick else EDITS)
    chosen = [tool for tool in tools() if not args.tools or tool.name in args.tools]
    started = time.monotonic()
    print("## Save-to-live latency (`relive run` and the anchors)\n")
    print(machine())
    command = shlex.join(["python", "bench/run_bench.py", *(argv or sys.argv[1:])])
    where = os.path.realpath(args.dir or tempfile.gettempdir())
    print(
        f"Command: `{command}`; {count} timed edits per tool after {WARMUP} warm-up;"
        f" files written under {where} ({filesystem(where)}).\n"
    )
    commands = ", ".join(f"`{tool.command}`" for tool in chosen)
    print(f"Tools, with their default settings: {commands}.\n")
    print(LEGEND + "\n")
    floor, event_ms = measure_floor(count, args.dir)
    left_over: list[int] = []
    by_program: dict[str, list[Result]] = {}
    for program in args.programs or list(PROGRAMS):
        results = [measure_tool(tool, program, count, args.dir) for tool in chosen]
        left_over.extend(pid for result in results for pid in result.left_over)
        results.append(floor)
        by_program[program] = results
        print(table(program, results) + "\n", flush=True)
    print(
        f"Floor, the watchdog event alone: median {statistics.median(event_ms):.2f} ms"
        f" (the floor row adds reading and compiling helper.py).\n"
    )
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"Runtime {time.monotonic() - started:.0f} s; load average at end {load}.")
    if args.json:
        record = results_json(by_program, count, sys.argv[1:] if argv is None else argv)
        recorded.write(args.json, "run", record)
    if left_over:
        print(f"processes left behind: {left_over}", file=sys.stderr)
    return 1 if left_over else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)  # the tools were ended on the way out
