"""IPython: the check before each cell, relive beside ``%autoreload 2``.

Two measurements, each tool in its own process with a real ``InteractiveShell``:

1. Pre-cell overhead with N tiny user modules imported and nothing changed: the median of
   timed calls of the hook itself (autoreload's ``pre_run_cell``, relive's
   ``NotebookReloader.pre_run_cell``), and of all the per-cell hooks (adding autoreload's
   ``post_execute`` hook, relive's ``post_run_cell``).
2. Edit to next cell, at 200 modules: a module is rewritten, then ``run_cell("x =
   mod.value()")`` is timed until ``x`` is the new value (it must be, on the first cell).
   In watch mode the watcher is first given time to see the save (its wait is reported
   apart); ``none`` is the cell without any reloader.

    .venv/bin/python bench/ipython_bench.py [--quick] [--sizes 200 2000 10000]

The modules go to /dev/shm when it is writable, in packages of 100; their mtimes are set a
minute back, as files not just written are.
"""

from __future__ import annotations

import argparse
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
from importlib.metadata import version
from pathlib import Path

TOOLS = ("autoreload", "relive", "relive-watch")
EDIT_TOOLS = ("none", "autoreload", "relive", "relive-watch")
PER_PACKAGE = 100
LABELS = {
    "none": "no reloader: `importlib.reload` by hand, then the cell",
    "autoreload": "`%autoreload 2`",
    "relive": "relive, no watcher",
    "relive-watch": "relive, `%relive watch`",
}


# ---------------------------------------------------------------------------------------
# Worker: one tool, one size, one process


def make_modules(root: Path, size: int) -> None:
    """Write ``size`` modules ``bpkgP.mI`` (100 a package) under ``root``, aged a minute."""
    old = time.time() - 60
    for first in range(0, size, PER_PACKAGE):
        package = root / f"bpkg{first // PER_PACKAGE}"
        package.mkdir()
        (package / "__init__.py").write_text("")
        for index in range(first, min(size, first + PER_PACKAGE)):
            (package / f"m{index}.py").write_text(f"X = {index}\n\ndef value():\n    return X\n")
    for directory, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(directory, name), (old, old))


def module_name(index: int) -> str:
    return f"bpkg{index // PER_PACKAGE}.m{index}"


def make_shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    return InteractiveShell.instance(config=config)


def install(shell, tool: str):
    """Load the tool; return (pre-cell hook, all per-cell hooks) as zero-argument calls."""
    from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult

    info = ExecutionInfo("pass", False, False, True, None, transformed_cell="pass")
    result = ExecutionResult(info)
    if tool == "none":
        return None, None
    if tool == "autoreload":
        shell.run_line_magic("load_ext", "autoreload")
        shell.run_line_magic("autoreload", "2")
        magics = shell.magics_manager.registry["AutoreloadMagics"]
        magics.post_execute_hook()  # what the cell that imported the modules would do

        def both() -> None:
            magics.pre_run_cell(info)
            magics.post_execute_hook()

        return lambda: magics.pre_run_cell(info), both
    import relive._ipython

    shell.extension_manager.load_extension("relive")
    reloader = relive._ipython.installed(shell)
    assert reloader is not None
    if tool == "relive-watch":
        shell.run_line_magic("relive", "watch")
        assert reloader.watcher is not None, "the watcher did not start"
    reloader.post_run_cell(result)

    def both_relive() -> None:
        reloader.pre_run_cell(info)
        reloader.post_run_cell(result)

    return lambda: reloader.pre_run_cell(info), both_relive


def median_ms(call, runs: int) -> float:
    call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1e6


def tracked_count(tool: str) -> int | None:
    if not tool.startswith("relive"):
        return None
    from relive._engine import get_engine

    return len(get_engine().tracked_modules())


def overhead_worker(root: Path, tool: str, size: int, runs: int) -> dict:
    make_modules(root, size)
    sys.path.insert(0, str(root))
    for index in range(size):
        importlib.import_module(module_name(index))
    shell = make_shell()
    pre, both = install(shell, tool)
    return {
        "pre_ms": median_ms(pre, runs),
        "both_ms": median_ms(both, runs),
        "tracked": tracked_count(tool),
    }


