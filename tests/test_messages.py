"""What a user reads on the terminal, through the real commands: one line per event,
``file:line`` relative to the current directory, a refused edit that is good again says
so (``relive run``, ``--quiet`` included, and ``relive.watch()`` in a plain program), and
``--verbose`` names what each edit patched, added and removed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import EVENT_TIMEOUT, START_TIMEOUT, Start
from relive.testing import wait_until, write_source

HELPER = "def greet(n):\n    return f'hello {n}'\n"
APP = """\
import os, time
import helper
print("pid", os.getpid(), flush=True)
while True:
    time.sleep(0.05)
"""
FIXED = "relive: helper.py: fixed (the last good code is running)"


def count(lines: list[str], text: str) -> int:
    return sum(text in line for line in lines)


def wait_for_count(lines: list[str], text: str, wanted: int) -> None:
    try:
        wait_until(lambda: count(lines, text) >= wanted, timeout=EVENT_TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"{text!r} not seen {wanted} times in {lines}") from None


def test_a_refused_edit_made_good_again_says_fixed_in_relive_run(
    tmp_path: Path, start: Start
) -> None:
    write_source(tmp_path / "helper.py", HELPER)
    write_source(tmp_path / "app.py", APP)
    relive = start("app.py")
    relive.wait_for_start(1)
    helper = tmp_path / "helper.py"

    write_source(helper, HELPER.replace("greet(n):", "greet(n)"))  # SyntaxError
    wait_for_count(relive.stderr, "relive: helper.py:1: SyntaxError: expected ':'", 1)
    wait_for_count(relive.stderr, "    def greet(n)", 1)  # the offending line, below
    write_source(helper, HELPER)  # the colon put back: the last good text
    wait_for_count(relive.stderr, FIXED, 1)

    write_source(helper, "X = {}['missing']\n" + HELPER)  # refused at run time
    wait_for_count(relive.stderr, "relive: helper.py:1: KeyError: 'missing'", 1)
    write_source(helper, HELPER)  # reverted
    wait_for_count(relive.stderr, FIXED, 2)
    assert not any(str(tmp_path) in line for line in relive.stderr)  # one path style
    assert relive.program_pids() == relive.program_pids()[:1]  # never restarted


def test_quiet_still_says_what_fixed_a_refused_edit(tmp_path: Path, start: Start) -> None:
    write_source(tmp_path / "helper.py", HELPER)
    write_source(tmp_path / "app.py", APP)
    relive = start("--quiet", "app.py")
    relive.wait_for_start(1)
    helper = tmp_path / "helper.py"
    write_source(helper, HELPER.replace("greet(n):", "greet(n)"))
    wait_for_count(relive.stderr, "relive: helper.py:1: SyntaxError", 1)
    write_source(helper, HELPER.replace("hello", "hey"))  # good, and new: what was applied
    wait_for_count(relive.stderr, "relive: helper.py: 1 patched in ", 1)
    assert count(relive.stderr, "patched") == 1


def test_verbose_names_what_each_edit_patched_added_and_removed(
    tmp_path: Path, start: Start
) -> None:
    write_source(tmp_path / "helper.py", HELPER + "def wave():\n    return 1\n")
    write_source(tmp_path / "app.py", APP)
    relive = start("--verbose", "app.py")
    relive.wait_for_start(1)
    edited = HELPER.replace("hello", "hi") + "def bow():\n    return 2\n"
    write_source(tmp_path / "helper.py", edited)
    relive.wait_for_line(
        "relive: helper.py: 1 patched (greet), 1 added (bow), 1 removed (wave), ",
        stream="stderr",
    )


WATCHING_PROGRAM = """\
import time
import relive
relive.watch()
import helper  # tracked from its import: its text then is the last good code
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


