"""The analysis engine: block-size independence, frame counts, progress, cancellation,
per-channel analysis and failure handling, on real files."""

from __future__ import annotations

import gc
import math
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from diagnostics_app.core.calculators.base import (
    AnalysisContext,
    Block,
    Calculator,
    CalculatorRun,
    FeatureSpec,
    OutputMeta,
    Outputs,
    uniform_meta,
)
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.engine import (
    CancelToken,
    FeatureResult,
    MemorySink,
    PassPlan,
    analyse,
    run_pass,
)
from diagnostics_app.core.errors import AudioError, Cancelled, ParamError
from diagnostics_app.core.params import Params, resolve_params
from diagnostics_app.core.tempo import TempoMap
from tests.core import audio_factory as af

SR = 22050
TEMPO = TempoMap.from_json([{"time": 0.0, "bpm": 128.0}, {"time": 0.9, "bpm": 71.0}])
FRAME_FEATURES = ("rms", "spectrogram", "mel", "chroma", "centroid", "onset", "pitch")


def builtins() -> list[Calculator]:
    return list(Registry.builtin())


def flatten(results: Mapping[str, Mapping[str, FeatureResult]]) -> dict[str, FeatureResult]:
    return {feature: r for per_calc in results.values() for feature, r in per_calc.items()}


class SpySink(MemorySink):
    """A MemorySink that records which calculators it closed."""

    def __init__(self) -> None:
        super().__init__()
        self.closed: list[str] = []
        self.writes = 0

    def write(self, calculator_id: str, feature: str, frames: np.ndarray) -> None:
        self.writes += 1
        super().write(calculator_id, feature, frames)

    def close(
        self,
        calculator_id: str,
        metas: Mapping[str, OutputMeta],
        times: Mapping[str, np.ndarray | None],
    ) -> None:
        self.closed.append(calculator_id)
        super().close(calculator_id, metas, times)


def plan_for(path: Path, params: Params | None = None) -> PassPlan:
    return PassPlan(str(path), params or resolve_params(), TEMPO, tuple(builtins()))


# --- block size ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "profile",
    [
        {},
        {"channel_mode": "per_channel", "window_size": 1024, "hop_size": 300, "fft_size": 4096},
        {"window_size": 512, "hop_size": 1000, "peaks_block": 100},
    ],
    ids=["default", "per_channel_w1024_h300_fft4096", "hop_larger_than_window"],
)
def test_outputs_do_not_depend_on_block_size(profile: dict[str, Any], tmp_path: Path) -> None:
    """Bit-identical data, times and layout whether the file is decoded in blocks of 1000,
    777 or 2^17 frames."""
    path = af.write_float_wav(tmp_path / "s.wav", af.stereo(2.3, SR), SR)
    params = resolve_params(profile)
    runs = [
        flatten(analyse(path, builtins(), params, TEMPO, block_frames=b))
        for b in (1 << 17, 1000, 777)
    ]
    reference = runs[0]
    for other in runs[1:]:
        assert other.keys() == reference.keys()
        for feature, result in reference.items():
            assert other[feature].meta == result.meta, feature
            np.testing.assert_array_equal(other[feature].times, result.times, err_msg=feature)
            np.testing.assert_array_equal(other[feature].data, result.data, err_msg=feature)


# --- frame counts ----------------------------------------------------------------------------


