"""Top-level statements running now: the script's main loop or ``app.run()``, an import.

A module whose top-level code is still running (``sys.exit(main())`` in the script, a
server's ``app.run()``, a module being imported in another thread) goes on with the code
it was started with: the statement running cannot run again in place, and the ones after
it have not run yet. An edit of those needs a restart; the statements before are edited
as in any module.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

from relive._diff import Action, Step
from relive._errors import RestartRequired
from relive._heap import thread_frames
from relive._reparse import source_lines
from relive._tracker import TrackedModule

__all__ = ["ModuleFrames", "RunningStatement", "check_plan", "held_from", "restart_for"]


@dataclass(frozen=True)
class RunningStatement:
    """The top-level statement a module's code is running, in the text it was started with."""

    lineno: int
    dump: str  # ``ast.dump`` of the statement: its positions aside, what it does
    line: str  # its first line, stripped


class ModuleFrames:
    """The lines each module's top-level code is at, in every thread, taken once."""

    def __init__(self) -> None:
        self._lines: dict[int, int] = {}  # id(module namespace) -> smallest line running
        for frame in thread_frames(this_thread=True):
            current: FrameType | None = frame
            while current is not None:
                if current.f_code.co_name == "<module>":
                    key = id(current.f_globals)
                    line = current.f_lineno or 0
                    self._lines[key] = min(line, self._lines.get(key, line))
                current = current.f_back

    def running(
        self, namespace: dict[str, object], tracked: TrackedModule
    ) -> RunningStatement | None:
        """The statement of ``tracked`` whose top-level code (namespace ``namespace``) is
        running now; None when its top-level code has finished.

        Raises:
            RestartRequired: It is running, from a text relive does not know.
        """
        lineno = self._lines.get(id(namespace))
        if lineno is None:
            return None
        if tracked.started is None:  # changed on disk before relive first saw it
            raise RestartRequired(
                "its top-level code is running, and its file changed before relive saw it",
                path=tracked.path,
                module=tracked.name,
            )
        try:
            body = ast.parse(tracked.started).body
        except SyntaxError:
            return None
        lines = source_lines(tracked.started)
        for node in body:
            if node.lineno <= lineno <= (node.end_lineno or node.lineno):
                line = lines[node.lineno - 1].strip() if node.lineno <= len(lines) else ""
                dump = ast.dump(node, annotate_fields=False, include_attributes=False)
                return RunningStatement(node.lineno, dump, line)
        return None


def held_from(
    steps: Sequence[Step], running: RunningStatement | None, tracked: TrackedModule
) -> int:
    """The index of the first step that must not run (the running statement); past the
    end when none is running.

    Raises:
        RestartRequired: The running statement itself was edited.
    """
    if running is None:
        return len(steps)
    for index, step in enumerate(steps):
        if step.new.dump == running.dump:
            return index
    raise restart_for(running, tracked)


def check_plan(
    steps: Sequence[Step], running: RunningStatement | None, tracked: TrackedModule
) -> None:
    """Raise before anything runs (before hooks included) when the plan edits the running
    statement or one after it.

    Raises:
        RestartRequired: It does.
    """
    held = held_from(steps, running, tracked)
    for step in steps[held:]:
        if step.action is not Action.KEEP and running is not None:
            raise restart_for(running, tracked, step)


def restart_for(
    running: RunningStatement, tracked: TrackedModule, step: Step | None = None
) -> RestartRequired:
    """The restart for an edit of the statement running now (``step`` None), or one that
    would run ``step``: the running statement again, or one after it (not run yet)."""
    if step is None or step.new.dump == running.dump:
        what = "changed" if step is None else "would have to run again"
        return RestartRequired(
            f"the statement running now {what}; it cannot run again in place",
            path=tracked.path,
            lineno=running.lineno,
            line=running.line,
            module=tracked.name,
        )
    return RestartRequired(
        f"this statement comes after the one running now (line {running.lineno}: "
        f"{running.line}); it cannot run before that one ends",
        path=tracked.path,
        lineno=step.new.lineno,
        line=source_lines(step.new.text)[0].strip(),
        module=tracked.name,
    )
