"""File handling of the main window: open, save, save as, add audio (by dialog or by drop),
export a row.

These are the window's file dialogs and what follows them; the work itself is the
controller's. A mixin of :class:`~diagnostics_app.qt.main_window.MainWindow`, apart from it
so the window module holds the layout and the wiring, not every dialog's details.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QFileDialog

from diagnostics_app.qt.widgets.source_tree import AUDIO_SUFFIXES
from diagnostics_app.qt.window_host import WindowHost


class ProjectFilesMixin(WindowHost):
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
        return self.controller.save()

    @Slot()
    def _save_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Save project as",
            str(self.controller.project.folder / "project.json"),
            "Projects (*.json)",
        )
        return bool(path) and self.controller.save(path)

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
        added = self.controller.add_audio(paths)
        if added:
            self.select(("source", added[-1]))

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
