"""relive.dask: edits reach every worker of a real LocalCluster (worker processes), live.

Each worker imports the edited module from its own copy of the files (a preload copies
the pristine version into a directory of its own and drops the client's directory from
its path), so what the workers run can only come from what relive ships.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relive.testing import wait_until, write_source

distributed = pytest.importorskip(
    "distributed", reason="relive.dask needs distributed (pip install 'relive[dask]')"
)

import relive  # noqa: E402
import relive.dask  # noqa: E402

MODULE = "relive_dask_live"

TEMPLATE = '''\
"""A module edited while a Dask cluster runs it."""
import os
import time

import distributed

STATE = {"calls": 0}
#EXTRA


def version():
    return #VERSION


def probe(i):
    STATE["calls"] += 1
    return version(), distributed.get_worker().address, STATE["calls"]


def twice(seconds, started):
    first = version()
    distributed.Event(started).set()
    time.sleep(seconds)  # an edit arrives meanwhile
    return first, version()


def where():
    return __file__


def calls():
    return STATE["calls"]


class Held:
    def __init__(self):
        self.born = version()
        self.function = version

    def value(self):
        return ("held", #VERSION, self.born)


def held_value(held):
    return held.value(), held.function()
'''

PRELOAD = """\
import os, shutil, sys, tempfile
own = tempfile.mkdtemp(prefix="worker-", dir={root!r})
shutil.copy(os.path.join({pristine!r}, {module!r} + ".py"), own)
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != {client!r}]
sys.path.insert(0, own)
"""


def source(version: int, extra: str = "") -> str:
    return TEMPLATE.replace("#VERSION", str(version)).replace("#EXTRA", extra)


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.client_dir = root / "client"
        pristine = root / "pristine"
        write_source(pristine / f"{MODULE}.py", source(1), dedent=False)
        write_source(self.client_dir / f"{MODULE}.py", source(1), dedent=False)
        preload = root / "preload_own_copy.py"
        preload.write_text(
            PRELOAD.format(
                root=str(root),
                pristine=str(pristine),
                module=MODULE,
                client=str(self.client_dir.resolve()),
            )
        )
        self.cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=True,
            dashboard_address=":0",
            preload=[str(preload)],
        )
        self.client = distributed.Client(self.cluster)

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    made = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        yield made
    finally:
        made.close()


class TaskStream:
    """Submits probe tasks without pause from a thread; records what each one ran."""

    def __init__(self, client: Any, module: Any) -> None:
        self.client = client
        self.module = module
        self.results: list[tuple[float, int, str, int]] = []  # submitted, version, worker, calls
        self.failures: list[BaseException] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="task-stream", daemon=True)

    def __enter__(self) -> TaskStream:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        index = 0
        while not self._stopping.is_set():
            submitted = time.monotonic()
            futures = self.client.map(self.module.probe, range(index, index + 4), pure=False)
            index += 4
            for future in futures:
                try:
                    version, worker, calls = future.result(timeout=30)
                except Exception as exc:
                    self.failures.append(exc)
                else:
                    self.results.append((submitted, version, worker, calls))

    def count(self) -> int:
        return len(self.results)

    def wait_for_more(self, count: int) -> None:
        """Wait until ``count`` more tasks have finished."""
        target = self.count() + count
        wait_until(lambda: self.count() >= target, timeout=15)


def _versions(client: Any, module: Any) -> set[int]:
    return set(client.run(module.version).values())


def test_edits_reach_every_worker_between_tasks(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    client, path = cluster.client, cluster.client_dir / f"{MODULE}.py"
    sys.path.insert(0, str(cluster.client_dir))
    handle = relive.dask.watch(client, cluster.client_dir)
    module = __import__(MODULE)
    held = client.submit(module.Held, pure=False)
    reached: list[tuple[float, int]] = []  # (when every worker had it, version)

    said: list[str] = []  # what the client printed, line by line

    def edit(version: int, extra: str = "") -> None:
        write_source(path, source(version, extra), dedent=False)

    def refusals() -> int:
        said.extend(capsys.readouterr().err.splitlines())
        return sum(1 for line in said if re.match(rf"relive: {re.escape(str(path))}:\d+: ", line))

    with handle, TaskStream(client, module) as stream:
        wait_until(lambda: stream.count() >= 8, timeout=30)
        own_copies = set(client.run(module.where).values())
        assert len(own_copies) == 2 and str(path) not in own_copies
        for version in range(2, 7):
            if version == 6:  # another front end of the client applies the save first
                relive.get_engine().apply_sources({MODULE: source(version)})
            edit(version)
            wait_until(lambda v=version: handle.edits == v - 1, timeout=15)
            reached.append((time.monotonic(), version))
            assert _versions(client, module) == {version}
            assert module.version() == version  # the client's own process too
            assert client.submit(module.held_value, held).result() == (
                ("held", version, 1),
                version,
            )
            stream.wait_for_more(4)

        # A task running when an edit arrives finishes on the code it started with.
        started = distributed.Event(f"{MODULE}-started")
        running = client.submit(module.twice, 1.0, started.name, pure=False)
        assert started.wait(timeout=15)
        edit(7)
        assert running.result(timeout=15) == (6, 6)
        wait_until(lambda: handle.edits == 6, timeout=15)
        reached.append((time.monotonic(), 7))
        assert _versions(client, module) == {7}

        refused = 0
        for broken in (
            source(7).replace("def probe(i):", "def probe(i:"),  # a syntax error
            source(99, "_broken = 1 / 0"),  # an exception at import time, here too
        ):
            write_source(path, broken, dedent=False)
            refused += 1
            wait_until(lambda r=refused: refusals() == r, timeout=15)
            assert handle.last_error is not None and handle.last_error.path == str(path)

        # One worker refuses (a statement that fails only in its copy's directory): the
        # client and the other worker prepared the edit, and roll it back.
        refusing = Path(sorted(own_copies)[0]).parent / "refuse"
        refusing.write_text("")
        extra = (
            "if os.path.exists(os.path.join(os.path.dirname(__file__), 'refuse')):\n"
            "    raise RuntimeError('this worker refuses the edit')"
        )
        edit(99, extra)
        wait_until(lambda: refusals() == refused + 1, timeout=15)
        error = handle.last_error
        assert error is not None and error.path == str(path)
        assert error.lineno == source(99, extra).splitlines().index(extra.splitlines()[1]) + 1
        assert "this worker refuses the edit" in str(error)
        assert _versions(client, module) == {7} and module.version() == 7
        assert client.submit(module.held_value, held).result() == (("held", 7, 1), 7)
        refusing.unlink()

        edit(8)
        wait_until(lambda: handle.edits == 7, timeout=15)
        reached.append((time.monotonic(), 8))
        before = set(client.ncores())
        cluster.cluster.scale(3)
        client.wait_for_workers(3, timeout=60)
        (newcomer,) = set(client.ncores()) - before
        first = client.submit(module.probe, -1, workers=[newcomer], pure=False).result()
        assert first[:2] == (8, newcomer)
        stream.wait_for_more(8)

    assert not stream.failures
    joined = [
        (calls, version) for _, version, worker, calls in stream.results if worker == newcomer
    ]
    assert min([*joined, first[::-2]]) == (1, 8)  # its first task ran the current code
    assert {version for _, version in joined} <= {8}
    versions = [version for _, version, _, _ in stream.results]
    assert set(versions) == {1, 2, 3, 4, 5, 6, 7, 8}  # never 99: no refused edit ran anywhere
    for submitted, version, _, _ in stream.results:
        expected = max((v for when, v in reached if when < submitted), default=1)
        assert version >= expected
    # Module state was kept: each original worker counted every probe it ran.
    runs: dict[str, int] = {}
    for _, _, worker, _ in stream.results:
        runs[worker] = runs.get(worker, 0) + 1
    counts = client.run(module.calls, workers=sorted(before))
    assert counts == {worker: runs.get(worker, 0) for worker in before}
    assert refusals() == refused + 1, "\n".join(said)  # each refusal reported once
    applied = [line for line in said if line.startswith(f"relive: {path}: ")]
    assert len(applied) == 7, said
    assert applied[4].startswith(f"relive: {path}: updated on 2 workers in "), said
    del applied[4]  # this process ran version 6 already: the workers were updated
    pattern = rf"relive: {re.escape(str(path))}: 2 patched on 2 workers in \d+ ms"
    assert all(re.fullmatch(pattern, line) for line in applied), said
    # Stopped: the plugin is gone from every worker.
    assert not handle.running
    assert not any(client.run(lambda dask_worker: "relive-dask" in dask_worker.plugins).values())


def test_relive_0_makes_it_inert(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELIVE", "0")
    with relive.dask.watch(cluster.client) as handle:
        assert not handle.running
        registered = cluster.client.run(lambda dask_worker: "relive-dask" in dask_worker.plugins)
        assert not any(registered.values())


def test_importing_relive_does_not_import_dask() -> None:
    code = (
        "import sys, relive, relive.testing\n"
        "assert 'dask' not in sys.modules and 'distributed' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
