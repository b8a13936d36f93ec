"""Fundamental frequency by YIN, matching ``librosa.yin`` (0.11), plus a confidence channel."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.fft

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
    chosen period, clipped to [0, 1]."""

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

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _YinRun(ctx)


class _YinRun(CalculatorRun):
    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        p = ctx.params
        self.length = p.get_int("window_size")
        fmin, fmax = pitch_range(p)
        sr = ctx.sample_rate
        self.min_period = int(np.floor(sr / fmax))
        self.max_period = min(int(np.ceil(sr / fmin)), self.length - 1)
        self.threshold = p.get_float("trough_threshold")
        self.n_pad = scipy.fft.next_fast_len(2 * self.length - 1, real=True)

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


def yin(
    frames: np.ndarray, sr: int, min_period: int, max_period: int, threshold: float, n_pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """YIN over frames (..., L) → (f0, confidence), each (...). Follows librosa 0.11 step by step."""
    x = frames.astype(np.float64)
    # autocorrelation r(k) for k <= max_period, by FFT
    spec = scipy.fft.rfft(x, n=n_pad, axis=-1, workers=1)
    acf = scipy.fft.irfft(spec.real**2 + spec.imag**2, n=n_pad, axis=-1, workers=1)[
        ..., : max_period + 1
    ]
    energy = np.cumsum(x * x, axis=-1)[..., :max_period]
    d = np.empty((*x.shape[:-1], max_period + 1), np.float64)
    d[..., 0] = 0.0
    d[..., 1:] = 2.0 * (acf[..., :1] - acf[..., 1:]) - energy
    cum_mean = np.cumsum(d[..., 1:], axis=-1) / np.arange(1, max_period + 1)
    tiny = np.finfo(np.float64).tiny
    cmnd = d[..., min_period:] / (cum_mean[..., min_period - 1 :] + tiny)
    # parabolic shifts (zero where the optimum falls outside +-1 bin, and at the edges)
    a = cmnd[..., 2:] + cmnd[..., :-2] - 2 * cmnd[..., 1:-1]
    b = (cmnd[..., 2:] - cmnd[..., :-2]) / 2
    shifts = np.zeros_like(cmnd)
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = np.where(np.abs(b) >= np.abs(a), 0.0, -b / a)
    shifts[..., 1:-1] = inner
    # troughs below the threshold: the first one, else the global minimum
    is_trough = np.zeros(cmnd.shape, bool)
    is_trough[..., 1:-1] = (cmnd[..., 1:-1] < cmnd[..., :-2]) & (cmnd[..., 1:-1] <= cmnd[..., 2:])
    is_trough[..., -1] = cmnd[..., -1] < cmnd[..., -2]  # localmin pads by the edge value
    is_trough[..., 0] = cmnd[..., 0] < cmnd[..., 1]
    below = is_trough & (cmnd < threshold)
    period = np.where(below.any(axis=-1), np.argmax(below, axis=-1), np.argmin(cmnd, axis=-1))
    chosen = np.take_along_axis(shifts, period[..., None], axis=-1)[..., 0]
    f0 = sr / (min_period + period + chosen)
    conf = np.clip(1.0 - np.take_along_axis(cmnd, period[..., None], axis=-1)[..., 0], 0.0, 1.0)
    return f0, conf
