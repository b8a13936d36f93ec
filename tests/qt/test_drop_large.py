"""A large drop (a library folder) is scanned and planned in a worker, not on the GUI thread:
the window says so and offers Cancel; the result is still one undoable edit, redone against
the project if it changed meanwhile; a small drop is added at once, as before."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from diagnostics_app.core import edits, library
from diagnostics_app.qt import audio_drop
from diagnostics_app.qt.main_window import MainWindow
from tests.qt.test_drop_folder import _drop, _folder, _ids


def _record_threads(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    threads: list[threading.Thread] = []
    real = library.plan_audio

    def recording(*args: Any, **kwargs: Any) -> library.PlannedAddition:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(library, "plan_audio", recording)
    return threads


def test_a_large_drop_is_scanned_off_the_gui_thread_and_is_one_undoable_edit(
    make_window: Callable[..., MainWindow],
    tmp_path: Path,
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
    settle: Callable[..., None],
) -> None:
    monkeypatch.setattr(audio_drop, "AT_ONCE_MAX", 2)  # the drops folder holds 6 entries
    threads = _record_threads(monkeypatch)
    window = make_window()
    before = _ids(window)
    _drop(window.sources.view, [_folder(tmp_path)])
    drop = window.audio_drop()
    assert drop.busy and drop.cancel_button.isVisible()
    assert window.statusBar().currentMessage() == audio_drop.SCANNING_TEXT
    qtbot.waitUntil(lambda: not drop.busy, timeout=10_000)
    assert threads and threads[0] is not threading.main_thread()
    assert not drop.cancel_button.isVisible()
    added = _ids(window) - before
    assert added == {"clap", "hats-open", "ride"}
    assert "readme.txt: not an audio file" in window.statusBar().currentMessage()
    settle(window)
    last = window.controller.project.sources[-1].id
    assert last in added and window.sources.current_key() == ("source", last)  # selected
    window.actionUndo.trigger()
    assert _ids(window) == before  # one step undoes the whole drop


def test_a_small_drop_is_added_at_once_on_the_gui_thread(
    make_window: Callable[..., MainWindow], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _record_threads(monkeypatch)
    window = make_window()
    _drop(window.sources.view, [_folder(tmp_path)])
    assert threads == [threading.main_thread()]
    assert not window.audio_drop().busy
    assert {"clap", "hats-open", "ride"} <= _ids(window)


def _held_scan(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """plan_audio waits for ``release`` (or a cancel) before doing its work."""
    release = threading.Event()
    real = library.plan_audio

    def held(project: Any, paths: Any, cancelled: Callable[[], bool] = lambda: False) -> Any:
        for _ in range(1000):
            if cancelled():
                raise library.Cancelled
            if release.wait(0.01):
                return real(project, paths, cancelled)
        raise AssertionError("never released")

    monkeypatch.setattr(library, "plan_audio", held)
    return release


def test_cancel_stops_the_scan_and_adds_nothing(
    make_window: Callable[..., MainWindow],
    tmp_path: Path,
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(audio_drop, "AT_ONCE_MAX", 2)
    _held_scan(monkeypatch)
    window = make_window()
    before, undo = _ids(window), window.actionUndo.text()
    _drop(window.sources.view, [_folder(tmp_path)])
    drop = window.audio_drop()
    _drop(window.sources.view, [_folder(tmp_path / "again")])  # one at a time
    assert "Still adding" in window.statusBar().currentMessage()
    drop.cancel_button.click()
    qtbot.waitUntil(lambda: not drop.busy, timeout=10_000)
    assert _ids(window) == before
    assert window.actionUndo.text() == undo
    assert "cancelled" in window.statusBar().currentMessage()


def test_an_edit_made_while_scanning_is_kept(
    make_window: Callable[..., MainWindow],
    tmp_path: Path,
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(audio_drop, "AT_ONCE_MAX", 2)
    release = _held_scan(monkeypatch)
    window = make_window()
    before = _ids(window)
    _drop(window.sources.view, [_folder(tmp_path)])
    window.controller.edit("Remove bass", lambda p: edits.remove_source(p, "bass"))
    release.set()
    drop = window.audio_drop()
    qtbot.waitUntil(lambda: not drop.busy, timeout=10_000)
    # planned against the project before the edit: done again against the one open
    assert _ids(window) == (before - {"bass"}) | {"clap", "hats-open", "ride"}


def test_a_close_the_user_cancels_keeps_the_scan_going(
    make_window: Callable[..., MainWindow],
    tmp_path: Path,
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before the fix: the drop stopped its scan on the window's Close event, before the
    window asked about unsaved changes: answering Cancel kept the window open and the drop
    lost ("Adding audio cancelled"). Now only a close that goes ahead stops it."""
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(audio_drop, "AT_ONCE_MAX", 2)
    release = _held_scan(monkeypatch)
    window = make_window()
    before = _ids(window)
    window.controller.edit("Remove bass", lambda p: edits.remove_source(p, "bass"))  # dirty
    _drop(window.sources.view, [_folder(tmp_path)])
    drop = window.audio_drop()
    asked: list[str] = []

    def question(*args: Any, **kwargs: Any) -> QMessageBox.StandardButton:
        asked.append(str(args[2]))
        return QMessageBox.StandardButton.Cancel

    monkeypatch.setattr(QMessageBox, "question", question)
    window.force_close = False
    window.close()
    assert asked and window.isVisible()
    assert drop.busy  # still scanning
    release.set()
    qtbot.waitUntil(lambda: not drop.busy, timeout=10_000)
    assert _ids(window) == (before - {"bass"}) | {"clap", "hats-open", "ride"}
    window.force_close = True


def test_a_close_that_goes_ahead_stops_the_scan(
    make_window: Callable[..., MainWindow],
    tmp_path: Path,
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(audio_drop, "AT_ONCE_MAX", 2)
    _held_scan(monkeypatch)
    window = make_window()
    _drop(window.sources.view, [_folder(tmp_path)])
    drop = window.audio_drop()
    assert drop.busy
    window.close()
    assert not window.isVisible() and not drop.busy
