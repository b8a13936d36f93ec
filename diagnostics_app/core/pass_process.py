"""Analysis passes in worker processes, for the desktop app: a pass's numpy and Python work then
never holds the GIL of the process whose GUI thread must answer within milliseconds.

:class:`ProcessPasses` is a :data:`~diagnostics_app.core.jobs.PassRun`: the process's
:class:`~diagnostics_app.core.jobs.JobRunner` still queues the pass, writes its ``queued`` and
``running`` records, prepares it from the project snapshot taken when it starts
(:class:`~diagnostics_app.core.jobs.PassWork`, a value) and writes its final record; only
:func:`~diagnostics_app.core.jobs.run_work` runs in a worker process, against its own connection
to the same store (the store has several writer processes anyway). The record stays owned by
this process (origin, owner pid), so the rest sees the same job as from a thread.

- Progress: the worker sends ``(job id, fraction, label)`` on a queue; a forwarding thread here
  hands it to the runner, which writes the record and publishes :class:`JobUpdated` as for a
  thread pass (the store watcher leaves this process's jobs alone).
- Cancel: the runner's token is watched while the pass runs; a cancel becomes the store's cancel
  request, which the worker checks at every block.
- A worker that dies (crash, killed) fails its pass (a failed row, never a hang); the pool is
  then replaced for the next passes.

Processes are started with ``forkserver`` (``spawn`` where there is none), never ``fork``: the
parent runs Qt threads.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import traceback
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from typing import Any

from diagnostics_app.core import worker_start
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.engine import CancelToken
from diagnostics_app.core.errors import Cancelled, DiagnosticsError
from diagnostics_app.core.jobs import PassWork, Report, run_work
from diagnostics_app.core.store import FeatureStore

CANCEL_POLL_S = 0.05  # how often a waiting pass looks at its cancel token
END_WAIT_S = 10.0  # how long a finished pass waits for its last progress reports to be handed on
NICE = 10  # the worker processes' niceness increment


class WorkerError(DiagnosticsError):
    """A bug inside a worker process's pass, or the worker process died."""


def context() -> BaseContext:
    """``forkserver`` where available (fast starts, no Qt state copied), else ``spawn``."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


# --- the worker process side -----------------------------------------------------------------

_stores: dict[str, FeatureStore] = {}
_registry: list[Registry] = []


def _child_run(cache_dir: str, work: PassWork) -> tuple[str, str | None]:
    """Run one pass in this worker process: ("done" | "cancelled" | "failed", message)."""
    try:
        store = _stores.get(cache_dir)
        if store is None:
            store = _stores[cache_dir] = FeatureStore.open(cache_dir)
        if not _registry:
            _registry.append(Registry.default())

        def report(fraction: float, label: str) -> None:  # the parent writes the record
            worker_start.progress.put((work.job_id, fraction, label))

        # this process writes the pass's files under its own pid: its lease must stay fresh
        # while it does, or a sweep elsewhere would take the live files for a dead owner's
        store.lease.hold()
        try:
            run_work(store, _registry[0], work, report, CancelToken())
        finally:
            store.lease.release()
    except Cancelled:
        return "cancelled", None
    except DiagnosticsError as exc:
        return "failed", str(exc)
    except Exception as exc:  # a bug: the same message as from a thread pass
        traceback.print_exc()
        return "failed", f"internal error: {type(exc).__name__}: {exc}"
    finally:
        worker_start.progress.put((work.job_id, None, ""))  # the last report of this pass
    return "done", None


def _crash(cache_dir: str, work: PassWork) -> tuple[str, str | None]:  # pragma: no cover
    """For tests: a worker process that dies in the middle of a pass."""
    os._exit(3)


# --- this process's side ---------------------------------------------------------------------


class ProcessPasses:
    """Runs passes of ``store`` in up to ``workers`` worker processes, started when the first
    pass comes. Call :meth:`close` when done (it waits for the workers to exit)."""

    def __init__(self, store: FeatureStore, workers: int, target: Any = _child_run) -> None:
        self._store = store
        self._cache_dir = str(store.root)
        self._workers = max(1, workers)
        self._target = target  # the function run in the worker (tests swap in a crash)
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._queue: Any = None
        self._forwarder: threading.Thread | None = None
        self._reports: dict[str, tuple[Report, threading.Event]] = {}
        self._closed = False

    def __call__(self, work: PassWork, report: Report, cancel: CancelToken) -> None:
        ended = threading.Event()
        with self._lock:
            self._reports[work.job_id] = (report, ended)
        pool: ProcessPoolExecutor | None = None
        try:
            pool = self._pool()
            future = pool.submit(self._target, self._cache_dir, work)
            status, message = self._wait(future, work.job_id, cancel)
            ended.wait(END_WAIT_S)  # its progress is shown before its end
        except BrokenProcessPool as exc:
            self._reset(pool)
            raise WorkerError(f"the analysis process ended unexpectedly ({exc})") from None
        except (CancelledError, RuntimeError) as exc:  # its pool was replaced meanwhile
            raise WorkerError(f"the analysis process pool was restarted ({exc!r})") from None
        finally:
            with self._lock:
                self._reports.pop(work.job_id, None)
        if status == "cancelled":
            raise Cancelled()
        if status == "failed":
            raise WorkerError(message or "failed")

    def _wait(
        self, future: Future[tuple[str, str | None]], job_id: str, cancel: CancelToken
    ) -> tuple[str, str | None]:
        asked = False
        while True:
            try:
                return future.result(timeout=CANCEL_POLL_S)
            except FutureTimeout:
                if cancel.cancelled and not asked:
                    asked = True
                    self._store.request_cancel(job_id)  # the worker stops at its next block

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise DiagnosticsError("the analysis processes are shut down")
            if self._executor is None:
                ctx = context()
                if self._queue is None:
                    self._queue = ctx.Queue()
                    self._forwarder = threading.Thread(
                        target=self._forward, name="pass-progress", daemon=True
                    )
                    self._forwarder.start()
                self._executor = ProcessPoolExecutor(
                    self._workers,
                    mp_context=ctx,
                    initializer=worker_start.init,
                    initargs=(self._queue, NICE),
                )
            return self._executor

    def _reset(self, broken: ProcessPoolExecutor | None) -> None:
        """Drop the broken pool ``broken`` (only it: every pass that ran on it calls this, and a
        new pool may already serve newer passes): the next pass starts a new one."""
        with self._lock:
            if broken is None or self._executor is not broken:
                return
            self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)

    def _forward(self) -> None:
        """The forwarding thread: workers' progress reports to the runner's callbacks."""
        while True:
            item = self._queue.get()
            if item is None:
                return
            job_id, fraction, label = item
            with self._lock:
                entry = self._reports.get(job_id)
            if entry is None:
                continue
            report, ended = entry
            if fraction is None:
                ended.set()
                continue
            try:
                report(fraction, label)
            except Exception:  # a subscriber's bug must not stop the other passes' reports
                traceback.print_exc()

    @property
    def started(self) -> bool:
        """Worker processes were started (by a pass)."""
        return self._executor is not None

    def close(self) -> None:
        """Stop the workers (after the passes running now) and the forwarding thread."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if self._forwarder is not None:
            self._queue.put(None)
            self._forwarder.join()
            self._forwarder = None
            self._queue.close()
            self._queue.join_thread()
