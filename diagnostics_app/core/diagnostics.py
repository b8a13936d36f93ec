"""Diagnostics: (project, registry, store entries, job records, audio facts) → rows with states.

Nothing is ever "marked": every state is derived here, from fingerprints and job records.

- One row per (source, feature, calculator, profile + params); every track that requests it is
  listed on that row, so tracks sharing a source can never disagree.
- ``queued``/``running`` come from the store's job records, whoever started the job (GUI, CLI
  in another process, auto-analysis), so running work never shows as ``missing``.
- ``stale`` carries the field-by-field diff of stored vs current fingerprint; because a
  fingerprint holds only what its calculator declared, a tempo change stales only
  tempo-dependent rows, a version bump only that calculator's rows, and so on.
- ``invalid`` rows name what cannot be served; there is no silent fallback to a full analysis.

:class:`Diagnoser` memoises per entry group (source, calculator, profile, params): after an
edit only the groups whose inputs changed are evaluated again (``last_evaluated`` counts rows).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

from diagnostics_app.core import fingerprint as fpr
from diagnostics_app.core.calculators.base import Calculator
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.errors import DiagnosticsError, ParamError
from diagnostics_app.core.fingerprint import AudioFacts, Reason
from diagnostics_app.core.params import Params, check_for_rate, resolve_params
from diagnostics_app.core.project import Project, Request, canonical_json
from diagnostics_app.core.store import EntryKey, JobRecord, StoredEntry

State = Literal["ok", "missing", "stale", "extraneous", "queued", "running", "failed", "invalid"]
STATES: tuple[State, ...] = (
    "ok",
    "missing",
    "stale",
    "extraneous",
    "queued",
    "running",
    "failed",
    "invalid",
)
ISSUE_STATES = frozenset(s for s in STATES if s != "ok")
ACTIVE_JOB_STATES = ("queued", "running")


@dataclass(frozen=True)
class SourceStatus:
    """What is known of a source's audio: its facts, or why they cannot be had."""

    facts: AudioFacts | None = None
    error: str | None = None
    duration: float | None = None


@dataclass(frozen=True)
class RowKey:
    source: str
    feature: str
    calculator: str
    profile: str
    params: str  # canonical JSON of the request's parameter overrides

    @property
    def entry_key(self) -> EntryKey:
        return EntryKey(self.source, self.calculator, self.profile, self.params)


@dataclass(frozen=True)
class Row:
    key: RowKey
    state: State
    tracks: tuple[str, ...] = ()
    calculator_version: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    reasons: tuple[Reason, ...] = ()
    message: str | None = None
    progress: float | None = None
    stored: Mapping[str, Any] | None = None  # stored fingerprint (when cached)
    current: Mapping[str, Any] | None = None  # current fingerprint (when computable)
    stored_version: int | None = None
    updated: float | None = None
    nbytes: int | None = None
    job_id: str | None = None

    source = property(lambda self: self.key.source)
    feature = property(lambda self: self.key.feature)
    calculator = property(lambda self: self.key.calculator)
    profile = property(lambda self: self.key.profile)

    def to_json(self) -> dict[str, Any]:
        """The row as ``check --json`` prints it (interface §4, plus documented extras)."""
        return {
            "source": self.key.source,
            "feature": self.key.feature,
            "calculator": self.key.calculator,
            "calculator_version": self.calculator_version,
            "profile": self.key.profile,
            "params": dict(self.params),
            "state": self.state,
            "tracks": list(self.tracks),
            "reasons": [r.to_json() for r in self.reasons],
            "message": self.message,
            "progress": self.progress,
            "updated": self.updated,
            "bytes": self.nbytes,
        }


@dataclass(frozen=True)
class Diagnosis:
    rows: tuple[Row, ...]

    def summary(self) -> dict[str, int]:
        counts = Counter(r.state for r in self.rows)
        return {s: counts.get(s, 0) for s in STATES}

    @property
    def healthy(self) -> bool:
        return all(r.state == "ok" for r in self.rows)

    def by_key(self) -> dict[RowKey, Row]:
        return {r.key: r for r in self.rows}

    @cached_property
    def _by_source(self) -> dict[str, list[Row]]:
        index: dict[str, list[Row]] = {}
        for r in self.rows:
            index.setdefault(r.key.source, []).append(r)
        return index

    @cached_property
    def _by_track(self) -> dict[str, list[Row]]:
        index: dict[str, list[Row]] = {}
        for r in self.rows:
            for t in r.tracks:
                index.setdefault(t, []).append(r)
        return index

    def for_source(self, source_id: str) -> list[Row]:
        """Every row of a source, extraneous included (indexed: views call this per node)."""
        return list(self._by_source.get(source_id, ()))

    def for_track(self, track_id: str) -> list[Row]:
        """The rows a track requests."""
        return list(self._by_track.get(track_id, ()))


# --- derivation ------------------------------------------------------------------------------


