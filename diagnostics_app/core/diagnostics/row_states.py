"""The state of each row of a group: the precedence of job records, parameter problems and
fingerprints (documented in docs/design.md), and the rows of cached features nobody requests."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from diagnostics_app.core import fingerprint as fpr
from diagnostics_app.core.calculators.base import declared_reach
from diagnostics_app.core.diagnostics.evaluation import Group
from diagnostics_app.core.diagnostics.job_index import GroupKey, JobView
from diagnostics_app.core.diagnostics.rows import Row, RowKey
from diagnostics_app.core.engine_window import tempo_changed_from, wanted_frames
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.fingerprint import Reason
from diagnostics_app.core.ranges import (
    BlockDigests,
    affected_frames,
    changed_ranges,
    frame_count,
    seconds,
)
from diagnostics_app.core.states import State
from diagnostics_app.core.store import StoredEntry
from diagnostics_app.core.tempo import TempoMap

# the staleness reason of an entry ``verify --repair`` found drifted: not a fingerprint input,
# the numeric libraries under the calculator (see core.store.marks)
ENVIRONMENT = "environment"


def _params_of(params_key: str) -> dict[str, Any]:
    value = json.loads(params_key)
    return value if isinstance(value, dict) else {}


def extraneous_row(gk: GroupKey, entry: StoredEntry, feature: str, stored: Any) -> Row:
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
        regenerated=stored.regenerated,
    )


def feature_row(
    gk: GroupKey,
    group: Group,
    feature: str,
    tracks: Sequence[str],
    entry: StoredEntry | None,
    current: dict[str, Any] | None,
    current_text: str | None,
    problem: tuple[State, str] | None,
    jv: JobView | None,
    overrides: dict[str, Any],
    blocks: BlocksOf | None = None,
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
            and entry.environment is None
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
                stored_feature.regenerated,
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
                if blocks is not None:
                    reasons = with_ranges(reasons, group, blocks, current)
            if stored_feature is not None and stored_feature.problem is not None:
                state, message = "failed", stored_feature.problem  # its files fail verification
            elif not reasons and cached.environment is not None:
                reasons = (environment_reason(cached.environment),)
                state, message = "stale", _stale_message(reasons)
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
        stored_feature.regenerated if stored_feature is not None else None,
    )


def environment_reason(detail: str) -> Reason:
    """The reason of an entry marked by ``verify --repair`` (:mod:`core.store.marks`): the
    library versions that produced the data → those that compute it differently now; only the
    libraries whose versions differ, or all of them when none does (the data still differs)."""
    try:
        value = json.loads(detail)
    except ValueError:
        value = None
    old = value.get("old") if isinstance(value, dict) else None
    new = value.get("new") if isinstance(value, dict) else None
    old = old if isinstance(old, dict) else {}
    new = new if isinstance(new, dict) else {}
    names = sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n)) or sorted(new)

    def text(versions: dict[str, Any]) -> str:
        if not versions:
            return "not recorded"
        return ", ".join(f"{n} {versions[n]}" for n in names if n in versions) or "not recorded"

    return Reason(ENVIRONMENT, text(old), text(new))


# (content digest) -> the block digests of that audio version, or None; the current version's
# when the digest is the source's current one
BlocksOf = Callable[[str], "BlockDigests | None"]


def with_ranges(
    reasons: tuple[Reason, ...],
    group: Group,
    blocks: BlocksOf,
    current: Mapping[str, Any] | None = None,
) -> tuple[Reason, ...]:
    """``reasons`` with the ``audio.content`` reason given its changed time ranges and the
    frames of ``group``'s calculator they affect, when both versions' blocks are known and
    comparable (same rate, channels and block size); a whole-file change keeps none. A
    tempo map changed alone gets the time from which the calculator's frames are
    re-segmented, to the end (``current``: the current fingerprint, for the audio's digest and
    the tempo map)."""
    current = current or {}
    out = list(reasons)
    for i, reason in enumerate(out):
        if reason.input == fpr.TEMPO and len(out) == 1:
            out[i] = _tempo_ranges(reason, group, blocks, current.get(fpr.AUDIO_CONTENT))
            continue
        if reason.input != fpr.AUDIO_CONTENT or not isinstance(reason.old, str):
            continue
        if not isinstance(reason.new, str):
            continue
        old = blocks(reason.old)
        new = blocks(reason.new) if old is not None else None  # the current one may decode
        if old is None or new is None:
            continue
        spans = changed_ranges(old, new)
        if spans is None:
            continue
        reach = declared_reach(group.calc, group.params, new.sample_rate)
        frames: tuple[tuple[int, int], ...] | str
        if reach is None and group.calc.uses_tempo and fpr.TEMPO in current:
            # beat segments: bounded by the tempo map's grid over the new audio (as a partial
            # recomputation bounds them, core.engine_window.wanted_frames)
            tempo = TempoMap.from_json(current[fpr.TEMPO])
            bounded = wanted_frames(
                group.calc,
                group.params,
                new.sample_rate,
                spans,
                0,
                tempo=tempo,
                n_samples=new.frames,
            )
            frames = bounded if bounded is not None else ("all" if spans else ())
        elif reach is None:
            frames = "all" if spans else ()  # unbounded: any change may change any frame
        else:
            n_frames = max(frame_count(reach, old.frames), frame_count(reach, new.frames))
            frames = affected_frames(spans, reach, n_frames)
        out[i] = replace(reason, ranges=seconds(spans, new.sample_rate), affected_frames=frames)
    return tuple(out)


def _tempo_ranges(reason: Reason, group: Group, blocks: BlocksOf, digest: object) -> Reason:
    """A tempo reason with ``ranges`` [[T, end]] and ``affected_frames`` [[k, last]]: the
    frames from the first re-segmented one (at T) to the end; unchanged without the audio's
    length (its block digests) or a tempo reach (core.engine_window.tempo_changed_from)."""
    audio = blocks(digest) if isinstance(digest, str) else None
    if audio is None or not group.calc.uses_tempo:
        return reason
    try:
        old = TempoMap.from_json(reason.old)
        new = TempoMap.from_json(reason.new)
    except DiagnosticsError:
        return reason
    first = tempo_changed_from(group.calc, group.params, audio.sample_rate, audio.frames, old, new)
    if first is None:
        return replace(
            reason,
            ranges=((0.0, round(audio.frames / audio.sample_rate, 6)),),
            affected_frames="all",
        )
    times = new.beat_times(
        audio.frames / audio.sample_rate, group.params.get_int("beat_subdivision")
    )
    if first >= len(times):
        return replace(reason, ranges=(), affected_frames=())
    end = round(audio.frames / audio.sample_rate, 6)
    return replace(
        reason,
        ranges=((round(float(times[first]), 6), end),),
        affected_frames=((first, len(times) - 1),),
    )


def _stale_message(reasons: Sequence[Reason]) -> str:
    return "; ".join(str(r) for r in reasons[:3]) + (
        f"; +{len(reasons) - 3} more" if len(reasons) > 3 else ""
    )
