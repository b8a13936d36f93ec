"""The job table: every job of every process that uses the cache folder.

Job records live in the index so that every process sees every job, whoever started it
(cancelling a job another process runs goes through ``cancel_requests``). The owner's pid and start-time token
(see :mod:`.owners`) let :func:`reap_dead` fail the jobs of dead owners even when the pid has
been reused; an owner in another place (host, boot, PID namespace) is judged by its lease
instead (:mod:`.lease`). Every change bumps the ``jobs`` counter, which is what pollers watch; progress
updates run with ``synchronous=NORMAL`` (safe against process crashes, cheap at 10 updates/s).
Finished records are trimmed per key as they finish, so the table stays small.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Sequence, Set
from typing import Any, Final

from diagnostics_app.core.states import ACTIVE_JOB, FINISHED_JOB, JOB_STATES, sql_list
from diagnostics_app.core.store.connection import IndexConnection
from diagnostics_app.core.store.lease import dead_reason, forget_expired, owner_alive, touch
from diagnostics_app.core.store.owners import this_place
from diagnostics_app.core.store.records import (
    EntryKey,
    JobRecord,
)

_ACTIVE: Final = sql_list(ACTIVE_JOB)  # "('queued', 'running')", from the one home
_FINISHED: Final = sql_list(FINISHED_JOB)
FINISHED_JOBS_PER_KEY: Final = 10  # finished job records kept per (source, calculator, ...)

_JOB_COLS: Final = (
    "id, source_id, calculator_ids, profile, params, features, state, progress, label, "
    "message, origin, owner_pid, owner_start, created, updated, owner_place"
)


class Unset:
    """The type of :data:`UNSET`: "leave this field as it is" (``None`` is a value)."""


UNSET: Final = Unset()


def _job_from_row(row: Sequence[Any]) -> JobRecord:
    return JobRecord(
        id=row[0],
        source_id=row[1],
        calculator_ids=tuple(json.loads(row[2])),
        profile=row[3],
        params=row[4],
        features=tuple(json.loads(row[5])),
        state=row[6],
        progress=row[7],
        label=row[8],
        message=row[9],
        origin=row[10],
        owner_pid=row[11],
        owner_start=row[12],
        created=row[13],
        updated=row[14],
        owner_place=row[15] or "",
    )


def _check_state(state: str) -> None:
    if state not in JOB_STATES:
        raise ValueError(f"job state must be one of {', '.join(JOB_STATES)}, not {state!r}")


def add(db: IndexConnection, records: Sequence[JobRecord], now: float) -> None:
    """See :meth:`FeatureStore.add_jobs`: every record in one transaction (all or none)."""
    if not records:
        return
    for record in records:
        _check_state(record.state)
    here, pid = this_place(), os.getpid()
    rows = []
    fresh_lease = False
    finished: set[tuple[str, str, str]] = set()
    for record in records:
        place = record.owner_place
        mine = record.owner_pid == pid
        if not place and mine:
            place = here  # a record of this process: say where its pid means something
        if mine and place == here and record.state in ACTIVE_JOB:
            fresh_lease = True
        if record.state in FINISHED_JOB:
            finished.add((record.source_id, record.profile, record.params))
        rows.append(
            (
                record.id,
                record.source_id,
                json.dumps(list(record.calculator_ids)),
                record.profile,
                record.params,
                json.dumps(list(record.features)),
                record.state,
                record.progress,
                record.label,
                record.message,
                record.origin,
                record.owner_pid,
                record.owner_start,
                record.created,
                record.updated,
                place or None,
            )
        )
    with db.write("cannot record a job") as c:
        if fresh_lease:
            touch(c, now)  # the lease is fresh from the moment the jobs are visible
        c.executemany(
            f"INSERT OR REPLACE INTO jobs ({_JOB_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        if finished:
            _trim(c, finished)
        db.bump(c, "jobs")  # once: pollers see one change, whatever the number of records


def update(
    db: IndexConnection,
    job_ids: Sequence[str],
    state: str | Unset,
    progress: float | Unset | None,
    label: str | Unset,
    message: str | Unset | None,
) -> int:
    """See :meth:`FeatureStore.update_job` and :meth:`FeatureStore.update_jobs`: the number
    of records changed, all in one transaction."""
    sets: list[str] = ["updated = ?"]
    args: list[object] = [time.time()]
    fields: list[tuple[str, object]] = [
        ("state", state),
        ("progress", progress),
        ("label", label),
        ("message", message),
    ]
    for name, value in fields:
        if not isinstance(value, Unset):
            sets.append(f"{name} = ?")
            args.append(value)
    if isinstance(state, str):
        _check_state(state)
    if not job_ids:
        return 0
    with db.write("cannot update a job") as c:
        # a job that has finished never becomes active again: a late progress write (from a
        # forwarder thread held up by a busy index) must not resurrect it as running
        only_active = (
            f" AND state IN {_ACTIVE}" if isinstance(state, str) and state in ACTIVE_JOB else ""
        )
        sql = f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?{only_active}"
        changed = c.executemany(sql, [(*args, job_id) for job_id in job_ids]).rowcount
        if changed <= 0:
            return 0
        if isinstance(state, str) and state in FINISHED_JOB:
            _trim(c, {k for job_id in job_ids if (k := _key_of(c, job_id)) is not None})
        db.bump(c, "jobs")
    return changed


def _key_of(c: sqlite3.Connection, job_id: str) -> tuple[str, str, str] | None:
    row = c.execute("SELECT source_id, profile, params FROM jobs WHERE id = ?", (job_id,))
    found = row.fetchone()
    return None if found is None else (found[0], found[1], found[2])


TRIM_EACH_MAX: Final = 8  # keys trimmed one query each; more: one scan of the finished jobs


def _trim(c: sqlite3.Connection, keys: Set[tuple[str, str, str]]) -> None:
    """Keep the FINISHED_JOBS_PER_KEY most recent finished jobs of each calculator key of the
    (source, profile, params) ``keys``. A few keys: a query each (the index); many (a
    cancelled queue of 20,000 passes): one scan, not a query per key."""
    cols = "id, calculator_ids, source_id, profile, params"
    order = "ORDER BY updated DESC, id"
    if len(keys) <= TRIM_EACH_MAX:
        rows = [
            row
            for key in sorted(keys)
            for row in c.execute(
                f"SELECT {cols} FROM jobs WHERE source_id = ? AND profile = ? AND "
                f"params = ? AND state IN {_FINISHED} {order}",
                key,
            ).fetchall()
        ]
    else:
        rows = c.execute(f"SELECT {cols} FROM jobs WHERE state IN {_FINISHED} {order}").fetchall()
    seen: dict[tuple[str, str, str, str], int] = {}
    drop: list[str] = []
    for job_id, calcs, source_id, profile, params in rows:
        if (source_id, profile, params) not in keys:
            continue
        keep = False
        for calc in json.loads(calcs) or [""]:
            counted = (source_id, profile, params, calc)
            seen[counted] = seen.get(counted, 0) + 1
            keep = keep or seen[counted] <= FINISHED_JOBS_PER_KEY
        if not keep:
            drop.append(job_id)
    c.executemany("DELETE FROM jobs WHERE id = ?", [(j,) for j in drop])


def listing(db: IndexConnection, active_only: bool) -> list[JobRecord]:
    sql = f"SELECT {_JOB_COLS} FROM jobs"
    if active_only:
        sql += f" WHERE state IN {_ACTIVE}"
    with db.read("cannot read jobs") as c:
        rows = c.execute(sql + " ORDER BY created, id").fetchall()
    return [_job_from_row(r) for r in rows]


def get(db: IndexConnection, job_id: str) -> JobRecord | None:
    with db.read("cannot read jobs") as c:
        row = c.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return _job_from_row(row) if row is not None else None


def latest_by_key(db: IndexConnection) -> dict[EntryKey, JobRecord]:
    with db.read("cannot read jobs") as c:
        rows = c.execute(
            f"SELECT {_JOB_COLS} FROM jobs WHERE state IN {_FINISHED} ORDER BY updated DESC, id"
        ).fetchall()
    out: dict[EntryKey, JobRecord] = {}
    for row in rows:
        job = _job_from_row(row)
        for key in job.entry_keys():
            out.setdefault(key, job)
    return out


def request_cancel(db: IndexConnection, job_id: str) -> bool:
    """See :meth:`FeatureStore.request_cancel`."""
    with db.write("cannot request a cancellation") as c:
        row = c.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or row[0] not in ACTIVE_JOB:
            return False
        c.execute("INSERT OR REPLACE INTO cancel_requests VALUES (?, ?)", (job_id, time.time()))
        db.bump(c, "jobs")
    return True


def cancel_requested(db: IndexConnection, job_id: str) -> bool:
    # asked once per decoded block of every pass: one statement, its own transaction (a
    # BEGIN/COMMIT around it tripled its cost, ~0.1 s of a 10-minute analysis)
    return bool(
        db.scalar("SELECT EXISTS (SELECT 1 FROM cancel_requests WHERE job_id = ?)", (job_id,))
    )


def clear_cancel_request(db: IndexConnection, job_id: str) -> None:
    with db.write("cannot clear a cancellation request") as c:
        c.execute("DELETE FROM cancel_requests WHERE job_id = ?", (job_id,))


def reap_dead(db: IndexConnection, now: float) -> list[str]:
    """See :meth:`FeatureStore.reap_dead_jobs`."""
    with db.read("cannot read jobs") as c:
        rows = c.execute(
            "SELECT j.id, j.owner_pid, j.owner_start, j.owner_place, o.heartbeat FROM jobs j "
            "LEFT JOIN owners o ON o.place = j.owner_place AND o.pid = j.owner_pid AND "
            f"o.start = j.owner_start WHERE j.state IN {_ACTIVE}"
        ).fetchall()
    dead = [
        (job_id, dead_reason(place, pid, beat, now))
        for job_id, pid, start, place, beat in rows
        if not owner_alive(place, pid, start, beat, now)
    ]
    if not dead:
        return []
    with db.write("cannot update jobs") as c:
        c.executemany(
            "UPDATE jobs SET state = 'failed', progress = NULL, label = 'failed', "
            f"message = ?, updated = ? WHERE id = ? AND state IN {_ACTIVE}",
            [(reason, time.time(), job_id) for job_id, reason in dead],
        )
        forget_expired(c, now)
        db.bump(c, "jobs")
    return [job_id for job_id, _ in dead]
