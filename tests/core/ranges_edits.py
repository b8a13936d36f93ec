"""Edits of a signal for the range tests, and the true changed samples of two decodings."""

from __future__ import annotations

import numpy as np

from diagnostics_app.core.ranges import SampleRange, merge

EDITS = ("replace", "gain", "append", "truncate", "insert", "delete")
SHIFTING = ("insert", "delete")  # every sample after the edit moves


def apply_edit(signal: np.ndarray, edit: str, rng: np.random.Generator) -> np.ndarray:
    """``signal`` (frames, channels) with one edit of kind ``edit`` at a random place."""
    n, ch = signal.shape
    a = int(rng.integers(0, n - 1))
    length = int(rng.integers(1, max(2, n // 4)))
    b = min(n, a + length)
    out = signal.copy()
    if edit == "replace":
        out[a:b] = rng.uniform(-0.5, 0.5, (b - a, ch))
        return out
    if edit == "gain":
        out[a:b] *= 0.5
        return out
    if edit == "append":
        return np.concatenate([signal, rng.uniform(-0.5, 0.5, (length, ch))])
    if edit == "truncate":
        return signal[: max(1, n - length)].copy()
    if edit == "insert":
        return np.concatenate([signal[:a], rng.uniform(-0.5, 0.5, (length, ch)), signal[a:]])
    if edit == "delete":
        return np.concatenate([signal[:a], signal[b:]]) if b - a < n else signal[:1].copy()
    raise ValueError(edit)


def changed_samples(old: np.ndarray, new: np.ndarray) -> tuple[SampleRange, ...]:
    """The sample ranges where two decodings (channels, frames) differ, the length change
    included."""
    common = min(old.shape[1], new.shape[1])
    differs = np.any(old[:, :common] != new[:, :common], axis=0)
    idx = np.flatnonzero(differs)
    spans = [(int(i), int(i) + 1) for i in idx]
    if old.shape[1] != new.shape[1]:
        spans.append((common, max(old.shape[1], new.shape[1])))
    return merge(spans)
