"""Fundamental frequency by YIN, matching ``librosa.yin`` (0.11), plus a confidence channel."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import numpy as np

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
from diagnostics_app.core.errors import ParamError
from diagnostics_app.core.params import PITCH_FMAX_DEFAULT, PITCH_FMIN_DEFAULT, Params

PITCH = FeatureSpec("pitch", unit="Hz", description="f0 (YIN) and confidence 0..1")


def pitch_range(params: Params) -> tuple[float, float]:
    fmin, fmax = params.optional_float("fmin"), params.optional_float("fmax")
    return (PITCH_FMIN_DEFAULT if fmin is None else fmin), (
        PITCH_FMAX_DEFAULT if fmax is None else fmax
    )


class PitchCalculator(Calculator):
    """``librosa.yin(y, fmin, fmax, sr, frame_length=window_size, hop_length=hop_size,
    center=True, pad_mode="constant", trough_threshold)``. Channel 1 is f0 in Hz; channel 2
    is the confidence ``1 - d'(period)`` of the cumulative mean normalised difference at the
    chosen period, clipped to [0, 1], and 0 for an all-zero frame."""

    id = "core.pitch"
    version = 1
    features = (PITCH,)
    params = ("window_size", "hop_size", "channel_mode", "fmin", "fmax", "trough_threshold")
    description = "YIN fundamental frequency with confidence"

    def check(self, params: Params, sample_rate: int) -> None:
        fmin, fmax = pitch_range(params)
        if fmin <= 0:
            raise ParamError("fmin: pitch needs fmin > 0")
        if fmax > sample_rate / 2:
            raise ParamError(
                f"fmax: {fmax:g} Hz is above the Nyquist frequency {sample_rate / 2:g} Hz"
            )
        frame = params.get_int("window_size")
        if (
            int(np.floor(sample_rate / fmax)) < 1
            or int(np.ceil(sample_rate / fmin)) < int(np.floor(sample_rate / fmax)) + 2
        ):
            raise ParamError(
                f"fmin/fmax: the pitch range {fmin:g}..{fmax:g} Hz is too narrow at {sample_rate} Hz"
            )
        if frame <= int(np.floor(sample_rate / fmax)) + 2:
            raise ParamError(f"window_size: {frame} samples is too short for fmax {fmax:g} Hz")

    def reach(self, params: Params, sample_rate: int) -> Reach | None:
        # YIN reads only its own frame: every lag up to the maximum period (< window_size)
        # compares samples inside it, as _YinRun reads them
        length = params.get_int("window_size")
        return frame_reach(length, -(length // 2), params.get_int("hop_size"))

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _YinRun(ctx)


class _YinRun(CalculatorRun):
    # Engine protocol: every output frame depends on its own input frame only, so the engine
    # may cut a block's frames into pieces and process them on several workers at once.
    frames_independent = True

    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        p = ctx.params
        self.length = p.get_int("window_size")
        fmin, fmax = pitch_range(p)
        sr = ctx.sample_rate
        self.min_period = int(np.floor(sr / fmax))
        self.max_period = min(int(np.ceil(sr / fmin)), self.length - 1)
        self.threshold = p.get_float("trough_threshold")
        self.n_pad = yin_fft_size(self.length, self.max_period)

    def process(self, block: Block) -> Outputs:
        frames = block.frames(self.length, -(self.length // 2))  # (C, F, L)
        if frames.shape[1] == 0:
            return {"pitch": np.zeros((0, frames.shape[0], 2), np.float32)}
        f0, conf = yin(
            frames,
            self.ctx.sample_rate,
            self.min_period,
            self.max_period,
            self.threshold,
            self.n_pad,
        )
        return {"pitch": as_frames(np.stack([f0, conf], axis=-1))}

    def outputs(self) -> Mapping[str, OutputMeta]:
        return {"pitch": uniform_meta(self.ctx, PITCH, 2, width_names=("f0", "confidence"))}


def yin_fft_size(length: int, max_period: int) -> int:
    """The shortest fast FFT length whose circular autocorrelation of a ``length``-sample frame
    is alias-free for every lag up to ``max_period`` (n >= length + max_period)."""
    import scipy.fft  # deferred: start-up time, see core/dsp.py

    return int(scipy.fft.next_fast_len(length + max_period, real=True))


_ROWS = 128  # frames per FFT batch: the working set stays in cache (~1 MiB at 2048 samples)


@cache
def _lane_lags(max_period: int) -> np.ndarray:
    """The lags 1..max_period, each twice: one per lane of a pair of frames (see _yin_rows)."""
    lags = np.repeat(np.arange(1, max_period + 1, dtype=np.float64), 2)
    lags.setflags(write=False)
    return lags


def yin(
    frames: np.ndarray, sr: int, min_period: int, max_period: int, threshold: float, n_pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """YIN over frames (..., L) → (f0, confidence), each (...) float64, as ``librosa.yin``.

    ``n_pad`` is the FFT length of the autocorrelation; any n_pad >= L + max_period gives the
    same lags (see :func:`yin_fft_size` for the fastest). Like librosa on float32 audio, the
    autocorrelation and the difference function are computed in float32 and the normalised
    difference in float64. Frames are processed independently, in batches of a fixed size, so
    a frame's result does not depend on which other frames it was given with.
    """
    length = frames.shape[-1]
    if n_pad < length + max_period:
        raise ValueError(f"n_pad {n_pad} is shorter than frame length + max_period")
    if not 1 <= min_period <= max_period - 2 or max_period >= length:
        raise ValueError("need 1 <= min_period <= max_period - 2 and max_period < frame length")
    lead = frames.shape[:-1]
    f0 = np.empty(lead, np.float64)
    conf = np.empty(lead, np.float64)
    x2 = frames.reshape(-1, length) if frames.ndim != 3 else None
    if x2 is not None:  # 1-D, 2-D or > 3-D input: one row per frame (may copy)
        _yin_rows_batched(
            x2, sr, min_period, max_period, threshold, n_pad, f0.reshape(-1), conf.reshape(-1)
        )
    else:  # (channels, frames, L): the engine's strided views, never copied whole
        for c in range(frames.shape[0]):
            _yin_rows_batched(
                frames[c], sr, min_period, max_period, threshold, n_pad, f0[c], conf[c]
            )
    return f0, conf


def _yin_rows_batched(
    x: np.ndarray,
    sr: int,
    min_period: int,
    max_period: int,
    threshold: float,
    n_pad: int,
    f0: np.ndarray,
    conf: np.ndarray,
) -> None:
    for start in range(0, x.shape[0], _ROWS):
        stop = min(start + _ROWS, x.shape[0])
        f0[start:stop], conf[start:stop] = _yin_rows(
            x[start:stop], sr, min_period, max_period, threshold, n_pad
        )


def _yin_rows(
    x: np.ndarray, sr: int, min_period: int, max_period: int, threshold: float, n_pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """YIN of the frames x (n, L): librosa 0.11's steps, fused where that saves passes."""
    import scipy.fft  # deferred: start-up time, see core/dsp.py

    x = np.asarray(x, dtype=np.float32)
    k = max_period
    # autocorrelation r(0..k) by FFT: |rfft|^2 computed in place on the complex output, into
    # its real parts with the imaginary parts zeroed: irfft takes that array as it is (a real
    # power array would be added up into a new array and copied to complex by scipy, the same
    # values through two more passes over memory)
    spec = scipy.fft.rfft(x, n=n_pad, axis=-1, workers=1)
    parts = spec.view(np.float32)
    np.square(parts, out=parts)
    re, im = parts[:, 0::2], parts[:, 1::2]
    np.add(re, im, out=re)
    im[...] = 0.0
    acf = scipy.fft.irfft(spec, n=n_pad, axis=-1, workers=1)
    # The two cumulative sums below are chains of dependent float32 additions, bound by their
    # latency. Frames are paired as the real and imaginary parts of complex64 (frame 2j + c in
    # lane c of pair j; an odd last frame is paired with zeros): a complex cumulative sum adds
    # each part on its own, so one chain does two frames' exact float32 sums in one step.
    n = x.shape[0]
    pairs, even = (n + 1) // 2, n // 2
    alloc = np.zeros if n % 2 else np.empty
    # energy sum_{m<t} x(m)^2, t = 1..k, per frame
    energy = alloc((pairs, k, 2), np.float32)
    np.square(x[0::2, :k], out=energy[:, :, 0])
    np.square(x[1::2, :k], out=energy[:even, :, 1])
    lanes = energy.view(np.complex64)[..., 0]
    np.cumsum(lanes, axis=-1, out=lanes)
    # difference function d(t) = 2 (r(0) - r(t)) - energy(t), t = 1..k
    d = alloc((pairs, k, 2), np.float32)
    np.subtract(acf[0::2, :1], acf[0::2, 1 : k + 1], out=d[:, :, 0])
    np.subtract(acf[1::2, :1], acf[1::2, 1 : k + 1], out=d[:even, :, 1])
    d *= np.float32(2.0)
    d -= energy
    # cumulative mean normalised difference for t = min_period..k; librosa divides the float32
    # cumulative sum by integer lags, which makes the rest float64
    # cumulative sum by integer lags, which makes the rest float64 (flat (pairs, 2 k) rows,
    # lanes interleaved, so that every operation runs over contiguous rows)
    summed = np.cumsum(d.view(np.complex64)[..., 0], axis=-1).view(np.float32)
    first = 2 * (min_period - 1)
    cum_mean = summed[:, first:] / _lane_lags(k)[first:]
    cum_mean += np.finfo(np.float64).tiny
    np.divide(d.reshape(pairs, 2 * k)[:, first:], cum_mean, out=cum_mean)
    # back to one row per frame (a copy: the lanes interleave)
    cmnd = cum_mean.reshape(pairs, -1, 2).transpose(0, 2, 1).reshape(2 * pairs, -1)[:n]
    # the first local minimum below the threshold (librosa's localmin, edges included),
    # else the global minimum
    falls = cmnd[:, 1:] < cmnd[:, :-1]  # falls[i]: cmnd[i + 1] < cmnd[i]
    trough = np.empty(cmnd.shape, bool)
    # interior i: cmnd[i] < cmnd[i - 1] and cmnd[i] <= cmnd[i + 1], i.e. falls[i-1] and not falls[i]
    np.greater(falls[:, :-1], falls[:, 1:], out=trough[:, 1:-1])
    trough[:, 0] = cmnd[:, 0] < cmnd[:, 1]
    trough[:, -1] = falls[:, -1]
    trough &= cmnd < threshold
    period = np.argmax(trough, axis=-1)
    rows = np.arange(len(period))
    none = ~trough[rows, period]
    if none.any():
        period[none] = np.argmin(cmnd[none], axis=-1)
    # parabolic interpolation at the chosen lag only (zero at the edges, and where the
    # optimum falls outside +-1 lag)
    last = cmnd.shape[1] - 1
    inner = np.clip(period, 1, max(last - 1, 1))
    before, at, after = cmnd[rows, inner - 1], cmnd[rows, period], cmnd[rows, inner + 1]
    a = after + before - 2 * at
    b = (after - before) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where((np.abs(b) >= np.abs(a)) | (period == 0) | (period == last), 0.0, -b / a)
    f0 = sr / (min_period + period + shift)
    confidence = np.clip(1.0 - at, 0.0, 1.0)
    # an all-zero frame has d' = 0 / (0 + tiny) = 0 at every lag: no pitch, not a perfect one
    confidence[acf[:, 0] <= 0] = 0.0
    return f0, confidence
