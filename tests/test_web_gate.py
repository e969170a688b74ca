"""The request gate and its ASGI/WSGI middleware: reloads between requests, never inside one.

Threads and asyncio tasks stand in for requests; a thread stands in for the watcher's
reload. Every wait has a deadline (``wait_until``); sleeps only simulate work.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from relive._integrations.asgi import GatedASGI
from relive._integrations.gate import Gate
from relive._integrations.wsgi import GatedWSGI
from relive.testing import wait_until


def start_thread(target: Callable[[], object], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


class Versioned:
    """State a reload changes in two steps: a request must never see the steps differ."""

    def __init__(self) -> None:
        self.first = 0
        self.second = 0

    def apply(self, version: int) -> None:
        self.first = version
        time.sleep(0.002)  # half an edit applied: a request now would see a mix
        self.second = version

    def read(self) -> tuple[int, int]:
        first = self.first
        time.sleep(0.001)  # a request running across a reload
        return first, self.second


# Threads ---------------------------------------------------------------------------------


def test_reload_waits_for_the_request_in_flight_and_holds_new_ones() -> None:
    gate = Gate()
    events: list[str] = []
    release_request = threading.Event()

    def request() -> None:
        with gate.shared():
            events.append("request started")
            release_request.wait(5)
            events.append("request finished")

    def reload() -> None:
        with gate.exclusive():
            events.append("reload")

    def late_request() -> None:
        with gate.shared():
            events.append("late request")

    threads = [start_thread(request, "request")]
    wait_until(lambda: gate.in_flight == 1)
    threads.append(start_thread(reload, "reload"))
    wait_until(lambda: gate.closed)
    threads.append(start_thread(late_request, "late-request"))
    assert events == ["request started"]  # the reload and the late request both wait

    release_request.set()
    for thread in threads:
        thread.join(5)
    assert events == ["request started", "request finished", "reload", "late request"]
    assert gate.in_flight == 0 and not gate.closed


def test_threads_never_see_half_an_edit() -> None:
    gate = Gate()
    state = Versioned()
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def requests() -> None:
        while not stop.is_set():
            with gate.shared():
                seen.append(state.read())

    readers = [start_thread(requests, f"request-{index}") for index in range(4)]
    for version in range(1, 31):
        with gate.exclusive():
            state.apply(version)
        wait_until(lambda v=version: any(first == v for first, _ in seen[-50:]), timeout=5)  # type: ignore[misc]
    stop.set()
    for reader in readers:
        reader.join(5)
    assert {first for first, _ in seen} >= set(range(1, 31))
    assert all(first == second for first, second in seen), "a request saw half an edit"


def test_steady_requests_do_not_starve_a_reload() -> None:
    gate = Gate()
    stop = threading.Event()

    def requests() -> None:
        while not stop.is_set():
            with gate.shared():
                time.sleep(0.002)

    readers = [start_thread(requests, f"request-{index}") for index in range(6)]
    try:
        wait_until(lambda: gate.in_flight > 0)
        started = time.monotonic()
        with gate.exclusive() as drain:
            assert gate.in_flight == 0
        assert drain.running == 0
        assert time.monotonic() - started < 1.0
    finally:
        stop.set()
        for reader in readers:
            reader.join(5)


def test_a_request_that_never_ends_delays_a_reload_only_up_to_the_timeout() -> None:
    gate = Gate(drain_timeout=0.2)
    endless = contextvars.Context().run(gate.enter)  # another request's: a stream, a long poll
    try:
        with gate.exclusive() as drain:
            assert drain.running == 1
            assert drain.waited >= 0.2
    finally:
        endless.release()
    assert gate.in_flight == 0


def test_a_nested_request_passes_while_a_reload_waits() -> None:
    gate = Gate(drain_timeout=5)
    inner_done = threading.Event()
    reload_waiting = threading.Event()

    def request() -> None:
        with gate.shared():
            reload_waiting.wait(5)
            with gate.shared():  # the same context enters again: it must not wait
                inner_done.set()

    requester = start_thread(request, "request")
    wait_until(lambda: gate.in_flight == 1)
    reloader = start_thread(lambda: gate.exclusive().__enter__(), "reload")
    wait_until(lambda: gate.closed)
    reload_waiting.set()
    assert inner_done.wait(2), "a nested request deadlocked behind the reload"
    requester.join(5)
    reloader.join(5)


def test_a_reload_from_inside_a_request_does_not_wait_for_itself() -> None:
    gate = Gate(drain_timeout=5)
    with gate.shared():
        started = time.monotonic()
        with gate.exclusive() as drain:
            assert drain.running == 0
        assert time.monotonic() - started < 1.0


def test_release_is_idempotent() -> None:
    gate = Gate()
    ticket = gate.enter()
    ticket.release()
    ticket.release()
    assert gate.in_flight == 0


# asyncio ---------------------------------------------------------------------------------


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the event loop run until ``condition`` holds (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


def test_tasks_wait_for_a_reload_without_blocking_the_event_loop() -> None:
    gate = Gate()

    async def main() -> list[str]:
        events: list[str] = []
        reload_may_finish = threading.Event()

        def reload() -> None:
            with gate.exclusive():
                events.append("reload")
                reload_may_finish.wait(5)

        async def request() -> None:
            async with gate.shared_async():
                events.append("request")

        reloader = start_thread(reload, "reload")
        await _until(lambda: gate.closed)
        waiting = asyncio.create_task(request())
        ticks = 0
        while ticks < 20:  # the loop keeps running other tasks meanwhile
            await asyncio.sleep(0.001)
            ticks += 1
        assert events == ["reload"]
        reload_may_finish.set()
        await asyncio.wait_for(waiting, 5)
        reloader.join(5)
        return events

    assert asyncio.run(main()) == ["reload", "request"]


def test_tasks_never_see_half_an_edit() -> None:
    gate = Gate()
    state = Versioned()
    seen: list[tuple[int, int]] = []

    async def request() -> None:
        async with gate.shared_async():
            first = state.first
            await asyncio.sleep(0.001)  # in flight across a reload
            seen.append((first, state.second))

    async def load(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.gather(*(request() for _ in range(4)))

    def reloads() -> None:
        for version in range(1, 31):
            with gate.exclusive():
                state.apply(version)
            time.sleep(0.003)

    async def main() -> None:
        stop = asyncio.Event()
        loader = asyncio.create_task(load(stop))
        await asyncio.to_thread(reloads)
        await _until(lambda: (30, 30) in seen)  # a request after the last reload
        stop.set()
        await asyncio.wait_for(loader, 5)

    asyncio.run(main())
    assert seen and seen[-1] == (30, 30)
    assert all(first == second for first, second in seen), "a request saw half an edit"


def test_a_cancelled_waiting_task_holds_nothing() -> None:
    gate = Gate()

    async def main() -> None:
        with gate.exclusive():
            waiting = asyncio.create_task(gate.enter_async())
            await _until(lambda: gate.waiting_tasks == 1)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        assert gate.in_flight == 0
        ticket = await asyncio.wait_for(gate.enter_async(), 1)
        ticket.release()

    asyncio.run(main())
    assert gate.in_flight == 0


# Middleware ------------------------------------------------------------------------------


def test_wsgi_response_holds_the_gate_until_closed() -> None:
    gate = Gate()
    closed: list[bool] = []

    def body() -> Iterator[bytes]:
        try:
            yield b"a"
            yield b"b"
        finally:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [])
        return body()

    response = GatedWSGI(app, gate)({}, lambda *args: None)
    assert gate.in_flight == 1
    assert b"".join(response) == b"ab"
    assert gate.in_flight == 1  # the server has not closed it yet
    response.close()  # type: ignore[attr-defined]
    assert closed == [True] and gate.in_flight == 0


def test_wsgi_app_raising_releases_the_gate() -> None:
    gate = Gate()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        GatedWSGI(app, gate)({}, lambda *args: None)
    assert gate.in_flight == 0


def test_asgi_gates_http_but_not_lifespan_or_websockets() -> None:
    gate = Gate()
    held: dict[str, int] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        held[scope["type"]] = gate.in_flight
        if scope["type"] == "http" and scope.get("path") == "/boom":
            raise RuntimeError("boom")

    async def receive() -> dict[str, Any]:
        return {}

    async def send(message: dict[str, Any]) -> None:
        pass

    gated = GatedASGI(app, gate)

    async def main() -> None:
        for kind in ("lifespan", "websocket", "http"):
            await gated({"type": kind}, receive, send)
        with pytest.raises(RuntimeError):
            await gated({"type": "http", "path": "/boom"}, receive, send)

    asyncio.run(main())
    assert held == {"lifespan": 0, "websocket": 0, "http": 1}
    assert gate.in_flight == 0
