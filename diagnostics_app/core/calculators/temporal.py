"""Time-domain calculators: waveform peaks, RMS, and RMS per beat subdivision."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from diagnostics_app.core.axes import channel_names
from diagnostics_app.core.calculators.base import (
    AnalysisContext,
    Block,
    Calculator,
    CalculatorRun,
    FeatureSpec,
    OutputMeta,
    Outputs,
    Reach,
    as_frames,
    frame_reach,
    uniform_meta,
)
from diagnostics_app.core.params import Params
from diagnostics_app.core.tempo import TempoMap

# --- peaks -----------------------------------------------------------------------------------

PEAKS = FeatureSpec(
    "peaks", kind="peaks", unit="FS", description="min and max per block, per channel"
)


class PeaksCalculator(Calculator):
    """Min and max of every ``peaks_block`` samples, per audio channel (never mixed: the
    waveform view shows each channel). :func:`peaks_pyramid` derives coarser levels."""

    id = "core.peaks"
    version = 1
    features = (PEAKS,)
    params = ("peaks_block",)
    description = "waveform min/max per block, per channel"

    def reach(self, params: Params, sample_rate: int) -> Reach | None:
        # frame t: min and max of samples [t * block, (t + 1) * block); the last, partial
        # block repeats its own last sample, which lies inside it
        block = params.get_int("peaks_block")
        return Reach(before=0, after=block, step=block)

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _PeaksRun(ctx)


def window_extremes(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``windows.min(axis=-1), windows.max(axis=-1)`` of (channels, n, width), bit for bit.

    A reduction along short rows pays numpy's per-row overhead (64 samples a row: most of the
    time); the windows are transposed into columns instead (one copy) and reduced across
    them, contiguous over all the windows at once (about 2.5x less CPU). Minimum and maximum
    are exact, except which zero (+0.0 or -0.0) a tie gives, which depends on the order of
    the comparisons: windows whose extreme is a zero are reduced again along their rows, as
    the plain call does."""
    channels, n, width = windows.shape
    columns = np.ascontiguousarray(windows.reshape(channels * n, width).T)
    extremes = []
    for op in (np.minimum, np.maximum):
        result = op.reduce(columns, axis=0).reshape(channels, n)
        tie = result == 0
        if tie.any():
            result[tie] = op.reduce(windows[tie], axis=-1)
        extremes.append(result)
    return extremes[0], extremes[1]


class _PeaksRun(CalculatorRun):
    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        self.block = ctx.params.get_int("peaks_block")
        self.carry = np.zeros((ctx.audio_channels, 0), np.float32)

    def process(self, block: Block) -> Outputs:
        data = (
            np.concatenate([self.carry, block.samples], axis=1)
            if self.carry.size
            else block.samples
        )
        n_full = data.shape[1] // self.block
        if block.final and data.shape[1] % self.block:
            # last partial block: pad by repeating its own last sample (no invented zeros)
            n_full += 1
            pad = n_full * self.block - data.shape[1]
            data = np.concatenate([data, np.repeat(data[:, -1:], pad, axis=1)], axis=1)
        used = data[:, : n_full * self.block].reshape(data.shape[0], n_full, self.block)
        self.carry = data[:, n_full * self.block :]
        out = np.stack(window_extremes(used), axis=2)  # (C, n, 2)
        return {"peaks": as_frames(out)}

    def outputs(self) -> Mapping[str, OutputMeta]:
        ctx = self.ctx
        return {
            "peaks": OutputMeta(
                feature="peaks",
                channels=ctx.audio_channels,
                width=2,
                frame_step=self.block / ctx.sample_rate,
                unit=PEAKS.unit,
                channel_names=channel_names(ctx.audio_channels),  # never mixed
                width_names=("min", "max"),
            )
        }


PYRAMID_CHUNK = 8192  # coarse blocks reduced per step: the chunk's samples stay in the cache


def peaks_pyramid(peaks: np.ndarray, factor: int = 16, min_blocks: int = 2048) -> list[np.ndarray]:
    """Coarser min/max levels of a (blocks, channels, 2) peaks array, each ``factor`` times
    shorter, until a level has fewer than ``min_blocks`` blocks. Level 0 is ``peaks`` itself.

    Each level is the min of the ``factor`` mins and the max of the ``factor`` maxes of each
    group of blocks (a shorter last group when the length is not a multiple). The reduction
    works on one channel edge at a time, a chunk at a time: the chunk is copied out of the
    interleaved array into a small contiguous buffer, then folded with ``factor - 1``
    element-wise ``minimum``/``maximum`` calls over its columns. Reducing the interleaved
    array directly (``reshape(...).min(axis=1)``) strides through memory and is ~10x slower
    on an hour of audio."""
    levels = [peaks]
    while levels[-1].shape[0] > min_blocks:
        prev = levels[-1]
        n = prev.shape[0] // factor * factor
        if n == 0:
            break
        levels.append(_pyramid_level(prev, n, factor))
    return levels


