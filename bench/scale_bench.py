"""Scale benchmark: what relive's edits cost against project size, beside the import time.

The project is engine_bench's, generated and byte-compiled once per size. One fresh process
per size and reader kind: import relive (``get_engine()``), import the project (timed: the
least a restart costs), then ``ROOT_CONSTANT`` edits of the root applied with
``relive.reload`` (the first, then the median of the later ones; each checked: the leaf's
``from`` copy and ``DERIVED`` follow), then one-function edits of the leaf beside
``compile()`` of its new text. Before the first edit and after the last: the objects the
collector tracks, a full ``gc.collect()``'s time (median of 3) and the process's RSS. After
the last: how many modules relive parsed whole (the edited root, and importers it could
not follow on their statement index: a definition to rebuild, or an index it could not
trust) and how many indexes it could not trust.

The import and the constant edits are timed twice: wall time, and the process's CPU time
(``time.process_time``), which a machine shared with other jobs disturbs much less.

Readers: ``top`` is engine_bench's project (every module reads ``ROOT_CONSTANT`` at the
top level); ``bodies`` reads the root only inside function bodies (``import m0`` and
``m0.ROOT_CONSTANT``): no importer's top-level code needs to run again.
Usage: ``.venv/bin/python bench/scale_bench.py [--quick] [--sizes 500 2000] [--edits 4]``.
"""

from __future__ import annotations

import argparse
import compileall
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import engine_bench as eb


def bodies_only(project_dir: Path, size: int) -> None:
    """Rewrite the dependents to read the root only inside function bodies."""
    root = eb.module_name(0)
    for index in range(1, size):
        path = eb.module_path(project_dir, index)
        text = path.read_text()
        text = text.replace(f"from {root} import ROOT_CONSTANT, root_func", f"import {root}")
        text = text.replace("DERIVED = ROOT_CONSTANT * SCALE", "DERIVED = SCALE")
        text = text.replace('REGISTRY["root"] = root_func(SCALE)', "")
        text = text.replace("ROOT_CONSTANT", f"{root}.ROOT_CONSTANT")
        text = text.replace("return root_func(", f"return {root}.root_func(")
        path.write_text(text)


def snapshot() -> tuple[int, float, int]:
    gc.collect()
    objects = len(gc.get_objects())
    times = []
    for _ in range(3):
        start = time.perf_counter()
        gc.collect()
        times.append(time.perf_counter() - start)
    return objects, statistics.median(times), eb.rss_bytes()


def whole_and_untrusted() -> tuple[int, int]:
    """Modules parsed whole, and modules whose statement index could not be trusted."""
    from relive._engine import get_engine

    modules = get_engine()._tracker.modules()
    whole = sum(1 for tracked in modules if tracked.is_analysed)
    # (code without the index has no ``_index``: nothing counted)
    untrusted = sum(1 for tracked in modules if getattr(tracked, "_index", False) is None)
    return whole, untrusted


