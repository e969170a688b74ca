"""Heap benchmark: what a reload tool leaves in the process after its first root constant edit.

The project is engine_bench's (every module does `from <root> import ROOT_CONSTANT,
root_func`), generated and byte-compiled once per size. Each trial copies it and runs one
tool in a fresh process: import the tool (relive: `import relive`, `get_engine()`), import
the project, set the tool up, write a new `ROOT_CONSTANT` into the root and apply it
(relive: `relive.reload(root)`; IPython: `ModuleReloader.check()` set up as `%autoreload 2`;
importlib: `importlib.reload(root)`). The worker checks that the edit applied (for relive,
also that the leaf's `from` copy and `DERIVED` followed) and measures the apply's wall time
and, before the edit and after it: the objects the collector tracks (`len(gc.get_objects())`
after a `gc.collect()`), the time of a full `gc.collect()` (median of 3 in a row: what every
later full collection costs the program), and VmRSS. Medians over the trials; the tools take
turns within a round. Usage: `.venv/bin/python bench/heap_bench.py [--quick] [--sizes 500
2000] [--trials 3]` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import engine_bench as eb

GC_TIMINGS = 3  # one full collection, timed 3 times in a row: the median


class ReliveFirstTool(eb.ReliveReloadTool):
    """relive's engine started before the project is imported; no refresh() beforehand."""

    def prepare(self) -> None:
        super().prepare()
        from relive._engine import get_engine

        get_engine()

    def setup(self, project_dir: Path) -> None:
        pass


TOOLS: dict[str, type[eb.Tool]] = {
    "relive": ReliveFirstTool,
    "ipython": eb.IPythonTool,
    "importlib": eb.ImportlibTool,
}


def snapshot() -> dict[str, float]:
    """Tracked objects, a full collection's time (median of 3), and RSS, just after a collect."""
    gc.collect()
    objects = len(gc.get_objects())
    times = []
    for _ in range(GC_TIMINGS):
        start = time.perf_counter_ns()
        gc.collect()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return {"objects": objects, "gc_ms": statistics.median(times), "rss_mb": eb.rss_bytes() / 2**20}


def measure(name: str, project_dir: Path, size: int) -> dict[str, Any]:
    """One trial, in this fresh process: set the tool up, then the first root constant edit."""
    tool = TOOLS[name]()
    tool.prepare()
    eb.import_project(project_dir, size)
    tool.setup(project_dir)
    editor = eb.Editor(project_dir, size)
    before = snapshot()
    trial = eb.root_constant_trial(editor)  # writes the edit (untimed)
    elapsed_ns, result = eb.time_one(tool, trial)  # the timed apply; raises if it did not apply
    root = sys.modules[eb.module_name(0)]
    if editor.root_constant != root.ROOT_CONSTANT:
        raise AssertionError(f"{tool.label}: ROOT_CONSTANT is {root.ROOT_CONSTANT}")
    followed = trial.dependents()
    if name == "relive" and not followed:
        raise AssertionError("relive: the leaf's `from` copy of ROOT_CONSTANT did not follow")
    if not gc.isenabled():
        raise AssertionError(f"{tool.label} left the cyclic GC disabled")
    del result, trial
    after = snapshot()
    return {"apply_ms": elapsed_ns / 1e6, "followed": followed, "before": before, "after": after}


def run_worker(name: str, project_dir: Path, size: int) -> int:
    channel = eb.reply_channel()  # whatever the tools print goes to stderr
    try:
        reply: dict[str, Any] = {"status": "ok"} | measure(name, project_dir, size)
    except Exception as exc:
        traceback.print_exc()
        reply = {"status": "failed", "error": eb.describe(exc)}
    channel.write(json.dumps(reply) + "\n")
    return 0


