"""One edit, every process: children forked or spawned by a program under ``relive run``.

Each test runs a real program under ``relive run`` (its own session) whose processes print
what version of a module they run; the harness ends the whole tree and checks every pid gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.harness import Relive, Start, exists

from relive.testing import wait_until, write_source

POOL_PROGRAM = """
import json, multiprocessing, os, sys, time
import work

def task(i):
    time.sleep(0.005)
    return [os.getpid(), work.version(), work.COUNT.bump()]

if __name__ == "__main__":
    context = multiprocessing.get_context(sys.argv[1])
    print("pid", os.getpid(), flush=True)
    with context.Pool(4) as pool:
        while True:
            print("RESULTS", json.dumps(pool.map(task, range(16), chunksize=1)), flush=True)
            time.sleep(0.02)
"""

WORK = """
class Counter:
    def __init__(self):
        self.value = 0

    def bump(self):
        self.value += 1
        return self.value


COUNT = Counter()


def version():
    return "{version}"
"""


def _results(relive: Relive, since: int = 0) -> list[list[list[object]]]:
    return [
        json.loads(line.split(" ", 1)[1])
        for line in relive.stdout[since:]
        if line.startswith("RESULTS ")
    ]


def _children(relive: Relive) -> set[int]:
    return {int(pid) for batch in _results(relive) for pid, _, _ in batch}  # type: ignore[call-overload]


def _wait_for_report(relive: Relive, text: str, count: int = 1) -> int:
    """Wait for the ``count``-th stderr line containing ``text``; the stdout length then."""
    wait_until(
        lambda: sum(text in line for line in relive.stderr) >= count or relive.proc.poll(),
        timeout=15,
    )
    assert sum(text in line for line in relive.stderr) >= count, relive.error_text()
    return len(relive.stdout)


def _all_at(relive: Relive, version: str, since: int) -> bool:
    batches = _results(relive, since)
    return bool(batches) and all(v == version for _, v, _ in batches[-1])  # type: ignore[misc]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_each_edit_reaches_every_child_of_a_pool(tmp_path: Path, start: Start, method: str) -> None:
    write_source(tmp_path / "work.py", WORK.format(version="v1"))
    write_source(tmp_path / "prog.py", POOL_PROGRAM)
    relive = start("prog.py", method)
    relive.wait_for_start(1)
    wait_until(lambda: len(_children(relive)) >= 4 or relive.proc.poll(), timeout=20)
    children = _children(relive)
    assert len(children) == 4, relive.error_text()
    relive.pids.update(children)

    write_source(tmp_path / "work.py", WORK.format(version="v2"))
    seen = _wait_for_report(relive, "work.py: 1 patched in 5 processes")
    wait_until(lambda: len(_results(relive, seen)) >= 2, timeout=10)
    # Every map that started once the edit was reported ran the new code in every child.
    assert all(v == "v2" for batch in _results(relive, seen)[1:] for _, v, _ in batch)

    write_source(tmp_path / "work.py", WORK.format(version="v3").replace("():", "(:", 1))
    broken = _wait_for_report(relive, "no process applied it")
    wait_until(lambda: len(_results(relive, broken)) >= 2, timeout=10)
    assert all(v == "v2" for batch in _results(relive, broken) for _, v, _ in batch)

    write_source(tmp_path / "work.py", WORK.format(version="v3"))
    fixed = _wait_for_report(relive, "1 patched in 5 processes", count=2)
    wait_until(lambda: _all_at(relive, "v3", fixed), timeout=10)

    assert _children(relive) == children, "a child was replaced"
    errors = [line for line in relive.stderr if "SyntaxError" in line]
    assert len(errors) == 1, relive.error_text()  # once for the program, not per process
    assert "(in 5 processes; no process applied it)" in errors[0]
    assert not any("Traceback" in line for line in relive.stderr), relive.error_text()
    # Each child kept its counter: the values it hands out only grow.
    counts: dict[int, list[int]] = {}
    for batch in _results(relive):
        for pid, _, count in batch:  # type: ignore[misc]
            counts.setdefault(pid, []).append(count)
    assert all(values == sorted(values) for values in counts.values())


FORK_PROGRAM = """
import os, time
import work
print("pid", os.getpid(), flush=True)
role = "CHILD" if os.fork() == 0 else "PARENT"
if role == "CHILD":
    import child_only
while True:
    extra = child_only.tag() if role == "CHILD" else ""
    print(role, os.getpid(), work.version(), extra, flush=True)
    time.sleep(0.03)
