"""The planner: a selection of rows → the minimal set of calculator jobs.

A job is (source, calculator, profile, params): one calculator run that replaces that
calculator's entry. A calculator producing several requested features runs once. Rows that are
ok (unless ``include_ok``), extraneous, invalid, queued or running are never planned; there is
no fallback to a "full analysis".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from diagnostics_app.core.diagnostics import Diagnosis, Row, RowKey
from diagnostics_app.core.store import EntryKey

PLANNABLE = frozenset({"missing", "stale", "failed"})


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

    def matches(self, row: Row) -> bool:
        k = row.key
        if self.rows and k not in self.rows:
            return False
        if self.sources and k.source not in self.sources:
            return False
        if self.tracks and not set(self.tracks) & set(row.tracks):
            return False
        if self.features and k.feature not in self.features:
            return False
        if self.calculators and k.calculator not in self.calculators:
            return False
        if self.profiles and k.profile not in self.profiles:
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

    @property
    def entry_key(self) -> EntryKey:
        return EntryKey(self.source, self.calculator, self.profile, self.params_key)

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
    wanted = PLANNABLE | {"ok"} if include_ok else PLANNABLE
    chosen: dict[EntryKey, Row] = {}
    for row in diagnosis.rows:
        if row.state in wanted and selection.matches(row):
            chosen.setdefault(row.key.entry_key, row)
    return jobs_for_entries(diagnosis.rows, chosen)


def jobs_for_entries(rows: Sequence[Row], chosen: Mapping[EntryKey, Row]) -> list[PlannedJob]:
    requested: dict[EntryKey, list[str]] = {}
    for row in rows:
        if row.key.entry_key in chosen and row.state not in ("extraneous", "invalid"):
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
            )
        )
    return jobs


def group_passes(jobs: Iterable[PlannedJob]) -> list[list[PlannedJob]]:
    """Jobs sharing (source, profile, params) run as one pass, in first-seen order."""
    passes: dict[tuple[str, str, str], list[PlannedJob]] = {}
    for job in jobs:
        passes.setdefault(job.pass_key, []).append(job)
    return list(passes.values())
