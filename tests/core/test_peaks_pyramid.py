"""peaks_pyramid: the chunked reduction gives exactly what a plain grouped min/max gives."""

from __future__ import annotations

import numpy as np
import pytest

from diagnostics_app.core.calculators import temporal
from diagnostics_app.core.calculators.temporal import peaks_pyramid


def reference_pyramid(
    peaks: np.ndarray, factor: int = 16, min_blocks: int = 2048
) -> list[np.ndarray]:
    """The obvious definition (the previous implementation): grouped min of the mins, max of
    the maxes, a shorter last group for the remainder."""
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


def random_peaks(blocks: int, channels: int, dtype: type = np.float32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hi = rng.random((blocks, channels)).astype(dtype)
    lo = -rng.random((blocks, channels)).astype(dtype)
    return np.stack([lo, hi], axis=2)


@pytest.mark.parametrize(
    ("blocks", "channels", "factor", "min_blocks"),
    [
        (0, 1, 16, 256),
        (100, 2, 16, 256),  # already short enough: level 0 only
        (4096, 1, 16, 256),  # exact multiples
        (70_001, 2, 16, 256),  # a remainder on every level
        (123_457, 3, 8, 100),
        (50_000, 2, 16, 2048),
        (2 * temporal.PYRAMID_CHUNK * 16 + 5, 2, 16, 256),  # several chunks plus a partial one
    ],
)
def test_matches_the_reference(blocks: int, channels: int, factor: int, min_blocks: int) -> None:
    peaks = random_peaks(blocks, channels, seed=blocks)
    got = peaks_pyramid(peaks, factor=factor, min_blocks=min_blocks)
    want = reference_pyramid(peaks, factor=factor, min_blocks=min_blocks)
    assert got[0] is peaks
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    assert got[-1].shape[0] <= max(min_blocks, blocks)


def test_other_dtypes_and_nan() -> None:
    peaks = random_peaks(40_000, 2, dtype=np.float64, seed=3)
    peaks[777, 1, 0] = np.nan  # a NaN spreads up its group, as np.min would spread it
    got = peaks_pyramid(peaks, factor=16, min_blocks=64)
    want = reference_pyramid(peaks, factor=16, min_blocks=64)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.float64
        np.testing.assert_array_equal(g, w)
    assert np.isnan(got[1][777 // 16, 1, 0])
    ints = (random_peaks(10_000, 1, seed=4) * 1000).astype(np.int16)
    for g, w in zip(peaks_pyramid(ints, 16, 32), reference_pyramid(ints, 16, 32), strict=True):
        assert g.dtype == np.int16
        np.testing.assert_array_equal(g, w)