"""


def _last(relive: Relive, role: str) -> list[str]:
    lines = [line.split() for line in relive.stdout if line.startswith(role + " ")]
    return lines[-1] if lines else []


def test_an_os_fork_child_applies_each_edit_and_a_refusal_names_it(
    tmp_path: Path, start: Start
) -> None:
    write_source(tmp_path / "work.py", WORK.format(version="v1"))
    write_source(tmp_path / "child_only.py", "def tag():\n    return 'a'\n")
    write_source(tmp_path / "prog.py", FORK_PROGRAM)
    relive = start("prog.py")
    parent = relive.wait_for_start(1)
    wait_until(lambda: _last(relive, "CHILD") or relive.proc.poll(), timeout=15)
    child = int(_last(relive, "CHILD")[1])
    relive.pids.add(child)

    write_source(tmp_path / "work.py", WORK.format(version="v2"))
    _wait_for_report(relive, "work.py: 1 patched in 2 processes")
    wait_until(lambda: _last(relive, "CHILD")[2:3] == ["v2"], timeout=10)
    wait_until(lambda: _last(relive, "PARENT")[2:3] == ["v2"], timeout=10)

    # Only the child runs child_only.py: its refusal is the program's, named by its pid.
    write_source(tmp_path / "child_only.py", "def tag(:\n    return 'b'\n")
    _wait_for_report(relive, f"(in process {child}; no process applied it)")
    write_source(tmp_path / "child_only.py", "def tag():\n    return 'c'\n")
    _wait_for_report(relive, "child_only.py: 1 patched")
    wait_until(lambda: _last(relive, "CHILD")[3:4] == ["c"], timeout=10)
    assert int(_last(relive, "CHILD")[1]) == child
    assert int(_last(relive, "PARENT")[1]) == parent


SESSION_PROGRAM = """
import os, subprocess, sys, time
code = "import os, time; print('child', os.getpid(), flush=True); time.sleep(600)"
child = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
print("pid", os.getpid(), flush=True)
time.sleep(600)
"""


def test_ctrl_c_ends_a_child_in_its_own_session(tmp_path: Path, start: Start) -> None:
    write_source(tmp_path / "prog.py", SESSION_PROGRAM)
    relive = start("--verbose", "prog.py")
    relive.wait_for_start(1)
    line = relive.wait_for_line("child ")
    child = int(line.split()[1])
    relive.pids.add(child)
    relive.wait_for_line(f"process {child} joined the edits", stream="stderr", timeout=15)

    relive.proc.send_signal(signal.SIGINT)
    assert relive.wait_for_exit() == 128 + signal.SIGINT
    wait_until(lambda: not exists(child), timeout=3)


CHURN_PROGRAM = POOL_PROGRAM.replace("context.Pool(4)", "context.Pool(2, maxtasksperchild=2)")


def test_children_forked_around_an_edit_run_the_new_code(tmp_path: Path, start: Start) -> None:
    """A pool that forks a new child every two tasks, edits saved meanwhile: every child,
    however new, runs the code of the last edit reported."""
    write_source(tmp_path / "work.py", WORK.format(version="v1"))
    write_source(tmp_path / "prog.py", CHURN_PROGRAM)
    relive = start("prog.py", "fork")
    relive.wait_for_start(1)
    wait_until(lambda: len(_results(relive)) >= 2 or relive.proc.poll(), timeout=20)
    for count, version in enumerate(("v2", "v3", "v4"), start=1):
        write_source(tmp_path / "work.py", WORK.format(version=version))
        seen = _wait_for_report(relive, "work.py: 1 patched in", count)
        wait_until(lambda: len(_results(relive, seen)) >= 3, timeout=10)  # noqa: B023
        late = _results(relive, seen)[1:]
        assert all(v == version for batch in late for _, v, _ in batch), late  # type: ignore[misc]
    assert len(_children(relive)) > 6, "the pool did not replace its children"
    relive.pids.update(_children(relive))


SPAWNING_PROGRAM = """
import os, subprocess, sys, time
import work
code = (
    "import os, time, work\\n"
    "print('site', os.environ.get('USER_SITE_RAN'), flush=True)\\n"
    "while True:\\n"
    "    print('SPAWNED', os.getpid(), work.version(), flush=True)\\n"
    "    time.sleep(0.03)\\n"
)
child = subprocess.Popen([sys.executable, "-c", code])
print("pid", os.getpid(), flush=True)
while True:
    time.sleep(0.05)
"""


def test_a_spawned_python_gets_each_edit_and_the_users_sitecustomize_still_runs(
    tmp_path: Path, start: Start
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    write_source(site / "sitecustomize.py", "import os\nos.environ['USER_SITE_RAN'] = 'yes'\n")
    write_source(tmp_path / "work.py", WORK.format(version="v1"))
    write_source(tmp_path / "prog.py", SPAWNING_PROGRAM)
    relive = start("prog.py", env={"PYTHONPATH": str(site)})
    relive.wait_for_start(1)
    assert relive.wait_for_line("site ") == "site yes"
    child = int(relive.wait_for_line("SPAWNED ").split()[1])
    relive.pids.add(child)

    write_source(tmp_path / "work.py", WORK.format(version="v2"))
    _wait_for_report(relive, "work.py: 1 patched in 2 processes")
    wait_until(lambda: _last(relive, "SPAWNED")[2:3] == ["v2"], timeout=10)
    assert int(_last(relive, "SPAWNED")[1]) == child


def test_a_spawned_process_starts_light_and_loads_the_engine_for_its_first_edit() -> None:
    """relive's sitecustomize records what is imported and connects; the engine (and a
    server's support) is loaded only when needed, so a spawned python starts fast."""
    from relive import _member, _protocol

    assert _member.HUB_ENV == _protocol.HUB_ENV
    env = {**os.environ, **_member.hub_environment("@relive-test-no-hub")}
    probe = "import sys; print(sorted(m for m in sys.modules if m.startswith('relive')))"
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=30
    )
    loaded = set(json.loads(result.stdout.replace("'", '"')))
    assert "relive._member" in loaded, result.stderr
    assert "relive._engine" not in loaded
    assert result.stderr == ""
