"""The engine's CPU savings change no output bit: each faster form is compared, byte for byte,
with the plain numpy computation it replaces (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

from diagnostics_app.core.calculators.pitch import _yin_rows, yin_fft_size
from diagnostics_app.core.calculators.temporal import window_extremes
from diagnostics_app.core.engine import _signal

SR = 48000


def _plain_yin_rows(
    x: np.ndarray, min_period: int, max_period: int, threshold: float, n_pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """YIN as it was before the savings: one row per frame, numpy's cumsum, a real power
    array for irfft (librosa 0.11's steps)."""
    import scipy.fft

    x = np.asarray(x, dtype=np.float32)
    k = max_period
    spec = scipy.fft.rfft(x, n=n_pad, axis=-1, workers=1)
    parts = spec.view(np.float32)
    np.square(parts, out=parts)
    acf = scipy.fft.irfft(parts[:, 0::2] + parts[:, 1::2], n=n_pad, axis=-1, workers=1)
    d = acf[:, 1 : k + 1]
    np.subtract(acf[:, :1], d, out=d)
    d *= np.float32(2.0)
    energy = np.cumsum(np.square(x[:, :k]), axis=-1)
    d -= energy
    lags = np.arange(1, k + 1, dtype=np.float64)
    cum_mean = np.cumsum(d, axis=-1)[:, min_period - 1 :] / lags[min_period - 1 :]
    cum_mean += np.finfo(np.float64).tiny
    cmnd = d[:, min_period - 1 :] / cum_mean
    falls = cmnd[:, 1:] < cmnd[:, :-1]
    trough = np.empty(cmnd.shape, bool)
    np.greater(falls[:, :-1], falls[:, 1:], out=trough[:, 1:-1])
    trough[:, 0] = cmnd[:, 0] < cmnd[:, 1]
    trough[:, -1] = falls[:, -1]
    trough &= cmnd < threshold
    period = np.argmax(trough, axis=-1)
    rows = np.arange(len(period))
    none = ~trough[rows, period]
    period[none] = np.argmin(cmnd[none], axis=-1)
    last = cmnd.shape[1] - 1
    inner = np.clip(period, 1, max(last - 1, 1))
    before, at, after = cmnd[rows, inner - 1], cmnd[rows, period], cmnd[rows, inner + 1]
    a = after + before - 2 * at
    b = (after - before) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where((np.abs(b) >= np.abs(a)) | (period == 0) | (period == last), 0.0, -b / a)
    f0 = SR / (min_period + period + shift)
    confidence = np.clip(1.0 - at, 0.0, 1.0)
    confidence[acf[:, 0] <= 0] = 0.0
    return f0, confidence


def _frames(rows: int, length: int, seed: int) -> np.ndarray:
    """Overlapping frames (strided, as the engine cuts them) of tones in noise, one silent."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows * 256 + length) / SR
    signal = 0.5 * np.sin(2 * np.pi * 220.0 * (1 + t) * t) + 0.05 * rng.standard_normal(t.size)
    signal[: length + 256] = 0.0  # the first frames are silence (confidence 0 there)
    view = np.lib.stride_tricks.sliding_window_view(signal.astype(np.float32), length)
    return view[::256][:rows]


@pytest.mark.parametrize("rows", [1, 2, 3, 17, 64, 65])
@pytest.mark.parametrize(("fmin", "fmax"), [(65.40639132514966, 2093.004522404789), (80.0, 1000.0)])
def test_paired_yin_is_bit_identical_to_the_plain_one(rows: int, fmin: float, fmax: float) -> None:
    """Frames are paired as the lanes of complex64 for the cumulative sums: an odd count pairs
    the last with zeros, and no frame's result may change either way."""
    length = 2048
    min_period = int(np.floor(SR / fmax))
    max_period = min(int(np.ceil(SR / fmin)), length - 1)
    n_pad = yin_fft_size(length, max_period)
    x = _frames(rows, length, seed=rows)
    got = _yin_rows(x, SR, min_period, max_period, 0.1, n_pad)
    want = _plain_yin_rows(x, min_period, max_period, 0.1, n_pad)
    assert got[0].tobytes() == want[0].tobytes()
    assert got[1].tobytes() == want[1].tobytes()
    assert got[1][0] == 0.0  # the silent frame
    if rows > 8:
        assert (got[1] > 0.5).any()  # and real pitches


def _ties(shape: tuple[int, ...], seed: int) -> np.ndarray:
    values = np.array([0.0, -0.0, 0.25, -0.25, 1e-45, -1e-45, 1.0, -1.0], np.float32)
    return np.random.default_rng(seed).choice(values, size=shape)


@pytest.mark.parametrize(
    "windows",
    [
        _ties((2, 300, 64), 1),
        _ties((1, 7, 5), 2),
        np.abs(_ties((2, 50, 64), 3)),  # minimum ties between +0.0 and -0.0... of +0.0 only
        -np.abs(_ties((2, 50, 64), 4)),
        np.where(_ties((2, 50, 8), 5) > 0, np.float32(0.0), np.float32(-0.0)),  # only zeros
        np.zeros((2, 0, 64), np.float32),
        np.random.default_rng(6).standard_normal((2, 2048, 64)).astype(np.float32),
    ],
)
def test_window_extremes_are_min_and_max_bit_for_bit(windows: np.ndarray) -> None:
    lo, hi = window_extremes(windows)
    assert lo.tobytes() == windows.min(axis=-1).tobytes()
    assert hi.tobytes() == windows.max(axis=-1).tobytes()
    assert lo.shape == hi.shape == windows.shape[:2]


def test_the_stereo_mix_is_the_float32_mean_bit_for_bit() -> None:
    special = np.array(
        [0.0, -0.0, 1e-45, -1e-45, 3e-38, -3e-38, 1.1754942e-38, 3.4e38, -3.4e38, 0.1, -0.5],
        np.float32,
    )
    every_pair = np.array(np.meshgrid(special, special)).reshape(2, -1)  # (-0, -0) gives +0
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**32, size=(2, 200_000), dtype=np.uint64).astype(np.uint32)
    patterns = bits.view(np.float32)
    patterns = np.where(np.isfinite(patterns), patterns, np.float32(0.5))
    with np.errstate(over="ignore"):  # 3.4e38 + 3.4e38: inf both ways
        for samples in (every_pair, patterns):
            mean = samples.mean(axis=0, keepdims=True, dtype=np.float32)
            mixed = _signal(samples, "mix")
            assert mixed.dtype == np.float32 and mixed.shape == mean.shape
            assert mixed.tobytes() == mean.tobytes()
