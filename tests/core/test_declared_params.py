"""Every built-in calculator declares exactly the inputs its output depends on.

A cache entry's fingerprint is built from the calculator's declarations (``params`` and
``uses_tempo``), so:

- changing a parameter a calculator does not declare must leave its output bit-identical
  (otherwise a change would go unnoticed and a stale entry would look fresh);
- changing a parameter it declares must change its output (otherwise a change would make
  entries stale for nothing).

Each (calculator, parameter) pair is its own test, plus one per calculator for the tempo map.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from diagnostics_app.core.calculators.base import Calculator
from diagnostics_app.core.calculators.registry import BUILTINS
from diagnostics_app.core.engine import FeatureResult, analyse
from diagnostics_app.core.params import PARAMS, ParamValue, resolve_params
from diagnostics_app.core.tempo import TempoMap
from tests.core import audio_factory as af

SR = 22050

# For every parameter, a valid value other than the default that must change the output of
# every calculator that reads it, on the signal below.
CHANGED: dict[str, ParamValue] = {
    "window_size": 1024,
    "hop_size": 256,
    "fft_size": 4096,
    "window": "hamming",
    "channel_mode": "per_channel",
    "min_db": -60.0,  # the signal has content between -80 and -60 dBFS
    "max_db": -20.0,  # ... and above -20 dBFS
    "n_mels": 64,
    "fmin": 100.0,  # the sweep starts at 80 Hz
    "fmax": 1000.0,  # ... and ends at 3 kHz
    "n_chroma": 24,
    "trough_threshold": 0.5,
    "beat_subdivision": 2,
    "peaks_block": 128,
}
OTHER_TEMPO = TempoMap.from_json([{"time": 0.0, "bpm": 90.0}, {"time": 0.8, "bpm": 150.0}])


def rich_stereo() -> np.ndarray:
    """1.5 s of stereo with something for every parameter to act on: a loud sweep from 80 Hz
    to 3 kHz, noise bursts, clicks and a silent gap; the two channels differ."""
    n = round(1.5 * SR)
    left = af.chirp(80.0, 3000.0, 1.5, SR, amp=0.6)[:, 0]
    left[round(0.6 * SR) : round(0.75 * SR)] = 0.0  # a gap
    noise = af.white_noise(1.5, SR, amp=0.2, seed=3)[:, 0]
    burst = np.zeros(n)
    burst[round(0.2 * SR) : round(0.35 * SR)] = 1.0
    burst[round(1.1 * SR) : round(1.2 * SR)] = 1.0
    right = noise * burst + af.clicks(0.17, 1.5, SR, amp=0.7)[:, 0] + 0.001 * left
    right += af.sine(523.25, 1.5, SR, amp=0.3)[:, 0] * (np.arange(n) > 0.8 * SR)
    return af.stack(left, right)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return af.write_float_wav(tmp_path_factory.mktemp("declared") / "rich.wav", rich_stereo(), SR)


def run(
    calc_cls: type[Calculator],
    path: Path,
    overrides: dict[str, Any] | None = None,
    tempo: TempoMap | None = None,
) -> dict[str, FeatureResult]:
    # small blocks: the block loop is part of what must not depend on undeclared inputs
    results = analyse(path, [calc_cls()], resolve_params(overrides), tempo, block_frames=4000)
    return results[calc_cls.id]


_baselines: dict[str, dict[str, FeatureResult]] = {}


def baseline(calc_cls: type[Calculator], path: Path) -> dict[str, FeatureResult]:
    if calc_cls.id not in _baselines:
        _baselines[calc_cls.id] = run(calc_cls, path)
    return _baselines[calc_cls.id]


def identical(a: dict[str, FeatureResult], b: dict[str, FeatureResult]) -> bool:
    """Same features, bit-identical data, same frame times and layout."""
    if a.keys() != b.keys():
        return False
    return all(
        a[f].data.shape == b[f].data.shape
        and a[f].data.tobytes() == b[f].data.tobytes()
        and np.array_equal(a[f].times, b[f].times)
        and a[f].meta == b[f].meta
        for f in a
    )


def data_differs(a: dict[str, FeatureResult], b: dict[str, FeatureResult]) -> bool:
    """Every feature's data (shape or values) differs."""
    return all(
        a[f].data.shape != b[f].data.shape or not np.array_equal(a[f].data, b[f].data) for f in a
    )


def pairs() -> list[Any]:
    out = []
    for calc_cls in BUILTINS:
        for name in PARAMS:
            kind = "declared" if name in calc_cls.params else "undeclared"
            out.append(pytest.param(calc_cls, name, id=f"{calc_cls.id}-{name}-{kind}"))
    return out


def test_every_parameter_has_a_changed_value() -> None:
    assert set(CHANGED) == set(PARAMS)
    for name, value in CHANGED.items():
        assert value != PARAMS[name].default, name
        resolve_params({name: value})  # valid on its own


@pytest.mark.parametrize(("calc_cls", "param"), pairs())
def test_parameter_changes_output_exactly_when_declared(
    calc_cls: type[Calculator], param: str, source: Path
) -> None:
    before = baseline(calc_cls, source)
    after = run(calc_cls, source, {param: CHANGED[param]})
    if param in calc_cls.params:
        assert data_differs(before, after), (
            f"{calc_cls.id} declares {param!r} but {param}={CHANGED[param]!r} changes nothing"
        )
    else:
        assert identical(before, after), (
            f"{calc_cls.id} does not declare {param!r}, yet {param}={CHANGED[param]!r} "
            "changes its output"
        )


@pytest.mark.parametrize("calc_cls", BUILTINS, ids=lambda c: f"{c.id}-tempo_map")
def test_tempo_map_changes_output_exactly_when_used(
    calc_cls: type[Calculator], source: Path
) -> None:
    before = baseline(calc_cls, source)
    after = run(calc_cls, source, tempo=OTHER_TEMPO)
    if calc_cls.uses_tempo:
        assert data_differs(before, after)
    else:
        assert identical(before, after)


@pytest.mark.parametrize("calc_cls", BUILTINS, ids=lambda c: c.id)
def test_declarations_are_known_parameters_without_repeats(calc_cls: type[Calculator]) -> None:
    assert set(calc_cls.params) <= set(PARAMS)
    assert len(set(calc_cls.params)) == len(calc_cls.params)
