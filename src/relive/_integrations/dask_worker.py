"""The worker side of relive.dask: a Dask WorkerPlugin that applies shipped source text.

The client sends each edit as module name → text in two phases (``client.run``):
:func:`prepare_edit` closes the worker's task gate, applies the texts with the engine and
votes, holding the transaction open; :func:`decide_edit` commits or rolls it back and opens
the gate. Tasks run between edits, never across one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from distributed import Worker
from distributed.diagnostics.plugin import WorkerPlugin

from relive._engine import Engine, get_engine
from relive._errors import ReloadError

__all__ = [
    "METADATA_KEY",
    "PLUGIN_NAME",
    "ReliveWorkerPlugin",
    "TaskGate",
    "catch_up",
    "decide_edit",
    "error_record",
    "prepare_edit",
]

logger = logging.getLogger("relive")

PLUGIN_NAME = "relive-dask"
METADATA_KEY = ["relive-dask", "texts"]  # scheduler metadata: {"version", "texts"}

Result = dict[str, Any]  # what a worker answers the client (plain data, pickled by Dask)


class TaskGate:
    """Tasks pass together; an edit closes the gate: it waits for the running tasks to
    finish and holds new ones until it opens again (one edit at a time)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._running = 0
        self._closed = False
        self._editor = threading.Lock()

    def enter(self) -> None:
        """A task starts (waits while an edit holds the gate)."""
        with self._condition:
            self._condition.wait_for(lambda: not self._closed)
            self._running += 1

    def leave(self) -> None:
        """A task ended."""
        with self._condition:
            self._running -= 1
            if not self._running:
                self._condition.notify_all()

    def close(self, timeout: float) -> bool:
        """Hold new tasks and wait for the running ones; False if they outlast ``timeout``
        seconds (the gate is then open again)."""
        if not self._editor.acquire(timeout=timeout):
            return False
        with self._condition:
            self._closed = True
            if self._condition.wait_for(lambda: not self._running, timeout):
                return True
            self._closed = False
            self._condition.notify_all()
        self._editor.release()
        return False

    def open(self) -> None:
        """Let tasks run again (after :meth:`close` returned True)."""
        with self._condition:
            self._closed = False
            self._condition.notify_all()
        self._editor.release()


def error_record(exc: BaseException) -> Result:
    """A refusal as plain data (the client rebuilds a ReloadError at its own path)."""
    if isinstance(exc, ReloadError):
        return {
            "ok": False,
            "message": exc.message,
            "lineno": exc.lineno,
            "line": exc.line,
            "module": exc.module,
            "restart": type(exc).__name__ == "RestartRequired",
        }
    return {"ok": False, "message": f"{type(exc).__name__}: {exc}", "lineno": None}


class _Edit:
    """One edit on one worker, run in its own thread: close the gate, apply, vote, wait
    for the decision, commit or roll back, open the gate."""

    def __init__(
        self,
        plugin: ReliveWorkerPlugin,
        version: int,
        texts: dict[str, str],
        *,
        catching_up: bool = False,
    ) -> None:
        self.plugin = plugin
        self.version = version
        self.texts = texts
        self.catching_up = catching_up  # a newer version found behind the gate wins
        self.voted: concurrent.futures.Future[Result] = concurrent.futures.Future()
        self.decision: concurrent.futures.Future[bool] = concurrent.futures.Future()
        self.done: concurrent.futures.Future[Result] = concurrent.futures.Future()

    def run(self) -> None:
        plugin = self.plugin
        if not plugin.gate.close(plugin.drain_timeout):
            refusal = error_record(
                ReloadError(f"tasks still running after {plugin.drain_timeout:g} s")
            )
            self.voted.set_result(refusal)
            self.done.set_result(refusal)
            return
        if self.catching_up and self.version <= plugin.version:
            plugin.gate.open()  # a newer version was applied while this one waited
            self.voted.set_result({"ok": True})
            self.done.set_result({"ok": True, "modules": []})
            return
        try:
            loaded = {name: text for name, text in self.texts.items() if name in sys.modules}
            report = plugin.engine.apply_sources(loaded, confirm=self._confirm)
        except BaseException as exc:
            refusal = error_record(exc)
            if not self.voted.done():
                self.voted.set_result(refusal)
            self.done.set_result(refusal)
            if not isinstance(exc, Exception):
                raise
        else:
            plugin.record(self.version, self.texts)
            self.done.set_result({"ok": True, "modules": list(report.reloaded)})
        finally:
            plugin.gate.open()

    def _confirm(self) -> bool:
        self.voted.set_result({"ok": True})
        try:
            return self.decision.result(timeout=self.plugin.decision_timeout)
        except concurrent.futures.TimeoutError:
            logger.warning("relive: no decision from the client: the edit is rolled back")
            return False


