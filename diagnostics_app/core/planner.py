"""The planner: a selection of rows → the minimal set of calculator jobs.

A job is (source, calculator, profile, params): one calculator run that replaces that
calculator's entry. A calculator producing several requested features runs once. Rows that are
ok (unless ``include_ok``), extraneous, invalid, queued or running are never planned; there is
no fallback to a "full analysis".
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from diagnostics_app.core import fingerprint as fpr
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.diagnostics import Diagnosis, Row, RowKey
from diagnostics_app.core.project import Project
from diagnostics_app.core.resolve import Invalid, Resolved, resolve_entry
from diagnostics_app.core.states import ACTIVE_JOB, NOT_PRODUCED, PLANNABLE, REGENERABLE
from diagnostics_app.core.store import EntryKey, JobRecord, place_host, this_place


@dataclass(frozen=True)
class _SelectionSets:
    """A :class:`Selection`'s fields as sets, for lookups in constant time."""

    rows: frozenset[RowKey]
    sources: frozenset[str]
    tracks: frozenset[str]
    features: frozenset[str]
    calculators: frozenset[str]
    profiles: frozenset[str]


@dataclass(frozen=True)
class Selection:
    """Which rows a command applies to; empty fields match everything. ``params`` holds
    (key, value) pairs that must all appear in a request's own params."""

    sources: tuple[str, ...] = ()
    tracks: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    calculators: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    params: tuple[tuple[str, Any], ...] = ()
    rows: tuple[RowKey, ...] = ()

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.sources,
                self.tracks,
                self.features,
                self.calculators,
                self.profiles,
                self.params,
                self.rows,
            )
        )

    @cached_property
    def _sets(self) -> _SelectionSets:
        # made once per selection: "calculate missing" on a library selects every missing row
        # (100,000 keys for 20,000 sources), and a key looked up in a tuple per row was
        # quadratic (hours at that size)
        return _SelectionSets(
            frozenset(self.rows),
            frozenset(self.sources),
            frozenset(self.tracks),
            frozenset(self.features),
            frozenset(self.calculators),
            frozenset(self.profiles),
        )

    def matches(self, row: Row) -> bool:
        k, sets = row.key, self._sets
        if sets.rows and k not in sets.rows:
            return False
        if sets.sources and k.source not in sets.sources:
            return False
        if sets.tracks and sets.tracks.isdisjoint(row.tracks):
            return False
        if sets.features and k.feature not in sets.features:
            return False
        if sets.calculators and k.calculator not in sets.calculators:
            return False
        if sets.profiles and k.profile not in sets.profiles:
            return False
        return all(_param_equal(row.params.get(name), value) for name, value in self.params)

    def select(self, diagnosis: Diagnosis) -> list[Row]:
        return [r for r in diagnosis.rows if self.matches(r)]


def _param_equal(have: Any, want: Any) -> bool:
    if have is None:
        return False
    if isinstance(want, str) and not isinstance(have, str):
        try:
            want = json.loads(want)
        except ValueError:
            return False
    if (
        isinstance(have, int | float)
        and isinstance(want, int | float)
        and not isinstance(have, bool)
    ):
        return float(have) == float(want)
    return bool(have == want)


@dataclass(frozen=True)
class PlannedJob:
    """One calculator run: which entry it replaces and which requested features it writes."""

    source: str
    calculator: str
    profile: str
    params_key: str
    features: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    # only the frames an edit touches need recomputing (see :func:`partial_row`); the runner
    # decides for good (core.partial_work), with the store at hand
    partial: bool = False

    @property
    def entry_key(self) -> EntryKey:
        return EntryKey(self.source, self.calculator, self.profile, self.params_key)

    def resolve(self, project: Project, registry: Registry) -> Resolved | Invalid:
        """What this job runs with, resolved from ``project`` as it is now (the job's snapshot):
        by the rules that made its rows, so if they became invalid since it was planned, the
        job fails with the message those rows now show."""
        return resolve_entry(
            registry, project, self.calculator, self.features, self.profile, self.params
        )

    @property
    def pass_key(self) -> tuple[str, str, str]:
        """Jobs with the same pass key share one decode and one STFT."""
        return (self.source, self.profile, self.params_key)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "calculator": self.calculator,
            "profile": self.profile,
            "params": dict(self.params),
            "features": list(self.features),
            **({"partial": True} if self.partial else {}),
        }


