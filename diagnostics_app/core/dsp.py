"""Shared signal-processing primitives: windows and the STFT magnitude, librosa-compatible.

The windows are written out here (a few cosine sums, tested against
``scipy.signal.get_window``) because importing ``scipy.signal`` costs about a second at start-up
and pulls most of scipy into the desktop bundle; ``scipy.fft`` is imported on first use for the
same reason, so headless commands that compute nothing (``check``) start fast.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from diagnostics_app.core.params import Params

# cosine-sum coefficients: w[n] = sum_k (-1)^k a_k cos(2 pi k n / N)
_COSINE_SUMS: dict[str, tuple[float, ...]] = {
    "hann": (0.5, 0.5),
    "hamming": (0.54, 0.46),
    "blackman": (0.42, 0.5, 0.08),
    "blackmanharris": (0.35875, 0.48829, 0.14128, 0.01168),
}


def periodic_window(name: str, length: int) -> np.ndarray:
    """``scipy.signal.get_window(name, length, fftbins=True)`` in float64, for the windows of
    :data:`params.WINDOWS`: the symmetric window of ``length + 1`` points without its last."""
    n = np.arange(length, dtype=np.float64)
    if name in _COSINE_SUMS:
        x = 2.0 * np.pi * n / length
        return sum(((-1) ** k) * a * np.cos(k * x) for k, a in enumerate(_COSINE_SUMS[name]))
    m = length + 1  # the symmetric window's length
    if name == "boxcar":
        return np.ones(length)
    if name == "bartlett":
        return np.where(n <= (m - 1) / 2.0, 2.0 * n / (m - 1), 2.0 - 2.0 * n / (m - 1))
    if name == "triang":
        k = np.arange(1, (m + 1) // 2 + 1, dtype=np.float64)
        if m % 2 == 0:
            half = (2 * k - 1.0) / m
            full = np.r_[half, half[::-1]]
        else:
            half = 2 * k / (m + 1.0)
            full = np.r_[half, half[-2::-1]]
        return full[:length]
    raise ValueError(f"unknown window {name!r}")


@cache
def analysis_window(name: str, length: int) -> np.ndarray:
    """Periodic window as librosa uses it (``get_window(..., fftbins=True)``), float32."""
    win = periodic_window(name, length).astype(np.float32)
    win.setflags(write=False)
    return win


def stft_magnitude(frames: np.ndarray, params: Params) -> np.ndarray:
    """|rfft(window * frame, n_fft)|, float32. Frames are ``window_size`` long; padding to
    ``n_fft`` at the end instead of centring only rotates phases, so magnitudes equal librosa's."""
    import scipy.fft  # deferred: see the module docstring

    win = analysis_window(params.get_str("window"), frames.shape[-1])
    spec = scipy.fft.rfft(frames * win, n=params.n_fft, axis=-1, workers=1)
    return np.abs(spec)


def stft_offset(params: Params) -> int:
    """Where the windowed part of frame 0 starts, relative to sample 0 (librosa centring)."""
    n_fft, win = params.n_fft, params.get_int("window_size")
    return (n_fft - win) // 2 - n_fft // 2
