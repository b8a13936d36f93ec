"""The main window: source tree (left), descriptor table + explain panel (centre), plots
(bottom of the centre) and the job panel (bottom dock).

It wires widgets to the :class:`~diagnostics_app.qt.controller.Controller` and nothing else:
every action calls the controller; every view redraws from ``controller.diagnosis`` when
``diagnosisChanged`` fires, so the badges of every track sharing a source, the table, the
explain panel, the plots and the job panel always show the same derivation.

The diagnosis is derived in a worker thread: the window is shown at once, empty, with a
"Loading diagnostics…" status, and fills when the first snapshot arrives. A selection asked
for before its node exists (at start, or right after adding a source) is kept and applied
when a snapshot brings the node.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QPoint, Qt, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QLayout,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QStyle,
    QToolBar,
    QWidget,
)

from diagnostics_app import APP_NAME, __version__
from diagnostics_app.core import edits
from diagnostics_app.core.diagnostics import Row
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.project import Project, Request
from diagnostics_app.qt.controller import Controller
from diagnostics_app.qt.playback import Player
from diagnostics_app.qt.plots.plot_area import PlotArea
from diagnostics_app.qt.settings import AppSettings, SettingsStore
from diagnostics_app.qt.theme import BADGE_ORDER, STATE_COLORS, app_icon, human_bytes, state_icon
from diagnostics_app.qt.widgets.descriptor_table import DescriptorTable
from diagnostics_app.qt.widgets.dialogs import (
    ProfilesDialog,
    RequestsDialog,
    SettingsDialog,
    TempoMapDialog,
)
from diagnostics_app.qt.widgets.explain_panel import ExplainPanel
from diagnostics_app.qt.widgets.job_panel import JobPanel
from diagnostics_app.qt.widgets.source_tree import AUDIO_SUFFIXES, SourceTreePanel
from diagnostics_app.qt.workers import PlotResult

MAX_PLOTS = 8  # feature lanes shown at once
PLOTTABLE = ("ok", "stale", "extraneous", "running", "queued", "failed")  # with data
PENDING = ("missing", "queued", "running")  # without data yet: an empty lane
LOADING_TEXT = "Loading diagnostics…"
# a reload hands kept lanes their data for about this long per turn of the event loop
PLOT_UPDATE_BUDGET_MS = 4.0


def window_title(project: Project) -> str:
    return f"{APP_NAME} {__version__} — {project.name}"


class MainWindow(QMainWindow):
    openRequested = Signal(str)  # another project: the application swaps windows
    demoRequested = Signal()

    # actions (object names as in interface §6), set by _make_actions
    actionOpen: QAction
    actionOpenDemo: QAction
    actionSave: QAction
    actionSaveAs: QAction
    actionAddAudio: QAction
    actionQuit: QAction
    actionUndo: QAction
    actionRedo: QAction
    actionEditRequests: QAction
    actionEditTempoMap: QAction
    actionEditProfiles: QAction
    actionSettings: QAction
    actionRegenerateSelected: QAction
    actionRegenerateStale: QAction
    actionCalculateMissing: QAction
    actionPruneExtraneous: QAction
    actionCancelAll: QAction
    actionExplain: QAction
    actionExport: QAction
    actionPruneSelected: QAction
    actionCopyJson: QAction
    actionPlay: QAction
    actionAbout: QAction

    def __init__(
        self,
        controller: Controller,
        settings_store: SettingsStore | None = None,
        player: Player | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowIcon(app_icon())
        self.controller = controller
        self.settings_store = settings_store
        self.player = player if player is not None else Player(self)
        self._selection: tuple[str, str] | None = None
        self._plot_signature: tuple[Any, ...] | None = None
        self._plot_source: str | None = None
        self._samples_source: str | None = None
        self._seek_position = 0.0
        self._pending_select: tuple[str, str] | None = None  # asked for before its node came
        self._pending_first_issue = False  # show_first_issue() asked for before any rows
        self._loading = False  # "Loading diagnostics…" shown until the first snapshot
        self.force_close = False  # skip the "save changes?" question (tests, screenshot)

        self.sources = SourceTreePanel(self)
        self.table = DescriptorTable(self)
        self.explain = ExplainPanel(self)
        self.plot_area = PlotArea(self)
        self._make_actions()
        self.jobs = JobPanel(self.actionCancelAll, controller.can_cancel, self)

        top = QSplitter(Qt.Orientation.Horizontal, self)
        top.setObjectName("tableSplitter")
        top.addWidget(self.table)
        top.addWidget(self.explain)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 2)
        centre = QSplitter(Qt.Orientation.Vertical, self)
        centre.setObjectName("centreSplitter")
        centre.addWidget(top)
        centre.addWidget(self.plot_area)
        centre.setStretchFactor(0, 2)
        centre.setStretchFactor(1, 3)
        self.setCentralWidget(centre)

        self.sources_dock = self._dock(
            "Sources", "sourcesDock", self.sources, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self.jobs_dock = self._dock(
            "Jobs", "jobsDock", self.jobs, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self._make_menus()
        self._make_status_bar()
        self.resizeDocks([self.sources_dock], [270], Qt.Orientation.Horizontal)
        self.resizeDocks([self.jobs_dock], [140], Qt.Orientation.Vertical)
        top.setSizes([700, 440])
        centre.setSizes([330, 570])

        self.sources.selectionChanged.connect(self._on_tree_selection)
        self.sources.filesDropped.connect(self._on_files_dropped)
        self.table.currentRowChanged.connect(self._on_current_row)
        self.table.rowsSelected.connect(self._on_rows_selected)
        self.table.customContextMenuRequested.connect(self._on_table_menu)
        self.jobs.cancelRequested.connect(self._on_cancel_job)
        controller.diagnosisChanged.connect(self._on_diagnosis)
        controller.projectChanged.connect(self._on_project)
        controller.historyChanged.connect(self._on_history)
        controller.message.connect(self._on_message)
        controller.plotLoaded.connect(self._on_plot_loaded)
        self.plot_area.seekRequested.connect(self._on_seek)
        self.player.positionChanged.connect(self._on_play_position)
        self.player.stateChanged.connect(self._on_play_state)
        self.player.errorOccurred.connect(self._on_play_error)

        # The window's own layout must not push size constraints to the platform window:
        # platforms without size hints (offscreen, used by tests and screenshots) warn.
        layout = self.layout()
        if layout is not None:
            layout.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        self.resize(1400, 900)
        self._on_project()
        self._on_history()
        self._init_playback()
        if not controller.has_diagnosis:
            self._loading = True
            self.statusBar().showMessage(LOADING_TEXT)
            self.summary_label.setText(LOADING_TEXT)
        self._on_diagnosis()
        first = controller.project.sources[0].id if controller.project.sources else None
        if first is not None:
            self.select(("source", first))

    # -- construction ---------------------------------------------------------------------

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        return dock

    def _action(
        self,
        name: str,
        text: str,
        slot: Any,
        shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
        icon: QIcon | None = None,
        tip: str = "",
    ) -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if icon is not None:
            action.setIcon(icon)
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)
        setattr(self, name, action)
        return action

    def _make_actions(self) -> None:
        style = self.style()
        sp = QStyle.StandardPixmap
        self._action(
            "actionOpen",
            "&Open…",
            self._open,
            QKeySequence.StandardKey.Open,
            style.standardIcon(sp.SP_DialogOpenButton),
            "Open a project file",
        )
        self._action(
            "actionOpenDemo",
            "Open &Demo",
            self.demoRequested.emit,
            tip="Write a demo project with generated audio and open it",
        )
        self._action(
            "actionSave",
            "&Save",
            self._save,
            QKeySequence.StandardKey.Save,
            style.standardIcon(sp.SP_DialogSaveButton),
            "Save the project file",
        )
        self._action("actionSaveAs", "Save &As…", self._save_as, QKeySequence.StandardKey.SaveAs)
        self._action(
            "actionAddAudio",
            "&Add Audio…",
            self._add_audio,
            "Ctrl+Shift+A",
            tip="Add audio files: a source and a track each",
        )
        self._action("actionQuit", "&Quit", self.close, QKeySequence.StandardKey.Quit)
        self._action(
            "actionUndo",
            "&Undo",
            self.controller.undo,
            "Ctrl+Z",
            style.standardIcon(sp.SP_ArrowBack),
            "Undo the last edit or prune",
        )
        self._action(
            "actionRedo",
            "&Redo",
            self.controller.redo,
            "Ctrl+Shift+Z",
            style.standardIcon(sp.SP_ArrowForward),
            "Redo",
        )
        self._action(
            "actionEditRequests",
            "Track &Requests…",
            self._edit_requests,
            tip="Edit what the selected track requests",
        )
        self._action(
            "actionEditTempoMap",
            "&Tempo Map…",
            self._edit_tempo_map,
            tip="Edit the project's tempo map",
        )
        self._action(
            "actionEditProfiles",
            "&Profiles…",
            self._edit_profiles,
            tip="Edit the analysis profiles",
        )
        self._action(
            "actionSettings",
            "Se&ttings…",
            self._edit_settings,
            QKeySequence.StandardKey.Preferences,
        )
        self._action(
            "actionRegenerateSelected",
            "Regenerate &Selected",
            self._regenerate_selected,
            "F5",
            state_icon("running"),
            "Recompute the selected rows, first in the queue (F5)",
        )
        self._action(
            "actionRegenerateStale",
            "Regenerate S&tale",
            self.controller.regenerate_stale,
            None,
            state_icon("stale"),
            "Recompute every stale or failed row",
        )
        self._action(
            "actionCalculateMissing",
            "Calculate &Missing",
            self.controller.calculate_missing,
            None,
            state_icon("missing"),
            "Compute every missing row",
        )
        self._action(
            "actionPruneExtraneous",
            "&Prune Extraneous…",
            self._prune_extraneous,
            None,
            state_icon("extraneous"),
            "Delete cached data no track requests (undoable)",
        )
        self._action(
            "actionCancelAll",
            "&Cancel All Jobs",
            self.controller.cancel_all,
            None,
            style.standardIcon(sp.SP_BrowserStop),
            "Cancel every queued and running job of this window",
        )
        self._action(
            "actionExplain", "&Explain", self._explain_current, tip="Show why the row has its state"
        )
        self._action(
            "actionExport",
            "E&xport…",
            self._export,
            tip="Export the row's data with its provenance",
        )
        self._action(
            "actionPruneSelected",
            "Prune Selected",
            self._prune_selected,
            tip="Delete the selected extraneous rows (undoable)",
        )
        self._action(
            "actionCopyJson", "Copy as &JSON", self._copy_json, QKeySequence.StandardKey.Copy
        )
        self._action(
            "actionPlay",
            "&Play / Pause",
            self._toggle_play,
            "Space",
            style.standardIcon(sp.SP_MediaPlay),
            "Play the selected source from the playhead",
        )
        self._action("actionAbout", "&About", self._about)
        self.actionCopyJson.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.table.addAction(self.actionCopyJson)
        self.removeAction(self.actionCopyJson)

    def _make_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        for a in (self.actionOpen, self.actionOpenDemo, self.actionSave, self.actionSaveAs):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.actionAddAudio)
        m.addAction(self.actionExport)
        m.addSeparator()
        m.addAction(self.actionQuit)
        m = bar.addMenu("&Edit")
        for a in (self.actionUndo, self.actionRedo):
            m.addAction(a)
        m.addSeparator()
        for a in (self.actionEditRequests, self.actionEditTempoMap, self.actionEditProfiles):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.actionCopyJson)
        m.addAction(self.actionSettings)
        m = bar.addMenu("&Analysis")
        for a in (
            self.actionRegenerateSelected,
            self.actionRegenerateStale,
            self.actionCalculateMissing,
        ):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.actionPruneExtraneous)
        m.addAction(self.actionPruneSelected)
        m.addSeparator()
        m.addAction(self.actionCancelAll)
        m = bar.addMenu("&View")
        m.addAction(self.sources_dock.toggleViewAction())
        m.addAction(self.jobs_dock.toggleViewAction())
        m.addSeparator()
        m.addAction(self.actionPlay)
        m = bar.addMenu("&Help")
        m.addAction(self.actionAbout)

        tb = QToolBar("Main", self)
        tb.setObjectName("mainToolBar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.setMovable(False)
        tb_items: tuple[QAction | None, ...] = (
            self.actionOpen,
            self.actionSave,
            None,
            self.actionUndo,
            self.actionRedo,
            None,
        )
        for item in tb_items:
            tb.addSeparator() if item is None else tb.addAction(item)
        for item in (
            self.actionRegenerateSelected,
            self.actionRegenerateStale,
            self.actionCalculateMissing,
            self.actionPruneExtraneous,
            self.actionCancelAll,
            None,
            self.actionPlay,
        ):
            tb.addSeparator() if item is None else tb.addAction(item)
        self.addToolBar(tb)
        self.toolbar = tb

    def _make_status_bar(self) -> None:
        sb = self.statusBar()
        self.summary_label = QLabel(self)
        self.summary_label.setObjectName("summaryLabel")
        self.modified_label = QLabel(self)
        self.modified_label.setObjectName("modifiedLabel")
        self.playback_label = QLabel(self)
        self.playback_label.setObjectName("playbackLabel")
        sb.addPermanentWidget(self.playback_label)
        sb.addPermanentWidget(self.modified_label)
        sb.addPermanentWidget(self.summary_label)

    def _init_playback(self) -> None:
        if self.player.available:
            self.playback_label.setText("")
            return
        reason = self.player.unavailable_reason or "no audio output device"
        self.actionPlay.setEnabled(False)
        tip = f"Playback unavailable: {reason}"
        self.actionPlay.setToolTip(tip)
        self.actionPlay.setStatusTip(tip)
        self.playback_label.setText(f"<span style='color:#757575'>{html.escape(tip)}</span>")
        self.playback_label.setToolTip(tip)

    # -- selection ------------------------------------------------------------------------

    def select(self, key: tuple[str, str] | None) -> bool:
        """Select a source ("source", id) or a track ("track", id) in the tree. A node the
        tree does not show yet while a derivation is on its way (at start, right after an
        edit) is selected when it arrives; returns whether it was selected now."""
        ok = self.sources.select(key)
        if ok:
            self._pending_select = None
            self._on_tree_selection(key)
        elif key is not None and (
            not self.controller.has_diagnosis or self.controller.diagnosis_pending
        ):
            self._pending_select = key
        return ok

    def selection_rows(self) -> list[Row]:
        if self._selection is None:
            return []
        kind, ident = self._selection
        if kind == "track":
            return self.controller.rows_for_track(ident)
        return self.controller.rows_for_source(ident)

    def selected_source(self) -> str | None:
        if self._selection is None:
            return None
        kind, ident = self._selection
        if kind == "track":
            try:
                return self.controller.project.track(ident).source
            except Exception:
                return None
        return ident

    def show_first_issue(self) -> bool:
        """Select the first row that is not ok (stale first), so the explain panel says why.
        Before the first diagnosis it is done when the rows arrive (returns False now)."""
        if not self.controller.has_diagnosis:
            self._pending_first_issue = True
            return False
        self._pending_first_issue = False
        return self.table.select_first(("stale",)) or self.table.select_first(
            ("failed", "invalid", "missing", "extraneous")
        )

    @Slot(object)
    def _on_tree_selection(self, key: object) -> None:
        if key is None or key == self._selection:
            return
        self._selection = key  # type: ignore[assignment]
        self._update_table()
        self.table.fit_columns()
        self._update_plots(force=True)
        self._update_actions()

    def _update_table(self) -> None:
        self.table.set_rows(self.selection_rows())

    @Slot(list)
    def _on_current_row(self, rows: list[Row]) -> None:
        self.explain.set_row(rows[0] if rows else None)

    @Slot(list)
    def _on_rows_selected(self, rows: list[Row]) -> None:
        self._update_actions()

    # -- redraw from the diagnosis ----------------------------------------------------------

    @Slot()
    def _on_diagnosis(self) -> None:
        """Apply the controller's new snapshot to every view: the models are updated in place
        (nothing is derived here: the tree's nodes and the counts come with the snapshot)."""
        c = self.controller
        self.sources.set_tree(c.tree)
        if self._loading and c.has_diagnosis:
            self._loading = False
            if self.statusBar().currentMessage() == LOADING_TEXT:
                self.statusBar().clearMessage()
        if self._pending_select is not None:
            self.select(self._pending_select)
        if self._selection is not None and not self._known(*self._selection):
            self._selection = None
        self._update_table()
        self.jobs.set_jobs(c.jobs)
        self._update_summary()
        self._update_actions()
        self._update_plots()
        if self._pending_first_issue and c.has_diagnosis:
            self.show_first_issue()

    def _known(self, kind: str, ident: str) -> bool:
        """The node still exists: in the project, or (sources) in the store's rows."""
        c = self.controller
        try:
            if kind == "track":
                c.project.track(ident)
            else:
                c.project.source(ident)
            return True
        except DiagnosticsError:
            return kind == "source" and bool(c.diagnosis.for_source(ident))

    def _update_summary(self) -> None:
        if not self.controller.has_diagnosis:
            return  # still "Loading diagnostics…"
        summary = self.controller.summary
        parts = [
            f"<span style='color:{STATE_COLORS[s]}'>{summary[s]} {s}</span>"
            for s in BADGE_ORDER
            if summary.get(s)
        ]
        self.summary_label.setText(" · ".join(parts) if parts else "no rows")

    def _update_actions(self) -> None:
        c = self.controller
        states = {s for s, n in c.summary.items() if n}
        selected = self.table.selected_rows()
        self.actionRegenerateSelected.setEnabled(
            any(r.state in ("ok", "missing", "stale", "failed") for r in selected)
        )
        self.actionRegenerateStale.setEnabled(bool(states & {"stale", "failed"}))
        self.actionCalculateMissing.setEnabled("missing" in states)
        self.actionPruneExtraneous.setEnabled("extraneous" in states)
        self.actionPruneSelected.setEnabled(any(r.state == "extraneous" for r in selected))
        self.actionCancelAll.setEnabled(c.busy)
        current = self.table.current_row()
        self.actionExport.setEnabled(current is not None and current.state == "ok")
        self.actionExplain.setEnabled(current is not None)
        self.actionCopyJson.setEnabled(bool(selected))
        self.actionEditRequests.setEnabled(
            self._selection is not None and self._selection[0] == "track"
        )

    @Slot()
    def _on_project(self) -> None:
        self.setWindowTitle(window_title(self.controller.project))
        self._plot_signature = None

    @Slot()
    def _on_history(self) -> None:
        h = self.controller.session.history
        self.actionUndo.setEnabled(h.undo_text is not None)
        self.actionUndo.setText(f"&Undo {h.undo_text}" if h.undo_text else "&Undo")
        self.actionRedo.setEnabled(h.redo_text is not None)
        self.actionRedo.setText(f"&Redo {h.redo_text}" if h.redo_text else "&Redo")
        self.modified_label.setText("<b>Modified</b>" if self.controller.session.dirty else "")

    @Slot(str, int)
    def _on_message(self, text: str, timeout: int) -> None:
        self.statusBar().showMessage(text, timeout)

    # -- plots and playback -----------------------------------------------------------------

    def _plot_rows(self) -> list[Row]:
        """The rows the plot area shows: with data, or requested and on their way (empty
        lanes titled with their state, so lanes do not come and go during an analysis)."""
        rows = [
            r
            for r in self.selection_rows()
            if (r.updated is not None and r.state in PLOTTABLE) or r.state in PENDING
        ]
        peaks = [r for r in rows if r.key.feature == "peaks"]
        others = [r for r in rows if r.key.feature != "peaks"][:MAX_PLOTS]
        return peaks[:1] + others

    def _update_plots(self, force: bool = False) -> None:
        source = self.selected_source()
        if source is None:
            if self._plot_source is not None:
                self.plot_area.clear()
                self._plot_source = None
                self._plot_signature = None
            return
        rows = self._plot_rows()
        signature = (
            self._selection,
            tuple((r.key, r.updated, r.state) for r in rows),
            self.controller.project.tempo_map,
        )
        if not force and signature == self._plot_signature:
            return
        self._plot_signature = signature
        assert self._selection is not None
        kind, ident = self._selection
        if kind == "track":
            track = self.controller.project.track(ident)
            title = f"{track.name} — {source}"
        else:
            title = source
        want_samples = self.player.available and self._samples_source != source
        self.controller.request_plot(source, title, rows, want_samples)

    @Slot(object)
    def _on_plot_loaded(self, result: PlotResult) -> None:
        """Hand the loaded arrays to the plot area: lanes of features shown before are kept
        and given the new data; the numpy work was done by the loader."""
        self._plot_source = result.source_id
        self.plot_area.show_plot(
            result.title,
            result.duration or 0.0,
            result.pyramid if result.pyramid is not None else result.peaks,
            result.peaks_step,
            result.channel_names,
            self.controller.project.tempo_map,
            result.features,
            budget_ms=PLOT_UPDATE_BUDGET_MS,
        )
        if result.samples is not None and result.sample_rate:
            self.player.load(result.samples, result.sample_rate)
            self._samples_source = result.source_id
        for err in result.errors:
            self.statusBar().showMessage(err, 8000)

    @Slot()
    def _toggle_play(self) -> None:
        if not self.player.available:
            self.statusBar().showMessage(
                f"Playback unavailable: {self.player.unavailable_reason}", 5000
            )
            return
        if self._samples_source != self.selected_source():
            self.statusBar().showMessage("Audio for playback is still loading", 3000)
            return
        self.player.toggle()

    @Slot(float)
    def _on_seek(self, seconds: float) -> None:
        self._seek_position = seconds
        self.plot_area.set_playhead(seconds)
        if self.player.available and self._samples_source == self.selected_source():
            self.player.play(seconds)

    @Slot(float)
    def _on_play_position(self, seconds: float) -> None:
        self.plot_area.set_playhead(seconds)

    @Slot(str)
    def _on_play_error(self, message: str) -> None:
        self.statusBar().showMessage(f"Playback failed: {message}", 8000)

    @Slot(bool)
    def _on_play_state(self, playing: bool) -> None:
        style = self.style()
        icon = (
            QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        )
        self.actionPlay.setIcon(style.standardIcon(icon))

    # -- actions ----------------------------------------------------------------------------

    @Slot()
    def _regenerate_selected(self) -> None:
        rows = self.table.selected_rows() or ([r] if (r := self.table.current_row()) else [])
        self.controller.regenerate(rows)

    @Slot()
    def _prune_extraneous(self) -> None:
        rows = [r for r in self.controller.diagnosis.rows if r.state == "extraneous"]
        self._confirm_prune(rows)

    @Slot()
    def _prune_selected(self) -> None:
        self._confirm_prune([r for r in self.table.selected_rows() if r.state == "extraneous"])

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
        for a in (
            self.actionRegenerateSelected,
            self.actionExplain,
            self.actionExport,
            self.actionPruneSelected,
            None,
            self.actionCopyJson,
        ):
            menu.addSeparator() if a is None else menu.addAction(a)
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

    def requests_dialog(self) -> RequestsDialog | None:
        if self._selection is None or self._selection[0] != "track":
            self.statusBar().showMessage("Select a track to edit its requests", 4000)
            return None
        c = self.controller
        track = c.project.track(self._selection[1])
        registry = c.session.registry
        dlg = RequestsDialog(
            track.name,
            track.requests,
            registry.features(),
            [calc.id for calc in registry],
            c.project.profile_names(),
            self,
        )
        tid = track.id

        def apply(requests: tuple[Request, ...]) -> str | None:
            return c.edit(
                f"Edit requests of {track.name}", lambda p: edits.set_requests(p, tid, requests)
            )

        dlg.apply = apply
        return dlg

    @Slot()
    def _edit_requests(self) -> None:
        dlg = self.requests_dialog()
        if dlg is not None:
            dlg.exec()

    def tempo_dialog(self) -> TempoMapDialog:
        c = self.controller
        dlg = TempoMapDialog(c.project.tempo_map.to_json(), self)
        dlg.apply = lambda segments: c.edit(
            "Edit tempo map", lambda p: edits.set_tempo_map(p, segments)
        )
        return dlg

    @Slot()
    def _edit_tempo_map(self) -> None:
        self.tempo_dialog().exec()

    def profiles_dialog(self) -> ProfilesDialog:
        c = self.controller
        before = {n: dict(c.project.profile(n)) for n in c.project.profile_names()}
        dlg = ProfilesDialog(before, self)

        def apply(profiles: dict[str, dict[str, Any]]) -> str | None:
            changed = {n: v for n, v in profiles.items() if before.get(n) != v}
            if not changed:
                return None

            def change(p: Project) -> Project:
                for name, values in changed.items():
                    p = edits.set_profile(p, name, values)
                return p

            return c.edit("Edit profiles", change)

        dlg.apply = apply
        return dlg

    @Slot()
    def _edit_profiles(self) -> None:
        self.profiles_dialog().exec()

    @Slot()
    def _edit_settings(self) -> None:
        dlg = SettingsDialog(self.controller.settings, self)
        if dlg.exec():
            self.apply_settings(dlg.value())

    def apply_settings(self, settings: AppSettings) -> None:
        self.controller.apply_settings(settings)
        if self.settings_store is not None:
            self.settings_store.save(settings)
        self.statusBar().showMessage("Settings saved", 3000)

    @Slot()
    def _about(self) -> None:
        QMessageBox.about(
            self,
            f"About {APP_NAME}",
            f"<b>{APP_NAME} {__version__}</b><p>Diagnostics for audio feature caches.</p><p>Store: {html.escape(str(self.controller.session.store.root))}</p>",
        )

    # -- closing ----------------------------------------------------------------------------

    def save_window_state(self) -> None:
        if self.settings_store is None:
            return
        from dataclasses import replace

        s = replace(
            self.controller.settings,
            window_geometry=bytes(self.saveGeometry().data()),
            window_state=bytes(self.saveState().data()),
        )
        self.controller.settings = s
        self.settings_store.save(s)

    def restore_window_state(self, settings: AppSettings) -> None:
        if settings.window_geometry:
            self.restoreGeometry(QByteArray(settings.window_geometry))
        if settings.window_state:
            self.restoreState(QByteArray(settings.window_state))

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.controller.session.dirty and not self.force_close:
            answer = QMessageBox.question(
                self,
                "Unsaved changes",
                f"Save the changes to {self.controller.project.name}?",
                QMessageBox.StandardButton.Save
                | QMessageBox.StandardButton.Discard
                | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Save,
            )
            if answer == QMessageBox.StandardButton.Cancel or (
                answer == QMessageBox.StandardButton.Save and not self._save()
            ):
                event.ignore()
                return
        self.save_window_state()
        self.player.close()
        self.controller.shutdown()
        event.accept()
