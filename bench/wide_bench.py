"""Wide-module benchmark: a one-function edit in a module of many top-level definitions.

One fresh process per module: ``import relive`` and ``get_engine()``, write the module,
import it (timed, with no ``.pyc``: what a restart after an edit pays, compile and run),
``relive.refresh()`` once (untimed), then edits of one function in its middle, each applied
with ``relive.reload`` (timed) and checked (the function returns the new value); right
after each, ``compile()`` of the same new text (timed: the floor, in the same trial). The
first edit is reported on its own (it reads the module's statements for the first time;
one edit of another small module before it takes what any process's first edit pays).
Peak RSS during each edit (``VmHWM``, reset before it) against RSS before it.

Modules: 50 and 500 definitions (functions, every tenth a class with two methods, every
tenth a constant), and a generated module of about 5 MB of the same definitions.
Edits: ``same`` changes a number in the body (the line count stays), ``grow`` adds a line
to the body (every later statement moves).

Usage: ``.venv/bin/python bench/wide_bench.py [--quick] [--sizes 50 500 28000] [--edits 21]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODULE = "widemod"


def definition(index: int, middle: int, marker: int, grow: bool) -> str:
    if index % 10 == 9:
        return (
            f"\n\nclass Box{index}:\n"
            f'    """Box {index}."""\n\n'
            f"    size = {index}\n\n"
            "    def area(self) -> int:\n"
            "        return self.size * self.size\n\n"
            "    def grow(self, by: int) -> None:\n"
            "        self.size += by\n"
        )
    if index % 10 == 4:
        return f"\n\nLIMIT_{index} = {{'low': {index}, 'high': {index * 10}}}\n"
    extra = "    total += 1\n" if grow and index == middle and marker % 2 else ""
    add = marker if index == middle else 0
    return (
        f"\n\ndef func_{index}(value: int) -> int:\n"
        f'    """Function {index}."""\n'
        "    total = value\n"
        "    for step in range(3):\n"
        f"        total += step * {index}\n"
        f"{extra}"
        f"    return total + {add}\n"
    )


def module_source(size: int, marker: int, grow: bool) -> str:
    middle = size // 2 - (size // 2) % 10  # a function (not a class or a constant)
    head = '"""A wide generated module."""\n\nfrom __future__ import annotations\n'
    return head + "".join(definition(i, middle, marker, grow) for i in range(size))


def expected(size: int, marker: int, grow: bool) -> int:
    middle = size // 2 - (size // 2) % 10
    return 3 * middle + marker + (1 if grow and marker % 2 else 0)


def status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def _warm_up(directory: Path) -> None:
    """One edit of another small module first (untimed): what any process's first edit pays
    once (relive's modules imported lazily) is not counted as the wide module's."""
    import relive

    path = directory / "warm_up.py"
    path.write_text("def f():\n    return 1\n")
    sys.path.insert(0, str(directory))
    module = importlib.import_module("warm_up")
    relive.refresh()
    path.write_text("def f():\n    return 2\n")
    later = time.time_ns() + 1_000_000_000
    os.utime(path, ns=(later, later))
    relive.reload(module)
    if module.f() != 2:
        raise AssertionError("the warm-up edit did not apply")
    sys.path.remove(str(directory))


def measure(directory: Path, size: int, edits: int, grow: bool) -> dict[str, Any]:
    sys.dont_write_bytecode = True  # every import compiles, as a restart after an edit does
    import relive
    from relive._engine import get_engine

    get_engine()
    _warm_up(directory)
    path = directory / f"{MODULE}.py"
    source = module_source(size, 0, grow)
    path.write_text(source)
    sys.path.insert(0, str(directory))
    start = time.perf_counter()
    module = importlib.import_module(MODULE)
    imported = time.perf_counter() - start
    relive.refresh()
    mtime = time.time_ns() + 1_000_000_000
    rows: list[dict[str, float]] = []
    for marker in range(1, edits + 2):
        source = module_source(size, marker, grow)
        path.write_text(source)
        os.utime(path, ns=(mtime, mtime))
        mtime += 1_000_000_000
        before = status("VmRSS")
        reset_peak()
        start = time.perf_counter()
        relive.reload(module)
        elapsed = time.perf_counter() - start
        peak = status("VmHWM")
        middle = size // 2 - (size // 2) % 10
        if getattr(module, f"func_{middle}")(0) != expected(size, marker, grow):
            raise AssertionError(f"edit {marker} did not apply")
        start = time.perf_counter()
        compile(source, str(path), "exec")
        floor = time.perf_counter() - start
        rows.append({"edit": elapsed, "compile": floor, "rss": before, "peak": peak})
    return {"bytes": len(source), "import": imported, "rows": rows}


def run_one(size: int, edits: int, grow: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        command = [sys.executable, __file__, "--worker", directory, str(size), str(edits)]
        command.append("grow" if grow else "same")
        done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def row(size: int, grow: bool, result: dict[str, Any]) -> str:
    first, later = result["rows"][0], result["rows"][1:]
    ratios = [r["edit"] / r["compile"] for r in later]
    edit = statistics.median(r["edit"] for r in later)
    floor = statistics.median(r["compile"] for r in later)
    peak = max(r["peak"] / r["rss"] for r in result["rows"])
    cells = [
        f"{size:,}",
        f"{result['bytes'] / 1e6:.2f} MB",
        "adds a line" if grow else "same lines",
        f"{result['import'] * 1e3:,.1f} ms",
        f"{first['edit'] * 1e3:,.1f} ms ({first['edit'] / first['compile']:.2f}x)",
        f"{edit * 1e3:,.2f} ms",
        f"{floor * 1e3:,.2f} ms",
        f"{statistics.median(ratios):.2f}x",
        f"{first['edit'] / result['import']:.3f}x / {edit / result['import']:.3f}x",
        f"{later[-1]['rss']:.0f} MB, peak {peak:.2f}x",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 and 500 definitions, 5 edits")
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500, 28000])
    parser.add_argument("--edits", type=int, default=21, help="timed edits (21; 3 above 5,000)")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        directory, size, edits, kind = args.worker
        result = measure(Path(directory), int(size), int(edits), kind == "grow")
        print(json.dumps(result))
        return 0
    sizes, edits = ([50, 500], 5) if args.quick else (args.sizes, args.edits)
    print(
        "| definitions | size | edit | import (no .pyc) | first edit (÷ compile) "
        "| later edits, median | compile(), same trials | edit ÷ compile, median of trials "
        "| first / later ÷ import | RSS before, peak during ÷ before |"
    )
    print("|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|")
    for size in sizes:
        for grow in (False, True):
            print(f"{size} definitions, {'grow' if grow else 'same'}...", file=sys.stderr)
            result = run_one(size, edits if size <= 5000 else min(edits, 3), grow)
            print(row(size, grow, result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
