"""Saves that must never be lost: right after the watcher starts, in bursts, and through a
kernel queue overflow. Real files, the real watchdog observer, real `relive run` processes;
every wait has a deadline, and every save counts.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import os
import random
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

import relive
from harness import Start
from relive._engine import Engine
from relive._filewatch import Batch, FileWatcher
from relive.testing import TemporaryPackage, wait_until, write_source

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="inotify semantics")

DEADLINE = 10.0  # from a save to its delivery, on a loaded 2-core machine


class Delivered:
    """The `on_batch` of a test: every path delivered as changed."""

    def __init__(self) -> None:
        self._paths: set[Path] = set()
        self._lock = threading.Lock()

    def __call__(self, batch: Batch) -> None:
        with self._lock:
            self._paths |= batch.changed

    def missing(self, wanted: set[Path]) -> set[Path]:
        with self._lock:
            return wanted - self._paths

    def wait_for(self, wanted: set[Path]) -> None:
        wait_until(lambda: not self.missing(wanted), timeout=DEADLINE)


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[Callable[[Path], Delivered]]:
    """Start a FileWatcher on a directory; every one is stopped after the test."""
    started: list[FileWatcher] = []

    def start(root: Path) -> Delivered:
        delivered = Delivered()
        watcher = FileWatcher([root], delivered)
        started.append(watcher)
        watcher.start()
        return delivered

    yield start
    for watcher in started:
        watcher.stop()


# One save, as editors and tools make them; each returns the file it saved.
Save = Callable[[Path, str, str], Path]


def write_in_place(root: Path, name: str, text: str = "X = 1\n") -> Path:
    return write_source(root / name, text)


def replace_from_a_temporary(root: Path, name: str, text: str = "X = 1\n") -> Path:
    temporary = root / f".{name}.swp"  # an ignored name: only the rename tells
    temporary.write_text(text)
    os.replace(temporary, root / name)
    return root / name


def replace_from_outside(root: Path, name: str, text: str = "X = 1\n") -> Path:
    outside = root.parent / f"outside-{root.name}-{name}"
    outside.write_text(text)
    os.replace(outside, root / name)
    return root / name


def write_in_a_new_directory(root: Path, name: str, text: str = "X = 1\n") -> Path:
    return write_source(root / f"pkg_{name.removesuffix('.py')}" / "mod.py", text)


def delete_then_write(root: Path, name: str, text: str = "X = 1\n") -> Path:
    (root / "existing.py").unlink(missing_ok=True)
    return write_source(root / "existing.py", text)


SAVES: list[Save] = [
    write_in_place,
    replace_from_a_temporary,
    replace_from_outside,
    write_in_a_new_directory,
    delete_then_write,
]


def test_no_save_is_lost_right_after_start_or_in_a_burst(
    tmp_path: Path, watching: Callable[[Path], Delivered]
) -> None:
    """Each kind of save made at once after start(), then a burst of mixed saves: every
    saved file is delivered (the watches are in place when start() returns)."""
    rng = random.Random(1234)
    names = (f"m{n}.py" for n in itertools.count())
    for round_, first in enumerate(SAVES * 3):
        root = tmp_path / f"round{round_}"
        write_source(root / "existing.py", "X = 0\n")
        if round_ % 2:
            (root / "__pycache__").mkdir()  # a root with a directory never watched is split
        delivered = watching(root.resolve())
        saved = {first(root, next(names), "X = 1\n").resolve()}
        saved |= {rng.choice(SAVES)(root, next(names), "X = 2\n").resolve() for _ in range(8)}
        delivered.wait_for(saved)


def test_saves_lost_in_a_kernel_queue_overflow_are_delivered(
    tmp_path: Path, watching: Callable[[Path], Delivered]
) -> None:
    """A flood of changes overflows inotify's queue: the kernel drops the events after it,
    the save among them included; the files modified meanwhile are delivered."""
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if limit > 200_000:
        pytest.skip(f"fs.inotify.max_queued_events={limit}: a flood would take too long")
    root = tmp_path.resolve()
    noisy = [write_source(root / name, "") for name in ("a.dat", "b.dat")]
    target = write_source(root / "target.py", "X = 1\n")
    delivered = watching(root)
    _flood_then_save(noisy, target, events=limit + 100)
    delivered.wait_for({target})


def _flood_then_save(noisy: list[Path], target: Path, *, events: int) -> None:
    """Change the `noisy` files `events` times, then save `target`, all without letting
    another thread run (libc called through PyDLL keeps the GIL): the watcher cannot read
    its queue meanwhile, so the queue overflows and the save's events are dropped."""
    libc = ctypes.PyDLL(None, use_errno=True)
    libc.utime.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    libc.open.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libc.write.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
    paths = [os.fsencode(path) for path in noisy]
    text = b"X = 2\n"
    switch = sys.getswitchinterval()
    sys.setswitchinterval(60.0)
    try:
        for path in itertools.islice(itertools.cycle(paths), events):
            libc.utime(path, None)  # alternating names: the kernel merges no two of them
        fd = libc.open(os.fsencode(target), os.O_WRONLY | os.O_TRUNC)
        assert fd >= 0, os.strerror(ctypes.get_errno())
        libc.write(fd, text, len(text))
        libc.close(fd)
    finally:
        sys.setswitchinterval(switch)


def test_relive_watch_applies_every_save_made_right_after_start(
    package: TemporaryPackage, engine: Engine
) -> None:
    """Modules saved while watch() starts and at once after it: every module ends up
    running its last saved text."""
    modules = [package.module(f"lost_{n}", "def value():\n    return 0\n") for n in range(6)]
    for version in (1, 2, 3):
        source = f"def value():\n    return {version}\n"
        for module in modules[:3]:  # saved before watch(): relive read the old text
            write_source(package.root / f"{module.__name__}.py", source)
        with relive.watch(package.root, quiet=True):
            for module in modules[3:]:  # saved at once after start()
                replace_from_outside(package.root, f"{module.__name__}.py", source)
            wait_until(functools.partial(_all_return, modules, version), timeout=DEADLINE)


def _all_return(modules: list[ModuleType], value: int) -> bool:
    return all(module.value() == value for module in modules)


APP = """\
import os, time
print("pid", os.getpid(), flush=True)
while True:
    time.sleep(0.05)
"""


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """`relive run` runs in a directory of its own: saves made from outside it come from
    its parent (tmp_path)."""
    return tmp_path / "project"


def test_every_restart_on_save_made_right_after_a_start_restarts(
    run_dir: Path, start: Start
) -> None:
    """`relive run --restart-on '*.toml'`: each save, made as soon as the program has
    started, restarts it."""
    write_source(run_dir / "app.py", APP)
    relive = start("--restart-on", "*.toml", "app.py")
    relive.wait_for_start(1)
    saves: list[Save] = [
        write_in_place,
        replace_from_a_temporary,
        replace_from_outside,
        write_in_place,
    ]
    for count, save in enumerate(saves, start=2):
        save(run_dir, "settings.toml" if count % 2 else f"extra{count}.toml", f"n = {count}\n")
        relive.wait_for_start(count)
