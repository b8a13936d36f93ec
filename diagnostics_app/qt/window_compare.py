"""Compare mode in the main window: a row's current data against its previous version.

"Compare with Previous" (Analysis menu and the table's context menu, checkable; enabled when
the current row keeps a previous version) compares the row in the plot pool
(:mod:`.compare_mode`), then overlays its lanes (:mod:`.plots.compare_overlay`: a grey ghost
for line features; for images Current / Previous / Difference), marks the differing ranges
on the ruler and shows the statistics in the Why panel. "Play Differences" (Playback menu,
in compare mode with ranges) plays each range with a short pre-roll, the playhead following
(:mod:`.diff_playback`). Unchecking it, selecting another source, or new data for the row
leaves compare mode and gives the lanes back as they were. A mixin of
:class:`~diagnostics_app.qt.main_window.MainWindow`.
"""

from __future__ import annotations

from PySide6.QtCore import Slot
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu

from diagnostics_app.core.compare_text import summary_line
from diagnostics_app.core.diagnostics import Row
from diagnostics_app.qt.compare_mode import CompareLoader, CompareResult
from diagnostics_app.qt.diff_playback import DiffPlayback
from diagnostics_app.qt.plots.compare_overlay import IMAGE_MODES, MODE_TITLES, CompareOverlay
from diagnostics_app.qt.window_host import WindowHost

MESSAGE_MS = 10_000