@pytest.fixture
def program(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """A plain ``python program.py`` that calls ``relive.watch()``; its stderr lines."""
    write_source(tmp_path / "helper.py", HELPER)
    write_source(tmp_path / "program.py", WATCHING_PROGRAM)
    proc = subprocess.Popen(
        [sys.executable, "program.py"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        import threading

        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append(line.rstrip("\n"))

        threading.Thread(target=read, name="test-program-stderr", daemon=True).start()
        yield proc, lines
    finally:
        proc.kill()
        proc.wait(timeout=START_TIMEOUT)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_a_refused_edit_made_good_again_says_fixed_under_relive_watch(
    tmp_path: Path, program: tuple[subprocess.Popen[str], list[str]]
) -> None:
    _, lines = program
    helper = tmp_path / "helper.py"
    write_source(helper, HELPER.replace("greet(n):", "greet(n)"))
    wait_for_count(lines, "relive: helper.py:1: SyntaxError: expected ':'", 1)
    write_source(helper, HELPER)
    wait_for_count(lines, FIXED, 1)
    write_source(helper, HELPER.replace("hello", "hi"))
    wait_for_count(lines, "relive: helper.py: 1 patched in ", 1)
    assert len(lines) == 4, lines  # the error, its source line, fixed, applied


MODELS = """\
class Counter:
    def __init__(self):
        self.count = 0

    def tick(self):
        self.count += 1
        return self.count
"""
COUNTING = """\
import os, time
import models
counters = [models.Counter() for _ in range(3)]
for counter in counters:
    counter.tick()
print("pid", os.getpid(), flush=True)
while not os.path.exists("go"):  # the test lets the instances be used again
    time.sleep(0.02)
print("ticked", [counter.tick() for counter in counters], flush=True)
while True:
    time.sleep(0.02)
"""


def test_init_setting_a_new_attribute_says_existing_instances_lack_it(
    tmp_path: Path, start: Start
) -> None:
    write_source(tmp_path / "models.py", MODELS)
    write_source(tmp_path / "app.py", COUNTING)
    relive = start("app.py")
    first = relive.wait_for_start(1)
    edited = MODELS.replace("self.count = 0", "self.count = 0\n        self.step = 10")
    write_source(tmp_path / "models.py", edited.replace("+= 1", "+= self.step"))
    relive.wait_for_line(
        "relive: models.py: Counter.__init__ now sets 'step'; 3 existing instances do not"
        " have it (add __relive_migrate__ to upgrade them)",
        stream="stderr",
    )
    # The old instances then fail, as the line said: a crash after an edit restarts at once.
    (tmp_path / "go").touch()
    relive.wait_for_line("files changed since it started: restarting", stream="stderr")
    assert relive.wait_for_start(2) != first
    relive.wait_for_line("ticked [20, 20, 20]")  # new instances, made by the new __init__


def test_init_with_a_migration_says_nothing_more(tmp_path: Path, start: Start) -> None:
    migrate = "\n    def __relive_migrate__(self):\n        self.__dict__.setdefault('step', 10)\n"
    write_source(tmp_path / "models.py", MODELS + migrate)
    write_source(tmp_path / "app.py", COUNTING)
    relive = start("app.py")
    relive.wait_for_start(1)
    edited = MODELS.replace("self.count = 0", "self.count = 0\n        self.step = 10")
    write_source(tmp_path / "models.py", edited.replace("+= 1", "+= self.step") + migrate)
    relive.wait_for_line("relive: models.py: 1 patched in ", stream="stderr")
    (tmp_path / "go").touch()
    relive.wait_for_line("ticked [11, 11, 11]")  # migrated: the old instances work
    assert not any("__init__ now sets" in line for line in relive.stderr)
    assert relive.proc.poll() is None and len(relive.program_pids()) == 1


def test_falling_back_to_polling_is_said_once_per_program(tmp_path: Path) -> None:
    """In a user namespace of its own, ``relive run`` gets no inotify instance: the
    supervisor and the worker both poll, and the user reads why once."""
    try:
        usable = subprocess.run(["unshare", "-U", "-r", "true"], check=False).returncode == 0
    except FileNotFoundError:
        usable = False
    if not usable or not Path("/proc/sys/user/max_inotify_instances").exists():
        pytest.skip("needs unshare -U and per-namespace inotify limits")
    write_source(tmp_path / "helper.py", HELPER)
    write_source(tmp_path / "app.py", APP)
    script = (
        "echo 0 > /proc/sys/user/max_inotify_instances && exec "
        f"{sys.executable} -m relive run app.py"
    )
    proc = subprocess.Popen(
        ["unshare", "-U", "-r", "sh", "-c", script],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("pid ")
        write_source(tmp_path / "helper.py", HELPER.replace("hello", "hi"))
        lines: list[str] = []
        assert proc.stderr is not None
        while not any("helper.py: 1 patched" in line for line in lines):
            lines.append(proc.stderr.readline().rstrip("\n"))  # polling applies it too
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=EVENT_TIMEOUT)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    said = [line for line in lines if "polling instead" in line]
    assert len(said) == 1, lines
    assert said[0].startswith("relive: inotify instance limit reached")
