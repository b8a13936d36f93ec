"""Comparing two versions of a feature: what changed in the numbers, and where in time.

API (stable: ``verify`` and ``report`` build on it)::

    # one side of a comparison: a feature's values, read by blocks of frames, and its times
    side_of_entry(store, entry, feature, label="current") -> Side
    side_of_previous(store, version: PreviousVersion, label="previous") -> Side
    side_of_array(meta, data, times=None, label="array") -> Side   # data (n, ch, w) or memmap
    side_of_npy(path, like: Side, label=None) -> Side               # a .npy laid out as ``like``
    compare_sides(old: Side, new: Side, rules=None, block_bytes=...) -> Comparison
    compare_with_previous(store, entry, feature) -> Comparison | None  # None: no previous
    rules_for(meta) -> tuple[Tolerance, ...]   # one per column (the meta's width)
    TOLERANCES                                 # the table below, as values
    regenerated_label(verdict) -> "identical" | "changed"   # check --json's "regenerated"
    record_regenerations(store, committed_entries)   # jobs.run_work, after a pass commits
    clock(seconds) -> "m:ss.mmm"                      # how comparisons write times

    (all importable from here; the sides live in :mod:`.compare_sides`, the value types and
    the tolerance rules in :mod:`.compare_rules`, which the diagnosis reads.)

    Store side (core.store): store.previous(key, feature) -> PreviousVersion | None,
    store.load_previous(version, mmap=True, frames=slice) -> LoadedFeature,
    store.previous_versions(), store.drop_previous(items), entry.provenance (dict),
    StoredFeature.regenerated / Row.regenerated / Row.note.

    Comparison (frozen): feature, frames_compared, max_abs_diff, rms_abs_diff, max_rel_diff,
    correlation, frames_beyond, share_beyond, first_diff_s, worst_diff_s, ranges
    ((start_s, end_s), ...), ranges_total, nonfinite_mismatches, verdict, tolerance (text),
    common_grid (bool), note (str | None); ``to_json()`` is what ``compare --json`` prints.

Verdicts
    ``identical``: compared frame by frame (same frame count, channels, width and frame
    times) and every value equal bit for bit (NaN equals NaN). ``within tolerance``: no frame
    beyond its tolerance (always the best verdict on a common time grid, where values are
    interpolated). ``differs``: at least one frame beyond tolerance, a NaN or infinity on one
    side only, or no time in common.

A frame is *beyond tolerance* when any of its values (any channel, any column) is: the
measure of each column is given by the feature's unit (the first rule that matches):

=======================  ====================================  =============================
unit (features)          measure                                tolerance
=======================  ====================================  =============================
``dB``, ``dBFS``         absolute difference, in dB             0.05 dB
(spectrogram, mel)       (u16db storage steps are ~0.001 dB)
``Hz`` (pitch f0,        difference in cents: 1200·|log2(a/b)|  1 cent; a value <= 0 (no
centroid)                                                       pitch) must match exactly
``Hz``, column named     absolute difference                    0.001
``confidence``
``FS`` (rms, peaks,      relative: |a−b| / max(|a|, |b|, 1e-6)  1e-4 (~0.001 dB); below
beat_rms)                                                       1e-6 FS (−120 dBFS) absolute
anything else (chroma,   absolute difference                    1e-4
onset, plugins' units)
=======================  ====================================  =============================

Statistics: ``max_abs_diff`` and ``rms_abs_diff`` over every pair of finite values;
``max_rel_diff`` (|a−b| / max(|a|, |b|) where that is above 1e-6) only for linear units (not
for dB, where a ratio of logarithms means nothing); ``correlation`` is Pearson's over every
pair of finite values (None when either side is constant); ``first_diff_s`` and
``worst_diff_s`` are the times of the first frame beyond tolerance and of the frame furthest
beyond it (largest measure/tolerance); ``ranges`` are the runs of consecutive frames beyond
tolerance, each from its first frame's time to the next frame's time (at most
:data:`MAX_RANGES`, the first ones; ``ranges_total`` counts them all).

Different shapes (another hop or window, or other frame times): the sides are compared on a
*common time grid*, the frame times of the coarser side (the larger median frame step) within
the time both cover; the other side is interpolated linearly in time, and across bins by
frequency when the widths differ and both have bin centres (over the bins both cover). The
``note`` says so. Channels must match.

Streaming: frames are read in blocks of about ``block_bytes`` (8 MiB of float64 per side by
default) through :meth:`FeatureStore.load` with a frame range (a memory map released after
each block), so two 60-minute spectrograms compare in flat memory (``bench/compare.py``). Only
the frame times are held whole (8 bytes per frame).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from diagnostics_app.core.compare_rules import (
    REL_FLOOR,
    TOLERANCES,
    Comparison,
    Tolerance,
    Verdict,
    clock,
    is_linear,
    regenerated_label,
    rules_for,
    tolerance_text,
)
from diagnostics_app.core.compare_sides import (
    Side,
    side_of_array,
    side_of_entry,
    side_of_npy,
    side_of_previous,
)
from diagnostics_app.core.errors import DiagnosticsError, StoreError
from diagnostics_app.core.store import FeatureStore, StoredEntry

MAX_RANGES: Final = 1000
DEFAULT_BLOCK_BYTES: Final = 8 << 20


# -- the streaming accumulator ----------------------------------------------------------------


class _Acc:
    """Statistics merged block by block (float64; co-moments merged as Chan et al.)."""

    def __init__(self, rules: Sequence[Tolerance], linear: bool, times: np.ndarray) -> None:
        self.rules = tuple(rules)
        self.groups = [
            (rule, np.array([i for i, r in enumerate(rules) if r == rule], dtype=np.intp))
            for rule in dict.fromkeys(rules)
        ]
        self.linear = linear
        # max(|a|, |b|) is needed for relative differences only
        self._need_big = linear or any(r.measure == "rel" for r in rules)
        self.times = times  # of the compared grid
        self.frames = 0
        self.equal = True
        self.max_abs: float | None = None
        self.sq_sum = 0.0
        self.count = 0
        self.max_rel: float | None = None
        self.n = 0
        self.mean_a = self.mean_b = 0.0
        self.m2a = self.m2b = self.cab = 0.0
        self.beyond = 0
        self.nonfinite = 0
        self.first: int | None = None
        self.worst: int | None = None
        self.worst_score = -1.0
        self.ranges: list[tuple[int, int]] = []  # (first, last) frame indices
        self.range_count = 0
        self.last_end = -2  # last frame of the last run seen

    def add(self, start: int, a: np.ndarray, b: np.ndarray) -> None:
        """Frames ``start ..`` of the grid: ``a`` (old) and ``b`` (new), (n, ch, w)."""
        n = a.shape[0]
        if n == 0:
            return
        width = a.shape[2]
        a = a.reshape(n, -1).astype(np.float64)  # (frames, channels x columns), own copies
        b = b.reshape(n, -1).astype(np.float64)
        d = a - b
        np.abs(d, out=d)
        if bool(np.isfinite(d).all()):  # both sides finite everywhere: the common, fast case
            finite: np.ndarray | None = None
            mismatch: np.ndarray | None = None
            if self.equal and bool(d.any()):
                self.equal = False
        else:
            finite = np.isfinite(a) & np.isfinite(b)
            same = (a == b) | (np.isnan(a) & np.isnan(b))
            mismatch = ~same & ~finite  # NaN or infinity on one side only (or +inf vs -inf)
            if self.equal and not bool(same.all()):
                self.equal = False
            self.nonfinite += int(mismatch.sum())
            d[~finite] = 0.0
            a = np.where(finite, a, 0.0)  # non-finite pairs take no part in the statistics
            b = np.where(finite, b, 0.0)
        count = d.size if finite is None else int(finite.sum())
        if count:
            m = float(d.max())
            self.max_abs = m if self.max_abs is None else max(self.max_abs, m)
            flat = d.ravel()
            self.sq_sum += _dot(flat, flat)
            self.count += count
            self._moments(a, b, count)
        big = np.maximum(np.abs(a), np.abs(b)) if self._need_big else a  # (a: unused)
        if self.linear and count:
            ok = big > REL_FLOOR if finite is None else (big > REL_FLOOR) & finite
            if ok.any():
                r = float((d[ok] / big[ok]).max())
                self.max_rel = r if self.max_rel is None else max(self.max_rel, r)
        per_frame = np.zeros(n, dtype=np.float64)  # the largest measure / tolerance
        channels = a.shape[1] // max(1, width)
        for rule, cols in self.groups:
            if len(self.groups) == 1:
                sel: Any = slice(None)
            else:
                sel = (cols[None, :] + width * np.arange(channels)[:, None]).ravel()
            score = _measure(rule, a[:, sel], b[:, sel], d[:, sel], big[:, sel]) / rule.value
            np.maximum(per_frame, score.max(axis=1), out=per_frame)
        if mismatch is not None:
            per_frame[mismatch.any(axis=1)] = np.inf
        over = per_frame > 1.0
        self.frames += n
        beyond = int(over.sum())
        if beyond:
            self.beyond += beyond
            if self.first is None:
                self.first = start + int(np.argmax(over))
            k = int(np.argmax(per_frame))
            if per_frame[k] > self.worst_score:
                self.worst_score = float(per_frame[k])
                self.worst = start + k
        self._runs(start, over)

    def _moments(self, a: np.ndarray, b: np.ndarray, nb: int) -> None:
        """Merge this block's co-moments (non-finite pairs zeroed and not counted: ``nb``)."""
        fa, fb = a.ravel(), b.ravel()
        ma, mb = float(fa.sum()) / nb, float(fb.sum()) / nb
        # sums of products minus the mean terms: float64, and the values are dB or linear
        # levels of modest range, so the cancellation costs far less than the tolerances
        m2a = _dot(fa, fa) - nb * ma * ma
        m2b = _dot(fb, fb) - nb * mb * mb
        cab = _dot(fa, fb) - nb * ma * mb
        n = self.n + nb
        ea, eb = ma - self.mean_a, mb - self.mean_b
        f = self.n * nb / n
        self.m2a += max(0.0, m2a) + ea * ea * f
        self.m2b += max(0.0, m2b) + eb * eb * f
        self.cab += cab + ea * eb * f
        self.mean_a += ea * nb / n
        self.mean_b += eb * nb / n
        self.n = n

    def _runs(self, start: int, over: np.ndarray) -> None:
        """Runs of consecutive frames beyond tolerance, carried across blocks: the first
        MAX_RANGES kept, all counted."""
        edges = np.diff(np.concatenate(([0], over.astype(np.int8), [0])))
        starts = np.flatnonzero(edges == 1)
        stops = np.flatnonzero(edges == -1) - 1  # last frame of each run
        for s, e in zip(starts, stops, strict=True):
            first, last = start + int(s), start + int(e)
            if self.last_end == first - 1:  # continues the run the previous block ended
                if self.ranges and self.ranges[-1][1] == first - 1:
                    self.ranges[-1] = (self.ranges[-1][0], last)
            else:
                self.range_count += 1
                if len(self.ranges) < MAX_RANGES:
                    self.ranges.append((first, last))
            self.last_end = last

    def result(self, feature: str, tolerance: str, grid: bool, note: str | None) -> Comparison:
        times = self.times

        def end_of(i: int) -> float:
            if i + 1 < len(times):
                return float(times[i + 1])
            step = float(times[-1] - times[-2]) if len(times) > 1 else 0.0
            return float(times[i]) + step

        ranges = tuple((float(times[s]), end_of(e)) for s, e in self.ranges)
        corr = None
        if self.n > 1 and self.m2a > 0 and self.m2b > 0:
            corr = max(-1.0, min(1.0, self.cab / math.sqrt(self.m2a * self.m2b)))
        verdict: Verdict
        if self.beyond or self.nonfinite:
            verdict = "differs"
        elif self.equal and not grid:
            verdict = "identical"
        else:
            verdict = "within tolerance"
        return Comparison(
            feature=feature,
            frames_compared=self.frames,
            max_abs_diff=self.max_abs,
            rms_abs_diff=math.sqrt(self.sq_sum / self.count) if self.count else None,
            max_rel_diff=self.max_rel,
            correlation=corr,
            frames_beyond=self.beyond,
            share_beyond=self.beyond / self.frames if self.frames else 0.0,
            first_diff_s=None if self.first is None else float(times[self.first]),
            worst_diff_s=None if self.worst is None else float(times[self.worst]),
            ranges=ranges,
            ranges_total=self.range_count,
            nonfinite_mismatches=self.nonfinite,
            verdict=verdict,
            tolerance=tolerance,
            common_grid=grid,
            note=note,
        )


