"""Background work on :class:`QThreadPool`: analysis passes, re-derivation of the diagnosis,
and plot-data loading.

The superqt pattern: a :class:`QRunnable` does the work; its signals live on a separate
:class:`QObject` created in the GUI thread, so emitting from the worker thread is delivered to
GUI-thread ``@Slot`` methods through queued connections. Workers never touch a widget, and
never let an exception escape ``run()`` (Qt would swallow it and the UI would wait forever):
every outcome is a signal.

Plot loads carry a *generation*: the receiver drops any result whose generation is not the
latest request's (napari's slicer habit), so a slow load can never overwrite a newer view.
They also do the numpy work of the plots (the waveform's peaks pyramid, max-pooled images,
contiguous curves: :func:`~diagnostics_app.qt.plots.features.prepare_lanes`), so the GUI thread
only hands arrays to plot items.

A diagnosis worker runs :meth:`Session.diagnose` and what the views derive from it (the source
tree's nodes, the state counts, the watched paths) and returns one immutable
:class:`DiagnosisSnapshot`; the controller runs at most one at a time and applies snapshots on
the GUI thread.
"""

from __future__ import annotations

import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRunnable, Signal

from diagnostics_app.core.audio import read_info
from diagnostics_app.core.axes import channel_names, frame_step
from diagnostics_app.core.calculators.base import FeatureSpec
from diagnostics_app.core.diagnostics import Diagnosis, Row
from diagnostics_app.core.engine import audio_peaks
from diagnostics_app.core.errors import Cancelled, DiagnosticsError
from diagnostics_app.core.jobs import Batch, BatchResult, JobRunner, PassRun
from diagnostics_app.core.project import Project
from diagnostics_app.core.stamp import FileStamp
from diagnostics_app.core.states import CURRENT_DATA
from diagnostics_app.qt.models.sources import Tree
from diagnostics_app.qt.plots.features import (
    FeaturePlot,
    pending_plot,
    plot_duration,
    prepare_lanes,
)
from diagnostics_app.qt.plots.waveform import PeaksPyramid

# --- analysis --------------------------------------------------------------------------------


class AnalysisSignals(QObject):
    started = Signal(str)  # job id
    finished = Signal(object)  # BatchResult (status "done")
    failed = Signal(str, str)  # job id ("" when none was taken), message
    cancelled = Signal(str)  # job id
    done = Signal(object)  # the worker, always last: lets the owner drop its reference


class WorkerSlots:
    """How many analysis workers are live, for the queue that starts them (any thread).

    A worker takes pass after pass and ends only when :meth:`leave` finds no pass queued;
    the queue counts live workers (:meth:`claim`) under the same lock, after queueing its
    passes. So a pass queued while the last worker leaves is seen by one of them: the worker
    stays, or the queue starts another; it is never left without a worker."""

    def __init__(self, pending: Callable[[], int]) -> None:
        self._pending = pending  # passes queued, not yet taken (the runner's count)
        self._lock = threading.Lock()
        self._live = 0

    @property
    def live(self) -> int:
        with self._lock:
            return self._live

    def claim(self, limit: int) -> int:
        """How many more workers the queued passes need, with at most ``limit`` live in all;
        they count as live from here (the caller starts exactly that many)."""
        with self._lock:
            more = max(0, min(self._pending(), limit) - self._live)
            self._live += more
            return more

    def leave(self, force: bool = False) -> bool:
        """A worker found the queue empty: True when it may end (no pass was queued since);
        ``force``: it ends anyway (an error it cannot go on after)."""
        with self._lock:
            if not force and self._pending() > 0:
                return False
            self._live = max(0, self._live - 1)
            return True


class AnalysisWorker(QRunnable):
    """Takes the queued passes of the runner one after another (highest priority first) and
    executes each until none is queued. ``where`` (if given) says, before each pass, where its
    work runs: None, this thread; or a worker process or a cluster (this thread then only
    waits); the queue may have switched meanwhile. With ``slots`` the worker leaves only as
    :meth:`WorkerSlots.leave` allows; without, when it finds the queue empty."""

    def __init__(
        self,
        runner: JobRunner,
        after_pass: Callable[[BatchResult], None] | None = None,
        *,
        where: Callable[[], PassRun | None] | None = None,
        slots: WorkerSlots | None = None,
    ) -> None:
        super().__init__()
        self.setAutoDelete(False)  # Python owns it (the controller keeps a reference)
        self.runner = runner
        self.after_pass = after_pass  # runs in this thread after a pass that committed
        self._where = where
        self._slots = slots
        self.passes = 0  # passes this worker took
        self.signals = AnalysisSignals()

    def run(self) -> None:
        left = False
        try:
            while True:
                batch = self.runner.take()
                if batch is None:
                    if self._slots is None or self._slots.leave():
                        left = True
                        return
                    continue  # a pass was queued as it was about to leave: take it
                self.passes += 1
                self._execute(batch)
        except BaseException as exc:  # a bug must reach the UI, never hang it
            self.signals.failed.emit("", f"internal error: {type(exc).__name__}: {exc}")
            traceback.print_exc()
        finally:
            if self._slots is not None and not left:
                self._slots.leave(force=True)  # the queue tops up when it hears ``done``
            self.signals.done.emit(self)

    def _execute(self, batch: Batch) -> None:
        """One pass; every outcome is a signal, and nothing escapes (the next pass follows)."""
        job_id = batch.job_id
        try:
            self.signals.started.emit(job_id)
            run = self._where() if self._where is not None else None
            result: BatchResult = self.runner.execute(batch, run)
            if result.status == "done":
                if self.after_pass is not None:
                    self.after_pass(result)
                self.signals.finished.emit(result)
            elif result.status == "cancelled":
                self.signals.cancelled.emit(job_id)
            else:
                self.signals.failed.emit(job_id, result.message or "failed")
        except Exception as exc:  # a bug must reach the UI as this pass's failure
            self.signals.failed.emit(job_id, f"internal error: {type(exc).__name__}: {exc}")
            traceback.print_exc()


