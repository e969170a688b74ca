"""Run every bench/*_bench.py in turn, each in its own process, streaming its output.

Usage: `.venv/bin/python bench/run_all.py [--quick] [NAME ...]` (`make bench` runs it);
NAME picks benchmarks by the part before `_bench.py`, e.g. `engine`. A full run (not
`--quick`) of a benchmark the docs plot also records its results in bench/results/NAME.json,
from which `bench/plots.py` draws the documentation's plots and tables.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RECORDED = ("engine", "run", "web")  # the benchmarks with `--json PATH` (see recorded.py)


def bench_scripts(names: list[str]) -> list[Path]:
    scripts = sorted(BENCH_DIR.glob("*_bench.py"))
    if names:
        scripts = [script for script in scripts if script.name.removesuffix("_bench.py") in names]
    return scripts


def run(script: Path, quick: bool) -> int:
    print(f"\n<!-- {script.name} -->\n", flush=True)
    command = [sys.executable, str(script), *(["--quick"] if quick else [])]
    name = script.name.removesuffix("_bench.py")
    if name in RECORDED and not quick:
        command += ["--json", str(BENCH_DIR / "results" / f"{name}.json")]
    return subprocess.run(command, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials (passed through)")
    parser.add_argument("names", nargs="*", help="only these benchmarks, e.g. engine")
    args = parser.parse_args(argv)
    scripts = bench_scripts(args.names)
    if not scripts:
        print(f"no benchmark matches {args.names} in {BENCH_DIR}", file=sys.stderr)
        return 2
    failed = [script.name for script in scripts if run(script, args.quick) != 0]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