@dataclass
class _Group:
    """Requested features of one entry key, with the tracks requesting each."""

    calc: Calculator
    params: Params
    overrides: Mapping[str, Any]
    features: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class _JobView:
    active: JobRecord | None
    last_finished: JobRecord | None


def _index_jobs(jobs: Iterable[JobRecord]) -> dict[EntryKey, _JobView]:
    active: dict[EntryKey, JobRecord] = {}
    finished: dict[EntryKey, JobRecord] = {}
    for job in jobs:
        for calc_id in job.calculator_ids:
            key = EntryKey(job.source_id, calc_id, job.profile, job.params)
            table = active if job.state in ACTIVE_JOB_STATES else finished
            prev = table.get(key)
            # a running job wins over a queued one; otherwise the most recent record wins
            if prev is None or _job_rank(job) > _job_rank(prev):
                table[key] = job
    return {k: _JobView(active.get(k), finished.get(k)) for k in set(active) | set(finished)}


def _job_rank(job: JobRecord) -> tuple[int, float]:
    return (1 if job.state == "running" else 0, job.updated)


class Diagnoser:
    """Derives rows; remembers each group's inputs and rows so that unchanged groups are not
    evaluated again. Results are identical to a fresh :func:`diagnose` (a property test checks)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._memo: dict[tuple[str, str, str, str], tuple[tuple[Any, ...], list[Row]]] = {}
        self.last_evaluated = 0  # rows evaluated (not taken from the memo) by the last call

    def diagnose(
        self,
        project: Project,
        sources: Mapping[str, SourceStatus],
        entries: Iterable[StoredEntry],
        jobs: Iterable[JobRecord] = (),
    ) -> Diagnosis:
        evaluated = 0
        entry_map: dict[EntryKey, StoredEntry] = {e.key: e for e in entries}
        job_index = _index_jobs(jobs)
        params_cache: dict[tuple[str, str], Params | str] = {}
        groups: dict[EntryKey, _Group] = {}
        invalid: dict[RowKey, tuple[list[str], str, Mapping[str, Any]]] = {}

        for track in project.tracks:
            for request in track.requests:
                resolved = self._resolve(project, request, params_cache)
                if isinstance(resolved, str):
                    rk = RowKey(
                        track.source,
                        request.feature,
                        request.calculator or "",
                        request.profile,
                        request.params_key,
                    )
                    tracks, _, _ = invalid.setdefault(rk, ([], resolved, request.params))
                    if track.id not in tracks:
                        tracks.append(track.id)
                    continue
                calc, params = resolved
                ek = EntryKey(track.source, calc.id, request.profile, request.params_key)
                group = groups.get(ek)
                if group is None:
                    group = groups[ek] = _Group(calc, params, request.params)
                owners = group.features.setdefault(request.feature, [])
                if track.id not in owners:
                    owners.append(track.id)

        rows: list[Row] = []
        live_memo: set[tuple[str, str, str, str]] = set()
        for ek, group in groups.items():
            status = sources.get(
                ek.source_id, SourceStatus(error=f"source {ek.source_id!r}: not analysed")
            )
            entry = entry_map.get(ek)
            jv = job_index.get(ek)
            tempo = project.tempo_map if group.calc.uses_tempo else None
            inputs = (
                status,
                group.calc.version,
                group.calc.params,
                group.params,
                tempo,
                tuple((f, tuple(t)) for f, t in group.features.items()),
                _entry_token(entry),
                jv,
            )
            memo_key = (ek.source_id, ek.calculator_id, ek.profile, ek.params)
            live_memo.add(memo_key)
            hit = self._memo.get(memo_key)
            if hit is not None and hit[0] == inputs:
                rows.extend(hit[1])
                continue
            group_rows = _group_rows(ek, group, status, entry, jv, project)
            self._memo[memo_key] = (inputs, group_rows)
            evaluated += len(group_rows)
            rows.extend(group_rows)

        for rk, (tracks, message, overrides) in invalid.items():
            rows.append(Row(rk, "invalid", tuple(tracks), params=dict(overrides), message=message))
            evaluated += 1

        # extraneous: cached features nobody requests (including sources no longer in the project)
        for ek, entry in entry_map.items():
            group = groups.get(ek)
            for feature, stored in entry.features.items():
                if group is not None and feature in group.features:
                    continue
                rk = RowKey(ek.source_id, feature, ek.calculator_id, ek.profile, ek.params)
                if rk in invalid:  # requested, but no longer servable: one row, the invalid one
                    continue
                rows.append(
                    Row(
                        rk,
                        "extraneous",
                        (),
                        calculator_version=entry.calculator_version,
                        params=_params_of(ek.params),
                        stored=entry.fingerprint,
                        stored_version=entry.calculator_version,
                        updated=entry.updated,
                        nbytes=stored.nbytes,
                        message="cached, but requested by no track",
                    )
                )
                evaluated += 1

        for stale_key in set(self._memo) - live_memo:
            del self._memo[stale_key]
        self.last_evaluated = evaluated
        order = {s.id: i for i, s in enumerate(project.sources)}
        rows.sort(
            key=lambda r: (
                order.get(r.key.source, len(order)),
                r.key.source,
                r.key.feature,
                r.key.calculator,
                r.key.profile,
                r.key.params,
            )
        )
        return Diagnosis(tuple(rows))

    def _resolve(
        self, project: Project, request: Request, cache: dict[tuple[str, str], Params | str]
    ) -> tuple[Calculator, Params] | str:
        """The calculator and parameters of a request, or why it cannot be served."""
        try:
            calc = self.registry.resolve(request.feature, request.calculator)
        except DiagnosticsError as exc:
            return str(exc)
        ck = (request.profile, request.params_key)
        params = cache.get(ck)
        if params is None:
            try:
                params = resolve_params(project.profile(request.profile), request.params)
            except DiagnosticsError as exc:
                params = str(exc)
            cache[ck] = params
        if isinstance(params, str):
            return params
        return calc, params


def diagnose(
    project: Project,
    registry: Registry,
    sources: Mapping[str, SourceStatus],
    entries: Iterable[StoredEntry],
    jobs: Iterable[JobRecord] = (),
) -> Diagnosis:
    """From scratch, no memory: the reference the incremental :class:`Diagnoser` must equal."""
    return Diagnoser(registry).diagnose(project, sources, entries, jobs)


def _entry_token(entry: StoredEntry | None) -> tuple[Any, ...] | None:
    if entry is None:
        return None
    return (
        entry.entry_id,
        entry.commit_id,
        entry.calculator_version,
        tuple(sorted(entry.features)),
    )


def _params_of(params_key: str) -> dict[str, Any]:
    import json

    value = json.loads(params_key)
    return value if isinstance(value, dict) else {}


def _group_rows(
    ek: EntryKey,
    group: _Group,
    status: SourceStatus,
    entry: StoredEntry | None,
    jv: _JobView | None,
    project: Project,
) -> list[Row]:
    calc = group.calc
    current: dict[str, Any] | None = None
    problem: tuple[State, str] | None = None
    if status.facts is None:
        problem = ("failed", status.error or "audio unavailable")
    else:
        try:
            check_for_rate(group.params, status.facts.sample_rate)
            calc.check(group.params, status.facts.sample_rate)
        except ParamError as exc:
            problem = ("invalid", str(exc))
        else:
            current = fpr.build(calc, group.params, status.facts, project.tempo_map)

    rows: list[Row] = []
    for feature, tracks in group.features.items():
        rows.append(_feature_row(ek, group, feature, tracks, entry, current, problem, jv))
    return rows


def _feature_row(
    ek: EntryKey,
    group: _Group,
    feature: str,
    tracks: Sequence[str],
    entry: StoredEntry | None,
    current: dict[str, Any] | None,
    problem: tuple[State, str] | None,
    jv: _JobView | None,
) -> Row:
    """The state of one requested feature; the precedence is documented in docs/design.md."""
    stored = entry.features.get(feature) if entry is not None else None
    cached = entry if stored is not None else None
    row = Row(
        key=RowKey(ek.source_id, feature, group.calc.id, ek.profile, ek.params),
        state="missing",
        tracks=tuple(tracks),
        calculator_version=group.calc.version,
        params=dict(group.overrides),
        stored=cached.fingerprint if cached is not None else None,
        current=current,
        stored_version=cached.calculator_version if cached is not None else None,
        updated=cached.updated if cached is not None else None,
        nbytes=stored.nbytes if stored is not None else None,
    )
    active = jv.active if jv is not None else None
    if active is not None and (not active.features or feature in active.features):
        running = active.state == "running"
        return replace(
            row,
            state="running" if running else "queued",
            progress=active.progress if running else None,
            job_id=active.id,
            message=active.label or None,
        )
    if problem is not None:
        return replace(row, state=problem[0], message=problem[1])
    last = jv.last_finished if jv is not None else None
    if last is not None and not (
        last.state == "failed"
        and (not last.features or feature in last.features)
        and (cached is None or last.updated >= cached.updated)
    ):
        last = None  # only a failure newer than the data counts
    if cached is None:
        if last is not None:
            return replace(row, state="failed", message=last.message, job_id=last.id)
        return row
    assert current is not None
    reasons = fpr.diff(row.stored, current)
    if not reasons:
        return replace(row, state="ok")
    if last is not None:
        return replace(row, state="failed", message=last.message, reasons=reasons, job_id=last.id)
    return replace(row, state="stale", reasons=reasons, message=_stale_message(reasons))


def _stale_message(reasons: Sequence[Reason]) -> str:
    return "; ".join(str(r) for r in reasons[:3]) + (
        f"; +{len(reasons) - 3} more" if len(reasons) > 3 else ""
    )


def row_key_for(
    source: str, feature: str, calculator: str, profile: str, params: Mapping[str, Any]
) -> RowKey:
    return RowKey(source, feature, calculator, profile, canonical_json(dict(params)))
