"""Shared signal-processing primitives: windows and the STFT magnitude, librosa-compatible."""

from __future__ import annotations

from functools import cache

import numpy as np
import scipy.fft
import scipy.signal

from diagnostics_app.core.params import Params


@cache
def analysis_window(name: str, length: int) -> np.ndarray:
    """Periodic window as librosa uses it (``get_window(..., fftbins=True)``), float32."""
    win = scipy.signal.get_window(name, length, fftbins=True).astype(np.float32)
    win.setflags(write=False)
    return win


def stft_magnitude(frames: np.ndarray, params: Params) -> np.ndarray:
    """|rfft(window * frame, n_fft)|, float32. Frames are ``window_size`` long; padding to
    ``n_fft`` at the end instead of centring only rotates phases, so magnitudes equal librosa's."""
    win = analysis_window(params.get_str("window"), frames.shape[-1])
    spec = scipy.fft.rfft(frames * win, n=params.n_fft, axis=-1, workers=1)
    return np.abs(spec)


def stft_offset(params: Params) -> int:
    """Where the windowed part of frame 0 starts, relative to sample 0 (librosa centring)."""
    n_fft, win = params.n_fft, params.get_int("window_size")
    return (n_fft - win) // 2 - n_fft // 2
