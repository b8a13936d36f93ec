"""The source context menu of the main window: Locate / Relink…, Remove Source…, Reveal in
File Manager, Copy Path.

Relink and remove are undoable project edits (:func:`core.edits.relink_source`,
:func:`core.edits.remove_source`); a relink moves every track of the source with it, since
tracks name their source by id. A mixin of :class:`~diagnostics_app.qt.main_window.MainWindow`.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from PySide6.QtCore import QPoint, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QFileDialog, QLabel, QMenu, QMessageBox, QWidgetAction

from diagnostics_app.core import edits, library
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.library import AUDIO_SUFFIXES
from diagnostics_app.qt.audio_drop import AudioDrop
from diagnostics_app.qt.window_host import WindowHost


def _reason_action(menu: QMenu, source_id: str, reason: str) -> QWidgetAction:
    """The menu's heading: why the source cannot be read (its text is the reason too)."""
    prefix = f"source {source_id!r}: "
    short = reason[len(prefix) :] if reason.startswith(prefix) else reason
    action = QWidgetAction(menu)
    action.setText(f"⚠ {short}")
    label = QLabel(f"⚠ {html.escape(short)}", menu)
    label.setObjectName("sourceMenuReason")
    label.setStyleSheet("QLabel { color: #c62828; padding: 4px 12px; }")
    action.setDefaultWidget(label)
    return action


class SourceActionsMixin(WindowHost):
    def add_audio_paths(self, paths: list[str]) -> None:
        """Add dropped (or chosen) audio files and folders as one undoable edit, the last new
        source selected: a large drop is scanned in a worker (:class:`AudioDrop`)."""
        self.audio_drop().add(paths)

    def audio_drop(self) -> AudioDrop:
        drop = getattr(self, "_audio_drop", None)
        if drop is None:
            drop = self._audio_drop = AudioDrop(self, self.controller)
            drop.added.connect(self._on_audio_added)
        return drop

    def stop_audio_drop(self) -> None:
        """Stop a drop being scanned (the window's close goes ahead): nothing of it is added."""
        drop = getattr(self, "_audio_drop", None)
        if drop is not None:
            drop.stop()

    @Slot(list)
    def _on_audio_added(self, added: list[str]) -> None:
        if added:
            self.select(("source", added[-1]))

    def source_menu(self, source_id: str) -> QMenu:
        """The context menu of ``source_id`` (public so tests and scripts drive it without
        running it)."""
        c = self.controller
        path = c.project.audio_path(source_id)
        reason = self.sources.model.source_error(source_id)
        menu = QMenu(self)
        menu.setObjectName("sourceMenu")
        if reason:  # say why first (readable, not a greyed item): the action below is the way out
            menu.addAction(_reason_action(menu, source_id, reason))
            menu.addSeparator()
        relink = menu.addAction("&Locate…" if reason else "&Relink…")
        relink.setObjectName("actionRelinkSource")
        relink.setStatusTip("Point the source at another file; its tracks follow (undoable)")
        relink.triggered.connect(lambda: self.relink_source_dialog(source_id))
        remove = menu.addAction("Re&move Source…")
        remove.setObjectName("actionRemoveSource")
        remove.triggered.connect(lambda: self.remove_source(source_id))
        menu.addSeparator()
        reveal = menu.addAction("Reveal in &File Manager")
        reveal.setObjectName("actionRevealSource")
        reveal.setEnabled(path.parent.is_dir())
        reveal.triggered.connect(lambda: self.reveal_source(source_id))
        copy = menu.addAction("&Copy Path")
        copy.setObjectName("actionCopySourcePath")
        copy.triggered.connect(lambda: self.copy_source_path(source_id))
        return menu

    @Slot(str, QPoint)
    def _on_source_menu(self, source_id: str, pos: QPoint) -> None:
        menu = self.source_menu(source_id)
        self.popup_menu(menu, pos)
        menu.deleteLater()

    def popup_menu(self, menu: QMenu, pos: QPoint) -> None:
        """Run ``menu`` at ``pos`` (a seam: tests record the menu instead)."""
        menu.exec(pos)

    def relink_source(self, source_id: str, path: str | Path) -> str | None:
        """Point ``source_id`` at ``path`` as one undoable edit; None, or why it was refused."""
        return self.controller.edit(
            f"Relink {source_id}",
            lambda p: edits.relink_source(
                p, source_id, library.project_path(p, os.path.abspath(path))
            ),
        )

    def relink_source_dialog(self, source_id: str) -> str | None:
        """Ask for the file (starting where the old one was, or in the project's folder)."""
        c = self.controller
        old = c.project.audio_path(source_id)
        start = old.parent if old.parent.is_dir() else c.project.folder
        patterns = " ".join(f"*{s}" for s in sorted(AUDIO_SUFFIXES))
        path, _ = QFileDialog.getOpenFileName(
            self,
            f"Locate the audio of {source_id}",
            str(start / old.name),
            f"Audio ({patterns});;All files (*)",
        )
        if not path:
            return None
        return self.relink_source(source_id, path)

    def remove_source(self, source_id: str) -> bool:
        """Remove the source and the tracks using it, after saying which (undoable)."""
        c = self.controller
        try:
            tracks = edits.tracks_removed_with(c.project, source_id)
        except DiagnosticsError as exc:
            self.statusBar().showMessage(str(exc), 5000)
            return False
        names = ", ".join(html.escape(t.name) for t in tracks)
        what = (
            f"Its track{'s' if len(tracks) != 1 else ''} <b>{names}</b> "
            f"{'are' if len(tracks) != 1 else 'is'} removed with it."
            if tracks
            else "No track uses it."
        )
        answer = QMessageBox.question(
            self,
            "Remove source",
            f"Remove the source <b>{html.escape(source_id)}</b> "
            f"({html.escape(str(c.project.audio_path(source_id)))})?<br><br>{what} "
            "Its cached data stays in the store as extraneous until you prune it; the audio "
            "file is not touched. Undo brings everything back.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return False
        text = f"Remove {source_id}" + (f" and {len(tracks)} track(s)" if tracks else "")
        return c.edit(text, lambda p: edits.remove_source(p, source_id)) is None

    def reveal_source(self, source_id: str) -> bool:
        """Open the folder of the source's file in the desktop's file manager."""
        folder = self.controller.project.audio_path(source_id).parent
        if not folder.is_dir():
            self.statusBar().showMessage(f"{folder}: the folder does not exist", 5000)
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def copy_source_path(self, source_id: str) -> str:
        path = str(self.controller.project.audio_path(source_id))
        QGuiApplication.clipboard().setText(path)
        self.statusBar().showMessage(f"Copied {path}", 3000)
        return path
