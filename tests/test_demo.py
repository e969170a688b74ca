"""The README's first command (`make demo`) runs the bundled example and must keep working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo" / "run_demo.py"


def test_the_bundled_demo_edits_a_running_program_in_place() -> None:
    result = subprocess.run(
        [sys.executable, str(DEMO)], capture_output=True, text=True, timeout=90, check=False
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "relive: report.py: 1 patched in" in out
    assert "edited live" in out and "fixed and still running" in out
    assert "SyntaxError" in out  # the broken save was reported, with its file and line
    assert "program still running: False" in out  # Ctrl-C ended the whole tree
