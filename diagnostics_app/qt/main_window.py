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

from operator import attrgetter
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QLayout,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QToolBar,
    QWidget,
)

from diagnostics_app import APP_NAME, __version__
from diagnostics_app.core.diagnostics import Row
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.events import JobUpdated
from diagnostics_app.core.project import Project
from diagnostics_app.core.states import ACTIVE_JOB, ISSUES, SEVERITY
from diagnostics_app.qt.actions import (
    ACTIONS,
    ANALYSIS,
    MENUS,
    PLAYBACK,
    TOOLBAR,
    VIEW,
    ActionContext,
    make_action,
)
from diagnostics_app.qt.controller import Controller
from diagnostics_app.qt.playback import Player
from diagnostics_app.qt.plots.plot_area import PlotArea
from diagnostics_app.qt.settings import AppSettings, SettingsStore
from diagnostics_app.qt.theme import STATE_COLORS, app_icon
from diagnostics_app.qt.turns import Turns
from diagnostics_app.qt.widgets.descriptor_table import DescriptorTable
from diagnostics_app.qt.widgets.explain_panel import ExplainPanel
from diagnostics_app.qt.widgets.job_panel import JobPanel
from diagnostics_app.qt.widgets.source_tree import SourceTreePanel, take_dropped_paths
from diagnostics_app.qt.window_channels import ChannelsMixin
from diagnostics_app.qt.window_compare import CompareMixin
from diagnostics_app.qt.window_dialogs import EditDialogsMixin
from diagnostics_app.qt.window_files import ProjectFilesMixin
from diagnostics_app.qt.window_playback import PlaybackMixin
from diagnostics_app.qt.window_plots import PlotsMixin
from diagnostics_app.qt.window_rows import RowActionsMixin
from diagnostics_app.qt.window_sources import SourceActionsMixin

LOADING_TEXT = "Loading diagnostics…"


def window_title(project: Project, modified: bool = False) -> str:
    """The title; `` *`` after the name while there are unsaved edits (the clean index)."""
    return f"{APP_NAME} {__version__} — {project.name}{' *' if modified else ''}"


