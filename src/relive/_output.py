"""What relive tells people: typed events, one formatter, one console per front end.

Every front end (``relive run``'s supervisor and worker, ``relive.watch()``, ``%load_ext
relive``, the web servers, the browser overlay) emits the events below instead of printing;
:class:`Formatter` turns each into what people read, so the rules hold in one place: one
line (a rejected edit adds its source line below), ``file:line``, paths relative to the
current directory when under it, and what must be said once said once per program.
Imports nothing of the engine at run time: the supervisor uses it too.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TextIO, final

if TYPE_CHECKING:
    from relive._engine import ModuleReport, Report
    from relive._errors import ReloadError

__all__ = [
    "Applied",
    "Console",
    "Event",
    "Exited",
    "FellBack",
    "Fixed",
    "Formatter",
    "Note",
    "PendingErrors",
    "Rejected",
    "RestartNeeded",
    "Restarting",
    "Watching",
    "default_console",
    "relative",
]

Level = Literal["info", "warn", "detail"]
"""``info``: routine (hidden by quiet); ``warn``: always shown; ``detail``: verbose only."""

Front = Literal["run", "notebook"]


def relative(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the current directory when it is under it, else absolute."""
    text = os.fspath(path)
    try:
        cwd = os.getcwd()
    except OSError:
        return text
    if text.startswith(cwd + os.sep):
        return text[len(cwd) + 1 :]
    return text


@dataclass(frozen=True)
class Applied:
    """An edit was applied in place (``followed``: notebook names that followed it)."""

    report: Report
    followed: tuple[str, ...] = ()
    level: Level = "info"


@dataclass(frozen=True)
class Rejected:
    """An edit was refused; the program runs its last good code."""

    error: ReloadError
    level: Level = "warn"


@dataclass(frozen=True)
class Fixed:
    """A file whose edit was refused is good again, with nothing left to apply."""

    path: str
    level: Level = "warn"


@dataclass(frozen=True)
class RestartNeeded:
    """A valid edit that needs a new process, where relive cannot restart it."""

    error: ReloadError
    level: Level = "warn"


@dataclass(frozen=True)
class Restarting:
    """``relive run`` restarts the program (``reason``: what made it)."""

    reason: str
    level: Level = "info"


@dataclass(frozen=True)
class Exited:
    """The program ended (``code``: its exit code, or minus the signal); ``then``: what
    relive does next."""

    label: str
    code: int
    then: str
    level: Level = "warn"


@dataclass(frozen=True)
class FellBack:
    """The file watcher polls instead of using OS events (``reason``: why, and the way
    out); said once per process."""

    reason: str
    level: Level = "warn"


@dataclass(frozen=True)
class Watching:
    """What is watched, and how (``verbose`` only)."""

    description: str
    level: Level = "detail"


@dataclass(frozen=True)
class Note:
    """Anything else relive says in one line (a server's reloader switched off, ...).

    ``once``: a key; a note with a key already said is not said again in this process.
    """

    text: str
    level: Level = "info"
    once: str | None = None


Event = (
    Applied | Rejected | Fixed | RestartNeeded | Restarting | Exited | FellBack | Watching | Note
)


@final
class Formatter:
    """Renders events as people read them (without the ``relive:`` prefix).

    Args:
        verbose: Say which names each applied edit patched, added and removed.
        front: ``notebook`` words rejections for a cell ("not applied, the last good code
            runs") and restarts for a kernel.
        restart: What to restart, in a notebook: ``the kernel`` or ``IPython``.
    """

    def __init__(
        self, *, verbose: bool = False, front: Front = "run", restart: str = "the kernel"
    ) -> None:
        self.verbose = verbose
        self.front = front
        self.restart = restart

    def render(self, event: Event) -> str:
        """The text of ``event``: one line, or two for an error with its source line."""
        match event:
            case Applied(report, followed):
                return self.applied(report, followed)
            case Rejected(error):
                prefix = "not applied, the last good code runs: " if self.notebook else ""
                return prefix + self.error(error)
            case Fixed(path):
                return f"{relative(path)}: fixed (the last good code is running)"
            case RestartNeeded(error):
                if self.notebook:
                    what = f"restart {self.restart} to use this edit (nothing was applied)"
                    return f"{what}: {self.error(error)}"
                return f"restart required: {self.error(error)}"
            case Restarting(reason):
                return f"restarting: {reason}"
            case Exited(label, code, then):
                return f"{describe_exit(label, code)}; {then}"
            case Watching(description):
                return description
            case FellBack(reason):
                return reason
            case Note(text):
                return text

    @property
    def notebook(self) -> bool:
        """Whether messages are worded for IPython or Jupyter."""
        return self.front == "notebook"

    def error(self, error: ReloadError) -> str:
        """``file:line: message``, then the offending source line, indented."""
        return f"{self.where(error)}\n    {error.line}" if error.line else self.where(error)

    def where(self, error: ReloadError) -> str:
        """``file:line: message`` in one line, the path relative to the current directory."""
        if error.path is None:
            return error.message
        where = relative(error.path)
        if error.lineno is not None:
            where += f":{error.lineno}"
        return f"{where}: {error.message}"

    def applied(self, report: Report, followed: Iterable[str] = ()) -> str:
        """``a.py: 1 patched; b.py: updated in 1.2 ms``; verbose: the names too."""
        if not report.modules:
            return "nothing changed"
        body = "; ".join(self.module(module) for module in report.modules)
        processes: int = getattr(report, "processes", 1)  # relive run: the whole program
        where = f" in {processes} processes" if processes > 1 else ""
        text = f"{body}{where} in {report.duration * 1000:.1f} ms"
        names = ", ".join(followed)
        return f"{text}; names updated: {names}" if names and self.verbose else text

    def module(self, module: ModuleReport) -> str:
        """One module's part of the line: what changed in it (verbose: which names)."""
        parts = []
        for label, names in (
            ("patched", module.patched),
            ("added", module.added),
            ("removed", module.removed),
        ):
            if names:
                listed = f" ({', '.join(names)})" if self.verbose else ""
                parts.append(f"{len(names)} {label}{listed}")
        if module.executed:
            count = len(module.executed)
            lines = f" (line {', '.join(map(str, module.executed))})" if self.verbose else ""
            parts.append(f"{count} statement{'s' if count != 1 else ''} run{lines}")
        what = ", ".join(parts) or ("updated" if module.dependent else "line numbers updated")
        return f"{relative(module.path)}: {what}"


