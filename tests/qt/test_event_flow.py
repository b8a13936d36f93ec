"""Change flows as typed events (issue 8): a running job's progress reaches the table without a
re-derivation, and the GUI thread makes no SQLite call while passes run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from diagnostics_app.core import jobs as core_jobs
from diagnostics_app.core.events import JobUpdated
from diagnostics_app.qt.main_window import MainWindow
from tests.core.project_factory import write_project, write_tone

WAIT_MS = 20000
STEPS = 4  # progress events checked one by one


def _long_project(folder: Path) -> Path:
    write_tone(folder / "audio" / "long.wav", 60.0, 220.0)  # many engine blocks: many reports
    return write_project(
        folder,
        {
            "name": "Long",
            "sources": [{"id": "long", "path": "audio/long.wav"}],
            "tracks": [
                {"id": "t", "name": "T", "source": "long", "requests": [{"feature": "rms"}]}
            ],
        },
    )


class Stepper:
    """Holds the pass's worker thread at each progress report until the test lets it go, so
    the test can look at the table between two reports. Subscribed after the window, so the
    window's bridge has already posted the event when the worker is held."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.proceed = threading.Event()
        self.free = threading.Event()
        self.event: JobUpdated | None = None

    def __call__(self, event: JobUpdated) -> None:
        if self.free.is_set() or event.state != "running" or not 0 < (event.progress or 0) < 1:
            return
        self.event = event
        self.proceed.clear()
        self.arrived.set()
        self.proceed.wait(WAIT_MS / 1000)

    def next(self) -> JobUpdated:
        assert self.arrived.wait(WAIT_MS / 1000), "the pass stopped reporting progress"
        self.arrived.clear()
        assert self.event is not None
        return self.event

    def release(self) -> None:
        self.proceed.set()


def _running_cell(window: MainWindow) -> tuple[str, float | None] | None:
    for row in window.table.table_model.rows():
        if row.key.feature == "rms":
            return row.state, row.progress
    return None


def test_progress_reaches_the_table_without_a_diagnosis_and_no_sql_on_the_gui_thread(
    make_window: Callable[..., MainWindow],
    qtbot: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(core_jobs, "PROGRESS_INTERVAL", 0.0)  # a report per engine block
    window = make_window(_long_project(tmp_path))
    window.select(("source", "long"))
    qtbot.waitUntil(lambda: _running_cell(window) is not None, timeout=WAIT_MS)
    session = window.controller.session

    derivations = [0]
    diagnose = session.diagnose

    def counted() -> Any:
        derivations[0] += 1
        return diagnose()

    monkeypatch.setattr(session, "diagnose", counted)
    gui_sql: list[str] = []
    main = threading.main_thread()

    def trace(statement: str) -> None:
        if threading.current_thread() is main:
            gui_sql.append(statement)

    stepper = Stepper()
    session.events.job_updated.connect(stepper)
    [row] = [r for r in window.table.table_model.rows() if r.key.feature == "rms"]
    assert window.controller.regenerate([row]) == 1  # enqueue writes the job record: before
    session.store._db.live().set_trace_callback(trace)  # ... from here on, none on this thread

    first = stepper.next()
    # the queued -> running transition is a change of the row: one re-derivation shows it
    qtbot.waitUntil(
        lambda: (
            (_running_cell(window) or ("", None))[0] == "running"
            and not window.controller.diagnosis_pending
        ),
        timeout=WAIT_MS,
    )
    settled = derivations[0]
    seen = [first.progress]
    event = first
    for _ in range(STEPS):
        qtbot.waitUntil(
            lambda e=event: _running_cell(window) == ("running", e.progress), timeout=WAIT_MS
        )
        stepper.release()
        event = stepper.next()
        seen.append(event.progress)
    qtbot.waitUntil(
        lambda e=event: _running_cell(window) == ("running", e.progress), timeout=WAIT_MS
    )
    assert derivations[0] == settled, "progress alone must not re-derive the diagnosis"
    assert len(set(seen)) == len(seen) == STEPS + 1  # each step showed a new value

    stepper.free.set()
    stepper.release()
    qtbot.waitUntil(lambda: (_running_cell(window) or ("", None))[0] == "ok", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.controller.is_idle(), timeout=WAIT_MS)
    assert derivations[0] > settled  # the commit did re-derive (entries changed)
    session.store._db.live().set_trace_callback(None)
    assert gui_sql == [], f"SQLite on the GUI thread during the run: {gui_sql[:3]}"
