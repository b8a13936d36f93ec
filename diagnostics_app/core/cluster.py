"""Analysis passes on a Dask cluster (``analyze --scheduler ADDR`` or ``--workers N``).

The design the Dask documentation recommends for work per file, with the store's rules:

- The client plans: this process's :class:`~diagnostics_app.core.jobs.JobRunner` reads the
  index, queues the passes with their job records (so other processes see them queued, then
  running) and prepares each one as a :class:`~diagnostics_app.core.jobs.PassWork` value.
  :class:`ClusterPasses` is its :data:`~diagnostics_app.core.jobs.PassRun`: one task per pass
  (``Client.submit``, retried on an exception), and the runner's threads bound the passes in
  flight (each waits for its own future).
- A worker (:func:`analyse_on_worker`) reads the audio from the storage the cluster shares,
  checks its content digest against the one the pass was planned for (a different file is a
  failed pass, never data filed under the wrong fingerprint), runs the same engine pass as a
  local job into a :class:`~diagnostics_app.core.store.staged.StagingSink` and returns the
  small manifest. It never opens the index: SQLite is never written over a network.
- The client checks the staged files against the manifest and commits them; a pass that
  fails, is cancelled or whose worker died has its staged files deleted, and nothing of it is
  committed (no ``ok`` row without data). A worker that dies is replaced by its nanny and the
  scheduler runs its pass again (``distributed.scheduler.allowed-failures`` times), then the
  pass fails with the scheduler's ``KilledWorker``.
- Progress: the worker logs ``(job id, fraction, label)`` events on a topic of this run; the
  waiting thread hands the latest to the runner, which writes the record as for a local pass.
- Cancel (Ctrl+C, the GUI's Cancel, another process's cancel request in the store): the
  waiting thread sets the pass's ``distributed.Event``, which the worker checks between blocks
  (at most every :data:`CANCEL_CHECK_S`), then waits for the worker to stop.

Nothing of Dask is imported until a cluster is used (``import distributed`` happens in the
functions), so the rest of the app runs without it installed.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from diagnostics_app.core import fingerprint as fpr
from diagnostics_app.core.audio import hash_file
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.compare import record_regenerations
from diagnostics_app.core.engine import CancelToken
from diagnostics_app.core.errors import Cancelled, DiagnosticsError
from diagnostics_app.core.jobs import PassWork, Report, compute_work
from diagnostics_app.core.pass_work import remember_blocks
from diagnostics_app.core.store import FeatureStore
from diagnostics_app.core.store.staged import StagedPass, StagingArea, StagingSink

POLL_S: Final = 0.05  # how often a waiting thread looks at its future, token and the store
CANCEL_CHECK_S: Final = 0.2  # how often a worker asks the scheduler whether it was cancelled
STOP_WAIT_S: Final = 30.0  # how long a cancelled pass waits for its worker to stop
CONNECT_S: Final = 10.0  # how long to try reaching a scheduler
RETRIES: Final = 1  # a task that raised (e.g. shared storage hiccup) runs once more
INSTALL_HINT: Final = "pip install 'diagnostics-app[cluster]'"
_MAX_PORT: Final = 65535
_MAX_HOST: Final = 253  # characters of a DNS name
_MAX_LABEL: Final = 63  # characters between two dots of one
_ADDRESS: Final = re.compile(r"(?:(?:tcp|tls|ws|wss)://)?(?:[\w.-]+|\[[0-9a-fA-F:.]+\]):\d{1,5}")


class ClusterError(DiagnosticsError):
    """No cluster (Dask missing, scheduler unreachable), or a pass's worker died."""


@dataclass(frozen=True)
class ClusterTask:
    """What a worker gets for one pass: a plain value (pickled to the worker)."""

    work: PassWork
    area: StagingArea
    stage_id: str
    topic: str  # progress events
    cancel_event: str  # the name of the pass's distributed.Event


@dataclass(frozen=True)
class TaskOutcome:
    status: str  # done | cancelled | failed
    message: str | None
    manifest: StagedPass | None


# --- the worker side -------------------------------------------------------------------------

_registry: list[Registry] = []


def check_digest(work: PassWork) -> None:
    """Refuse to analyse audio other than the file the pass was planned for (a shared folder
    out of sync, a path that names another file on this machine)."""
    expected = {fp.get(fpr.AUDIO_CONTENT) for fp in work.fingerprints.values()}
    got = hash_file(work.path)
    if got not in expected:
        want = ", ".join(sorted(str(e) for e in expected))
        raise DiagnosticsError(
            f"{work.path}: the audio on worker {socket.gethostname()} differs from the file the "
            f"pass was planned for (digest {got}, expected {want}); refused"
        )