def measure(project_dir: Path, size: int, readers: str, edits: int) -> dict[str, Any]:
    import relive
    from relive._engine import get_engine

    get_engine()
    start, cpu = time.perf_counter(), time.process_time()
    eb.import_project(project_dir, size)
    imported = time.perf_counter() - start
    imported_cpu = time.process_time() - cpu
    before = snapshot()
    editor = eb.Editor.__new__(eb.Editor)  # the bodies project does not start as generated
    editor.project_dir, editor.size, editor.version = project_dir, size, 0
    editor.root_constant, editor.root_marker = 1, 0
    editor.next_mtime_ns = time.time_ns() + eb.SECOND_NS
    root, leaf = (sys.modules[eb.module_name(i)] for i in (0, size - 1))
    constant_edits, constant_cpu = [], []
    for _ in range(edits):
        constant = editor.edit_root_constant()
        start, cpu = time.perf_counter(), time.process_time()
        relive.reload(root)
        constant_edits.append(time.perf_counter() - start)
        constant_cpu.append(time.process_time() - cpu)
        followed = leaf.uses_root_constant() == constant
        if readers == "top":
            followed = followed and constant * size == leaf.DERIVED
        if not followed:
            raise AssertionError("the leaf did not follow the root constant edit")
    after = snapshot()
    whole, untrusted = whole_and_untrusted()
    leaf_edits, compiles = [], []
    for _ in range(3):
        trial = eb.leaf_trial(editor)
        start = time.perf_counter()
        relive.reload(leaf)
        leaf_edits.append(time.perf_counter() - start)
        if not trial.applied():
            raise AssertionError("the leaf edit did not apply")
        start = time.perf_counter()
        compile(trial.source, "leaf.py", "exec")
        compiles.append(time.perf_counter() - start)
    return {
        "import": imported,
        "first": constant_edits[0],
        "later": statistics.median(constant_edits[1:]),
        "cpu": (imported_cpu, constant_cpu[0], statistics.median(constant_cpu[1:])),
        "objects": (before[0], after[0]),
        "gc": (before[1], after[1]),
        "rss": (before[2], after[2]),
        "whole": whole,
        "untrusted": untrusted,
        "leaf": statistics.median(leaf_edits),
        "compile": statistics.median(compiles),
    }


def run_one(size: int, readers: str, edits: int, workdir: Path) -> dict[str, Any]:
    project_dir = eb.generate_project(workdir / readers, size)
    if readers == "bodies":
        bodies_only(project_dir, size)
    compileall.compile_dir(str(project_dir), quiet=1)
    command = [sys.executable, __file__, "--worker", str(project_dir), str(size), readers]
    output = subprocess.run(
        [*command, str(edits)], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, Any] = json.loads(output.splitlines()[-1])
    return result


def row(size: int, readers: str, r: dict[str, Any]) -> str:
    (o0, o1), (g0, g1), (m0, m1) = r["objects"], r["gc"], r["rss"]
    cpu = r["cpu"]
    cells = [
        f"{size}",
        readers,
        f"{r['import']:.2f} s",
        f"{r['first']:.2f} s ({r['first'] / r['import']:.2f}x)",
        f"{r['later'] * 1e3:.0f} ms ({r['later'] / r['import']:.3f}x)",
        f"{o0:,} → {o1:,}",
        f"{g0 * 1e3:.0f} → {g1 * 1e3:.0f} ms ({g1 / g0:.2f}x)",
        f"{m0 / 2**20:.0f} → {m1 / 2**20:.0f} MB (+{(m1 - m0) / 2**20:.1f})",
        f"{r['whole']} / {r['untrusted']}",
        f"{r['leaf'] * 1e3:.2f} / {r['compile'] * 1e3:.2f} ms",
        f"{cpu[0]:.2f} s / {cpu[1]:.2f} s ({cpu[1] / cpu[0]:.2f}x) / "
        f"{cpu[2] * 1e3:.0f} ms ({cpu[2] / cpu[0]:.3f}x)",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 modules, 3 edits")
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--edits", type=int, default=4, help="root constant edits (4)")
    parser.add_argument("--readers", nargs="+", default=["top", "bodies"])
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        path, size, readers, edits = args.worker
        print(json.dumps(measure(Path(path), int(size), readers, int(edits))))
        return 0
    sizes, edits = ([200], 3) if args.quick else (args.sizes, args.edits)
    print(
        "| modules | readers | import | first constant edit (÷ import) | later (÷ import) "
        "| tracked objects before → after | full GC before → after | RSS before → after "
        "| parsed whole / index untrusted | leaf edit / compile "
        "| CPU time: import / first (÷ import) / later (÷ import) |"
    )
    print("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    with tempfile.TemporaryDirectory() as workdir:
        for size in sizes:
            for readers in args.readers:
                print(f"size {size}, {readers}...", file=sys.stderr, flush=True)
                print(row(size, readers, run_one(size, readers, edits, Path(workdir))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
