"""The u16db encoding gives exactly the codes of its definition (``nan_to_num``, ``clip``,
scale, ``rint`` in float64), however it is computed: NaN and -inf at the low end, +inf at the
high end, values outside the range clipped, signed zeros, exact bounds, every array layout."""

from __future__ import annotations

import numpy as np
import pytest

from diagnostics_app.core.store.arrays import U16_LEVELS, encode_u16


def reference(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    span = hi - lo
    if span <= 0:
        return np.zeros(values.shape, np.uint16)
    x = np.array(values, dtype=np.float64)
    np.nan_to_num(x, copy=False, nan=lo, posinf=hi, neginf=lo)
    np.clip(x, lo, hi, out=x)
    x = (x - lo) * (U16_LEVELS / span)
    return np.rint(x).astype(np.uint16)


def awkward(shape: tuple[int, ...], lo: float, hi: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a, b = min(lo, hi), max(lo, hi)
    values = rng.uniform(a - 0.2 * (b - a) - 1, b + 0.2 * (b - a) + 1, shape)
    flat = values.reshape(-1)
    specials = [np.nan, np.inf, -np.inf, -0.0, 0.0, lo, hi, np.nextafter(hi, np.inf)]
    for i, value in enumerate(specials):
        flat[i :: 17 + i] = value
    # values half a step apart: the rounding boundaries
    step = (hi - lo) / U16_LEVELS if hi > lo else 1.0
    flat[3::23] = lo + (np.arange(len(flat[3::23])) % 1000 + 0.5) * step
    return values.astype(np.float32)


@pytest.mark.parametrize(
    ("lo", "hi"),
    [(-80.0, 0.0), (-120.0, 6.0), (0.0, 1.0), (-1e-3, 1e-3), (-80.0, -80.0), (3.0, -3.0)],
)
@pytest.mark.parametrize("shape", [(254, 1, 1025), (3, 2, 7), (0, 1, 4), (70_000, 1, 1)])
def test_codes_equal_the_definition(shape: tuple[int, ...], lo: float, hi: float) -> None:
    values = awkward(shape, lo, hi)
    got = encode_u16(values, lo, hi)
    want = reference(values, lo, hi)
    assert got.dtype == np.uint16
    assert got.shape == values.shape
    assert got.tobytes() == want.tobytes()


def test_a_strided_view_is_encoded_as_its_values() -> None:
    values = awkward((300, 2, 513), -80.0, 0.0)[:, 1:, ::2]
    assert encode_u16(values, -80.0, 0.0).tobytes() == reference(values, -80.0, 0.0).tobytes()
