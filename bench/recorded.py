"""Benchmark results as JSON: what a run measured, and where and how it was measured.

The benchmarks write their results with `write` (`--json PATH`; `run_all.py` writes
`bench/results/NAME.json` for a full run); `bench/plots.py` reads them back with `read` and
draws the plots and tables of the documentation's benchmarks page from them.

Every file holds `benchmark`, `provenance` (the relive commit, the command, the date, the
machine, the package versions, and how the numbers got into the file: `"kind": "run"` when
the script wrote them, `"kind": "transcribed"` when they were copied from a run recorded in
bench/README.md) and `data`, whose shape belongs to the benchmark.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
KINDS = ("run", "transcribed")


def relive_commit(revision: str | None = None) -> str:
    """The commit measured: `revision`, or the checkout's HEAD with `+dirty` when src/relive
    differs from it."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run(
        [*git, "rev-parse", "--short", revision or "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if revision:
        return head or revision
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "src/relive"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (head or "unknown") + ("+dirty" if dirty else "")


def versions(packages: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def provenance(
    script: str, argv: list[str], packages: list[str], revision: str | None = None
) -> dict[str, Any]:
    """Where and how this process measured: for a file the script itself writes."""
    return {
        "kind": "run",
        "commit": relive_commit(revision),
        "command": shlex.join([".venv/bin/python", f"bench/{script}", *argv]),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": (
            f"{os.cpu_count()} CPUs ({cpu_model()}), {platform.system()} {platform.release()}"
        ),
        "python": platform.python_version(),
        "versions": versions(packages),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def write(path: str | os.PathLike[str], benchmark: str, record: dict[str, Any]) -> Path:
    """Write one benchmark's results (`provenance` and `data`) as JSON to `path`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": benchmark, **record}
    target.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"results written to {target}", file=sys.stderr)
    return target


def read(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a results file, checking the fields every file must have."""
    document: dict[str, Any] = json.loads(Path(path).read_text())
    missing = {"benchmark", "provenance", "data"} - document.keys()
    if missing:
        raise ValueError(f"{path}: missing {', '.join(sorted(missing))}")
    prov = document["provenance"]
    absent = {"kind", "commit", "command"} - prov.keys()
    if absent or prov["kind"] not in KINDS:
        raise ValueError(f"{path}: provenance needs kind (one of {KINDS}), commit and command")
    return document