@pytest.mark.parametrize("hop", [512, 300, 64])
@pytest.mark.parametrize("n", [1, 5, 100, 299, 300, 511, 512, 513, 2047, 2048, 2049, 6000])
def test_frame_counts(n: int, hop: int, tmp_path: Path) -> None:
    """Every framed feature has 1 + n // hop frames (librosa, center=True), frame t at
    t * hop / sr; peaks have ceil(n / peaks_block) blocks; beat_rms one frame per subdivision
    of the tempo map."""
    path = af.write_float_wav(tmp_path / "n.wav", af.white_noise(n / SR, SR, seed=n), SR)
    params = resolve_params({"hop_size": hop})
    out = flatten(analyse(path, builtins(), params, TEMPO, block_frames=1000))
    for feature in FRAME_FEATURES:
        assert out[feature].data.shape[0] == 1 + n // hop, feature
        np.testing.assert_allclose(out[feature].times, np.arange(1 + n // hop) * hop / SR)
        assert np.isfinite(out[feature].data).all(), feature
    assert out["peaks"].data.shape[0] == math.ceil(n / 64)
    beats = TEMPO.beat_times(n / SR, 4)
    assert out["beat_rms"].data.shape[0] == len(beats) >= 1
    np.testing.assert_array_equal(out["beat_rms"].times, beats)


def test_source_shorter_than_one_window(tmp_path: Path) -> None:
    """100 samples, a 2048-sample window: one frame, zero-padded on both sides (librosa's
    constant padding), so its RMS is sqrt(sum(x^2) / 2048)."""
    x = af.sine(1000.0, 100 / SR, SR, amp=0.8)
    path = af.write_float_wav(tmp_path / "short.wav", x, SR)
    out = flatten(analyse(path, builtins(), resolve_params(), TEMPO))
    for feature in FRAME_FEATURES:
        assert out[feature].data.shape[0] == 1
    expected = np.sqrt(np.sum(x.astype(np.float32).astype(np.float64) ** 2) / 2048)
    assert out["rms"].data[0, 0, 0] == pytest.approx(expected, rel=1e-6)
    assert out["spectrogram"].data.max() > -80.0  # the tone is there
    assert out["peaks"].data.shape == (2, 1, 2)


# --- channels --------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("mode", ["mix", "per_channel"])
def test_channels(channels: int, mode: str, tmp_path: Path) -> None:
    path = af.write_float_wav(tmp_path / "m.wav", af.multichannel(channels, 0.5, SR), SR)
    out = flatten(analyse(path, builtins(), resolve_params({"channel_mode": mode}), TEMPO))
    expected = channels if mode == "per_channel" else 1
    names = tuple(f"ch{i + 1}" for i in range(channels))
    for feature, result in out.items():
        if feature == "peaks":  # the waveform: always every audio channel
            assert result.data.shape[1] == result.meta.channels == channels
            assert result.meta.channel_names == names
        else:
            assert result.data.shape[1] == result.meta.channels == expected, feature
            assert result.meta.channel_names == (names if mode == "per_channel" else ("mix",))


def test_per_channel_equals_each_channel_alone(tmp_path: Path) -> None:
    """Channel c of a per-channel analysis is the analysis of channel c as a mono file."""
    data = af.stereo(1.0, SR)
    stereo = af.write_float_wav(tmp_path / "st.wav", data, SR)
    per = flatten(
        analyse(stereo, builtins(), resolve_params({"channel_mode": "per_channel"}), TEMPO)
    )
    for c in range(2):
        mono = af.write_float_wav(tmp_path / f"ch{c}.wav", data[:, c], SR)
        alone = flatten(analyse(mono, builtins(), resolve_params(), TEMPO))
        # not onset: like librosa's, its -80 dB floor is set by the loudest of all channels
        for feature in ("rms", "spectrogram", "mel", "chroma", "centroid", "pitch", "beat_rms"):
            np.testing.assert_allclose(
                per[feature].data[:, c], alone[feature].data[:, 0], rtol=1e-5, atol=1e-6,
                err_msg=feature,
            )  # fmt: skip


def test_mix_is_the_mean_of_the_channels(tmp_path: Path) -> None:
    data = af.stereo(1.0, SR)
    stereo = af.write_float_wav(tmp_path / "st.wav", data, SR)
    mono = af.write_float_wav(tmp_path / "mix.wav", data.mean(axis=1), SR)
    mixed = flatten(analyse(stereo, builtins(), resolve_params(), TEMPO))
    alone = flatten(analyse(mono, builtins(), resolve_params(), TEMPO))
    for feature in ("rms", "spectrogram", "centroid", "beat_rms"):
        np.testing.assert_allclose(mixed[feature].data, alone[feature].data, rtol=1e-4, atol=1e-5)


# --- progress and cancellation ---------------------------------------------------------------


def test_progress_is_reported_monotonically_and_ends_at_one(tmp_path: Path) -> None:
    path = af.write_float_wav(tmp_path / "p.wav", af.white_noise(1.0, SR), SR)
    calls: list[tuple[float, str]] = []
    run_pass(
        plan_for(path), MemorySink(), lambda f, label: calls.append((f, label)), block_frames=2000
    )
    fractions = [f for f, _ in calls]
    assert len(fractions) >= 5
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert fractions.count(1.0) == 1
    assert {label for _, label in calls} == {"p.wav"}


@pytest.mark.parametrize("at_call", [1, 3, 6])
def test_cancel_from_progress_callback(at_call: int, tmp_path: Path) -> None:
    """Cancelling from the progress callback stops the pass with Cancelled; the sink is
    aborted and nothing is closed (no partial output is ever committed)."""
    path = af.write_float_wav(tmp_path / "c.wav", af.white_noise(1.0, SR), SR)
    token = CancelToken()
    sink = SpySink()
    calls: list[float] = []

    def progress(fraction: float, label: str) -> None:
        calls.append(fraction)
        if len(calls) == at_call:
            token.cancel()

    with pytest.raises(Cancelled, match="cancelled"):
        run_pass(plan_for(path), sink, progress, token, block_frames=2000)
    assert token.cancelled
    assert len(calls) == at_call  # stops at the next check, before another block
    assert sink.aborted
    assert sink.closed == []
    assert sink.results == {}


def test_cancelled_before_start(tmp_path: Path) -> None:
    path = af.write_float_wav(tmp_path / "c.wav", af.white_noise(0.5, SR), SR)
    token = CancelToken()
    token.cancel()
    sink = SpySink()
    with pytest.raises(Cancelled):
        run_pass(plan_for(path), sink, cancel=token)
    assert sink.aborted
    assert sink.closed == []
    assert sink.writes == 0


def test_cancelled_pass_leaks_no_files(tmp_path: Path) -> None:
    """A cancelled pass leaves no open file behind (the onset spill, the decoder)."""
    path = af.write_float_wav(tmp_path / "c.wav", af.white_noise(1.0, SR), SR)
    token = CancelToken()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Cancelled):
            run_pass(
                plan_for(path), MemorySink(), lambda f, _: token.cancel(), token, block_frames=2000
            )
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


# --- failures --------------------------------------------------------------------------------


class _FailingRun(CalculatorRun):
    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        self.blocks = 0

    def process(self, block: Block) -> Outputs:
        self.blocks += 1
        if self.blocks == 3:
            raise RuntimeError("boom in block 3")
        return {}

    def outputs(self) -> Mapping[str, OutputMeta]:
        return {"nothing": uniform_meta(self.ctx, FeatureSpec("nothing"), 1)}


class FailingCalculator(Calculator):
    id = "test.failing"
    version = 1
    features: ClassVar[tuple[FeatureSpec, ...]] = (FeatureSpec("nothing"),)

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _FailingRun(ctx)


def test_calculator_error_aborts_the_sink(tmp_path: Path) -> None:
    path = af.write_float_wav(tmp_path / "f.wav", af.white_noise(1.0, SR), SR)
    sink = SpySink()
    plan = PassPlan(str(path), resolve_params(), TEMPO, (*builtins(), FailingCalculator()))
    with pytest.raises(RuntimeError, match="boom in block 3"):
        run_pass(plan, sink, block_frames=1000)
    assert sink.aborted
    assert sink.closed == []


def test_fmax_above_nyquist_is_a_param_error(tmp_path: Path) -> None:
    path = af.write_float_wav(tmp_path / "lo.wav", af.white_noise(0.3, 8000), 8000)
    with pytest.raises(ParamError, match=r"lo\.wav: fmax: 5000 Hz is above the Nyquist"):
        analyse(path, builtins(), resolve_params({"fmax": 5000.0}), TEMPO)


def test_fmin_at_or_above_nyquist_is_a_param_error(tmp_path: Path) -> None:
    """With fmax unset, mel would get an empty (inverted) band: refused up front."""
    path = af.write_float_wav(tmp_path / "lo.wav", af.white_noise(0.3, 8000), 8000)
    with pytest.raises(ParamError, match="fmin: 4000 Hz is not below the Nyquist"):
        analyse(path, builtins(), resolve_params({"fmin": 4000.0}), TEMPO)


def failures_before_decoding(tmp_path: Path) -> Iterator[tuple[Path, Params, type[Exception]]]:
    good = af.write_float_wav(tmp_path / "good.wav", af.white_noise(0.3, 8000), 8000)
    yield good, resolve_params({"fmax": 5000.0}), ParamError
    yield tmp_path / "missing.wav", resolve_params(), AudioError


def test_sink_is_aborted_when_the_pass_fails_before_decoding(tmp_path: Path) -> None:
    for path, params, error in failures_before_decoding(tmp_path):
        sink = SpySink()
        with pytest.raises(error):
            run_pass(PassPlan(str(path), params, TEMPO, tuple(builtins())), sink)
        assert sink.aborted, path.name


def test_silence_has_no_pitch_confidence(tmp_path: Path) -> None:
    path = af.write_float_wav(tmp_path / "silence.wav", af.silence(0.5, SR), SR)
    out = analyse(path, [Registry.builtin().get("core.pitch")], resolve_params(), TEMPO)
    confidence = out["core.pitch"]["pitch"].data[:, 0, 1]
    assert np.all(confidence == 0.0)
