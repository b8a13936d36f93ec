"""Typed change events (core/events.py): each change is published once, as a value naming what
changed, on the session's signal group; the watcher notices other processes' writes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from diagnostics_app.core import edits
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.events import (
    EntriesCommitted,
    HistoryChanged,
    JobUpdated,
    ProjectReplaced,
    StoreChanged,
    StoreWatcher,
)
from diagnostics_app.core.planner import Selection
from diagnostics_app.core.session import Session
from tests.core.project_factory import shared_source_project

WAIT_S = 60.0  # the longest a held pass waits (a failed test, not a hang)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    s = Session.open(shared_source_project(tmp_path), Registry.builtin())
    yield s
    s.close()


class Recorder:
    """Every event of a session, in order."""

    def __init__(self, session: Session) -> None:
        self.events: list[object] = []
        group = session.events
        for sig in (
            group.project_replaced,
            group.history_changed,
            group.entries_committed,
            group.job_updated,
            group.store_changed,
        ):
            sig.connect(self.events.append)

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events if isinstance(e, kind)]


def test_a_pass_publishes_its_keys_with_every_state_and_progress(session: Session) -> None:
    rec = Recorder(session)
    [planned] = session.plan(Selection(sources=("drums",), features=("rms",)))
    assert planned.entry_key.source_id == "drums"
    [batch] = session.enqueue([planned])
    session.runner.run_all()
    updates = rec.of(JobUpdated)
    assert {u.job_id for u in updates} == {batch.job_id}
    assert all(u.keys == (planned.entry_key,) for u in updates)
    states = [u.state for u in updates]
    assert states[0] == "queued" and states[-1] == "done"
    running = [u.progress for u in updates if u.state == "running"]
    assert running[0] == 0.0 and any(p is not None and 0 < p < 1 for p in running)
    assert running == sorted(running)  # progress never goes back
    # committed once, after the last update, naming exactly the pass's entries
    [committed] = rec.of(EntriesCommitted)
    assert committed == EntriesCommitted(frozenset(batch.keys), "job")
    assert rec.events.index(committed) > rec.events.index(updates[-1])


def test_a_pass_cancelled_before_it_starts_commits_nothing(session: Session) -> None:
    rec = Recorder(session)
    [batch] = session.enqueue(session.plan(Selection(sources=("drums",), features=("rms",))))
    assert session.runner.cancel(batch.job_id)
    queued, cancelled = rec.of(JobUpdated)
    assert (queued.state, cancelled.state) == ("queued", "cancelled")
    assert cancelled.message == "cancelled before it started"
    assert rec.of(EntriesCommitted) == []


def test_edit_undo_and_save_publish_project_and_history(session: Session) -> None:
    rec = Recorder(session)
    session.edit("tempo", lambda p: edits.set_tempo_map(p, [{"time": 0.0, "bpm": 99.0}]))
    [replaced] = rec.of(ProjectReplaced)
    assert replaced.project is session.project and replaced.cause == "edit"
    assert rec.of(HistoryChanged)[-1] == HistoryChanged("tempo", None, clean=False)
    assert session.dirty

    session.undo()  # back to the saved state: clean again
    assert rec.of(HistoryChanged)[-1] == HistoryChanged(None, "tempo", clean=True)
    assert not session.dirty
    session.redo()
    assert rec.of(HistoryChanged)[-1].clean is False

    session.save()
    assert rec.of(ProjectReplaced)[-1].cause == "save"
    assert rec.of(HistoryChanged)[-1] == HistoryChanged("tempo", None, clean=True)
    session.undo()  # the saved state moved: undoing away from it is a modification
    assert session.dirty


def test_an_edit_that_changes_nothing_publishes_nothing(session: Session) -> None:
    rec = Recorder(session)
    session.edit("same", lambda p: p)
    assert rec.events == []


def test_prune_and_its_undo_publish_the_pruned_keys(session: Session) -> None:
    session.enqueue(session.plan())
    session.runner.run_all()
    session.edit("drop", lambda p: edits.remove_request(p, "kick", 2))  # spectrogram: extraneous
    extraneous = [r for r in session.diagnose().rows if r.state == "extraneous"]
    assert extraneous
    rec = Recorder(session)
    session.prune(extraneous)
    keys = frozenset(r.key.entry_key for r in extraneous)
    assert rec.of(EntriesCommitted) == [EntriesCommitted(keys, "prune")]
    session.undo()
    assert rec.of(EntriesCommitted)[-1] == EntriesCommitted(keys, "undo")


def test_the_watcher_sees_another_writer_and_only_real_changes(tmp_path: Path) -> None:
    project = shared_source_project(tmp_path)
    viewer = Session.open(project, Registry.builtin())
    worker = Session.open(project, Registry.builtin())  # another connection: another process
    try:
        seen: list[StoreChanged] = []
        viewer.events.store_changed.connect(seen.append)
        watcher = StoreWatcher(viewer.store, viewer.events)
        watcher.start()
        watcher.stop()  # the thread is not needed to test one poll: check() is the poll
        assert watcher.check() is None and seen == []  # nothing happened

        worker.enqueue(worker.plan(Selection(sources=("drums",), features=("rms",))))
        event = watcher.check()
        assert event is not None and seen == [event]
        assert event.jobs_changed and not event.entries_changed

        worker.runner.run_all()
        event = watcher.check()
        assert event is not None and event.entries_changed
        assert watcher.check() is None  # published once per change
    finally:
        worker.close()
        viewer.close()


def test_the_watcher_reports_an_unreadable_index_once(tmp_path: Path) -> None:
    s = Session.open(shared_source_project(tmp_path), Registry.builtin())
    errors: list[str] = []
    watcher = StoreWatcher(s.store, s.events, on_error=errors.append)
    watcher.start()
    watcher.stop()
    s.close()  # the index is gone from under the watcher
    assert watcher.check() is None and watcher.check() is None
    assert len(errors) == 1 and errors[0]


def test_the_watcher_publishes_the_end_of_a_job_active_before_it_started(tmp_path: Path) -> None:
    """A job of another process already running when the watcher starts: its end is still
    published (the GUI must not show its rows running for ever)."""
    project = shared_source_project(tmp_path)
    viewer = Session.open(project, Registry.builtin())
    worker = Session.open(project, Registry.builtin())
    try:
        [batch] = worker.enqueue(worker.plan(Selection(sources=("drums",), features=("rms",))))
        worker.store.update_job(batch.job_id, state="running", progress=0.5, label="x")
        seen: list[JobUpdated] = []
        viewer.events.job_updated.connect(seen.append)
        watcher = StoreWatcher(viewer.store, viewer.events)
        watcher._owner = (-1, "another process")  # the worker shares our pid: pretend not
        watcher.start()
        watcher.stop()
        worker.store.update_job(batch.job_id, state="failed", progress=None, label="failed")
        watcher.check()
        assert [(e.job_id, e.state) for e in seen] == [(batch.job_id, "failed")]
    finally:
        worker.close()
        viewer.close()


def test_the_watcher_reads_a_jobs_change_again_after_a_failed_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = shared_source_project(tmp_path)
    viewer = Session.open(project, Registry.builtin())
    worker = Session.open(project, Registry.builtin())
    try:
        seen: list[StoreChanged] = []
        viewer.events.store_changed.connect(seen.append)
        watcher = StoreWatcher(viewer.store, viewer.events)
        watcher.start()
        watcher.stop()
        worker.enqueue(worker.plan(Selection(sources=("drums",), features=("rms",))))
        real = viewer.store.jobs

        def locked(active_only: bool = False) -> list:  # type: ignore[type-arg]
            raise StoreError("database is locked")

        monkeypatch.setattr(viewer.store, "jobs", locked)
        first = watcher.check()
        assert first is not None and first.active_jobs is None
        monkeypatch.setattr(viewer.store, "jobs", real)
        again = watcher.check()  # the same change, read now
        assert again is not None and again.active_jobs is not None
        assert len(again.active_jobs) == 1
    finally:
        worker.close()
        viewer.close()


def test_a_late_progress_report_never_resurrects_a_finished_job(session: Session) -> None:
    [batch] = session.enqueue(session.plan(Selection(sources=("drums",), features=("rms",))))
    [result] = session.runner.run_all()
    assert result.status == "done"
    rec = Recorder(session)
    session.runner._mark(batch, "running", 0.5, "late")  # a forwarder thread held up
    assert rec.of(JobUpdated) == []
    record = session.store.job(batch.job_id)
    assert record is not None and record.state == "done"


def test_a_refused_batch_of_job_records_queues_and_announces_nothing(session: Session) -> None:
    """The records of one enqueue are one transaction: when the index refuses the second
    insert (a full disk), the first is rolled back too, no pass is queued or announced, and
    the runner queues the same jobs once the store takes them."""
    jobs = session.plan()
    conn = session.store._db.live()
    conn.execute(
        "CREATE TEMP TRIGGER full_disk AFTER INSERT ON jobs WHEN "
        "(SELECT count(*) FROM jobs) >= 2 BEGIN SELECT RAISE(ABORT, 'database or disk is "
        "full'); END"
    )
    rec = Recorder(session)
    with pytest.raises(StoreError, match="disk is full"):
        session.enqueue(jobs)
    assert rec.of(JobUpdated) == []
    assert session.runner.pending() == 0
    assert session.store.jobs() == []  # the first insert was rolled back with the second
    conn.execute("DROP TRIGGER full_disk")
    batches = session.enqueue(jobs)
    assert len(batches) >= 2 and session.runner.pending() == len(batches)
    assert {r.status for r in session.runner.run_all()} == {"done"}


def test_ctrl_c_while_passes_run_on_threads_cancels_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``analyze --jobs N``: Ctrl+C arrives in the main thread while it waits for the pool; the
    queued passes are cancelled and the running ones stop at their next block (before, the
    pool finished every pass first)."""
    project = shared_source_project(tmp_path)
    with Session.open(project, Registry.builtin()) as session:
        batches = session.enqueue(session.plan())
        assert len(batches) >= 2
        by_id = {b.job_id: b for b in batches}
        once = threading.Lock()  # two workers start at once: one Ctrl+C, not two
        interrupted: list[str] = []
        running = threading.Event()

        def on_first_running(event: JobUpdated) -> None:
            if event.state == "running" and once.acquire(blocking=False):
                interrupted.append(event.job_id)
                running.set()

        real_cancel_requested = session.store.cancel_requested

        def held(job_id: str) -> bool:
            # the interrupted pass holds at its first cancellation check until the interrupt
            # has cancelled it: the run cannot end first, however fast the machine
            if interrupted and job_id == interrupted[0]:
                assert by_id[job_id].cancel.wait(WAIT_S), "Ctrl+C never cancelled the pass"
            return real_cancel_requested(job_id)

        monkeypatch.setattr(session.store, "cancel_requested", held)
        # Ctrl+C: KeyboardInterrupt where the main thread waits for the pool, once a pass runs
        # (raised there rather than sent as SIGINT: the OS's delivery is not under test, and
        # another test's library may have replaced the handler in this worker process)
        real_result = Future.result
        fired = threading.Event()

        def result(future: Future[Any], timeout: float | None = None) -> Any:
            if threading.current_thread() is threading.main_thread() and not fired.is_set():
                fired.set()
                assert running.wait(WAIT_S), "no pass ever ran"
                raise KeyboardInterrupt  # Ctrl+C while the main thread waits for the pool
            return real_result(future, timeout)

        monkeypatch.setattr(Future, "result", result)

        session.events.job_updated.connect(on_first_running)
        with pytest.raises(KeyboardInterrupt):
            session.runner.run_all(workers=2)
        states = {b.job_id: session.store.job(b.job_id).state for b in batches}  # type: ignore[union-attr]
        assert "cancelled" in states.values(), states
        assert not {"queued", "running"} & set(states.values()), states
        assert session.runner.pending() == 0


