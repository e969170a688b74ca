"""Loops that pick up edits of their body while they run: real modules, real threads."""

from __future__ import annotations

import importlib
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage, wait_until, write_source

TRAIN = """
import relive

def train(batches, log):
    total = 0
    for i in relive.loop(batches):
        {body}
    return total
"""


def version(number: int) -> str:
    return f"total += i * {number}\n        log.append((i, {number}))"


class Gate:
    """An iterable that stops before chosen items until the test lets it go on."""

    def __init__(self, count: int, stops: list[int]) -> None:
        self.count, self.stops = count, set(stops)
        self.reached: queue.Queue[int] = queue.Queue()
        self.go: queue.Queue[int] = queue.Queue()

    def __iter__(self) -> Iterator[int]:
        for item in range(self.count):
            if item in self.stops:
                self.reached.put(item)
                assert self.go.get(timeout=10) == item
            yield item

    def edit_at(self, item: int, edit: Callable[[], object]) -> None:
        assert self.reached.get(timeout=10) == item
        edit()
        self.go.put(item)


def run_in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = target()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="relive-test-loop", daemon=True)
    thread.start()
    return thread, outcome


def finish(thread: threading.Thread, outcome: dict[str, Any]) -> Any:
    wait_until(lambda: not thread.is_alive(), timeout=20)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def test_a_running_loop_takes_20_edits_of_its_body_over_10000_iterations(
    package: TemporaryPackage, engine: Engine
) -> None:
    count, every, edits = 10_000, 450, 20
    mod = package.module("loop_train", TRAIN.format(body=version(1)))
    stops = [every * k for k in range(1, edits + 1)]
    gate, log = Gate(count, stops), []  # type: ignore[var-annotated]
    thread, outcome = run_in_thread(lambda: mod.train(gate, log))
    for k, stop in enumerate(stops, start=1):

        def edit(k: int = k) -> None:
            write_source(mod.__file__, TRAIN.format(body=version(k + 1)))
            relive.reload(mod)  # the engine patches train() meanwhile: the loop is unaffected

        gate.edit_at(stop, edit)
    total = finish(thread, outcome)
    expected = [(i, 1 + min(i // every, edits)) for i in range(count)]
    assert log == expected  # each iteration once, in order, each with the body of its time
    assert total == sum(i * number for i, number in expected)


def test_a_free_running_loop_uses_each_edit_from_the_next_iteration_on(
    package: TemporaryPackage, engine: Engine
) -> None:
    count, edits = 10_000, 20
    mod = package.module("loop_free", TRAIN.format(body=version(1)))
    edited = threading.Event()

    def items() -> Iterator[int]:
        for item in range(count):
            if item == count - 1000:
                edited.wait(timeout=20)  # a safety net on a slow machine, not the pace
            time.sleep(0.0001)
            yield item

    log: list[tuple[int, int]] = []
    thread, outcome = run_in_thread(lambda: mod.train(items(), log))
    windows = []  # per edit: iterations begun before the write, and by its end
    written = 0  # iterations begun by the end of the previous write
    for number in range(2, edits + 2):
        # Some iterations between two writes, however slow the last write was: else the
        # loop may rightly never run the body in between.
        wait_until(lambda goal=written + 30: len(log) >= goal, timeout=20)
        before = len(log)
        write_source(mod.__file__, TRAIN.format(body=version(number)))
        written = len(log)
        windows.append((number, before, written))
    edited.set()
    total = finish(thread, outcome)
    assert [i for i, _ in log] == list(range(count))  # none skipped, none run twice
    for number, before, after in windows:
        early = [(i, used) for i, used in log[:before] if used >= number][:5]
        assert not early, (number, before, after, early)  # ran a body not yet written
        late = [(i, used) for i, used in log[after + 1 :] if used < number][:5]
        assert not late, (number, before, after, late)  # kept a body already replaced
    assert [used for _, used in log] == sorted(used for _, used in log)
    assert {used for _, used in log} == set(range(1, edits + 2))
    assert total == sum(i * used for i, used in log)


def test_a_broken_edit_keeps_the_running_body_and_says_where_with_the_line(
    package: TemporaryPackage, engine: Engine, capfd: pytest.CaptureFixture[str]
) -> None:
    mod = package.module("loop_broken", TRAIN.format(body=version(1)))
    gate, log = Gate(40, [10, 20, 30]), []  # type: ignore[var-annotated]
    thread, outcome = run_in_thread(lambda: mod.train(gate, log))
    path = mod.__file__
    gate.edit_at(10, lambda: write_source(path, TRAIN.format(body=version(2) + " +")))
    gate.edit_at(20, lambda: write_source(path, TRAIN.format(body="return total")))
    gate.edit_at(30, lambda: write_source(path, TRAIN.format(body=version(3))))
    total = finish(thread, outcome)
    assert log == [(i, 1 if i < 30 else 3) for i in range(40)]
    assert total == sum(range(30)) + 3 * sum(range(30, 40))
    lines = capfd.readouterr().err.splitlines()
    broken = next(i for i, line in enumerate(lines) if "loop_broken.py:8: loop body" in line)
    assert lines[broken].startswith("relive: ") and "not reloaded: invalid syntax" in lines[broken]
    assert lines[broken + 1] == "    log.append((i, 2)) +"  # its source line, like any error
    returned = next(i for i, line in enumerate(lines) if "'return' in a live loop" in line)
    assert lines[returned + 1] == "    return total"


CLOSURE = """
import relive

def run(items):
    scale = 1
    total = 0
    for i in relive.loop(items):
        {body}
    after = total + 1
    return total, i, after, scale
"""


def test_an_edited_body_sees_and_hands_back_the_functions_locals(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("loop_locals", CLOSURE.format(body="total += i"))
    gate = Gate(100, [5])
    thread, outcome = run_in_thread(lambda: mod.run(gate))
    body = "\n        ".join(
        ["scale = 10", "total += sum(i * scale for _ in range(1))", "if i == 7:", "    break"]
    )
    gate.edit_at(5, lambda: write_source(mod.__file__, CLOSURE.format(body=body)))
    total, last, after, scale = finish(thread, outcome)
    assert (total, last, after, scale) == (10 + 50 + 60 + 70, 7, 191, 10)


TOP = """
import relive
import loop_gate

total = 0
seen = []
for i in relive.loop(loop_gate.GATE):
    {body}
done = True
"""


def test_a_module_level_loop_takes_an_edit(package: TemporaryPackage, engine: Engine) -> None:
    gate = package.module("loop_gate", "GATE = None\n")
    gate.GATE = Gate(10, [4])
    package.write("loop_top.py", TOP.format(body="total += i\n    seen.append((i, 1))"))
    thread, outcome = run_in_thread(lambda: importlib.import_module("loop_top"))
    edited = TOP.format(body="total += 10 * i\n    seen.append((i, 2))\n    continue")
    gate.GATE.edit_at(4, lambda: package.write("loop_top.py", edited))
    top = finish(thread, outcome)
    assert top.seen == [(i, 1 if i < 4 else 2) for i in range(10)]
    assert top.total == sum(range(4)) + 10 * sum(range(4, 10))
    assert top.done and top.i == 9 and "__relive_item__" not in vars(top)


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "training_loop"


def test_the_training_loop_example_takes_an_edit_of_its_body(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE, tmp_path / "example")
    folder = tmp_path / "example"
    lines: list[str] = []
    process = subprocess.Popen(
        [sys.executable, "train.py", "--steps", "100000", "--delay", "0.001"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        wait_until(lambda: any("lr 0.5" in line for line in lines), timeout=20)
        trainer = folder / "trainer.py"
        write_source(trainer, trainer.read_text().replace("lr = 0.5", "lr = 0.125"), dedent=False)
        wait_until(lambda: any("lr 0.125" in line for line in lines), timeout=20)
        edited = trainer.read_text().replace(
            "history.append(loss)", "history.append(loss)\n        break"
        )
        write_source(trainer, edited, dedent=False)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        process.stdout.close()
    assert any(line.startswith("done after") for line in lines), lines
    assert sum("building the model" in line for line in lines) == 1


def test_an_edited_body_that_raises_is_reported_and_the_iteration_runs_again(
    package: TemporaryPackage, engine: Engine, capfd: pytest.CaptureFixture[str]
) -> None:
    mod = package.module("loop_raise", CLOSURE.format(body="total += i"))
    gate = Gate(100, [5, 50])
    thread, outcome = run_in_thread(lambda: mod.run(gate))
    body = "total += 1000\n        if i == 8:\n            raise KeyError(total)"
    gate.edit_at(5, lambda: write_source(mod.__file__, CLOSURE.format(body=body)))
    gate.edit_at(50, lambda: write_source(mod.__file__, CLOSURE.format(body="total += 2 * i")))
    total, last, after, _ = finish(thread, outcome)
    # 5, 6, 7 with the edit; 8 again as it was before the edit (total as at its start),
    # and the body before the edit until the next one, which runs from 50 on.
    assert total == 3000 + sum(range(5)) + sum(range(8, 50)) + 2 * sum(range(50, 100))
    assert (last, after) == (99, total + 1)
    lines = capfd.readouterr().err.splitlines()
    raised = next(i for i, line in enumerate(lines) if "loop body raised" in line)
    assert lines[raised].startswith("relive: ")
    assert "loop_raise.py:10: loop body raised KeyError: 4010" in lines[raised]
    assert lines[raised + 1] == "    raise KeyError(total)"


def test_with_an_interval_the_file_is_looked_at_no_more_often(
    package: TemporaryPackage, engine: Engine
) -> None:
    source = TRAIN.replace("relive.loop(batches)", "relive.loop(batches, interval=3600)")
    mod = package.module("loop_interval", source.format(body=version(1)))
    gate, log = Gate(10, [5]), []  # type: ignore[var-annotated]
    thread, outcome = run_in_thread(lambda: mod.train(gate, log))
    gate.edit_at(5, lambda: write_source(mod.__file__, source.format(body=version(2))))
    assert finish(thread, outcome) == sum(range(10))


def test_a_save_renamed_over_with_the_same_time_and_size_is_seen(
    package: TemporaryPackage, engine: Engine
) -> None:
    # An editor saving to a temporary file and renaming it over the original, within
    # the same mtime tick and at the same size: only the inode tells the file changed.
    mod = package.module("loop_renamed", TRAIN.format(body=version(1)))
    path = Path(str(mod.__file__))
    long_ago = time.time_ns() - 60 * 1_000_000_000  # not a "recent" write either
    os.utime(path, ns=(long_ago, long_ago))
    gate, log = Gate(4, [2]), []  # type: ignore[var-annotated]
    thread, outcome = run_in_thread(lambda: mod.train(gate, log))

    def rename_over() -> None:
        saved = path.with_suffix(".tmp")
        saved.write_text(TRAIN.format(body=version(2)))
        os.utime(saved, ns=(long_ago, long_ago))
        assert saved.stat().st_size == path.stat().st_size
        os.replace(saved, path)

    gate.edit_at(2, rename_over)
    finish(thread, outcome)
    assert log == [(0, 1), (1, 1), (2, 2), (3, 2)]


def test_10000_iterations_and_20_edits_two_broken_run_each_iteration_once(
    package: TemporaryPackage, engine: Engine, capfd: pytest.CaptureFixture[str]
) -> None:
    """The acceptance run: a syntax error (edit 7) and a body raising on its first line
    (edit 13) change nothing but a report; the loop runs to its end, every iteration once."""
    count, every, edits = 10_000, 450, 20
    broken = {7: version(8) + " +", 13: "undefined_name\n        " + version(14)}
    mod = package.module("loop_accept", TRAIN.format(body=version(1)))
    stops = [every * k for k in range(1, edits + 1)]
    gate, log = Gate(count, stops), []  # type: ignore[var-annotated]
    thread, outcome = run_in_thread(lambda: mod.train(gate, log))
    for k, stop in enumerate(stops, start=1):
        body = broken.get(k, version(k + 1))
        gate.edit_at(stop, lambda body=body: write_source(mod.__file__, TRAIN.format(body=body)))
    total = finish(thread, outcome)
    running = [1]  # the body in effect after each edit: a broken one leaves the last good
    for k in range(1, edits + 1):
        running.append(running[-1] if k in broken else k + 1)
    expected = [(i, running[min(i // every, edits)]) for i in range(count)]
    assert log == expected  # each iteration once, in order, each with the body of its time
    assert total == sum(i * number for i, number in expected)
    messages = capfd.readouterr().err
    assert "loop_accept.py:8: loop body not reloaded" in messages
    assert "loop_accept.py:7: loop body raised NameError" in messages


METHOD = """
import relive

class Base:
    def step(self, i):
        return i


class Trainer(Base):
    def step(self, i):
        return 0

    def run(self, items):
        total = 0
        later = []
        for i in relive.loop(items):
            {body}
        return total, [f() for f in later]
"""


def test_an_edited_body_in_a_method_calls_super_and_closes_over_the_live_variable(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("loop_method", METHOD.format(body="total += self.step(i)"))
    gate = Gate(10, [5])
    thread, outcome = run_in_thread(lambda: mod.Trainer().run(gate))
    body = "total += super().step(i)\n            later.append(lambda: i)"
    gate.edit_at(5, lambda: write_source(mod.__file__, METHOD.format(body=body)))
    total, seen = finish(thread, outcome)
    assert total == sum(range(5, 10))
    assert seen == [9] * 5  # as in place: each closure sees the loop's variable, now 9


def test_with_relive_0_a_loop_is_a_plain_iterator(
    package: TemporaryPackage, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELIVE", "0")
    mod = package.module("loop_off", TRAIN.format(body=version(1)))
    gate, log = Gate(10, [5]), []  # type: ignore[var-annotated]
    thread, outcome = run_in_thread(lambda: mod.train(gate, log))
    gate.edit_at(5, lambda: write_source(mod.__file__, TRAIN.format(body=version(2))))
    finish(thread, outcome)
    assert log == [(i, 1) for i in range(10)]  # a deploy rewriting the file changes nothing
    items = [1, 2]
    assert type(relive.loop(items)) is type(iter(items))
