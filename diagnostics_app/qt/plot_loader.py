"""The plot loader: the stored arrays of the selected rows, loaded off the GUI thread.

Each request runs a :class:`~diagnostics_app.qt.workers.PlotLoadWorker` in a small pool and
carries a generation; only the latest request's result is delivered, and loads in flight stop
at their next check once a newer request (or shutdown) makes them obsolete. Waveform pyramids
are shared across loads (:class:`~diagnostics_app.qt.workers.PyramidCache`).

It is apart from the :class:`~diagnostics_app.qt.controller.Controller` because loading plot
data has nothing to do with deriving the diagnosis or running passes: the controller only
forwards the requests and the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QThreadPool, Signal, Slot

from diagnostics_app.core.calculators.base import FeatureSpec
from diagnostics_app.core.diagnostics import Row
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.session import Session
from diagnostics_app.qt.workers import PlotLoadWorker, PlotRequest, PlotResult, PyramidCache


class PlotLoader(QObject):
    """Loads plot data from ``session``'s store, the latest request only."""

    loaded = Signal(object)  # PlotResult of the latest request
    message = Signal(str, int)  # a status-bar message and its timeout (ms, 0 = sticky)

    def __init__(self, session: Session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self._workers: set[PlotLoadWorker] = set()
        self.generation = 0  # of the latest request
        self._closed = False
        self._pyramids = PyramidCache()  # waveform pyramids, shared by the plot loaders

    def request(self, source_id: str, title: str, rows: Sequence[Row]) -> int:
        """Load the stored arrays of ``rows`` (and the source's waveform) in the background;
        rows without data become empty lanes. Only the latest request's result is delivered
        (:attr:`loaded`); returns its generation."""
        self.generation += 1
        gen = self.generation
        try:
            path = self._session.project.audio_path(source_id)
        except DiagnosticsError:
            path = Path(source_id)
        req = PlotRequest(gen, source_id, title, path, tuple(rows))
        worker = PlotLoadWorker(
            req, self._load_row, self._is_current, self._feature_spec, self._pyramids
        )
        worker.signals.loaded.connect(self._on_loaded, Qt.ConnectionType.QueuedConnection)
        worker.signals.failed.connect(self._on_failed, Qt.ConnectionType.QueuedConnection)
        worker.signals.done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)
        self._workers.add(worker)
        self.pool.start(worker)
        return gen

    @property
    def idle(self) -> bool:
        """No load is running or waiting to report."""
        return not self._workers and self.pool.activeThreadCount() == 0

    def close(self) -> None:
        """Loads in flight stop at their next check; none is delivered any more."""
        self._closed = True
        self.generation += 1

    def _is_current(self, generation: int) -> bool:
        return generation == self.generation and not self._closed

    def _load_row(self, row: Row) -> tuple[np.ndarray, np.ndarray, Any] | None:
        """Worker thread: one row's stored array."""
        store = self._session.store
        entry = store.get(row.key.entry_key)
        if entry is None or row.key.feature not in entry.features:
            return None
        loaded = store.load(entry, row.key.feature)
        return np.asarray(loaded.data), np.asarray(loaded.times), loaded.meta

    def _feature_spec(self, row: Row) -> FeatureSpec | None:
        """Any thread: how the row's calculator describes its feature (None: unknown)."""
        try:
            calc = self._session.registry.get(row.key.calculator)
        except DiagnosticsError:
            return None
        return next((f for f in calc.features if f.name == row.key.feature), None)

    @Slot(object)
    def _on_loaded(self, result: PlotResult) -> None:
        if self._is_current(result.generation):
            self.loaded.emit(result)

    @Slot(int, str)
    def _on_failed(self, generation: int, message: str) -> None:
        if self._is_current(generation):
            self.message.emit(f"Cannot load plot data: {message}", 0)

    @Slot(object)
    def _on_done(self, worker: PlotLoadWorker) -> None:
        self._workers.discard(worker)