def _pyramid_level(prev: np.ndarray, n: int, factor: int) -> np.ndarray:
    """One level coarser than ``prev``: its first ``n`` blocks (a multiple of ``factor``) in
    groups of ``factor``, then the remaining blocks as one last group."""
    groups = n // factor
    channels = prev.shape[1]
    level = np.empty((groups + (1 if n < prev.shape[0] else 0), channels, 2), prev.dtype)
    grouped = prev[:n].reshape(groups, factor, channels, 2)
    chunk = min(groups, PYRAMID_CHUNK)
    buf = np.empty((chunk, factor), prev.dtype)
    acc = np.empty(chunk, prev.dtype)
    folds = ((0, np.minimum), (1, np.maximum))
    for start in range(0, groups, chunk):
        stop = min(groups, start + chunk)
        block, fold = buf[: stop - start], acc[: stop - start]
        for ch in range(channels):
            for edge, op in folds:
                np.copyto(block, grouped[start:stop, :, ch, edge])
                np.copyto(fold, block[:, 0])
                for i in range(1, factor):
                    op(fold, block[:, i], out=fold)
                level[start:stop, ch, edge] = fold
    if n < prev.shape[0]:
        tail = prev[n:]
        level[groups, :, 0] = tail[..., 0].min(axis=0)
        level[groups, :, 1] = tail[..., 1].max(axis=0)
    return level


# --- rms -------------------------------------------------------------------------------------

RMS = FeatureSpec("rms", unit="FS", description="root mean square per frame")


