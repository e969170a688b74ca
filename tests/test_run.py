"""`relive run` end to end: a real supervisor, real child processes, real files in tmp_path.

Every test starts ``python -m relive run ...`` in its own session, waits for the program's
own lines on stdout (``pid N``, ``value V``), and in ``finally`` ends the whole tree and
checks by pid that nothing is left, zombies included.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
from pathlib import Path

import pytest

from harness import EVENT_TIMEOUT, START_TIMEOUT, Relive, Start, exists, free_port
from relive._supervisor import Backoff
from relive.testing import wait_until, write_source

APP = """\
import os, time
import lib
value = lib.value  # an old reference: it must see the edits too
print("pid", os.getpid(), flush=True)
last = None
while True:
    current = value()
    if current != last:
        print("value", current, "calls", lib.calls, flush=True)
        last = current
    time.sleep(0.01)
"""

LIB = """\
calls = 0  # module state no edit touches: it must be kept


def value():
    global calls
    calls += 1
    return {value}
"""

SLEEPER = """\
import os, signal, sys, time
{setup}
print("pid", os.getpid(), flush=True)
while True:
    time.sleep(0.05)
"""


DEMO = Path(__file__).resolve().parents[1] / "examples" / "run_demo"


def get(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/")
        return connection.getresponse().read().decode()
    finally:
        connection.close()


def served_pids(relive: Relive) -> list[int]:
    """The pids the demo server printed (``serving on ... (pid N)``), one per start."""
    return [int(line.split()[-1][:-1]) for line in relive.stdout if line.startswith("serving")]


def write_app(tmp_path: Path, value: int = 1) -> None:
    write_source(tmp_path / "lib.py", LIB.format(value=value))
    write_source(tmp_path / "app.py", APP)


# In-place reload -------------------------------------------------------------------------


def test_edit_is_applied_in_place_keeping_pid_and_state(tmp_path: Path, start: Start) -> None:
    write_app(tmp_path)
    relive = start("app.py")
    pid = relive.wait_for_start(1)
    relive.wait_for_line("value 1 calls 1")

    write_source(tmp_path / "lib.py", LIB.format(value=2))

    line = relive.wait_for_line("value 2 ")
    assert int(line.split()[-1]) > 1, "module state was reset"
    assert relive.program_pids() == [pid]
    assert exists(pid)


def test_syntax_error_is_reported_and_the_fix_then_applies(tmp_path: Path, start: Start) -> None:
    write_app(tmp_path)
    relive = start("app.py")
    pid = relive.wait_for_start(1)
    relive.wait_for_line("value 1 ")

    write_source(tmp_path / "lib.py", "def value(:\n    return 2\n")
    line = relive.wait_for_line("SyntaxError", stream="stderr")
    assert "lib.py:1" in line
    assert exists(pid)

    write_source(tmp_path / "lib.py", LIB.format(value=3))
    relive.wait_for_line("value 3 ")
    assert relive.program_pids() == [pid]


# Restarts --------------------------------------------------------------------------------


def test_edit_of_the_main_loop_of_the_script_restarts(tmp_path: Path, start: Start) -> None:
    write_app(tmp_path)
    relive = start("app.py")
    first = relive.wait_for_start(1)

    write_source(tmp_path / "app.py", APP.replace("sleep(0.01)", "sleep(0.02)"))  # the loop

    second = relive.wait_for_start(2)
    assert second != first
    wait_until(lambda: not exists(first), timeout=EVENT_TIMEOUT)
    relive.wait_for_line("restarting: ", stream="stderr")


def test_restart_on_glob_restarts(tmp_path: Path, start: Start) -> None:
    write_app(tmp_path)
    relive = start("--restart-on", "*.toml", "app.py")
    first = relive.wait_for_start(1)

    write_source(tmp_path / "settings.toml", "debug = true\n")

    assert relive.wait_for_start(2) != first
    assert "relive: restarting: settings.toml changed" in relive.stderr


def test_restart_flag_restarts_on_any_python_change(tmp_path: Path, start: Start) -> None:
    write_app(tmp_path)
    relive = start("--restart", "app.py")
    first = relive.wait_for_start(1)

    write_source(tmp_path / "lib.py", LIB.format(value=2))

    assert relive.wait_for_start(2) != first
    relive.wait_for_line("value 2 calls 1")


def test_restart_escalates_to_sigkill_after_the_grace(tmp_path: Path, start: Start) -> None:
    setup = "signal.signal(signal.SIGTERM, signal.SIG_IGN)"
    write_source(tmp_path / "app.py", SLEEPER.format(setup=setup))
    relive = start("--grace", "0.3", "--restart-on", "*.toml", "app.py")
    first = relive.wait_for_start(1)

    write_source(tmp_path / "settings.toml", "debug = true\n")

    assert relive.wait_for_start(2) != first
    assert not exists(first)  # the new start waited for the old process to be gone


def test_demo_server_edited_in_place_then_restarted_on_its_port(
    tmp_path: Path, start: Start
) -> None:
    shutil.copytree(DEMO, tmp_path, dirs_exist_ok=True)
    port = free_port()
    settings = tmp_path / "settings.toml"
    write_source(settings, settings.read_text().replace("8765", str(port)))
    relive = start("--restart-on", "*.toml", "server.py")
    wait_until(lambda: served_pids(relive), timeout=START_TIMEOUT)
    first = served_pids(relive)[0]
    assert "request number 1." in get(port)

    handlers = tmp_path / "handlers.py"
    write_source(handlers, handlers.read_text().replace("You asked for", "Edited:"))
    wait_until(lambda: "Edited:" in get(port), timeout=EVENT_TIMEOUT)
    assert "request number 1." not in get(port)  # the hit counter was kept
    assert served_pids(relive) == [first]

    write_source(settings, settings.read_text().replace("Hello", "Restarted"))
    wait_until(lambda: len(served_pids(relive)) == 2, timeout=EVENT_TIMEOUT)
    assert get(port).startswith("Restarted from relive! Edited: /; request number 1.")
    relive.pids.update(served_pids(relive))


# Exits -----------------------------------------------------------------------------------


def test_crash_waits_for_a_change_then_restarts(tmp_path: Path, start: Start) -> None:
    write_source(tmp_path / "app.py", "import os\nprint('pid', os.getpid(), flush=True)\n1 / 0\n")
    relive = start("app.py")
    first = relive.wait_for_start(1)
    relive.wait_for_line("app.py exited with code 1; waiting for a change", stream="stderr")
    assert "ZeroDivisionError: division by zero" in relive.stderr
    assert "relive/_worker.py" not in relive.error_text(), "relive's frames in the traceback"
    assert relive.proc.poll() is None

    write_source(tmp_path / "app.py", SLEEPER.format(setup=""))

    assert relive.wait_for_start(2) != first


def test_crash_after_an_edit_restarts_once_then_waits(tmp_path: Path, start: Start) -> None:
    write_app(tmp_path)
    write_source(tmp_path / "app.py", APP.replace("time.sleep", "assert current == 1; time.sleep"))
    relive = start("app.py")
    first = relive.wait_for_start(1)
    relive.wait_for_line("value 1 ")

    write_source(tmp_path / "lib.py", LIB.format(value=2))  # applied in place, then crashes

    relive.wait_for_line("files changed since it started: restarting", stream="stderr")
    assert relive.wait_for_start(2) != first  # the edited code, from a fresh start
    relive.wait_for_line("waiting for a change to restart", stream="stderr")
    assert relive.proc.poll() is None
    assert len(relive.program_pids()) == 2  # no crash loop


def test_clean_exit_ends_relive_with_the_exit_code(tmp_path: Path, start: Start) -> None:
    write_source(tmp_path / "app.py", "import os\nprint('pid', os.getpid(), flush=True)\n")
    relive = start("app.py")
    relive.wait_for_start(1)
    assert relive.wait_for_exit() == 0
    assert relive.stderr == []


def test_verbose_says_what_is_watched(tmp_path: Path, start: Start) -> None:
    write_source(tmp_path / "app.py", "import os\nprint('pid', os.getpid(), flush=True)\n")
    relive = start("--verbose", "--restart-on", "*.toml", "app.py")
    assert relive.wait_for_exit() == 0
    watching = relive.wait_for_line("relive: supervisor watching 1 dir (", stream="stderr")
    assert watching.endswith(f"): {tmp_path} include *.py *.toml")
    assert any(line.startswith("relive: started app.py (pid ") for line in relive.stderr)


def test_keep_alive_waits_after_a_clean_exit(tmp_path: Path, start: Start) -> None:
    write_source(tmp_path / "app.py", "import os\nprint('pid', os.getpid(), flush=True)\n")
    relive = start("--keep-alive", "app.py")
    first = relive.wait_for_start(1)
    relive.wait_for_line("app.py exited with code 0; waiting for a change", stream="stderr")

    write_source(tmp_path / "app.py", SLEEPER.format(setup=""))

    assert relive.wait_for_start(2) != first


def test_program_sees_argv_and_path_as_under_python(tmp_path: Path, start: Start) -> None:
    show = (
        "import os, sys\nprint('pid', os.getpid(), sys.argv, sys.path[0], __name__, flush=True)\n"
    )
    write_source(tmp_path / "app.py", show)
    write_source(tmp_path / "mod.py", show)
    script = start("app.py", "a", "-b")
    module = start("-m", "mod", "c", "--quiet")
    assert script.wait_for_exit() == 0 and module.wait_for_exit() == 0
    assert script.stdout[0].split(" ", 2)[2] == f"['app.py', 'a', '-b'] {tmp_path} __main__"
    module_file = str(tmp_path / "mod.py")
    assert (
        module.stdout[0].split(" ", 2)[2]
        == f"[{module_file!r}, 'c', '--quiet'] {tmp_path} __main__"
    )


# Signals: the whole tree ends ------------------------------------------------------------


def test_ctrl_c_ends_every_process(tmp_path: Path, start: Start) -> None:
    write_app(tmp_path)
    relive = start("app.py")
    pid = relive.wait_for_start(1)

    os.killpg(relive.proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C

    assert relive.wait_for_exit() == 130
    wait_until(lambda: not exists(pid), timeout=EVENT_TIMEOUT)


def test_sigterm_ends_every_process(tmp_path: Path, start: Start) -> None:
    write_app(tmp_path)
    relive = start("app.py")
    pid = relive.wait_for_start(1)

    relive.proc.terminate()

    assert relive.wait_for_exit() == 128 + signal.SIGTERM
    wait_until(lambda: not exists(pid), timeout=EVENT_TIMEOUT)


def test_worker_ends_itself_when_the_supervisor_is_killed(tmp_path: Path, start: Start) -> None:
    write_app(tmp_path)
    relive = start("app.py")
    pid = relive.wait_for_start(1)

    relive.proc.kill()  # no chance to clean up: the worker must notice on its own
    relive.wait_for_exit()

    def ended() -> bool:  # its new parent (init) may never reap it: a zombie has ended
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
        except FileNotFoundError:
            return True

    wait_until(ended, timeout=EVENT_TIMEOUT)
    relive.orphans.add(pid)


# Any command -----------------------------------------------------------------------------


def test_command_is_restarted_with_its_whole_group_on_change(tmp_path: Path, start: Start) -> None:
    relive = start("--", "sh", "-c", "sleep 100 & echo pid $$ $!; wait")
    relive.wait_for_start(1)
    shell, sleeper = map(int, relive.stdout[0].split()[1:])
    relive.pids.update({shell, sleeper})

    (tmp_path / "notes.txt").write_text("changed\n")

    relive.wait_for_start(2)
    assert not exists(shell) and not exists(sleeper)  # stopped and reaped before the restart
    relive.pids.update(map(int, relive.stdout[1].split()[1:]))


# Production guard and bad input ----------------------------------------------------------


def test_relive_0_runs_the_program_plainly(tmp_path: Path, start: Start) -> None:
    write_source(
        tmp_path / "app.py", "import os, sys\nprint('pid', os.getpid(), flush=True)\nsys.exit(5)\n"
    )
    relive = start("app.py", env={"RELIVE": "0"})
    assert relive.wait_for_exit() == 5
    assert relive.program_pids() == [relive.proc.pid]  # exec'd: no supervisor, no worker
    assert relive.stderr == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus", "app.py"], "relive: unrecognized arguments: --bogus"),
        (["missing.py"], "relive: no such file: missing.py"),
        (["-m"], "relive: -m needs a module name"),
        (["--"], "relive: no command after --"),
        (["--", "no-such-command-relive"], "relive: no such command: no-such-command-relive"),
        ([], "relive: nothing to run"),
        (["--grace", "-1", "app.py"], "relive: argument --grace: must not be negative"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    tmp_path: Path, start: Start, args: list[str], message: str
) -> None:
    write_source(tmp_path / "app.py", "print('ran')\n")
    relive = start(*args)
    assert relive.wait_for_exit() == 2
    assert len(relive.stderr) == 1 and relive.stderr[0].startswith(message), relive.stderr
    assert relive.stdout == []


# Pure logic ------------------------------------------------------------------------------


def test_backoff_grows_only_while_the_program_keeps_dying_at_once() -> None:
    backoff = Backoff()
    backoff.record(0.1, crashed=True)
    assert backoff.delay() == 0  # a first crash: restart at once on the next change
    backoff.record(0.1, crashed=True)
    backoff.record(0.1, crashed=True)
    assert 0 < backoff.delay() <= 8
    longer = backoff.delay()
    backoff.record(0.1, crashed=True)
    assert backoff.delay() > longer
    backoff.record(30.0, crashed=True)  # it ran for a while: not a crash loop
    assert backoff.delay() == 0
