"""Reach: changed samples -> affected frames (core.ranges.affected_frames, each calculator's
declared reach).

The key property for a partial recomputation: recompute a feature with the real calculators on
the original and on the edited audio; every frame outside the predicted range is bit-identical.
The mapping itself is checked against a brute-force overlap test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagnostics_app.core.calculators.base import Calculator
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.engine import analyse
from diagnostics_app.core.params import resolve_params
from diagnostics_app.core.ranges import Reach, affected_frames, merge
from diagnostics_app.core.tempo import TempoMap
from tests.core import audio_factory as af
from tests.core.ranges_edits import EDITS, apply_edit, changed_samples

SR = 22050
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "example_plugin.py"


def _calculators() -> list[Calculator]:
    """The built-ins and the README's example plugin (its declared reach is checked too)."""
    registry = Registry.builtin()
    registry.load_folder(EXAMPLE.parent)
    assert "example.zcr" in registry
    return list(registry)


@given(
    spans=st.lists(
        st.tuples(st.integers(0, 3000), st.integers(1, 400)).map(lambda t: (t[0], t[0] + t[1])),
        min_size=1,
        max_size=4,
    ),
    before=st.integers(0, 300),
    after=st.integers(1, 300),
    step=st.integers(1, 200),
    n_frames=st.integers(1, 60),
)
@settings(max_examples=200, deadline=None)
def test_affected_frames_are_exactly_the_overlapping_frames(
    spans: list[tuple[int, int]], before: int, after: int, step: int, n_frames: int
) -> None:
    reach = Reach(before, after, step)
    predicted = {
        t for a, b in affected_frames(merge(spans), reach, n_frames) for t in range(a, b + 1)
    }
    brute = {
        t
        for t in range(n_frames)
        for a, b in spans
        if t * step - before < b and t * step + after > a
    }
    assert predicted == brute


def test_unbounded_reach_affects_every_frame() -> None:
    assert affected_frames(((10, 20),), None, 7) == ((0, 6),)
    assert affected_frames((), None, 7) == ()


def test_every_builtin_declares_its_reach_or_says_unbounded() -> None:
    params = resolve_params()
    declared = {c.id: c.reach(params, SR) for c in Registry.builtin()}
    # the two whose frames are not a fixed read around t * step are unbounded, on purpose
    assert declared["core.onset"] is None and declared["core.beats"] is None
    assert declared["core.rms"] == Reach(
        params.get_int("window_size") // 2,
        params.get_int("window_size") - params.get_int("window_size") // 2,
        params.get_int("hop_size"),
    )
    assert all(v is not None for k, v in declared.items() if k not in ("core.onset", "core.beats"))


_PROFILE = {"window_size": 512, "hop_size": 128, "peaks_block": 256}


def _frames(path: Path) -> dict[str, np.ndarray]:
    params = resolve_params(_PROFILE)
    results = analyse(path, _calculators(), params, TempoMap(), block_frames=2048)
    return {f"{cid}/{f}": r.data for cid, feats in results.items() for f, r in feats.items()}


@given(
    seed=st.integers(0, 2**32 - 1),
    edit=st.sampled_from(EDITS),
    ext=st.sampled_from(["wav", "flac"]),
    channels=st.sampled_from([1, 2]),
)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_frames_outside_the_predicted_range_are_bit_identical(
    tmp_path: Path, seed: int, edit: str, ext: str, channels: int
) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4000, 9000))
    original = rng.uniform(-0.5, 0.5, (n, channels)) * np.linspace(0.2, 1, n)[:, None]
    edited = apply_edit(original, edit, rng)
    old_path, new_path = tmp_path / f"old.{ext}", tmp_path / f"new.{ext}"
    af.write(old_path, original, SR, *af.FORMATS[ext])
    af.write(new_path, edited, SR, *af.FORMATS[ext])
    old_samples, _ = af.decoded(old_path)
    new_samples, _ = af.decoded(new_path)
    spans = changed_samples(old_samples, new_samples)
    old, new = _frames(old_path), _frames(new_path)
    params = resolve_params(_PROFILE)
    for calc in _calculators():
        reach = calc.reach(params, SR)
        if reach is None:
            continue
        for feature in calc.feature_names():
            key = f"{calc.id}/{feature}"
            a, b = old[key], new[key]
            n_frames = max(len(a), len(b))
            hit = np.zeros(n_frames, bool)
            for first, last in affected_frames(spans, reach, n_frames):
                hit[first : last + 1] = True
            common = min(len(a), len(b))
            # frames on one side only (a length change) must be predicted
            assert hit[common:].all(), (key, edit)
            same = np.all(
                (a[:common] == b[:common]) | (np.isnan(a[:common]) & np.isnan(b[:common])),
                axis=(1, 2),
            )
            outside = ~hit[:common]
            assert same[outside].all(), (key, edit, np.flatnonzero(outside & ~same)[:5], spans)


@pytest.mark.parametrize("edit", EDITS)
def test_each_edit_changes_something(edit: str) -> None:
    rng = np.random.default_rng(1)
    original = rng.uniform(-0.5, 0.5, (5000, 1))
    edited = apply_edit(original, edit, rng)
    assert changed_samples(original.T.astype(np.float32), edited.T.astype(np.float32))


def test_a_faulty_reach_declaration_is_unbounded() -> None:
    from diagnostics_app.core.calculators.base import declared_reach
    from diagnostics_app.core.calculators.temporal import RmsCalculator

    class Raises(RmsCalculator):
        def reach(self, params: Any, sample_rate: int) -> Reach | None:
            raise RuntimeError("plugin bug")

    class Wrong(RmsCalculator):
        def reach(self, params: Any, sample_rate: int) -> Any:
            return (1, 2, 3)

    params = resolve_params()
    assert declared_reach(Raises(), params, SR) is None
    assert declared_reach(Wrong(), params, SR) is None
    assert declared_reach(RmsCalculator(), params, SR) == RmsCalculator().reach(params, SR)
