"""No lost edits: the save-conflict question (when the watcher notices an outside edit of the
project file while there are unsaved edits, and again at Save), and clean undo (undoing back
to the saved state is not "Modified" and Quit does not ask). Dialogs are driven through their
``exec`` (patched): nothing blocks, and the real dialog with its real buttons is used."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from diagnostics_app.core import edits
from diagnostics_app.qt.main_window import MainWindow
from diagnostics_app.qt.widgets.conflict_dialog import ConflictChoice, ConflictDialog
from diagnostics_app.qt.window_files import LATER_TEXT

WAIT_MS = 20000
MINE_BPM = 77.0


class Answers:
    """Answers the conflict dialog with the given choices, in order, recording each question
    (its informative text) asked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *choices: ConflictChoice) -> None:
        self.choices = list(choices)
        self.asked: list[str] = []

        def exec_(dialog: ConflictDialog) -> int:
            self.asked.append(dialog.informativeText())
            assert [b.text() for b in dialog.choice_buttons.values()] == [
                "Reload (discard my changes)",
                "Overwrite with mine",
                "Save As…",
                "Cancel (decide later)",
            ]
            dialog.choice_buttons[self.choices.pop(0)].click()
            return 0

        monkeypatch.setattr(ConflictDialog, "exec", exec_)