class RmsCalculator(Calculator):
    """``librosa.feature.rms(y, frame_length=window_size, hop_length=hop_size, center=True,
    pad_mode="constant")``."""

    id = "core.rms"
    version = 1
    features = (RMS,)
    params = ("window_size", "hop_size", "channel_mode")
    description = "RMS of centred frames"

    def reach(self, params: Params, sample_rate: int) -> Reach | None:
        length = params.get_int("window_size")  # as _RmsRun reads its frames
        return frame_reach(length, -(length // 2), params.get_int("hop_size"))

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _RmsRun(ctx)


class _RmsRun(CalculatorRun):
    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        self.length = ctx.params.get_int("window_size")

    def process(self, block: Block) -> Outputs:
        frames = block.frames(self.length, -(self.length // 2))
        # einsum squares and sums without a (frames x length) temporary
        power = np.einsum("cfl,cfl->cf", frames, frames, dtype=np.float64) / self.length
        return {"rms": as_frames(np.sqrt(power))}

    def outputs(self) -> Mapping[str, OutputMeta]:
        return {"rms": uniform_meta(self.ctx, RMS, 1)}


# --- beat-synchronous RMS --------------------------------------------------------------------

BEAT_RMS = FeatureSpec("beat_rms", unit="FS", description="RMS over each beat subdivision")


class BeatRmsCalculator(Calculator):
    """RMS of the signal over each beat subdivision of the tempo map (``beat_subdivision`` per
    beat); frame k covers [t_k, t_k+1). The one built-in that reads the tempo map."""

    id = "core.beats"
    version = 1
    features = (BEAT_RMS,)
    params = ("beat_subdivision", "channel_mode")
    uses_tempo = True
    description = "RMS per beat subdivision of the tempo map"

    def reach(self, params: Params, sample_rate: int) -> Reach | None:
        # No fixed Reach: frames are beat subdivisions of the tempo map, not every ``step``
        # samples, and the grid's last segment depends on the file's length. Frame k reads
        # exactly [bounds[k], bounds[k + 1]) of :meth:`segment_bounds`, so the reach of an
        # audio edit is :meth:`audio_reach` (given the tempo map and the new length), and the
        # reach of a tempo edit :meth:`tempo_reach` (the frames before the first segment it
        # moves stay); core.engine_window recomputes those frames.
        return None

    def segment_bounds(
        self, params: Params, sample_rate: int, n_samples: int, tempo: TempoMap
    ) -> tuple[np.ndarray, np.ndarray]:
        """(frame times in s, sample bounds): frame k is the RMS of samples
        ``[bounds[k], bounds[k + 1])``, the last bound is ``n_samples``; the one rule of the
        run and of the reach."""
        return beat_bounds(tempo, n_samples, sample_rate, params.get_int("beat_subdivision"))

    def tempo_reach(
        self, params: Params, sample_rate: int, n_samples: int, old: TempoMap, new: TempoMap
    ) -> int | None:
        """The first frame whose segment (start time or sample bounds) differs between the
        grids of ``old`` and ``new`` over ``n_samples``: every frame before it reads the same
        samples with the same time and is bit-identical; every frame from it to the end
        (their number may change) is to recompute. The frame count when nothing differs;
        None when frame 0 already differs (nothing can be kept)."""
        t_old, b_old = self.segment_bounds(params, sample_rate, n_samples, old)
        t_new, b_new = self.segment_bounds(params, sample_rate, n_samples, new)
        n = min(len(t_old), len(t_new))
        same = (t_old[:n] == t_new[:n]) & (b_old[1 : n + 1] == b_new[1 : n + 1])
        first = n if same.all() else int(np.argmin(same))
        if first == len(t_old) == len(t_new):
            return first
        return first or None

    def audio_reach(
        self,
        params: Params,
        sample_rate: int,
        n_samples: int,
        tempo: TempoMap,
        spans: Sequence[tuple[int, int]],
    ) -> tuple[tuple[int, int], ...]:
        """The frames (inclusive ``[first, last]`` ranges, merged) of the grid over
        ``n_samples`` (the new audio's) whose segments overlap the changed sample ``spans``:
        frame k reads exactly ``[bounds[k], bounds[k + 1])``, and its time depends on the
        tempo map alone (the grid of a longer file starts with the grid of a shorter one).
        The last frame's segment ends at the file's end, which a length change moves: it
        counts as reaching past the end (a span that starts at the new end, a truncation,
        touches it)."""
        _, bounds = self.segment_bounds(params, sample_rate, n_samples, tempo)
        ends = bounds[1:].copy()
        if len(ends):
            ends[-1] = n_samples + 1
        out: list[tuple[int, int]] = []
        for a, b in spans:
            first = int(np.searchsorted(ends, a, side="right"))  # first k: ends[k] > a
            last = int(np.searchsorted(bounds[:-1], b, side="left")) - 1  # last k: start < b
            if first <= last:
                if out and first <= out[-1][1] + 1:
                    out[-1] = (out[-1][0], max(out[-1][1], last))
                else:
                    out.append((first, last))
        return tuple(out)

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _BeatRmsRun(ctx)


def beat_bounds(
    tempo: TempoMap, n_samples: int, sample_rate: int, subdivision: int
) -> tuple[np.ndarray, np.ndarray]:
    """The beat subdivisions of ``tempo`` over ``n_samples``: their start times (s) and the
    sample bounds of their segments (``len(times) + 1`` values, the last ``n_samples``)."""
    times = tempo.beat_times(n_samples / sample_rate, subdivision)
    starts = np.round(times * sample_rate).astype(np.int64)
    return times, np.append(starts, n_samples)


class _BeatRmsRun(CalculatorRun):
    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        self.beat_starts, self.bounds = beat_bounds(
            ctx.tempo, ctx.n_samples, ctx.sample_rate, ctx.params.get_int("beat_subdivision")
        )
        self.sums = np.zeros((ctx.signal_channels, len(self.beat_starts)), np.float64)
        self.emitted = 0

    def process(self, block: Block) -> Outputs:
        sig = block.signal
        n, s0 = sig.shape[1], block.sample_start
        if n:
            # beat j collects samples [bounds[j], bounds[j + 1]): one segment sum per beat
            # that overlaps the block (reduceat over the non-empty segments)
            lo = max(int(np.searchsorted(self.bounds, s0, side="right")) - 1, 0)
            hi = min(int(np.searchsorted(self.bounds, s0 + n, side="left")), len(self.beat_starts))
            edges = np.clip(self.bounds[lo : hi + 1] - s0, 0, n)
            filled = np.flatnonzero(edges[1:] > edges[:-1])
            if filled.size:
                sq = np.square(sig[:, : edges[-1]], dtype=np.float64)
                self.sums[:, lo + filled] += np.add.reduceat(sq, edges[filled], axis=1)
        return {}

    def finish(self) -> Iterable[Outputs]:
        lengths = np.diff(self.bounds).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            rms = np.sqrt(np.where(lengths > 0, self.sums / np.maximum(lengths, 1), 0.0))
        yield {"beat_rms": as_frames(rms)}

    def outputs(self) -> Mapping[str, OutputMeta]:
        meta = uniform_meta(self.ctx, BEAT_RMS, 1)
        return {"beat_rms": OutputMeta(**{**meta.__dict__, "frame_step": None})}

    def times(self, feature: str) -> np.ndarray | None:
        return self.beat_starts if feature == "beat_rms" else None
