"""``relive run`` ends the whole tree and runs the program's hooks, whatever it does.

A process the program starts in a session of its own leaves the program's group; Ctrl-C
must end it too. A program with its own SIGTERM handler (every server has one) still has
its before_reload hooks run when relive restarts it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from harness import EVENT_TIMEOUT, Start, start_time, still_there
from relive.testing import wait_until, write_source

ESCAPING = """\
import os, subprocess, sys, time
helper = subprocess.Popen(
    [sys.executable, "-c", "import time\\nwhile True: time.sleep(0.05)"],
    start_new_session=True,  # its own session: not in the program's group
)
print("pid", os.getpid(), "helper", helper.pid, flush=True)
while True:
    time.sleep(0.05)
"""


def _kill(pid: int, started: int | None) -> None:
    """SIGKILL the helper, if its pid still names it (pids wrap under load)."""
    if still_there(pid, started):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_ctrl_c_ends_a_process_the_program_started_in_its_own_session(
    tmp_path: Path, start: Start
) -> None:
    write_source(tmp_path / "app.py", ESCAPING)
    relive = start("app.py")
    pid = relive.wait_for_start(1)
    helper = int(relive.wait_for_line("helper").split()[-1])
    started = start_time(helper)
    try:
        assert os.getpgid(helper) != os.getpgid(pid)
        os.killpg(relive.proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        assert relive.wait_for_exit() == 130
        wait_until(lambda: not still_there(helper, started), timeout=EVENT_TIMEOUT)
    finally:
        _kill(helper, started)  # never left behind, even when the test fails


def test_a_restart_ends_the_processes_the_program_started_in_their_own_session(
    tmp_path: Path, start: Start
) -> None:
    write_source(tmp_path / "app.py", ESCAPING)
    relive = start("app.py")
    relive.wait_for_start(1)
    helper = int(relive.wait_for_line("helper").split()[-1])
    started = start_time(helper)
    try:
        write_source(tmp_path / "app.py", ESCAPING.replace("sleep(0.05)\n", "sleep(0.02)\n"))
        relive.wait_for_start(2)
        wait_until(lambda: not still_there(helper, started), timeout=EVENT_TIMEOUT)
    finally:
        _kill(helper, started)
    relive.pids.add(int(relive.stdout[-1].split()[-1]))


OWN_HANDLER = """
import os, signal, sys, time
import relive

@relive.before_reload
def flush():
    with open("flushed.txt", "a") as log:
        log.write(f"{os.getpid()}\\n")

signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # as servers do
print("pid", os.getpid(), flush=True)
while True:
    time.sleep(0.05)
"""


def test_before_hooks_run_on_a_restart_despite_the_programs_sigterm_handler(
    tmp_path: Path, start: Start
) -> None:
    write_source(tmp_path / "app.py", OWN_HANDLER)
    relive = start("app.py")
    first = relive.wait_for_start(1)

    write_source(tmp_path / "app.py", OWN_HANDLER.replace("sleep(0.05)", "sleep(0.02)"))

    relive.wait_for_start(2)
    flushed = tmp_path / "flushed.txt"
    wait_until(lambda: flushed.exists() and flushed.read_text() == f"{first}\n")
