"""No dead ends with sources: a source whose audio cannot be read says why (tree tooltip, warning
icon, :meth:`SourceTreeModel.source_error`), and its context menu locates / relinks it (every
track follows; undoable; saved), removes it (undoable, after saying which tracks go with it),
reveals its folder and copies its path."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication, QIcon
from PySide6.QtWidgets import QFileDialog, QMessageBox

from diagnostics_app.qt.main_window import MainWindow

WAIT_MS = 20000


@pytest.fixture
def pad_moved(demo_project: Path) -> Path:
    """The demo with ``pad``'s audio moved away: where it is now."""
    moved = demo_project.parent / "moved" / "pad.ogg"
    moved.parent.mkdir()
    shutil.move(demo_project.parent / "audio" / "pad.ogg", moved)
    return moved


def tree_data(window: MainWindow, key: tuple[str, str], role: Any) -> Any:
    return window.sources.model.index_of(key).data(role)


def pad_states(window: MainWindow) -> set[str]:
    return {r.state for r in window.controller.rows_for_source("pad")}


def test_a_missing_source_says_why_in_the_tree(
    make_window: Callable[..., MainWindow], pad_moved: Path
) -> None:
    from PySide6.QtCore import Qt

    window = make_window()
    reason = window.sources.model.source_error("pad")
    assert reason is not None and "file not found" in reason and "pad.ogg" in reason
    assert window.sources.model.source_error("drums") is None
    for key in (("source", "pad"), ("track", "pad")):
        tip = tree_data(window, key, Qt.ItemDataRole.ToolTipRole)
        assert "file not found" in tip, key
        icon = tree_data(window, key, Qt.ItemDataRole.DecorationRole)
        assert isinstance(icon, QIcon) and not icon.isNull()
    assert tree_data(window, ("source", "drums"), Qt.ItemDataRole.DecorationRole) is None
    assert pad_states(window) == {"failed"}


def yellow_pixels(window: MainWindow, key: tuple[str, str]) -> int:
    """Warning-yellow pixels in the first 24 px of the node's row, as painted."""
    view = window.sources.view
    rect = view.visualRect(window.sources.proxy.mapFromSource(window.sources.model.index_of(key)))
    image = view.viewport().grab(rect.adjusted(0, 0, -(rect.width() - 24), 0)).toImage()
    return sum(
        1
        for x in range(image.width())
        for y in range(image.height())
        if (c := image.pixelColor(x, y)).red() > 180 and c.green() > 140 and c.blue() < 90
    )


def test_the_warning_icon_is_painted_before_the_name(
    make_window: Callable[..., MainWindow], pad_moved: Path
) -> None:
    window = make_window()
    assert yellow_pixels(window, ("source", "pad")) > 20
    assert yellow_pixels(window, ("track", "pad")) > 20
    assert yellow_pixels(window, ("source", "drums")) == 0


def test_the_menu_of_an_unreadable_source_leads_with_the_reason(
    make_window: Callable[..., MainWindow],
    pad_moved: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    shown: list[list[str]] = []
    monkeypatch.setattr(  # on the class: the patch must not keep the window alive
        MainWindow,
        "popup_menu",
        lambda self, menu, pos: shown.append([x.text() for x in menu.actions()]),
    )
    view = window.sources.view
    index = window.sources.proxy.mapFromSource(window.sources.model.index_of(("track", "pad")))
    view.customContextMenuRequested.emit(view.visualRect(index).center())  # a right-click
    [texts] = shown
    assert "file not found" in texts[0] and "pad.ogg" in texts[0]
    assert texts[2:4] == ["&Locate…", "Re&move Source…"]  # after the reason and a separator
    assert "&Copy Path" in texts
    healthy = [a.text() for a in window.source_menu("drums").actions()]
    assert healthy[0] == "&Relink…"


def test_relink_moves_every_track_and_is_undoable_and_saved(
    make_window: Callable[..., MainWindow],
    pad_moved: Path,
    demo_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    settle: Callable[..., None],
) -> None:
    window = make_window()
    tracks = window.controller.project.tracks_of("pad")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(pad_moved), ""))
    [relink] = [a for a in window.source_menu("pad").actions() if a.text() == "&Locate…"]
    relink.trigger()
    project = window.controller.project
    assert project.source("pad").path == "moved/pad.ogg"  # relative: inside the folder
    assert project.tracks_of("pad") == tracks
    settle(window)
    assert window.sources.model.source_error("pad") is None
    assert "failed" not in pad_states(window)  # the same audio: its data is ok again
    assert "ok" in pad_states(window)
    window.actionUndo.trigger()
    assert window.controller.project.source("pad").path == "audio/pad.ogg"
    settle(window)
    assert window.sources.model.source_error("pad") is not None
    window.actionRedo.trigger()
    window.actionSave.trigger()
    doc = json.loads(demo_project.read_text(encoding="utf-8"))
    assert {s["id"]: s["path"] for s in doc["sources"]}["pad"] == "moved/pad.ogg"


def test_remove_source_says_what_goes_and_is_undoable(
    make_window: Callable[..., MainWindow],
    monkeypatch: pytest.MonkeyPatch,
    settle: Callable[..., None],
) -> None:
    window = make_window()
    asked: list[str] = []
    answer = [QMessageBox.StandardButton.Cancel]

    def question(*args: Any, **kwargs: Any) -> QMessageBox.StandardButton:
        asked.append(str(args[2]))
        return answer[0]

    monkeypatch.setattr(QMessageBox, "question", question)
    assert not window.remove_source("drums")  # cancelled: nothing happens
    assert "drums" in {s.id for s in window.controller.project.sources}
    assert "Kick" in asked[0] and "Snare" in asked[0] and "extraneous" in asked[0]
    answer[0] = QMessageBox.StandardButton.Yes
    assert window.remove_source("drums")
    project = window.controller.project
    assert "drums" not in {s.id for s in project.sources}
    assert not {"kick", "snare"} & {t.id for t in project.tracks}
    settle(window)
    orphan = [n for n in window.sources.model.nodes() if n.id == "drums"]
    assert [n.kind for n in orphan] == ["orphan"]  # its data stays reachable, as extraneous
    window.actionUndo.trigger()
    assert {"kick", "snare"} <= {t.id for t in window.controller.project.tracks}


def test_reveal_and_copy_path(
    make_window: Callable[..., MainWindow],
    demo_project: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    assert window.reveal_source("bass")
    assert [Path(u.toLocalFile()) for u in opened] == [demo_project.parent / "audio"]
    path = window.copy_source_path("bass")
    assert QGuiApplication.clipboard().text() == path
    assert Path(path) == demo_project.parent / "audio" / "bass.flac"
