"""The controller: the Qt face of one :class:`~diagnostics_app.core.session.Session`.

Widgets call it for every action and redraw when it says the diagnosis changed; it holds no
rule of its own. What it adds to the session is only what Qt needs:

- **typed events on the GUI thread**: the core publishes what changed (``core/events.py``);
  the :class:`~diagnostics_app.qt.events_bridge.EventsBridge` re-emits each event as a Qt
  signal, so the handlers here run on the GUI thread whatever thread made the change;
- **re-derivation, only for a change of inputs or entries**, coalesced and off the GUI
  thread: an edit, undo, a reload, committed entries, a job changing state, a file changed on
  disk, or another process's entries each request one ``session.diagnose()`` (its memo
  re-evaluates only the affected rows); the
  :class:`~diagnostics_app.qt.diagnosis_scheduler.DiagnosisScheduler` decides when it runs
  and drops snapshots made stale by a change made here (generations). A running job's
  *progress* re-derives nothing: it is forwarded as :attr:`Controller.progressChanged` to the
  cells it concerns. The worker also derives the source tree's nodes, the state counts and
  the paths to watch (:func:`derive_snapshot`); the GUI thread only applies the
  :class:`~diagnostics_app.qt.workers.DiagnosisSnapshot` to the models. Every view then
  redraws from the one :class:`Diagnosis`, so tracks sharing a source can never disagree.
  The GUI thread reads and commits nothing in the store while passes run;
- **worker pools**: analysis passes run as :class:`QRunnable` s
  (:mod:`diagnostics_app.qt.workers`) in the
  :class:`~diagnostics_app.qt.analysis_queue.AnalysisQueue`, plot loads in the
  :class:`~diagnostics_app.qt.plot_loader.PlotLoader`;
- **live updates**: the :class:`~diagnostics_app.qt.file_watcher.FileWatcher` on the project
  file and the audio files, and the core's :class:`~diagnostics_app.core.events.StoreWatcher`
  (one counter read per interval, on its own thread) so jobs of other processes appear too.

The controller stays the one facade the window talks to: the pieces above are its parts, and
their signals are forwarded or turned into re-derivation requests here.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from diagnostics_app.core import edits, library
from diagnostics_app.core.diagnostics import Diagnosis, Row
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.events import (
    EntriesCommitted,
    JobUpdated,
    ProjectReplaced,
    StoreChanged,
    StoreWatcher,
)
from diagnostics_app.core.jobs import BatchResult
from diagnostics_app.core.partial_work import is_note
from diagnostics_app.core.project import Project
from diagnostics_app.core.session import Session
from diagnostics_app.core.states import ACTIVE_JOB, extraneous
from diagnostics_app.qt.analysis_queue import AnalysisQueue
from diagnostics_app.qt.diagnosis_scheduler import DiagnosisScheduler
from diagnostics_app.qt.events_bridge import EventsBridge
from diagnostics_app.qt.file_watcher import FileWatcher, watched_paths
from diagnostics_app.qt.models.sources import Tree, build_tree
from diagnostics_app.qt.plot_loader import PlotLoader
from diagnostics_app.qt.settings import AppSettings
from diagnostics_app.qt.workers import DiagnosisSnapshot

STORE_WATCH_S = 0.4  # how often the store's change counter is read (other processes' work)


def derive_snapshot(session: Session, files: FileWatcher, generation: int) -> DiagnosisSnapshot:
    """Worker thread: the diagnosis and everything the views derive from it."""
    start = time.perf_counter()
    project = session.project
    diagnosis = session.diagnose()
    jobs = tuple(session.store.jobs(active_only=True))
    tree = build_tree(project, diagnosis, session.source_info, session.source_status)
    summary = diagnosis.summary()
    return DiagnosisSnapshot(
        generation,
        project,
        diagnosis,
        jobs,
        tree,
        summary,
        files.paths_for(project),
        time.perf_counter() - start,
    )


def _is_open(session: Session, snap: DiagnosisSnapshot) -> bool:
    """A snapshot of the project still open (not one replaced while it was derived)."""
    return snap.project is session.project


PARTIAL_NOTE_MS = 8000  # how long the status bar says what a partial regeneration took


class Controller(QObject):
    diagnosisChanged = Signal()  # self.diagnosis, self.jobs, self.tree and self.summary are new
    projectChanged = Signal()  # sources, tracks, name, tempo map or profiles may differ
    historyChanged = Signal()  # undo/redo texts or the dirty flag changed
    message = Signal(str, int)  # a status-bar message and its timeout (ms, 0 = sticky)
    plotLoaded = Signal(object)  # PlotResult of the latest request
    jobFinished = Signal(object)  # BatchResult of one of this process's passes
    jobFailed = Signal(str, str)  # job id, message
    progressChanged = Signal(object)  # JobUpdated: a running job's progress, nothing else
    jobsChanged = Signal()  # self.jobs changed between two diagnoses (the watcher read them)
    saveConflict = Signal()  # the project file changed on disk while there are unsaved edits

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
        self._closed = False
        self._job_states: dict[str, str] = {}  # last known state of each job (any process)

        self._analysis = AnalysisQueue(session, self, after_pass=self._after_pass)
        self._analysis.queued.connect(self.refresh)
        self._analysis.ended.connect(self.schedule_refresh)
        self._analysis.finished.connect(self._on_pass_finished)
        self._analysis.failed.connect(self.jobFailed)
        self._analysis.message.connect(self.message)
        self.pool = self._analysis.pool  # its thread count follows the settings

        self._files = FileWatcher(session, self)
        self._files.message.connect(self.message)
        self._files.changed.connect(self.schedule_refresh)
        self._files.conflict.connect(self.saveConflict)
        # the parts get functions of the session and of each other, never of the controller:
        # no reference cycle keeps the controller (and its pools) alive after the window
        self._scheduler = DiagnosisScheduler(
            partial(derive_snapshot, session, self._files),
            partial(_is_open, session),
            self,
        )
        self._scheduler.snapshotReady.connect(self._apply_snapshot)
        self._scheduler.message.connect(self.message)
        self.diagnosis_pool = self._scheduler.pool
        self._plots = PlotLoader(session, self)
        self._plots.loaded.connect(self.plotLoaded)
        self._plots.message.connect(self.message)
        self.plot_pool = self._plots.pool

        self._bridge = EventsBridge(session.events, self)
        self._bridge.projectReplaced.connect(self._on_project_replaced)
        self._bridge.historyChanged.connect(self.historyChanged)
        self._bridge.entriesCommitted.connect(self._on_entries_committed)
        self._bridge.jobUpdated.connect(self._on_job_updated)
        self._bridge.storeChanged.connect(self._on_store_changed)
        self._watcher = StoreWatcher(
            session.store, session.events, STORE_WATCH_S, on_error=self._store_error
        )
        self.apply_settings(self.settings)
        self.refresh()
        self._watcher.start()

    # -- events (the bridge delivers them on the GUI thread) ------------------------------

    @Slot(object)
    def _on_project_replaced(self, event: ProjectReplaced) -> None:
        self.projectChanged.emit()
        self._scheduler.invalidate()
        self.schedule_refresh(required=True)

    @Slot(object)
    def _on_entries_committed(self, event: EntriesCommitted) -> None:
        # a prune or an undone prune is a change made here: older snapshots must not show
        self.schedule_refresh(required=event.cause != "job")

    @Slot(object)
    def _on_job_updated(self, event: JobUpdated) -> None:
        """A state change of a job changes its rows' states: re-derive (only those rows are
        re-evaluated). Progress alone goes to the cells showing it, and nowhere else."""
        before = self._job_states.get(event.job_id)
        if event.state in ACTIVE_JOB:
            self._job_states[event.job_id] = event.state
        else:
            self._job_states.pop(event.job_id, None)
        if before == event.state == "running":
            self.jobs = [_with_progress(j, event) for j in self.jobs]
            self.progressChanged.emit(event)
        else:
            self.schedule_refresh()
        if event.state == "done" and event.message and is_note(event.message):
            # "a: partial: 0:04.008 of 60:00.000 recomputed" (core.partial_work)
            source = event.keys[0].source_id if event.keys else ""
            self.message.emit(f"{source}: {event.message}", PARTIAL_NOTE_MS)

    @Slot(object)
    def _on_store_changed(self, event: StoreChanged) -> None:
        if event.active_jobs is not None:
            self.jobs = list(event.active_jobs)
            self.jobsChanged.emit()
        if event.entries_changed:  # entries of another process (ours came as events already)
            self.schedule_refresh()

    def _store_error(self, message: str) -> None:  # the watcher's thread: a queued signal
        self.message.emit(f"Cannot read the feature store: {message}", 0)

    def _after_pass(self, result: BatchResult) -> None:
        """A worker thread, right after a pass committed: keep the store within its limit
        there, so the GUI thread never runs the eviction's derivation."""
        self.enforce_cache_limit()

    # -- derivation -------------------------------------------------------------------------

    @property
    def project(self) -> Project:
        return self.session.project

    def schedule_refresh(self, required: bool = False) -> None:
        """Request a re-derivation after a short delay (bursts coalesce into one);
        ``required``: it follows a change made here, so runs already started are stale."""
        self._scheduler.schedule(required)

    @Slot()
    def refresh(self) -> None:
        """Re-derive the diagnosis and the active jobs now (in the diagnosis worker): every
        view redraws from them when the snapshot arrives (``diagnosisChanged``). Called after
        every change made here, so runs already started are stale."""
        self.request_diagnosis(required=True)

    def request_diagnosis(self, required: bool = False) -> int:
        """Ask for a re-derivation; returns its generation. At most one run is in flight:
        a request made meanwhile is served by one follow-up run when it returns."""
        return self._scheduler.request(required)

    @Slot(object)
    def _apply_snapshot(self, snap: DiagnosisSnapshot) -> None:
        self.diagnosis = snap.diagnosis
        self.jobs = list(snap.jobs)
        self._job_states.update((j.id, j.state) for j in snap.jobs)
        self.tree = snap.tree
        self.summary = snap.summary
        self.diagnosis_seconds = snap.seconds
        self._files.watch(snap.watched)
        self.diagnosisChanged.emit()
        if self.settings.auto_analyse:
            self._analysis.auto_analyse(self.diagnosis, self.diagnosis_current)

    @property
    def has_diagnosis(self) -> bool:
        """A snapshot has been shown (before the first one, the views are empty)."""
        return self._scheduler.has_result

    @property
    def diagnosis_current(self) -> bool:
        """The diagnosis shown reflects every change made here (passes may have progressed
        since)."""
        return self._scheduler.current

    @property
    def diagnosis_pending(self) -> bool:
        """A re-derivation is scheduled, running, or its request not yet served."""
        return self._scheduler.pending

    def rows_for_source(self, source_id: str) -> list[Row]:
        return self.diagnosis.for_source(source_id)

    def rows_for_track(self, track_id: str) -> list[Row]:
        return self.diagnosis.for_track(track_id)

    def row(self, key: Any) -> Row | None:
        for r in self.diagnosis.rows:
            if r.key == key:
                return r
        return None

    # -- analysis (the AnalysisQueue runs the passes) ---------------------------------------

    def regenerate(self, rows: Sequence[Row]) -> int:
        """Recompute the given rows (even ok ones), first in the queue."""
        return self._analysis.regenerate(rows, self.diagnosis, self.diagnosis_current)

    def regenerate_stale(self) -> int:
        return self._analysis.regenerate_stale(self.diagnosis, self.diagnosis_current)

    def calculate_missing(self) -> int:
        return self._analysis.calculate_missing(self.diagnosis, self.diagnosis_current)

    def cancel(self, job_id: str) -> bool:
        return self._analysis.cancel(job_id)

    def cancel_all(self) -> int:
        return self._analysis.cancel_all()

    def can_cancel(self, job: Any) -> bool:
        return self._analysis.can_cancel(job)

    @property
    def busy(self) -> bool:
        return self._analysis.busy

    @Slot(object)
    def _on_pass_finished(self, result: BatchResult) -> None:
        self.jobFinished.emit(result)

    # -- plots --------------------------------------------------------------------------------

    def request_plot(self, source_id: str, title: str, rows: Sequence[Row]) -> int:
        """Load the stored arrays of ``rows`` (and the source's waveform) in the background;
        rows without data become empty lanes. Only the latest request's result is delivered
        (``plotLoaded``); returns its generation."""
        return self._plots.request(source_id, title, rows)

    @property
    def plot_generation(self) -> int:
        return self._plots.generation

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

    def add_audio(
        self, paths: Sequence[str], planned: library.PlannedAddition | None = None
    ) -> list[str]:
        """The audio files among ``paths`` and under the folders among them (the rules of
        ``core/library.py``, as ``diagnostics-app add --track-per-source -r``): a source and a
        track with the default requests each, as one undoable edit. What was skipped or was
        already there is said in the status bar. Returns the new source ids.
        ``planned``: that work done off the GUI thread (qt/audio_drop.py), used while its
        project is still the one open."""
        if planned is None or planned.project is not self.project:
            planned = library.plan_audio(self.project, paths)
        addition = planned.addition
        n = len(addition.sources)
        if n:
            text = (
                f"Add {Path(addition.sources[0].path).name}" if n == 1 else f"Add {n} audio files"
            )
            made = planned
            if self.edit(
                text,
                lambda p: (
                    made.edited
                    if p is made.project and made.edited is not None
                    else edits.add_sources(p, sources=addition.sources, tracks=addition.tracks)
                ),
            ):
                return []
        notes = []
        if addition.present:
            notes.append(f"{len(addition.present)} already in the project")
        if addition.skipped:
            first = addition.skipped[0]
            notes.append(
                f"{len(addition.skipped)} skipped ({first.line()}{', ...' if len(addition.skipped) > 1 else ''})"
            )
        if notes or not n:
            head = f"Added {n} source{'s' if n != 1 else ''}" if n else "Nothing added"
            self.message.emit(
                f"{head}; {'; '.join(notes)}" if notes else head, 0 if addition.problems else 8000
            )
        return [s.id for s in addition.sources]

    def prune(self, rows: Sequence[Row]) -> int:
        try:
            cmd = self.session.prune(extraneous(rows))
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
        self.refresh()
        return text

    def save(self, path: str | os.PathLike[str] | None = None, overwrite: bool = False) -> bool:
        """Save (``overwrite``: even over a change another program made to the file)."""
        try:
            saved = self.session.save(path, overwrite=overwrite)
        except DiagnosticsError as exc:
            self.message.emit(f"Save failed: {exc}", 0)
            return False
        self.message.emit(f"Saved {saved}", 3000)
        return True

    def changed_on_disk(self) -> bool:
        """Another program changed the project file since it was read or written here (asked
        at Save: the watcher does not ask again about the same version)."""
        return self._files.take_outside_change()

    def reload_from_disk(self) -> bool:
        """Read the project file again, dropping unsaved edits (False: it cannot be read)."""
        ok = self._files.reload()
        self.refresh()
        return ok

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
        try:
            self._analysis.use_scheduler(settings.scheduler)
        except DiagnosticsError as exc:  # not an address (a hand-edited settings file)
            self.message.emit(f"Dask scheduler: {exc}; analysing on this machine", 0)
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
        return watched_paths(project or self.project)

    # -- teardown ---------------------------------------------------------------------------

    def is_idle(self) -> bool:
        """No pass, plot load or re-derivation is running, scheduled or waiting to be shown."""
        return (
            self._analysis.idle
            and self._plots.idle
            and self.diagnosis_pool.activeThreadCount() == 0
            and not self.diagnosis_pending
        )

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel this process's jobs, wait for the workers, close the store."""
        if self._closed:
            return True
        self._closed = True
        self._scheduler.close()
        self._watcher.stop()
        self._bridge.close()
        self._files.stop()
        self._plots.close()  # loads in flight stop at their next check
        with contextlib.suppress(DiagnosticsError):  # the passes stop even if the store refuses
            self.session.runner.cancel_all()  # their records; the pools are still waited for
        ok = (
            self.pool.waitForDone(timeout_ms)
            and self.plot_pool.waitForDone(timeout_ms)
            and self.diagnosis_pool.waitForDone(timeout_ms)
        )
        self._files.unwatch_all()
        if ok:
            self._analysis.close()  # the worker processes, once no pass waits for them
        self.session.close()
        return ok


def _with_progress(job: Any, event: JobUpdated) -> Any:
    """The job record with the progress of ``event`` (when it is that job)."""
    if getattr(job, "id", None) != event.job_id:
        return job
    return replace(job, progress=event.progress, label=event.label)
