"""File handling of the main window: open, save, save as, add audio (by dialog or by drop),
export a row; the save-conflict question (the file changed on disk while there are unsaved
edits), when the watcher notices and again at Save.

These are the window's file dialogs and what follows them; the work itself is the
controller's. A mixin of :class:`~diagnostics_app.qt.main_window.MainWindow`, apart from it
so the window module holds the layout and the wiring, not every dialog's details.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QFileDialog

from diagnostics_app.qt.widgets.conflict_dialog import ConflictChoice, ask_conflict
from diagnostics_app.qt.widgets.source_tree import AUDIO_SUFFIXES
from diagnostics_app.qt.window_host import WindowHost

LATER_TEXT = "The project file changed on disk: Save will ask what to do"


class ProjectFilesMixin(WindowHost):
    _conflict_open = False  # a conflict question is on screen: do not stack another

    def ask_conflict(self, at_save: bool) -> ConflictChoice:
        """The save-conflict question (a seam: tests drive :class:`ConflictDialog`)."""
        path = self.controller.project.path
        assert path is not None
        return ask_conflict(path, at_save, self)

    def _resolve_conflict(self, at_save: bool) -> bool | None:
        """Ask, and do what was chosen; returns whether the project was saved (None: the
        question was already on screen)."""
        if self._conflict_open:
            return None
        self._conflict_open = True
        try:
            choice = self.ask_conflict(at_save)
        finally:
            self._conflict_open = False
        if choice is ConflictChoice.RELOAD:
            self.controller.reload_from_disk()
            return False
        if choice is ConflictChoice.OVERWRITE:
            return self.controller.save(overwrite=True)
        if choice is ConflictChoice.SAVE_AS:
            return self._save_as()
        self.statusBar().showMessage(LATER_TEXT)
        return False

    @Slot()
    def _on_save_conflict(self) -> None:
        """The watcher saw an outside edit of the project file while there are unsaved
        edits: ask now. Undone back to the saved state since, there is nothing to lose: reload
        as a window with nothing unsaved does."""
        if self.controller.session.dirty:
            self._resolve_conflict(at_save=False)
        else:
            self.controller.reload_from_disk()

    @Slot()
    def _open(self) -> None:
        folder = str(self.controller.project.folder)
        path, _ = QFileDialog.getOpenFileName(
            self, "Open project", folder, "Projects (*.json);;All files (*)"
        )
        if path:
            self.openRequested.emit(path)

    @Slot()
    def _save(self) -> bool:
        if self.controller.project.path is None:
            return self._save_as()
        if self.controller.changed_on_disk():  # never overwrite an outside edit unasked
            return bool(self._resolve_conflict(at_save=True))
        return self.controller.save()

    @Slot()
    def _save_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Save project as",
            str(self.controller.project.folder / "project.json"),
            "Projects (*.json)",
        )
        # the file dialog asked before replacing an existing file: no second question
        return bool(path) and self.controller.save(path, overwrite=True)

    @Slot()
    def _add_audio(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(AUDIO_SUFFIXES))
        paths, _ = QFileDialog.getOpenFileNames(
            self,
            "Add audio files",
            str(self.controller.project.folder),
            f"Audio ({patterns});;All files (*)",
        )
        if paths:
            self._on_files_dropped(paths)

    @Slot(list)
    def _on_files_dropped(self, paths: list[str]) -> None:
        self.add_audio_paths(paths)  # (window_sources.py: a large drop is scanned in a worker)

    @Slot()
    def _export(self) -> None:
        row = self.table.current_row()
        if row is None or row.state != "ok":
            self.statusBar().showMessage("Only an ok row can be exported", 4000)
            return
        folder = self.controller.project.folder
        default = str(folder / f"{row.key.source}-{row.key.feature}.npy")
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export feature", default, "NumPy array (*.npy);;CSV (*.csv);;JSON (*.json)"
        )
        if not path:
            return
        fmt = "csv" if "csv" in chosen else "json" if "json" in chosen else "npy"
        suffix = Path(path).suffix.lower().lstrip(".")
        if suffix in ("npy", "csv", "json"):
            fmt = suffix
        self.controller.export(row, fmt, Path(path))