def analyse_on_worker(task: ClusterTask) -> TaskOutcome:
    """Run one pass on a Dask worker: check the audio's digest, stage its files, return the
    manifest. User-caused failures are returned (not retried); anything else raises, so the
    scheduler retries it (see :data:`RETRIES`)."""
    from distributed import Event, get_worker

    worker = get_worker()
    event = Event(task.cancel_event)
    work = task.work
    last = [time.monotonic()]

    def report(fraction: float, label: str) -> None:
        worker.log_event(task.topic, [work.job_id, float(fraction), str(label)])

    def asked() -> bool:
        now = time.monotonic()
        if now - last[0] < CANCEL_CHECK_S:
            return False
        last[0] = now
        return bool(event.is_set())

    if not _registry:
        _registry.append(Registry.default())
    try:
        if event.is_set():
            raise Cancelled()
        check_digest(work)
        sink = StagingSink(task.area, task.stage_id)
        compute_work(_registry[0], work, sink, report, CancelToken(), asked)
    except Cancelled:
        return TaskOutcome("cancelled", None, None)
    except DiagnosticsError as exc:
        return TaskOutcome("failed", str(exc), None)
    return TaskOutcome("done", None, sink.manifest())


# --- the client side -------------------------------------------------------------------------


class ClusterPasses:
    """Runs passes of ``store`` on the cluster of ``client`` (a ``distributed.Client``); a
    :data:`~diagnostics_app.core.jobs.PassRun`. ``target``: the function run on the worker
    (tests swap in one that holds or kills its worker)."""

    def __init__(
        self,
        store: FeatureStore,
        client: Any,
        target: Callable[[ClusterTask], TaskOutcome] = analyse_on_worker,
        retries: int = RETRIES,
    ) -> None:
        self._store = store
        self._client = client
        self._target = target
        self._retries = retries
        self._area = store.staging_area()
        self._topic = f"diagnostics-progress-{uuid.uuid4().hex}"
        self._lock = threading.Lock()
        self._latest: dict[str, tuple[float, str]] = {}
        client.subscribe_topic(self._topic, self._on_progress)

    def _on_progress(self, event: tuple[float, Any]) -> None:
        """On the client's event loop: keep only the latest report of each pass."""
        job_id, fraction, label = event[1]
        with self._lock:
            self._latest[str(job_id)] = (float(fraction), str(label))

    def _forward(self, job_id: str, report: Report) -> None:
        with self._lock:
            latest = self._latest.pop(job_id, None)
        if latest is not None and latest[0] < 1.0:
            report(*latest)

    def __call__(self, work: PassWork, report: Report, cancel: CancelToken) -> None:
        stage_id = uuid.uuid4().hex
        # workers run in other working folders: the audio by its absolute path
        work = dataclasses.replace(work, path=os.path.abspath(work.path))
        task = ClusterTask(
            work, self._area, stage_id, self._topic, f"diagnostics-cancel-{work.job_id}-{stage_id}"
        )
        wanted = {c: sorted(f) for c, f in work.wanted.items()}
        try:
            outcome = self._run(task, report, cancel)
            if outcome.status == "cancelled" or cancel.cancelled:
                raise Cancelled()
            if outcome.status == "failed" or outcome.manifest is None:
                raise DiagnosticsError(outcome.message or "failed on the cluster")
            report(1.0, "committing")
            committed = self._store.commit_staged(
                self._area,
                outcome.manifest,
                work.source,
                work.profile,
                work.params_key,
                work.fingerprints,
                work.versions,
            )
            record_regenerations(self._store, committed)  # as a local pass does (run_work)
            remember_blocks(self._store, work)  # its decode was on a worker: one here
        finally:
            # what was not committed, and the parts a killed attempt left (after a retry)
            self._store.discard_staged(self._area, stage_id, wanted)
            with self._lock:
                self._latest.pop(work.job_id, None)

    def _run(self, task: ClusterTask, report: Report, cancel: CancelToken) -> TaskOutcome:
        from distributed import Event

        job_id = task.work.job_id
        future = self._client.submit(
            self._target,
            task,
            key=f"pass-{job_id}-{task.stage_id[:8]}",
            pure=False,
            retries=self._retries,
        )
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        stop_by: float | None = None
        try:
            while True:
                # not future.result(timeout=...): its timeout can race the result inside
                # distributed (an UnboundLocalError instead of either)
                if done.wait(POLL_S):
                    outcome: TaskOutcome = future.result()
                    return outcome
                self._forward(job_id, report)
                if stop_by is None and (cancel.cancelled or self._store.cancel_requested(job_id)):
                    # the worker stops at its next block; its staged files are then deleted
                    cancel.cancel()
                    Event(task.cancel_event, client=self._client).set()
                    stop_by = time.monotonic() + STOP_WAIT_S
                if stop_by is not None and time.monotonic() > stop_by:
                    raise Cancelled()
        except (Cancelled, DiagnosticsError):
            raise
        except Exception as exc:  # the worker died too often, the task raised, the scheduler left
            raise ClusterError(f"the pass failed on the cluster: {_describe(exc)}") from None
        finally:
            if stop_by is not None:
                Event(task.cancel_event, client=self._client).clear()  # the scheduler forgets it
            future.release()

    def close(self) -> None:
        self._client.unsubscribe_topic(self._topic)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class Cluster:
    """A connected client (and the local cluster this process started, if any)."""

    client: Any
    local: Any | None

    @property
    def threads(self) -> int:
        """Worker threads in the cluster now (at least 1)."""
        return max(1, sum(self._client_nthreads().values()))

    def _client_nthreads(self) -> dict[str, int]:
        return dict(self.client.nthreads())

    def in_flight(self) -> int:
        """How many passes to keep submitted: two per worker thread (one running, one ready
        to start the moment it ends), and at least two."""
        return max(2, 2 * self.threads)


