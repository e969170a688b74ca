"""Saves in progress are never applied: real writer processes, the real watcher.

Each version of a module ends with ``VERSION = n`` and its function returns ``n``: a text
taken before its writer finished lacks the end, so applying it removes ``VERSION`` (or
fails to compile). Every report must be of complete texts, and the last save must win.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import relive
from relive._engine import Engine
from relive._watcher import Watcher  # imported once: the fixtures unload what a test imports
from relive.testing import TemporaryPackage, wait_until

WRITER = """\
import os, sys, time
path, versions, chunks, pause, gap, seed = sys.argv[1:]
import random
rng = random.Random(int(seed))
for version in range(1, int(versions) + 1):
    text = sys.stdin.readline().replace("\\\\n", "\\n")
    size = -(-len(text) // int(chunks))
    with open(path, "w") as handle:  # truncated, then written in chunks, as editors do
        for start in range(0, len(text), size):
            handle.write(text[start : start + size])
            handle.flush()
            time.sleep(rng.uniform(0, float(pause)))
    time.sleep(rng.uniform(0, float(gap)))
print("done", flush=True)
"""

HOG = "import time\nend = time.monotonic() + 60\nwhile time.monotonic() < end:\n    pass\n"


def version(number: int, filler: int = 30) -> str:
    body = "".join(f"def helper_{index}():\n    return {index}\n\n\n" for index in range(filler))
    return f"def value():\n    return {number}\n\n\n{body}VERSION = {number}\n"


@contextmanager
def processes(*commands: list[str]) -> Iterator[list[subprocess.Popen[str]]]:
    started = [
        subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ
        )
        for command in commands
    ]
    try:
        yield started
    finally:
        for proc in started:
            proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()


def writer(path: object, versions: int, *, chunks: int, pause: float, gap: float) -> list[str]:
    seed = str(random.randrange(1_000_000))
    return [
        sys.executable,
        "-c",
        WRITER,
        *map(str, (path, versions, chunks, pause, gap, seed)),
    ]


def feed(proc: subprocess.Popen[str], texts: list[str]) -> None:
    assert proc.stdin is not None
    for text in texts:
        proc.stdin.write(text.replace("\n", "\\n") + "\n")
    proc.stdin.close()


def watching(
    package: TemporaryPackage, reports: list[relive.Report], errors: list[relive.ReloadError]
) -> Watcher:
    return relive.watch(package.root, on_report=reports.append, on_error=errors.append)


def complete_only(reports: list[relive.Report], errors: list[relive.ReloadError]) -> None:
    assert not errors, [str(error) for error in errors]
    removed = [module.removed for report in reports for module in report.modules]
    assert not any(removed), f"an incomplete save was applied: {removed}"


def test_writer_pausing_past_the_close_wait_is_not_read_half_written(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("slow_save", version(1))
    reports: list[relive.Report] = []
    errors: list[relive.ReloadError] = []
    path = package.root / "slow_save.py"
    # Three chunks, 1.5 s apart: longer than the watcher waits for a writer's close.
    with (
        watching(package, reports, errors),
        processes(writer(path, 1, chunks=3, pause=1.5, gap=0)) as (proc,),
    ):
        feed(proc, [version(2)])
        wait_until(lambda: getattr(mod, "VERSION", None) == 2 and mod.value() == 2, timeout=15)
    complete_only(reports, errors)


def test_many_slow_writers_under_load_never_apply_an_incomplete_save(
    package: TemporaryPackage, engine: Engine
) -> None:
    names = [f"busy_{index}" for index in range(4)]
    modules = [package.module(name, version(0)) for name in names]
    reports: list[relive.Report] = []
    errors: list[relive.ReloadError] = []
    saves = 12
    writers = [
        writer(package.root / f"{name}.py", saves, chunks=4, pause=0.03, gap=0.01) for name in names
    ]
    hogs = [[sys.executable, "-c", HOG] for _ in range(2)]
    with (
        watching(package, reports, errors),
        processes(*hogs),
        processes(*writers) as running,
    ):
        for proc in running:
            feed(proc, [version(number) for number in range(1, saves + 1)])
        for proc in running:
            assert proc.stdout is not None and proc.stdout.readline() == "done\n"
        wait_until(lambda: all(getattr(m, "VERSION", None) == saves for m in modules), timeout=20)
    complete_only(reports, errors)
    assert all(module.value() == saves for module in modules)