def _dot(x: np.ndarray, y: np.ndarray) -> float:
    """Sum of products, on this thread: BLAS's dot starts its thread pool for vectors this
    long, which on a busy machine (a GUI, other passes) spent 3x the wall time of the rest
    of the comparison waiting for its threads."""
    return float(np.einsum("i,i->", x, y))


def _measure(
    rule: Tolerance, a: np.ndarray, b: np.ndarray, d: np.ndarray, big: np.ndarray
) -> np.ndarray:
    """Per value, the difference as ``rule`` measures it (``d`` = |a - b|, ``big`` =
    max(|a|, |b|); non-finite pairs are zeroed beforehand and handled apart)."""
    if rule.measure == "abs":
        return d
    if rule.measure == "rel":
        return d / np.maximum(big, REL_FLOOR)
    # cents: both positive → 1200 |log2(a/b)|; otherwise (no pitch on a side) exact
    pos = (a > 0) & (b > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cents = 1200.0 * np.abs(np.log2(np.where(pos, a, 1.0) / np.where(pos, b, 1.0)))
    return np.where(pos, cents, np.where(d > 0, np.inf, 0.0))


# -- comparing ---------------------------------------------------------------------------------


def _same_times(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if len(a) == 0:
        return True
    scale = max(1.0, float(np.abs(a[-1])))
    return bool(np.allclose(a, b, rtol=0.0, atol=1e-9 * scale))


def _median_step(times: np.ndarray) -> float:
    if len(times) < 2:
        return 0.0
    return float(np.median(np.diff(times[: min(len(times), 100_000)])))


def compare_sides(
    old: Side,
    new: Side,
    rules: Sequence[Tolerance] | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> Comparison:
    """Compare ``old`` (the reference: a previous version, a file) with ``new`` (a row's
    data), streaming by blocks; see the module for the rules. DiagnosticsError (one line) when
    they cannot be compared (channels differ, widths differ without bins to match)."""
    feature = new.meta.feature
    if old.channels != new.channels:
        raise DiagnosticsError(
            f"{feature}: {old.label} has {old.channels} channel(s), {new.label} {new.channels}; "
            "cannot compare"
        )
    rules = tuple(rules) if rules is not None else rules_for(new.meta)
    direct = (
        old.frames == new.frames and old.width == new.width and _same_times(old.times, new.times)
    )
    if direct:
        tol = tolerance_text(rules, new.meta)
        acc = _Acc(rules, is_linear(new.meta), np.asarray(new.times))
        per_frame = max(1, block_bytes // max(1, 8 * new.channels * new.width))
        for start in range(0, new.frames, per_frame):
            stop = min(new.frames, start + per_frame)
            acc.add(start, old.read(start, stop), new.read(start, stop))
        return acc.result(feature, tol, False, None)
    return _compare_on_grid(old, new, rules, block_bytes)


def _compare_on_grid(
    old: Side, new: Side, rules: Sequence[Tolerance], block_bytes: int
) -> Comparison:
    """Different frame counts, times or widths: the coarser side's frame times within the
    span both cover; the finer side interpolated onto them (see the module)."""
    feature = new.meta.feature
    for side in (old, new):
        t = np.asarray(side.times)
        if not (np.isfinite(t).all() and bool((np.diff(t) >= 0).all())):
            raise DiagnosticsError(
                f"{feature}: the {side.label}'s frame times do not increase; cannot compare "
                "on a common time grid"
            )
    step_old, step_new = _median_step(old.times), _median_step(new.times)
    grid_side, other = (old, new) if step_old >= step_new else (new, old)
    bins_g, bins_o = grid_side.meta.bins, other.meta.bins
    columns: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    keep = np.arange(grid_side.width)
    if grid_side.width != other.width or (bins_g and bins_o and tuple(bins_g) != tuple(bins_o)):
        if not (len(bins_g) == grid_side.width and len(bins_o) == other.width):
            raise DiagnosticsError(
                f"{feature}: {old.label} has {old.width} column(s), {new.label} {new.width}, "
                "without bin centres to match them; cannot compare"
            )
        bg, bo = np.asarray(bins_g, dtype=np.float64), np.asarray(bins_o, dtype=np.float64)
        keep = np.flatnonzero((bg >= bo[0]) & (bg <= bo[-1]))
        j = np.clip(np.searchsorted(bo, bg[keep]), 1, max(1, len(bo) - 1))
        lo = bo[j - 1]
        span = np.where(bo[j] > lo, bo[j] - lo, 1.0)
        w = np.clip((bg[keep] - lo) / span, 0.0, 1.0)
        columns = (j - 1, np.minimum(j, len(bo) - 1), w)
    if len(rules) != grid_side.width:
        rules = rules_for(grid_side.meta)
    rules_g = tuple(rules[int(i)] for i in keep)
    t_g, t_o = np.asarray(grid_side.times), np.asarray(other.times)
    what = _grid_note(old, new, step_old, step_new)
    tol = tolerance_text(rules_g, grid_side.meta)
    if len(t_g) == 0 or len(t_o) == 0:
        acc = _Acc(rules_g, is_linear(new.meta), t_g[:0])
        return acc.result(feature, tol, True, f"{what}: no frames to compare")
    lo_t, hi_t = max(t_g[0], t_o[0]), min(t_g[-1], t_o[-1])
    inside = np.flatnonzero((t_g >= lo_t - 1e-9) & (t_g <= hi_t + 1e-9))
    if len(inside) == 0:
        acc = _Acc(rules_g, is_linear(new.meta), t_g[:0])
        out = acc.result(feature, tol, True, f"{what}: the two cover no common time")
        return _force_differs(out)
    g0, g1 = int(inside[0]), int(inside[-1]) + 1
    grid_times = t_g[g0:g1]
    acc = _Acc(rules_g, is_linear(new.meta), grid_times)
    per_frame = max(1, block_bytes // max(1, 8 * grid_side.channels * grid_side.width))
    for start in range(g0, g1, per_frame):
        stop = min(g1, start + per_frame)
        tg = t_g[start:stop]
        g_vals = grid_side.read(start, stop)[..., keep]
        k = np.clip(np.searchsorted(t_o, tg), 1, max(1, len(t_o) - 1))
        first, last = int(k[0]) - 1, int(k[-1]) + 1
        block = other.read(max(0, first), min(len(t_o), last)).astype(np.float64)
        base = max(0, first)
        i0, i1 = k - 1 - base, np.minimum(k, len(t_o) - 1) - base
        t0, t1 = t_o[k - 1], t_o[np.minimum(k, len(t_o) - 1)]
        wt = np.clip((tg - t0) / np.where(t1 > t0, t1 - t0, 1.0), 0.0, 1.0)[:, None, None]
        o_vals = block[i0] * (1.0 - wt) + block[i1] * wt
        if columns is not None:
            c0, c1, wc = columns
            o_vals = o_vals[..., c0] * (1.0 - wc) + o_vals[..., c1] * wc
        a, b = (g_vals, o_vals) if grid_side is old else (o_vals, g_vals)
        acc.add(start - g0, a, b)
    note = f"{what}: {g1 - g0} frames on the {grid_side.label}'s grid over {_span(grid_times)}"
    if columns is not None:
        note += f", {len(keep)} of its {grid_side.width} bins (the bins both cover)"
    return acc.result(feature, tol, True, note)


def _force_differs(c: Comparison) -> Comparison:
    return dataclasses.replace(c, verdict="differs")


def _grid_note(old: Side, new: Side, step_old: float, step_new: float) -> str:
    parts = []
    if old.frames != new.frames:
        parts.append(f"{old.frames} vs {new.frames} frames")
    if abs(step_old - step_new) > 1e-12:
        parts.append(f"frame step {step_old * 1000:.3f} vs {step_new * 1000:.3f} ms")
    if old.width != new.width:
        parts.append(f"{old.width} vs {new.width} columns")
    if not parts:
        parts.append("other frame times")
    return f"compared on a common time grid ({old.label} vs {new.label}: {', '.join(parts)})"


def _span(times: np.ndarray) -> str:
    return f"{clock(float(times[0]))}–{clock(float(times[-1]))}"


def compare_with_previous(
    store: FeatureStore, entry: StoredEntry, feature: str, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> Comparison | None:
    """The current data of (entry, feature) compared with its previous version; None when
    no previous version is kept."""
    version = store.previous(entry.key, feature)
    if version is None:
        return None
    return compare_sides(
        side_of_previous(store, version),
        side_of_entry(store, entry, feature),
        block_bytes=block_bytes,
    )


def record_regenerations(store: FeatureStore, committed: Sequence[StoredEntry]) -> None:
    """After a pass committed ``committed``: compare each feature that replaced a previous
    version with it and record the verdict on the row (``StoredFeature.regenerated``).

    Done at commit time, in the job (its worker process for the GUI): the data was just
    written (its pages are hot), the cost is one streamed pass over both versions, paid once
    per regeneration, and a listing of 100,000 rows never compares anything. A previous
    version whose files cannot be read (deleted, truncated, replaced: the row was failed for
    it) is dropped: there is nothing to compare with. Any other problem leaves the verdict
    unset (``compare`` still answers, on demand)."""
    for entry in committed:
        for feature in entry.features:
            try:
                _record_one(store, entry, feature)
            except DiagnosticsError:
                # the index is busy or read-only now: the entries are committed all the same,
                # so the pass is done (its callers report what raises here as the pass failing)
                continue


def _record_one(store: FeatureStore, entry: StoredEntry, feature: str) -> None:
    version = store.previous(entry.key, feature)
    if version is None or version.replaced_by != entry.commit_id:
        return
    try:
        store.load_previous(version, frames=slice(0, 1))  # header and size checked
    except StoreError:
        store.drop_previous([(entry.key, feature)])
        return
    try:
        result = compare_sides(
            side_of_previous(store, version), side_of_entry(store, entry, feature)
        )
    except DiagnosticsError:
        return
    store.set_regenerated(entry.key, feature, entry.commit_id, result.verdict)


__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "MAX_RANGES",
    "TOLERANCES",
    "Comparison",
    "Side",
    "Tolerance",
    "clock",
    "compare_sides",
    "compare_with_previous",
    "record_regenerations",
    "regenerated_label",
    "rules_for",
    "side_of_array",
    "side_of_entry",
    "side_of_npy",
    "side_of_previous",
]
