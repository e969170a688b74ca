"""The batching rules on a fake clock: each event carries its time, each question a `now`.

No threads, no watcher, no sleeps: ``Batcher`` is pure timing logic, so each rule of
``relive._batching`` is checked at the exact instants around its deadline.
"""

from __future__ import annotations

from pathlib import Path

from relive._batching import BURST_QUIET, CREATE_HOLD, REMOVE_HOLD, WRITE_HOLD, Batch, Batcher

SETTLE = 0.01
EPSILON = 1e-6
A, B, C = Path("/p/a.py"), Path("/p/b.py"), Path("/p/c.py")


def test_nothing_recorded_nothing_due() -> None:
    batcher = Batcher(SETTLE)
    assert batcher.due_at() is None and batcher.take(100.0) is None


def test_one_written_file_is_due_after_the_settle_time() -> None:
    batcher = Batcher(SETTLE)
    batcher.record("written", A, 10.0)
    assert batcher.due_at() == 10.0 + SETTLE
    assert batcher.take(10.0 + SETTLE - EPSILON) is None
    assert batcher.take(10.0 + SETTLE) == Batch(frozenset({A}))
    assert batcher.due_at() is None and batcher.take(20.0) is None  # a new batch starts


def test_a_burst_of_files_waits_for_a_longer_quiet_period() -> None:
    batcher = Batcher(SETTLE)
    batcher.record("written", A, 10.0)
    batcher.record("written", B, 10.004)
    assert batcher.due_at() == 10.004 + max(SETTLE, BURST_QUIET)
    assert batcher.take(10.004 + SETTLE) is None  # one file's settle is not enough
    assert batcher.take(10.004 + BURST_QUIET) == Batch(frozenset({A, B}))


def test_the_longest_delay_counts_from_the_first_event_even_a_held_one() -> None:
    batcher = Batcher(SETTLE)
    longest = max(50 * SETTLE, 0.25)
    batcher.record("writing", A, 10.0)
    batcher.record("written", B, 10.0 + longest - 0.01)
    assert batcher.due_at() == 10.0 + longest
    assert batcher.take(10.0 + longest) == Batch(frozenset({B}))


def test_a_burst_that_never_goes_quiet_is_cut_at_the_longest_delay() -> None:
    batcher = Batcher(SETTLE)
    longest = max(50 * SETTLE, 0.25)
    now = 10.0
    while now < 10.0 + longest:
        batcher.record("written", A if now < 10.1 else B, now)
        now += BURST_QUIET / 2  # always a new event before the quiet period ends
    assert batcher.due_at() == 10.0 + longest
    batch = batcher.take(10.0 + longest)
    assert batch is not None and batch.changed == {A, B}


def test_a_file_being_written_is_held_until_its_close() -> None:
    batcher = Batcher(SETTLE)
    batcher.record("writing", A, 10.0)
    assert batcher.held() == {A}
    assert batcher.due_at() == 10.0 + WRITE_HOLD  # the longest it is waited for
    assert batcher.take(10.5) is None
    batcher.record("written", A, 10.6)
    assert batcher.held() == frozenset()
    assert batcher.take(10.6 + SETTLE) == Batch(frozenset({A}))


def test_a_write_never_closed_is_released_after_the_write_hold() -> None:
    batcher = Batcher(SETTLE)
    batcher.record("writing", A, 10.0)
    batcher.record("writing", A, 10.9)  # the hold runs from the first write
    assert batcher.take(10.0 + WRITE_HOLD - EPSILON) is None
    assert batcher.take(10.0 + WRITE_HOLD) == Batch(frozenset({A}))  # quiet long since


def test_a_file_written_again_waits_for_that_write() -> None:
    batcher = Batcher(SETTLE)
    batcher.record("written", A, 10.0)
    batcher.record("writing", A, 10.005)
    assert batcher.take(10.0 + SETTLE) is None and batcher.held() == {A}
    batcher.record("written", A, 10.02)
    assert batcher.take(10.02 + SETTLE) == Batch(frozenset({A}))


def test_a_new_file_with_content_is_released_after_the_create_hold(tmp_path: Path) -> None:
    made = tmp_path / "linked.py"
    made.write_text("X = 1\n")
    batcher = Batcher(SETTLE)
    batcher.record("created", made, 10.0)
    assert batcher.due_at() == 10.0 + CREATE_HOLD
    assert batcher.take(10.0 + CREATE_HOLD - EPSILON) is None
    assert batcher.take(10.0 + CREATE_HOLD) == Batch(frozenset({made}))


def test_a_new_empty_file_is_held_for_a_writer_slow_to_start(tmp_path: Path) -> None:
    made = tmp_path / "generated.py"
    made.write_text("")
    batcher = Batcher(SETTLE)
    batcher.record("created", made, 10.0)
    released_at = 10.0 + CREATE_HOLD
    assert batcher.take(released_at) is None and batcher.held() == {made}
    assert batcher.due_at() == released_at + WRITE_HOLD  # now held like a file being written
    batcher.record("written", made, 10.5)
    assert batcher.take(10.5 + SETTLE) == Batch(frozenset({made}))


def test_a_deleted_file_waits_to_see_whether_it_comes_back() -> None:
    batcher = Batcher(SETTLE)
    batcher.record("deleted", A, 10.0)
    assert batcher.due_at() == 10.0 + REMOVE_HOLD
    assert batcher.take(10.0 + SETTLE) is None
    assert batcher.take(10.0 + REMOVE_HOLD) == Batch(removed=frozenset({A}))


def test_delete_then_write_is_a_change_not_a_removal() -> None:
    batcher = Batcher(SETTLE)
    batcher.record("deleted", A, 10.0)  # an editor's delete-then-write save
    batcher.record("written", A, 10.02)
    batch = batcher.take(10.0 + REMOVE_HOLD)
    assert batch == Batch(frozenset({A}))


def test_the_earliest_deadline_is_due_first() -> None:
    batcher = Batcher(SETTLE)
    batcher.record("writing", A, 10.0)  # due at 11.0 (write hold)
    batcher.record("written", B, 10.1)  # a burst: due at 10.1 + BURST_QUIET
    assert batcher.due_at() == 10.1 + BURST_QUIET
    assert batcher.take(10.1 + BURST_QUIET) == Batch(frozenset({B}))
    assert batcher.due_at() == 10.0 + WRITE_HOLD and batcher.held() == {A}
    batcher.record("written", C, 10.6)
    batcher.record("written", A, 10.7)
    assert batcher.take(10.7 + BURST_QUIET) == Batch(frozenset({A, C}))
