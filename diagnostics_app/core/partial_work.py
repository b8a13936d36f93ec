"""Partial recomputation of a pass: only the frames an edit touches (issue 13).

A planned pass is first offered here (:func:`run_partial`): every calculator whose stored
entry differs from what the pass would write *only* in where the audio changed (the
``audio.content`` field, with both versions' block digests known and a bounded reach) or, for
a tempo-reading calculator, only in the tempo map from some beat on, is recomputed over the
frames that change (:func:`core.engine_window.recompute_frames`, one decode of the needed
windows for all of them) and those frames are spliced into the entry
(:meth:`FeatureStore.commit_splices`, atomic). What cannot be done partially — another
changed input, no block digests, an unbounded reach, windows it cannot start on
(:func:`core.engine_window.aligned`), a decode that does not match the new version's digests,
an entry that changed (or whose files went) since it was read — is left to the full pass,
which recomputes it whole: a partial result is either exact or not attempted.

The rule deciding *whether* a calculator can be partial lives here once (:func:`_target`);
its first half (which inputs differ) is :func:`core.fingerprint.partial_kind`, which the
planner shows (``PlannedJob.partial``); the runner decides here, with the store at hand.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from diagnostics_app.core import fingerprint as fpr
from diagnostics_app.core.audio import read_info
from diagnostics_app.core.calculators.base import Calculator, declared_reach
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.compare import compare_sides, side_of_array
from diagnostics_app.core.engine import CancelToken, PassPlan
from diagnostics_app.core.engine_window import (
    PartialResult,
    PartialUnsupported,
    aligned,
    recompute_frames,
    tempo_changed_from,
    wanted_frames,
)
from diagnostics_app.core.errors import Cancelled, DiagnosticsError, StoreError
from diagnostics_app.core.pass_spec import PassWork
from diagnostics_app.core.ranges import BlockDigests, changed_ranges, frame_count
from diagnostics_app.core.splice import FrameSplice
from diagnostics_app.core.store import EntryKey, FeatureStore, StoredEntry
from diagnostics_app.core.tempo import TempoMap
from diagnostics_app.core.timefmt import format_time

Report = Callable[[float, str], None]

# how a pass's note begins (a progress label that its job keeps as its final message)
NOTE_PREFIXES = ("partial: ", "recomputed whole: ")


def is_note(label: str) -> bool:
    """Whether a progress label is a partial attempt's note (see :func:`run_partial`)."""
    return label.startswith(NOTE_PREFIXES)


@dataclass(frozen=True)
class _Target:
    """One calculator to recompute partially: its entry as read, and its wanted frames."""

    calc: Calculator
    entry: StoredEntry
    wanted: tuple[tuple[int, int], ...]


class _PassAudio:
    """What every calculator of a pass asks about its audio, read once per pass: block
    digests by content digest (a blob of ~42 KB per hour, from the index) and the file's
    frame count (a header read)."""

    def __init__(self, store: FeatureStore, path: str) -> None:
        self._store, self._path = store, path
        self._blocks: dict[str, BlockDigests | None] = {}
        self._frames: int | None = None

    def blocks(self, digest: str) -> BlockDigests | None:
        if digest not in self._blocks:
            self._blocks[digest] = self._store.get_blocks(digest)
        return self._blocks[digest]

    @property
    def frames(self) -> int:
        """The header's frame count, as the run's context counts them."""
        if self._frames is None:
            self._frames = read_info(self._path).frames
        return self._frames


@dataclass(frozen=True)
class PartialDone:
    """What :func:`run_partial` did: the calculators committed partially, the work left for
    the full pass (None: nothing), and the job's note ("partial: 0:01.2 of 60:00
    recomputed"), or why the partial attempt fell back (None when none was attempted)."""

    committed: tuple[str, ...]
    rest: PassWork | None
    note: str | None


