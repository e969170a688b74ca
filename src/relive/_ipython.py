"""``%load_ext relive``: edits applied before each IPython or Jupyter cell.

A ``pre_run_cell`` hook hands what changed to the engine (or what a file watcher queued
since the last cell), names the user imported into the notebook follow the edit, and a
broken edit is one short message, never a failed cell.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, final

from relive._engine import Engine, Report, get_engine
from relive._errors import ReloadError, RestartRequired
from relive._filewatch import Batch, FileWatcher
from relive._names import ImportedNames
from relive._switch import disabled
from relive._tracker import TrackedModule

if TYPE_CHECKING:
    from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult, InteractiveShell

__all__ = [
    "CellWatcher",
    "NotebookReloader",
    "installed",
    "load_ipython_extension",
    "unload_ipython_extension",
]

logger = logging.getLogger("relive")

MAGIC = "relive"
USAGE = """\
%relive            what is tracked, what was applied last, any pending error
%relive on | off   apply edits before each cell (the default) | stop applying them
%relive now        apply edits now
%relive watch      watch the files; apply what was saved before the next cell
%relive live       watch the files; apply each save at once, even while a cell runs
%relive nowatch    stop watching; check the tracked files before each cell again
%relive verbose    say what each reload did (quiet: only errors, the default)"""

_MISSING: Any = object()


@final
class CellWatcher:
    """Collects the files saved between cells, for the next cell to apply.

    The pre-cell check then costs one look at a set, however many modules are imported.
    In live mode ``on_saved`` is called on the watcher's thread after each batch, to apply
    it at once, even while a cell runs. Modules whose directory is too large to watch (a
    home directory, the file system's root) are checked before each cell instead.
    """

    def __init__(self, engine: Engine, *, on_saved: Callable[[], object] | None = None) -> None:
        self.engine = engine
        self._on_saved = on_saved
        self._pending: set[str] = set()
        self._unwatched: set[str] = set()
        self._lock = threading.Lock()
        self._files: FileWatcher | None = None

    @property
    def live(self) -> bool:
        """Whether saves are applied as they arrive (not before the next cell)."""
        return self._on_saved is not None

    def start(self) -> None:
        """Watch the directories of the tracked modules.

        Raises:
            OSError: No file watching backend could start.
        """
        files = FileWatcher((), self._receive, name="relive-notebook")
        files.start()
        self._files = files
        self.engine.track_new_modules()
        self._watch(self.engine.tracked_modules())

    def stop(self) -> None:
        """Stop watching (idempotent)."""
        files, self._files = self._files, None
        if files is not None:
            files.stop()

    def describe(self) -> str:
        """One line: what is watched, and how."""
        files = self._files
        return files.describe() if files is not None else "not watching"

    def pending(self) -> frozenset[str]:
        """The files saved since the last :meth:`take` (a copy)."""
        with self._lock:
            return frozenset(self._pending)

    def take(self) -> set[str]:
        """The files saved since the last call, and the unwatched ones (to check)."""
        if not self._pending and not self._unwatched:
            return set()
        with self._lock:
            paths, self._pending = self._pending, set()
        return paths | self._unwatched

    def track_new_modules(self) -> None:
        """Watch the modules imported since the last call (and check them once)."""
        added = self.engine.track_new_modules()
        if added:
            self._watch(added)
            with self._lock:  # saved between their import and now
                self._pending.update(tracked.path for tracked in added)

    def _watch(self, modules: Iterable[TrackedModule]) -> None:
        files = self._files
        if files is None:
            return
        paths = {tracked.path for tracked in modules}
        for directory in sorted({os.path.dirname(path) for path in paths}):
            if _watchable(directory):
                files.add_root(directory)
        self._unwatched.update(path for path in paths if not _watchable(os.path.dirname(path)))

    def _receive(self, batch: Batch) -> None:
        paths = {os.path.realpath(path) for path in batch.changed | batch.removed}
        with self._lock:
            self._pending |= paths
        if self._on_saved is not None:
            self._on_saved()


def _watchable(directory: str) -> bool:
    path = Path(directory)
    return path not in (Path(path.anchor), Path.home())


# ---------------------------------------------------------------------------------------
# The extension


@final
class NotebookReloader:
    """What ``%load_ext relive`` installs in a shell: the hooks, the magic, their state.

    Attributes:
        engine: The engine applying the edits.
        enabled: Whether edits are applied before each cell (``%relive on``/``off``).
        verbose: Whether each reload is reported, not only errors.
        imported: The names imported into the notebook, which follow edits.
        watcher: The file watcher, when ``%relive watch`` or ``live`` started one.
        last_report: The last reload that changed something.
        errors: The edits that could not be applied, by file, until a good save.
    """

    def __init__(self, shell: InteractiveShell, *, engine: Engine | None = None) -> None:
        self.shell = shell
        self.engine = engine or get_engine()
        self.enabled = True
        self.verbose = False
        self.imported = ImportedNames()
        self.watcher: CellWatcher | None = None
        self.last_report: Report | None = None
        self.last_applied: float | None = None
        self.last_followed: list[str] = []
        self.errors: dict[str, ReloadError] = {}
        self._shown: set[tuple[str, str | None]] = set()
        self._lock = threading.RLock()  # the live watcher's thread and the shell's

    # -- installation ------------------------------------------------------------------

    def install(self) -> None:
        """Register the cell hooks and the ``%relive`` magic."""
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)
        self.shell.magics_manager.register_function(self.magic, "line", MAGIC)
        history = self.shell.history_manager
        for source in history.input_hist_parsed if history is not None else ():
            self.imported.record(source, self.shell.user_ns)  # imports made before loading
        if _autoreload_on(self.shell):
            _say("%autoreload is on too and would reload the same modules: %autoreload off")

    def uninstall(self) -> None:
        """Remove the hooks and the magic; stop the watcher."""
        self.stop_watching()
        for event, callback in (
            ("pre_run_cell", self.pre_run_cell),
            ("post_run_cell", self.post_run_cell),
        ):
            if callback in self.shell.events.callbacks[event]:
                self.shell.events.unregister(event, callback)
        _remove_magic(self.shell)

    # -- the hooks ----------------------------------------------------------------------

    def pre_run_cell(self, info: ExecutionInfo | None = None) -> None:
        """Before a cell: apply what changed (or what the watcher queued)."""
        if not self.enabled:
            return
        watcher = self.watcher
        if watcher is None:
            self._guarded(None)
        elif paths := watcher.take():
            self._guarded(paths)

    def post_run_cell(self, result: ExecutionResult) -> None:
        """After a cell: record its ``from`` imports; watch the modules it imported."""
        try:
            info = result.info
            source = (info.transformed_cell or info.raw_cell or "") if info is not None else ""
            with self._lock:
                self.imported.record(source, self.shell.user_ns)
            if self.watcher is not None:
                self.watcher.track_new_modules()
        except Exception:
            logger.exception("relive: internal error after the cell, please report it")

    def _guarded(self, paths: Collection[str] | None) -> None:
        try:
            self.apply(paths)
        except Exception:
            logger.exception("relive: internal error, please report it; nothing was applied")

    # -- applying -------------------------------------------------------------------------

    def apply(self, paths: Collection[str] | None = None) -> Report:
        """Apply what changed (``paths`` only, if given); report errors, never raise them."""
        with self._lock:
            report, errors = self.engine.apply_changes(paths)
            applied = {module.path for module in report.modules}
            for path in list(self.errors):
                if path in applied or not self.engine.changed_modules([path]):
                    del self.errors[path]
            for error in errors:
                if error.path is None:
                    _say(self._describe(error))  # nothing to wait for: said once
                else:
                    self.errors[error.path] = error
            self._show_errors()
            if report:
                self._applied(report)
            return report

    def _applied(self, report: Report) -> None:
        self.last_report = report
        self.last_applied = time.time()
        self.last_followed = self.imported.follow(report.reloaded, self.shell.user_ns)
        if self.verbose:
            followed = self.last_followed
            names = f"; names updated: {', '.join(followed)}" if followed else ""
            _say(f"{report.summary()}{names}")

    def _show_errors(self) -> None:
        """Say each pending error once (a cell after a broken save must not repeat it)."""
        keys = {(str(error), error.line): error for error in self.errors.values()}
        for key, error in keys.items():
            if key not in self._shown:
                _say(self._describe(error))
        self._shown = set(keys)

    def _describe(self, error: ReloadError) -> str:
        where = _short(error.path) if error.path else ""
        if where and error.lineno:
            where += f":{error.lineno}"
        text = f"{where}: {error.message}" if where else error.message
        if isinstance(error, RestartRequired):
            restart = "the kernel" if hasattr(self.shell, "kernel") else "IPython"
            text = f"restart {restart} to use this edit (nothing was applied): {text}"
        else:
            text = f"not applied, the last good code runs: {text}"
        return f"{text}\n    {error.line}" if error.line else text

    # -- watching ---------------------------------------------------------------------

    def start_watching(self, *, live: bool = False) -> None:
        """Watch the files: apply saves before the next cell (``live``: at once)."""
        self.stop_watching()
        watcher = CellWatcher(self.engine, on_saved=self._apply_saved if live else None)
        watcher.start()
        self.watcher = watcher
        self.apply()  # what was saved before the watcher started

    def stop_watching(self) -> None:
        """Stop the watcher, if any: files are checked before each cell again."""
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.stop()

    def _apply_saved(self) -> None:
        """Live mode, on the watcher's thread: apply what was just saved (unless off)."""
        watcher = self.watcher
        if self.enabled and watcher is not None and (paths := watcher.take()):
            self.apply(paths)

    # -- %relive ----------------------------------------------------------------------

    def magic(self, line: str) -> None:
        """``%relive [on|off|now|watch|live|nowatch|verbose|quiet]``; alone: the status."""
        command = line.strip().lower()
        if command in ("", "status"):
            print(self.status())
        elif command in ("on", "off"):
            self.enabled = command == "on"
        elif command == "now":
            if self.watcher is not None:
                self.watcher.take()
            self._shown.clear()  # asked for: say the pending errors again
            report = self.apply()
            if not self.verbose:
                _say(report.summary())
        elif command in ("watch", "live"):
            self._start_watching_or_say(live=command == "live")
        elif command == "nowatch":
            self.stop_watching()
        elif command in ("verbose", "quiet"):
            self.verbose = command == "verbose"
        else:
            from IPython.core.error import UsageError

            raise UsageError(f"unknown %relive command {line.strip()!r}\n{USAGE}")

    def _start_watching_or_say(self, *, live: bool) -> None:
        try:
            self.start_watching(live=live)
        except OSError as exc:
            _say(f"cannot watch the files ({exc}); checking them before each cell")
            return
        if self.verbose and self.watcher is not None:
            _say(self.watcher.describe())

    def status(self) -> str:
        """What ``%relive`` prints: mode, what is tracked, the last reload, pending errors."""
        lines = [f"relive: {self._mode()}"]
        modules = self.engine.tracked_modules()
        directories = sorted({os.path.dirname(tracked.path) for tracked in modules})
        shown = ", ".join(_short(directory) or "." for directory in directories[:5])
        more = f" and {len(directories) - 5} more" if len(directories) > 5 else ""
        count = len(modules)
        lines.append(
            f"tracked: {count} module{'' if count == 1 else 's'}"
            + (f" in {shown}{more}" if directories else "")
        )
        if self.last_report is not None and self.last_applied is not None:
            at = time.strftime("%H:%M:%S", time.localtime(self.last_applied))
            lines.append(f"last applied at {at}: {self.last_report.summary()}")
            if self.last_followed:
                lines.append(f"    names updated: {', '.join(self.last_followed)}")
        else:
            lines.append("last applied: nothing yet")
        for error in self.errors.values():
            lines.append(f"pending error: {self._describe(error)}")
        return "\n".join(lines)

    def _mode(self) -> str:
        state = "on" if self.enabled else "off (%relive on to resume)"
        if self.watcher is None:
            return f"{state}; tracked files are checked before each cell"
        when = "as soon as they are saved" if self.watcher.live else "before the next cell"
        return f"{state}; saved files are applied {when}; {self.watcher.describe()}"


def _say(text: str) -> None:
    print(f"relive: {text}", file=sys.stderr, flush=True)


def _short(path: str | None) -> str:
    """A path relative to the current directory when it is under it."""
    if not path:
        return ""
    cwd = os.getcwd()
    if path == cwd:
        return ""
    return os.path.relpath(path, cwd) if path.startswith(cwd + os.sep) else path


def installed(shell: InteractiveShell) -> NotebookReloader | None:
    """The reloader ``%load_ext relive`` installed in ``shell``, if any."""
    owner = _owner(shell)
    return owner if isinstance(owner, NotebookReloader) else None


def _owner(shell: InteractiveShell) -> object:
    """What installed the ``%relive`` magic: a reloader, the inert extension, or another."""
    magic = shell.magics_manager.magics["line"].get(MAGIC)
    return getattr(magic, "__self__", None)


def _autoreload_on(shell: InteractiveShell) -> bool:
    magics = shell.magics_manager.registry.get("AutoreloadMagics")
    return bool(getattr(getattr(magics, "_reloader", None), "enabled", False))


def _remove_magic(shell: InteractiveShell) -> None:
    shell.magics_manager.magics["line"].pop(MAGIC, None)
    user_magics = shell.magics_manager.user_magics
    if user_magics is not None and MAGIC in vars(user_magics):
        delattr(user_magics, MAGIC)


@final
class _Disabled:
    """The extension under ``RELIVE=0``: a ``%relive`` magic that says so, nothing else."""

    MESSAGE = "disabled by RELIVE=0: edits are not applied in this session"

    def magic(self, line: str) -> None:
        _say(self.MESSAGE)

    def uninstall(self, shell: InteractiveShell) -> None:
        _remove_magic(shell)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Install relive in an IPython shell or Jupyter kernel (``%load_ext relive``).

    Before each cell, the edited modules are applied; ``%relive`` controls it. With
    ``RELIVE=0`` in the environment the extension says so once and stays inert.
    """
    if isinstance(_owner(ipython), NotebookReloader | _Disabled):
        return
    if disabled():
        inert = _Disabled()
        ipython.magics_manager.register_function(inert.magic, "line", MAGIC)
        _say(inert.MESSAGE)
        return
    NotebookReloader(ipython).install()


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """Remove relive from a shell (``%unload_ext relive``): hooks, magic and watcher."""
    owner = _owner(ipython)
    if isinstance(owner, NotebookReloader):
        owner.uninstall()
    elif isinstance(owner, _Disabled):
        owner.uninstall(ipython)
