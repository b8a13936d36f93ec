"""The :class:`Diagnoser`: (project, registry, store entries, job records, audio facts) → a
:class:`~diagnostics_app.core.diagnostics.rows.Diagnosis`, remembering each entry group's inputs
and rows so that after an edit only the groups whose inputs changed are evaluated again."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from diagnostics_app.core import fingerprint as fpr
from diagnostics_app.core._gc import gc_paused
from diagnostics_app.core.calculators.base import Calculator
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.diagnostics.evaluation import (
    Evaluation,
    Group,
    entry_token,
    evaluate,
    params_for,
    usable_text,
)
from diagnostics_app.core.diagnostics.job_index import GroupKey, index_jobs
from diagnostics_app.core.diagnostics.row_states import BlocksOf, extraneous_row, feature_row
from diagnostics_app.core.diagnostics.rows import Diagnosis, Row, RowKey, SourceStatus
from diagnostics_app.core.params import Params
from diagnostics_app.core.project import Project, Request
from diagnostics_app.core.ranges import BlockDigests
from diagnostics_app.core.resolve import Invalid, resolve_calculator
from diagnostics_app.core.states import State
from diagnostics_app.core.store import JobRecord, StoredEntry

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
        self._memo: dict[GroupKey, _Memo] = {}
        self._extraneous: dict[GroupKey, _ExtraneousMemo] = {}
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
        blocks: BlocksOf | None = None,
    ) -> Diagnosis:
        """``blocks``: the block digests of an audio version by its content digest (the
        store's ``get_blocks``), so that a changed source's stale rows name the changed time
        ranges (core.ranges); without it, reasons carry no ranges."""
        with gc_paused():
            return self._diagnose(project, sources, entries, jobs, blocks)

    def _diagnose(
        self,
        project: Project,
        sources: Mapping[str, SourceStatus],
        entries: Iterable[StoredEntry],
        jobs: Iterable[JobRecord],
        blocks: BlocksOf | None = None,
    ) -> Diagnosis:
        evaluated = 0
        blocks_of = None if blocks is None else _remembered(blocks)
        tempo = project.tempo_map
        job_index = index_jobs(jobs)

        # requests -> groups (one per entry key) and invalid requests; a request value shared
        # by many tracks (the loader shares equal requests) is resolved once
        resolved: dict[int, tuple[Request, Calculator | str, str]] = {}
        params_cache: dict[tuple[str, str], Params | str] = {}
        groups: dict[GroupKey, Group] = {}
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
                        params = params_cache[(request.profile, pkey)] = params_for(
                            project, request
                        )
                    if not isinstance(params, str):
                        gk = (src, calc.id, request.profile, pkey)
                        group = groups.get(gk)
                        if group is None:
                            group = groups[gk] = Group(calc, params, request.params)
                        owners = group.features.get(request.feature)
                        if owners is None:
                            group.features[request.feature] = [tid]
                        elif owners[-1] != tid:  # tracks come one after another: a
                            owners.append(tid)  # repeat is the last one (not `in`: O(n²))
                        continue
                    calc = params
                rk = RowKey(src, request.feature, request.calculator or "", request.profile, pkey)
                tracks, _, _ = invalid.setdefault(rk, ([], calc, request.params))
                if not tracks or tracks[-1] != tid:  # as above: linear in tracks
                    tracks.append(tid)

        parts: dict[str, list[list[Row]]] = {}  # per source: lists of rows to merge and sort
        statuses: dict[str, SourceStatus] = {}
        evaluations: dict[tuple[Calculator, str, str, int], Evaluation] = {}
        audio_parts: dict[str, tuple[dict[str, Any], str | None]] = {}  # part, text head
        plain_overrides: dict[int, tuple[Mapping[str, Any], dict[str, Any]]] = {}
        projections: dict[tuple[str, str, int], tuple[Any, ...]] = {}
        entry_map: dict[GroupKey, StoredEntry] = {}
        for e in entries:
            k = e.key
            entry_map[(k.source_id, k.calculator_id, k.profile, k.params)] = e

        memo = self._memo
        fresh: dict[GroupKey, _Memo] = {}
        partly_extraneous: list[GroupKey] = []
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
                blocks_of is None,  # rows derived with or without changed ranges
            )
            m = memo.get(gk)
            if m is not None and m[0] == inputs:
                pk = (profile, pkey, id(m[1]))  # m[1] lives as long as this call
                values = projections.get(pk)
                if values is None:
                    values = projections[pk] = tuple(map(group.params.mapping.__getitem__, m[1]))
                if values == m[2] and (entry is m[3] or entry_token(entry) == entry_token(m[3])):
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
                    ev = evaluations[ek] = evaluate(calc, group.params, facts.sample_rate, tempo)
                problem, names, values = ev.problem, ev.names, ev.values
                if ev.part is not None:
                    audio = audio_parts.get(src)
                    if audio is None:
                        a = fpr.audio_part(facts)
                        text = usable_text(a)
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
                feature_row(
                    gk,
                    group,
                    feature,
                    tracks,
                    entry,
                    current,
                    current_text,
                    problem,
                    jv,
                    plain[1],
                    blocks_of,
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
        fresh_extraneous: dict[GroupKey, _ExtraneousMemo] = {}
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
                and (seen[0] is entry or entry_token(seen[0]) == entry_token(entry))
            ):
                fresh_extraneous[gk] = (entry, skip, seen[2])
                parts.setdefault(src, []).append(seen[2])
                continue
            rows = [
                extraneous_row(gk, entry, feature, stored)
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
        """The calculator a request resolves to, or why it cannot be served (core.resolve)."""
        if request.problem is not None:  # a mistake in the file: its message names the path
            return request.problem
        calc = resolve_calculator(self.registry, request.feature, request.calculator)
        return calc.message if isinstance(calc, Invalid) else calc


def _remembered(blocks: BlocksOf) -> BlocksOf:
    """``blocks`` asked once per digest in a call (every feature of a group asks)."""
    known: dict[str, BlockDigests | None] = {}

    def lookup(digest: str) -> BlockDigests | None:
        if digest not in known:
            known[digest] = blocks(digest)
        return known[digest]

    return lookup


def _within_source(row: Row) -> tuple[str, str, str, str]:
    k = row.key
    return (k.feature, k.calculator, k.profile, k.params)


def diagnose(
    project: Project,
    registry: Registry,
    sources: Mapping[str, SourceStatus],
    entries: Iterable[StoredEntry],
    jobs: Iterable[JobRecord] = (),
    blocks: BlocksOf | None = None,
) -> Diagnosis:
    """From scratch, no memory: the reference the incremental :class:`Diagnoser` must equal."""
    return Diagnoser(registry).diagnose(project, sources, entries, jobs, blocks)