def describe_exit(label: str, code: int) -> str:
    """``app.py exited with code 1`` / ``app.py was killed by SIGKILL``."""
    if code >= 0:
        return f"{label} exited with code {code}"
    import signal

    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"{label} was killed by {name}"


_COLOURS: dict[Level, str] = {"info": "36", "warn": "33", "detail": "2"}


@final
class Console:
    """Where one front end's events go: ``relive: text`` lines on a stream (stderr by
    default, colour only on a terminal). One per program (the worker's is shared by its
    watcher and servers), so a note keyed ``once`` is said once per program.

    Args:
        quiet: Say only what must be known (``warn``): errors, exits.
        verbose: Also say ``detail`` events, and the names each edit changed.
        stream: Where lines go (default: ``sys.stderr`` at the time of each line).
        formatter: How events read (default: one for ``verbose``).
    """

    def __init__(
        self,
        *,
        quiet: bool = False,
        verbose: bool = False,
        stream: TextIO | None = None,
        formatter: Formatter | None = None,
    ) -> None:
        self.quiet = quiet
        self.formatter = formatter or Formatter(verbose=verbose)
        self._stream = stream
        self._lock = threading.Lock()
        self._said: set[str] = set()  # the keys of the notes said once

    @property
    def verbose(self) -> bool:
        """Whether ``detail`` events and the names of each edit are said."""
        return self.formatter.verbose

    @verbose.setter
    def verbose(self, value: bool) -> None:
        self.formatter.verbose = value

    def shows(self, level: Level) -> bool:
        """Whether an event of ``level`` is said."""
        if level == "detail":
            return self.verbose
        return level == "warn" or not self.quiet

    def emit(self, event: Event) -> None:
        """Say ``event`` (unless its level is hidden, or it is a note said before)."""
        if not self.shows(event.level):
            return
        once = event.once if isinstance(event, Note) else None
        once = "fell back to polling" if isinstance(event, FellBack) else once
        if once is not None:
            with self._lock:
                if once in self._said:
                    return
                self._said.add(once)
        self.write(self.formatter.render(event), event.level)

    def write(self, text: str, level: Level = "info") -> None:
        """Write ``text`` as ``relive: text`` (the prefix coloured on a terminal)."""
        stream = self._stream or sys.stderr
        colour = stream.isatty() and not os.environ.get("NO_COLOR")
        prefix = f"\033[{_COLOURS[level]}mrelive:\033[0m" if colour else "relive:"
        with self._lock:
            print(f"{prefix} {text}", file=stream, flush=True)

    # Shorthands for notes.
    def info(self, text: str) -> None:
        """A routine note; hidden by quiet."""
        self.emit(Note(text))

    def warn(self, text: str) -> None:
        """A note the user must see."""
        self.emit(Note(text, "warn"))

    def detail(self, text: str) -> None:
        """A note only verbose shows."""
        self.emit(Note(text, "detail"))


_default: Console | None = None
_default_lock = threading.Lock()


def default_console() -> Console:
    """The process's console for what has no front end of its own (the file watcher's
    fallback to polling, a loop body): what it says once, it says once per process."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Console()
        return _default


@final
class PendingErrors:
    """The files whose last edit was refused, until they are good again.

    Args:
        differs: Whether a file still differs from the code its module runs (the
            engine's ``changed_modules``); a refused file that no longer does is fixed.
    """

    def __init__(self, differs: Callable[[str], bool]) -> None:
        self._differs = differs
        self._errors: dict[str, ReloadError] = {}
        self._lock = threading.Lock()

    def errors(self) -> list[ReloadError]:
        """The pending errors, one per file."""
        with self._lock:
            return list(self._errors.values())

    def clear(self) -> None:
        """Forget every pending error."""
        with self._lock:
            self._errors.clear()

    def settle(self, report: Report, errors: Iterable[ReloadError]) -> tuple[list[Fixed], bool]:
        """After an attempt: note ``errors``. The files pending before that are good now
        and were not applied (``report``) are :class:`Fixed`; the second value says
        whether ``report`` applied a file that was pending (its line must then be said,
        even when quiet: the terminal must not end on the old error)."""
        applied = {module.path for module in report.modules}
        errors = list(errors)
        failing = {error.path for error in errors if error.path is not None}
        fixed: list[Fixed] = []
        recovered = False
        with self._lock:
            for path in list(self._errors):
                if path in failing:
                    continue
                if path in applied or not self._differs(path):
                    del self._errors[path]
                    recovered = recovered or path in applied
                    if path not in applied:
                        fixed.append(Fixed(path))
            for error in errors:
                if error.path is not None:
                    self._errors[error.path] = error
        return fixed, recovered
