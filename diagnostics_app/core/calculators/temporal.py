"""Time-domain calculators: waveform peaks, RMS, and RMS per beat subdivision."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from diagnostics_app.core.calculators.base import (
    AnalysisContext,
    Block,
    Calculator,
    CalculatorRun,
    FeatureSpec,
    OutputMeta,
    Outputs,
    as_frames,
    uniform_meta,
)

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

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _PeaksRun(ctx)


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
        out = np.stack([used.min(axis=2), used.max(axis=2)], axis=2)  # (C, n, 2)
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
                channel_names=tuple(f"ch{i + 1}" for i in range(ctx.audio_channels)),
                width_names=("min", "max"),
            )
        }


def peaks_pyramid(peaks: np.ndarray, factor: int = 16, min_blocks: int = 2048) -> list[np.ndarray]:
    """Coarser min/max levels of a (blocks, channels, 2) peaks array, each ``factor`` times
    shorter, until a level has fewer than ``min_blocks`` blocks. Level 0 is ``peaks`` itself."""
    levels = [peaks]
    while levels[-1].shape[0] > min_blocks:
        prev = levels[-1]
        n = prev.shape[0] // factor * factor
        if n == 0:
            break
        grouped = prev[:n].reshape(n // factor, factor, prev.shape[1], 2)
        level = np.stack([grouped[..., 0].min(axis=1), grouped[..., 1].max(axis=1)], axis=2)
        if n < prev.shape[0]:
            tail = prev[n:]
            extra = np.stack([tail[..., 0].min(axis=0), tail[..., 1].max(axis=0)], axis=1)[None]
            level = np.concatenate([level, extra])
        levels.append(level)
    return levels


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

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _BeatRmsRun(ctx)


class _BeatRmsRun(CalculatorRun):
    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        self.beat_starts = ctx.tempo.beat_times(
            ctx.n_samples / ctx.sample_rate, ctx.params.get_int("beat_subdivision")
        )
        self._set_bounds(ctx.n_samples)
        self.sums = np.zeros((ctx.signal_channels, len(self.beat_starts)), np.float64)
        self.emitted = 0

    def _set_bounds(self, n_samples: int) -> None:
        starts = np.round(self.beat_starts * self.ctx.sample_rate).astype(np.int64)
        self.bounds = np.append(starts, n_samples)

    def process(self, block: Block) -> Outputs:
        sig = block.signal
        n, s0 = sig.shape[1], block.sample_start
        if n:
            # beat j collects samples [bounds[j], bounds[j + 1]): differences of the block's
            # running sum of squares at the bounds that fall inside the block
            lo = max(int(np.searchsorted(self.bounds, s0, side="right")) - 1, 0)
            hi = min(int(np.searchsorted(self.bounds, s0 + n, side="left")), len(self.beat_starts))
            if hi > lo:
                running = np.zeros((sig.shape[0], n + 1), np.float64)
                np.cumsum(np.square(sig, dtype=np.float64), axis=1, out=running[:, 1:])
                edges = np.clip(self.bounds[lo : hi + 1] - s0, 0, n)
                self.sums[:, lo:hi] += running[:, edges[1:]] - running[:, edges[:-1]]
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
