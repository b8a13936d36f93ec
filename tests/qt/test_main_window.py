"""Scenarios on the main window over a real demo project: nothing is faked, every state comes
from the core. Waits are on real signals and conditions, never sleeps."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox, QTableView, QTreeView

from diagnostics_app import __version__
from diagnostics_app.core.diagnostics import Row
from diagnostics_app.core.events import JobUpdated
from diagnostics_app.core.session import Session
from diagnostics_app.qt.app import wait_until_idle
from diagnostics_app.qt.main_window import LOADING_TEXT, MainWindow
from diagnostics_app.qt.models.roles import CountsRole

WAIT_MS = 20000
OBJECT_NAMES = ("sourceTree", "descriptorTable", "explainPanel", "plotArea", "jobPanel")
ACTION_NAMES = (
    "actionRegenerateSelected",
    "actionRegenerateStale",
    "actionCalculateMissing",
    "actionPruneExtraneous",
    "actionCancelAll",
    "actionUndo",
    "actionRedo",
    "actionOpen",
    "actionSave",
)


class Gate:
    """A job-event subscriber that holds a worker thread at the start of its pass until released,
    so a test can see ``running`` for certain (the GUI thread keeps processing events)."""

    def __init__(self, window: MainWindow) -> None:
        self.release = threading.Event()
        self.holding = threading.Event()
        window.controller.session.events.job_updated.connect(self)

    def __call__(self, event: JobUpdated) -> None:
        if event.state == "running" and not self.holding.is_set():
            self.holding.set()
            self.release.wait(WAIT_MS / 1000)


def row_of(window: MainWindow, source: str, feature: str) -> Row:
    return next(
        r
        for r in window.controller.diagnosis.rows
        if r.key.source == source and r.key.feature == feature
    )


def table_state(window: MainWindow, feature: str) -> str | None:
    for r in window.table.table_model.rows():
        if r.key.feature == feature:
            return r.state
    return None


def counts(window: MainWindow, key: tuple[str, str]) -> dict[str, int]:
    return dict(window.sources.model.index_of(key).data(CountsRole) or {})


def test_open_demo(make_window: Callable[..., MainWindow], qtbot: Any) -> None:
    window = make_window()
    assert window.windowTitle() == f"Diagnostics App {__version__} — Demo mix"
    for name in OBJECT_NAMES:
        assert window.findChild(object, name) is not None, name
    assert isinstance(window.findChild(QTreeView, "sourceTree"), QTreeView)
    assert isinstance(window.findChild(QTableView, "descriptorTable"), QTableView)
    for name in ACTION_NAMES:
        assert getattr(window, name).objectName() == name
    assert window.actionRegenerateSelected.shortcut().toString() == "F5"
    assert window.actionUndo.shortcut().toString() == "Ctrl+Z"
    assert window.actionRedo.shortcut().toString() == "Ctrl+Shift+Z"
    # the tree: 3 sources, 4 tracks; the shared source counts its extraneous row
    model = window.sources.model
    assert [n.id for n in model.nodes() if n.kind == "source"] == ["drums", "bass", "pad"]
    assert counts(window, ("source", "drums")) == {"ok": 3, "stale": 2, "extraneous": 1}
    assert counts(window, ("track", "kick")) == {"ok": 3, "stale": 2}
    assert counts(window, ("track", "snare")) == {"ok": 2, "stale": 2}
    assert counts(window, ("source", "pad")) == {"ok": 4, "missing": 1}
    # the first source is selected: all its rows, extraneous included
    assert {r.key.feature for r in window.table.table_model.rows()} == {
        "beat_rms",
        "centroid",
        "onset",
        "peaks",
        "rms",
        "spectrogram",
    }
    window.select(("track", "snare"))
    assert {r.key.feature for r in window.table.table_model.rows()} == {
        "beat_rms",
        "peaks",
        "rms",
        "spectrogram",
    }
    # plots arrive from the worker pool
    qtbot.waitUntil(lambda: len(window.plot_area.lanes()) >= 3, timeout=WAIT_MS)


def test_regenerate_shared_row_updates_both_tracks(
    make_window: Callable[..., MainWindow], qtbot: Any
) -> None:
    window = make_window()
    gate = Gate(window)
    window.select(("source", "drums"))
    assert window.table.select_key(row_of(window, "drums", "beat_rms").key)
    assert window.actionRegenerateSelected.isEnabled()
    window.actionRegenerateSelected.trigger()

    def running_everywhere() -> bool:
        return (
            table_state(window, "beat_rms") == "running"
            and counts(window, ("track", "kick")).get("running") == 1
            and counts(window, ("track", "snare")).get("running") == 1
            and any(j.state == "running" for j in window.jobs.model.jobs())
        )

    qtbot.waitUntil(running_everywhere, timeout=WAIT_MS)
    assert window.explain.row is not None
    assert window.explain.row.state == "running"
    with qtbot.waitSignal(window.controller.jobFinished, timeout=WAIT_MS):
        gate.release.set()
    qtbot.waitUntil(lambda: table_state(window, "beat_rms") == "ok", timeout=WAIT_MS)
    assert counts(window, ("track", "kick")) == {"ok": 4, "stale": 1}
    assert counts(window, ("track", "snare")) == {"ok": 3, "stale": 1}
    assert row_of(window, "drums", "rms").state == "stale"  # only what was asked
    qtbot.waitUntil(lambda: not window.jobs.model.jobs(), timeout=WAIT_MS)
    assert window.explain.row is not None
    assert window.explain.row.state == "ok"


def _set_tempo_now(window: MainWindow, second_bpm: float) -> None:
    dialog = window.tempo_dialog()
    dialog.set_bpm(1, second_bpm)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert dialog.result() == dialog.DialogCode.Accepted, dialog.error.text()


def _set_tempo(window: MainWindow, second_bpm: float, settle: Callable[..., None]) -> None:
    dialog = window.tempo_dialog()
    dialog.set_bpm(1, second_bpm)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    ok.click()
    assert dialog.result() == dialog.DialogCode.Accepted, dialog.error.text()
    settle(window)  # the diagnosis is re-derived in a worker thread


def test_tempo_edit_stales_only_beat_rows(
    make_window: Callable[..., MainWindow], qtbot: Any, settle: Callable[..., None]
) -> None:
    window = make_window()
    _set_tempo(window, 100.0, settle)  # back to the tempo the cache was computed with
    assert row_of(window, "drums", "beat_rms").state == "ok"
    before = {r.key: r.state for r in window.controller.diagnosis.rows}
    _set_tempo(window, 90.0, settle)
    after = {r.key: r.state for r in window.controller.diagnosis.rows}
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed
    assert all(k.feature == "beat_rms" for k in changed)
    beat = row_of(window, "drums", "beat_rms")
    assert beat.state == "stale"
    assert [r.input for r in beat.reasons] == ["tempo_map"]
    window.select(("track", "kick"))
    assert window.table.select_key(beat.key)
    assert "tempo_map" in window.explain.text()
    assert [i[0] for i in window.explain.reasons_model.items()] == ["tempo_map"]
    assert window.actionUndo.isEnabled()
    assert "tempo" in window.actionUndo.text().lower()


def test_prune_then_undo(
    make_window: Callable[..., MainWindow],
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
    settle: Callable[..., None],
) -> None:
    window = make_window()
    asked: list[str] = []

    def yes(*args: Any, **kwargs: Any) -> QMessageBox.StandardButton:
        asked.append(args[2])
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", yes)
    window.select(("source", "drums"))
    assert table_state(window, "centroid") == "extraneous"
    window.actionPruneExtraneous.trigger()
    assert asked
    assert "centroid" in asked[0]
    settle(window)
    assert not any(r.state == "extraneous" for r in window.controller.diagnosis.rows)
    assert table_state(window, "centroid") is None
    assert counts(window, ("source", "drums")).get("extraneous") is None
    window.actionUndo.trigger()
    settle(window)
    assert table_state(window, "centroid") == "extraneous"
    assert counts(window, ("source", "drums"))["extraneous"] == 1
    window.actionRedo.trigger()
    settle(window)
    assert table_state(window, "centroid") is None


def _long_project(folder: Path, seconds: float = 60.0) -> Path:
    sr = 22050
    t = np.arange(int(sr * seconds)) / sr
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(
        folder / "long.wav",
        (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32),
        sr,
        subtype="PCM_16",
    )
    doc = {
        "format": "diagnostics-app/project",
        "schema_version": 1,
        "name": "Long",
        "sources": [{"id": "long", "path": "long.wav"}],
        "tracks": [
            {
                "id": "t",
                "name": "T",
                "source": "long",
                "requests": [{"feature": "spectrogram"}, {"feature": "mel"}, {"feature": "chroma"}],
            }
        ],
    }
    path = folder / "project.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_cancel_running_job(
    make_window: Callable[..., MainWindow], qtbot: Any, tmp_path: Path
) -> None:
    window = make_window(_long_project(tmp_path / "long"))
    gate = Gate(window)
    assert window.actionCalculateMissing.isEnabled()
    window.actionCalculateMissing.trigger()
    qtbot.waitUntil(lambda: table_state(window, "spectrogram") == "running", timeout=WAIT_MS)
    assert window.actionCancelAll.isEnabled()
    window.actionCancelAll.trigger()
    gate.release.set()
    qtbot.waitUntil(
        lambda: not window.controller.busy and not window.controller.jobs, timeout=WAIT_MS
    )
    qtbot.waitUntil(lambda: table_state(window, "spectrogram") == "missing", timeout=WAIT_MS)
    states = {r.state for r in window.controller.diagnosis.rows}
    assert states == {"missing"}
    assert window.jobs.model.rowCount() == 0


def test_corrupt_source_fails_while_rest_works(
    make_window: Callable[..., MainWindow], qtbot: Any, demo_project: Path
) -> None:
    window = make_window()
    (demo_project.parent / "audio" / "bass.flac").write_bytes(b"this is not audio" * 64)
    # the file watcher notices; the rows of bass fail with the reader's message
    qtbot.waitUntil(lambda: counts(window, ("source", "bass")).get("failed") == 4, timeout=WAIT_MS)
    window.select(("source", "bass"))
    rows = window.table.table_model.rows()
    assert rows
    assert all(r.state == "failed" for r in rows)
    assert all(r.message and "bass.flac" in r.message for r in rows)
    assert window.table.select_key(rows[0].key)
    assert "bass.flac" in window.explain.text()
    # the rest works: the missing row of pad is calculated
    assert counts(window, ("source", "drums"))["ok"] == 3
    with qtbot.waitSignal(window.controller.jobFinished, timeout=WAIT_MS):
        window.actionCalculateMissing.trigger()
    qtbot.waitUntil(lambda: row_of(window, "pad", "onset").state == "ok", timeout=WAIT_MS)
    assert row_of(window, "bass", "rms").state == "failed"


def test_worker_failure_reaches_the_ui(
    make_window: Callable[..., MainWindow], qtbot: Any, demo_project: Path
) -> None:
    window = make_window()
    runner = window.controller.session.runner

    def broken(source_id: str) -> Any:
        raise RuntimeError("boom")

    runner._facts = broken  # a bug inside the pass: it must become a failed row, not a hang
    window.select(("source", "pad"))
    with qtbot.waitSignal(window.controller.jobFailed, timeout=WAIT_MS) as blocker:
        window.actionCalculateMissing.trigger()
    assert "boom" in blocker.args[1]
    qtbot.waitUntil(lambda: table_state(window, "onset") == "failed", timeout=WAIT_MS)
    assert "boom" in window.statusBar().currentMessage()


def test_no_audio_device(make_window: Callable[..., MainWindow]) -> None:
    window = make_window()
    if window.player.available:
        pytest.skip("this machine has an audio output device")
    assert not window.actionPlay.isEnabled()
    reason = window.player.unavailable_reason
    assert reason
    assert "Playback unavailable" in window.playback_label.text()
    assert reason.split(":")[0][:20] in window.playback_label.text()


def test_drop_audio_adds_source_and_track(
    make_window: Callable[..., MainWindow], qtbot: Any, tmp_path: Path, settle: Callable[..., None]
) -> None:
    window = make_window()
    wav = tmp_path / "demo" / "audio" / "shaker.wav"
    sf.write(wav, np.zeros(4410, np.float32), 44100)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(wav))])
    view = window.sources.view
    # Qt routes a Drop only while a real drag is in progress, so the handlers are called as
    # the drag machinery would call them
    pos = QPointF(10, 10)
    args = (
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    try:  # PySide6 >= 6.12 takes QPointF (QPoint is deprecated); older ones take QPoint
        enter = QDragEnterEvent(pos, *args)
    except TypeError:
        enter = QDragEnterEvent(pos.toPoint(), *args)
    view.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        pos,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    view.dropEvent(drop)
    assert drop.isAccepted()
    assert "shaker" in {s.id for s in window.controller.project.sources}
    settle(window)
    assert window.selected_source() == "shaker"  # selected once its node arrived
    assert counts(window, ("source", "shaker")) == {"missing": 3}
    assert window.controller.session.dirty
    assert window.modified_label.text()
    window.actionUndo.trigger()
    assert "shaker" not in {s.id for s in window.controller.project.sources}


def test_project_changed_by_another_program_reloads(
    make_window: Callable[..., MainWindow], qtbot: Any, demo_project: Path
) -> None:
    window = make_window()
    doc = json.loads(demo_project.read_text(encoding="utf-8"))
    doc["name"] = "Renamed elsewhere"
    demo_project.write_text(json.dumps(doc), encoding="utf-8")
    qtbot.waitUntil(lambda: window.windowTitle().endswith("Renamed elsewhere"), timeout=WAIT_MS)
    assert not window.controller.session.dirty


def test_requests_dialog_edits_a_track(
    make_window: Callable[..., MainWindow], settle: Callable[..., None]
) -> None:
    window = make_window()
    window.select(("track", "bass"))
    dialog = window.requests_dialog()
    assert dialog is not None
    n = dialog.table.rowCount()
    from diagnostics_app.core.project import Request

    dialog.add_row(Request("onset"))
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert dialog.result() == dialog.DialogCode.Accepted, dialog.error.text()
    assert len(window.controller.project.track("bass").requests) == n + 1
    settle(window)
    assert row_of(window, "bass", "onset").state == "missing"
    # a bad value is refused with the core's one-line message, and the dialog stays open
    dialog = window.requests_dialog()
    assert dialog is not None
    dialog.add_row(Request("rms", params={"hop_size": -3}))
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert dialog.result() != dialog.DialogCode.Accepted
    assert "hop_size" in dialog.error.text()


def test_profiles_dialog_stales_rows(
    make_window: Callable[..., MainWindow], settle: Callable[..., None]
) -> None:
    window = make_window()
    dialog = window.profiles_dialog()
    dialog.set_param("default", "window_size", 4096)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert dialog.result() == dialog.DialogCode.Accepted, dialog.error.text()
    settle(window)
    spec = row_of(window, "bass", "spectrogram")
    assert spec.state == "stale"
    assert any(r.input == "profile.window_size" for r in spec.reasons)


def test_settings_are_saved(make_window: Callable[..., MainWindow], settings_path: Path) -> None:
    from dataclasses import replace

    from diagnostics_app.qt.settings import SettingsStore

    window = make_window()
    store = SettingsStore()
    window.settings_store = store
    window.apply_settings(replace(window.controller.settings, workers=3, cache_limit_mb=512))
    assert window.controller.pool.maxThreadCount() == 3
    loaded = SettingsStore(settings_path).load()
    assert (loaded.workers, loaded.cache_limit_mb, loaded.auto_analyse) == (3, 512, False)


def test_diagnosis_is_derived_off_the_gui_thread(
    make_window: Callable[..., MainWindow],
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
    settle: Callable[..., None],
) -> None:
    """The window paints at once, empty and "Loading diagnostics…"; the diagnosis is derived in
    a worker thread and the rows appear when it arrives."""
    threads: list[int] = []
    original = Session.diagnose

    def recording(self: Session) -> Any:
        threads.append(threading.get_ident())
        return original(self)

    monkeypatch.setattr(Session, "diagnose", recording)
    window = make_window(wait=False)
    assert not window.controller.has_diagnosis  # nothing applied before the loop runs
    assert window.sources.model.rowCount() == 0
    assert window.statusBar().currentMessage() == LOADING_TEXT
    assert window.summary_label.text() == LOADING_TEXT
    settle(window)
    assert window.sources.model.rowCount() == 3
    assert window.selected_source() == "drums"  # selected once its node arrived
    assert window.table.table_model.rows()
    assert window.statusBar().currentMessage() != LOADING_TEXT
    assert "stale" in window.summary_label.text()
    assert threads
    assert threading.get_ident() not in threads


def test_stale_derivations_are_dropped_and_requests_coalesced(
    make_window: Callable[..., MainWindow],
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
    settle: Callable[..., None],
) -> None:
    """A derivation that started before an edit is never shown; requests made while one runs
    are served by one follow-up run; kept plot lanes are updated, not rebuilt."""
    window = make_window()
    controller = window.controller
    assert wait_until_idle(window)
    lanes = {lane.key: lane for lane in window.plot_area.lanes()}
    beat_key = next(k for k in lanes if "beat_rms" in str(k[0]))
    assert lanes[beat_key].stale
    assert row_of(window, "drums", "beat_rms").state == "stale"

    held, release = threading.Event(), threading.Event()
    calls: list[int] = []
    original = Session.diagnose

    def holding(self: Session) -> Any:
        diagnosis = original(self)  # derived from the project before the edit
        calls.append(1)
        if len(calls) == 1:
            held.set()
            release.wait(WAIT_MS / 1000)
        return diagnosis

    monkeypatch.setattr(Session, "diagnose", holding)
    shown: list[str] = []

    def on_diagnosis() -> None:
        shown.append(row_of(window, "drums", "beat_rms").state)

    controller.diagnosisChanged.connect(on_diagnosis)
    controller.request_diagnosis()  # as progress would
    assert held.wait(WAIT_MS / 1000)
    _set_tempo_now(window, 100.0)  # the tempo the cache was computed with: beat_rms is ok
    for _ in range(5):
        controller.request_diagnosis()  # coalesced with the edit's request
    release.set()
    settle(window)
    assert shown and set(shown) == {"ok"}  # the held, pre-edit derivation was dropped
    assert len(calls) == 2  # the held one, then one for everything asked meanwhile
    assert wait_until_idle(window)
    beat = next(lane for lane in window.plot_area.lanes() if lane.key == beat_key)
    assert beat is lanes[beat_key]  # the same lane, restyled
    assert not beat.stale
    assert all(lanes[lane.key] is lane for lane in window.plot_area.lanes() if lane.key in lanes)
    controller.diagnosisChanged.disconnect(on_diagnosis)
    del lanes, beat  # (pyqtgraph's menus go with their plots: the teardown checks for leaks)


def test_cache_size_limit_is_enforced(
    make_window: Callable[..., MainWindow], settle: Callable[[MainWindow], None]
) -> None:
    from dataclasses import replace

    window = make_window()
    store = window.controller.session.store
    assert any(r.state == "extraneous" for r in window.controller.diagnosis.rows)
    limit_mb = max(1, store.total_bytes() // (1024 * 1024) - 1)
    window.apply_settings(replace(window.controller.settings, cache_limit_mb=limit_mb))
    settle(window)
    assert store.total_bytes() <= limit_mb * 1024 * 1024
    assert not any(r.state == "extraneous" for r in window.controller.diagnosis.rows)
