"""``%load_ext relive`` in a real Jupyter kernel: ipykernel started with jupyter_client.

The kernel runs in its own process (the venv's python), executes cells sent over ZMQ, and
the test edits a module on disk between cells and reads the next cell's output. The kernel
is shut down in ``finally`` and the test checks by pid that nothing of it is left.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from relive.testing import write_source

START_TIMEOUT = 60.0  # starting a kernel: a few seconds, more on a loaded machine
CELL_TIMEOUT = 30.0


@dataclass
class CellOutput:
    """What one executed cell sent back."""

    status: str = ""
    stdout: str = ""
    stderr: str = ""
    error: str = ""
    results: list[str] = field(default_factory=list)


class Kernel:
    """A kernel and a client connected to it."""

    def __init__(self, manager: KernelManager, client: BlockingKernelClient) -> None:
        self.manager = manager
        self.client = client

    def execute(self, code: str, *, silent: bool = False) -> CellOutput:
        output = CellOutput()

        def collect(message: dict[str, Any]) -> None:
            kind, content = message["header"]["msg_type"], message["content"]
            if kind == "stream":
                name = content["name"]
                setattr(output, name, getattr(output, name) + content["text"])
            elif kind == "execute_result":
                output.results.append(content["data"].get("text/plain", ""))
            elif kind == "error":
                output.error = f"{content['ename']}: {content['evalue']}"

        reply = self.client.execute_interactive(
            textwrap.dedent(code), silent=silent, timeout=CELL_TIMEOUT, output_hook=collect
        )
        output.status = reply["content"]["status"]
        return output

    def run(self, code: str) -> CellOutput:
        """Execute a cell that must succeed."""
        output = self.execute(code)
        assert output.status == "ok", output
        return output


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    """A kernel whose working directory (and first import directory) is ``tmp_path``."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    env.pop("RELIVE", None)
    manager = KernelManager(kernel_name="python3", connection_file=str(runtime / "kernel.json"))
    manager.kernel_spec.argv[0] = sys.executable  # the venv's python, whatever is on PATH
    manager.start_kernel(cwd=str(tmp_path), env=env)
    pid = manager.provisioner.pid if manager.provisioner is not None else None
    client = manager.client()
    try:
        client.start_channels()
        client.wait_for_ready(timeout=START_TIMEOUT)
        yield Kernel(manager, client)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)
        assert not manager.is_alive()
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)  # the kernel leads its own session: nothing of it is left


def test_edits_between_cells_reach_the_next_cell(kernel: Kernel, tmp_path: Path) -> None:
    v1 = """
    LIMIT = 1

    def greet(name):
        return f"hello {name}"

    class Counter:
        def __init__(self):
            self.count = 0

        def step(self):
            self.count += 1
            return self.count
    """
    module = write_source(tmp_path / "nbmod.py", v1)
    kernel.run("%load_ext relive")
    kernel.run("from nbmod import greet, LIMIT, Counter\ncounter = Counter()\ncounter.step()")
    assert kernel.run("print(greet('v1'), LIMIT)").stdout == "hello v1 1\n"

    # A good edit: the next cell runs the new code, state and imported names follow.
    v2 = v1.replace("LIMIT = 1", "LIMIT = 2").replace("hello", "hi").replace("+= 1", "+= 10")
    write_source(module, v2)
    output = kernel.run("print(greet('v2'), LIMIT, counter.step())")
    assert output.stdout == "hi v2 2 11\n" and output.stderr == ""

    # A broken edit: one short message, the cell runs on the last good code.
    write_source(module, v2.replace("return f", "return (f"))
    output = kernel.run("print(greet('v3'), LIMIT)")
    assert output.stdout == "hi v3 2\n"
    assert output.stderr.startswith("relive: not applied")
    assert "nbmod.py:5: SyntaxError" in output.stderr and "return (f" in output.stderr
    assert "Traceback" not in output.stderr and len(output.stderr.splitlines()) == 2
    assert "pending error" in kernel.run("%relive").stdout

    # The next good save applies.
    write_source(module, v2.replace("hi", "hey"))
    assert kernel.run("print(greet('v4'))").stdout == "hey v4\n"

    # An edit that needs a restart says so, and applies nothing.
    write_source(module, v2.replace("class Counter:", "class Counter(dict):"))
    output = kernel.run("print(greet('v5'))")
    assert output.stdout == "hey v5\n"
    assert "restart the kernel to use this edit (nothing was applied)" in output.stderr


def test_watch_mode_in_a_kernel(kernel: Kernel, tmp_path: Path) -> None:
    module = write_source(tmp_path / "nbwatch.py", "def value():\n    return 1\n")
    kernel.run("%load_ext relive\n%relive watch")
    kernel.run("from nbwatch import value")
    kernel.run("pass")  # applies what the import queued (the file as imported: nothing)
    write_source(module, "def value():\n    return 2\n")
    # A silent cell does not run the pre-cell hook: it waits for the watcher's queue.
    wait = f"""
    import relive._ipython, relive.testing
    watcher = relive._ipython.installed(get_ipython()).watcher
    relive.testing.wait_until(lambda: {str(module.resolve())!r} in watcher.pending())
    """
    assert kernel.execute(wait, silent=True).status == "ok"
    assert kernel.run("value()").results == ["2"]
    assert "before the next cell" in kernel.run("%relive").stdout