def test_ctrl_c_in_a_serial_analyze_ends_the_running_passes_as_cancelled(
    tmp_path: Path,
) -> None:
    """``analyze`` without ``--jobs``: the passes of a source run in this thread, so Ctrl+C
    lands inside one of them. Their records end as ``cancelled`` then, as with threads,
    instead of staying ``running`` until another open reaps them as failed; a pass that had
    committed everything (it reported its end) stays ``done``."""
    project = shared_source_project(tmp_path)
    with Session.open(project, Registry.builtin()) as session:
        batches = session.enqueue(session.plan())
        assert len(batches) >= 2
        once = threading.Lock()

        def on_first_block(event: JobUpdated) -> None:
            if event.state == "running" and event.progress and once.acquire(blocking=False):
                # Ctrl+C lands in this thread, which runs the passes (raised, not signalled:
                # another test's library may have replaced the SIGINT handler in this worker)
                raise KeyboardInterrupt

        session.events.job_updated.connect(on_first_block)
        with pytest.raises(KeyboardInterrupt):
            session.runner.run_all(workers=0)
        assert once.locked()
        states = {b.job_id: session.store.job(b.job_id).state for b in batches}  # type: ignore[union-attr]
        assert "cancelled" in states.values(), states
        assert not {"queued", "running"} & set(states.values()), states
        ok = {k for r in session.diagnose().rows if r.state == "ok" for k in [r.key.entry_key]}
        for b in batches:  # done passes are those whose entries are all committed
            committed = set(b.keys) <= ok
            assert (states[b.job_id] == "done") == committed, (b.job_id, states)
