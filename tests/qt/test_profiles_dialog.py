"""The Profiles dialog: full names, add / rename / delete as one undoable edit, names
checked, and a used profile never dropped without naming the requests that use it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtWidgets import QDialogButtonBox, QInputDialog, QMessageBox

from diagnostics_app.core.params import PARAMS
from diagnostics_app.qt.main_window import MainWindow
from diagnostics_app.qt.widgets.profiles_dialog import ProfilesDialog

WindowFactory = Callable[..., MainWindow]
LONG = "trough_thresholds_for_the_quiet_intro_and_the_long_fade_out"


def _ok(dialog: ProfilesDialog) -> None:
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert dialog.result() == dialog.DialogCode.Accepted, dialog.error.text()


def _profiles_in_use(window: MainWindow) -> list[tuple[str, str, str]]:
    project = window.controller.project
    return [(t.id, r.feature, r.profile) for t in project.tracks for r in t.requests]


def test_names_and_parameters_are_shown_in_full(qtbot: Any) -> None:
    dialog = ProfilesDialog({"fine": {"hop_size": 128}}, users={"fine": ["Kick / rms"]})
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.add_profile(LONG) is None
    qtbot.waitUntil(lambda: dialog.names.viewport().width() >= 200)
    fm = dialog.names.fontMetrics()
    for i in range(dialog.names.count()):
        item = dialog.names.item(i)
        rect = dialog.names.visualItemRect(item)
        assert fm.horizontalAdvance(item.text()) <= rect.width() - 4, item.text()
        assert fm.horizontalAdvance(item.text()) <= dialog.names.viewport().width() - 4
    fm = dialog.table.fontMetrics()
    widest = max(fm.horizontalAdvance(name) for name in PARAMS)
    assert dialog.table.columnWidth(0) >= widest + 4  # "trough_threshold" is not cut
    dialog.names.setCurrentRow(1)
    assert "Kick / rms" in dialog.usage.text()


def test_add_then_undo(make_window: WindowFactory, settle: Callable[[Any], None]) -> None:
    window = make_window()
    dialog = window.profiles_dialog()
    assert dialog.add_profile("coarse") is None
    dialog.set_param("coarse", "hop_size", 1024)
    _ok(dialog)
    c = window.controller
    assert dict(c.project.profile("coarse")) == {"hop_size": 1024}
    assert c.undo() == "Edit profiles"  # a step and a parameter: one undo step
    assert "coarse" not in c.project.profile_names()
    settle(window)


def test_rename_moves_the_requests_and_undo_restores(
    make_window: WindowFactory, settle: Callable[[Any], None]
) -> None:
    window = make_window()
    before = _profiles_in_use(window)
    dialog = window.profiles_dialog()
    assert dialog.rename_profile("fine", "fine_hop128") is None
    assert [dialog.names.item(i).text() for i in range(dialog.names.count())] == [
        "default",
        "fine_hop128",
    ]
    assert dialog.users_of("fine_hop128") == ["Kick / rms", "Snare / rms"]
    _ok(dialog)
    c = window.controller
    assert c.project.profile_names() == ["default", "fine_hop128"]
    renamed = [(t, f, "fine_hop128" if p == "fine" else p) for t, f, p in before]
    assert _profiles_in_use(window) == renamed
    assert window.actionUndo.text() == "&Undo Rename profile fine to fine_hop128"
    c.undo()
    assert _profiles_in_use(window) == before
    assert dict(c.project.profile("fine")) == {"window_size": 1024, "hop_size": 128}
    settle(window)


def test_deleting_a_used_profile_names_the_requests(
    make_window: WindowFactory, settle: Callable[[Any], None]
) -> None:
    window = make_window()
    before = _profiles_in_use(window)
    dialog = window.profiles_dialog()
    problem = dialog.delete_profile("fine")
    assert problem is not None
    assert "used by 2 requests (Kick / rms, Snare / rms)" in problem
    assert dialog.error.isVisible() or dialog.error.text() == problem
    assert dialog.names.count() == 2  # nothing deleted
    assert dialog.delete_profile("fine", move_to_default=True) is None
    assert dialog.users_of("default")[-2:] == ["Kick / rms", "Snare / rms"]
    _ok(dialog)
    c = window.controller
    assert c.project.profile_names() == ["default"]
    assert all(p == "default" for _, _, p in _profiles_in_use(window))
    c.undo()
    assert _profiles_in_use(window) == before
    settle(window)


def test_bad_names_and_default_are_refused(qtbot: Any) -> None:
    dialog = ProfilesDialog({"fine": {}})
    qtbot.addWidget(dialog)
    for bad in ("has space", "", "fine", "default", "-x", "a/b"):
        problem = dialog.add_profile(bad)
        assert problem is not None and "profile name" in problem, bad
        assert dialog.error.text() == problem
    assert "already exists" in (dialog.rename_profile("fine", "default") or "")
    assert "cannot be renamed" in (dialog.rename_profile("default", "base") or "")
    assert "cannot be deleted" in (dialog.delete_profile("default") or "")
    assert dialog.value().ops == ()
    assert dialog.names.count() == 2


def test_the_buttons_ask_then_act(qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    dialog = ProfilesDialog({"fine": {}}, users={"fine": ["Kick / rms"]})
    qtbot.addWidget(dialog)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("bright", True))
    dialog.add_button.click()
    assert dialog.names.currentItem().text() == "bright"
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("brighter", True))
    dialog.rename_button.click()
    assert dialog.names.currentItem().text() == "brighter"
    asked: list[str] = []

    def question(_parent: Any, _title: str, text: str, *rest: Any) -> Any:
        asked.append(text)
        return QMessageBox.StandardButton.Cancel

    monkeypatch.setattr(QMessageBox, "question", question)
    dialog.names.setCurrentRow(1)  # fine, used
    dialog.delete_button.click()
    assert "Kick / rms" in asked[0] and 'Move them to "default"' in asked[0]
    assert dialog.names.count() == 3  # cancelled: kept
    dialog.names.setCurrentRow(0)
    assert not dialog.delete_button.isEnabled()  # default is fixed
    assert [op.kind for op in dialog.value().ops] == ["add", "rename"]