class MainWindow(
    ProjectFilesMixin,
    SourceActionsMixin,
    EditDialogsMixin,
    RowActionsMixin,
    PlotsMixin,
    PlaybackMixin,
    ChannelsMixin,
    CompareMixin,
    QMainWindow,
):
    """The window of one project. File handling, the edit dialogs, the row actions, plots and
    playback are mixins (:mod:`.window_files`, :mod:`.window_dialogs`, :mod:`.window_rows`,
    :mod:`.window_plots`, :mod:`.window_playback`, :mod:`.window_channels`); the actions come from the table in
    :mod:`.actions`."""

    openRequested = Signal(str)  # another project: the application swaps windows
    demoRequested = Signal()

    # actions (object names as in interface §6), set by _make_actions from actions.ACTIONS
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
    actionGoToStart: QAction
    actionGoToEnd: QAction
    actionPlaySelection: QAction
    actionLoopSelection: QAction
    actionClearSelection: QAction
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
        self.player = (
            player
            if player is not None
            else Player(self, device=controller.settings.output_device or None)
        )
        self._selection: tuple[str, str] | None = None
        self._plot_signature: tuple[Any, ...] | None = None
        self._plot_source: str | None = None
        self._seek_position = 0.0
        self._pending_select: tuple[str, str] | None = None  # asked for before its node came
        self._pending_first_issue = False  # show_first_issue() asked for before any rows
        self._loading = False  # "Loading diagnostics…" shown until the first snapshot
        self.force_close = False  # skip the "save changes?" question (tests, screenshot)
        self.turns = Turns(self)  # view updates that each wait for the previous one's paint

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
        self.table_splitter, self.centre_splitter = top, centre  # their sizes are remembered

        self.sources_dock = self._dock(
            "Sources", "sourcesDock", self.sources, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self.jobs_dock = self._dock(
            "Jobs", "jobsDock", self.jobs, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self._make_toolbar()
        self._make_status_bar()
        self.resizeDocks([self.sources_dock], [230], Qt.Orientation.Horizontal)
        self.resizeDocks([self.jobs_dock], [self._jobs_dock_height()], Qt.Orientation.Vertical)
        top.setSizes([740, 400])  # the table needs its nine columns more than explain
        centre.setSizes([330, 570])

        self.sources.selectionChanged.connect(self._on_tree_selection)
        self.sources.filesDropped.connect(self._on_files_dropped)
        self.setAcceptDrops(True)  # files and folders dropped anywhere on the window
        self.sources.sourceMenuRequested.connect(self._on_source_menu)
        self.table.currentRowChanged.connect(self._on_current_row)
        self.table.rowsSelected.connect(self._on_rows_selected)
        self.table.customContextMenuRequested.connect(self._on_table_menu)
        self.jobs.cancelRequested.connect(self._on_cancel_job)
        controller.diagnosisChanged.connect(self._on_diagnosis)
        controller.projectChanged.connect(self._on_project)
        controller.historyChanged.connect(self._on_history)
        controller.progressChanged.connect(self._on_progress)
        controller.jobsChanged.connect(self._on_jobs)
        controller.message.connect(self._on_message)
        controller.saveConflict.connect(self._on_save_conflict)
        controller.plotLoaded.connect(self._on_plot_loaded)
        self.plot_area.seekRequested.connect(self._on_seek)
        self.player.positionChanged.connect(self._on_play_position)
        self.player.stateChanged.connect(self._on_play_state)
        self.player.errorOccurred.connect(self._on_play_error)
        self._init_playback()
        self._init_channels(self._playback_menu)
        self._init_plots(self._view_menu)
        self._init_lane_links()
        self._init_compare(self._analysis_menu)

        # The window's own layout must not push size constraints to the platform window:
        # platforms without size hints (offscreen, used by tests and screenshots) warn.
        layout = self.layout()
        if layout is not None:
            layout.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        self.resize(1400, 900)
        self._on_project()
        self._on_history()
        if not controller.has_diagnosis:
            self._loading = True
            self.statusBar().showMessage(LOADING_TEXT)
            self.summary_label.setText(LOADING_TEXT)
        self._show_device_notice()  # after "Loading…": the one message that must be seen
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

    def _make_actions(self) -> None:
        """The actions of :data:`~diagnostics_app.qt.actions.ACTIONS`, each set as the
        attribute of its name, and the menu bar listing them (the View menu gets the docks'
        toggles on top when the docks exist: :meth:`_make_toolbar`)."""
        bar = self.menuBar()
        menus = {title: bar.addMenu(title) for title in MENUS}
        for spec in ACTIONS:
            action = make_action(spec, self)
            action.triggered.connect(attrgetter(spec.handler)(self))
            if spec.table_only:  # e.g. Ctrl+C copies rows only while the table has the focus
                action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                self.table.addAction(action)
            elif spec.plot_only:  # e.g. Home and End: the table keeps its own
                action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                self.plot_area.addAction(action)
            else:
                self.addAction(action)
            setattr(self, spec.name, action)
            if spec.menu is not None:
                if spec.separator:
                    menus[spec.menu].addSeparator()
                menus[spec.menu].addAction(action)
        self._view_menu = menus[VIEW]
        self._analysis_menu = menus[ANALYSIS]
        self._playback_menu = menus[PLAYBACK]

    def _make_toolbar(self) -> None:
        """The docks' toggles atop the View menu, and the toolbar."""
        toggles = [self.sources_dock.toggleViewAction(), self.jobs_dock.toggleViewAction()]
        listed = self._view_menu.actions()
        if listed:
            self._view_menu.insertActions(listed[0], toggles)
        else:
            self._view_menu.addActions(toggles)
        tb = QToolBar("Main", self)
        tb.setObjectName("mainToolBar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.setMovable(False)
        for name in TOOLBAR:
            tb.addSeparator() if name is None else tb.addAction(getattr(self, name))
        self.addToolBar(tb)
        self.toolbar = tb

    def _make_status_bar(self) -> None:
        sb = self.statusBar()
        self.summary_label = QLabel(self)
        self.summary_label.setObjectName("summaryLabel")
        self.modified_label = QLabel(self)
        self.modified_label.setObjectName("modifiedLabel")
        # unknown keys outside requests change nothing, but are said (as `check` says them)
        self.warnings_label = QLabel(self)
        self.warnings_label.setObjectName("warningsLabel")
        sb.addPermanentWidget(self.warnings_label)
        self.playback_label = QLabel(self)
        self.playback_label.setObjectName("playbackLabel")
        sb.addPermanentWidget(self.playback_label)
        sb.addPermanentWidget(self.modified_label)
        sb.addPermanentWidget(self.summary_label)
        # rows and jobs side by side, each saying what it counts: one job computes many rows
        self.summary_label.setToolTip("Descriptor rows of the whole project, by state")
        self.jobs_label = QLabel(self.jobs.summary.text(), self)
        self.jobs_label.setObjectName("jobsLabel")
        self.jobs_label.setContentsMargins(12, 0, 4, 0)  # apart from the rows' counts
        self.jobs_label.setToolTip(
            "Analysis jobs, running and queued (one job may compute several rows)"
        )
        sb.addPermanentWidget(self.jobs_label)
        self.jobs.summaryChanged.connect(self.jobs_label.setText)

    def _jobs_dock_height(self) -> int:
        """The job dock's default height: the panel's (six jobs) plus the dock's title."""
        title = self.jobs_dock.minimumSizeHint().height() - self.jobs.minimumSizeHint().height()
        return self.jobs.default_height() + max(title, 0)

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
            ISSUES - ACTIVE_JOB  # a row a job is on says nothing yet
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
        self._update_summary()
        self._update_actions()
        if self._pending_first_issue and c.has_diagnosis:
            self.show_first_issue()
        # the job panel and the lanes in the next turns: each is painted on its own, not all
        # in one block after this slot (qt/turns.py)
        self.turns.queue("jobs", self._on_jobs)
        self.turns.queue("plots", self._update_plots)

    @Slot(object)
    def _on_progress(self, event: JobUpdated) -> None:
        """A running job's progress: its cells in the table and its line in the job panel."""
        self.table.table_model.set_progress(event.job_id, event.progress, event.label)
        self.jobs.set_jobs(self.controller.jobs)

    @Slot()
    def _on_jobs(self) -> None:
        self.jobs.set_jobs(self.controller.jobs)

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
            for s in SEVERITY
            if summary.get(s)
        ]
        self.summary_label.setText("Rows: " + (" · ".join(parts) if parts else "none"))

    def _update_actions(self) -> None:
        """Every action with an enablement rule, enabled by its rule."""
        c = self.controller
        context = ActionContext(
            states=frozenset(s for s, n in c.summary.items() if n),
            selected=tuple(self.table.selected_rows()),
            current=self.table.current_row(),
            busy=c.busy,
            track_selected=self._selection is not None and self._selection[0] == "track",
            has_previous=self.has_previous(self.table.current_row()),
        )
        for spec in ACTIONS:
            if spec.enabled is not None:
                getattr(self, spec.name).setEnabled(spec.enabled(context))

    @Slot()
    def _on_project(self) -> None:
        project = self.controller.project
        self.setWindowTitle(window_title(project, self.controller.session.dirty))
        n = len(project.warnings)
        self.warnings_label.setText(f"⚠ {n} warning{'s' if n != 1 else ''}" if n else "")
        self.warnings_label.setToolTip("\n".join(f"warning: {w}" for w in project.warnings))
        self._plot_signature = None
        self._update_ruler_mode()

    @Slot()
    def _on_history(self) -> None:
        h = self.controller.session.history
        self.actionUndo.setEnabled(h.undo_text is not None)
        self.actionUndo.setText(f"&Undo {h.undo_text}" if h.undo_text else "&Undo")
        self.actionRedo.setEnabled(h.redo_text is not None)
        self.actionRedo.setText(f"&Redo {h.redo_text}" if h.redo_text else "&Redo")
        dirty = self.controller.session.dirty
        self.modified_label.setText("<b>Modified</b>" if dirty else "")
        self.setWindowTitle(window_title(self.controller.project, dirty))

    @Slot(str, int)
    def _on_message(self, text: str, timeout: int) -> None:
        self.statusBar().showMessage(text, timeout)

    # -- closing ----------------------------------------------------------------------------

    def save_window_state(self) -> None:
        if self.settings_store is None:
            return
        from dataclasses import replace

        s = replace(
            self.controller.settings,
            window_geometry=bytes(self.saveGeometry().data()),
            window_state=bytes(self.saveState().data()),
            table_splitter=bytes(self.table_splitter.saveState().data()),
            centre_splitter=bytes(self.centre_splitter.saveState().data()),
        )
        self.controller.settings = s
        self.settings_store.save(s)

    def restore_window_state(self, settings: AppSettings) -> None:
        if settings.window_geometry:
            self.restoreGeometry(QByteArray(settings.window_geometry))
        if settings.window_state:
            self.restoreState(QByteArray(settings.window_state))
        # once the docks restored above are laid out: a splitter restored before the layout
        # settles is squeezed again by its stretch factors
        QTimer.singleShot(0, self, lambda: self._restore_splitters(settings))

    def _restore_splitters(self, settings: AppSettings) -> None:
        if settings.table_splitter:
            self.table_splitter.restoreState(QByteArray(settings.table_splitter))
        if settings.centre_splitter:
            self.centre_splitter.restoreState(QByteArray(settings.centre_splitter))

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
        self.stop_audio_drop()  # (not before the question: Cancel keeps the drop going)
        self.turns.clear()  # no view update after the close (it would load plots again)
        self.save_window_state()
        self.player.close()
        self.controller.shutdown()
        event.accept()

    # -- files and folders dropped on the window (the source tree takes its own) ----------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        take_dropped_paths(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        take_dropped_paths(event)

    def dropEvent(self, event: QDropEvent) -> None:
        paths = take_dropped_paths(event)
        if paths:
            self._on_files_dropped(paths)