def edit_worker(root: Path, tool: str, size: int, edits: int) -> dict:
    make_modules(root, size)
    sys.path.insert(0, str(root))
    for index in range(size):
        importlib.import_module(module_name(index))
    shell = make_shell()
    install(shell, tool)
    name = module_name(0)
    path = root / name.replace(".", "/")
    path = path.with_suffix(".py")
    reloader = None
    if tool.startswith("relive"):
        import relive._ipython

        reloader = relive._ipython.installed(shell)
    shell.run_cell(f"import {name} as mod")
    shell.run_cell("x = mod.value()")
    assert shell.user_ns["x"] == 0
    cells, waits, misses = [], [], 0
    for edit in range(1, edits + 1):
        want = 1000 + edit
        path.write_text(f"X = 0\n\ndef value():\n    return {want}\n")
        if tool == "relive-watch":
            assert reloader is not None and reloader.watcher is not None
            start = time.perf_counter_ns()
            deadline = time.monotonic() + 5
            while os.path.realpath(path) not in reloader.watcher.pending():
                assert time.monotonic() < deadline, f"the watcher did not see edit {edit}"
                time.sleep(0.0002)
            waits.append((time.perf_counter_ns() - start) / 1e6)
        start = time.perf_counter_ns()
        deadline = time.monotonic() + 5
        while True:
            if tool == "none":
                importlib.reload(sys.modules[name])  # no reloader: by hand, not timed apart
            shell.run_cell("x = mod.value()")
            if shell.user_ns.get("x") == want:
                break
            misses += 1
            assert time.monotonic() < deadline, f"{tool}: edit {edit} never became visible"
        cells.append((time.perf_counter_ns() - start) / 1e6)
        time.sleep(0.02)  # the next save is a separate one
    return {
        "cell_ms": statistics.median(cells),
        "wait_ms": statistics.median(waits) if waits else None,
        "misses": misses,
        "edits": edits,
    }


def worker(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if args.edits:
        result = edit_worker(root, args.worker, args.size, args.edits)
    else:
        result = overhead_worker(root, args.worker, args.size, args.runs)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------------------------------
# Parent: one process per (tool, size), then the tables


def temp_base() -> str | None:
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


def run_worker(tool: str, size: int, *, runs: int = 0, edits: int = 0) -> dict:
    root = tempfile.mkdtemp(prefix="ipython-bench-", dir=temp_base())
    try:
        command = [
            sys.executable,
            __file__,
            "--worker",
            tool,
            "--size",
            str(size),
            "--root",
            root,
            "--runs",
            str(runs),
            "--edits",
            str(edits),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            sys.stderr.write(done.stdout + done.stderr)
            raise SystemExit(f"worker {tool} (size {size}) failed")
        return json.loads(lines[-1].removeprefix("RESULT "))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    packages = ", ".join(f"{name} {version(name)}" for name in ("relive", "ipython", "traitlets"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    where = temp_base() or "the temp dir"
    return (
        f"{os.cpu_count()} CPUs ({cpu_model()}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; {packages}; modules on {where}; "
        f"load average {load:.1f} at the start"
    )


def ms(value: float) -> str:
    if value < 0.01:
        return f"{value:.4f}"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def ratio(value: float, base: float) -> str:
    share = value / base
    return f"{share:.2f}x" if share >= 0.01 else f"1/{base / value:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 200 and 2000, fewer calls")
    parser.add_argument("--sizes", type=int, nargs="+", help="modules imported (200 2000 10000)")
    parser.add_argument("--worker", choices=EDIT_TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=200, help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--edits", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    sizes = args.sizes or ([200, 2000] if args.quick else [200, 2000, 10000])
    runs, edits = (15, 8) if args.quick else (30, 15)
    command = " ".join(["bench/ipython_bench.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"Machine: {machine()}\n", flush=True)
    began = time.monotonic()

    overhead: dict[tuple[str, int], dict] = {}
    for size in sizes:
        for tool in TOOLS:
            overhead[tool, size] = run_worker(tool, size, runs=runs)
            tracked = overhead[tool, size]["tracked"]
            if tracked is not None and tracked < size:
                raise SystemExit(f"{tool} tracks {tracked} modules of {size}")
    edit = {tool: run_worker(tool, 200, edits=edits) for tool in EDIT_TOOLS}

    print(f"Pre-cell overhead, nothing changed: median of {runs} calls, ms\n")
    print(
        "| modules | `%autoreload 2`: pre-cell (all hooks) | relive, no watcher"
        " | relive, watch | relive/autoreload (no watcher; watch) |"
    )
    print("|---:|---:|---:|---:|---:|")
    for size in sizes:
        ar, rl, rw = (overhead[tool, size] for tool in TOOLS)
        cells = [f"{ms(r['pre_ms'])} ({ms(r['both_ms'])})" for r in (ar, rl, rw)]
        ratios = f"{ratio(rl['pre_ms'], ar['pre_ms'])}; {ratio(rw['pre_ms'], ar['pre_ms'])}"
        print(f"| {size:,} | {' | '.join(cells)} | {ratios} |")

    base = edit["autoreload"]["cell_ms"]
    print(f"\nEdit to the next cell, 200 modules: median of {edits} edits, ms\n")
    print("| tool | the next cell, with the edit | vs autoreload | cells that missed it |")
    print("|---|---:|---:|---:|")
    for tool in EDIT_TOOLS:
        result = edit[tool]
        wait = result["wait_ms"]
        note = f" (after the watcher saw the save: {ms(wait)} ms)" if wait is not None else ""
        shown = "-" if tool == "none" else ratio(result["cell_ms"], base)
        print(
            f"| {LABELS[tool]}{note} | {ms(result['cell_ms'])} | {shown} "
            f"| {result['misses']} of {result['edits']} |"
        )
    print(f"\nCommand: `.venv/bin/python {command}`; {time.monotonic() - began:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
