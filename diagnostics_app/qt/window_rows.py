"""Row actions of the main window: what the table's actions do to the selected rows
(regenerate, explain, copy as JSON, prune after a confirmation), the table's context menu, and
cancelling a job from the job panel.

A mixin of :class:`~diagnostics_app.qt.main_window.MainWindow`, apart from it so the window
module holds the layout and the wiring; the work itself is the controller's.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPoint, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMenu, QMessageBox

from diagnostics_app.core.diagnostics import Row
from diagnostics_app.core.states import extraneous
from diagnostics_app.qt.actions import TABLE_MENU
from diagnostics_app.qt.theme import human_bytes
from diagnostics_app.qt.window_host import WindowHost
from diagnostics_app.qt.window_plots import lane_prefix


class RowActionsMixin(WindowHost):
    def _init_lane_links(self) -> None:
        """Rows and lanes: selecting rows marks their lanes and scrolls to them; clicking a
        lane selects its row."""
        self.table.rowsSelected.connect(self._highlight_rows)
        self.plot_area.laneClicked.connect(self._select_lane_row)

    @Slot(list)
    def _highlight_rows(self, rows: list[Row]) -> None:
        self.plot_area.highlight_lanes([lane_prefix(r) for r in rows])

    @Slot(object)
    def _select_lane_row(self, key: tuple[object, ...]) -> None:
        for row in self.table.table_model.rows():
            prefix = lane_prefix(row)
            if key[: len(prefix)] == prefix:
                self.table.select_key(row.key)
                return

    @Slot()
    def _regenerate_selected(self) -> None:
        rows = self.table.selected_rows() or ([r] if (r := self.table.current_row()) else [])
        self.controller.regenerate(rows)

    @Slot(str)
    def _on_cancel_job(self, job_id: str) -> None:
        if not self.controller.cancel(job_id):
            self.statusBar().showMessage(
                "That job belongs to another process and cannot be cancelled from here", 5000
            )

    @Slot(QPoint)
    def _on_table_menu(self, pos: QPoint) -> None:
        self._update_actions()
        menu = QMenu(self)
        for name in TABLE_MENU:
            menu.addSeparator() if name is None else menu.addAction(getattr(self, name))
        menu.exec(self.table.viewport().mapToGlobal(pos))

    @Slot()
    def _explain_current(self) -> None:
        self.explain.set_row(self.table.current_row())
        self.explain.setFocus()

    @Slot()
    def _copy_json(self) -> None:
        rows = self.table.selected_rows()
        if rows:
            QGuiApplication.clipboard().setText(self.controller.rows_json(rows))
            self.statusBar().showMessage(
                f"Copied {len(rows)} row{'s' if len(rows) != 1 else ''} as JSON", 3000
            )

    @Slot()
    def _prune_extraneous(self) -> None:
        self._confirm_prune(extraneous(self.controller.diagnosis.rows))

    @Slot()
    def _prune_selected(self) -> None:
        self._confirm_prune(extraneous(self.table.selected_rows()))

    def _confirm_prune(self, rows: Sequence[Row]) -> None:
        if not rows:
            self.statusBar().showMessage("Nothing extraneous to prune", 3000)
            return
        size = human_bytes(sum(r.nbytes or 0 for r in rows))
        listing = "\n".join(
            f"• {r.key.source} / {r.key.feature} ({r.key.calculator}, {r.key.profile})"
            for r in rows[:12]
        )
        more = f"\n… and {len(rows) - 12} more" if len(rows) > 12 else ""
        answer = QMessageBox.question(
            self,
            "Prune extraneous data",
            f"Delete {len(rows)} cached feature{'s' if len(rows) != 1 else ''} ({size}) that no track requests?\n\n{listing}{more}\n\nUndo (Ctrl+Z) restores them.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.controller.prune(rows)
