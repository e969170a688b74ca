"""The running script and ``-m MODULE`` under ``relive run``: edited like any module.

Definitions are patched in place and changed top-level statements run again, keeping the
process and its state; the statement running now (the main loop, ``sys.exit(main())``)
and those after it cannot run again in place: their edits restart, saying so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness import EVENT_TIMEOUT, START_TIMEOUT, Start, exists
from relive.testing import wait_until, write_source

SCRIPT = """\
import os, sys, time
{imports}
calls = 0  # state no edit touches: it must be kept
GREETING = "hello"


def value():
    global calls
    calls += 1
    return {value}


def main():
    print("pid", os.getpid(), GREETING, flush=True)
    last = None
    while True:
        current = value()
        if current != last:
            print("value", current, "calls", calls, GREETING, flush=True)
            last = current
        time.sleep(0.01)


{running}
"""


def script(value: object = 1, *, imports: str = "", running: str = "sys.exit(main())") -> str:
    return SCRIPT.format(value=value, imports=imports, running=running)


def calls_of(line: str) -> int:
    return int(line.split()[3])


def test_edit_of_the_script_is_applied_in_place_keeping_its_state(
    tmp_path: Path, start: Start
) -> None:
    write_source(tmp_path / "app.py", script(1))
    relive = start("app.py")
    pid = relive.wait_for_start(1)
    relive.wait_for_line("value 1 ")

    write_source(tmp_path / "app.py", script(2))

    line = relive.wait_for_line("value 2 ")
    assert calls_of(line) > 1, "the script's state was reset"
    assert relive.program_pids() == [pid]
    relive.wait_for_line("app.py: 1 patched", stream="stderr")  # another pipe: may come later


def test_changed_top_level_statement_of_the_script_runs_again(tmp_path: Path, start: Start) -> None:
    write_source(tmp_path / "app.py", script(1))
    relive = start("app.py")
    pid = relive.wait_for_start(1)
    relive.wait_for_line("value 1 calls 1 hello")

    edited = script(2).replace('GREETING = "hello"', 'GREETING = "bonjour"')
    write_source(tmp_path / "app.py", edited)

    line = relive.wait_for_line("value 2 ")
    assert line.endswith("bonjour")
    assert relive.program_pids() == [pid]


def test_edit_of_the_running_statement_restarts_saying_so(tmp_path: Path, start: Start) -> None:
    write_source(tmp_path / "app.py", script(1))
    relive = start("app.py")
    first = relive.wait_for_start(1)

    write_source(tmp_path / "app.py", script(1, running="sys.exit(main() or 0)"))

    second = relive.wait_for_start(2)
    assert second != first
    wait_until(lambda: not exists(first), timeout=EVENT_TIMEOUT)
    line = relive.wait_for_line("restarting: ", stream="stderr")
    assert "app.py:" in line and "the statement running now changed" in line


def test_statement_after_the_running_one_restarts(tmp_path: Path, start: Start) -> None:
    write_source(tmp_path / "app.py", script(1) + "print('bye')\n")
    relive = start("app.py")
    first = relive.wait_for_start(1)

    write_source(tmp_path / "app.py", script(1) + "print('goodbye')\n")

    relive.wait_for_start(2)
    line = relive.wait_for_line("restarting: ", stream="stderr")
    assert "comes after the one running now" in line
    assert not any("bye" in out for out in relive.stdout), "ran before its turn"
    wait_until(lambda: not exists(first), timeout=EVENT_TIMEOUT)


def test_package_main_of_dash_m_is_edited_in_place(tmp_path: Path, start: Start) -> None:
    (tmp_path / "tool").mkdir()
    write_source(tmp_path / "tool" / "__init__.py", "")
    write_source(tmp_path / "tool" / "__main__.py", script(1))
    relive = start("-m", "tool")
    pid = relive.wait_for_start(1)
    relive.wait_for_line("value 1 ")

    write_source(tmp_path / "tool" / "__main__.py", script(2))

    line = relive.wait_for_line("value 2 ")
    assert calls_of(line) > 1
    assert relive.program_pids() == [pid]


def test_module_run_with_dash_m_is_edited_in_place(tmp_path: Path, start: Start) -> None:
    running = 'if __name__ == "__main__":\n    main()'
    write_source(tmp_path / "tool.py", script(1, running=running))
    relive = start("-m", "tool")
    pid = relive.wait_for_start(1)
    relive.wait_for_line("value 1 ")

    write_source(tmp_path / "tool.py", script(2, running=running))
    relive.wait_for_line("value 2 ")

    write_source(tmp_path / "tool.py", script(2, running=running.replace("main()", "main() or 0")))
    relive.wait_for_start(2)
    assert "the statement running now changed" in relive.wait_for_line(
        "restarting", stream="stderr"
    )
    assert relive.program_pids()[0] == pid


def test_script_that_imports_multiprocessing_is_one_module(tmp_path: Path, start: Start) -> None:
    write_source(tmp_path / "app.py", script(1, imports="import multiprocessing"))
    relive = start("app.py")
    pid = relive.wait_for_start(1)
    relive.wait_for_line("value 1 ")

    write_source(tmp_path / "app.py", script(2, imports="import multiprocessing"))

    relive.wait_for_line("value 2 ")
    relive.wait_for_line("patched", stream="stderr")  # another pipe: it may come later
    reports = [line for line in relive.stderr if "patched" in line]
    assert reports == [reports[0]] and reports[0].count("app.py") == 1, relive.stderr
    assert relive.program_pids() == [pid]


WATCHING_SCRIPT = """\
import multiprocessing, os, sys, time
import relive

watcher = relive.watch()
print("pid", os.getpid(), flush=True)


def main():
    while True:
        time.sleep(0.01)


{running}
"""


def test_running_statement_never_runs_again_in_the_watcher_thread(tmp_path: Path) -> None:
    """``python app.py`` with ``relive.watch()``: once multiprocessing is imported the
    script is also ``__mp_main__``; an edit of ``sys.exit(main())`` must not run it again
    (in the watcher thread), it needs a restart."""
    path = write_source(tmp_path / "app.py", WATCHING_SCRIPT.format(running="sys.exit(main())"))
    an_hour_ago = time.time() - 3600  # written before it ran, as scripts are
    os.utime(path, (an_hour_ago, an_hour_ago))
    env = {key: value for key, value in os.environ.items() if key != "RELIVE"}
    proc = subprocess.Popen(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout: list[str] = []
    stderr: list[str] = []
    readers = [
        threading.Thread(target=lambda: stdout.extend(proc.stdout or ()), daemon=True),
        threading.Thread(target=lambda: stderr.extend(proc.stderr or ()), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        wait_until(lambda: stdout, timeout=START_TIMEOUT)
        write_source(path, WATCHING_SCRIPT.format(running="sys.exit(main() or 0)"))
        wait_until(lambda: any("restart required" in line for line in stderr))
        assert "the statement running now changed" in "".join(stderr)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(timeout=EVENT_TIMEOUT)
        for reader in readers:
            reader.join(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert [line for line in stdout if line.startswith("pid")] == stdout[:1], "ran again"
