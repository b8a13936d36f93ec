"""Job records by entry group: the active job (queued or running) and the last finished one of
each (source, calculator, profile, params), whichever process recorded them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from diagnostics_app.core.states import ACTIVE_JOB
from diagnostics_app.core.store import JobRecord

GroupKey = tuple[str, str, str, str]  # (source, calculator, profile, params): an EntryKey's fields


@dataclass(frozen=True)
class JobView:
    active: JobRecord | None
    last_finished: JobRecord | None


def index_jobs(jobs: Iterable[JobRecord]) -> dict[GroupKey, JobView]:
    active: dict[GroupKey, JobRecord] = {}
    finished: dict[GroupKey, JobRecord] = {}
    for job in jobs:
        for calc_id in job.calculator_ids:
            key = (job.source_id, calc_id, job.profile, job.params)
            table = active if job.state in ACTIVE_JOB else finished
            prev = table.get(key)
            # a running job wins over a queued one; otherwise the most recent record wins
            if prev is None or _job_rank(job) > _job_rank(prev):
                table[key] = job
    return {k: JobView(active.get(k), finished.get(k)) for k in active.keys() | finished.keys()}


def _job_rank(job: JobRecord) -> tuple[int, float]:
    return (1 if job.state == "running" else 0, job.updated)
