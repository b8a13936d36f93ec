"""The controller: the Qt face of one :class:`~diagnostics_app.core.session.Session`.

Widgets call it for every action and redraw when it says the diagnosis changed; it holds no
rule of its own. What it adds to the session is only what Qt needs:

- **signals** instead of plain callbacks. Session and runner listeners may be called from
  worker threads, so they are bridged through signals with queued connections to ``@Slot``
  methods on this GUI-thread object;
- **re-derivation**, coalesced and off the GUI thread: any event (job progress, a finished
  pass, an edit, a file that changed on disk, another process writing the store) requests one
  ``session.diagnose()``, which a :class:`~diagnostics_app.qt.workers.DiagnosisWorker` runs
  (at most one in flight; requests made meanwhile are coalesced into one follow-up run). The
  worker also derives the source tree's nodes, the state counts and the paths to watch; the
  GUI thread only applies the :class:`~diagnostics_app.qt.workers.DiagnosisSnapshot` to the
  models. Every view then redraws from the one :class:`Diagnosis`, so tracks sharing a source
  can never disagree. The GUI thread commits nothing itself;
- **generations**: every request has a number. A change made here (an edit, undo, prune,
  queued passes, a project reloaded from disk) makes every run already started *stale*: its
  snapshot is dropped, not shown, because it may predate the change. Progress of running
  passes does not: those snapshots are only older, never wrong, and showing them keeps the
  rows moving while a long derivation of a big project is always being superseded;
- **worker pools**: analysis passes and plot loads run as :class:`QRunnable` s
  (:mod:`diagnostics_app.qt.workers`);
- **live updates**: a :class:`QFileSystemWatcher` on the project file and the audio files, and a
  poll of the store's change counter (cheap) so jobs started by other processes appear too.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QFileSystemWatcher, QObject, Qt, QThreadPool, QTimer, Signal, Slot

from diagnostics_app.core import edits
from diagnostics_app.core.calculators.base import FeatureSpec
from diagnostics_app.core.diagnostics import Diagnosis, Row
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.history import History
from diagnostics_app.core.jobs import PRIORITY_AUTO, PRIORITY_BATCH, PRIORITY_USER, BatchResult
from diagnostics_app.core.planner import PlannedJob, Selection, plan
from diagnostics_app.core.project import Project, Request, load_project
from diagnostics_app.core.session import Session
from diagnostics_app.qt.models.sources import Tree, build_tree
from diagnostics_app.qt.settings import AppSettings
from diagnostics_app.qt.workers import (
    AnalysisWorker,
    DiagnosisSnapshot,
    DiagnosisWorker,
    PlotLoadWorker,
    PlotRequest,
    PlotResult,
    PyramidCache,
)

GUI_ORIGIN = "gui"
AUTO_ORIGIN = "auto"
REFRESH_DELAY_MS = 40  # coalesces bursts of progress events into one re-derivation
POLL_MS = 400  # how often the store's change counter is read (other processes' jobs)
# what a track made from a dropped audio file asks for, until the user edits its requests
DEFAULT_TRACK_REQUESTS: tuple[Request, ...] = (
    Request("peaks"),
    Request("rms"),
    Request("spectrogram"),
)


def _file_stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class Controller(QObject):
    diagnosisChanged = Signal()  # self.diagnosis, self.jobs, self.tree and self.summary are new
    projectChanged = Signal()  # sources, tracks, name, tempo map or profiles may differ
    historyChanged = Signal()  # undo/redo texts or the dirty flag changed
    message = Signal(str, int)  # a status-bar message and its timeout (ms, 0 = sticky)
    plotLoaded = Signal(object)  # PlotResult of the latest request
    jobFinished = Signal(object)  # BatchResult of one of this process's passes
    jobFailed = Signal(str, str)  # job id, message

    # Bridged from worker threads. No ``None`` ever travels through an ``object`` argument:
    # PySide6 on Python 3.11 can drop a reference to None per delivery (a crash at exit), so
    # a missing progress is sent as -1.0.
    _runnerEvent = Signal(str, str, float, str)
    _sessionEvent = Signal(str)

    def __init__(
        self, session: Session, settings: AppSettings | None = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.settings = settings or AppSettings()
        self.diagnosis = Diagnosis(())
        self.jobs: list[Any] = []  # active JobRecords from the store, whoever runs them
        self.tree: Tree = []  # the source tree's nodes, derived with the diagnosis
        self.summary: dict[str, int] = {}  # rows per state of the diagnosis
        self.diagnosis_seconds = 0.0  # how long the last applied derivation took
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max(1, self.settings.workers))
        self.plot_pool = QThreadPool(self)
        self.plot_pool.setMaxThreadCount(2)
        self.diagnosis_pool = QThreadPool(self)  # one thread: derivations are serialised
        self.diagnosis_pool.setMaxThreadCount(1)
        self._workers: set[AnalysisWorker] = set()
        self._plot_workers: set[PlotLoadWorker] = set()
        self._plot_generation = 0
        self._pyramids = PyramidCache()  # waveform pyramids, shared by the plot loaders
        self._diagnosis_worker: DiagnosisWorker | None = None
        self._diag_requested = 0  # generation of the latest request
        self._diag_started = 0  # generation of the latest run started
        self._diag_finished = 0  # generation of the latest run that came back (shown or not)
        self._diag_applied = 0  # generation of the snapshot shown (0: none yet)
        self._diag_required = 0  # snapshots of older generations are stale: dropped
        self._refresh_required = False  # the scheduled refresh follows a change made here
        self._closed = False
        self._last_counter: object = None
        self._project_stamp = _file_stamp(session.project.path) if session.project.path else None

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self._on_refresh_timer)
        self._poll_timer = QTimer(self)
        self._poll_timer.setInterval(POLL_MS)
        self._poll_timer.timeout.connect(self._poll_store)
        self._files_timer = QTimer(self)
        self._files_timer.setSingleShot(True)
        self._files_timer.setInterval(150)  # editors write in several steps: wait for quiet
        self._files_timer.timeout.connect(self._check_files)

        self._watcher = QFileSystemWatcher(self)
        self._want_watched: set[str] = set()
        # (project, its watched paths): recomputed for a new project or after a file event
        self._watched_cache: tuple[Project, tuple[str, ...]] | None = None
        self._watcher.fileChanged.connect(self._on_file_event)
        self._watcher.directoryChanged.connect(self._on_file_event)

        # AutoConnection: direct when the session is driven from the GUI thread (edits, undo),
        # queued when a worker thread reports (runner progress): slots always run here.
        self._runnerEvent.connect(self._on_runner_event, Qt.ConnectionType.AutoConnection)
        self._sessionEvent.connect(self._on_session_event, Qt.ConnectionType.AutoConnection)
        session.listeners.append(self._session_listener)
        session.runner.listeners.append(self._runner_listener)
        self.apply_settings(self.settings)
        self.refresh()
        self._poll_timer.start()

    # -- listeners (any thread) → signals -------------------------------------------------

    def _session_listener(self, kind: str) -> None:
        self._sessionEvent.emit(kind)

    def _runner_listener(self, job_id: str, state: str, progress: float | None, label: str) -> None:
        self._runnerEvent.emit(job_id, state, -1.0 if progress is None else float(progress), label)

    @Slot(str)
    def _on_session_event(self, kind: str) -> None:
        if kind == "project":
            self.projectChanged.emit()
        self.historyChanged.emit()
        self._invalidate()
        self.schedule_refresh(required=True)

    @Slot(str, str, float, str)
    def _on_runner_event(self, job_id: str, state: str, progress: float, label: str) -> None:
        self.schedule_refresh()

    # -- derivation -------------------------------------------------------------------------

    @property
    def project(self) -> Project:
        return self.session.project

    def schedule_refresh(self, required: bool = False) -> None:
        """Request a re-derivation after :data:`REFRESH_DELAY_MS` (bursts coalesce into one);
        ``required``: it follows a change made here, so runs already started are stale."""
        if self._closed:
            return
        if required:
            self._refresh_required = True
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    @Slot()
    def _on_refresh_timer(self) -> None:
        self.request_diagnosis(required=self._refresh_required)

    @Slot()
    def refresh(self) -> None:
        """Re-derive the diagnosis and the active jobs now (in the diagnosis worker): every
        view redraws from them when the snapshot arrives (``diagnosisChanged``). Called after
        every change made here, so runs already started are stale."""
        self.request_diagnosis(required=True)

    def request_diagnosis(self, required: bool = False) -> int:
        """Ask for a re-derivation; returns its generation. At most one run is in flight:
        a request made meanwhile is served by one follow-up run when it returns."""
        if self._closed:
            return self._diag_requested
        self._refresh_timer.stop()
        required = required or self._refresh_required
        self._refresh_required = False
        self._diag_requested += 1
        if required:
            self._diag_required = self._diag_requested
        self._start_diagnosis()
        return self._diag_requested

    def _invalidate(self) -> None:
        """Something changed here: no run started before now may be shown."""
        self._diag_required = self._diag_requested + 1

    def _start_diagnosis(self) -> None:
        if (
            self._closed
            or self._diagnosis_worker is not None
            or self._diag_started >= self._diag_requested
        ):
            return
        generation = self._diag_started = self._diag_requested
        worker = DiagnosisWorker(generation, self._derive)
        worker.signals.ready.connect(self._on_diagnosis_ready, Qt.ConnectionType.QueuedConnection)
        worker.signals.failed.connect(self._on_diagnosis_failed, Qt.ConnectionType.QueuedConnection)
        worker.signals.done.connect(self._on_diagnosis_done, Qt.ConnectionType.QueuedConnection)
        self._diagnosis_worker = worker
        self.diagnosis_pool.start(worker)

    def _derive(self, generation: int) -> DiagnosisSnapshot:
        """Worker thread: the diagnosis and everything the views derive from it."""
        start = time.perf_counter()
        session = self.session
        project = session.project
        counter = self._store_counter()  # before: a write while deriving is seen by the poll
        diagnosis = session.diagnose()
        jobs = tuple(session.store.jobs(active_only=True))
        tree = build_tree(project, diagnosis, session.source_info, session.source_status)
        summary = diagnosis.summary()
        watched = self._watched_cache
        if watched is None or watched[0] is not project:  # stats every audio file: not each time
            watched = (project, tuple(self.watched_paths(project)))
            self._watched_cache = watched
        return DiagnosisSnapshot(
            generation,
            project,
            diagnosis,
            jobs,
            counter,
            tree,
            summary,
            watched[1],
            time.perf_counter() - start,
        )

    @Slot(object)
    def _on_diagnosis_ready(self, snap: DiagnosisSnapshot) -> None:
        self._diag_finished = max(self._diag_finished, snap.generation)
        if (
            self._closed
            or snap.generation < self._diag_required  # started before a change made here
            or snap.generation <= self._diag_applied
            or snap.project is not self.session.project
        ):
            return
        self._diag_applied = snap.generation
        self.diagnosis = snap.diagnosis
        self.jobs = list(snap.jobs)
        self.tree = snap.tree
        self.summary = snap.summary
        self.diagnosis_seconds = snap.seconds
        self._last_counter = snap.counter
        self._update_watches(snap.watched)
        self.diagnosisChanged.emit()
        if self.settings.auto_analyse:
            self._auto_analyse()

    @Slot(int, str)
    def _on_diagnosis_failed(self, generation: int, message: str) -> None:
        self._diag_finished = max(self._diag_finished, generation)
        if not self._closed:
            self.message.emit(f"Cannot read the feature store: {message}", 0)

    @Slot(object)
    def _on_diagnosis_done(self, worker: DiagnosisWorker) -> None:
        if worker is self._diagnosis_worker:
            self._diagnosis_worker = None
        if self._diag_started >= self._diag_requested:
            return
        # the requests made while it ran, coalesced into one run: at once after a change made
        # here; after progress, only once the coalescing delay has passed, so the GUI thread
        # applies and paints this snapshot without the next derivation competing for the GIL
        if self._diag_required > self._diag_started:
            self._start_diagnosis()
        else:
            self.schedule_refresh()

    @property
    def has_diagnosis(self) -> bool:
        """A snapshot has been shown (before the first one, the views are empty)."""
        return self._diag_applied > 0

    @property
    def diagnosis_current(self) -> bool:
        """The diagnosis shown reflects every change made here (passes may have progressed
        since)."""
        return self._diag_applied > 0 and self._diag_applied >= self._diag_required

    @property
    def diagnosis_pending(self) -> bool:
        """A re-derivation is scheduled, running, or its request not yet served."""
        return (
            self._refresh_timer.isActive()
            or self._diagnosis_worker is not None
            or self._diag_finished < self._diag_requested
        )

    def _store_counter(self) -> object:
        """The store's cheap change counter (entries and jobs, any process)."""
        try:
            return self.session.store.version()
        except DiagnosticsError:
            return None

    @Slot()
    def _poll_store(self) -> None:
        counter = self._store_counter()
        if counter is None or counter != self._last_counter:
            self.schedule_refresh()

    def rows_for_source(self, source_id: str) -> list[Row]:
        return self.diagnosis.for_source(source_id)

    def rows_for_track(self, track_id: str) -> list[Row]:
        return self.diagnosis.for_track(track_id)

    def row(self, key: Any) -> Row | None:
        for r in self.diagnosis.rows:
            if r.key == key:
                return r
        return None

    # -- analysis -----------------------------------------------------------------------------

    def _enqueue(
        self, rows: Iterable[Row], priority: int, origin: str, include_ok: bool = False
    ) -> int:
        keys = tuple(r.key for r in rows)
        if not keys:
            return 0
        jobs = self._plan(Selection(rows=keys), include_ok)
        batches = self.session.enqueue(jobs, priority=priority, origin=origin)
        self._start_workers(len(batches))
        self.refresh()  # queued rows show at once
        return len(batches)

    def _plan(self, selection: Selection, include_ok: bool) -> list[PlannedJob]:
        """Jobs for the selected rows: planned from the diagnosis shown when it reflects every
        change made here (what the user sees is what gets computed; the runner never queues
        a pass twice), else from a fresh derivation on this thread (right after an edit)."""
        if self.diagnosis_current:
            return plan(self.diagnosis, selection, include_ok=include_ok)
        return self.session.plan(selection, include_ok=include_ok)

    def _start_workers(self, count: int) -> None:
        for _ in range(count):
            worker = AnalysisWorker(self.session.runner)
            worker.signals.finished.connect(
                self._on_worker_finished, Qt.ConnectionType.QueuedConnection
            )
            worker.signals.failed.connect(
                self._on_worker_failed, Qt.ConnectionType.QueuedConnection
            )
            worker.signals.cancelled.connect(
                self._on_worker_cancelled, Qt.ConnectionType.QueuedConnection
            )
            worker.signals.done.connect(self._on_worker_done, Qt.ConnectionType.QueuedConnection)
            self._workers.add(worker)
            self.pool.start(worker)

    def regenerate(self, rows: Sequence[Row]) -> int:
        """Recompute the given rows (even ok ones), first in the queue."""
        n = self._enqueue(
            [r for r in rows if r.state in ("ok", "missing", "stale", "failed")],
            PRIORITY_USER,
            GUI_ORIGIN,
            include_ok=True,
        )
        self.message.emit(
            f"Queued {n} pass{'es' if n != 1 else ''}"
            if n
            else "Nothing to regenerate in the selection",
            4000,
        )
        return n

    def regenerate_stale(self) -> int:
        n = self._enqueue(
            [r for r in self.diagnosis.rows if r.state in ("stale", "failed")],
            PRIORITY_BATCH,
            GUI_ORIGIN,
        )
        self.message.emit(
            f"Regenerating stale rows: {n} pass{'es' if n != 1 else ''} queued"
            if n
            else "No stale rows",
            4000,
        )
        return n

    def calculate_missing(self) -> int:
        n = self._enqueue(
            [r for r in self.diagnosis.rows if r.state == "missing"], PRIORITY_BATCH, GUI_ORIGIN
        )
        self.message.emit(
            f"Calculating missing rows: {n} pass{'es' if n != 1 else ''} queued"
            if n
            else "No missing rows",
            4000,
        )
        return n

    def _auto_analyse(self) -> None:
        missing = [r for r in self.diagnosis.rows if r.state == "missing"]
        if missing:
            self._enqueue(missing, PRIORITY_AUTO, AUTO_ORIGIN)

    def cancel(self, job_id: str) -> bool:
        ok = self.session.runner.cancel(job_id)
        if not ok:
            canceller = getattr(self.session.store, "request_cancel", None)
            if callable(canceller):
                ok = bool(canceller(job_id))
        self.schedule_refresh()
        return ok

    def cancel_all(self) -> int:
        n = self.session.runner.cancel_all()
        self.message.emit(
            f"Cancelled {n} job{'s' if n != 1 else ''}" if n else "No job of this window to cancel",
            4000,
        )
        self.schedule_refresh()
        return n

    def can_cancel(self, job: Any) -> bool:
        return int(getattr(job, "owner_pid", -1)) == os.getpid() or callable(
            getattr(self.session.store, "request_cancel", None)
        )

    @property
    def busy(self) -> bool:
        return bool(self._workers) or self.session.runner.pending() > 0

    @Slot(object)
    def _on_worker_finished(self, result: BatchResult) -> None:
        b = result.batch
        self.message.emit(
            f"Finished {b.source}: {', '.join(b.features)} ({result.seconds:.1f} s)", 5000
        )
        self.jobFinished.emit(result)
        self.enforce_cache_limit()
        self.schedule_refresh()

    @Slot(str, str)
    def _on_worker_failed(self, job_id: str, message: str) -> None:
        self.message.emit(f"Analysis failed: {message}", 0)
        self.jobFailed.emit(job_id, message)
        self.schedule_refresh()

    @Slot(str)
    def _on_worker_cancelled(self, job_id: str) -> None:
        self.message.emit("Job cancelled", 4000)
        self.schedule_refresh()

    @Slot(object)
    def _on_worker_done(self, worker: AnalysisWorker) -> None:
        self._workers.discard(worker)
        self.schedule_refresh()

    # -- plots --------------------------------------------------------------------------------

    def request_plot(
        self, source_id: str, title: str, rows: Sequence[Row], load_samples: bool
    ) -> int:
        """Load the stored arrays of ``rows`` (and the source's waveform) in the background;
        rows without data become empty lanes. Only the latest request's result is delivered
        (``plotLoaded``); returns its generation."""
        self._plot_generation += 1
        gen = self._plot_generation
        try:
            path = self.project.audio_path(source_id)
        except DiagnosticsError:
            path = Path(source_id)
        req = PlotRequest(gen, source_id, title, path, tuple(rows), load_samples)
        worker = PlotLoadWorker(
            req, self._load_row, self._is_current_plot, self._feature_spec, self._pyramids
        )
        worker.signals.loaded.connect(self._on_plot_loaded, Qt.ConnectionType.QueuedConnection)
        worker.signals.failed.connect(self._on_plot_failed, Qt.ConnectionType.QueuedConnection)
        worker.signals.done.connect(self._on_plot_done, Qt.ConnectionType.QueuedConnection)
        self._plot_workers.add(worker)
        self.plot_pool.start(worker)
        return gen

    def _is_current_plot(self, generation: int) -> bool:
        return generation == self._plot_generation and not self._closed

    def _load_row(self, row: Row) -> tuple[np.ndarray, np.ndarray, Any] | None:
        """Worker thread: one row's stored array."""
        store = self.session.store
        entry = store.get(row.key.entry_key)
        if entry is None or row.key.feature not in entry.features:
            return None
        loaded = store.load(entry, row.key.feature)
        return np.asarray(loaded.data), np.asarray(loaded.times), loaded.meta

    def _feature_spec(self, row: Row) -> FeatureSpec | None:
        """Any thread: how the row's calculator describes its feature (None: unknown)."""
        try:
            calc = self.session.registry.get(row.key.calculator)
        except DiagnosticsError:
            return None
        return next((f for f in calc.features if f.name == row.key.feature), None)

    @Slot(object)
    def _on_plot_loaded(self, result: PlotResult) -> None:
        if self._is_current_plot(result.generation):
            self.plotLoaded.emit(result)

    @Slot(int, str)
    def _on_plot_failed(self, generation: int, message: str) -> None:
        if self._is_current_plot(generation):
            self.message.emit(f"Cannot load plot data: {message}", 0)

    @Slot(object)
    def _on_plot_done(self, worker: PlotLoadWorker) -> None:
        self._plot_workers.discard(worker)

    @property
    def plot_generation(self) -> int:
        return self._plot_generation

    # -- edits, history, files ------------------------------------------------------------

    def edit(self, text: str, change: Callable[[Project], Project]) -> str | None:
        """One undoable project edit; returns None, or the one-line reason it was rejected
        (also shown in the status bar)."""
        try:
            self.session.edit(text, change)
        except DiagnosticsError as exc:
            self.message.emit(f"{text}: {exc}", 0)
            return str(exc)
        self.message.emit(text, 3000)
        self.refresh()
        return None

    def add_audio(self, paths: Sequence[str]) -> list[str]:
        """A source and a track (with default requests) per audio file, as one undoable edit."""
        folder = self.project.folder
        added: list[str] = []

        def change(p: Project) -> Project:
            added.clear()
            for raw in paths:
                path = Path(raw).resolve()
                try:
                    rel = path.relative_to(folder.resolve()).as_posix()
                except ValueError:
                    rel = str(path)
                p = edits.add_source(p, rel)
                sid = p.sources[-1].id
                p = edits.add_track(p, sid, path.stem, DEFAULT_TRACK_REQUESTS)
                added.append(sid)
            return p

        n = len(paths)
        self.edit(
            f"Add {n} audio file{'s' if n != 1 else ''}"
            if n != 1
            else f"Add {Path(paths[0]).name}",
            change,
        )
        return list(added)

    def prune(self, rows: Sequence[Row]) -> int:
        extraneous = [r for r in rows if r.state == "extraneous"]
        try:
            cmd = self.session.prune(extraneous)
        except DiagnosticsError as exc:
            self.message.emit(f"Prune failed: {exc}", 0)
            return 0
        n = len(cmd.items) if cmd is not None else 0
        self.message.emit(
            f"Pruned {n} extraneous entr{'y' if n == 1 else 'ies'} (undo restores them)", 5000
        )
        self.refresh()
        return n

    def undo(self) -> str | None:
        try:
            text = self.session.undo()
        except DiagnosticsError as exc:
            self.message.emit(f"Undo failed: {exc}", 0)
            return None
        if text:
            self.message.emit(f"Undone: {text}", 3000)
        self.historyChanged.emit()
        self.refresh()
        return text

    def redo(self) -> str | None:
        try:
            text = self.session.redo()
        except DiagnosticsError as exc:
            self.message.emit(f"Redo failed: {exc}", 0)
            return None
        if text:
            self.message.emit(f"Redone: {text}", 3000)
        self.historyChanged.emit()
        self.refresh()
        return text

    def save(self, path: str | os.PathLike[str] | None = None) -> bool:
        try:
            saved = self.session.save(path)
        except DiagnosticsError as exc:
            self.message.emit(f"Save failed: {exc}", 0)
            return False
        self._project_stamp = _file_stamp(saved)
        self.message.emit(f"Saved {saved}", 3000)
        self.historyChanged.emit()
        self.projectChanged.emit()
        self.schedule_refresh()  # the project value (its path) is new: watches follow
        return True

    def export(self, row: Row, fmt: str, path: Path) -> Path | None:
        from diagnostics_app.core.export import export_row

        try:
            out = export_row(self.session, row, fmt, path)
        except DiagnosticsError as exc:
            self.message.emit(f"Export failed: {exc}", 0)
            return None
        self.message.emit(f"Exported {row.key.source}/{row.key.feature} to {out}", 5000)
        return out

    @staticmethod
    def rows_json(rows: Sequence[Row]) -> str:
        return json.dumps([r.to_json() for r in rows], indent=2, ensure_ascii=False, default=str)

    def apply_settings(self, settings: AppSettings) -> None:
        self.settings = settings
        self.pool.setMaxThreadCount(max(1, settings.workers))
        self.enforce_cache_limit()
        self.schedule_refresh()

    def enforce_cache_limit(self) -> None:
        """Keep the store within the settings' size limit (0 = none); the rule is the core's."""
        if not self.settings.cache_limit_mb:
            return
        try:
            freed = self.session.enforce_cache_limit(self.settings.cache_limit_mb * 1024 * 1024)
        except DiagnosticsError as exc:
            self.message.emit(f"Cache limit: {exc}", 8000)
            return
        if freed:
            self.message.emit(f"Cache limit: freed {freed / 1e6:.1f} MB", 5000)

    # -- live updates from disk -----------------------------------------------------------

    def watched_paths(self, project: Project | None = None) -> list[str]:
        """The project file, the audio files and their folders (any thread: it only stats)."""
        project = project or self.project
        paths: set[str] = set()
        if project.path is not None:
            paths.add(str(project.path))
            paths.add(str(project.path.parent))
        for src in project.sources:
            p = project.audio_path(src)
            if p.exists():
                paths.add(str(p))
            if p.parent.exists():
                paths.add(str(p.parent))
        return sorted(paths)

    def _update_watches(self, want_paths: Iterable[str] | None = None) -> None:
        """Watch ``want_paths`` (by default the last derivation's): only the difference with
        what the watcher holds is added or removed."""
        if want_paths is not None:
            self._want_watched = set(want_paths)
        want = self._want_watched
        have = set(self._watcher.files()) | set(self._watcher.directories())
        gone = sorted(have - want)
        new = sorted(want - have)
        if gone:
            self._watcher.removePaths(gone)
        if new:
            self._watcher.addPaths(new)

    @Slot(str)
    def _on_file_event(self, path: str) -> None:
        self._watched_cache = None  # a file came or went: the next derivation looks again
        if not self._closed:
            self._files_timer.start()

    @Slot()
    def _check_files(self) -> None:
        project = self.project
        if project.path is not None:
            stamp = _file_stamp(project.path)
            if stamp is not None and stamp != self._project_stamp:
                self._project_stamp = stamp
                self._reload_project(project.path)
        self._update_watches()  # an atomic replace drops the watch on the old inode
        self.schedule_refresh()  # source stamps are re-read by diagnose(): changed audio → stale

    def _reload_project(self, path: Path) -> None:
        if self.session.dirty:
            self.message.emit(
                "The project file changed on disk; you have unsaved changes, so it was not reloaded",
                0,
            )
            return
        try:
            fresh = load_project(path)
        except DiagnosticsError as exc:
            self.message.emit(f"The project file changed on disk but cannot be read: {exc}", 0)
            return
        if fresh == self.project:
            return
        self.session.replace_project(replace(fresh, path=self.project.path))
        self.session.dirty = False
        self.session.history = History()  # the old steps describe a document that is gone
        self.message.emit("Reloaded the project: it was changed by another program", 5000)
        self.historyChanged.emit()

    # -- teardown ---------------------------------------------------------------------------

    def is_idle(self) -> bool:
        """No pass, plot load or re-derivation is running, scheduled or waiting to be shown."""
        return (
            not self._workers
            and not self._plot_workers
            and self.pool.activeThreadCount() == 0
            and self.plot_pool.activeThreadCount() == 0
            and self.diagnosis_pool.activeThreadCount() == 0
            and not self.diagnosis_pending
        )

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel this process's jobs, wait for the workers, close the store."""
        if self._closed:
            return True
        self._closed = True
        for timer in (self._refresh_timer, self._poll_timer, self._files_timer):
            timer.stop()
        self._plot_generation += 1  # loads in flight stop at their next check
        self.session.runner.cancel_all()
        ok = (
            self.pool.waitForDone(timeout_ms)
            and self.plot_pool.waitForDone(timeout_ms)
            and self.diagnosis_pool.waitForDone(timeout_ms)
        )
        if self._listener_installed():
            self.session.runner.listeners.remove(self._runner_listener)
            self.session.listeners.remove(self._session_listener)
        watched = self._watcher.files() + self._watcher.directories()
        if watched:
            self._watcher.removePaths(watched)
        self.session.close()
        return ok

    def _listener_installed(self) -> bool:
        return self._runner_listener in self.session.runner.listeners