# --- diagnosis -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DiagnosisSnapshot:
    """One re-derivation, made in a worker thread, applied as a whole on the GUI thread."""

    generation: int  # the controller's request it answers
    project: Project  # the project it was derived from
    diagnosis: Diagnosis
    jobs: tuple[Any, ...]  # active JobRecords, any process
    tree: Tree  # the source tree's nodes
    summary: dict[str, int]  # rows per state
    watched: tuple[str, ...]  # the paths the file watcher should watch
    seconds: float  # how long the derivation took


class DiagnosisSignals(QObject):
    ready = Signal(object)  # DiagnosisSnapshot
    failed = Signal(int, str)  # generation, message
    done = Signal(object)  # the worker, always last


class DiagnosisWorker(QRunnable):
    """Runs ``derive(generation)`` (the controller's, which calls :meth:`Session.diagnose`)
    off the GUI thread; the snapshot or the error comes back as a signal."""

    def __init__(self, generation: int, derive: Callable[[int], DiagnosisSnapshot]) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.generation = generation
        self._derive = derive
        self.signals = DiagnosisSignals()

    def run(self) -> None:
        try:
            self.signals.ready.emit(self._derive(self.generation))
        except DiagnosticsError as exc:
            self.signals.failed.emit(self.generation, str(exc))
        except BaseException as exc:  # a bug must reach the UI, never hang it
            self.signals.failed.emit(
                self.generation, f"internal error: {type(exc).__name__}: {exc}"
            )
            traceback.print_exc()
        finally:
            self.signals.done.emit(self)


# --- plot data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlotRequest:
    """An immutable snapshot of what to load: taken in the GUI thread, read in the worker."""

    generation: int
    source_id: str
    title: str
    audio_path: Path
    rows: tuple[Row, ...]  # rows to plot (peaks rows feed the waveform); no data: empty lanes


@dataclass
class PlotResult:
    generation: int
    source_id: str
    title: str
    duration: float | None
    sample_rate: int | None
    channel_names: tuple[str, ...]
    peaks: np.ndarray | None  # (blocks, channels, 2)
    peaks_step: float
    features: list[FeaturePlot]  # with their lanes prepared for ``plot_duration``
    errors: list[str]
    pyramid: PeaksPyramid | None = None  # built from ``peaks`` in the worker
    plot_duration: float = 0.0  # the time axis the lanes were prepared for


def feature_label(row: Row) -> str:
    """A lane's title: the feature, its calculator and profile."""
    key = row.key
    return f"{key.feature} · {key.calculator} · {key.profile}" + (
        " (extraneous)" if row.state == "extraneous" else ""
    )


def feature_plot(row: Row, data: np.ndarray, times: np.ndarray, meta: Any) -> FeaturePlot:
    """How a row's stored array is shown."""
    key = row.key
    return FeaturePlot(
        feature_label(row),
        key.feature,
        data,
        times,
        meta,
        stale=row.state == "stale",
        state=row.state,
        version=(key, row.updated),
        calculator=key.calculator,
        params=row.params,
    )


class PlotSignals(QObject):
    loaded = Signal(object)  # PlotResult
    failed = Signal(int, str)  # generation, message
    done = Signal(object)


class PyramidCache:
    """The last few waveform pyramids by what they were made from (the stored peaks row and
    its update time, or the audio file and its stat stamp); shared by the plot loaders (any
    thread). A reload of the same source then neither reads nor reduces the peaks again, and
    hands the plot area the very pyramid it shows (it keeps its curves' data)."""

    def __init__(self, size: int = 4) -> None:
        self._size = size
        self._items: OrderedDict[object, PeaksPyramid] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, version: object) -> PeaksPyramid | None:
        with self._lock:
            pyramid = self._items.get(version)
            if pyramid is not None:
                self._items.move_to_end(version)
            return pyramid

    def build(
        self, version: object, peaks: np.ndarray, step: float, errors: list[str]
    ) -> PeaksPyramid | None:
        try:
            pyramid = PeaksPyramid(peaks, step)
        except ValueError as exc:
            errors.append(f"peaks: {exc}")
            return None
        with self._lock:
            self._items[version] = pyramid
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return pyramid


