"""The request gate: reloads happen between requests, never in the middle of one.

A readers-writer gate. Each request holds the shared side while it runs (from a thread or
an asyncio task); a reload takes the exclusive side: it waits for the requests in flight to
finish, holds new ones while the engine applies the edit, then lets them all through. So an
in-flight request finishes on the code it started with, and no request sees half an edit.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, final

if TYPE_CHECKING:  # asyncio is imported by whoever enters from a task (25 ms otherwise)
    import asyncio

__all__ = ["DRAIN_TIMEOUT", "Drain", "Gate", "Ticket"]

DRAIN_TIMEOUT: Final = 3.0
"""Longest wait, in seconds, for requests in flight before a reload goes ahead anyway
(a stream or a long poll would otherwise hold every edit back)."""


@final
@dataclass(frozen=True)
class Drain:
    """How a reload got the exclusive side.

    Attributes:
        waited: Seconds spent waiting for requests in flight to finish.
        running: Requests still in flight when the wait timed out (0: all finished).
    """

    waited: float
    running: int


@final
class Ticket:
    """The shared side, held by one request; :meth:`release` gives it back (idempotent)."""

    __slots__ = ("_gate", "_token")

    def __init__(self, gate: Gate | None, token: contextvars.Token[int] | None) -> None:
        self._gate = gate
        self._token = token

    def release(self) -> None:
        """Give the shared side back; a reload waiting for this request may now start."""
        gate, self._gate = self._gate, None
        if gate is None:
            return
        token, self._token = self._token, None
        if token is not None:
            gate._reset_depth(token)
        gate._leave()


@final
class Gate:
    """A readers-writer gate shared by threads and asyncio tasks, writers first.

    Requests enter with :meth:`shared` (threads) or :meth:`shared_async` (asyncio), or
    :meth:`enter` when the end of the request comes later (a WSGI response iterable). A
    reload runs inside :meth:`exclusive`, from a thread that is not an event loop's: once
    it waits, new requests wait too, so a steady stream of requests cannot starve it.
    A request that enters again from the context that holds the gate (a nested call,
    a thread started by ``run_in_threadpool``) passes straight through.

    Args:
        drain_timeout: Longest wait for requests in flight before a reload goes ahead.
    """

    def __init__(self, *, drain_timeout: float = DRAIN_TIMEOUT) -> None:
        self.drain_timeout = drain_timeout
        self._cond = threading.Condition(threading.Lock())
        self._writers = threading.Lock()  # one reload at a time
        self._readers = 0
        self._closed = False  # True while a reload waits or runs: requests wait
        self._sleepers: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._depth: contextvars.ContextVar[int] = contextvars.ContextVar(
            f"relive_gate_{id(self)}", default=0
        )
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _reset_in_child(ref()))

    @property
    def in_flight(self) -> int:
        """Requests holding the shared side now."""
        with self._cond:
            return self._readers

    @property
    def waiting_tasks(self) -> int:
        """Asyncio tasks waiting for a reload to end before they enter."""
        with self._cond:
            return len(self._sleepers)

    @property
    def closed(self) -> bool:
        """Whether a reload is waiting or running (new requests wait)."""
        with self._cond:
            return self._closed

    # -- requests -----------------------------------------------------------------------

    def enter(self) -> Ticket:
        """Take the shared side from a thread (blocks while a reload waits or runs)."""
        if self._depth.get():
            return Ticket(None, None)
        with self._cond:
            while self._closed:
                self._cond.wait()
            self._readers += 1
        return Ticket(self, self._depth.set(1))

    async def enter_async(self) -> Ticket:
        """Take the shared side from an asyncio task, without blocking its event loop."""
        if self._depth.get():
            return Ticket(None, None)
        loop = sys.modules["asyncio"].get_running_loop()
        while True:
            with self._cond:
                if not self._closed:
                    self._readers += 1
                    break
                waiter: asyncio.Future[None] = loop.create_future()
                self._sleepers.append((loop, waiter))
            await waiter  # woken when the reload ends, then try again
        return Ticket(self, self._depth.set(1))

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """``with gate.shared():`` around a request handled by a thread."""
        ticket = self.enter()
        try:
            yield
        finally:
            ticket.release()

    @contextlib.asynccontextmanager
    async def shared_async(self) -> AsyncIterator[None]:
        """``async with gate.shared_async():`` around a request handled by a task."""
        ticket = await self.enter_async()
        try:
            yield
        finally:
            ticket.release()

    def _leave(self) -> None:
        with self._cond:
            self._readers -= 1
            if self._closed and self._readers <= 0:
                self._cond.notify_all()

    def _reset_depth(self, token: contextvars.Token[int]) -> None:
        # Released from another context than the one that entered: nothing to reset.
        with contextlib.suppress(ValueError):
            self._depth.reset(token)

    # -- reloads ------------------------------------------------------------------------

    @contextlib.contextmanager
    def exclusive(self, *, timeout: float | None = None) -> Iterator[Drain]:
        """Hold new requests and wait for those in flight (up to ``timeout``, default
        :attr:`drain_timeout`); inside, nothing else runs a request.

        A reload started from inside a request (its context holds the shared side) does not
        wait for itself.
        """
        limit = self.drain_timeout if timeout is None else timeout
        with self._writers:
            drain = self._close(limit)
            try:
                yield drain
            finally:
                self._open()

    def _close(self, limit: float) -> Drain:
        own = 1 if self._depth.get() else 0
        started = time.monotonic()
        deadline = started + limit
        with self._cond:
            self._closed = True
            while self._readers > own:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return Drain(time.monotonic() - started, max(0, self._readers - own))

    def _open(self) -> None:
        with self._cond:
            self._closed = False
            sleepers, self._sleepers = self._sleepers, []
            self._cond.notify_all()
        for loop, waiter in sleepers:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                loop.call_soon_threadsafe(_wake, waiter)


def _reset_in_child(gate: Gate | None) -> None:
    """A forked child has none of the threads that held the gate: it starts open."""
    if gate is None:
        return
    gate._cond = threading.Condition(threading.Lock())
    gate._writers = threading.Lock()
    gate._readers = 0
    gate._closed = False
    gate._sleepers = []


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