def check_address(scheduler: str) -> None:
    """Refuse what is not a scheduler address (before a ``Client`` is given it: it fails, then
    fails again at exit with a traceback)."""
    if _ADDRESS.fullmatch(scheduler) is None:
        raise ClusterError(f"{scheduler!r}: not a scheduler address (expected tcp://HOST:PORT)")
    host, _, port = scheduler.split("://")[-1].rpartition(":")
    if int(port) > _MAX_PORT:
        raise ClusterError(f"{scheduler!r}: port {port} is above {_MAX_PORT}")
    # what DNS allows; a longer name fails deep in Dask, whose client then times out again at
    # exit with a traceback
    if not host.startswith("[") and (
        len(host) > _MAX_HOST or any(len(label) > _MAX_LABEL for label in host.split("."))
    ):
        raise ClusterError(
            f"{scheduler!r}: not a host name (at most {_MAX_HOST} characters, "
            f"{_MAX_LABEL} between dots)"
        )


# A local cluster of more processes than this only fights over the CPUs (and asking for a
# billion, a typo, would fork until the machine gives out); more needs a real cluster.
LOCAL_WORKERS_PER_CPU: Final = 4


def check_local_workers(workers: int) -> None:
    """Refuse a local cluster size below 1 or above :data:`LOCAL_WORKERS_PER_CPU` per CPU;
    the message starts with the number (front ends put their flag's name before it)."""
    limit = LOCAL_WORKERS_PER_CPU * (os.cpu_count() or 1)
    if workers < 1:
        raise ClusterError(f"{workers}: must be at least 1")
    if workers > limit:
        raise ClusterError(
            f"{workers}: at most {limit} local worker processes ({LOCAL_WORKERS_PER_CPU} per "
            "CPU of this machine); for more, start a Dask cluster and give its scheduler"
        )


def connect(scheduler: str, timeout: float = CONNECT_S) -> Any:
    """A ``distributed.Client`` of the scheduler at ``scheduler``; ClusterError if Dask is
    missing or the scheduler cannot be reached within ``timeout`` s."""
    check_address(scheduler)
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError(f"a Dask cluster needs dask.distributed: {INSTALL_HINT}") from None
    try:
        return Client(scheduler, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {scheduler}: {_describe(exc)}"
        ) from None


class SchedulerPasses:
    """A :data:`~diagnostics_app.core.jobs.PassRun` for a long-lived front end (the desktop
    app's Settings: a scheduler address): it connects at the first pass, on the thread that
    runs it (never the GUI thread), and again at the next pass after a failed connection (that
    pass fails with the reason, one line)."""

    def __init__(self, store: FeatureStore, scheduler: str, timeout: float = CONNECT_S) -> None:
        check_address(scheduler)
        self._store = store
        self.scheduler = scheduler
        self._timeout = timeout
        self._lock = threading.Lock()
        self._client: Any = None
        self._passes: ClusterPasses | None = None

    def __call__(self, work: PassWork, report: Report, cancel: CancelToken) -> None:
        with self._lock:
            if self._passes is None:
                report(0.0, f"connecting to {self.scheduler}")
                self._client = connect(self.scheduler, self._timeout)
                self._passes = ClusterPasses(self._store, self._client)
            passes = self._passes
        passes(work, report, cancel)

    def close(self) -> None:
        with self._lock:
            passes, client, self._passes, self._client = self._passes, self._client, None, None
        if passes is not None:
            passes.close()
        if client is not None:
            client.close()


@contextmanager
def open_cluster(scheduler: str | None = None, workers: int | None = None) -> Iterator[Cluster]:
    """Connect to the scheduler at ``scheduler`` or start a local cluster of ``workers``
    processes (one thread each); closed (and stopped, if local) on exit."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError(f"a Dask cluster needs dask.distributed: {INSTALL_HINT}") from None
    local = None
    if scheduler is not None:
        client = connect(scheduler)
    else:
        check_local_workers(workers or 1)
        try:
            local = LocalCluster(
                n_workers=max(1, workers or 1),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # its HTTP server (health checks) on a free port: never "8787 is in use"
                scheduler_kwargs={"dashboard_address": ":0"},
            )
            client = Client(local, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            if local is not None:
                local.close()
            raise ClusterError(f"cannot start a local Dask cluster: {_describe(exc)}") from None
    try:
        yield Cluster(client, local)
    finally:
        client.close()
        if local is not None:
            local.close()