class PlotLoadWorker(QRunnable):
    """Loads the stored arrays of a selection (and the waveform) off the GUI thread."""

    def __init__(
        self,
        request: PlotRequest,
        load: Callable[[Row], tuple[np.ndarray, np.ndarray, Any] | None],
        is_current: Callable[[int], bool],
        spec: Callable[[Row], FeatureSpec | None] = lambda row: None,
        pyramids: PyramidCache | None = None,
    ) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.request = request
        self._load = load
        self._is_current = is_current
        self._spec = spec
        self._pyramids = pyramids if pyramids is not None else PyramidCache()
        self.signals = PlotSignals()

    def _pending(self, row: Row) -> FeaturePlot:
        spec = self._spec(row)
        return pending_plot(
            feature_label(row),
            row.key.feature,
            spec.kind if spec is not None else "line",
            spec.unit if spec is not None else "",
            spec.bin_unit if spec is not None else "",
            row.state,
            reason=row.message or "",
            calculator=row.key.calculator,
        )

    def run(self) -> None:
        req = self.request
        try:
            self.signals.loaded.emit(self._work(req))
        except BaseException as exc:
            self.signals.failed.emit(req.generation, f"{type(exc).__name__}: {exc}")
        finally:
            self.signals.done.emit(self)

    def _work(self, req: PlotRequest) -> PlotResult:
        errors: list[str] = []
        features: list[FeaturePlot] = []
        duration: float | None = None
        sample_rate: int | None = None
        names: tuple[str, ...] = ()
        try:
            info = read_info(req.audio_path)
            duration, sample_rate = info.duration, info.sample_rate
            names = channel_names(info.channels)  # the waveform's: never mixed
        except DiagnosticsError as exc:
            errors.append(str(exc))

        def current() -> bool:
            return self._is_current(req.generation)

        for row in req.rows:
            if not current():
                break
            if row.key.feature == "peaks":
                continue  # the waveform: below
            if row.updated is None:  # no data yet: an empty lane for it
                features.append(self._pending(row))
                continue
            try:
                got = self._load(row)
            except DiagnosticsError as exc:
                errors.append(f"{row.key.feature}: {exc}")
                got = None  # its lane stays, empty and marked with the row's state
            if got is None:
                features.append(self._pending(row))
                continue
            data, times, meta = got
            features.append(feature_plot(row, data, times, meta))
        # the waveform's pyramid (the plots' biggest numpy work), here rather than on the GUI
        # thread; the same peaks as last time give the same pyramid object (nothing to redo)
        pyramid: PeaksPyramid | None = None
        peaks_row = next(
            (
                r
                for r in req.rows
                if r.key.feature == "peaks" and r.updated is not None and r.state in CURRENT_DATA
            ),
            None,
        )
        if peaks_row is not None and current():
            version: object = ("store", peaks_row.key, peaks_row.updated)
            pyramid = self._pyramids.get(version)
            if pyramid is None:
                try:
                    got = self._load(peaks_row)
                except DiagnosticsError as exc:
                    errors.append(f"peaks: {exc}")
                    got = None
                if got is not None:
                    data, times, meta = got
                    step = frame_step(meta.frame_step, times)
                    pyramid = self._pyramids.build(version, data, step, errors)
        if pyramid is None and sample_rate is not None and current():
            version = ("audio", str(req.audio_path), FileStamp.peek(req.audio_path))
            pyramid = self._pyramids.get(version)
            if pyramid is None:
                try:  # by the peaks calculator itself: the same blocks as a stored peaks row
                    computed = audio_peaks(req.audio_path, cancelled=lambda: not current())
                except Cancelled:
                    pass  # a newer request made it obsolete: nothing partial is kept
                except DiagnosticsError as exc:
                    errors.append(str(exc))
                else:
                    step = frame_step(computed.meta.frame_step, computed.times)
                    pyramid = self._pyramids.build(version, computed.data, step, errors)
        peaks = pyramid.levels[0] if pyramid is not None else None
        peaks_step = pyramid.step if pyramid is not None else 0.0
        source_duration = (
            duration if duration else (pyramid.duration if pyramid is not None else 0.0)
        )
        span = plot_duration(source_duration, features)
        if self._is_current(req.generation):
            features = [
                replace(it, lanes=prepare_lanes(it, span), lanes_duration=span) for it in features
            ]
        return PlotResult(
            req.generation,
            req.source_id,
            req.title,
            duration,
            sample_rate,
            names,
            peaks,
            peaks_step,
            features,
            errors,
            pyramid,
            span,
        )


def describe_failure(results: Sequence[BatchResult]) -> str:
    failed = [r for r in results if r.status == "failed"]
    return "; ".join(r.message or "failed" for r in failed)
