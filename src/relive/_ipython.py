"""``%load_ext relive``: edits applied before each IPython or Jupyter cell.

A ``pre_run_cell`` hook hands what changed to the engine (or what a file watcher queued
since the last cell), names the user imported into the notebook follow the edit, and a
broken edit is one short message, never a failed cell.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, final

from relive._engine import Engine, Report, get_engine
from relive._errors import ReloadError, RestartRequired
from relive._filewatch import Batch, FileWatcher
from relive._hints import instance_hints
from relive._names import ImportedNames
from relive._output import (
    Applied,
    Console,
    Formatter,
    PendingErrors,
    Rejected,
    RestartNeeded,
    relative,
)
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
        restart = "the kernel" if hasattr(shell, "kernel") else "IPython"
        self.console = Console(formatter=Formatter(front="notebook", restart=restart))
        self.imported = ImportedNames()
        self.watcher: CellWatcher | None = None
        self.last_report: Report | None = None
        self.last_applied: float | None = None
        self.last_followed: list[str] = []
        self._pending = PendingErrors(lambda path: bool(self.engine.changed_modules([path])))
        self._shown: set[tuple[str, str | None]] = set()
        self._lock = threading.RLock()  # the live watcher's thread and the shell's

    @property
    def verbose(self) -> bool:
        """Whether each reload is reported with the names it changed, not only errors."""
        return self.console.verbose

    @verbose.setter
    def verbose(self, value: bool) -> None:
        self.console.verbose = value

    @property
    def errors(self) -> dict[str, ReloadError]:
        """The edits that could not be applied, by file, until the file is good again."""
        return {error.path: error for error in self._pending.errors() if error.path}

    # -- installation ------------------------------------------------------------------

    def install(self) -> None:
        """Register the cell hooks and the ``%relive`` magic."""
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)
        self.shell.magics_manager.register_function(self.magic, "line", MAGIC)
        history = self.shell.history_manager
        for source in history.input_hist_parsed if history is not None else ():
            self.imported.record(source, self.shell.user_ns)  # imports made before loading
        self._switch_autoreload_off()

    def _switch_autoreload_off(self) -> None:
        """Both would reload the same modules, half-applying each other's edits."""
        if _autoreload_on(self.shell):
            _autoreload_off(self.shell)
            self.console.warn(
                "switched %autoreload off: relive applies the edits now"
                " (both would reload the same modules)"
            )

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
        self._switch_autoreload_off()
        watcher = self.watcher
        if watcher is None:
            self._guarded(None)
        elif paths := watcher.take():
            self._guarded(paths)

    def post_run_cell(self, result: ExecutionResult) -> None:
        """After a cell: record its ``from`` imports; watch the modules it imported."""
        try:
            source = self._cell_source(result.info)
            with self._lock:
                self.imported.record(source, self.shell.user_ns)
            if self.watcher is not None:
                self.watcher.track_new_modules()
        except Exception:
            logger.exception("relive: internal error after the cell, please report it")

    def _cell_source(self, info: ExecutionInfo | None) -> str:
        """The cell as Python: IPython >= 9.4 keeps it on `info`, before that it is redone."""
        if info is None or not info.raw_cell:
            return ""
        transformed = getattr(info, "transformed_cell", None)  # IPython >= 9.4
        if transformed is None:
            transformed = self.shell.transform_cell(info.raw_cell)  # type: ignore[no-untyped-call]
        return str(transformed or info.raw_cell)

    def _guarded(self, paths: Collection[str] | None) -> None:
        try:
            self.apply(paths)
        except Exception:
            logger.exception("relive: internal error, please report it; nothing was applied")

    # -- applying -------------------------------------------------------------------------

    def apply(self, paths: Collection[str] | None = None, *, say: bool = False) -> Report:
        """Apply what changed (``paths`` only, if given); report errors, never raise them.
        What was applied is said when verbose, when it fixed a refused edit, or ``say``."""
        with self._lock:
            report, errors = self.engine.apply_changes(paths)
            fixed, recovered = self._pending.settle(report, errors)
            for error in errors:
                if error.path is None:
                    self._say_error(error)  # nothing to wait for: said once
            self._show_errors()
            for event in fixed:
                self.console.emit(event)
            if report:
                self._applied(report, say or recovered)
            return report

    def _applied(self, report: Report, say: bool = False) -> None:
        self.last_report = report
        self.last_applied = time.time()
        self.last_followed = self.imported.follow(report.reloaded, self.shell.user_ns)
        if self.verbose or say:
            self.console.emit(Applied(report, tuple(self.last_followed)))
        for note in instance_hints(report):
            self.console.emit(note)

    def _show_errors(self) -> None:
        """Say each pending error once (a cell after a broken save must not repeat it)."""
        keys = {(str(error), error.line): error for error in self._pending.errors()}
        for key, error in keys.items():
            if key not in self._shown:
                self._say_error(error)
        self._shown = set(keys)

    def _say_error(self, error: ReloadError) -> None:
        self.console.emit(_event(error))

    def _describe(self, error: ReloadError) -> str:
        return self.console.formatter.render(_event(error))

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
        """``%relive [on|off|now|watch|live|nowatch|verbose|quiet]``; alone: the status.
        Each command says in one line what it did."""
        command = line.strip().lower()
        if command in ("", "status"):
            print(self.status())
        elif command in ("on", "off"):
            self.enabled = command == "on"
            self.console.warn(self._mode())
        elif command == "now":
            self._now()
        elif command in ("watch", "live"):
            self._start_watching_or_say(live=command == "live")
        elif command == "nowatch":
            self.stop_watching()
            self.console.warn(self._mode())
        elif command in ("verbose", "quiet"):
            self.verbose = command == "verbose"
            self.console.warn(
                "verbose: each reload says which names it patched, added and removed"
                if self.verbose
                else "quiet: only errors are reported"
            )
        else:
            from IPython.core.error import UsageError

            raise UsageError(f"unknown %relive command {line.strip()!r}\n{USAGE}")

    def _now(self) -> None:
        """``%relive now``: apply at once; say what was applied, or the pending errors, or
        that nothing changed."""
        if self.watcher is not None:
            self.watcher.take()
        self._shown.clear()  # asked for: say the pending errors again
        report = self.apply(say=True)
        if not report and not self._pending.errors():
            self.console.warn("nothing changed")

    def _start_watching_or_say(self, *, live: bool) -> None:
        try:
            self.start_watching(live=live)
        except OSError as exc:
            self.console.warn(f"cannot watch the files ({exc}); checking them before each cell")
            return
        self.console.warn(self._mode())

    def status(self) -> str:
        """What ``%relive`` prints: mode, what is tracked, the last reload, pending errors."""
        lines = [f"relive: {self._mode()}"]
        modules = self.engine.tracked_modules()
        directories = sorted({os.path.dirname(tracked.path) for tracked in modules})
        shown = ", ".join(_short(directory) for directory in directories[:5])
        more = f" and {len(directories) - 5} more" if len(directories) > 5 else ""
        count = len(modules)
        lines.append(
            f"tracked: {count} module{'' if count == 1 else 's'}"
            + (f" in {shown}{more}" if directories else "")
        )
        if self.last_report is not None and self.last_applied is not None:
            at = time.strftime("%H:%M:%S", time.localtime(self.last_applied))
            applied = self.console.formatter.applied(self.last_report)
            lines.append(f"last applied at {at}: {applied}")
            if self.last_followed:
                lines.append(f"    names updated: {', '.join(self.last_followed)}")
        else:
            lines.append("last applied: nothing yet")
        for error in self._pending.errors():
            lines.append(f"pending error: {self._describe(error)}")
        return "\n".join(lines)

    def _mode(self) -> str:
        if not self.enabled:
            return "off: edits are not applied (%relive on to resume)"
        watcher = self.watcher
        if watcher is None:
            return "on: tracked files are checked before each cell"
        if watcher.live:
            return (
                f"live: each save is applied at once, even while a cell runs; {watcher.describe()}"
            )
        return f"watching: saved files are applied before the next cell; {watcher.describe()}"


def _event(error: ReloadError) -> RestartNeeded | Rejected:
    return RestartNeeded(error) if isinstance(error, RestartRequired) else Rejected(error)


def _short(directory: str) -> str:
    """A directory relative to the current one when under it (``.``: the current one)."""
    return "." if directory == os.getcwd() else relative(directory)


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


def _autoreload_off(shell: InteractiveShell) -> None:
    """What ``%autoreload off`` does."""
    magics = shell.magics_manager.registry.get("AutoreloadMagics")
    reloader = getattr(magics, "_reloader", None)
    if reloader is not None:
        reloader.enabled = False


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
        Console().warn(self.MESSAGE)

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
        Console().warn(inert.MESSAGE)
        return
    reloader = NotebookReloader(ipython)
    reloader.install()
    reloader.console.warn(
        "on: edited modules are applied before each cell (%relive for the status and commands)"
    )


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """Remove relive from a shell (``%unload_ext relive``): hooks, magic and watcher."""
    owner = _owner(ipython)
    if isinstance(owner, NotebookReloader):
        owner.uninstall()
    elif isinstance(owner, _Disabled):
        owner.uninstall(ipython)
