"""The analysis queue: the passes this window plans, queues in the session's runner and runs.

Rows are planned into passes (from the diagnosis shown when it reflects every change made here,
so what the user sees is what gets computed), queued with a priority and an origin, and at
most as many :class:`~diagnostics_app.qt.workers.AnalysisWorker` as the
:class:`QThreadPool` has threads take them from the runner one after another (a library's
20,000 passes: not 20,000 runnables started on the GUI thread), each having its passes
computed in a worker process
(:class:`~diagnostics_app.core.pass_process.ProcessPasses`), so no pass holds the GUI
process's GIL. The workers' reports become status messages and signals. Cancelling
goes to the runner, or, for another process's job, to the store.

It is apart from the :class:`~diagnostics_app.qt.controller.Controller`, which keeps the
methods the window calls and hands this queue the diagnosis shown, because running passes is
independent of deriving the diagnosis and of editing the project.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from PySide6.QtCore import QObject, Qt, QThreadPool, Signal, Slot

from diagnostics_app.core.diagnostics import Diagnosis, Row
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.jobs import (
    PRIORITY_AUTO,
    PRIORITY_BATCH,
    PRIORITY_USER,
    BatchResult,
    PassRunner,
)
from diagnostics_app.core.pass_process import ProcessPasses
from diagnostics_app.core.planner import PlannedJob, Selection, plan
from diagnostics_app.core.session import Session
from diagnostics_app.core.states import OUTDATED, REGENERABLE
from diagnostics_app.qt.workers import AnalysisWorker, WorkerSlots

GUI_ORIGIN = "gui"
AUTO_ORIGIN = "auto"


def _passes(n: int) -> str:
    return f"{n} pass{'es' if n != 1 else ''}"


class AnalysisQueue(QObject):
    """Passes of ``session``'s project. Methods taking ``shown`` and ``current`` are handed
    the diagnosis shown and whether it reflects every change made here."""

    queued = Signal()  # passes were queued: queued rows should show at once
    ended = Signal()  # a pass or its worker ended, or a cancel was asked for: re-derive
    finished = Signal(object)  # BatchResult of one of this process's passes
    failed = Signal(str, str)  # job id, message
    message = Signal(str, int)  # a status-bar message and its timeout (ms, 0 = sticky)

    def __init__(
        self,
        session: Session,
        parent: QObject | None = None,
        after_pass: Callable[[BatchResult], None] | None = None,
        processes: bool = True,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._after_pass = after_pass  # run by the worker thread after a committed pass
        self.pool = QThreadPool(self)
        self._workers: set[AnalysisWorker] = set()
        # live workers, counted with the runner's queue (a worker leaves only when it is empty)
        self.slots = WorkerSlots(session.runner.pending)
        # the passes' work runs in worker processes (the pool's threads only wait for them):
        # a pass never holds this process's GIL, so it never stalls the GUI thread
        self.processes: PassRunner | None = (
            ProcessPasses(session.store, os.cpu_count() or 1) if processes else None
        )
        self.scheduler = ""  # "" = the local processes above
        self._retired: list[PassRunner] = []  # runners replaced while passes still used them

    def use_scheduler(self, address: str) -> None:
        """Run the next passes on the Dask scheduler at ``address`` ("" = this machine's
        processes). Passes already running finish where they are."""
        if address == self.scheduler or self.processes is None:
            return
        if address:
            from diagnostics_app.core.cluster import SchedulerPasses  # Dask only when asked

            new: PassRunner = SchedulerPasses(self._session.store, address)
        else:
            new = ProcessPasses(self._session.store, os.cpu_count() or 1)
        self._retired.append(self.processes)
        self.processes, self.scheduler = new, address
        self._close_retired()

    def _close_retired(self) -> None:
        if self._workers:
            return  # a running worker may still call one: closed when the last one ends
        for runner in self._retired:
            runner.close()
        self._retired.clear()

    def regenerate(self, rows: Sequence[Row], shown: Diagnosis, current: bool) -> int:
        """Recompute the given rows (even ok ones), first in the queue."""
        n = self.enqueue(
            [r for r in rows if r.state in REGENERABLE],
            PRIORITY_USER,
            GUI_ORIGIN,
            shown if current else None,
            include_ok=True,
        )
        self.message.emit(
            f"Queued {_passes(n)}" if n else "Nothing to regenerate in the selection", 4000
        )
        return n

    def regenerate_stale(self, shown: Diagnosis, current: bool) -> int:
        rows = [r for r in shown.rows if r.state in OUTDATED]
        return self._batch(rows, shown, current, "Regenerating stale rows", "No stale rows")

    def calculate_missing(self, shown: Diagnosis, current: bool) -> int:
        rows = [r for r in shown.rows if r.state == "missing"]
        return self._batch(rows, shown, current, "Calculating missing rows", "No missing rows")

    def _batch(
        self, rows: list[Row], shown: Diagnosis, current: bool, doing: str, nothing: str
    ) -> int:
        """Queue ``rows`` at batch priority and say so (``nothing``: there was none)."""
        n = self.enqueue(rows, PRIORITY_BATCH, GUI_ORIGIN, shown if current else None)
        self.message.emit(f"{doing}: {_passes(n)} queued" if n else nothing, 4000)
        return n

    def auto_analyse(self, shown: Diagnosis, current: bool) -> None:
        """Compute what is missing, behind anything the user asked for."""
        missing = [r for r in shown.rows if r.state == "missing"]
        if missing:
            self.enqueue(missing, PRIORITY_AUTO, AUTO_ORIGIN, shown if current else None)

    def enqueue(
        self,
        rows: Iterable[Row],
        priority: int,
        origin: str,
        basis: Diagnosis | None,
        include_ok: bool = False,
    ) -> int:
        """Queue the passes ``rows`` need and start the workers they need; returns how many
        passes. ``basis``: the diagnosis to plan from; None: a fresh derivation on this
        thread."""
        keys = tuple(r.key for r in rows)
        if not keys:
            return 0
        runner = self._session.runner
        before = runner.pending()
        try:
            jobs = self._plan(Selection(rows=keys), basis, include_ok)
            n = len(self._session.enqueue(jobs, priority=priority, origin=origin))
        except DiagnosticsError as exc:  # the store refused a record: say so, run what queued
            self.message.emit(f"Cannot queue the analysis: {exc}", 0)
            n = max(0, runner.pending() - before)
        self._start_workers()
        self.queued.emit()  # queued rows show at once
        return n

    def _plan(
        self, selection: Selection, basis: Diagnosis | None, include_ok: bool
    ) -> list[PlannedJob]:
        """Jobs for the selected rows: planned from the diagnosis shown when it reflects every
        change made here (what the user sees is what gets computed; the runner never queues
        a pass twice), else from a fresh derivation on this thread (right after an edit)."""
        if basis is not None:
            return plan(basis, selection, include_ok=include_ok)
        return self._session.plan(selection, include_ok=include_ok)

    def _start_workers(self) -> None:
        """Workers for the queued passes, as many as the pool has threads at most: each takes
        pass after pass, so the threads stay busy without a runnable per pass. Called again
        when a pass ends: the settings may allow more threads since."""
        for _ in range(self.slots.claim(self.pool.maxThreadCount())):
            worker = AnalysisWorker(
                self._session.runner,
                self._after_pass,
                where=self._where,
                slots=self.slots,
            )
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

    def _where(self) -> PassRunner | None:
        """Where the next pass runs (a worker asks before each: a switch to a cluster holds
        for the passes not started yet)."""
        return self.processes

    def cancel(self, job_id: str) -> bool:
        try:
            ok = self._session.runner.cancel(job_id)
            if not ok:
                canceller = getattr(self._session.store, "request_cancel", None)
                if callable(canceller):
                    ok = bool(canceller(job_id))
        except DiagnosticsError as exc:  # the store cannot be written: say so, no traceback
            self.message.emit(f"Cannot cancel the job: {exc}", 0)
            ok = False
        self.ended.emit()
        return ok

    def cancel_all(self) -> int:
        try:
            n = self._session.runner.cancel_all()
        except DiagnosticsError as exc:  # every pass was stopped; its records could not be
            self.message.emit(f"Cannot record the cancelled jobs: {exc}", 0)  # (no traceback)
            self.ended.emit()
            return 0
        self.message.emit(
            f"Cancelled {n} job{'s' if n != 1 else ''}" if n else "No job of this window to cancel",
            4000,
        )
        self.ended.emit()
        return n

    def can_cancel(self, job: Any) -> bool:
        return int(getattr(job, "owner_pid", -1)) == os.getpid() or callable(
            getattr(self._session.store, "request_cancel", None)
        )

    def close(self) -> None:
        """After the pool is done: stop the worker processes (or the cluster's client)."""
        self._close_retired()
        if self.processes is not None:
            self.processes.close()

    @property
    def busy(self) -> bool:
        return bool(self._workers) or self._session.runner.pending() > 0

    @property
    def idle(self) -> bool:
        """No worker is running or waiting to report."""
        return not self._workers and self.pool.activeThreadCount() == 0

    @Slot(object)
    def _on_worker_finished(self, result: BatchResult) -> None:
        self._start_workers()
        b = result.batch
        self.message.emit(
            f"Finished {b.source}: {', '.join(b.features)} ({result.seconds:.1f} s)", 5000
        )
        self.finished.emit(result)
        self.ended.emit()

    @Slot(str, str)
    def _on_worker_failed(self, job_id: str, message: str) -> None:
        if job_id:  # a pass failed (its worker goes on); not a worker ended by a bug, which is
            self._start_workers()  # not replaced: it would fail again, and again
        self.message.emit(f"Analysis failed: {message}", 0)
        self.failed.emit(job_id, message)
        self.ended.emit()

    @Slot(str)
    def _on_worker_cancelled(self, job_id: str) -> None:
        self._start_workers()
        self.message.emit("Job cancelled", 4000)
        self.ended.emit()

    @Slot(object)
    def _on_worker_done(self, worker: AnalysisWorker) -> None:
        self._workers.discard(worker)
        self._close_retired()
        self.ended.emit()