def run_partial(
    store: FeatureStore,
    registry: Registry,
    work: PassWork,
    report: Report,
    cancel: CancelToken,
) -> PartialDone:
    """Recompute partially what can be (see the module), commit it, and return the rest of
    ``work`` for the full pass. Raises Cancelled; any other failure of the partial attempt
    leaves its calculators to the full pass (their note says why)."""
    targets: list[_Target] = []
    blocks: BlockDigests | None = None
    audio = _PassAudio(store, work.path)
    for calc_id in work.calculators:
        if calc_id not in work.partial:
            continue  # not planned partial: no lookup at all
        try:
            target, new_blocks = _target(store, registry, work, calc_id, audio)
        except (DiagnosticsError, ValueError):
            continue  # decided below by the full pass
        if target is not None:
            targets.append(target)
            blocks = new_blocks or blocks
    if not targets:
        return PartialDone((), work, None)
    plan = PassPlan(work.path, work.params, work.tempo, tuple(t.calc for t in targets))
    wanted = {t.calc.id: t.wanted for t in targets}
    try:
        result = recompute_frames(
            plan,
            wanted,
            expected=blocks,
            progress=lambda f, label: report(f * 0.98, label),
            cancel=cancel,
        )
    except Cancelled:
        raise
    except Exception as exc:
        # PartialUnsupported, and any failure of the windows' decode or runs (a format that
        # cannot seek, say): the full pass, which never seeks, decides; nothing was committed
        return PartialDone((), work, f"recomputed whole: {exc}")
    committed: list[str] = []
    why: list[str] = []
    for t in targets:
        try:
            splices = _splices(t, result)
            replaced = _replaced_frames(store, t.entry, splices)
            entry = store.commit_splices(
                t.entry.key,
                work.fingerprints[t.calc.id],
                work.versions[t.calc.id],
                t.entry.commit_id,
                splices,
            )
        except (StoreError, PartialUnsupported) as exc:
            # StaleBase, or the entry's files gone or damaged since it was read (the replaced
            # frames are read before the commit): nothing was committed, the full pass
            # recomputes it whole
            why.append(f"{t.calc.id}: {exc}")
            continue
        committed.append(t.calc.id)
        _record_verdicts(store, entry, splices, replaced)
    rest = _without(work, committed)
    rate = int(work.fingerprints[committed[0]][fpr.AUDIO_RATE]) if committed else 0
    note = _note(result, rate) if committed else None
    if why:  # one line, however many calculators fell back
        more = f" (+{len(why) - 1} more)" if len(why) > 1 else ""
        note = "; ".join([*(n for n in [note] if n), f"recomputed whole: {why[0]}{more}"])
    elif note is not None and rest is not None:
        # the pass's job record is shared: say which of its calculators ran whole beside
        note += f"; whole: {', '.join(rest.calculators)}"
    return PartialDone(tuple(committed), rest, note)


def _target(
    store: FeatureStore, registry: Registry, work: PassWork, calc_id: str, audio: _PassAudio
) -> tuple[_Target | None, BlockDigests | None]:
    """The calculator ``calc_id`` of ``work`` as a partial target (with the new audio's
    block digests, which verify the windows' decode), or None: recompute it whole."""
    calc = registry.get(calc_id)
    key = EntryKey(work.source, calc_id, work.profile, work.params_key)
    entry = store.get(key)
    if entry is None or entry.problems or entry.environment is not None:
        return None, None
    if set(entry.features) != set(work.wanted.get(calc_id, ())):
        return None, None  # the entry must keep exactly its features
    current = work.fingerprints[calc_id]
    stored = entry.fingerprint
    kind = fpr.partial_kind(stored, current)
    rate = current.get(fpr.AUDIO_RATE)
    if kind is None or not isinstance(rate, int) or _frames_of(entry) is None:
        return None, None
    new = audio.blocks(str(current[fpr.AUDIO_CONTENT]))
    if new is None:
        return None, None
    n_samples = audio.frames
    wanted: tuple[tuple[int, int], ...] | None
    if not aligned(calc, work.params, rate, new.block_frames):
        return None, None  # its windows cannot start on the digest blocks
    if kind == "audio":
        old = audio.blocks(str(stored[fpr.AUDIO_CONTENT]))
        spans = changed_ranges(old, new) if old is not None else None
        if spans is None:
            return None, None
        reach = declared_reach(calc, work.params, rate)
        new_n = frame_count(reach, new.frames) if reach is not None else 0
        wanted = wanted_frames(
            calc, work.params, rate, spans, new_n, tempo=work.tempo, n_samples=n_samples
        )
    else:  # the tempo map alone: frames before the first re-segmented beat stay
        old_tempo = TempoMap.from_json(stored.get(fpr.TEMPO))
        first = tempo_changed_from(calc, work.params, rate, n_samples, old_tempo, work.tempo)
        wanted = None if first is None else ((first, _OPEN_END),)
    if wanted is None:
        return None, None
    return _Target(calc, entry, wanted), new


# the last wanted range of a tempo change runs to the new data's end, however many frames the
# new map gives (the engine cuts a range at the end)
_OPEN_END = 1 << 62


def _frames_of(entry: StoredEntry) -> int | None:
    counts = {f.frames for f in entry.features.values()}
    return counts.pop() if len(counts) == 1 else None