def plan(
    diagnosis: Diagnosis,
    selection: Selection | None = None,
    *,
    include_ok: bool = False,
) -> list[PlannedJob]:
    """The jobs that bring the selected rows up to date, one per calculator entry.

    Every requested feature of a planned entry is written, not only the selected ones, because
    a run replaces the whole entry: leaving a requested sibling out would delete it.
    """
    selection = selection or Selection()
    wanted = REGENERABLE if include_ok else PLANNABLE
    chosen: dict[EntryKey, Row] = {}
    for row in diagnosis.rows:
        if row.state in wanted and selection.matches(row):
            chosen.setdefault(row.key.entry_key, row)
    return jobs_for_entries(diagnosis.rows, chosen)


def jobs_for_entries(rows: Sequence[Row], chosen: Mapping[EntryKey, Row]) -> list[PlannedJob]:
    requested: dict[EntryKey, list[str]] = {}
    for row in rows:
        if row.key.entry_key in chosen and row.state not in NOT_PRODUCED:
            requested.setdefault(row.key.entry_key, []).append(row.key.feature)
    jobs = []
    for ek, row in chosen.items():
        jobs.append(
            PlannedJob(
                source=ek.source_id,
                calculator=ek.calculator_id,
                profile=ek.profile,
                params_key=ek.params,
                features=tuple(sorted(set(requested.get(ek, [row.key.feature])))),
                params=dict(row.params),
                partial=partial_row(row),
            )
        )
    return jobs


def partial_row(row: Row) -> bool:
    """Whether a stale row needs only the frames an edit touches: its stored data differs
    from the current inputs only in the audio content or only in the tempo map
    (:func:`core.fingerprint.partial_kind`), and the diagnosis knows which frames that
    affects (the reason's ``affected_frames``, not "all")."""
    if row.state != "stale" or row.current is None:
        return False
    if fpr.partial_kind(row.stored, row.current) is None:
        return False
    return all(isinstance(r.affected_frames, tuple) for r in row.reasons)


def group_passes(jobs: Iterable[PlannedJob]) -> list[list[PlannedJob]]:
    """Jobs sharing (source, profile, params) run as one pass, in first-seen order."""
    passes: dict[tuple[str, str, str], list[PlannedJob]] = {}
    for job in jobs:
        passes.setdefault(job.pass_key, []).append(job)
    return list(passes.values())


@dataclass(frozen=True)
class ActiveElsewhere:
    """A selected row that another process has queued or is running: never planned again
    here (its owner computes it; once the owner is dead, the row is ``failed`` and planned)."""

    row: Row
    owner_pid: int | None  # None: the job record is gone (finished since the diagnosis)
    owner_host: str | None

    def to_json(self) -> dict[str, Any]:
        """An item of ``analyze --json``'s ``elsewhere`` list."""
        k = self.row.key
        return {
            "source": k.source,
            "feature": k.feature,
            "calculator": k.calculator,
            "profile": k.profile,
            "params": dict(self.row.params),
            "state": self.row.state,
            "job_id": self.row.job_id,
            "owner_pid": self.owner_pid,
            "owner_host": self.owner_host,
        }


def active_elsewhere(
    diagnosis: Diagnosis, jobs: Sequence[JobRecord], selection: Selection | None = None
) -> list[ActiveElsewhere]:
    """The selected rows that are queued or running in another process (any host)."""
    selection = selection or Selection()
    by_id = {j.id: j for j in jobs}
    out = []
    for row in diagnosis.rows:
        if row.state not in ACTIVE_JOB or not selection.matches(row):
            continue
        job = by_id.get(row.job_id or "")
        if job is not None and job.owner_pid == os.getpid() and job.owner_place == this_place():
            continue  # this process's own
        out.append(
            ActiveElsewhere(
                row,
                job.owner_pid if job else None,
                place_host(job.owner_place) if job and job.owner_place else None,
            )
        )
    return out


def describe_elsewhere(items: Sequence[ActiveElsewhere]) -> list[str]:
    """One line per owner: "3 rows are queued or running in process 1234 on host X; …"."""
    owners: dict[tuple[int | None, str | None], int] = {}
    for item in items:
        key = (item.owner_pid, item.owner_host)
        owners[key] = owners.get(key, 0) + 1
    lines = []
    for (pid, host), n in owners.items():
        rows = "1 row is" if n == 1 else f"{n} rows are"
        where = f"process {pid}" if pid is not None else "another process"
        where += f" on host {host}" if host else ""
        lines.append(f"{rows} queued or running in {where}; not duplicated")
    return lines
