"""A folder dropped on the source tree or on the window: its audio (core/library.py's rules)
becomes sources with a track each, as one undoable edit; what was skipped is said."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QWidget

from diagnostics_app.core.library import DEFAULT_TRACK_REQUESTS
from diagnostics_app.qt.main_window import MainWindow


def _folder(root: Path) -> Path:
    """``root/drops``: two WAVs (one nested), a FLAC under a wrong extension, a text file."""
    folder = root / "drops"
    (folder / "hats").mkdir(parents=True)
    tone = 0.1 * np.sin(np.arange(2205) / 5.0).astype(np.float32)
    sf.write(folder / "clap.wav", tone, 22050)
    sf.write(folder / "hats" / "open.wav", tone, 22050)
    sf.write(folder / "ride.dat", tone, 22050, format="FLAC")
    (folder / "readme.txt").write_text("not audio", encoding="utf-8")
    return folder


def _drop(target: QWidget, paths: list[Path]) -> QDropEvent:
    """Deliver a drag-enter and a drop to ``target`` as Qt's drag machinery would (Qt routes a
    drop only while a real drag is in progress)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
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
    target.dragEnterEvent(enter)  # type: ignore[attr-defined]
    assert enter.isAccepted()
    drop = QDropEvent(pos, *args)
    target.dropEvent(drop)  # type: ignore[attr-defined]
    assert drop.isAccepted()
    return drop


def _ids(window: MainWindow) -> set[str]:
    return {s.id for s in window.controller.project.sources}


def test_a_folder_dropped_on_the_tree_is_one_undoable_edit(
    make_window: Callable[..., MainWindow], tmp_path: Path, settle: Callable[..., None]
) -> None:
    window = make_window()
    before = _ids(window)
    tracks_before = len(window.controller.project.tracks)
    _drop(window.sources.view, [_folder(tmp_path)])
    added = _ids(window) - before
    assert added == {"clap", "hats-open", "ride"}  # ride.dat is FLAC: taken by its content
    project = window.controller.project
    new_tracks = [t for t in project.tracks if t.source in added]
    assert len(new_tracks) == 3
    assert all(t.requests == DEFAULT_TRACK_REQUESTS for t in new_tracks)
    assert "readme.txt: not an audio file" in window.statusBar().currentMessage()
    settle(window)
    assert window.actionUndo.isEnabled()
    window.actionUndo.trigger()
    assert _ids(window) == before  # one step undoes the whole drop
    assert len(window.controller.project.tracks) == tracks_before
    window.actionRedo.trigger()
    assert _ids(window) - before == added


def test_a_second_drop_of_the_same_folder_adds_nothing(
    make_window: Callable[..., MainWindow], tmp_path: Path
) -> None:
    window = make_window()
    folder = _folder(tmp_path)
    _drop(window.sources.view, [folder])
    count = len(window.controller.project.sources)
    undo_text = window.actionUndo.text()
    _drop(window.sources.view, [folder, folder / "clap.wav"])
    assert len(window.controller.project.sources) == count
    assert window.actionUndo.text() == undo_text  # no empty step in the history
    assert "Nothing added; 3 already in the project" in window.statusBar().currentMessage()


def test_files_dropped_on_the_window_are_added(
    make_window: Callable[..., MainWindow], tmp_path: Path, qtbot: Any
) -> None:
    window = make_window()
    folder = _folder(tmp_path)
    _drop(window, [folder / "clap.wav", folder / "ride.dat"])
    assert {"clap", "ride"} <= _ids(window)
    assert "hats-open" not in _ids(window)


# --- at scale: a project of 20,000 sources (bench/library.py) ---------------------------------


def test_the_file_watcher_spreads_many_paths_over_shards(
    qtbot: Any, tmp_path: Path, demo_project: Path, monkeypatch: Any
) -> None:
    """Qt's watcher is quadratic in the paths one instance holds (20,000 audio files stalled
    the GUI thread 1.4 s at open and 3 s at close): paths go to shards of ``SHARD_PATHS``."""
    from diagnostics_app.core.session import Session
    from diagnostics_app.qt import file_watcher

    monkeypatch.setattr(file_watcher, "SHARD_PATHS", 3)
    monkeypatch.setattr(file_watcher, "ADD_PER_TURN", 2)  # and adds them a few per turn
    paths = [tmp_path / f"f{i}.wav" for i in range(9)]
    for p in paths:
        p.write_bytes(b"x")
    session = Session.open(demo_project)
    watcher = file_watcher.FileWatcher(session)
    try:

        def held() -> list[set[str]]:
            return [set(w.files()) for w in watcher._shards]

        project = str(demo_project)
        watcher.watch([*(str(p) for p in paths[:8]), project])
        assert held() == [{project, str(paths[0])}]  # the project file first, at once
        qtbot.waitUntil(lambda: not watcher._adding)  # the rest on later turns
        assert [len(h) for h in held()] == [3, 3, 3]
        watcher.watch(str(p) for p in paths[2:])  # three gone, one new: it fills the room
        qtbot.waitUntil(lambda: not watcher._adding)
        assert [len(h) for h in held()] == [1, 3, 3]
        assert set().union(*held()) == {str(p) for p in paths[2:]}
        with qtbot.waitSignal(watcher.changed, timeout=5000):
            paths[7].write_bytes(b"changed")  # held by the last shard
        watcher.unwatch_all()
        assert not set().union(*held())
    finally:
        watcher.stop()
        watcher.deleteLater()
        session.close()


def test_a_large_tree_opens_collapsed_and_a_selected_track_opens_its_source(
    make_window: Callable[..., MainWindow], monkeypatch: Any
) -> None:
    from diagnostics_app.qt.widgets import source_tree

    small = make_window()
    assert small.sources.view.isExpanded(small.sources.proxy.index(0, 0))
    monkeypatch.setattr(source_tree, "EXPAND_ALL_MAX", 1)
    window = make_window()
    view, proxy, model = window.sources.view, window.sources.proxy, window.sources.model
    assert proxy.rowCount() > 1
    assert not any(view.isExpanded(proxy.index(i, 0)) for i in range(proxy.rowCount()))
    track = window.controller.project.tracks[-1]
    assert window.select(("track", track.id))
    assert view.isExpanded(proxy.mapFromSource(model.index_of(("source", track.source))))
