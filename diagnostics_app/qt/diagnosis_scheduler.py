"""The diagnosis scheduler: when a re-derivation runs, and which result may be shown.

Any event (job progress, a finished pass, an edit, a file that changed on disk, another
process writing the store) asks for one re-derivation; a
:class:`~diagnostics_app.qt.workers.DiagnosisWorker` runs it on a one-thread pool, so at most
one is in flight, and the requests made meanwhile are coalesced into one follow-up run.

**Generations**: every request has a number. A change made here (an edit, undo, prune, queued
passes, a project reloaded from disk) makes every run already started *stale*: its snapshot is
dropped, not shown, because it may predate the change. Progress of running passes does not:
those snapshots are only older, never wrong, and showing them keeps the rows moving while a
long derivation of a big project is always being superseded.

It is separate from the :class:`~diagnostics_app.qt.controller.Controller` because these rules
do not depend on where the requests come from (session and runner listeners, the store poll,
the file watcher today; typed events later) nor on what a snapshot holds: the controller hands
it the function that derives one and applies the snapshots it emits.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QThreadPool, QTimer, Signal, Slot

from diagnostics_app.qt.workers import DiagnosisSnapshot, DiagnosisWorker

REFRESH_DELAY_MS = 40  # coalesces the events of a change made here into one re-derivation
# coalesces the job state changes of an analysis: each derivation is ~15 ms of Python in the
# diagnosis thread, competing with the GUI thread for the GIL; at 40 ms an analysis of 20
# sources was re-derived ~22 times, at 120 ms ~11 (half the GUI process's CPU meanwhile);
# progress itself does not wait for it (it goes to its cells at once)
JOB_REFRESH_DELAY_MS = 120


class DiagnosisScheduler(QObject):
    """Runs ``derive(generation)`` in the diagnosis pool and emits the snapshots to show.

    ``applicable(snapshot)``: a last check by the owner (the snapshot's project is still the
    session's); a snapshot failing it is dropped like a stale one."""

    snapshotReady = Signal(object)  # DiagnosisSnapshot: newer than any shown, not stale
    message = Signal(str, int)  # a status-bar message and its timeout (ms, 0 = sticky)

    def __init__(
        self,
        derive: Callable[[int], DiagnosisSnapshot],
        applicable: Callable[[DiagnosisSnapshot], bool],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._derive = derive
        self._applicable = applicable
        self.pool = QThreadPool(self)  # one thread: derivations are serialised
        self.pool.setMaxThreadCount(1)
        self._worker: DiagnosisWorker | None = None
        self._requested = 0  # generation of the latest request
        self._started = 0  # generation of the latest run started
        self._finished = 0  # generation of the latest run that came back (shown or not)
        self._applied = 0  # generation of the snapshot shown (0: none yet)
        self._required = 0  # snapshots of older generations are stale: dropped
        self._refresh_required = False  # the scheduled refresh follows a change made here
        self._closed = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._on_timer)

    def schedule(self, required: bool = False) -> None:
        """Request a re-derivation after :data:`REFRESH_DELAY_MS` (``required``: it follows a
        change made here, so runs already started are stale), else (jobs moved on) after
        :data:`JOB_REFRESH_DELAY_MS`; bursts coalesce into one, at the earlier time."""
        if self._closed:
            return
        if required:
            self._refresh_required = True
        delay = REFRESH_DELAY_MS if required else JOB_REFRESH_DELAY_MS
        if not self._timer.isActive() or self._timer.remainingTime() > delay:
            self._timer.start(delay)

    @Slot()
    def _on_timer(self) -> None:
        self.request(required=self._refresh_required)

    def request(self, required: bool = False) -> int:
        """Ask for a re-derivation; returns its generation. At most one run is in flight:
        a request made meanwhile is served by one follow-up run when it returns."""
        if self._closed:
            return self._requested
        self._timer.stop()
        required = required or self._refresh_required
        self._refresh_required = False
        self._requested += 1
        if required:
            self._required = self._requested
        self._start()
        return self._requested

    def invalidate(self) -> None:
        """Something changed here: no run started before now may be shown."""
        self._required = self._requested + 1

    def _start(self) -> None:
        if self._closed or self._worker is not None or self._started >= self._requested:
            return
        generation = self._started = self._requested
        worker = DiagnosisWorker(generation, self._derive)
        worker.signals.ready.connect(self._on_ready, Qt.ConnectionType.QueuedConnection)
        worker.signals.failed.connect(self._on_failed, Qt.ConnectionType.QueuedConnection)
        worker.signals.done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)
        self._worker = worker
        self.pool.start(worker)

    @Slot(object)
    def _on_ready(self, snap: DiagnosisSnapshot) -> None:
        self._finished = max(self._finished, snap.generation)
        if (
            self._closed
            or snap.generation < self._required  # started before a change made here
            or snap.generation <= self._applied
            or not self._applicable(snap)
        ):
            return
        self._applied = snap.generation
        self.snapshotReady.emit(snap)

    @Slot(int, str)
    def _on_failed(self, generation: int, message: str) -> None:
        self._finished = max(self._finished, generation)
        if not self._closed:
            self.message.emit(f"Cannot read the feature store: {message}", 0)

    @Slot(object)
    def _on_done(self, worker: DiagnosisWorker) -> None:
        if worker is self._worker:
            self._worker = None
        if self._started >= self._requested:
            return
        # the requests made while it ran, coalesced into one run: at once after a change made
        # here; after progress, only once the coalescing delay has passed, so the GUI thread
        # applies and paints this snapshot without the next derivation competing for the GIL
        if self._required > self._started:
            self._start()
        else:
            self.schedule()

    @property
    def has_result(self) -> bool:
        """A snapshot has been shown."""
        return self._applied > 0

    @property
    def current(self) -> bool:
        """The snapshot shown reflects every change made here."""
        return self._applied > 0 and self._applied >= self._required

    @property
    def pending(self) -> bool:
        """A re-derivation is scheduled, running, or its request not yet served."""
        return (
            self._timer.isActive() or self._worker is not None or self._finished < self._requested
        )

    def close(self) -> None:
        """No run is started or shown any more (the pool is waited for by the owner)."""
        self._closed = True
        self._timer.stop()