class ReliveWorkerPlugin(WorkerPlugin):
    """Keeps a worker's code equal to the client's: applies the current texts when the
    worker joins and each edit the client ships, between tasks.

    Args:
        drain_timeout: Seconds an edit waits for the running tasks before it is refused.
        decision_timeout: Seconds a prepared worker waits for the client's decision
            before it rolls the edit back.
    """

    name = PLUGIN_NAME
    idempotent = False

    def __init__(self, *, drain_timeout: float = 30.0, decision_timeout: float = 60.0) -> None:
        self.drain_timeout = drain_timeout
        self.decision_timeout = decision_timeout

    async def setup(self, worker: Worker) -> None:
        self.engine: Engine = get_engine()
        self.gate = TaskGate()
        self.version = 0
        self._pending: dict[str, str] = {}  # texts of modules this worker has not imported
        self._lock = threading.Lock()
        self._edit: _Edit | None = None
        self._gated: list[Executor] = []
        for key, executor in worker.executors.items():
            if key != "offload" and executor not in self._gated:
                self._gate_executor(executor)
        current = await worker.scheduler.get_metadata(keys=METADATA_KEY, default=None)
        if current:
            await asyncio.to_thread(self.catch_up, current["version"], current["texts"])

    def teardown(self, worker: Worker) -> None:
        for executor in self._gated:
            vars(executor).pop("submit", None)
        self._gated.clear()

    # -- tasks pass the gate ----------------------------------------------------------

    def _gate_executor(self, executor: Executor) -> None:
        submit = executor.submit
        gate = self.gate

        def gated_submit(
            function: Callable[..., Any], /, *args: Any, **kwargs: Any
        ) -> concurrent.futures.Future[Any]:
            def gated() -> Any:
                self._apply_pending()
                gate.enter()
                try:
                    return function(*args, **kwargs)
                finally:
                    gate.leave()

            return submit(gated)

        executor.submit = gated_submit  # type: ignore[method-assign]
        self._gated.append(executor)

    def _apply_pending(self) -> None:
        """Texts shipped before this worker imported their module apply before the first
        task that runs once it is imported (tasks import it when they arrive)."""
        if not self._pending or not any(name in sys.modules for name in self._pending):
            return
        if not self.gate.close(self.drain_timeout):
            return
        try:
            with self._lock:
                ready = {n: t for n, t in self._pending.items() if n in sys.modules}
                for name in ready:
                    del self._pending[name]
            self.engine.apply_sources(ready)
        except ReloadError as exc:
            logger.warning("relive: this worker's copy does not take the edit: %s", exc)
        finally:
            self.gate.open()

    def record(self, version: int, texts: dict[str, str]) -> None:
        """Note the texts now applied (those of modules not imported yet wait for them)."""
        with self._lock:
            self.version = max(self.version, version)
            for name, text in texts.items():
                if name in sys.modules:
                    self._pending.pop(name, None)
                else:
                    self._pending[name] = text

    # -- what the client calls ----------------------------------------------------------

    async def prepare(self, version: int, texts: dict[str, str]) -> Result:
        """Apply ``texts`` behind a closed gate and vote; the transaction stays open."""
        edit = _Edit(self, version, texts)
        self._edit = edit
        threading.Thread(target=edit.run, name="relive-dask-edit", daemon=True).start()
        return await asyncio.wrap_future(edit.voted)

    async def decide(self, version: int, commit: bool) -> Result:
        """Commit (or roll back) the prepared edit; answers what the worker now runs."""
        edit, self._edit = self._edit, None
        if edit is None or edit.version != version:
            return {"ok": False, "message": "no edit prepared", "lineno": None}
        if not edit.decision.done():
            edit.decision.set_result(commit)
        return await asyncio.wrap_future(edit.done)

    def catch_up(self, version: int, texts: dict[str, str]) -> Result:
        """Apply the client's current texts if this worker is behind (a newcomer)."""
        edit = _Edit(self, version, texts, catching_up=True)
        edit.decision.set_result(True)
        edit.run()
        return edit.done.result()


def _plugin(worker: Worker) -> ReliveWorkerPlugin | None:
    plugin = worker.plugins.get(PLUGIN_NAME)
    return plugin if isinstance(plugin, ReliveWorkerPlugin) else None


_NOT_SET_UP: Result = {"ok": False, "message": "relive's plugin is not set up", "lineno": None}


async def prepare_edit(version: int, texts: dict[str, str], dask_worker: Worker) -> Result:
    """Phase one, run on each worker by ``client.run``."""
    plugin = _plugin(dask_worker)
    return _NOT_SET_UP if plugin is None else await plugin.prepare(version, texts)


async def decide_edit(version: int, commit: bool, dask_worker: Worker) -> Result:
    """Phase two, run on the workers that prepared."""
    plugin = _plugin(dask_worker)
    return _NOT_SET_UP if plugin is None else await plugin.decide(version, commit)


async def catch_up(version: int, texts: dict[str, str], dask_worker: Worker) -> Result:
    """Brings a worker that joined during an edit up to date."""
    plugin = _plugin(dask_worker)
    if plugin is None:
        return _NOT_SET_UP
    return await asyncio.to_thread(plugin.catch_up, version, texts)
