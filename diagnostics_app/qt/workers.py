"""Background work on :class:`QThreadPool`: analysis passes and plot-data loading.

The superqt pattern: a :class:`QRunnable` does the work; its signals live on a separate
:class:`QObject` created in the GUI thread, so emitting from the worker thread is delivered to
GUI-thread ``@Slot`` methods through queued connections. Workers never touch a widget, and
never let an exception escape ``run()`` (Qt would swallow it and the UI would wait forever):
every outcome is a signal.

Plot loads carry a *generation*: the receiver drops any result whose generation is not the
latest request's (napari's slicer habit), so a slow load can never overwrite a newer view.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRunnable, Signal

from diagnostics_app.core.diagnostics import Row
from diagnostics_app.core.jobs import BatchResult, JobRunner

# --- analysis --------------------------------------------------------------------------------


class AnalysisSignals(QObject):
    started = Signal(str)  # job id
    finished = Signal(object)  # BatchResult (status "done")
    failed = Signal(str, str)  # job id ("" when none was taken), message
    cancelled = Signal(str)  # job id
    done = Signal(object)  # the worker, always last: lets the owner drop its reference


class AnalysisWorker(QRunnable):
    """Takes the next queued pass of the runner (highest priority first) and executes it."""

    def __init__(self, runner: JobRunner) -> None:
        super().__init__()
        self.setAutoDelete(False)  # Python owns it (the controller keeps a reference)
        self.runner = runner
        self.signals = AnalysisSignals()

    def run(self) -> None:
        job_id = ""
        try:
            batch = self.runner.take()
            if batch is None:
                return
            job_id = batch.job_id
            self.signals.started.emit(job_id)
            result: BatchResult = self.runner.execute(batch)
            if result.status == "done":
                self.signals.finished.emit(result)
            elif result.status == "cancelled":
                self.signals.cancelled.emit(job_id)
            else:
                self.signals.failed.emit(job_id, result.message or "failed")
        except BaseException as exc:  # a bug must reach the UI, never hang it
            self.signals.failed.emit(job_id, f"internal error: {type(exc).__name__}: {exc}")
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
    rows: tuple[Row, ...]  # rows whose stored data to plot (peaks rows feed the waveform)
    load_samples: bool  # decode the audio for playback too
    max_samples: int = 48000 * 60 * 20


@dataclass
class LoadedPlot:
    row: Row
    data: np.ndarray
    times: np.ndarray
    meta: Any


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
    features: list[LoadedPlot]
    samples: np.ndarray | None  # (frames, channels) float32 for playback
    errors: list[str]


class PlotSignals(QObject):
    loaded = Signal(object)  # PlotResult
    failed = Signal(int, str)  # generation, message
    done = Signal(object)


PEAKS_BLOCK = 256  # samples per min/max block when the waveform is computed from the audio


def compute_peaks(
    path: Path, block: int = PEAKS_BLOCK, cancelled: Callable[[], bool] = lambda: False
) -> tuple[np.ndarray, float, int]:
    """Min/max per block of samples, per channel, streamed: (blocks, channels, 2), step, sr."""
    from diagnostics_app.core.audio import iter_blocks, read_info

    info = read_info(path)
    parts: list[np.ndarray] = []
    carry = np.zeros((info.channels, 0), np.float32)
    for chunk in iter_blocks(path):
        if cancelled():
            break
        data = np.concatenate([carry, chunk], axis=1) if carry.size else chunk
        n = data.shape[1] // block * block
        if n:
            view = data[:, :n].reshape(info.channels, -1, block)
            parts.append(np.stack([view.min(axis=2), view.max(axis=2)], axis=-1).transpose(1, 0, 2))
        carry = data[:, n:]
    if carry.shape[1]:
        parts.append(np.stack([carry.min(axis=1), carry.max(axis=1)], axis=-1)[None, :, :])
    peaks = np.concatenate(parts, axis=0) if parts else np.zeros((0, info.channels, 2), np.float32)
    return np.ascontiguousarray(peaks, dtype=np.float32), block / info.sample_rate, info.sample_rate


class PlotLoadWorker(QRunnable):
    """Loads the stored arrays of a selection (and the waveform) off the GUI thread."""

    def __init__(
        self,
        request: PlotRequest,
        load: Callable[[Row], tuple[np.ndarray, np.ndarray, Any] | None],
        is_current: Callable[[int], bool],
    ) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.request = request
        self._load = load
        self._is_current = is_current
        self.signals = PlotSignals()

    def run(self) -> None:
        req = self.request
        try:
            self.signals.loaded.emit(self._work(req))
        except BaseException as exc:
            self.signals.failed.emit(req.generation, f"{type(exc).__name__}: {exc}")
        finally:
            self.signals.done.emit(self)

    def _work(self, req: PlotRequest) -> PlotResult:
        from diagnostics_app.core.audio import read_info
        from diagnostics_app.core.errors import DiagnosticsError

        errors: list[str] = []
        features: list[LoadedPlot] = []
        peaks: np.ndarray | None = None
        peaks_step = 0.0
        duration: float | None = None
        sample_rate: int | None = None
        channel_names: tuple[str, ...] = ()
        try:
            info = read_info(req.audio_path)
            duration, sample_rate = info.duration, info.sample_rate
            channel_names = (
                ("L", "R")
                if info.channels == 2
                else tuple(f"ch{i + 1}" for i in range(info.channels))
            )
        except DiagnosticsError as exc:
            errors.append(str(exc))
        for row in req.rows:
            if not self._is_current(req.generation):
                break
            try:
                got = self._load(row)
            except DiagnosticsError as exc:
                errors.append(f"{row.key.feature}: {exc}")
                continue
            if got is None:
                continue
            data, times, meta = got
            if (
                row.key.feature == "peaks"
                and peaks is None
                and row.state in ("ok", "running", "queued")
            ):
                peaks = np.ascontiguousarray(data, dtype=np.float32)
                peaks_step = float(
                    meta.frame_step or (times[1] - times[0] if len(times) > 1 else 0.0)
                )
                continue
            if row.key.feature != "peaks":
                features.append(LoadedPlot(row, data, times, meta))
        if peaks is None and sample_rate is not None and self._is_current(req.generation):
            try:
                peaks, peaks_step, _ = compute_peaks(
                    req.audio_path, cancelled=lambda: not self._is_current(req.generation)
                )
            except DiagnosticsError as exc:
                errors.append(str(exc))
        samples = None
        if req.load_samples and sample_rate is not None and self._is_current(req.generation):
            samples = _read_for_playback(req.audio_path, req.max_samples, errors)
        return PlotResult(
            req.generation,
            req.source_id,
            req.title,
            duration,
            sample_rate,
            channel_names,
            peaks,
            peaks_step,
            features,
            samples,
            errors,
        )


def _read_for_playback(path: Path, limit: int, errors: list[str]) -> np.ndarray | None:
    from diagnostics_app.core.audio import iter_blocks, read_info
    from diagnostics_app.core.errors import DiagnosticsError

    try:
        info = read_info(path)
        if info.frames > limit:
            errors.append(f"playback: {path.name} is too long to load for playback")
            return None
        blocks = list(iter_blocks(path))
    except DiagnosticsError as exc:
        errors.append(f"playback: {exc}")
        return None
    return np.ascontiguousarray(np.concatenate(blocks, axis=1).T, dtype=np.float32)


def describe_failure(results: Sequence[BatchResult]) -> str:
    failed = [r for r in results if r.status == "failed"]
    return "; ".join(r.message or "failed" for r in failed)
