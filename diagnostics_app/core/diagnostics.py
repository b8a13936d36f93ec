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

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from diagnostics_app.core import fingerprint as fpr
from diagnostics_app.core._gc import gc_paused
from diagnostics_app.core.calculators.base import Calculator
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.errors import DiagnosticsError, ParamError
from diagnostics_app.core.fingerprint import AudioFacts, Reason
from diagnostics_app.core.params import Params, check_for_rate, resolve_params
from diagnostics_app.core.project import Project, Request
from diagnostics_app.core.store import EntryKey, JobRecord, StoredEntry
from diagnostics_app.core.tempo import TempoMap

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
        key = self.key
        return {
            "source": key.source,
            "feature": key.feature,
            "calculator": key.calculator,
            "calculator_version": self.calculator_version,
            "profile": key.profile,
            "params": dict(self.params),
            "state": self.state,
            "tracks": list(self.tracks),
            "reasons": [r.to_json() for r in self.reasons] if self.reasons else [],
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

_GroupKey = tuple[str, str, str, str]  # (source, calculator, profile, params): an EntryKey's fields


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


def _index_jobs(jobs: Iterable[JobRecord]) -> dict[_GroupKey, _JobView]:
    active: dict[_GroupKey, JobRecord] = {}
    finished: dict[_GroupKey, JobRecord] = {}
    for job in jobs:
        for calc_id in job.calculator_ids:
            key = (job.source_id, calc_id, job.profile, job.params)
            table = active if job.state in ACTIVE_JOB_STATES else finished
            prev = table.get(key)
            # a running job wins over a queued one; otherwise the most recent record wins
            if prev is None or _job_rank(job) > _job_rank(prev):
                table[key] = job
    return {k: _JobView(active.get(k), finished.get(k)) for k in active.keys() | finished.keys()}


def _job_rank(job: JobRecord) -> tuple[int, float]:
    return (1 if job.state == "running" else 0, job.updated)


class _ReadLog(Mapping[str, Any]):
    """A parameter mapping that notes which names are read (iterating reads them all)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values
        self.names: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        self.names.add(name)
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        self.names.update(self._values)
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


@dataclass(frozen=True)
class _Evaluation:
    """What a group's rows need from (calculator, parameters, sample rate, tempo): the
    parameter problem if any, else the calculator part of the current fingerprint; and the
    parameter names that were read to find out (the rows depend on nothing else of them)."""

    problem: tuple[State, str] | None
    part: dict[str, Any] | None
    tail: str | None  # canonical JSON of ``part`` without its "{" (None: compare values)
    names: tuple[str, ...]
    values: tuple[Any, ...]  # of the parameters named


# A group's rows and what they were derived from: (inputs: status, calculator, tempo if read,
# features and their tracks, job records; the names of the parameters read; their values; the
# cached entry; the rows)
_Memo = tuple[tuple[Any, ...], tuple[str, ...], tuple[Any, ...], "StoredEntry | None", list[Row]]
# An entry's extraneous rows: (entry, the features not extraneous, the rows)
_ExtraneousMemo = tuple["StoredEntry", frozenset[str], list[Row]]


class Diagnoser:
    """Derives rows; remembers each group's inputs and rows so that unchanged groups are not
    evaluated again. Results are identical to a fresh :func:`diagnose` (a property test checks).

    What a group's rows depend on, and so what the memo compares: the source's status, the
    calculator, the tempo map (only if the calculator reads it), the features requested and by
    which tracks, the cached entry, the job records of the key, and the values of exactly the
    parameters its evaluation read (those the fingerprint declares, the frequency limits of
    :func:`~core.params.check_for_rate` and whatever the calculator's ``check`` read): a
    parameter edit re-evaluates only the rows whose calculator reads that parameter.
    Extraneous and invalid rows are remembered likewise (by entry, and by their inputs), and
    each source's sorted rows are reused while none of its parts changed."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._memo: dict[_GroupKey, _Memo] = {}
        self._extraneous: dict[_GroupKey, _ExtraneousMemo] = {}
        self._invalid: dict[
            RowKey, tuple[tuple[tuple[str, ...], str, dict[str, Any]], list[Row]]
        ] = {}
        self._sorted: dict[str, tuple[tuple[int, ...], list[list[Row]], list[Row]]] = {}
        self.last_evaluated = 0  # rows evaluated (not taken from the memo) by the last call

    def clear(self) -> None:
        """Forget every remembered row (the next call evaluates everything)."""
        self._memo, self._extraneous, self._invalid, self._sorted = {}, {}, {}, {}

    def diagnose(
        self,
        project: Project,
        sources: Mapping[str, SourceStatus],
        entries: Iterable[StoredEntry],
        jobs: Iterable[JobRecord] = (),
    ) -> Diagnosis:
        with gc_paused():
            return self._diagnose(project, sources, entries, jobs)

    def _diagnose(
        self,
        project: Project,
        sources: Mapping[str, SourceStatus],
        entries: Iterable[StoredEntry],
        jobs: Iterable[JobRecord],
    ) -> Diagnosis:
        evaluated = 0
        tempo = project.tempo_map
        job_index = _index_jobs(jobs)

        # requests -> groups (one per entry key) and invalid requests; a request value shared
        # by many tracks (the loader shares equal requests) is resolved once
        resolved: dict[int, tuple[Request, Calculator | str, str]] = {}
        params_cache: dict[tuple[str, str], Params | str] = {}
        groups: dict[_GroupKey, _Group] = {}
        invalid: dict[RowKey, tuple[list[str], str, Mapping[str, Any]]] = {}
        for track in project.tracks:
            src, tid = track.source, track.id
            for request in track.requests:
                hit = resolved.get(id(request))
                if hit is None or hit[0] is not request:
                    hit = resolved[id(request)] = (
                        request,
                        self._calculator(request),
                        request.params_key,
                    )
                _, calc, pkey = hit
                if not isinstance(calc, str):
                    params = params_cache.get((request.profile, pkey))
                    if params is None:
                        params = params_cache[(request.profile, pkey)] = _params(project, request)
                    if not isinstance(params, str):
                        gk = (src, calc.id, request.profile, pkey)
                        group = groups.get(gk)
                        if group is None:
                            group = groups[gk] = _Group(calc, params, request.params)
                        owners = group.features.get(request.feature)
                        if owners is None:
                            group.features[request.feature] = [tid]
                        elif tid not in owners:
                            owners.append(tid)
                        continue
                    calc = params
                rk = RowKey(src, request.feature, request.calculator or "", request.profile, pkey)
                tracks, _, _ = invalid.setdefault(rk, ([], calc, request.params))
                if tid not in tracks:
                    tracks.append(tid)

        parts: dict[str, list[list[Row]]] = {}  # per source: lists of rows to merge and sort
        statuses: dict[str, SourceStatus] = {}
        evaluations: dict[tuple[Calculator, str, str, int], _Evaluation] = {}
        audio_parts: dict[str, tuple[dict[str, Any], str | None]] = {}  # part, text head
        plain_overrides: dict[int, tuple[Mapping[str, Any], dict[str, Any]]] = {}
        projections: dict[tuple[str, str, int], tuple[Any, ...]] = {}
        entry_map: dict[_GroupKey, StoredEntry] = {}
        for e in entries:
            k = e.key
            entry_map[(k.source_id, k.calculator_id, k.profile, k.params)] = e

        memo = self._memo
        fresh: dict[_GroupKey, _Memo] = {}
        partly_extraneous: list[_GroupKey] = []
        for gk, group in groups.items():
            src, _, profile, pkey = gk
            status = statuses.get(src)
            if status is None:
                status = statuses[src] = sources.get(
                    src, SourceStatus(error=f"source {src!r}: not analysed")
                )
            calc = group.calc
            features = group.features
            entry = entry_map.get(gk)
            if entry is not None:
                for f in entry.features:
                    if f not in features:  # cached but not requested: extraneous rows
                        partly_extraneous.append(gk)
                        break
            jv = job_index.get(gk)
            inputs = (
                status,
                calc,
                calc.version,
                calc.params,
                tempo if calc.uses_tempo else None,
                features,
                jv,
            )
            m = memo.get(gk)
            if m is not None and m[0] == inputs:
                pk = (profile, pkey, id(m[1]))  # m[1] lives as long as this call
                values = projections.get(pk)
                if values is None:
                    values = projections[pk] = tuple(map(group.params.mapping.__getitem__, m[1]))
                if values == m[2] and (entry is m[3] or _entry_token(entry) == _entry_token(m[3])):
                    fresh[gk] = m if entry is m[3] else (m[0], m[1], m[2], entry, m[4])
                    rows = m[4]
                    have = parts.get(src)
                    if have is None:
                        parts[src] = [rows]
                    else:
                        have.append(rows)
                    continue

            # evaluate the group
            current: dict[str, Any] | None = None
            current_text: str | None = None
            problem: tuple[State, str] | None = None
            names: tuple[str, ...] = ()
            values = ()
            facts = status.facts
            if facts is None:
                problem = ("failed", status.error or "audio unavailable")
            else:
                ek = (calc, profile, pkey, facts.sample_rate)
                ev = evaluations.get(ek)
                if ev is None:
                    ev = evaluations[ek] = _evaluate(calc, group.params, facts.sample_rate, tempo)
                problem, names, values = ev.problem, ev.names, ev.values
                if ev.part is not None:
                    audio = audio_parts.get(src)
                    if audio is None:
                        a = fpr.audio_part(facts)
                        text = _usable_text(a)
                        # fpr.joined_text(audio, calc) == audio[:-1] + "," + calc[1:]
                        audio = audio_parts[src] = (a, None if text is None else text[:-1] + ",")
                    current = {**audio[0], **ev.part}
                    if audio[1] is not None and ev.tail is not None:
                        current_text = audio[1] + ev.tail
            overrides = group.overrides
            plain = plain_overrides.get(id(overrides))
            if plain is None or plain[0] is not overrides:
                plain = plain_overrides[id(overrides)] = (overrides, dict(overrides))
            rows = [
                _feature_row(
                    gk, group, feature, tracks, entry, current, current_text, problem, jv, plain[1]
                )
                for feature, tracks in features.items()
            ]
            fresh[gk] = (inputs, names, values, entry, rows)
            evaluated += len(rows)
            have = parts.get(src)
            if have is None:
                parts[src] = [rows]
            else:
                have.append(rows)
        self._memo = fresh

        # invalid requests: one row per key, remembered by its inputs
        invalid_memo = self._invalid
        fresh_invalid: dict[RowKey, tuple[tuple[tuple[str, ...], str, dict[str, Any]], list[Row]]]
        fresh_invalid = {}
        for rk, (tracks, message, overrides) in invalid.items():
            said = (tuple(tracks), message, dict(overrides))
            hit_rows = invalid_memo.get(rk)
            if hit_rows is not None and hit_rows[0] == said:
                fresh_invalid[rk] = hit_rows
                parts.setdefault(rk.source, []).append(hit_rows[1])
                continue
            rows = [Row(rk, "invalid", said[0], params=dict(overrides), message=message)]
            fresh_invalid[rk] = (said, rows)
            evaluated += 1
            parts.setdefault(rk.source, []).append(rows)
        self._invalid = fresh_invalid

        # extraneous: cached features nobody requests (including sources no longer in the
        # project): entries with some unrequested feature (noted above) or with no group at all
        extraneous_memo = self._extraneous
        fresh_extraneous: dict[_GroupKey, _ExtraneousMemo] = {}
        partly_extraneous.extend(gk for gk in entry_map if gk not in groups)
        for gk in partly_extraneous:
            entry = entry_map[gk]
            group = groups.get(gk)
            src, calc_id, profile, pkey = gk
            skip = frozenset(
                f
                for f in entry.features
                if (group is not None and f in group.features)
                or RowKey(src, f, calc_id, profile, pkey) in invalid
            )
            if skip.issuperset(entry.features):
                continue
            seen = extraneous_memo.get(gk)
            if (
                seen is not None
                and seen[1] == skip
                and (seen[0] is entry or _entry_token(seen[0]) == _entry_token(entry))
            ):
                fresh_extraneous[gk] = (entry, skip, seen[2])
                parts.setdefault(src, []).append(seen[2])
                continue
            rows = [
                _extraneous_row(gk, entry, feature, stored)
                for feature, stored in entry.features.items()
                if feature not in skip
            ]
            fresh_extraneous[gk] = (entry, skip, rows)
            evaluated += len(rows)
            parts.setdefault(src, []).append(rows)
        self._extraneous = fresh_extraneous

        # order: sources as in the project (then any other, by id); within a source by
        # (feature, calculator, profile, params). A source whose parts are all the same objects
        # as last time keeps its sorted list.
        order = {s.id: i for i, s in enumerate(project.sources)}
        n = len(order)
        out: list[Row] = []
        sorted_memo = self._sorted
        fresh_sorted: dict[str, tuple[tuple[int, ...], list[list[Row]], list[Row]]] = {}
        for src in sorted(parts, key=lambda s: (order.get(s, n), s)):
            lists = parts[src]
            token = tuple(map(id, lists))
            seen_sorted = sorted_memo.get(src)
            if seen_sorted is not None and seen_sorted[0] == token:
                fresh_sorted[src] = seen_sorted
                out.extend(seen_sorted[2])
                continue
            merged = [r for rows in lists for r in rows]
            merged.sort(key=_within_source)
            fresh_sorted[src] = (token, lists, merged)  # ``lists`` keeps the ids unique
            out.extend(merged)
        self._sorted = fresh_sorted
        self.last_evaluated = evaluated
        return Diagnosis(tuple(out))

    def _calculator(self, request: Request) -> Calculator | str:
        """The calculator a request resolves to, or why it cannot be served."""
        try:
            return self.registry.resolve(request.feature, request.calculator)
        except DiagnosticsError as exc:
            return str(exc)


def _params(project: Project, request: Request) -> Params | str:
    """A request's parameters (profile and overrides), or why they cannot be resolved."""
    try:
        return resolve_params(project.profile(request.profile), request.params)
    except DiagnosticsError as exc:
        return str(exc)


def _within_source(row: Row) -> tuple[str, str, str, str]:
    k = row.key
    return (k.feature, k.calculator, k.profile, k.params)


def _evaluate(calc: Calculator, params: Params, sample_rate: int, tempo: TempoMap) -> _Evaluation:
    """Parameter checks at this sample rate, then the calculator part of the fingerprint,
    noting which parameters were read."""
    log = _ReadLog(params.mapping)
    logged = Params(log)
    problem: tuple[State, str] | None = None
    part: dict[str, Any] | None = None
    try:
        check_for_rate(logged, sample_rate)
        calc.check(logged, sample_rate)
    except ParamError as exc:
        problem = ("invalid", str(exc))
    else:
        part = fpr.calculator_part(calc, logged, tempo)
    names = tuple(sorted(log.names))
    values = tuple(params.mapping[n] for n in names)
    text = _usable_text(part) if part is not None else None
    return _Evaluation(problem, part, None if text is None else text[1:], names, values)


def _usable_text(part: Mapping[str, Any]) -> str | None:
    """The canonical text of a fingerprint part, if equal texts mean equal values: not when
    a number is NaN or infinite (they do not equal themselves; ``fingerprint.diff`` decides)."""
    text = fpr.canonical_text(part)
    return None if "NaN" in text or "Infinity" in text else text


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
        entry.problems,
    )


def _params_of(params_key: str) -> dict[str, Any]:
    value = json.loads(params_key)
    return value if isinstance(value, dict) else {}


def _extraneous_row(gk: _GroupKey, entry: StoredEntry, feature: str, stored: Any) -> Row:
    src, calc_id, profile, pkey = gk
    return Row(
        RowKey(src, feature, calc_id, profile, pkey),
        "extraneous",
        (),
        calculator_version=entry.calculator_version,
        params=_params_of(pkey),
        stored=entry.fingerprint,
        stored_version=entry.calculator_version,
        updated=entry.updated,
        nbytes=stored.nbytes,
        message="cached, but requested by no track",
    )


def _feature_row(
    gk: _GroupKey,
    group: _Group,
    feature: str,
    tracks: Sequence[str],
    entry: StoredEntry | None,
    current: dict[str, Any] | None,
    current_text: str | None,
    problem: tuple[State, str] | None,
    jv: _JobView | None,
    overrides: dict[str, Any],
) -> Row:
    """The state of one requested feature; the precedence is documented in docs/design.md.
    ``overrides`` is the group's parameter overrides as a dict (each row gets a copy)."""
    src, calc_id, profile, pkey = gk
    if jv is None and problem is None and entry is not None and current_text is not None:
        # the common case first (the general code below gives the same row): no job, cached
        # with the same canonical text as the current fingerprint, so ``ok``
        stored_feature = entry.features.get(feature)
        if (
            stored_feature is not None
            and stored_feature.problem is None
            and entry.fingerprint_json == current_text
        ):
            return Row(
                RowKey(src, feature, calc_id, profile, pkey),
                "ok",
                tuple(tracks),
                group.calc.version,
                overrides.copy(),
                (),
                None,
                None,
                current,  # equal values: one dict serves both (rows are never mutated)
                current,
                entry.calculator_version,
                entry.updated,
                stored_feature.nbytes,
                None,
            )
    stored_feature = entry.features.get(feature) if entry is not None else None
    cached = entry if stored_feature is not None else None
    stored: Mapping[str, Any] | None = None
    state: State = "missing"
    reasons: tuple[Reason, ...] = ()
    message: str | None = None
    progress: float | None = None
    job_id: str | None = None
    active = jv.active if jv is not None else None
    last = jv.last_finished if jv is not None else None
    if active is not None and (not active.features or feature in active.features):
        running = active.state == "running"
        state = "running" if running else "queued"
        progress = active.progress if running else None
        job_id = active.id
        message = active.label or None
        stored = cached.fingerprint if cached is not None else None
    elif problem is not None:
        state, message = problem
        stored = cached.fingerprint if cached is not None else None
    else:
        if last is not None and not (
            last.state == "failed"
            and (not last.features or feature in last.features)
            and (cached is None or last.updated >= cached.updated)
        ):
            last = None  # only a failure newer than the data counts
        if cached is None:
            if last is not None:
                state, message, job_id = "failed", last.message, last.id
        else:
            assert current is not None
            if current_text is not None and cached.fingerprint_json == current_text:
                # the same canonical text: the stored fingerprint parses to ``current``
                stored = current
            else:
                stored = cached.fingerprint
                reasons = fpr.diff(stored, current)
            if stored_feature is not None and stored_feature.problem is not None:
                state, message = "failed", stored_feature.problem  # its files fail verification
            elif not reasons:
                state = "ok"
            elif last is not None:
                state, message, job_id = "failed", last.message, last.id
            else:
                state, message = "stale", _stale_message(reasons)
    return Row(
        RowKey(src, feature, calc_id, profile, pkey),
        state,
        tuple(tracks),
        group.calc.version,
        overrides.copy(),
        reasons,
        message,
        progress,
        stored,
        current,
        cached.calculator_version if cached is not None else None,
        cached.updated if cached is not None else None,
        stored_feature.nbytes if stored_feature is not None else None,
        job_id,
    )


def _stale_message(reasons: Sequence[Reason]) -> str:
    return "; ".join(str(r) for r in reasons[:3]) + (
        f"; +{len(reasons) - 3} more" if len(reasons) > 3 else ""
    )