def _splices(t: _Target, result: PartialResult) -> dict[str, list[FrameSplice]]:
    """The splices of each feature of ``t``'s entry: each recomputed range replaces the same
    frames of the old data, except a range reaching the new end, which replaces the old data
    to its end (the length may have changed). A shorter new data whose end no range reaches
    (cut exactly at a frame's edge) drops the old tail."""
    out: dict[str, list[FrameSplice]] = {}
    metas = result.metas.get(t.calc.id, {})
    for feature, stored in t.entry.features.items():
        if metas.get(feature) != stored.meta:
            raise PartialUnsupported(f"{feature}: its layout changed")
        old_n = stored.frames
        new_n = result.n_frames[t.calc.id][feature]
        splices = []
        for piece in result.frames[t.calc.id][feature]:
            last = piece.first + len(piece.data) - 1
            if last >= new_n - 1 and piece.first <= old_n:
                removed = old_n - piece.first
            elif last < min(old_n, new_n - 1):
                removed = len(piece.data)
            else:
                raise PartialUnsupported(f"{feature}: recomputed frames past the old end")
            splices.append(FrameSplice(piece.first, removed, piece.data, piece.times))
        reaches_end = (
            bool(splices)
            and splices[-1].stop == old_n
            and (splices[-1].first + len(splices[-1].data) == new_n)
        )
        if new_n != old_n and not reaches_end:
            if new_n > old_n:
                raise PartialUnsupported(f"{feature}: the new frames at the end were not computed")
            empty = np.zeros((0, stored.channels, stored.width), np.float32)
            times = np.zeros(0, np.float64) if stored.times_path is not None else None
            splices.append(FrameSplice(new_n, old_n - new_n, empty, times))
        out[feature] = splices
    return out


def _replaced_frames(
    store: FeatureStore, entry: StoredEntry, splices: Mapping[str, Sequence[FrameSplice]]
) -> dict[str, np.ndarray | None]:
    """The stored frames each feature's splices replace, read before the commit (for the
    regeneration verdict); None for a feature whose length changes (no verdict from the
    splices alone: the whole comparison is on a time grid), and for explicit frame times
    (a re-cut beat grid may keep the count and move the times)."""
    out: dict[str, np.ndarray | None] = {}
    for feature, pieces in splices.items():
        if any(p.growth for p in pieces) or entry.features[feature].times_path is not None:
            out[feature] = None  # a length or a time axis changed: compared on a grid
            continue
        parts = [
            np.asarray(store.load(entry, feature, frames=slice(p.first, p.stop)).data)
            for p in pieces
        ]
        stored = entry.features[feature]
        out[feature] = (
            np.concatenate(parts)
            if parts
            else np.zeros((0, stored.channels, stored.width), np.float32)
        )
    return out


def _record_verdicts(
    store: FeatureStore,
    entry: StoredEntry,
    splices: Mapping[str, Sequence[FrameSplice]],
    replaced: Mapping[str, np.ndarray | None],
) -> None:
    """The regeneration verdict of each spliced feature (``StoredFeature.regenerated``, as
    ``compare.record_regenerations`` records after a whole commit), from the replaced frames
    alone: every other frame is the same file's same bytes, and a verdict is made frame by
    frame (identical / within tolerance / differs), so comparing the replaced frames with
    their replacements *as stored* gives the whole comparison's verdict at the cost of the
    edit. A feature whose length changed is left unset (``compare`` answers on demand)."""
    for feature, pieces in splices.items():
        old = replaced.get(feature)
        if old is None:
            continue
        with contextlib.suppress(DiagnosticsError):  # the data is committed all the same
            stored = entry.features[feature]
            new = [
                np.asarray(store.load(entry, feature, frames=slice(p.first, p.stop)).data)
                for p in pieces
            ]
            fresh = np.concatenate(new) if new else np.zeros((0, stored.channels, stored.width))
            step, start = stored.meta.frame_step or 0.0, stored.meta.frame_start
            index = [np.arange(p.first, p.stop, dtype=np.float64) for p in pieces]
            times = start + step * (np.concatenate(index) if index else np.zeros(0))
            verdict = (
                "identical"
                if not len(old)
                else compare_sides(
                    side_of_array(stored.meta, old, times, "previous"),
                    side_of_array(stored.meta, fresh, times, "current"),
                ).verdict
            )
            store.set_regenerated(entry.key, feature, entry.commit_id, verdict)


def _without(work: PassWork, done: Sequence[str]) -> PassWork | None:
    """``work`` without the calculators ``done`` (None when none is left)."""
    left = tuple(c for c in work.calculators if c not in done)
    if not left:
        return None
    if len(left) == len(work.calculators):
        return work
    return dataclasses.replace(
        work,
        calculators=left,
        fingerprints={c: work.fingerprints[c] for c in left},
        versions={c: work.versions[c] for c in left},
        wanted={c: f for c, f in work.wanted.items() if c in left},
    )


def _note(result: PartialResult, rate: int) -> str:
    """ "partial: 0:01.200 of 60:00.000 recomputed": the audio decoded for it, of the file."""
    return (
        f"partial: {format_time(result.decoded / rate)} of {format_time(result.total / rate)} "
        f"recomputed"
    )
