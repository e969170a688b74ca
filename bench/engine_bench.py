"""Engine benchmark: relive beside importlib.reload, IPython's autoreload and jurigged.

Generates packages of 50, 500 and 2000 modules, runs every tool in its own fresh
subprocess over the same edits, and prints median reload times as markdown tables.
Usage: `.venv/bin/python bench/engine_bench.py [--quick]` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import ast
import compileall
import gc
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

import recorded

PACKAGE = "benchproj"
SIZES = (50, 500, 2000)
MEMORY_SIZE = 50
TOOLS = ("floor", "importlib", "ipython", "jurigged", "relive-reload", "relive-refresh")
MEMORY_TOOLS = ("importlib", "ipython", "jurigged", "relive-reload")
WARMUP = 1  # untimed trials before each scenario (first-use caches, lazy set-up)
SECOND_NS = 1_000_000_000
REPO = Path(__file__).resolve().parent.parent


# --- the generated project ---------------------------------------------------------------


def module_name(index: int) -> str:
    return f"{PACKAGE}.m{index:04d}"


def module_path(project_dir: Path, index: int) -> Path:
    return project_dir / PACKAGE / f"m{index:04d}.py"


def module_body(index: int, marker: int) -> str:
    """The ~130 lines every module shares: constants, functions, classes, a dataclass."""
    return f'''
SCALE = {index} + 1
NAMES = ("alpha", "beta", "gamma", "delta", "epsilon")
LIMITS = {{"low": 0, "high": 100 * SCALE, "step": 5}}
DERIVED = ROOT_CONSTANT * SCALE
REGISTRY: dict[str, int] = {{}}
REGISTRY["root"] = root_func(SCALE)


def helper_{index:04d}(value: int) -> int:
    """Scale a value; the next module imports this."""
    return value * SCALE + ROOT_CONSTANT


def transform(value: int) -> int:
    """The leaf edit target: the benchmark rewrites the last term."""
    return value * 3 + {marker}


def uses_root_constant() -> int:
    """This module's `from` copy of the root constant."""
    return ROOT_CONSTANT


def uses_root_func(value: int) -> int:
    """Calls this module's `from` copy of the root function."""
    return root_func(value)


def clamp(value: int, low: int = LIMITS["low"], high: int = LIMITS["high"]) -> int:
    return max(low, min(high, value))


def summarize(values: list[int]) -> dict[str, float]:
    if not values:
        return {{"count": 0, "mean": 0.0, "std": 0.0}}
    mean = sum(values) / len(values)
    variance = sum((value - mean) ** 2 for value in values) / len(values)
    return {{"count": len(values), "mean": mean, "std": math.sqrt(variance)}}


def parse_pairs(text: str) -> list[tuple[str, int]]:
    pairs = []
    for chunk in text.split(","):
        key, _, raw = chunk.partition("=")
        key = key.strip()
        if not key:
            continue
        try:
            number = int(raw)
        except ValueError:
            number = 0
        pairs.append((key, number))
    return pairs


@functools.lru_cache(maxsize=128)
def cached_lookup(name: str) -> int:
    return len(name) * SCALE + DERIVED


@dataclass
class Record:
    name: str
    value: int = 0
    tags: list[str] = field(default_factory=list)

    def score(self) -> int:
        return self.value * SCALE + len(self.tags)

    def label(self) -> str:
        return f"{{self.name}}:{{self.score()}}"


