"""Live code on a Dask cluster: edits of local source reach every worker, between tasks.

``relive.dask.watch(client)`` watches the client's source with relive's watcher and ships
each edit as module name → text to every worker (a WorkerPlugin applies it with relive's
engine), in two phases over ``client.run``: every worker and the client apply the edit
behind a closed task gate and vote; then all commit, or all roll back. Needs
``relive[dask]`` (``distributed``); importing relive alone never imports Dask.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, final

from relive._engine import Engine, Report, get_engine
from relive._errors import ReloadError, RestartRequired
from relive._output import Console, Note, relative
from relive._switch import disabled
from relive._watcher import Watcher, Wiring, watch_wired

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["DaskWatch", "watch"]


@final
class DaskWatch:
    """Keeps a Dask cluster's code equal to the client's source. Use [`watch`][relive.dask.watch].

    Attributes:
        last_report: What the last applied edit did on the client, if any.
        last_error: The last refused edit, if the last one was refused.
        edits: How many edits were applied on the cluster.
        workers: How many workers the last applied edit reached.
    """

    def __init__(
        self,
        client: Client,
        paths: Sequence[str | os.PathLike[str]] = (),
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        quiet: bool = False,
        drain_timeout: float = 30.0,
    ) -> None:
        self.client = client
        self._paths = list(paths)
        self._include = include
        self._exclude = exclude
        self._console = Console(quiet=quiet)
        self._drain_timeout = drain_timeout
        self._engine: Engine | None = None
        self._watcher: Watcher | None = None
        self._lock = threading.Lock()
        self._texts: dict[str, str] = {}  # every text shipped, by module: what newcomers get
        self._baseline: dict[str, str] = {}  # what the modules ran when watching started
        self._version = 0
        self.last_report: Report | None = None
        self.last_error: ReloadError | None = None
        self.edits = 0
        self.workers = 0

    @property
    def running(self) -> bool:
        """Whether edits are being shipped."""
        return self._watcher is not None

    def start(self) -> Self:
        """Register the worker plugin and start watching (inert with ``RELIVE=0``)."""
        if self._watcher is not None or disabled():
            return self
        from relive._integrations.dask_worker import ReliveWorkerPlugin

        if self.client.asynchronous:
            raise TypeError("relive.dask.watch needs a synchronous Client")
        self._engine = get_engine()
        self._engine.track_new_modules()
        self._baseline = {t.name: t.source for t in self._engine.tracked_modules() if t.source}
        # A prepared worker waits for the decision while the slowest one drains its tasks.
        plugin = ReliveWorkerPlugin(
            drain_timeout=self._drain_timeout, decision_timeout=self._drain_timeout + 30.0
        )
        self.client.register_plugin(plugin)
        wiring = Wiring(engine=self._engine, apply=self._apply, console=self._console)
        self._watcher = watch_wired(
            wiring,
            *self._paths,
            include=self._include,
            exclude=self._exclude,
            on_report=_said_by_apply,
        )
        return self

    def stop(self) -> None:
        """Stop watching and unregister the worker plugin (idempotent)."""
        watcher, self._watcher = self._watcher, None
        if watcher is None:
            return
        watcher.stop()
        from relive._integrations.dask_worker import PLUGIN_NAME

        if self.client.status == "running":
            self.client.unregister_worker_plugin(PLUGIN_NAME)  # type: ignore[no-untyped-call]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- one edit -----------------------------------------------------------------------

    def _apply(self, paths: set[str]) -> Report:
        """Ship the edit of ``paths`` to every worker; the watcher reports a refusal."""
        assert self._engine is not None
        engine = self._engine
        texts: dict[str, str] = {}
        for name, text in engine.changed_sources(paths).items():
            if text is None:
                tracked = engine.tracked_module(name)
                raise ReloadError(
                    "the file was deleted or cannot be read; the cluster keeps its last code",
                    path=tracked.path if tracked else None,
                    module=name,
                )
            texts[name] = text
        texts.update(self._applied_elsewhere(paths, texts))
        if not texts:
            return Report()
        with self._lock:
            try:
                return self._commit_everywhere(engine, texts)
            except ReloadError as exc:
                self.last_error = exc
                raise

    def _applied_elsewhere(self, paths: set[str], texts: dict[str, str]) -> dict[str, str]:
        """Saved texts this process already runs but the cluster does not: another front
        end of the client (``%load_ext relive``, ``relive.watch()``) applied them first."""
        assert self._engine is not None
        wanted = {os.path.realpath(path) for path in paths}
        found: dict[str, str] = {}
        for tracked in self._engine.tracked_modules():
            if tracked.source is not None:  # imported since: what it ran when first seen
                self._baseline.setdefault(tracked.name, tracked.source)
            if tracked.path not in wanted or tracked.name in texts or tracked.source is None:
                continue
            known = self._texts.get(tracked.name, self._baseline.get(tracked.name))
            if known is not None and tracked.source != known:
                found[tracked.name] = tracked.source
        return found

    def _commit_everywhere(self, engine: Engine, texts: dict[str, str]) -> Report:
        started = time.perf_counter()
        paths = {name: getattr(engine.tracked_module(name), "path", None) for name in texts}
        round_ = _Round(self.client, self._version + 1, texts, paths)
        try:
            report = engine.apply_sources(texts, confirm=round_.prepare)
        except ReloadError:
            round_.finish(commit=False)
            raise
        self._version += 1
        self._texts.update(texts)
        workers = round_.finish(commit=True)
        current = {"version": self._version, "texts": self._texts}
        self.client.set_metadata(_metadata_key(), current)  # type: ignore[no-untyped-call]
        workers += round_.catch_up(self._texts)
        elapsed = time.perf_counter() - started
        recovering = self.last_error is not None  # said even when quiet, as relive.watch does
        self.last_report, self.last_error = report, None
        self.edits += 1
        self.workers = workers
        here = [self._console.formatter.module(module) for module in report.modules]
        here += [f"{relative(paths[n] or n)}: updated" for n in _others(texts, report)]
        plural = "s" if workers != 1 else ""
        line = f"{'; '.join(here)} on {workers} worker{plural} in {elapsed * 1000:.0f} ms"
        self._console.emit(Note(line, "warn" if recovering else "info"))
        return report


def _said_by_apply(report: Report) -> None:
    """The watcher's report callback: the line was said with the workers' count."""


def _others(texts: dict[str, str], report: Report) -> list[str]:
    """The modules shipped that this process already ran (another front end applied them)."""
    return sorted(set(texts) - set(report.reloaded))


def _metadata_key() -> list[str]:
    from relive._integrations.dask_worker import METADATA_KEY

    return METADATA_KEY


class _Round:
    """The two phases of one edit across the workers (the client is the coordinator)."""

    def __init__(
        self, client: Client, version: int, texts: dict[str, str], paths: dict[str, str | None]
    ) -> None:
        self.client = client
        self.version = version
        self.texts = texts
        self.paths = paths
        self.prepared: list[str] = []
        self.asked: set[str] = set()

    def prepare(self) -> bool:
        """Phase one on every worker; raises the first refusal (the client's engine then
        rolls back its own tentative edit)."""
        from relive._integrations.dask_worker import prepare_edit

        answers = self.client.run(prepare_edit, self.version, self.texts, on_error="return")
        self.asked = set(answers)
        refusal: tuple[str, dict[str, Any]] | None = None
        for address, answer in sorted(answers.items()):
            if isinstance(answer, BaseException):
                continue  # the worker is gone; a restarted one catches up when it joins
            if answer.get("ok"):
                self.prepared.append(address)
            elif refusal is None:
                refusal = (address, answer)
        if refusal is not None:
            raise self._error(*refusal)
        return True

    def finish(self, *, commit: bool) -> int:
        """Phase two on the workers that prepared; returns how many committed."""
        if not self.prepared:
            return 0
        from relive._integrations.dask_worker import decide_edit

        answers = self.client.run(
            decide_edit, self.version, commit, workers=self.prepared, on_error="return"
        )
        return sum(1 for answer in answers.values() if isinstance(answer, dict) and answer["ok"])

    def catch_up(self, texts: dict[str, str]) -> int:
        """Workers that joined during the edit get the current texts; returns how many."""
        workers = self.client.ncores()  # type: ignore[no-untyped-call]
        newcomers = sorted(set(workers) - self.asked)
        if not newcomers:
            return 0
        from relive._integrations.dask_worker import catch_up

        answers = self.client.run(
            catch_up, self.version, texts, workers=newcomers, on_error="return"
        )
        return sum(1 for answer in answers.values() if isinstance(answer, dict) and answer["ok"])

    def _error(self, address: str, answer: dict[str, Any]) -> ReloadError:
        module = answer.get("module")
        kind = RestartRequired if answer.get("restart") else ReloadError
        return kind(
            f"{answer['message']} (on worker {address}; no worker was changed)",
            path=self.paths.get(module) if isinstance(module, str) else None,
            lineno=answer.get("lineno"),
            line=answer.get("line"),
            module=module,
        )


def watch(
    client: Client,
    *paths: str | os.PathLike[str],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    quiet: bool = False,
    drain_timeout: float = 30.0,
) -> DaskWatch:
    """Apply every saved edit of the client's source to this process and every worker.

    Workers match modules by name (they may run their own copy of the files, on other
    machines). An edit is applied on every worker between tasks, or on none: a refusal
    anywhere is reported once, here, as a one-line ``ReloadError``. Workers that join
    later get the current code before their first task. Returns the started handle (a
    context manager; ``.stop()`` stops watching and unregisters the worker plugin).
    With ``RELIVE=0`` in the environment it does nothing.

    Args:
        client: A connected ``distributed.Client`` (synchronous).
        paths: Directories to watch instead of those of the tracked modules.
        include: Extra glob patterns of files to watch besides ``*.py``.
        exclude: Glob patterns of files to ignore.
        quiet: Say nothing about applied edits (refusals are still reported).
        drain_timeout: Seconds an edit waits for a worker's running tasks to finish
            before it is refused.
    """
    return DaskWatch(
        client,
        paths,
        include=include,
        exclude=exclude,
        quiet=quiet,
        drain_timeout=drain_timeout,
    ).start()