class CompareMixin(WindowHost):
    actionCompareWithPrevious: QAction
    actionPlayDifferences: QAction
    compare_overlay: CompareOverlay
    compare_loader: CompareLoader
    diff_playback: DiffPlayback
    compare_result: CompareResult | None
    _compare_row: Row | None
    _image_mode_actions: dict[str, QAction]

    def _init_compare(self, analysis_menu: QMenu) -> None:
        """The loader, the overlay and A/B playback; the image views in the Analysis menu."""
        self.compare_result = None
        self._compare_row = None
        self.compare_overlay = CompareOverlay()
        self.compare_overlay.on_restyle(self._recompare)
        self.compare_loader = CompareLoader(
            self.controller.session, self.controller.plot_pool, self
        )
        self.compare_loader.loaded.connect(self._on_compare_loaded)
        self.compare_loader.failed.connect(self._on_compare_failed)
        self.diff_playback = DiffPlayback(self.player, self)
        # each span scrolled into view as it starts (the playhead then follows it)
        self.diff_playback.spanStarted.connect(
            lambda _i, start, _end: self.plot_area.show_time(start)
        )
        self.controller.plotLoaded.connect(self._reapply_compare)  # after _on_plot_loaded
        self.table.currentRowChanged.connect(lambda _rows: self._sync_compare_action())
        self.player.stateChanged.connect(lambda _playing: self._update_compare_actions())
        views = analysis_menu.addMenu("Compare &View")
        views.setObjectName("compareViewMenu")
        group = QActionGroup(self)
        self._image_mode_actions = {}
        for mode in IMAGE_MODES:
            action = QAction(MODE_TITLES[mode], self)
            action.setObjectName(f"actionCompare{mode.capitalize()}")
            action.setCheckable(True)
            action.setChecked(mode == "current")
            action.setStatusTip("Image lanes in compare mode: what the picture shows")
            action.triggered.connect(lambda _=False, m=mode: self.set_compare_image_mode(m))
            group.addAction(action)
            views.addAction(action)
            self._image_mode_actions[mode] = action
            setattr(self, action.objectName(), action)  # e.g. window.actionCompareDifference
        self._update_compare_actions()

    # -- enablement ------------------------------------------------------------------------

    def has_previous(self, row: Row | None) -> bool:
        """The row keeps a previous version: its regeneration was compared with it (the
        verdict comes with the row, derived off the GUI thread: no SQL here). One evicted
        since is said by the comparison's worker."""
        return row is not None and row.updated is not None and row.regenerated is not None

    def _update_compare_actions(self) -> None:
        result = self.compare_result
        ranges = bool(result is not None and result.comparison.ranges)
        play = self.actionPlayDifferences
        play.setEnabled(ranges and self.player.available and self.player.duration() > 0)
        images = result is not None and bool(result.current)
        for mode, action in self._image_mode_actions.items():
            action.setEnabled(images)
            action.setChecked(mode == self.compare_overlay.image_mode)

    def _sync_compare_action(self) -> None:
        """The action is checked while the current row is the one compared."""
        row = self.table.current_row()
        on = self._compare_row is not None and row is not None and row.key == self._compare_row.key
        blocked = self.actionCompareWithPrevious.blockSignals(True)
        self.actionCompareWithPrevious.setChecked(on)
        self.actionCompareWithPrevious.blockSignals(blocked)

    # -- entering and leaving ----------------------------------------------------------------

    @Slot(bool)
    def _toggle_compare(self, on: bool) -> None:
        row = self.table.current_row()
        if not on:
            self.leave_compare()
            return
        if row is None or not self.has_previous(row):
            self._sync_compare_action()
            self.statusBar().showMessage("This row keeps no previous version", MESSAGE_MS)
            return
        self.leave_compare()
        self._compare_row = row
        self._sync_compare_action()
        self.statusBar().showMessage(f"Comparing {row.key.feature} with its previous version…")
        self.compare_loader.request(row, self.plot_area.duration())

    def _recompare(self) -> None:
        """The compared row's views again (another style of its image lanes), same mode."""
        if self._compare_row is not None:
            self.compare_loader.request(self._compare_row, self.plot_area.duration())

    def leave_compare(self) -> None:
        """Out of compare mode: the lanes, the ruler and the Why panel as they were."""
        self.compare_loader.cancel()
        self.diff_playback.stop()
        self.compare_overlay.clear()
        self.plot_area.ruler.set_marks(())
        self.explain.set_comparison(None)
        self.compare_result = None
        self._compare_row = None
        self._sync_compare_action()
        self._update_compare_actions()

    @Slot(object)
    def _on_compare_loaded(self, result: CompareResult) -> None:
        if self._compare_row is None or result.key != self._compare_row.key:
            return
        self.compare_result = result
        self._show_compare(result)
        c = result.comparison
        self.statusBar().showMessage(f"{result.key.feature}: {c.verdict} — {summary_line(c)}")
        self._update_compare_actions()

    @Slot(str)
    def _on_compare_failed(self, message: str) -> None:
        self.leave_compare()
        self.statusBar().showMessage(f"Cannot compare: {message}", MESSAGE_MS)

    def _show_compare(self, result: CompareResult) -> None:
        self.plot_area.flush_updates()  # the lanes settled: the overlay goes on what stays
        lanes = self.compare_overlay.apply(self.plot_area.lanes(), result)
        self.plot_area.ruler.set_marks(result.comparison.ranges)
        self.explain.set_comparison(result.key, result.comparison)
        if lanes:
            self.plot_area.scroll_to_lane(lanes[0])

    @Slot(object)
    def _reapply_compare(self, _loaded: object = None) -> None:
        """After a reload: the compared row's lanes get their marks again; when the row is
        gone from the plots or its data changed, compare mode ends."""
        result = self.compare_result
        if result is None:
            return
        row = next((r for r in self.selection_rows() if r.key == result.key), None)
        if row is None or row.updated != result.updated:
            self.leave_compare()
            why = "its data changed" if row is not None else "the row is not shown"
            self.statusBar().showMessage(f"Compare mode ended: {why}", MESSAGE_MS)
            return
        self._show_compare(result)

    def set_compare_image_mode(self, mode: str) -> None:
        """Image lanes in compare mode show ``mode``: current, previous or difference."""
        self.compare_overlay.set_image_mode(mode)
        self._update_compare_actions()

    # -- A/B listening -----------------------------------------------------------------------

    @Slot()
    def _play_differences(self) -> None:
        result = self.compare_result
        if result is None or not result.comparison.ranges:
            return
        if not self.diff_playback.start(result.comparison.ranges):
            self.statusBar().showMessage("Play Differences: nothing could be played", MESSAGE_MS)
            return