class Accumulator:
    """Collects values and reports statistics about them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.values: list[int] = []

    def add(self, value: int) -> None:
        self.values.append(clamp(value))

    def extend(self, values: list[int]) -> None:
        for value in values:
            self.add(value)

    @property
    def size(self) -> int:
        return len(self.values)

    def stats(self) -> dict[str, float]:
        return summarize(self.values)

    def __repr__(self) -> str:
        return f"Accumulator({{self.name!r}}, size={{self.size}})"


class Pipeline:
    """A list of steps applied one after the other."""

    def __init__(self) -> None:
        self.steps: list[Callable[[int], int]] = []

    def add_step(self, step: Callable[[int], int]) -> Pipeline:
        self.steps.append(step)
        return self

    def run(self, value: int) -> int:
        for step in self.steps:
            value = step(value)
        return value

    @classmethod
    def default(cls) -> Pipeline:
        return cls().add_step(clamp).add_step(transform)

    @staticmethod
    def describe() -> str:
        return "clamp, then transform"


def format_record(record: Record) -> str:
    tags = ", ".join(sorted(record.tags)) or "-"
    return f"{{record.name}} [{{tags}}] = {{record.value}}"


def build_records(count: int) -> list[Record]:
    return [Record(NAMES[i % len(NAMES)], i * SCALE) for i in range(count)]


DEFAULT_PIPELINE = Pipeline.default()
'''


HEADER = '''"""Module {index} of the generated relive benchmark project."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
'''


def module_source(index: int, marker: int = 0) -> str:
    """A dependent module: imports the previous module and the root's names."""
    imports = (
        f"\nfrom {module_name(0)} import ROOT_CONSTANT, root_func\n"
        f"from {module_name(index - 1)} import helper_{index - 1:04d}\n"
    )
    chain = f"\n\ndef chain(value: int) -> int:\n    return helper_{index - 1:04d}(value) + SCALE\n"
    return HEADER.format(index=index) + imports + module_body(index, marker) + chain


def root_source(constant: int = 1, marker: int = 0) -> str:
    """The root module every other module imports `ROOT_CONSTANT` and `root_func` from."""
    root = (
        f"\nROOT_CONSTANT = {constant}\n\n\n"
        "def root_func(value: int) -> int:\n"
        '    """The root edit target: the benchmark rewrites the last term."""\n'
        f"    return value * 2 + ROOT_CONSTANT + {marker}\n"
    )
    return HEADER.format(index=0) + root + module_body(0, 0)


def generate_project(parent: Path, size: int) -> Path:
    project_dir = parent / f"project_{size}"
    (project_dir / PACKAGE).mkdir(parents=True)
    (project_dir / PACKAGE / "__init__.py").write_text("")
    module_path(project_dir, 0).write_text(root_source())
    for index in range(1, size):
        module_path(project_dir, index).write_text(module_source(index))
    return project_dir


# --- the tools ----------------------------------------------------------------------------


class Tool:
    """One way to apply an edit that is on disk to the running process."""

    label = ""
    checks_everything = False  # True: one call checks every module, like a pre-cell hook

    def prepare(self) -> None:
        """Runs before the project is imported (import hooks, code registries)."""

    def setup(self, project_dir: Path) -> None:
        """Runs after the project is imported, before any timing."""

    def apply(self, module: ModuleType) -> Any:
        """Apply whatever changed on disk; the timed call."""
        raise NotImplementedError

    def check_unchanged(self) -> Any:
        """The "nothing changed" check; only tools with `checks_everything` have one."""
        return self.apply(sys.modules[module_name(0)])

    def verify(self, result: Any, module: ModuleType) -> None:
        """Checks on the call's return value, outside the timing."""


class ImportlibTool(Tool):
    label = "importlib.reload(module)"

    def apply(self, module: ModuleType) -> Any:
        return importlib.reload(module)


class IPythonTool(Tool):
    label = "IPython ModuleReloader.check() (%autoreload 2)"
    checks_everything = True

    def prepare(self) -> None:
        from IPython.extensions import autoreload

        self.module = autoreload

    def setup(self, project_dir: Path) -> None:
        # What `%load_ext autoreload` + `%autoreload 2` configure, without a shell: the
        # constructor records every module's mtime and source (check(do_reload=False)).
        reloader = self.module.ModuleReloader()
        reloader.enabled = True
        reloader.check_all = True
        reloader.autoload_obj = False
        reloader.deduper_reloader.enabled = True  # the default unless `%autoreload 2-`
        self.reloader = reloader

    def apply(self, module: ModuleType) -> Any:
        return self.reloader.check()  # what its pre_run_cell hook calls before each cell


class JuriggedTool(Tool):
    label = "jurigged registry.get(path).refresh()"

    def prepare(self) -> None:
        import jurigged  # installs codefind's code registry and jurigged's import sniffer

        self.registry = jurigged.registry
        self.glob_filter = jurigged.glob_filter

    def setup(self, project_dir: Path) -> None:
        # jurigged.watch() minus the watchdog thread: register and cache the project's files;
        # each timed call is what Watcher.refresh(path) does on a file event.
        self.registry.auto_register(filter=self.glob_filter(str(project_dir / PACKAGE)))

    def apply(self, module: ModuleType) -> Any:
        return self.registry.get(module.__file__).refresh()


class ReliveTool(Tool):
    def prepare(self) -> None:
        import relive

        self.relive = relive

    def setup(self, project_dir: Path) -> None:
        self.relive.get_engine()
        initial = self.relive.refresh()  # untimed: nothing changed yet, must be empty
        if initial.reloaded:
            raise AssertionError(f"refresh() before any edit reloaded {initial.reloaded}")

    def verify(self, result: Any, module: ModuleType) -> None:
        if module.__name__ not in result.reloaded:
            raise AssertionError(f"{module.__name__} not in Report.reloaded {result.reloaded}")


class ReliveReloadTool(ReliveTool):
    label = "relive.reload(module)"

    def apply(self, module: ModuleType) -> Any:
        return self.relive.reload(module)


class ReliveRefreshTool(ReliveTool):
    label = "relive.refresh()"
    checks_everything = True

    def apply(self, module: ModuleType) -> Any:
        return self.relive.refresh()


TOOL_CLASSES: dict[str, type[Tool]] = {
    "importlib": ImportlibTool,
    "ipython": IPythonTool,
    "jurigged": JuriggedTool,
    "relive-reload": ReliveReloadTool,
    "relive-refresh": ReliveRefreshTool,
}
LABELS = {name: cls.label for name, cls in TOOL_CLASSES.items()}


# --- edits and timing (worker side) -------------------------------------------------------


@dataclass
class Editor:
    """Writes new versions of the root and the leaf, each with a strictly newer mtime."""

    project_dir: Path
    size: int
    version: int = 0
    root_constant: int = 1
    root_marker: int = 0
    next_mtime_ns: int = 0

    def __post_init__(self) -> None:
        edited = [module_path(self.project_dir, index) for index in (0, self.size - 1)]
        if [path.read_text() for path in edited] != [root_source(), module_source(self.size - 1)]:
            raise AssertionError("the project does not start from its generated sources")
        newest = max(path.stat().st_mtime_ns for path in edited)
        self.next_mtime_ns = max(newest, time.time_ns()) + SECOND_NS

    def write(self, index: int, source: str) -> None:
        path = module_path(self.project_dir, index)
        path.write_text(source)
        # Whole seconds: .pyc files and IPython both judge staleness by mtime.
        os.utime(path, ns=(self.next_mtime_ns, self.next_mtime_ns))
        self.next_mtime_ns += SECOND_NS

    def new_version(self) -> int:
        self.version += 1  # every trial writes text never seen before
        return self.version

    def edit_leaf(self) -> tuple[int, str]:
        marker = self.new_version()
        source = module_source(self.size - 1, marker)
        self.write(self.size - 1, source)
        return marker, source

    def edit_root_body(self) -> int:
        self.root_marker = self.new_version()
        self.write(0, root_source(self.root_constant, self.root_marker))
        return self.root_marker

    def edit_root_constant(self) -> int:
        self.root_constant = self.new_version() + 1
        self.write(0, root_source(self.root_constant, self.root_marker))
        return self.root_constant


@dataclass
class Trial:
    """One edit: the module to reload and a check that the new code is what runs."""

    module: ModuleType
    applied: Callable[[], bool]
    dependents: Callable[[], bool] = lambda: False
    source: str = ""  # the leaf's new text, compiled once more after the reload: the floor


def leaf_trial(editor: Editor) -> Trial:
    marker, source = editor.edit_leaf()
    leaf = sys.modules[module_name(editor.size - 1)]
    return Trial(leaf, lambda: sys.modules[leaf.__name__].transform(1) == 3 + marker, source=source)


def root_body_trial(editor: Editor) -> Trial:
    marker = editor.edit_root_body()
    expected = 2 + editor.root_constant + marker
    root, leaf = (sys.modules[module_name(i)] for i in (0, editor.size - 1))
    return Trial(
        root,
        lambda: sys.modules[root.__name__].root_func(1) == expected,
        lambda: leaf.uses_root_func(1) == expected,
    )


def root_constant_trial(editor: Editor) -> Trial:
    constant = editor.edit_root_constant()
    expected = 2 + constant + editor.root_marker
    derived = constant * editor.size  # the leaf's SCALE is its index + 1
    root, leaf = (sys.modules[module_name(i)] for i in (0, editor.size - 1))
    return Trial(
        root,
        lambda: sys.modules[root.__name__].root_func(1) == expected,
        lambda: leaf.uses_root_constant() == constant and derived == leaf.DERIVED,
    )


Handler = Callable[[str], dict[str, Any]]  # scenario name -> one trial's measurements


def time_one(tool: Tool, trial: Trial) -> tuple[int, Any]:
    """Apply one edit: only the tool's call is timed; then check the new code runs."""
    start = time.perf_counter_ns()
    result = tool.apply(trial.module)
    elapsed = time.perf_counter_ns() - start
    if not trial.applied():
        raise AssertionError(f"{tool.label}: the edit of {trial.module.__name__} did not apply")
    tool.verify(result, trial.module)
    return elapsed, result


def time_noop(tool: Tool) -> int:
    start = time.perf_counter_ns()
    result = tool.check_unchanged()
    elapsed = time.perf_counter_ns() - start
    if getattr(result, "reloaded", ()):
        raise AssertionError(f"{tool.label}: nothing changed but it reloaded {result}")
    return elapsed


TRIALS: dict[str, Callable[[Editor], Trial]] = {
    "leaf": leaf_trial,
    "root_body": root_body_trial,
    "root_constant": root_constant_trial,
}
SCENARIOS = (*TRIALS, "noop")


def tool_trial(tool: Tool, editor: Editor, scenario: str) -> dict[str, Any]:
    """One trial: write the edit (untimed), apply it (timed), check that it took effect."""
    if scenario == "noop":
        return {"elapsed": time_noop(tool)}
    trial = TRIALS[scenario](editor)
    elapsed, result = time_one(tool, trial)
    reply: dict[str, Any] = {"elapsed": elapsed, "dependents": trial.dependents()}
    if hasattr(result, "reloaded"):
        reply["reloaded"] = len(result.reloaded)
    if trial.source:  # the floor, timed in the same process right after the reload
        start = time.perf_counter_ns()
        compile(trial.source, str(trial.module.__file__), "exec")
        reply["floor"] = time.perf_counter_ns() - start
    return reply


def floor_trial(editor: Editor) -> dict[str, Any]:
    """The cost of turning a new version of the leaf into code, without applying it."""
    source = module_source(editor.size - 1, editor.new_version())
    path = str(module_path(editor.project_dir, editor.size - 1))
    start = time.perf_counter_ns()
    compile(source, path, "exec")
    compiled = time.perf_counter_ns()
    tree = ast.parse(source, path)
    parsed = time.perf_counter_ns()
    compile(tree, path, "exec")
    done = time.perf_counter_ns()
    return {"compile": compiled - start, "parse": parsed - compiled, "compile_ast": done - parsed}


def import_project(project_dir: Path, size: int) -> None:
    sys.path.insert(0, str(project_dir))
    for index in range(size):  # in order, so no import nests 2000 deep
        importlib.import_module(module_name(index))


def start_tool(name: str, project_dir: Path, size: int) -> tuple[Tool, float]:
    tool = TOOL_CLASSES[name]()
    start = time.perf_counter()
    tool.prepare()
    import_project(project_dir, size)
    tool.setup(project_dir)
    return tool, time.perf_counter() - start


def make_handler(name: str, project_dir: Path, size: int) -> tuple[Handler, float]:
    if name == "floor":
        editor = Editor(project_dir, size)
        return (lambda scenario: floor_trial(editor)), 0.0
    tool, setup_seconds = start_tool(name, project_dir, size)
    editor = Editor(project_dir, size)
    return (lambda scenario: tool_trial(tool, editor, scenario)), setup_seconds


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def traced_bytes() -> int:
    return tracemalloc.get_traced_memory()[0]


def measure_memory(name: str, project_dir: Path, reloads: int, probe: str) -> dict[str, Any]:
    """`reloads` consecutive leaf reloads; memory after 0, reloads/2 and reloads of them."""
    tool, _ = start_tool(name, project_dir, MEMORY_SIZE)
    editor = Editor(project_dir, MEMORY_SIZE)
    measure = rss_bytes if probe == "rss" else traced_bytes
    gc.collect()
    if probe == "tracemalloc":
        tracemalloc.start()
    readings = [measure()]
    for count in range(1, reloads + 1):
        time_one(tool, leaf_trial(editor))  # asserts that every reload applied
        if count in (reloads // 2, reloads):
            gc.collect()
            readings.append(measure())
    return {"memory": [reading - readings[0] for reading in readings]}


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def reply_channel() -> TextIO:
    """The worker's stdout, kept for replies; whatever the tools print goes to stderr."""
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def run_worker(args: argparse.Namespace) -> int:
    """Set one tool up in this fresh process, then answer one request per stdin line."""
    channel = reply_channel()

    def reply(message: dict[str, Any]) -> None:
        channel.write(json.dumps(message) + "\n")

    try:
        if args.memory:
            reply(measure_memory(args.worker, args.project, args.reloads, args.memory))
            return 0
        handler, setup_seconds = make_handler(args.worker, args.project, args.size)
    except Exception as exc:
        traceback.print_exc()
        reply({"status": "failed", "error": describe(exc)})
        return 0
    reply({"status": "ok", "setup_s": setup_seconds})
    for line in sys.stdin:
        try:
            reply(handler(json.loads(line)["scenario"]))
        except Exception as exc:
            traceback.print_exc()
            reply({"error": describe(exc)})
    return 0


# --- orchestration (parent side) ----------------------------------------------------------


def worker_command(tool: str, size: int, project_dir: Path, *extra: str) -> list[str]:
    command = [sys.executable, __file__, "--worker", tool, "--size", str(size)]
    return [*command, "--project", str(project_dir), *extra]


def worker_env(relive_src: Path | None) -> dict[str, str]:
    # Python's default: reloads write .pyc files, as they would on a developer's machine.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    if relive_src is not None:  # ahead of the editable install's path entry
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(relive_src), env.get("PYTHONPATH")]))
    return env


def export_relive(commit: str, workdir: Path) -> Path:
    """relive's sources as committed at `commit`, so that edits in progress are not measured."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit, "src/relive"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive.stdout, check=True)
    return workdir / "src"


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Worker:
    """A tool's worker process, and the record of its trials that the report reads."""

    tool: str
    process: subprocess.Popen[str]
    run: dict[str, Any]

    def ask(self, scenario: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"scenario": scenario}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        return json.loads(line) if line else {"error": "the worker died"}

    def takes(self, scenario: str) -> bool:
        if self.run["status"] != "ok":
            return False
        if self.tool == "floor":
            return scenario == "leaf"
        return scenario != "noop" or TOOL_CLASSES[self.tool].checks_everything

    def record(self, scenario: str, reply: dict[str, Any], timed: bool) -> None:
        if "error" in reply:
            self.run |= {"status": "failed", "error": f"{scenario}: {reply['error']}"}
            progress(f"    {self.tool} failed: {self.run['error']}")
        elif self.tool == "floor":
            for key, value in reply.items():
                self.run["samples" if timed else "warmup"].setdefault(key, []).append(value)
        else:
            self.run["samples" if timed else "warmup"].setdefault(scenario, []).append(
                reply["elapsed"]
            )
            if timed:
                if "dependents" in reply:
                    self.run["dependents"].setdefault(scenario, []).append(reply["dependents"])
                self.run["reloaded"][scenario] = reply.get("reloaded")
                if "floor" in reply:
                    self.run["paired_floor"].append(reply["floor"])

    def stop(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def spawn(tool: str, size: int, project_dir: Path, env: dict[str, str]) -> Worker:
    """Start a worker and wait until it has imported the project and set its tool up."""
    load = load_average()
    command = worker_command(tool, size, project_dir)
    pipe = subprocess.PIPE
    process = subprocess.Popen(command, stdin=pipe, stdout=pipe, text=True, env=env)
    assert process.stdout is not None
    line = process.stdout.readline()
    hello = json.loads(line) if line else {"status": "failed", "error": "died during set-up"}
    run = {"tool": tool, "size": size, "load": load, "samples": {}, "warmup": {}}
    run |= {"dependents": {}, "reloaded": {}, "paired_floor": []} | hello
    worker = Worker(tool, process, run)
    setup = f"set up in {run['setup_s']:.1f} s" if "setup_s" in run else run.get("error")
    progress(f"  {tool:14} {size:4} modules  load {load:5}  {run['status']}: {setup}")
    if run["status"] != "ok":
        worker.stop()
    return worker


def run_scenario(workers: list[Worker], scenario: str, args: argparse.Namespace) -> None:
    """Trials in rounds: each round asks every tool once, starting with a different one."""
    started = time.monotonic()
    timed_rounds = 0
    for index in range(WARMUP + args.trials):
        over_budget = time.monotonic() - started > args.budget
        if timed_rounds >= args.min_trials and over_budget:
            break
        active = [worker for worker in workers if worker.takes(scenario)]
        shift = index % max(len(active), 1)
        for worker in active[shift:] + active[:shift]:
            worker.record(scenario, worker.ask(scenario), timed=index >= WARMUP)
        timed_rounds += index >= WARMUP
    elapsed = time.monotonic() - started
    progress(f"    {scenario:13} {timed_rounds} timed rounds in {elapsed:.1f} s")


def prepare_project(workdir: Path, size: int) -> Path:
    """The generated project, byte-compiled once so that every copy imports from .pyc."""
    pristine = workdir / "pristine" / f"project_{size}"
    if not pristine.exists():
        generate_project(pristine.parent, size)
        compileall.compile_dir(pristine, quiet=1)
    return pristine


def copy_project(workdir: Path, size: int, name: str) -> Path:
    """A private copy per worker: no tool ever sees another tool's writes or .pyc files."""
    copy = workdir / name / f"project_{size}"
    shutil.copytree(prepare_project(workdir, size), copy)
    return copy


def run_size(
    args: argparse.Namespace, workdir: Path, size: int, env: dict[str, str]
) -> list[dict[str, Any]]:
    progress(f"{size} modules")
    workers: list[Worker] = []
    try:
        for tool in TOOLS:
            workers.append(spawn(tool, size, copy_project(workdir, size, tool), env))
        for scenario in SCENARIOS:
            run_scenario(workers, scenario, args)
    finally:
        for worker in workers:
            worker.stop()
    return [worker.run for worker in workers]


def run_memory_worker(
    args: argparse.Namespace, workdir: Path, env: dict[str, str], tool: str, probe: str
) -> dict[str, Any]:
    project_dir = copy_project(workdir, MEMORY_SIZE, f"memory-{tool}-{probe}")
    extra = ["--memory", probe, "--reloads", str(args.reloads)]
    command = worker_command(tool, MEMORY_SIZE, project_dir, *extra)
    load = load_average()
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env, check=False)
    lines = completed.stdout.splitlines()
    result = json.loads(lines[-1]) if lines else {"status": "failed", "error": "worker died"}
    result = {"status": "ok"} | result
    progress(f"  memory {tool:14} {probe:11} load {load:5}  {result['status']}")
    return {"tool": tool, "size": MEMORY_SIZE, "probe": probe, "load": load} | result


def run_memory_workers(
    args: argparse.Namespace, workdir: Path, env: dict[str, str]
) -> list[dict[str, Any]]:
    """Memory does not depend on timing: two workers at a time, one per core."""
    progress(f"memory: {args.reloads} reloads")
    jobs = [(tool, probe) for probe in ("rss", "tracemalloc") for tool in MEMORY_TOOLS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda job: run_memory_worker(args, workdir, env, *job), jobs))


# --- the report ---------------------------------------------------------------------------

TIMED_TOOLS = ["importlib", "ipython", "jurigged", "relive-reload", "relive-refresh"]
FLOOR_ROWS = {
    "compile": "floor: compile(source, path, 'exec')",
    "parse": "floor: ast.parse(source)",
    "compile_ast": "floor: compile(tree, path, 'exec')",
}
AGAINST_ANCHORS = [
    ("relive-reload", "importlib"),
    ("relive-reload", "ipython"),
    ("relive-reload", "jurigged"),
    ("relive-refresh", "ipython"),
]
RATIOS = {
    "leaf": AGAINST_ANCHORS,
    "root_body": AGAINST_ANCHORS,
    "root_constant": AGAINST_ANCHORS,
    "noop": [("relive-refresh", "ipython")],
}
Value = float | str  # a median in ms, or why there is none


@dataclass
class Results:
    """Worker results, looked up by tool, project size and memory probe."""

    runs: list[dict[str, Any]]
    sizes: list[int]
    trials: int

    def find(self, tool: str, size: int, probe: str | None = None) -> dict[str, Any] | None:
        for run in self.runs:
            if (run["tool"], run["size"], run.get("probe")) == (tool, size, probe):
                return run
        return None

    def samples(self, tool: str, size: int, scenario: str) -> list[int] | str:
        if tool.startswith("floor:"):
            tool, scenario = "floor", tool.removeprefix("floor:")
        run = self.find(tool, size)
        if run is None or run["status"] != "ok":
            return run["status"] if run else "not run"
        return run["samples"].get(scenario) or "n/a"

    def median_ms(self, tool: str, size: int, scenario: str) -> Value:
        samples = self.samples(tool, size, scenario)
        return samples if isinstance(samples, str) else statistics.median(samples) / 1e6

    def paired_ratio(self, tool: str, size: int) -> str:
        """Median over leaf trials of (reload time ÷ compile(source) time in that trial)."""
        run = self.find(tool, size)
        if run is None or run["status"] != "ok":
            return run["status"] if run else "not run"
        pairs = zip(run["samples"]["leaf"], run["paired_floor"], strict=True)
        return f"{statistics.median(reload / floor for reload, floor in pairs):.2f}x"

    def median_cell(self, tool: str, size: int, scenario: str) -> str:
        """The median, with the trial count when the time budget cut the trials short."""
        samples = self.samples(tool, size, scenario)
        text = cell(self.median_ms(tool, size, scenario))
        cut = not isinstance(samples, str) and len(samples) < self.trials
        return f"{text} (n={len(samples)})" if cut else text


def cell(value: Value) -> str:
    if isinstance(value, str):
        return value
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def ratio(numerator: Value, denominator: Value) -> str:
    if isinstance(numerator, str):
        return numerator
    if isinstance(denominator, str):
        return denominator
    return f"{numerator / denominator:.2f}x"


def row(label: str, cells: list[str]) -> str:
    return f"| {label} | " + " | ".join(cells) + " |"


def header(sizes: list[int]) -> list[str]:
    return [row("", [f"{size} modules" for size in sizes]), "|---|" + "--:|" * len(sizes)]


def scenario_table(results: Results, scenario: str) -> list[str]:
    lines = header(results.sizes)
    keys = [f"floor:{key}" for key in FLOOR_ROWS] if scenario == "leaf" else []
    tools = TIMED_TOOLS
    if scenario == "noop":
        tools = [tool for tool in tools if TOOL_CLASSES[tool].checks_everything]
    for key in [*keys, *tools]:
        label = FLOOR_ROWS[key.removeprefix("floor:")] if key in keys else LABELS[key]
        lines.append(
            row(label, [results.median_cell(key, size, scenario) for size in results.sizes])
        )
    for relive, anchor in RATIOS[scenario]:
        cells = [
            ratio(
                results.median_ms(relive, size, scenario),
                results.median_ms(anchor, size, scenario),
            )
            for size in results.sizes
        ]
        lines.append(row(f"ratio {LABELS[relive]} ÷ {LABELS[anchor]}", cells))
    if scenario == "leaf":
        for relive in ("relive-reload", "relive-refresh"):
            cells = [results.paired_ratio(relive, size) for size in results.sizes]
            label = f"ratio {LABELS[relive]} ÷ compile(source) timed in the same trial"
            lines.append(row(label, cells))
    return lines


def dependents_cell(results: Results, tool: str, scenario: str) -> str:
    seen: list[bool] = []
    for size in results.sizes:
        run = results.find(tool, size)
        if run is None or run["status"] != "ok":
            return run["status"] if run else "not run"
        seen += run["dependents"][scenario]
    return "yes" if all(seen) else "no" if not any(seen) else f"{sum(seen)}/{len(seen)} trials"


def dependents_table(results: Results) -> list[str]:
    lines = [
        row(
            "",
            [
                "root body edit: the leaf's `from` copy of `root_func` runs the new body",
                "root constant edit: the leaf's `from` copy of `ROOT_CONSTANT` and its "
                "`DERIVED = ROOT_CONSTANT * SCALE` follow",
            ],
        ),
        "|---|---|---|",
    ]
    for tool in TIMED_TOOLS:
        cells = [dependents_cell(results, tool, key) for key in ("root_body", "root_constant")]
        lines.append(row(LABELS[tool], cells))
    return lines


def warmup_cell(run: dict[str, Any] | None) -> str:
    if run is None or run["status"] != "ok":
        return run["status"] if run else "not run"
    keys = ("leaf", "root_body", "root_constant")
    return " · ".join(cell(run["warmup"][key][0] / 1e6) for key in keys)


def warmup_table(results: Results) -> list[str]:
    lines = header(results.sizes)
    for tool in TIMED_TOOLS:
        lines.append(row(LABELS[tool], [warmup_cell(results.find(tool, s)) for s in results.sizes]))
    return lines


def reloaded_table(results: Results) -> list[str]:
    lines = header(results.sizes)
    for tool in ("relive-reload", "relive-refresh"):
        for scenario, what in (("root_body", "body"), ("root_constant", "constant")):
            runs = [results.find(tool, size) for size in results.sizes]
            cells = [
                str(run["reloaded"][scenario]) if run and run["status"] == "ok" else "n/a"
                for run in runs
            ]
            lines.append(row(f"{LABELS[tool]}, root {what} edit", cells))
    return lines


def megabytes(run: dict[str, Any] | None, index: int) -> str:
    if run is None or run["status"] != "ok":
        return run["status"] if run else "not run"
    return f"{run['memory'][index] / 2**20:+.2f}"


def memory_table(results: Results, reloads: int) -> list[str]:
    half = reloads // 2
    lines = [
        row(
            "",
            [
                f"RSS after {half}",
                f"RSS after {reloads}",
                f"tracemalloc after {half}",
                f"tracemalloc after {reloads}",
            ],
        ),
        "|---|--:|--:|--:|--:|",
    ]
    for tool in MEMORY_TOOLS:
        rss = results.find(tool, MEMORY_SIZE, "rss")
        traced = results.find(tool, MEMORY_SIZE, "tracemalloc")
        cells = [megabytes(rss, 1), megabytes(rss, 2), megabytes(traced, 1), megabytes(traced, 2)]
        lines.append(row(LABELS[tool], cells))
    return lines


def setup_table(results: Results) -> list[str]:
    lines = header(results.sizes)
    for tool in TIMED_TOOLS:
        runs = [results.find(tool, size) for size in results.sizes]
        cells = [
            f"{run['setup_s']:.2f}" if run and run["status"] == "ok" else "n/a" for run in runs
        ]
        lines.append(row(LABELS[tool], cells))
    return lines


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def git(*arguments: str) -> str:
    command = ["git", "-C", str(REPO), *arguments]
    return subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip()


def git_revision(commit: str | None) -> str:
    """The last commit of relive's sources measured, and whether the tree differs from it."""
    revision = git("log", "-1", "--format=%h %s", commit or "HEAD", "--", "src/relive")
    revision = revision or "unknown"
    if commit:
        return revision + f" (from {commit}, exported with git archive)"
    dirty = git("status", "--porcelain", "--", "src/relive")
    return revision + (" + uncommitted changes in src/relive" if dirty else "")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_lines(commit: str | None) -> list[str]:
    versions = ", ".join(
        f"{name} {package_version(name)}" for name in ("relive", "ipython", "jurigged", "codefind")
    )
    return [
        f"- CPU: {cpu_model()}, nproc {os.cpu_count()}; {platform.platform()}",
        f"- Python {platform.python_version()} ({sys.executable})",
        f"- {versions}; relive at `{git_revision(commit)}`",
    ]


def failures(results: Results) -> list[str]:
    return [
        f"- {run['tool']} ({run['size']} modules{', ' + run['probe'] if run.get('probe') else ''})"
        f": {run['status']}: {run.get('error')}"
        for run in results.runs
        if run["status"] != "ok"
    ]


def load_line(results: Results) -> str:
    loads = sorted(float(run["load"]) for run in results.runs)
    return f"- 1-minute load average as each worker started: {loads[0]:.2f} to {loads[-1]:.2f}"


def render(results: Results, args: argparse.Namespace) -> str:
    medians = f"median ms of {args.trials} interleaved trials after {WARMUP} untimed warm-up"
    machine = [*machine_lines(args.relive_commit), load_line(results)]
    blocks = [
        ["### Engine benchmark: results", "", *machine],
        [f"#### 1. Leaf edit: one function body in the last module ({medians})"],
        scenario_table(results, "leaf"),
        [f"#### 2a. Root edit: the body of `root_func`, imported by every module ({medians})"],
        scenario_table(results, "root_body"),
        [f"#### 2b. Root edit: `ROOT_CONSTANT` rebound, copied by every module ({medians})"],
        scenario_table(results, "root_constant"),
        ["#### 2c. Did the dependents follow the root edit? (checked after every trial)"],
        dependents_table(results),
        ["How many modules relive's `Report.reloaded` names for a root edit (last trial):"],
        reloaded_table(results),
        [f"#### 3. No-op check: nothing changed on disk ({medians})"],
        scenario_table(results, "noop"),
        [f"#### 4. Memory growth over {args.reloads} leaf reloads, {MEMORY_SIZE} modules (MB)"],
        memory_table(results, args.reloads),
        ["#### First edit per scenario (the untimed warm-up, one shot, ms)"],
        ["Each cell: leaf edit · root body edit · root constant edit."],
        warmup_table(results),
        ["#### Set-up, one shot (s): import the project with the tool loaded, set the tool up"],
        setup_table(results),
    ]
    if problems := failures(results):
        blocks.append(["#### Runs that did not complete", "", *problems])
    return "\n\n".join("\n".join(block) for block in blocks)


def medians_json(results: Results, scenario: str) -> dict[str, list[float | None]]:
    """Per tool (and floor row, for the leaf edit), its median ms at each size; None: none."""
    keys = [f"floor:{key}" for key in FLOOR_ROWS] if scenario == "leaf" else []
    tools = TIMED_TOOLS
    if scenario == "noop":
        tools = [tool for tool in tools if TOOL_CLASSES[tool].checks_everything]
    medians: dict[str, list[float | None]] = {}
    for key in [*keys, *tools]:
        values = [results.median_ms(key, size, scenario) for size in results.sizes]
        medians[key] = [None if isinstance(value, str) else round(value, 3) for value in values]
    return medians


def followed_json(results: Results) -> dict[str, dict[str, str]]:
    return {
        tool: {key: dependents_cell(results, tool, key) for key in ("root_body", "root_constant")}
        for tool in TIMED_TOOLS
    }


def results_json(results: Results, args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """The medians as `recorded.write` stores them (bench/results/engine.json)."""
    labels = {**LABELS, **{f"floor:{key}": label for key, label in FLOOR_ROWS.items()}}
    packages = ["relive", "ipython", "jurigged", "codefind"]
    return {
        "provenance": recorded.provenance("engine_bench.py", argv, packages, args.relive_commit),
        "data": {
            "sizes": results.sizes,
            "trials": args.trials,
            "unit": "ms",
            "labels": labels,
            "medians": {scenario: medians_json(results, scenario) for scenario in RATIOS},
            "dependents_followed": followed_json(results),
        },
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 50 and 500 modules, fewer trials"
    )
    parser.add_argument("--trials", type=int, help="timed trials per scenario (21; quick 5)")
    parser.add_argument(
        "--min-trials", type=int, help="trials kept when a scenario is over budget (7; quick 3)"
    )
    parser.add_argument(
        "--budget", type=float, help="seconds per scenario before trials are cut (30; quick 3)"
    )
    parser.add_argument("--reloads", type=int, help="reloads in the memory run (1000; quick 100)")
    parser.add_argument("--sizes", type=int, nargs="+", help="project sizes (50 500 2000)")
    parser.add_argument(
        "--relive-commit", metavar="REV", help="measure relive as committed at REV, not the tree"
    )
    parser.add_argument(
        "--json", metavar="PATH", type=Path, help="also write the medians as JSON to PATH"
    )
    # Internal: this process is one tool's worker (see run_worker).
    parser.add_argument("--worker", choices=[*TOOL_CLASSES, "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--project", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--memory", choices=["rss", "tracemalloc"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    defaults = {"trials": (21, 5), "min_trials": (7, 3), "budget": (30.0, 3.0)}
    defaults |= {"reloads": (1000, 100), "sizes": (list(SIZES), list(SIZES[:2]))}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return run_worker(args)
    with tempfile.TemporaryDirectory(prefix="relive-bench-") as name:
        workdir = Path(name)
        relive_src = export_relive(args.relive_commit, workdir) if args.relive_commit else None
        env = worker_env(relive_src)
        runs = [run for size in args.sizes for run in run_size(args, workdir, size, env)]
        runs += run_memory_workers(args, workdir, env)
    results = Results(runs, args.sizes, args.trials)
    print(render(results, args))
    if args.json:
        argv = sys.argv[1:] if argv is None else argv
        recorded.write(args.json, "engine", results_json(results, args, argv))
    return 1 if any(run["status"] == "failed" for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
