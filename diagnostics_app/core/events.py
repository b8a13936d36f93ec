"""What changed, as typed values: the one way news travels from the core to its views.

The core publishes frozen event values on a :class:`SessionEvents` group (psygnal, the event
library napari uses); the GUI and the CLI subscribe. Every event names what changed — a job
and its entry keys, the committed keys, the new project — so no subscriber has to re-read
everything to find out. Two consequences the rest of the code relies on:

- a job's progress (:class:`JobUpdated` with state ``running``) carries its keys, so a view
  updates those progress cells and nothing else: no diagnosis is derived for progress;
- only a change of inputs (:class:`ProjectReplaced`) or of stored data
  (:class:`EntriesCommitted`, :class:`StoreChanged` with a new ``entries`` counter) calls for a
  re-derivation, and the diagnoser's memo then re-evaluates only the affected rows.

Threads: events are emitted on whichever thread made the change (a job's worker thread, the
store watcher's thread, the GUI thread for edits). Subscribers must not assume the GUI thread;
the Qt layer switches threads at one boundary (``qt/events_bridge.py``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from psygnal import Signal, SignalGroup

from diagnostics_app.core.project import Project
from diagnostics_app.core.store import (
    EntryKey,
    FeatureStore,
    JobRecord,
    StoreVersion,
    process_start_token,
)


@dataclass(frozen=True)
class ProjectReplaced:
    """The project value was swapped: an edit, undo/redo, a reload from disk, a relink."""

    project: Project
    cause: str  # "edit" (undo and redo included) | "reload" | "save"


@dataclass(frozen=True)
class HistoryChanged:
    """The undo stack moved, or the saved state did."""

    undo_text: str | None
    redo_text: str | None
    clean: bool  # at the saved state: the history's clean index (core/history.py)


@dataclass(frozen=True)
class EntriesCommitted:
    """This process changed stored entries: a pass committed, a prune, a restore, an eviction."""

    keys: frozenset[EntryKey]
    cause: str  # "job" | "prune" | "restore" | "evict"


@dataclass(frozen=True)
class JobUpdated:
    """A pass of this process (or, via the watcher, of another) changed state or progress."""

    job_id: str
    keys: tuple[EntryKey, ...]  # the entries the pass writes: the rows whose cells change
    state: str  # a job state of core.states
    progress: float | None  # 0..1 while running; None when unknown
    label: str
    message: str | None = None


@dataclass(frozen=True)
class StoreChanged:
    """The store's change counters moved: seen by the watcher, whoever wrote (any process)."""

    before: StoreVersion | None
    after: StoreVersion
    # the active jobs of every process, read by the watcher when the jobs counter moved (so
    # no view reads the job table itself); None when only entries changed
    active_jobs: tuple[JobRecord, ...] | None = None

    @property
    def entries_changed(self) -> bool:
        return self.before is None or self.before.entries != self.after.entries

    @property
    def jobs_changed(self) -> bool:
        return self.before is None or self.before.jobs != self.after.jobs


class SessionEvents(SignalGroup):
    """The typed signals of one open session. Each carries exactly one event value."""

    project_replaced = Signal(ProjectReplaced)
    history_changed = Signal(HistoryChanged)
    entries_committed = Signal(EntriesCommitted)
    job_updated = Signal(JobUpdated)
    store_changed = Signal(StoreChanged)


def job_event(record: JobRecord) -> JobUpdated:
    """A job record (any process's) as the event its owner would have published."""
    return JobUpdated(
        record.id,
        record.entry_keys(),
        record.state,
        record.progress,
        record.label,
        record.message,
    )


class StoreWatcher:
    """Notices writes of other processes: one cheap counter read per interval, on its own
    thread (never the GUI thread), publishing :class:`StoreChanged` when the counters moved.

    Another process's work cannot announce itself here, so this one poll remains; it reads
    ``PRAGMA data_version`` and the two counters (:meth:`FeatureStore.version`), and only when
    the jobs counter moved, the active jobs. Jobs of other processes are then published as
    :class:`JobUpdated` (state or progress changed), exactly as their owners would have
    published them here; this process's own jobs are left to its runner, which already did.
    Errors reading the index are handed to ``on_error`` once per distinct message and the
    watcher keeps going (a full disk or a locked index is usually temporary)."""

    def __init__(
        self,
        store: FeatureStore,
        events: SessionEvents,
        interval_s: float = 0.4,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._events = events
        self._interval = interval_s
        self._on_error = on_error
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: StoreVersion | None = None
        self._last_error: str | None = None
        self._owner = (os.getpid(), process_start_token())
        self._foreign: dict[str, JobRecord] = {}  # other processes' active jobs, last seen

    def start(self) -> None:
        if self._thread is None:
            self._last = self._read()
            # the other processes' jobs active now: their end must be published later
            self._foreign = self._foreign_of(self._active() or ())
            self._thread = threading.Thread(target=self._run, name="store-watcher", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def check(self) -> StoreChanged | None:
        """One poll, on the calling thread: publishes and returns the change, if any."""
        now = self._read()
        if now is None or now == self._last:
            return None
        before, self._last = self._last, now
        active: tuple[JobRecord, ...] | None = None
        if before is None or before.jobs != now.jobs:
            active = self._jobs()
            if active is None and before is not None:
                # the job table could not be read (locked, say): keep the old jobs counter so
                # the next poll reads this change again instead of losing it
                self._last = StoreVersion(now.entries, before.jobs)
        event = StoreChanged(before, now, active)
        self._events.store_changed.emit(event)
        return event

    def _foreign_of(self, active: tuple[JobRecord, ...]) -> dict[str, JobRecord]:
        return {r.id: r for r in active if (r.owner_pid, r.owner_start) != self._owner}

    def _active(self) -> tuple[JobRecord, ...] | None:
        try:
            return tuple(self._store.jobs(active_only=True))
        except Exception as exc:
            self._report(str(exc))
            return None

    def _jobs(self) -> tuple[JobRecord, ...] | None:
        """The active jobs; publishes the changes of other processes' jobs."""
        active = self._active()
        if active is None:
            return None
        foreign = self._foreign_of(active)
        try:
            # a foreign job that left the active set ended: its final record says how
            ended = [self._store.job(i) for i in self._foreign if i not in foreign]
        except Exception as exc:
            self._report(str(exc))
            return None
        for record in ended:
            if record is not None:
                self._events.job_updated.emit(job_event(record))
        for job_id, record in foreign.items():
            seen = self._foreign.get(job_id)
            if seen is None or (seen.state, seen.progress) != (record.state, record.progress):
                self._events.job_updated.emit(job_event(record))
        self._foreign = foreign
        return active

    def _report(self, text: str) -> None:
        if text != self._last_error and self._on_error is not None:
            self._on_error(text)
        self._last_error = text

    def _read(self) -> StoreVersion | None:
        try:
            version = self._store.version()
        except Exception as exc:  # a closed or unreadable index: report, keep watching
            self._report(str(exc))
            return None
        self._last_error = None
        return version

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set() or self._store.closed:
                return
            self.check()
