"""Coalescing file events into batches: when a write is complete and a burst is over.

Pure timing logic (no threads, no watchdog): the watcher (watch.py) feeds it events with
their times and asks when the next batch is due.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, final

__all__ = ["Action", "Batch", "Batcher"]


WRITE_HOLD: Final = 1.0
"""Longest wait, after its first write, for the close of a file still open for writing."""

CREATE_HOLD: Final = 0.1
"""Wait for the first write to a new file; then it is held like any file being written.

Files that appear complete (linked, or inside a directory moved in) get no close event; an
empty one is held on (up to `WRITE_HOLD`) in case its writer is just slow to start.
"""

REMOVE_HOLD: Final = 0.1
"""Wait after a deletion for the file to come back (an editor's delete-then-write save)."""

BURST_QUIET: Final = 0.05
"""Quiet period that ends a batch of several files (one file: `settle`)."""

Action = Literal["written", "writing", "created", "deleted"]


@final
@dataclass(frozen=True)
class Batch:
    """The files that changed during one burst of file events.

    Attributes:
        changed: Files written, created or renamed onto (absolute, under a resolved root).
            Their content is not compared here: a touched file may be included.
        removed: Files deleted or renamed away, and not re-created within the batch.
    """

    changed: frozenset[Path] = frozenset()
    removed: frozenset[Path] = frozenset()


def _is_empty_file(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


class Batcher:
    """Collects file events into the next batch and decides when it is due.

    Not thread-safe: the watcher calls it under its condition's lock. Held files are kept in
    insertion order, so the first one has the earliest deadline.
    """

    def __init__(self, settle: float) -> None:
        self.settle = settle
        self.max_delay = max(50 * settle, 0.25)
        self.changed: set[Path] = set()
        self.removed: set[Path] = set()
        self.writing: dict[Path, float] = {}  # being written, since
        self.created: dict[Path, float] = {}  # appeared, not written to (yet), since
        self.first: float | None = None
        self.last = 0.0
        self.last_removal = 0.0

    def record(self, action: Action, path: Path, now: float) -> None:
        if action == "written":
            self._forget(path)
            self.changed.add(path)
        elif action == "deleted":
            self._forget(path)
            self.removed.add(path)
            self.last_removal = now
        else:
            self.changed.discard(path)  # being written again: wait for that write
            self.removed.discard(path)
            self._hold(path, action, now)
        self.first = now if self.first is None else self.first
        self.last = now

    def _forget(self, path: Path) -> None:
        self.changed.discard(path)
        self.removed.discard(path)
        self.writing.pop(path, None)
        self.created.pop(path, None)

    def _hold(self, path: Path, action: Action, now: float) -> None:
        if path in self.writing:
            return  # the hold runs from the first write
        if action == "writing":
            self.created.pop(path, None)
            self.writing[path] = now
        elif path not in self.created:
            self.created[path] = now

    def held(self) -> frozenset[Path]:
        return frozenset(self.writing) | frozenset(self.created)

    def due_at(self) -> float | None:
        """When to act next (flush, or give up waiting for a close); None: nothing to do."""
        times = [self._flush_at()]
        times.append(next((since + WRITE_HOLD for since in self.writing.values()), None))
        times.append(next((since + CREATE_HOLD for since in self.created.values()), None))
        return min((due for due in times if due is not None), default=None)

    def _flush_at(self) -> float | None:
        if not (self.changed or self.removed) or self.first is None:
            return None
        quiet = self.settle
        if len(self.changed) + len(self.removed) + len(self.writing) + len(self.created) > 1:
            # A burst (checkout, save-all, formatter): a writer that is descheduled for a few
            # ms in the middle of it must not cut it in two.
            quiet = max(self.settle, BURST_QUIET)
        flush_at = self.last + quiet
        if self.removed:
            flush_at = max(flush_at, self.last_removal + REMOVE_HOLD)
        return min(flush_at, self.first + self.max_delay)

    def take(self, now: float) -> Batch | None:
        """Return the batch if it is due at `now`, and start a new one."""
        for path in self._expire(self.created, CREATE_HOLD, now):
            if _is_empty_file(path):
                self.writing[path] = now  # a writer slow to start, as `generate > new.py`
            else:
                self._release(path, now)
        for path in self._expire(self.writing, WRITE_HOLD, now):
            self._release(path, now)
        flush_at = self._flush_at()
        if flush_at is None or flush_at > now:
            return None
        batch = Batch(frozenset(self.changed), frozenset(self.removed))
        self.changed.clear()
        self.removed.clear()
        self.first = None
        return batch

    @staticmethod
    def _expire(held: dict[Path, float], hold: float, now: float) -> list[Path]:
        expired = []
        while held:
            path, since = next(iter(held.items()))
            if since + hold > now:
                break
            del held[path]
            expired.append(path)
        return expired

    def _release(self, path: Path, now: float) -> None:
        self.changed.add(path)
        self.first = now if self.first is None else self.first