def run_trial(name: str, size: int, workdir: Path, index: int) -> dict[str, Any]:
    project_dir = eb.copy_project(workdir, size, f"{name}-{index}")  # untimed, from the .pyc'd copy
    command = [sys.executable, __file__, "--worker", name, "--size", str(size)]
    command += ["--project", str(project_dir)]
    load = eb.load_average()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=eb.worker_env(None))
    shutil.rmtree(project_dir.parent)
    lines = done.stdout.splitlines()
    reply = json.loads(lines[-1]) if lines else {"status": "failed", "error": "worker died"}
    eb.progress(f"  {name:9} {size:4} modules  trial {index}  load {load}  {reply['status']}")
    return {"tool": name, "size": size, "load": float(load)} | reply


def median(runs: list[dict[str, Any]], key: str, when: str = "") -> float:
    return float(statistics.median(run[when][key] if when else run[key] for run in runs))


def table(runs: list[dict[str, Any]], sizes: list[int]) -> list[str]:
    lines = [
        "| tool | modules | first apply (ms) | objects before | objects added | full GC before"
        " (ms) | full GC after (ms) | GC after ÷ before | RSS before (MB) | RSS after (MB) |"
        " leaf's `from` copy followed |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for size in sizes:
        for name, cls in TOOLS.items():
            mine = [run for run in runs if (run["tool"], run["size"]) == (name, size)]
            ok = [run for run in mine if run["status"] == "ok"]
            if not ok:
                lines.append(f"| {cls.label} | {size} | failed |" + " |" * 8)
                continue
            added = statistics.median(r["after"]["objects"] - r["before"]["objects"] for r in ok)
            ratio = statistics.median(r["after"]["gc_ms"] / r["before"]["gc_ms"] for r in ok)
            followed = {run["followed"] for run in ok}
            cells = [
                f"{median(ok, 'apply_ms'):.1f}",
                f"{median(ok, 'objects', 'before'):,.0f}",
                f"{added:+,.0f}",
                f"{median(ok, 'gc_ms', 'before'):.1f}",
                f"{median(ok, 'gc_ms', 'after'):.1f}",
                f"{ratio:.2f}x",
                f"{median(ok, 'rss_mb', 'before'):.0f}",
                f"{median(ok, 'rss_mb', 'after'):.0f}",
                "yes" if followed == {True} else "no" if followed == {False} else "some trials",
            ]
            n = "" if len(ok) == len(mine) else f" ({len(ok)} of {len(mine)} trials ok)"
            lines.append(f"| {cls.label}{n} | {size} | " + " | ".join(cells) + " |")
    return lines


def render(runs: list[dict[str, Any]], args: argparse.Namespace, seconds: float) -> str:
    loads = [run["load"] for run in runs]
    changed = eb.git("status", "--porcelain", "--", "src/relive")
    dirty = " + uncommitted changes in src/relive" if changed else ""
    lines = [
        f"Medians of {args.trials} trials per tool and size, each a fresh process; "
        f"relive at `{eb.git('log', '--oneline', '-1')}`{dirty}; Python {sys.version.split()[0]}; "
        f"1-minute load average as each trial started: {min(loads):.2f} to {max(loads):.2f}; "
        f"{seconds:.0f} s.",
        "",
        *table(runs, args.sizes),
    ]
    lines += [f"- {r['tool']} {r['size']}: {r['error']}" for r in runs if r["status"] != "ok"]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 modules only")
    parser.add_argument("--sizes", type=int, nargs="+", help="project sizes (500 2000)")
    parser.add_argument("--trials", type=int, default=3, help="trials per tool and size (3)")
    parser.add_argument("--worker", choices=list(TOOLS), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--project", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = [200] if args.quick else [500, 2000]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return run_worker(args.worker, args.project, args.size)
    started = time.monotonic()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="relive-heap-bench-") as name:
        workdir = Path(name)
        for size in args.sizes:
            eb.prepare_project(workdir, size)  # generated and byte-compiled once per size
            for index in range(args.trials):  # rounds: the first tool changes every round
                order = list(TOOLS)[index % len(TOOLS) :] + list(TOOLS)[: index % len(TOOLS)]
                runs += [run_trial(tool, size, workdir, index) for tool in order]
    print(render(runs, args, time.monotonic() - started))
    return 1 if any(run["status"] != "ok" for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