def test_the_example_notebook_runs(kernel: Kernel, tmp_path: Path) -> None:
    example = Path(__file__).parent.parent / "examples" / "notebook"
    module = tmp_path / "shapes.py"
    shutil.copy(example / "shapes.py", module)
    notebook = json.loads((example / "relive.ipynb").read_text(encoding="utf-8"))
    cells = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    outputs = [kernel.run(cell) for cell in cells]
    assert outputs[1].results == ["'a circle of area 12.6'"]
    assert "tracked: 1 module in ." in outputs[3].stdout

    # What the notebook asks the reader to do: edit shapes.py, save, run the next cell.
    source = module.read_text(encoding="utf-8")
    write_source(module, source.replace("SCALE = 1", "SCALE = 2").replace("a circle", "a disc"))
    assert kernel.run(cells[2]).results == ["('a disc of area 50.3', 2)"]


def test_every_command_says_what_it_did_and_a_fix_says_so(kernel: Kernel, tmp_path: Path) -> None:
    helper = write_source(tmp_path / "helper.py", "def greet(n):\n    return f'hello {n}'\n")
    good = helper.read_text()
    assert kernel.run("%load_ext relive").stderr == (
        "relive: on: edited modules are applied before each cell"
        " (%relive for the status and commands)\n"
    )
    kernel.run("import helper")

    # A refused edit, then the last good text again: one line says it is fixed.
    write_source(helper, good.replace("greet(n):", "greet(n)"))
    refused = kernel.run("pass").stderr
    assert refused.startswith("relive: not applied, the last good code runs: helper.py:1: ")
    write_source(helper, good)
    assert kernel.run("pass").stderr == (
        "relive: helper.py: fixed (the last good code is running)\n"
    )

    # Refused, then another good text: what was applied is said, even when quiet.
    write_source(helper, good.replace("greet(n):", "greet(n)"))
    kernel.run("pass")
    write_source(helper, good.replace("hello", "hi"))
    output = kernel.run("helper.greet(1)")
    assert output.results == ["'hi 1'"]
    assert output.stderr.startswith("relive: helper.py: 1 patched in ")

    # %relive now after a refusal says the refusal, and nothing else.
    write_source(helper, good.replace("greet(n):", "greet(n)"))
    kernel.run("pass")
    now = kernel.run("%relive now").stderr
    assert now.startswith("relive: not applied") and "nothing changed" not in now
    write_source(helper, good.replace("hello", "hey"))
    kernel.run("pass")
    assert kernel.run("%relive now").stderr == "relive: nothing changed\n"

    # Each command: one line saying what it did; live and watch differ.
    said = {
        command: kernel.run(f"%relive {command}").stderr
        for command in ("off", "on", "verbose", "quiet", "watch", "live", "nowatch")
    }
    assert said["off"] == "relive: off: edits are not applied (%relive on to resume)\n"
    assert said["on"] == "relive: on: tracked files are checked before each cell\n"
    assert said["verbose"].startswith("relive: verbose: each reload says which names")
    assert said["quiet"] == "relive: quiet: only errors are reported\n"
    assert said["watch"].startswith("relive: watching: saved files are applied before the next")
    assert said["live"].startswith("relive: live: each save is applied at once")
    assert said["nowatch"] == said["on"]
    assert all(text.count("\n") == 1 for text in said.values()), said

    # Verbose: the names patched, added and removed.
    kernel.run("%relive verbose")
    write_source(helper, good.replace("hello", "yo") + "def wave():\n    return 1\n")
    assert "helper.py: 1 patched (greet), 1 added (wave), " in kernel.run("pass").stderr


def test_autoreload_is_switched_off_and_relive_applies_the_edits(
    kernel: Kernel, tmp_path: Path
) -> None:
    module = write_source(tmp_path / "armod.py", "def value():\n    return 1\n")
    kernel.run("%load_ext autoreload\n%autoreload 2")
    kernel.run("import armod")
    loaded = kernel.run("%load_ext relive").stderr
    assert loaded.splitlines()[0] == (
        "relive: switched %autoreload off: relive applies the edits now"
        " (both would reload the same modules)"
    )
    write_source(module, "def value():\n    return 2\n")
    assert kernel.run("armod.value()").results == ["2"]
    assert "last applied at" in kernel.run("%relive").stdout  # relive applied it
    assert kernel.run(
        "get_ipython().magics_manager.registry['AutoreloadMagics']._reloader.enabled"
    ).results == ["False"]

    # Switched on again later: switched off again, saying so, before the next cell.
    kernel.run("%autoreload 2")
    assert "switched %autoreload off" in kernel.run("pass").stderr
