"""Analysis workers are long-lived and bounded (issue 12): queueing N passes starts at most as
many workers as the pool has threads (not one runnable per pass: 20,000 for a library), each
takes pass after pass, and a pass queued just as the last worker leaves still runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.jobs import Batch, BatchResult
from diagnostics_app.core.planner import PlannedJob
from diagnostics_app.qt.app import wait_until_idle
from diagnostics_app.qt.main_window import MainWindow
from diagnostics_app.qt.settings import AppSettings
from diagnostics_app.qt.workers import AnalysisWorker, WorkerSlots
from tests.core.project_factory import write_project, write_tone

SOURCES = 7
WORKERS = 2


def _batch(source: str) -> Batch:
    return Batch(source, [PlannedJob(source, "core.rms", "default", "{}", ("rms",))], 10, "gui")


class ScriptedRunner:
    """The runner as a worker sees it: ``take``, ``execute``, ``pending``. When ``take`` finds
    the queue empty it runs ``on_empty`` once first: another thread queueing a pass right
    then, between the worker's empty ``take`` and its leaving."""

    def __init__(self, queue: list[Batch], on_empty: Callable[[], None]) -> None:
        self.queue = queue
        self.ran: list[str] = []
        self.where: list[Any] = []  # where each pass was run
        self._on_empty: Callable[[], None] | None = on_empty

    def pending(self) -> int:
        return len(self.queue)

    def take(self) -> Batch | None:
        if self.queue:
            return self.queue.pop(0)
        if self._on_empty is not None:
            on_empty, self._on_empty = self._on_empty, None
            on_empty()  # the pass arrives after this take found nothing
        return None

    def execute(self, batch: Batch, run: Any) -> BatchResult:
        self.ran.append(batch.job_id)
        self.where.append(run)
        return BatchResult(batch, "done", 0.0, None)


def test_slots_start_no_more_workers_than_threads_and_let_one_leave_only_when_empty() -> None:
    pending = [5]
    slots = WorkerSlots(lambda: pending[0])
    assert slots.claim(WORKERS) == WORKERS
    assert slots.claim(WORKERS) == 0  # the live ones take the other passes
    assert slots.claim(WORKERS + 1) == 1  # more threads allowed since: one more
    assert not slots.leave()  # passes are queued: a worker stays
    pending[0] = 0
    assert slots.leave() and slots.live == WORKERS
    pending[0] = 1
    assert slots.claim(WORKERS) == 0  # one pass, two live workers: none started
    assert slots.leave(force=True) and slots.leave(force=True) and slots.live == 0
    assert slots.claim(WORKERS) == 1


def test_a_pass_queued_as_the_last_worker_leaves_is_taken_by_it() -> None:
    runner = ScriptedRunner([_batch("a")], lambda: runner.queue.append(_batch("late")))
    slots = WorkerSlots(runner.pending)
    assert slots.claim(WORKERS) == 1
    worker = AnalysisWorker(runner, slots=slots)  # type: ignore[arg-type]
    finished: list[str] = []
    worker.signals.finished.connect(lambda result: finished.append(result.batch.job_id))
    worker.run()  # here, in this thread: the whole life of a worker
    assert runner.ran == finished == ["a", "late"]
    assert worker.passes == 2 and slots.live == 0 and runner.pending() == 0


def test_a_worker_asks_where_before_each_pass() -> None:
    """A switch to a Dask scheduler holds for the passes a live worker has not started."""
    runner = ScriptedRunner([_batch("a"), _batch("b")], lambda: None)
    current = ["local processes"]
    worker = AnalysisWorker(runner, where=lambda: current[0])  # type: ignore[arg-type]
    worker.signals.finished.connect(lambda result: current.__setitem__(0, "scheduler"))
    worker.run()
    assert runner.where == ["local processes", "scheduler"]


def test_a_worker_that_fails_leaves_its_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = ScriptedRunner([_batch("a")], lambda: None)

    def broken() -> Batch | None:
        raise RuntimeError("heap corrupted")

    monkeypatch.setattr(runner, "take", broken)
    slots = WorkerSlots(runner.pending)
    assert slots.claim(WORKERS) == 1
    worker = AnalysisWorker(runner, slots=slots)  # type: ignore[arg-type]
    failed: list[tuple[str, str]] = []
    worker.signals.failed.connect(lambda job_id, message: failed.append((job_id, message)))
    worker.run()
    assert failed == [("", "internal error: RuntimeError: heap corrupted")]
    assert slots.live == 0 and slots.claim(WORKERS) == 1  # the next enqueue starts one


def _library(folder: Path) -> Path:
    sources, tracks = [], []
    for i in range(SOURCES):
        write_tone(folder / "audio" / f"s{i}.wav", 0.2, 110.0 + 20 * i, seed=i)
        sources.append({"id": f"s{i}", "path": f"audio/s{i}.wav"})
        tracks.append(
            {"id": f"t{i}", "name": f"T{i}", "source": f"s{i}", "requests": [{"feature": "rms"}]}
        )
    return write_project(folder, {"name": "Library", "sources": sources, "tracks": tracks})


def test_calculate_missing_starts_at_most_the_pools_threads_and_runs_every_pass(
    make_window: Callable[..., MainWindow], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = make_window(
        _library(tmp_path), settings=AppSettings(workers=WORKERS, auto_analyse=False)
    )
    controller = window.controller
    pool = controller.pool
    assert pool.maxThreadCount() == WORKERS
    started: list[AnalysisWorker] = []
    start = pool.start

    def counted(worker: AnalysisWorker) -> None:
        started.append(worker)
        start(worker)

    monkeypatch.setattr(pool, "start", counted)
    assert controller.calculate_missing() == SOURCES  # one pass per source
    assert 1 <= len(started) <= WORKERS
    assert wait_until_idle(window)
    assert sum(w.passes for w in started) == SOURCES  # every pass, by the few workers
    assert {r.state for r in controller.diagnosis.rows} == {"ok"}
    assert controller.calculate_missing() == 0  # nothing missing: no worker started either
    assert len(started) <= WORKERS


def test_cancel_all_with_a_store_that_refuses_the_records_says_so_in_one_line(
    make_window: Callable[..., MainWindow], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk at Cancel All: the passes are stopped, the window says why the records were
    not written in one line, and no exception leaves the action."""
    window = make_window(
        _library(tmp_path), settings=AppSettings(workers=WORKERS, auto_analyse=False)
    )
    controller = window.controller
    queue = controller._analysis
    monkeypatch.setattr(queue, "_start_workers", lambda: None)  # the passes stay queued
    assert controller.calculate_missing() == SOURCES
    store = controller.session.store

    def refuse(*args: object, **kwargs: object) -> int:
        raise StoreError(f"{store.root}/index.sqlite: cannot update a job: disk full")

    monkeypatch.setattr(store, "update_jobs", refuse)
    said: list[str] = []
    queue.message.connect(lambda text, _ms: said.append(text))
    assert queue.cancel_all() == 0
    assert said == [
        f"Cannot record the cancelled jobs: {store.root}/index.sqlite: cannot update a job: disk full"
    ]
    assert "\n" not in said[0]
    assert controller.session.runner.pending() == 0
