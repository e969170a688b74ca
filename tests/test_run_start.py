"""`relive run` at the edges of a start: a program that cannot start ends relive as
``python`` would, a Ctrl-C while relive itself starts ends it quietly, and ``relive``
alone prints its help.

Every test drives the real command (``python -m relive run ...`` in its own session) and
checks what a user sees: the lines printed and the exit status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from harness import EVENT_TIMEOUT, START_TIMEOUT, Start, exists
from relive.testing import wait_until, write_source

SLEEPER = """\
import os, time
{setup}
print("pid", os.getpid(), flush=True)
while True:
    time.sleep(0.05)
"""

NOT_STARTED = "could not start; exiting (--keep-alive waits for a change)"


def test_missing_module_ends_at_once_with_status_1(start: Start) -> None:
    relive = start("-m", "nonexistent_mod")
    assert relive.wait_for_exit(timeout=START_TIMEOUT) == 1
    assert relive.stderr == [
        "relive: No module named nonexistent_mod",
        f"relive: nonexistent_mod {NOT_STARTED}",
    ]


def test_import_error_on_the_first_start_ends_with_python_s_traceback(
    tmp_path: Path, start: Start
) -> None:
    write_source(tmp_path / "app.py", "import os\nimport no_such_dependency\n")
    relive = start("app.py")
    assert relive.wait_for_exit(timeout=START_TIMEOUT) == 1
    assert relive.stderr[0] == "Traceback (most recent call last):"
    assert "ModuleNotFoundError: No module named 'no_such_dependency'" in relive.stderr
    assert relive.stderr[-1] == f"relive: app.py {NOT_STARTED}"
    assert "relive/" not in relive.error_text()  # none of relive's frames


def test_syntax_error_on_the_first_start_is_printed_as_python_prints_it(
    tmp_path: Path, start: Start
) -> None:
    write_source(tmp_path / "app.py", "x = 1\ndef broken(:\n    pass\n")
    relive = start("app.py")
    assert relive.wait_for_exit(timeout=START_TIMEOUT) == 1
    assert any(line.strip().endswith('app.py", line 2') for line in relive.stderr)
    assert any(line.startswith("SyntaxError: ") for line in relive.stderr)
    assert relive.stderr[-1] == f"relive: app.py {NOT_STARTED}"


def test_keep_alive_waits_for_the_missing_module_to_appear(tmp_path: Path, start: Start) -> None:
    relive = start("--keep-alive", "-m", "later")
    relive.wait_for_line("later exited with code 1; waiting for a change", stream="stderr")
    assert relive.proc.poll() is None
    write_source(tmp_path / "later.py", SLEEPER.format(setup=""))
    relive.wait_for_start(1)


# Ctrl-C while relive itself starts ---------------------------------------------------------

# Makes each worker started while ``slow`` exists pause in its start-up, before the
# program runs, and say so in a file: the window in which a Ctrl-C used to print relive's
# own traceback.
SITECUSTOMIZE = """\
import os, time
if "RELIVE_WORKER" in os.environ and os.path.exists("slow"):
    open("starting", "w").close()
    time.sleep(3)
"""


def test_ctrl_c_while_a_restarted_worker_starts_ends_quietly_with_130(
    tmp_path: Path, start: Start
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    write_source(tmp_path / "app.py", SLEEPER.format(setup=""))
    relive = start("--restart-on", "*.toml", "app.py", env={"PYTHONPATH": str(site)})
    first = relive.wait_for_start(1)

    (tmp_path / "slow").touch()
    write_source(tmp_path / "settings.toml", "x = 2\n")  # a restart
    wait_until(lambda: (tmp_path / "starting").exists(), timeout=START_TIMEOUT)
    os.killpg(relive.proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C

    assert relive.wait_for_exit() == 130
    assert not any("Traceback" in line or "KeyboardInterrupt" in line for line in relive.stderr)
    assert len(relive.program_pids()) == 1  # the program never started again
    wait_until(lambda: not exists(first), timeout=EVENT_TIMEOUT)


def test_ctrl_c_in_the_program_keeps_python_s_traceback(tmp_path: Path, start: Start) -> None:
    write_source(tmp_path / "app.py", SLEEPER.format(setup=""))
    relive = start("app.py")
    relive.wait_for_start(1)
    os.killpg(relive.proc.pid, signal.SIGINT)
    assert relive.wait_for_exit() == 130
    assert "Traceback (most recent call last):" in relive.stderr
    assert relive.stderr[-1] == "KeyboardInterrupt"
    assert "relive/" not in relive.error_text()


# relive alone ----------------------------------------------------------------------------


def test_relive_alone_prints_its_help_with_the_commands() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "relive"], capture_output=True, text=True, timeout=EVENT_TIMEOUT
    )
    assert done.returncode == 2
    assert done.stderr.startswith("usage: relive")
    assert "run" in done.stderr and "run a program with hot reload" in done.stderr
