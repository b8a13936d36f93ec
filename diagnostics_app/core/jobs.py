"""Jobs: a priority queue of analysis passes, their execution, progress and cancellation.

Planned calculator jobs that share (source, profile, params) are batched into one pass (one
decode, one STFT). Each pass has a job record in the store from the moment it is queued, so any
process that opens the project (GUI or CLI) sees it as ``queued`` and then ``running`` with its
progress. The same code runs synchronously in tests (:meth:`JobRunner.run_all` with
``workers=0``) and on threads in the CLI and GUI; nothing is ever faked.

A pass's fingerprints are built from a snapshot of its inputs taken when it starts; the result
is committed with exactly those fingerprints, so if the tempo map or a profile is edited while
it runs, the result shows as ``stale`` with reasons, never ``ok``.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from diagnostics_app.core import fingerprint as fpr
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.engine import CancelToken
from diagnostics_app.core.errors import Cancelled, DiagnosticsError, StoreError
from diagnostics_app.core.events import EntriesCommitted, JobUpdated, SessionEvents
from diagnostics_app.core.partial_work import is_note
from diagnostics_app.core.pass_work import PassRun as PassRun
from diagnostics_app.core.pass_work import PassRunner as PassRunner
from diagnostics_app.core.pass_work import PassWork as PassWork
from diagnostics_app.core.pass_work import Report as Report
from diagnostics_app.core.pass_work import compute_work as compute_work
from diagnostics_app.core.pass_work import run_work as run_work
from diagnostics_app.core.pass_work import run_works as run_works
from diagnostics_app.core.planner import PlannedJob, group_passes
from diagnostics_app.core.project import Project
from diagnostics_app.core.resolve import Invalid, check_rate
from diagnostics_app.core.store import EntryKey, FeatureStore, JobRecord, process_start_token

PRIORITY_USER = 0  # regenerate selected: first
PRIORITY_BATCH = 10  # calculate missing / regenerate stale / CLI
PRIORITY_AUTO = 20  # auto-analysis of missing rows: last

STOP_WAIT_S = 60.0  # an interrupted run_all waits this long at most for running passes to stop
PROGRESS_INTERVAL = 0.1  # seconds between job-record progress writes


@dataclass
class Batch:
    """One queued pass: its job record id and the planned calculator jobs it runs."""

    job_id: str
    jobs: list[PlannedJob]
    priority: int
    origin: str
    cancel: CancelToken = field(default_factory=CancelToken)
    # what a partial attempt did ("partial: 0:01.200 of 60:00.000 recomputed"), reported as
    # a progress label (core.partial_work.is_note) and kept as the done job's message
    note: str | None = None

    @property
    def source(self) -> str:
        return self.jobs[0].source

    @property
    def calculators(self) -> tuple[str, ...]:
        return tuple(j.calculator for j in self.jobs)

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(f for j in self.jobs for f in j.features)

    @property
    def keys(self) -> tuple[EntryKey, ...]:
        """The entries this pass writes: the rows whose cells its events concern."""
        return tuple(j.entry_key for j in self.jobs)


@dataclass(frozen=True)
class BatchResult:
    batch: Batch
    status: str  # done | failed | cancelled
    seconds: float
    message: str | None

    def job_json(self) -> list[dict[str, Any]]:
        return [
            {
                **job.to_json(),
                "status": self.status,
                "seconds": round(self.seconds, 4),
                "message": self.message,
            }
            for job in self.batch.jobs
        ]


class JobRunner:
    """Owns the queue of this process's passes. Thread-safe: ``enqueue`` and ``cancel`` from
    any thread; ``run_next`` from worker threads (QThreadPool in the GUI, a pool in the CLI).

    Publishes :class:`~core.events.JobUpdated` for every state and progress change of its
    passes, and :class:`~core.events.EntriesCommitted` when a pass has committed, on
    ``events`` (on the thread that made the change)."""

    def __init__(
        self,
        project: Callable[[], Project],
        registry: Registry,
        store: FeatureStore,
        facts: Callable[[str], fpr.AudioFacts],
        events: SessionEvents | None = None,
    ) -> None:
        self.events = events if events is not None else SessionEvents()
        self._project = project
        self.registry = registry
        self.store = store
        self._facts = facts
        self._lock = threading.Lock()
        self._heap: list[tuple[int, int, Batch]] = []
        self._counter = itertools.count()
        self._running: dict[str, Batch] = {}
        self._queued: dict[str, Batch] = {}
        self._in_flight = 0  # batches taken whose execute() has not returned yet
        self._ended = threading.Condition(self._lock)  # notified when one returns
        self._stopping = False  # run_all is being interrupted: take() hands out nothing
        # recompute only the frames an edit touches where possible (core.partial_work);
        # False: every pass whole (the other side of bench/partial.py)
        self.partial = True

    # -- queueing ---------------------------------------------------------------------------

    def enqueue(
        self, jobs: Sequence[PlannedJob], priority: int = PRIORITY_BATCH, origin: str = "cli"
    ) -> list[Batch]:
        """Queue passes for ``jobs``; a job already queued here is not queued twice. Their job
        records are written in one transaction: when the store refuses it (a full disk, a
        locked index), no pass is queued and the error is raised."""
        batches = self._enqueue(jobs, priority, origin)
        for batch in batches:  # outside the lock: subscribers may ask the runner
            self._notify(batch, "queued", None, "queued")
        return batches

    def _enqueue(self, jobs: Sequence[PlannedJob], priority: int, origin: str) -> list[Batch]:
        with self._lock:
            queued_keys = {j.entry_key for b in self._queued.values() for j in b.jobs}
            groups = group_passes(j for j in jobs if j.entry_key not in queued_keys)
            if not groups:
                return []
            ids = _new_ids(len(groups))
            fresh = [
                Batch(job_id, list(group), priority, origin)
                for job_id, group in zip(ids, groups, strict=True)
            ]
            now = time.time()
            pid = os.getpid()
            start = process_start_token(pid)
            # every record in one transaction (20,000 passes of a library: one commit, not
            # 20,000): all are queued, or, when the store refuses, none is and the error says so
            self.store.add_jobs(
                [
                    JobRecord(
                        id=batch.job_id,
                        source_id=batch.source,
                        calculator_ids=batch.calculators,
                        profile=batch.jobs[0].profile,
                        params=batch.jobs[0].params_key,
                        features=batch.features,
                        state="queued",
                        progress=None,
                        label="queued",
                        message=None,
                        origin=origin,
                        owner_pid=pid,
                        owner_start=start,
                        created=now,
                        updated=now,
                    )
                    for batch in fresh
                ]
            )
            for batch in fresh:
                self._queued[batch.job_id] = batch
                # released when the pass ends: other places see this process alive meanwhile
                # (a count: only the first hold writes, the later ones only add one)
                self.store.lease.hold()
                heapq.heappush(self._heap, (priority, next(self._counter), batch))
            return fresh

    def pending(self) -> int:
        with self._lock:
            return len(self._queued)

    def active(self) -> list[Batch]:
        with self._lock:
            return list(self._running.values()) + list(self._queued.values())

    def cancel(self, job_id: str) -> bool:
        """Cancel a pass: this process's directly, another process's through the store (it
        stops at its next progress report). True if there was such an active job."""
        with self._lock:
            batch = self._queued.pop(job_id, None)
            running = self._running.get(job_id)
        if batch is not None:
            self._cancel_queued([batch])
            return True
        if running is not None:
            running.cancel.cancel()
            return True
        return self.store.request_cancel(job_id)

    def cancel_all(self) -> int:
        """Cancel every pass of this process: the queued ones' records in one transaction (a
        queue of 20,000 passes: one commit), the running ones at their next block."""
        with self._lock:
            queued = list(self._queued.values())
            self._queued.clear()
            self._heap.clear()  # only the passes just taken out were left in it
            running = list(self._running.values())
        for batch in running:  # first: a store refusing the queued ones' records stops nothing
            batch.cancel.cancel()
        self._cancel_queued(queued)
        return len(queued) + len(running)

    def _cancel_queued(self, batches: Sequence[Batch]) -> None:
        """End passes taken out of the queue before they started (a store that refuses their
        records raises, after they were ended and announced: they will not run either way)."""
        if not batches:  # nothing to record (a close with an empty queue writes nothing)
            return
        for batch in batches:
            self.store.lease.release()
            batch.cancel.cancel()
        message = "cancelled before it started"
        try:
            self.store.update_jobs(
                [b.job_id for b in batches],
                state="cancelled",
                progress=None,
                label="cancelled",
                message=message,
            )
        finally:
            for batch in batches:
                self._notify(batch, "cancelled", None, "cancelled", message)

    # -- running ----------------------------------------------------------------------------

    def take(self) -> Batch | None:
        with self._lock:
            while self._heap and not self._stopping:
                _, _, batch = heapq.heappop(self._heap)
                if self._queued.pop(batch.job_id, None) is not None:
                    self._running[batch.job_id] = batch
                    self._in_flight += 1
                    return batch
        return None

    def take_group(self) -> list[Batch]:
        """The next queued pass and every other queued pass of the same source (whatever its
        priority or parameters): they run over one decode (:meth:`execute_group`)."""
        with self._lock:
            while self._heap and not self._stopping:
                _, _, first = heapq.heappop(self._heap)
                if self._queued.pop(first.job_id, None) is None:
                    continue  # cancelled while queued, or taken with an earlier group
                group = [first]
                for job_id, batch in list(self._queued.items()):
                    if batch.source == first.source:
                        del self._queued[job_id]  # its heap item is skipped when popped
                        group.append(batch)
                for batch in group:
                    self._running[batch.job_id] = batch
                self._in_flight += len(group)
                return group
        return []

    def run_next(self, run: PassRun | None = None) -> BatchResult | None:
        batch = self.take()
        return None if batch is None else self.execute(batch, run)

    def run_next_group(self) -> list[BatchResult]:
        return self.execute_group(self.take_group())

    def run_all(self, workers: int = 0, run: PassRun | None = None) -> list[BatchResult]:
        """Run every queued pass: in this thread (``workers=0``) or on a pool of threads. Here
        the passes of one source run together, over one decode (:meth:`take_group`); handed
        to ``run`` (a cluster: see :meth:`execute`), each pass runs on its own, and the
        ``workers`` threads bound the passes in flight."""
        if workers <= 1:
            results = []
            if run is not None:
                while (result := self.run_next(run)) is not None:
                    results.append(result)
                return results
            try:
                while group := self.take_group():
                    results.extend(self.execute_group(group))
            except BaseException:
                self.cancel_all()  # Ctrl+C: the queued passes too, as on threads (below)
                raise
            return results
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        try:
            if run is not None:
                futures = [pool.submit(self.run_next, run) for _ in range(self.pending())]
                return [r for f in futures if (r := f.result()) is not None]
            # a task per queued pass, though one takes every queued pass of its source: the
            # surplus tasks find the queue empty and return nothing
            grouped = [pool.submit(self.run_next_group) for _ in range(self.pending())]
            return [r for f in grouped for r in f.result()]
        except BaseException:
            # Ctrl+C (or any error) while waiting: nothing more is taken, the queued passes
            # are cancelled and the running ones stop at their next block, instead of the
            # pool finishing them all; their records are final when this returns (a worker
            # thread the interrupt left half-started is not joined by the pool: wait for it)
            with self._lock:
                self._stopping = True
            try:
                self.cancel_all()
                pool.shutdown(wait=True, cancel_futures=True)
                with self._ended:
                    self._ended.wait_for(lambda: self._in_flight <= 0, timeout=STOP_WAIT_S)
            finally:
                with self._lock:
                    self._stopping = False
            raise
        finally:
            pool.shutdown(wait=True)

    def execute(self, batch: Batch, run: PassRun | None = None) -> BatchResult:
        """Run one pass and commit its entries; never raises for a user-caused failure.
        ``run``: where the pass's work runs (None: on this thread, :func:`run_work`; the GUI
        hands it to a worker process, :mod:`~diagnostics_app.core.pass_process`). It hands
        its progress to the callback (which writes the record and publishes it, here), stops
        when the token is cancelled, and raises :class:`Cancelled` or an error."""
        try:
            return self._execute(batch, run)
        finally:
            with self._ended:
                self._in_flight = max(0, self._in_flight - 1)
                self._ended.notify_all()

    def execute_group(self, batches: Sequence[Batch]) -> list[BatchResult]:
        """Run passes of one source (from :meth:`take_group`) over one decode, in this thread,
        and commit each one's entries; one :class:`BatchResult` per pass, in order. Each pass
        keeps its own record, progress and token: a pass cancelled or failing ends alone."""
        results: dict[str, BatchResult] = {}
        group_start = time.perf_counter()
        try:
            starts = {b.job_id: group_start for b in batches}
            ready: list[tuple[Batch, PassWork]] = []
            for batch in batches:
                try:
                    ready.append((batch, self._start(batch)))
                except Exception as exc:
                    results[batch.job_id] = self._failed(batch, starts[batch.job_id], exc)
            at_end: set[str] = set()  # passes that reported their end: all committed
            reports = [self._reporter(batch, at_end) for batch, _ in ready]
            errors: list[Exception | None]
            try:
                errors = run_works(
                    self.store,
                    self.registry,
                    [w for _, w in ready],
                    reports,
                    [b.cancel for b, _ in ready],
                    partial=self.partial,
                )
            except Exception as exc:  # a bug must reach the UI as failed rows, not hung jobs
                errors = [exc] * len(ready)
            except BaseException:
                # Ctrl+C in this thread (analyze without --jobs): the engine aborted the passes
                # still running; their records end now, as on threads, not "running" until
                # another open reaps them as failed (a pass that reported its end is done)
                for batch, _ in ready:
                    start = starts[batch.job_id]
                    if batch.job_id in at_end:
                        self._finish(batch, "done", start, None)
                    else:
                        self._failed(batch, start, Cancelled())
                raise
            for (batch, _), error in zip(ready, errors, strict=True):
                start = starts[batch.job_id]
                results[batch.job_id] = (
                    self._finish(batch, "done", start, batch.note)
                    if error is None
                    else self._failed(batch, start, error)
                )
        finally:
            with self._ended:
                self._in_flight = max(0, self._in_flight - len(batches))
                self._ended.notify_all()
        # the passes ran together, so their own times overlap: each gets an even share of
        # the group's time, and a sum over passes counts nothing twice (``analyze --json``)
        share = (time.perf_counter() - group_start) / max(1, len(batches))
        return [dataclasses.replace(results[b.job_id], seconds=share) for b in batches]

    def _start(self, batch: Batch) -> PassWork:
        """Marks the pass running and prepares it; raises Cancelled when it was cancelled."""
        self._mark(batch, "running", 0.0, "starting")
        if self.store.cancel_requested(batch.job_id):  # cancelled by another process
            batch.cancel.cancel()
        batch.cancel.raise_if_cancelled()
        return self._work(batch)

    def _reporter(self, batch: Batch, ended: set[str] | None = None) -> Report:
        """Progress into the pass's record; ``ended`` collects the passes that reported their
        end (every entry committed: see ``pass_work._progress``)."""

        def report(fraction: float, label: str) -> None:
            if ended is not None and fraction >= 1.0:
                ended.add(batch.job_id)
            if is_note(label):
                batch.note = label
            self._mark(batch, "running", fraction, label)

        return report

    def _failed(self, batch: Batch, start: float, exc: Exception) -> BatchResult:
        """The final record of a pass that raised: cancelled, failed, or failed by a bug."""
        if isinstance(exc, Cancelled):
            return self._finish(batch, "cancelled", start, "cancelled")
        if isinstance(exc, DiagnosticsError):
            return self._finish(batch, "failed", start, str(exc))
        # a bug must reach the UI as a failed row, not a hung job
        message = f"internal error: {type(exc).__name__}: {exc}"
        return self._finish(batch, "failed", start, message)

    def _execute(self, batch: Batch, run: PassRun | None) -> BatchResult:
        start = time.perf_counter()
        try:
            work = self._start(batch)
            if run is None:
                run_work(
                    self.store,
                    self.registry,
                    work,
                    self._reporter(batch),
                    batch.cancel,
                    partial=self.partial,
                )
            else:
                run(work, self._reporter(batch), batch.cancel)
        except Exception as exc:
            return self._failed(batch, start, exc)
        return self._finish(batch, "done", start, batch.note)

    def _work(self, batch: Batch) -> PassWork:
        """The pass as a value, from the project as it is now (the snapshot it computes from).

        Resolved as its rows are (core.resolve), in the same order: the calculator and the
        parameters, the audio's facts, the sample-rate checks; so a pass fails with the very
        message its rows show as invalid (or failed)."""
        project = self._project()
        first = batch.jobs[0]
        resolved = []
        for job in batch.jobs:
            outcome = job.resolve(project, self.registry)
            if isinstance(outcome, Invalid):
                raise DiagnosticsError(outcome.message)
            resolved.append(outcome)
        params = resolved[0].params  # the jobs of a pass share (source, profile, params)
        calcs = [r.calculator for r in resolved]
        facts = self._facts(first.source)
        problem = check_rate(calcs, params, facts.sample_rate)
        if problem is not None:
            raise DiagnosticsError(problem.message)
        return PassWork(
            job_id=batch.job_id,
            source=first.source,
            profile=first.profile,
            params_key=first.params_key,
            fingerprints={c.id: fpr.build(c, params, facts, project.tempo_map) for c in calcs},
            versions={c.id: c.version for c in calcs},
            wanted={j.calculator: frozenset(j.features) for j in batch.jobs},
            path=str(project.audio_path(first.source)),
            params=params,
            tempo=project.tempo_map,
            calculators=tuple(c.id for c in calcs),
            progress_interval=PROGRESS_INTERVAL,
            # the runner's switch holds wherever the pass runs (a worker process too)
            partial=frozenset(j.calculator for j in batch.jobs if j.partial and self.partial),
        )

    # -- internals --------------------------------------------------------------------------

    def _finish(self, batch: Batch, status: str, start: float, message: str | None) -> BatchResult:
        with self._lock:
            self._running.pop(batch.job_id, None)
        self.store.lease.release()
        progress = 1.0 if status == "done" else None
        try:
            self.store.update_job(
                batch.job_id, state=status, progress=progress, label=status, message=message
            )
            # a request may also arrive after the last block (the pass is done then): no
            # request outlives its pass
            if status == "cancelled" or self.store.cancel_requested(batch.job_id):
                self.store.clear_cancel_request(batch.job_id)
        except StoreError as exc:
            # the record cannot be written (full or read-only disk): report the pass anyway;
            # other processes will see the record reaped when this process ends
            status, message = ("failed", f"{message or status}; {exc}")
        self._notify(batch, status, progress, status, message)
        if status == "done":
            self.events.entries_committed.emit(EntriesCommitted(frozenset(batch.keys), "job"))
        return BatchResult(batch, status, time.perf_counter() - start, message)

    def _mark(self, batch: Batch, state: str, progress: float | None, label: str) -> None:
        if self.store.update_job(batch.job_id, state=state, progress=progress, label=label):
            self._notify(batch, state, progress, label)  # not for a pass already finished

    def _notify(
        self,
        batch: Batch,
        state: str,
        progress: float | None,
        label: str,
        message: str | None = None,
    ) -> None:
        self.events.job_updated.emit(
            JobUpdated(batch.job_id, batch.keys, state, progress, label, message)
        )


def _new_ids(n: int) -> list[str]:
    """``n`` fresh job ids, 48 random bits each as ``uuid4().hex[:12]`` gave (job records of
    every process share one table), from one read of the system's randomness."""
    raw = os.urandom(6 * n).hex()
    return [raw[i : i + 12] for i in range(0, 12 * n, 12)]


def summarise(results: Iterable[BatchResult]) -> list[dict[str, Any]]:
    return [item for r in results for item in r.job_json()]
