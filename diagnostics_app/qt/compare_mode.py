"""Compare mode's data: a row's current data against its previous version, computed and
prepared off the GUI thread.

:class:`CompareLoader` runs :func:`prepare_compare` in the plot pool (as the plot loader runs
its loads, and for the same reason: a comparison streams both versions through numpy, and
the window's shutdown waits for that pool). The result (:class:`CompareResult`) holds the
:class:`~diagnostics_app.core.compare_rules.Comparison` and what the lanes draw in compare
mode, ready for the items: the previous version's lanes (ghost curves, or its images in the
lane's style) and, for images, the current version and the difference (new − old) through
a diverging colour map centred at 0 (:data:`DIFF_CMAP`, symmetric levels).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot

from diagnostics_app.core.compare import compare_with_previous
from diagnostics_app.core.compare_rules import Comparison
from diagnostics_app.core.diagnostics import Row, RowKey
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.session import Session
from diagnostics_app.qt.plots.features import FeaturePlot, LaneData, prepare_lanes
from diagnostics_app.qt.plots.images import MAX_IMAGE_COLUMNS, ImageView, prepare_image
from diagnostics_app.qt.plots.lane_style import LaneStyle, book
from diagnostics_app.qt.workers import feature_label, feature_plot

DIFF_CMAP = "CET-D1"  # blue – white – red: 0 (no change) is the white middle


@dataclass(frozen=True, eq=False)
class CompareResult:
    """A row compared with its previous version, and what its lanes draw in compare mode
    (by lane key: the keys the plot area gives the row's lanes)."""

    key: RowKey
    updated: object  # the row's update time the comparison was made for
    prefix: tuple[object, ...]  # the start of the keys of the row's lanes
    comparison: Comparison
    previous: dict[tuple[object, ...], LaneData]  # the previous version's lanes
    current: dict[tuple[object, ...], LaneData]  # image lanes: the current version's
    difference: dict[tuple[object, ...], ImageView]  # image lanes: new − old
    note: str = ""  # e.g. why there is no difference picture


def _previous_plot(row: Row, data: np.ndarray, times: np.ndarray, meta: object) -> FeaturePlot:
    plot = feature_plot(row, data, times, meta)
    # a version of its own: the previous data is never the current lane's data
    return replace(plot, version=("previous", row.key, row.updated))


def signed_pool(values: np.ndarray, max_columns: int = MAX_IMAGE_COLUMNS) -> tuple[np.ndarray, int]:
    """Pool ``values`` (frames, bins) over time to at most ``max_columns`` frames keeping, in
    each pool, the value of the largest magnitude (its sign kept: a max-pool would hide every
    decrease behind any increase)."""
    frames = values.shape[0]
    k = max(1, math.ceil(frames / max_columns))
    if k == 1:
        return values, 1
    pad = (-frames) % k
    padded = np.concatenate([values, np.zeros((pad, values.shape[1]), values.dtype)])
    blocks = padded.reshape(-1, k, values.shape[1])
    pick = np.abs(blocks).argmax(axis=1)
    return np.take_along_axis(blocks, pick[:, None, :], axis=1)[:, 0, :], k


def difference_views(
    current: FeaturePlot, previous: FeaturePlot, style: LaneStyle
) -> tuple[list[ImageView], str]:
    """Per channel, ``current − previous`` drawn as the current lane is (``style``'s scale),
    in :data:`DIFF_CMAP` at symmetric levels ±(largest difference). The previous version is
    interpolated onto the current frame times when they differ; other widths or channels:
    no picture (the text says why)."""
    n = current.frames
    old = np.asarray(previous.data[: previous.frames], np.float64)
    new = np.asarray(current.data[:n], np.float64)
    if old.shape[1:] != new.shape[1:]:
        return [], "no difference picture: the versions have other channels or bins"
    t_new = np.asarray(current.times[:n], np.float64)
    t_old = np.asarray(previous.times[: previous.frames], np.float64)
    if old.shape[0] != n or not np.allclose(t_old, t_new):
        if old.shape[0] < 2:
            return [], "no difference picture: the previous version has too few frames"
        flat = old.reshape(old.shape[0], -1)
        old = np.stack([np.interp(t_new, t_old, flat[:, j]) for j in range(flat.shape[1])], 1)
        old = old.reshape(new.shape)
    diff = np.nan_to_num(new - old, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    top = float(np.abs(diff).max()) if diff.size else 0.0
    top = top if top > 0.0 else 1e-6
    views = []
    step = current.meta.frame_step
    for ch in range(diff.shape[1]):
        pooled, k = signed_pool(diff[:, ch, :])
        meta = current.meta
        times: np.ndarray = t_new
        if k > 1:  # frames of k times the step, placed as the pooled frames were
            base = float(t_new[0]) if n else meta.frame_start
            frame = float(step) if step else float(np.median(np.diff(t_new))) if n > 1 else 1.0
            times = base + (k - 1) * frame / 2 + k * frame * np.arange(pooled.shape[0])
            meta = replace(meta, frame_step=k * frame)
        item = replace(
            current,
            data=pooled[:, None, :],
            times=times,
            meta=meta,
            version=None,
        )
        diff_style = replace(style, floor=-top, ceiling=top, cmap=DIFF_CMAP)
        views.append(prepare_image(item, 0, style=diff_style))
    return views, ""


def prepare_compare(session: Session, row: Row, duration: float) -> CompareResult:
    """Worker thread: compare ``row`` with its previous version and prepare its lanes."""
    store = session.store
    entry = store.get(row.key.entry_key)
    feature = row.key.feature
    if entry is None or feature not in entry.features:
        raise DiagnosticsError(f"{row.key.source}/{feature}: no stored data to compare")
    comparison = compare_with_previous(store, entry, feature)
    version = store.previous(row.key.entry_key, feature)
    if comparison is None or version is None:
        raise DiagnosticsError(f"{row.key.source}/{feature}: no previous version is kept")
    old = store.load_previous(version)
    now = store.load(entry, feature)
    current = feature_plot(row, np.asarray(now.data), np.asarray(now.times), now.meta)
    previous = _previous_plot(row, np.asarray(old.data), np.asarray(old.times), old.meta)
    prefix = (feature_label(row), feature)
    style = book().get(current.style_key)
    prev_lanes = {d.key: d for d in prepare_lanes(previous, duration, style)}
    cur_lanes: dict[tuple[object, ...], LaneData] = {}
    diffs: dict[tuple[object, ...], ImageView] = {}
    note = ""
    if current.kind == "image":
        cur_lanes = {d.key: d for d in prepare_lanes(current, duration, style)}
        views, note = difference_views(current, previous, style)
        diffs = {(*prefix, ch): view for ch, view in enumerate(views)}
    return CompareResult(
        row.key, row.updated, prefix, comparison, prev_lanes, cur_lanes, diffs, note
    )


class _Signals(QObject):
    done = Signal(object, object)  # generation (int), CompareResult or the error's text (str)


class _CompareWorker(QRunnable):
    def __init__(self, generation: int, work: Callable[[], CompareResult]) -> None:
        super().__init__()
        self.generation = generation
        self._work = work
        self.signals = _Signals()

    def run(self) -> None:
        try:
            result: CompareResult | str = self._work()
        except DiagnosticsError as exc:
            result = str(exc)
        except Exception as exc:  # a bad file must not take the window down: say it
            result = f"{type(exc).__name__}: {exc}"
        self.signals.done.emit(self.generation, result)


class CompareLoader(QObject):
    """Runs comparisons in ``pool``; only the latest request's result is delivered."""

    loaded = Signal(object)  # CompareResult
    failed = Signal(str)  # one line: why there is no comparison

    def __init__(self, session: Session, pool: QThreadPool, parent: QObject | None = None):
        super().__init__(parent)
        self._session = session
        self._pool = pool
        self._workers: set[_CompareWorker] = set()
        self.generation = 0

    def request(self, row: Row, duration: float) -> int:
        self.generation += 1
        session = self._session
        worker = _CompareWorker(self.generation, lambda: prepare_compare(session, row, duration))
        worker.signals.done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)
        self._workers.add(worker)
        worker.setAutoDelete(False)
        self._pool.start(worker)
        return self.generation

    def cancel(self) -> None:
        """A result still on its way is not delivered."""
        self.generation += 1

    @property
    def idle(self) -> bool:
        return not self._workers

    @Slot(object, object)
    def _on_done(self, generation: int, result: CompareResult | str) -> None:
        self._workers = {w for w in self._workers if w.generation != generation}
        if generation != self.generation:
            return
        if isinstance(result, str):
            self.failed.emit(result)
        else:
            self.loaded.emit(result)