def on_disk(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def edit_mine(window: MainWindow) -> None:
    assert (
        window.controller.edit(
            "Tempo", lambda p: edits.set_tempo_map(p, [{"time": 0.0, "bpm": MINE_BPM}])
        )
        is None
    )
    assert window.controller.session.dirty


def edit_elsewhere(path: Path, name: str = "Renamed elsewhere") -> None:
    doc = on_disk(path)
    doc["name"] = name
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")


def bpm_of(window: MainWindow) -> float:
    return float(window.controller.project.tempo_map.to_json()[0]["bpm"])


# --- the save conflict ------------------------------------------------------------------------


def test_reload_discards_my_changes(
    make_window: Callable[..., MainWindow],
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
    demo_project: Path,
) -> None:
    window = make_window()
    answers = Answers(monkeypatch, ConflictChoice.RELOAD)
    edit_mine(window)
    edit_elsewhere(demo_project)
    qtbot.waitUntil(lambda: bool(answers.asked), timeout=WAIT_MS)  # asked when noticed
    assert "Nothing is overwritten until you choose" in answers.asked[0]
    assert window.windowTitle().endswith("Renamed elsewhere")
    assert not window.controller.session.dirty
    assert bpm_of(window) != MINE_BPM
    assert on_disk(demo_project)["name"] == "Renamed elsewhere"


def test_overwrite_writes_mine(
    make_window: Callable[..., MainWindow],
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
    demo_project: Path,
) -> None:
    window = make_window()
    answers = Answers(monkeypatch, ConflictChoice.OVERWRITE)
    edit_mine(window)
    edit_elsewhere(demo_project)
    qtbot.waitUntil(lambda: bool(answers.asked), timeout=WAIT_MS)
    doc = on_disk(demo_project)
    assert doc["name"] == "Demo mix" and doc["tempo_map"][0]["bpm"] == MINE_BPM
    assert not window.controller.session.dirty
    assert not window.windowTitle().endswith("*")


def test_cancel_keeps_both_and_save_asks_again(
    make_window: Callable[..., MainWindow],
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
    demo_project: Path,
) -> None:
    window = make_window()
    answers = Answers(
        monkeypatch, ConflictChoice.CANCEL, ConflictChoice.CANCEL, ConflictChoice.OVERWRITE
    )
    edit_mine(window)
    edit_elsewhere(demo_project)
    qtbot.waitUntil(lambda: bool(answers.asked), timeout=WAIT_MS)
    assert window.statusBar().currentMessage() == LATER_TEXT
    assert on_disk(demo_project)["name"] == "Renamed elsewhere"  # theirs, on disk
    assert window.controller.session.dirty and bpm_of(window) == MINE_BPM  # mine, in the window
    window.actionSave.trigger()  # Ctrl+S asks again, and Cancel writes nothing
    assert len(answers.asked) == 2
    assert "Saving now would overwrite" in answers.asked[1]
    assert on_disk(demo_project)["name"] == "Renamed elsewhere"
    assert window.controller.session.dirty
    window.actionSave.trigger()  # and once more: now overwrite
    assert len(answers.asked) == 3
    assert on_disk(demo_project)["tempo_map"][0]["bpm"] == MINE_BPM
    assert not window.controller.session.dirty


def test_save_as_keeps_theirs_and_writes_mine_elsewhere(
    make_window: Callable[..., MainWindow],
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
    demo_project: Path,
    tmp_path: Path,
) -> None:
    window = make_window()
    answers = Answers(monkeypatch, ConflictChoice.SAVE_AS)
    mine = tmp_path / "mine.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(mine), ""))
    edit_mine(window)
    edit_elsewhere(demo_project)
    qtbot.waitUntil(lambda: bool(answers.asked), timeout=WAIT_MS)
    assert on_disk(mine)["tempo_map"][0]["bpm"] == MINE_BPM
    assert on_disk(demo_project)["name"] == "Renamed elsewhere"
    assert window.controller.project.path == mine.resolve()
    assert not window.controller.session.dirty


def test_save_before_the_watcher_noticed_still_asks(
    make_window: Callable[..., MainWindow],
    monkeypatch: pytest.MonkeyPatch,
    demo_project: Path,
) -> None:
    """Ctrl+S compares the file with what was loaded: no event loop ran since the outside
    edit, so only that comparison can catch it."""
    window = make_window()
    answers = Answers(monkeypatch, ConflictChoice.CANCEL)
    edit_mine(window)
    edit_elsewhere(demo_project)
    window.actionSave.trigger()
    assert answers.asked and "Saving now would overwrite" in answers.asked[0]
    assert on_disk(demo_project)["name"] == "Renamed elsewhere"


def test_no_question_without_unsaved_edits(
    make_window: Callable[..., MainWindow],
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
    demo_project: Path,
) -> None:
    window = make_window()
    answers = Answers(monkeypatch)  # any question fails: no choices to give
    edit_elsewhere(demo_project)
    qtbot.waitUntil(lambda: window.windowTitle().endswith("Renamed elsewhere"), timeout=WAIT_MS)
    assert answers.asked == []
    window.actionSave.trigger()  # the reloaded file is what is on disk: no question
    assert answers.asked == []


# --- clean undo -------------------------------------------------------------------------------


def test_undo_back_to_the_saved_state_is_clean(
    make_window: Callable[..., MainWindow],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    title = window.windowTitle()
    edit_mine(window)
    assert window.windowTitle() == title + " *"
    assert window.modified_label.text()
    window.actionUndo.trigger()
    assert window.windowTitle() == title
    assert not window.modified_label.text()
    window.actionRedo.trigger()  # away from the saved state again
    assert window.windowTitle() == title + " *"
    window.actionSave.trigger()
    assert window.windowTitle() == title
    window.controller.edit("Tempo", lambda p: edits.set_tempo_map(p, [{"time": 0.0, "bpm": 50}]))
    assert window.windowTitle() == title + " *"
    window.actionUndo.trigger()  # back to what was saved
    assert window.windowTitle() == title and not window.modified_label.text()
    asked: list[str] = []

    def question(*args: Any, **kwargs: Any) -> QMessageBox.StandardButton:
        asked.append(str(args[2]))
        return QMessageBox.StandardButton.Cancel

    monkeypatch.setattr(QMessageBox, "question", question)
    window.force_close = False
    window.actionRedo.trigger()  # dirty: Quit asks (and Cancel keeps the window)
    window.actionQuit.trigger()
    assert len(asked) == 1 and window.isVisible()
    window.actionUndo.trigger()  # clean: Quit does not ask
    window.actionQuit.trigger()
    assert len(asked) == 1
    assert not window.isVisible()
