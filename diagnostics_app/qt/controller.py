"""The controller: the Qt face of one :class:`~diagnostics_app.core.session.Session`.

Widgets call it for every action and redraw when it says the diagnosis changed; it holds no
rule of its own. What it adds to the session is only what Qt needs:

- **signals** instead of plain callbacks. Session and runner listeners may be called from
  worker threads, so they are bridged through signals with queued connections to ``@Slot``
  methods on this GUI-thread object;
- **re-derivation**, coalesced: any event (job progress, a finished pass, an edit, a file that
  changed on disk, another process writing the store) schedules one ``session.diagnose()``;
  every view then redraws from the one :class:`Diagnosis`, so tracks sharing a source can never
  disagree. The GUI thread commits nothing itself;
- **worker pools**: analysis passes and plot loads run as :class:`QRunnable` s
  (:mod:`diagnostics_app.qt.workers`);
- **live updates**: a :class:`QFileSystemWatcher` on the project file and the audio files, and a
  poll of the store's change counter (cheap) so jobs started by other processes appear too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QFileSystemWatcher, QObject, Qt, QThreadPool, QTimer, Signal, Slot

from diagnostics_app.core import edits
from diagnostics_app.core.diagnostics import Diagnosis, Row
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.history import History
from diagnostics_app.core.jobs import PRIORITY_AUTO, PRIORITY_BATCH, PRIORITY_USER, BatchResult
from diagnostics_app.core.planner import Selection
from diagnostics_app.core.project import Project, Request, load_project
from diagnostics_app.core.session import Session
from diagnostics_app.qt.settings import AppSettings
from diagnostics_app.qt.workers import AnalysisWorker, PlotLoadWorker, PlotRequest, PlotResult

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
    diagnosisChanged = Signal()  # self.diagnosis and self.jobs are new
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
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max(1, self.settings.workers))
        self.plot_pool = QThreadPool(self)
        self.plot_pool.setMaxThreadCount(2)
        self._workers: set[AnalysisWorker] = set()
        self._plot_workers: set[PlotLoadWorker] = set()
        self._plot_generation = 0
        self._closed = False
        self._last_counter: object = None
        self._project_stamp = _file_stamp(session.project.path) if session.project.path else None

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self.refresh)
        self._poll_timer = QTimer(self)
        self._poll_timer.setInterval(POLL_MS)
        self._poll_timer.timeout.connect(self._poll_store)
        self._files_timer = QTimer(self)
        self._files_timer.setSingleShot(True)
        self._files_timer.setInterval(150)  # editors write in several steps: wait for quiet
        self._files_timer.timeout.connect(self._check_files)

        self._watcher = QFileSystemWatcher(self)
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
        self.schedule_refresh()

    @Slot(str, str, float, str)
    def _on_runner_event(self, job_id: str, state: str, progress: float, label: str) -> None:
        self.schedule_refresh()

    # -- derivation -------------------------------------------------------------------------

    @property
    def project(self) -> Project:
        return self.session.project

    def schedule_refresh(self) -> None:
        if not self._closed and not self._refresh_timer.isActive():
            self._refresh_timer.start()

    @Slot()
    def refresh(self) -> None:
        """Re-derive the diagnosis and the active jobs; every view redraws from them."""
        if self._closed:
            return
        self._refresh_timer.stop()
        try:
            self.diagnosis = self.session.diagnose()
            self.jobs = list(self.session.store.jobs(active_only=True))
        except DiagnosticsError as exc:
            self.message.emit(f"Cannot read the feature store: {exc}", 0)
            return
        self._last_counter = self._store_counter()
        self._update_watches()
        self.diagnosisChanged.emit()
        if self.settings.auto_analyse:
            self._auto_analyse()

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
        jobs = self.session.plan(Selection(rows=keys), include_ok=include_ok)
        batches = self.session.enqueue(jobs, priority=priority, origin=origin)
        self._start_workers(len(batches))
        self.refresh()  # queued rows show at once
        return len(batches)

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
        """Load the stored arrays of ``rows`` (and the source's waveform) in the background.
        Only the latest request's result is delivered (``plotLoaded``); returns its generation."""
        self._plot_generation += 1
        gen = self._plot_generation
        try:
            path = self.project.audio_path(source_id)
        except DiagnosticsError:
            path = Path(source_id)
        with_data = tuple(r for r in rows if r.updated is not None)
        req = PlotRequest(gen, source_id, title, path, with_data, load_samples)
        worker = PlotLoadWorker(req, self._load_row, self._is_current_plot)
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
        self._update_watches()
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
        limiter = getattr(self.session.store, "set_size_limit", None)
        if callable(limiter):
            limiter(settings.cache_limit_mb * 1024 * 1024 if settings.cache_limit_mb else None)
        self.schedule_refresh()

    # -- live updates from disk -----------------------------------------------------------

    def watched_paths(self) -> list[str]:
        project = self.project
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

    def _update_watches(self) -> None:
        want = set(self.watched_paths())
        have = set(self._watcher.files()) | set(self._watcher.directories())
        gone = sorted(have - want)
        new = sorted(want - have)
        if gone:
            self._watcher.removePaths(gone)
        if new:
            self._watcher.addPaths(new)

    @Slot(str)
    def _on_file_event(self, path: str) -> None:
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
        return (
            not self._workers
            and not self._plot_workers
            and self.pool.activeThreadCount() == 0
            and self.plot_pool.activeThreadCount() == 0
            and not self._refresh_timer.isActive()
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
        ok = self.pool.waitForDone(timeout_ms) and self.plot_pool.waitForDone(timeout_ms)
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
