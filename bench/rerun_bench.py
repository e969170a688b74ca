"""Rerun benchmark: a leaf edit whose module has a statement that runs again after it.

The engine benchmark's project with one line more in every module,
``LEAF_VALUE = transform(1)``: editing the leaf's ``transform`` makes that statement run
again (its value follows the new code), and relive records, for a rollback, what the
statement may change. Prints each edit's time (checked: ``LEAF_VALUE`` follows), per size.
Usage: ``.venv/bin/python bench/rerun_bench.py [--quick] [--sizes 50 500] [--edits 6]``.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import engine_bench as eb

_BODY = eb.module_body


def _body(index: int, marker: int) -> str:
    return _BODY(index, marker) + "\nLEAF_VALUE = transform(1)\n"


def measure(size: int, edits: int) -> list[float]:
    """One project of ``size`` modules in this process: each leaf edit's seconds."""
    import relive

    project = eb.generate_project(Path(tempfile.mkdtemp(prefix="relive_rerun_")), size)
    sys.path.insert(0, str(project))
    relive.get_engine()
    for index in range(size):
        importlib.import_module(eb.module_name(index))
    relive.refresh()
    editor = eb.Editor(project, size)
    times = []
    for _ in range(edits):
        trial = eb.leaf_trial(editor)
        started = time.perf_counter()
        relive.reload(trial.module)
        times.append(time.perf_counter() - started)
        leaf = sys.modules[trial.module.__name__]
        if not trial.applied() or leaf.transform(1) != leaf.LEAF_VALUE:
            raise AssertionError("the edit or LEAF_VALUE did not follow")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 modules, 4 edits")
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--edits", type=int, default=6)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)  # one size, this process
    args = parser.parse_args()
    eb.module_body = _body
    if args.size:
        times = measure(args.size, args.edits)
        later = [t * 1000 for t in times[1:]]
        print(
            f"| {args.size} | {times[0] * 1000:.1f} | {statistics.median(later):.1f} "
            f"| {min(later):.1f} |"
        )
        return 0
    sizes, edits = ([50], 4) if args.quick else (args.sizes, args.edits)
    print("| modules | first edit (ms) | later edits, median (ms) | later, min (ms) |")
    print("|--:|--:|--:|--:|", flush=True)
    import subprocess

    for size in sizes:  # each size in a fresh process
        command = [sys.executable, __file__, "--size", str(size), "--edits", str(edits)]
        subprocess.run(command, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
