"""Shared by the partial-recomputation tests: full passes, block digests, the store's splices
of recomputed ranges, and the check that the old output with them spliced in equals a full
recomputation on the new file, bit for bit."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from diagnostics_app.core.audio import iter_blocks, read_info
from diagnostics_app.core.calculators.base import Calculator, declared_reach
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.engine import FeatureResult, MemorySink, PassPlan, run_pass
from diagnostics_app.core.engine_window import (
    PartialResult,
    WindowedFrames,
    wanted_frames,
)
from diagnostics_app.core.params import Params
from diagnostics_app.core.ranges import (
    BlockDigests,
    changed_ranges,
    digest_blocks,
    frame_count,
)
from diagnostics_app.core.splice import FrameSplice, apply_splices, apply_times
from diagnostics_app.core.tempo import TempoMap

BOUNDED = (
    "core.peaks",
    "core.rms",
    "core.spectrogram",
    "core.mel",
    "core.chroma",
    "core.centroid",
    "core.pitch",
)
KINDS = {"wav": ("WAV", "PCM_16"), "float.wav": ("WAV", "FLOAT"), "flac": ("FLAC", "PCM_16")}
Outputs = dict[str, dict[str, FeatureResult]]


def calculators(*ids: str) -> tuple[Calculator, ...]:
    registry = Registry.builtin()
    return tuple(registry.get(i) for i in ids)


def full(path: Path, calcs: Sequence[Calculator], params: Params, **kw: Any) -> Outputs:
    sink = MemorySink()
    tempo = kw.pop("tempo", TempoMap())
    run_pass(PassPlan(str(path), params, tempo, tuple(calcs)), sink, **kw)
    return sink.results


def digests(path: Path, block: int) -> BlockDigests:
    info = read_info(path)
    return digest_blocks(iter_blocks(path), info.sample_rate, info.channels, block)


def splices(wins: Sequence[WindowedFrames], old_len: int, new_len: int) -> list[FrameSplice]:
    """The store's splices for recomputed ranges: each replaces the same frames of the old
    data, the one that runs to the new end replaces the old data to its end (a length change);
    a shorter file whose end no range reaches drops the old tail."""
    out = [FrameSplice(w.first, len(w.data), w.data, w.times) for w in wins]
    if old_len != new_len:
        if out and out[-1].first + len(out[-1].data) == new_len:
            last = out.pop()
            out.append(FrameSplice(last.first, old_len - last.first, last.data, last.times))
        else:
            out.append(FrameSplice(new_len, old_len - new_len, np.zeros((0, 1, 1), np.float32)))
    return out


def assert_spliced_equals_full(old: Outputs, new: Outputs, result: PartialResult) -> None:
    for cid, features in result.frames.items():
        for feature, wins in features.items():
            before, after = old[cid][feature], new[cid][feature]
            assert result.n_frames[cid][feature] == len(after.data), (cid, feature)
            assert result.metas[cid][feature] == after.meta, (cid, feature)
            cut = splices(wins, len(before.data), len(after.data))
            if cut and not cut[-1].data.size:  # a dropped tail: the width of the data
                cut[-1] = FrameSplice(cut[-1].first, cut[-1].removed, before.data[:0])
            got = apply_splices(before.data, cut)
            assert got.shape == after.data.shape, (cid, feature, got.shape, after.data.shape)
            assert np.array_equal(got, after.data, equal_nan=True), (
                cid,
                feature,
                np.flatnonzero(~np.all((got == after.data) | np.isnan(after.data), axis=(1, 2))),
            )
            if wins and wins[0].times is not None:
                np.testing.assert_array_equal(apply_times(before.times, cut), after.times)


def plan_wanted(
    calcs: Sequence[Calculator], params: Params, old_d: BlockDigests, new_d: BlockDigests
) -> dict[str, tuple[tuple[int, int], ...]]:
    """What the planner does: changed ranges -> wanted frames per calculator."""
    spans = changed_ranges(old_d, new_d)
    assert spans is not None
    out = {}
    for calc in calcs:
        reach = declared_reach(calc, params, new_d.sample_rate)
        assert reach is not None
        n_new = frame_count(reach, new_d.frames)
        ranges = wanted_frames(calc, params, new_d.sample_rate, spans, n_new)
        assert ranges is not None
        out[calc.id] = ranges
    return out
