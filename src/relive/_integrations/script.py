"""The running script of ``relive run app.py`` when it serves an app imported from itself.

``uvicorn.run("app:app")`` in app.py imports app.py a second time, as module ``app``: the
routes live there, tracked like any module, while ``__main__`` only waits in the server.
An edit to app.py can then be applied in place, unless it changes the statement that is
running the server (it would not run again); that edit restarts, and so does any edit
to a script that does not serve itself this way.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import final

from relive._errors import RestartRequired

__all__ = ["RunningScript", "serves_itself"]


def serves_itself(source: str, stem: str) -> bool:
    """Whether ``source`` runs a server on an app imported from itself by name
    (``run("app:app")`` in app.py)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    pattern = re.compile(rf"{re.escape(stem)}:[\w.]+")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        first = node.args[0]
        if (
            name == "run"
            and isinstance(first, ast.Constant)
            and isinstance(first.value, str)
            and pattern.fullmatch(first.value)
        ):
            return True
    return False


@final
class RunningScript:
    """The script run as ``__main__``: which of its edits the served app can take.

    Attributes:
        path: The script's real path.
        served: Whether it serves an app imported from itself (see :func:`serves_itself`).
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.realpath(path)
        self._name = os.path.basename(path)
        self._source = Path(self.path).read_text(encoding="utf-8")
        self.served = serves_itself(self._source, Path(path).stem)

    def check(self, paths: set[str]) -> None:
        """Raise ``RestartRequired`` when the edit to the script (if in ``paths``) cannot
        be applied in place: it does not serve itself, or the running statement changed."""
        if self.path not in paths:
            return
        if not self.served:
            raise RestartRequired(f"{self._name} changed and it is the running script")
        try:
            new = Path(self.path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return  # the engine reports an unreadable file
        running = self._running_statement()
        if running is None or _unchanged(running, new):
            return
        raise RestartRequired(
            "the statement running the server changed",
            path=self.path,
            lineno=running.lineno,
            line=ast.get_source_segment(self._source, running, padded=False),
        )

    def applied(self) -> None:
        """Remember the script's text as applied (after a successful reload)."""
        with contextlib.suppress(OSError, UnicodeDecodeError):  # the engine reports it
            self._source = Path(self.path).read_text(encoding="utf-8")

    def _running_statement(self) -> ast.stmt | None:
        """The top-level statement of the script that the main thread is running."""
        frame = sys._current_frames().get(threading.main_thread().ident or -1)
        lineno = _module_line(frame, self.path)
        if lineno is None:
            return None
        try:
            tree = ast.parse(self._source)
        except SyntaxError:
            return None
        for node in tree.body:
            if node.lineno <= lineno <= (node.end_lineno or node.lineno):
                return node
        return None


def _module_line(frame: FrameType | None, path: str) -> int | None:
    while frame is not None:
        code = frame.f_code
        if code.co_name == "<module>" and os.path.realpath(code.co_filename) == path:
            return frame.f_lineno
        frame = frame.f_back
    return None


def _unchanged(statement: ast.stmt, new_source: str) -> bool:
    try:
        tree = ast.parse(new_source)
    except SyntaxError:
        return True  # the engine reports the syntax error and changes nothing
    dump = ast.dump(statement)
    return any(ast.dump(node) == dump for node in tree.body)
