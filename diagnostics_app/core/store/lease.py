"""Leases: liveness of job owners and writers that this process cannot see.

A pid says nothing outside its own place (:func:`.owners.this_place`: host, boot, PID
namespace). So every process that owns queued or running jobs, or writes files, keeps a row in
the ``owners`` table whose ``heartbeat`` it refreshes every :data:`HEARTBEAT_EVERY` seconds
(:class:`Heartbeat`, a daemon thread that runs only while the process has active work). An
owner in this process's place is alive exactly when its process runs (pid + start token, as
before); an owner elsewhere is alive while its heartbeat is younger than
:data:`LEASE_SECONDS`. Heartbeats are wall-clock times of the writing host compared with the
wall clock of the reading host: hosts sharing a folder must keep their clocks in step (NTP);
a skew of a few seconds only shortens or lengthens a lease that is ten times longer than the
heartbeat period.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Final

from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.states import ACTIVE_JOB, sql_list
from diagnostics_app.core.store.connection import IndexConnection
from diagnostics_app.core.store.owners import (
    place_host,
    process_alive,
    process_start_token,
    this_place,
)

# An owner elsewhere whose heartbeat is older than this is dead: its jobs are failed and taken
# over, its files deleted. Long enough for a paused VM or a slow network disk, short enough
# that a crashed container's work is taken over within half a minute.
LEASE_SECONDS: Final = 30.0
HEARTBEAT_EVERY: Final = LEASE_SECONDS / 3  # two missed beats still leave the lease valid

Clock = Callable[[], float]


def owner_alive(
    place: str | None, pid: int, start: str, heartbeat: float | None, now: float
) -> bool:
    """Whether an owner (a job's or a writer's) is alive; ``place`` None or "" is a record of
    a program older than leases: judged by its pid, as that program did."""
    if not place or place == this_place():
        return process_alive(pid, start)
    return heartbeat is not None and now - heartbeat <= LEASE_SECONDS


def dead_reason(place: str | None, pid: int, heartbeat: float | None, now: float) -> str:
    """Why :func:`owner_alive` said no, for a job's message."""
    if not place or place == this_place():
        return f"owner process {pid} died"
    age = "ever" if heartbeat is None else f"{max(0.0, now - heartbeat):.0f} s"
    return f"owner process {pid} on {place_host(place)} stopped (no heartbeat for {age})"


def touch(c: sqlite3.Connection, now: float) -> None:
    """Upsert this process's owner row, inside the caller's write transaction (so a job or a
    writer registration is never visible without a fresh lease)."""
    pid = os.getpid()
    c.execute(
        "INSERT INTO owners VALUES (?, ?, ?, ?) ON CONFLICT (place, pid, start) "
        "DO UPDATE SET heartbeat = excluded.heartbeat",
        (this_place(), pid, process_start_token(pid), now),
    )


def beat(db: IndexConnection, now: float) -> None:
    """Refresh this process's lease (one small write)."""
    with db.write("cannot refresh this process's lease") as c:
        touch(c, now)


def forget_expired(c: sqlite3.Connection, now: float) -> None:
    """Drop owner rows whose lease expired long ago and that nothing active refers to."""
    c.execute(
        "DELETE FROM owners WHERE heartbeat < ? AND NOT EXISTS (SELECT 1 FROM jobs WHERE "
        "jobs.owner_place = owners.place AND jobs.owner_pid = owners.pid AND "
        f"jobs.state IN {sql_list(ACTIVE_JOB)}) AND NOT EXISTS (SELECT 1 FROM writers WHERE "
        "writers.place = owners.place AND writers.pid = owners.pid)",
        (now - 10 * LEASE_SECONDS,),
    )


class Heartbeat:
    """Refreshes this process's lease from a daemon thread while someone holds it.

    :meth:`hold` and :meth:`release` count holders (the job runner holds once per active
    pass); the first hold beats at once and starts the thread, the last release stops it, so
    an idle process writes nothing. ``wait(event, seconds)`` is the pause between beats
    (``event.wait``; a test passes its own to step the thread deterministically)."""

    def __init__(
        self,
        beat: Callable[[float], None],
        *,
        clock: Clock = time.time,
        every: float = HEARTBEAT_EVERY,
        wait: Callable[[threading.Event, float], object] = lambda e, s: e.wait(s),
    ) -> None:
        self._beat = beat
        self._clock = clock
        self._every = every
        self._wait = wait
        self._lock = threading.Lock()
        self._holders = 0
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def hold(self) -> None:
        with self._lock:
            self._holders += 1
            if self._holders > 1:
                return
            stop = self._stop = threading.Event()
            thread = self._thread = threading.Thread(
                target=self._run, args=(stop,), name="lease-heartbeat", daemon=True
            )
        self._safe_beat()  # the lease is fresh before the caller starts its work
        thread.start()

    def release(self) -> None:
        with self._lock:
            if self._holders == 0:
                return
            self._holders -= 1
            if self._holders == 0 and self._stop is not None:
                self._stop.set()  # the thread ends at its next wake-up, without a last beat

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread whoever still holds the lease (the store is closing)."""
        with self._lock:
            self._holders = 0
            stop, thread = self._stop, self._thread
        if stop is not None:
            stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self, stop: threading.Event) -> None:
        while True:
            self._wait(stop, self._every)
            if stop.is_set():
                return
            self._safe_beat()

    def _safe_beat(self) -> None:
        # busy, read-only or closed: the next beat retries (a lease has room for two misses)
        with contextlib.suppress(StoreError, sqlite3.Error):
            self._beat(self._clock())
