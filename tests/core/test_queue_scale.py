"""Queueing a library's passes costs a fixed number of store transactions (issue 12): "calculate
missing" on 20,000 sources queued 20,000 passes, and each wrote its job record in its own
transaction (and cancelling them, one update each). Counted in transactions, not in seconds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.jobs import JobRunner
from diagnostics_app.core.planner import PlannedJob
from diagnostics_app.core.store import FeatureStore

MANY = 400


def _jobs(n: int, first: int = 0) -> list[PlannedJob]:
    # one pass per source (a library: one track per source)
    return [
        PlannedJob(f"s{i:05d}", "core.rms", "default", "{}", ("rms",))
        for i in range(first, first + n)
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    s = FeatureStore.open(tmp_path / "cache")
    yield s
    s.close()


def _runner(store: FeatureStore) -> JobRunner:
    def nothing(_: object) -> object:
        raise AssertionError("queueing neither reads the project nor the audio")

    return JobRunner(nothing, Registry.builtin(), store, nothing)  # type: ignore[arg-type]


class Transactions:
    """The write transactions the store's connection begins (SQLite's own statement trace)."""

    def __init__(self, store: FeatureStore) -> None:
        self.count = 0
        self._conn = store._db.live()
        self._conn.set_trace_callback(self._seen)

    def _seen(self, statement: str) -> None:
        if statement.startswith("BEGIN IMMEDIATE"):
            self.count += 1

    def stop(self) -> int:
        self._conn.set_trace_callback(None)
        return self.count


def _queue_and_cancel(store: FeatureStore, n: int) -> tuple[int, int]:
    """Transactions to queue ``n`` passes (the lease is held first: its one beat is not the
    queue's), then to cancel them all."""
    runner = _runner(store)
    store.lease.hold()
    try:
        counted = Transactions(store)
        assert len(runner.enqueue(_jobs(n))) == n
        queued = counted.stop()
        counted = Transactions(store)
        assert runner.cancel_all() == n
        cancelled = counted.stop()
    finally:
        store.lease.release()
    return queued, cancelled


def test_queueing_and_cancelling_many_passes_takes_as_many_transactions_as_one(
    store: FeatureStore,
) -> None:
    one = _queue_and_cancel(store, 1)
    many = _queue_and_cancel(store, MANY)
    assert one == many == (1, 1)
    records = store.jobs()
    assert sum(j.state == "cancelled" for j in records) == 1 + MANY
    assert {j.message for j in records} == {"cancelled before it started"}
    assert not store.jobs(active_only=True)


def test_a_batch_is_queued_in_order_with_one_fresh_id_and_record_each(store: FeatureStore) -> None:
    runner = _runner(store)
    batches = runner.enqueue(_jobs(MANY))
    assert [b.source for b in batches] == [f"s{i:05d}" for i in range(MANY)]
    ids = [b.job_id for b in batches]
    assert len(set(ids)) == MANY and all(len(i) == 12 and int(i, 16) >= 0 for i in ids)
    by_id = {j.id: j for j in store.jobs(active_only=True)}
    assert set(by_id) == set(ids)
    assert {(j.state, j.label, j.origin) for j in by_id.values()} == {("queued", "queued", "cli")}
    # the same jobs again: already queued here, not queued twice (and nothing written)
    counted = Transactions(store)
    assert runner.enqueue(_jobs(MANY)) == []
    assert counted.stop() == 0
    assert runner.pending() == MANY
    runner.cancel_all()


def test_cancelling_a_large_queue_keeps_the_finished_records_trimmed_per_key(
    store: FeatureStore,
) -> None:
    """A cancel of many keys trims in one scan (the store keeps 10 finished jobs per key):
    the same records are kept as with a query per key."""
    from diagnostics_app.core.store.jobs import FINISHED_JOBS_PER_KEY

    runner = _runner(store)
    for _ in range(FINISHED_JOBS_PER_KEY + 2):
        runner.enqueue(_jobs(20))
        runner.cancel_all()
    records = store.jobs()
    per_source: dict[str, int] = {}
    for j in records:
        per_source[j.source_id] = per_source.get(j.source_id, 0) + 1
    assert per_source == {f"s{i:05d}": FINISHED_JOBS_PER_KEY for i in range(20)}


def test_cancel_all_stops_the_running_passes_even_when_the_store_refuses_the_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancel All stops what runs first: a store that cannot record the queued passes as
    cancelled (a full disk) raises after every pass was ended and announced."""
    store = FeatureStore.open(tmp_path / "cache")
    try:

        def nothing(_: object) -> object:
            raise AssertionError

        runner = JobRunner(nothing, Registry.builtin(), store, nothing)  # type: ignore[arg-type]
        announced: list[tuple[str, str]] = []
        runner.events.job_updated.connect(lambda e: announced.append((e.job_id, e.state)))
        runner.enqueue(
            [PlannedJob(f"s{i}", "core.rms", "default", "{}", ("rms",)) for i in range(3)]
        )
        running = runner.take()
        assert running is not None

        def refuse(*args: object, **kwargs: object) -> int:
            raise StoreError("disk full")

        monkeypatch.setattr(store, "update_jobs", refuse)
        with pytest.raises(StoreError):
            runner.cancel_all()
        assert running.cancel.cancelled
        assert runner.pending() == 0 and runner.take() is None
        assert sum(state == "cancelled" for _, state in announced) == 2
    finally:
        store.close()
