"""The GUI's passes in worker processes (core/pass_process.py): the same committed bytes as a
thread pass, cancellable through the store, and a dead worker is a failed pass, not a hang."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from diagnostics_app.core import pass_process
from diagnostics_app.core.engine import CancelToken
from diagnostics_app.core.events import JobUpdated
from diagnostics_app.core.jobs import BatchResult, PassWork, Report, run_work
from diagnostics_app.core.pass_process import ProcessPasses
from diagnostics_app.core.session import Session
from tests.core import pass_hooks
from tests.core.project_factory import write_project, write_tone

WAIT_S = 60.0


def _project(folder: Path, seconds: float) -> Path:
    write_tone(folder / "audio" / "a.wav", seconds, 220.0, channels=2, seed=3)
    return write_project(
        folder,
        {
            "name": "P",
            "sources": [{"id": "a", "path": "audio/a.wav"}],
            "tracks": [
                {
                    "id": "t",
                    "name": "T",
                    "source": "a",
                    "requests": [{"feature": "rms"}, {"feature": "spectrogram"}],
                }
            ],
        },
    )


def _data(session: Session) -> list[str]:
    """The committed array files' contents (names differ between runs, bytes must not)."""
    root = Path(session.store.root)
    files = [p for p in root.rglob("*.npy") if "trash" not in p.parts]
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in files)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[list[Session]]:
    opened: list[Session] = []
    yield opened
    for s in opened:
        s.close()


def _open(path: Path, sessions: list[Session]) -> Session:
    session = Session.open(path)
    sessions.append(session)
    return session


def _run_one(session: Session, passes: ProcessPasses | None) -> BatchResult:
    [batch] = session.enqueue(session.plan())
    taken = session.runner.take()
    assert taken is batch
    return session.runner.execute(taken, passes)


def test_a_process_pass_commits_the_same_bytes_as_a_thread_pass(
    tmp_path: Path, sessions: list[Session]
) -> None:
    thread = _open(_project(tmp_path / "thread", 2.0), sessions)
    process = _open(_project(tmp_path / "process", 2.0), sessions)
    reports: list[JobUpdated] = []
    process.events.job_updated.connect(reports.append)
    passes = ProcessPasses(process.store, 1)
    try:
        assert _run_one(thread, None).status == "done"
        result = _run_one(process, passes)
    finally:
        passes.close()
    assert result.status == "done", result.message
    assert _data(process) and _data(process) == _data(thread)
    assert {r.state for r in process.diagnose().rows} == {"ok"}
    states = [e.state for e in reports]
    assert states[0] == "queued" and states[-1] == "done" and "running" in states
    [job] = [j for j in process.store.jobs() if j.id == result.batch.job_id]
    assert (job.state, job.origin) == ("done", "cli")  # the record of the queueing process


def test_cancel_stops_a_process_pass(tmp_path: Path, sessions: list[Session]) -> None:
    session = _open(_project(tmp_path, 20.0), sessions)
    running = threading.Event()

    def on(event: JobUpdated) -> None:
        if event.state == "running" and (event.progress or 0) > 0:
            running.set()

    session.events.job_updated.connect(on)
    [batch] = session.enqueue(session.plan())
    # the worker holds after its first block until the cancel request is in the store
    passes = ProcessPasses(session.store, 1, target=pass_hooks.run_until_cancel_requested)
    results: list[BatchResult] = []
    try:
        taken = session.runner.take()
        assert taken is batch
        worker = threading.Thread(
            target=lambda: results.append(session.runner.execute(batch, passes))
        )
        worker.start()
        assert running.wait(WAIT_S), "the process pass never reported progress"
        assert session.runner.cancel(batch.job_id)
        worker.join(WAIT_S)
        assert not worker.is_alive()
    finally:
        passes.close()
    assert [r.status for r in results] == ["cancelled"]
    assert {r.state for r in session.diagnose().rows} == {"missing"}  # nothing committed
    assert not session.store.cancel_requested(batch.job_id)


def test_a_dead_worker_process_fails_its_pass_and_the_next_pass_runs(
    tmp_path: Path, sessions: list[Session]
) -> None:
    session = _open(_project(tmp_path, 1.0), sessions)
    passes = ProcessPasses(session.store, 1, target=pass_process._crash)
    try:
        result = _run_one(session, passes)
        assert result.status == "failed"
        assert result.message is not None and "ended unexpectedly" in result.message
        [row] = {r.state for r in session.diagnose().rows}
        assert row == "failed"
        passes._target = pass_process._child_run  # a new pool for the next pass
        assert _run_one(session, passes).status == "done"
    finally:
        passes.close()


def test_a_cancel_after_the_last_block_leaves_the_pass_done(
    tmp_path: Path, sessions: list[Session]
) -> None:
    """Every entry is committed before the last progress report: a cancel arriving then is too
    late, and the pass is reported done (not "cancelled" beside rows that are ok)."""
    session = _open(_project(tmp_path, 2.0), sessions)
    [batch] = session.enqueue(session.plan())

    def run(work: PassWork, report: Report, cancel: CancelToken) -> None:
        def report_and_cancel_at_end(fraction: float, label: str) -> None:
            report(fraction, label)
            if fraction >= 1.0:
                assert session.runner.cancel(batch.job_id)

        run_work(session.store, session.registry, work, report_and_cancel_at_end, cancel)

    assert session.runner.take() is batch
    result = session.runner.execute(batch, run)
    assert (result.status, result.message) == ("done", None)
    assert {r.state for r in session.diagnose().rows} == {"ok"}
    assert not session.store.cancel_requested(batch.job_id)
    [job] = [j for j in session.store.jobs() if j.id == batch.job_id]
    assert job.state == "done"


def test_a_process_pass_remembers_its_audio_blocks_in_the_worker(
    tmp_path: Path, sessions: list[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The block digests (changed ranges, core.ranges) cost a decode of the file: the worker
    process that runs the pass makes them, never the process that queued it (the GUI's, where
    a decode on a thread competes with the GUI thread)."""
    from diagnostics_app.core import audio

    session = _open(_project(tmp_path, 2.0), sessions)

    def not_here(*args: object, **kwargs: object) -> None:
        raise AssertionError("the audio was decoded for block digests in the queueing process")

    monkeypatch.setattr(audio, "block_digests", not_here)
    passes = ProcessPasses(session.store, 1)
    try:
        result = _run_one(session, passes)
    finally:
        passes.close()
    assert result.status == "done", result.message
    facts = session.source_status("a").facts
    assert facts is not None
    assert session.store.get_blocks(facts.digest) is not None  # made in the worker


def test_a_worker_lowers_its_priority_before_it_imports_the_engine(
    tmp_path: Path, sessions: list[Session]
) -> None:
    """Workers start niced (the GUI keeps a core while two of them import numpy and the engine,
    ~0.3 s of CPU each): the pool's initializer is worker_start.init, whose module imports
    nothing heavy, so a worker runs it (unpickling it imports only that module) first."""
    code = (
        "import sys; import diagnostics_app.core.worker_start; "
        "print(sorted(m for m in ('numpy', 'scipy', 'soundfile', 'diagnostics_app.core.engine') "
        "if m in sys.modules))"
    )
    light = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert light.stdout.strip() == "[]"
    session = _open(_project(tmp_path, 0.2), sessions)
    passes = ProcessPasses(session.store, 1, target=pass_hooks.report_priority)
    try:
        result = _run_one(session, passes)
    finally:
        passes.close()
    assert result.status == "failed"
    expected = min(19, os.nice(0) + pass_process.NICE)
    assert result.message == f"nice={expected}"
