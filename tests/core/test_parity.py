"""Parity of every built-in feature with its reference (interface §2), on real files.

librosa is the reference for rms, spectrogram, mel, chroma, centroid, onset and pitch; numpy
references stand in for peaks (min/max per block) and beat_rms (RMS per subdivision of the
tempo map). Every reference starts from the file decoded by soundfile, i.e. exactly the
samples the engine sees; the "mix" signal is the mean of the channels.

All librosa use of the suite is in this module (its first call compiles numba).

Interpretation pinned here: mel, chroma, centroid and onset are computed from the one shared
STFT, so their librosa references get ``win_length=window_size`` and ``window=window`` like the
spectrogram's (interface §2 lists ``window`` for mel/chroma/centroid and neither for onset).
With the default profile (fft_size unset, Hann) both readings coincide.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import pytest
import scipy.signal

from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.calculators.spectral import _OnsetRun
from diagnostics_app.core.engine import FeatureResult, analyse
from diagnostics_app.core.params import (
    PITCH_FMAX_DEFAULT,
    PITCH_FMIN_DEFAULT,
    Params,
    resolve_params,
)
from diagnostics_app.core.tempo import TempoMap
from tests.core import audio_factory as af

pytestmark = [
    pytest.mark.xdist_group("librosa"),
    # librosa's own remark on the short-signal case; the engine handles it silently
    pytest.mark.filterwarnings("ignore:n_fft=.* is too large for input signal:UserWarning"),
]

TEMPO_JSON: list[dict[str, Any]] = [
    {"time": 0.0, "bpm": 120.0},
    {"time": 0.7, "bpm": 97.5},
    {"time": 1.6, "bpm": 143.0},
]

# --- cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[int], np.ndarray]  # sample rate -> (frames, channels)
    sr: int
    profile: dict[str, Any] = field(default_factory=dict)
    block_frames: int = 1 << 17
    ext: str = "wav"  # "wav" is 32-bit float: decoded == signal.astype(float32)
    tonal: bool = False  # every interior frame has a clear pitch (sines, sweeps)

    def __str__(self) -> str:
        return self.name


CASES = (
    Case("sine_22k", lambda sr: af.sine(440.0, 2.0, sr), 22050, block_frames=5000, tonal=True),
    Case(
        "chirp_22k_w1024_h256",
        lambda sr: af.chirp(100.0, 4000.0, 2.0, sr),
        22050,
        {"window_size": 1024, "hop_size": 256},
        block_frames=5000,
        tonal=True,
    ),
    Case(
        "noise_44k_fft4096_w2048",
        lambda sr: af.white_noise(1.5, sr),
        44100,
        {"fft_size": 4096, "window_size": 2048},
    ),
    Case(
        "clicks_44k_mel64_hamming",
        lambda sr: af.clicks(0.25, 2.0, sr),
        44100,
        {"n_mels": 64, "fmin": 50.0, "fmax": 8000.0, "window": "hamming"},
        block_frames=5000,
    ),
    Case("silence_22k", lambda sr: af.silence(1.0, sr), 22050, block_frames=4096),
    Case(
        "sine_plus_silence_22k_blackman_hop300",
        lambda sr: np.concatenate([af.sine(660.0, 1.0, sr), af.silence(0.5, sr)]),
        22050,
        {"window": "blackman", "hop_size": 300, "n_chroma": 24},
        block_frames=7001,
    ),
    Case(
        "shorter_than_one_window_22k",
        lambda sr: af.chirp(300.0, 900.0, 0.05, sr),
        22050,
        block_frames=500,
    ),
    Case("stereo_mix_44k", lambda sr: af.stereo(1.5, sr), 44100, block_frames=3000),
    Case(
        "stereo_per_channel_22k_w1024_h256",
        lambda sr: af.stereo(2.0, sr),
        22050,
        {"channel_mode": "per_channel", "window_size": 1024, "hop_size": 256},
        block_frames=5000,
        tonal=True,
    ),
    Case(
        "three_channel_mix_flac24_44k",
        lambda sr: af.multichannel(3, 1.0, sr),
        44100,
        {"trough_threshold": 0.2, "beat_subdivision": 3, "peaks_block": 100},
        ext="flac",
    ),
)

FEATURES = (
    "peaks",
    "rms",
    "spectrogram",
    "mel",
    "chroma",
    "centroid",
    "onset",
    "pitch",
    "beat_rms",
)
CALCULATOR_OF = {
    "peaks": "core.peaks",
    "rms": "core.rms",
    "spectrogram": "core.spectrogram",
    "mel": "core.mel",
    "chroma": "core.chroma",
    "centroid": "core.centroid",
    "onset": "core.onset",
    "pitch": "core.pitch",
    "beat_rms": "core.beats",
}


@dataclass
class Analysed:
    """One case on disk, analysed once by the engine, and the reference's inputs."""

    case: Case
    path: Path
    params: Params
    samples: np.ndarray  # (audio channels, n) float32, as decoded
    signal: np.ndarray  # (signal channels, n) float32: the mix or every channel
    results: dict[str, dict[str, FeatureResult]]

    def ours(self, feature: str) -> np.ndarray:
        """Our feature as (channels, width, frames), librosa's layout with a channel axis."""
        data = self.results[CALCULATOR_OF[feature]][feature].data
        return data.transpose(1, 2, 0)

    @property
    def y(self) -> np.ndarray:
        """The reference input: 1-D when there is one signal channel (as librosa is used)."""
        return self.signal[0] if self.signal.shape[0] == 1 else self.signal

    @property
    def stft_kwargs(self) -> dict[str, Any]:
        p = self.params
        return {
            "n_fft": p.n_fft,
            "hop_length": p.get_int("hop_size"),
            "win_length": p.get_int("window_size"),
            "window": p.get_str("window"),
            "center": True,
            "pad_mode": "constant",
        }


_analysed: dict[str, Analysed] = {}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("parity")


def analysed(case: Case, workdir: Path) -> Analysed:
    """Write the case's file and run the engine over it, once per module."""
    if case.name not in _analysed:
        path = workdir / f"{case.name}.{case.ext}"
        if case.ext == "flac":
            af.write(path, case.make(case.sr), case.sr, "FLAC", "PCM_24")
        else:
            af.write_float_wav(path, case.make(case.sr), case.sr)
        params = resolve_params(case.profile)
        results = analyse(
            path,
            list(Registry.builtin()),
            params,
            TempoMap.from_json(TEMPO_JSON),
            block_frames=case.block_frames,
        )
        samples, sr = af.decoded(path)
        assert sr == case.sr
        signal = af.mono_mix(samples)[None] if params["channel_mode"] == "mix" else samples
        _analysed[case.name] = Analysed(case, path, params, samples, signal, results)
    return _analysed[case.name]


def as_channels(ref: np.ndarray, channels: int) -> np.ndarray:
    """A librosa result with or without a channel axis → (channels, width, frames)."""
    return ref.reshape(channels, -1, ref.shape[-1])


# --- peaks and beat_rms: numpy references ----------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
def test_peaks_equal_min_max_per_block(case: Case, workdir: Path) -> None:
    """peaks: exactly min and max of every ``peaks_block`` samples of each audio channel
    (never mixed); the last, partial block covers what is left. Tolerance: exact."""
    a = analysed(case, workdir)
    block = a.params.get_int("peaks_block")
    x = a.samples
    n_blocks = math.ceil(x.shape[1] / block)
    ref = np.empty((n_blocks, x.shape[0], 2), np.float32)
    for k in range(n_blocks):
        part = x[:, k * block : (k + 1) * block]
        ref[k, :, 0] = part.min(axis=1)
        ref[k, :, 1] = part.max(axis=1)
    got = a.results["core.peaks"]["peaks"]
    np.testing.assert_array_equal(got.data, ref)
    np.testing.assert_allclose(got.times, np.arange(n_blocks) * block / case.sr)


def reference_beat_starts(duration: float, sub: int) -> np.ndarray:
    """Subdivision starts written out by hand from TEMPO_JSON: each segment restarts the grid
    at its own start time."""
    starts: list[float] = []
    for i, seg in enumerate(TEMPO_JSON):
        end = TEMPO_JSON[i + 1]["time"] if i + 1 < len(TEMPO_JSON) else duration
        end = min(end, duration)
        step = 60.0 / seg["bpm"] / sub
        k = 0
        while seg["time"] + k * step < end - 1e-9:
            starts.append(seg["time"] + k * step)
            k += 1
    return np.array(starts)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_beat_rms_equals_numpy_reference(case: Case, workdir: Path) -> None:
    """beat_rms: RMS of the signal over [start_k, start_k+1) of each tempo-map subdivision
    (the last ends with the file), frame times = subdivision starts. Tolerance: 1e-5
    relative to the largest value (float64 sums stored as float32)."""
    a = analysed(case, workdir)
    n = a.signal.shape[1]
    starts = reference_beat_starts(n / case.sr, a.params.get_int("beat_subdivision"))
    bounds = [*(round(t * case.sr) for t in starts), n]
    x = a.signal.astype(np.float64)
    ref = np.array(
        [np.sqrt(np.mean(x[:, b0:b1] ** 2, axis=1)) for b0, b1 in itertools.pairwise(bounds)]
    )  # (beats, channels)
    got = a.results["core.beats"]["beat_rms"]
    assert got.data.shape == (len(starts), a.signal.shape[0], 1)
    np.testing.assert_allclose(got.times, starts, rtol=0, atol=1e-9)
    scale = max(float(np.abs(ref).max()), 1e-12)
    np.testing.assert_allclose(got.data[:, :, 0], ref, rtol=0, atol=1e-5 * scale)


# --- librosa references ----------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rms_matches_librosa(case: Case, workdir: Path) -> None:
    """rms = librosa.feature.rms(frame_length=window_size, hop_length=hop_size, center=True,
    pad_mode="constant"). Tolerance: 1e-3 relative (plus 1e-7 absolute for silent frames)."""
    a = analysed(case, workdir)
    ref = librosa.feature.rms(
        y=a.y,
        frame_length=a.params.get_int("window_size"),
        hop_length=a.params.get_int("hop_size"),
        center=True,
        pad_mode="constant",
    )
    got = a.ours("rms")
    ref = as_channels(ref, got.shape[0])
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_spectrogram_matches_librosa_stft(case: Case, workdir: Path) -> None:
    """spectrogram = clip(20*log10(max(|librosa.stft(n_fft, hop, win_length, window,
    center=True, pad_mode="constant")| * 2 / sum(window), 1e-5)), min_db, max_db).
    Tolerance: 0.05 dB wherever the reference is above min_db + 20; below, 1 dB."""
    a = analysed(case, workdir)
    p = a.params
    mag = np.abs(librosa.stft(a.y, **a.stft_kwargs))
    win = scipy.signal.get_window(p.get_str("window"), p.get_int("window_size"), fftbins=True)
    ref = 20 * np.log10(np.maximum(mag * 2 / win.sum(), 1e-5))
    ref = np.clip(ref, p.get_float("min_db"), p.get_float("max_db"))
    got = a.ours("spectrogram")
    ref = as_channels(ref, got.shape[0])
    assert got.shape == ref.shape
    loud = ref > p.get_float("min_db") + 20
    assert np.abs(got - ref)[loud].max(initial=0.0) <= 0.05
    assert np.abs(got - ref).max() <= 1.0
    meta = a.results["core.spectrogram"]["spectrogram"].meta
    np.testing.assert_allclose(meta.bins, librosa.fft_frequencies(sr=case.sr, n_fft=p.n_fft))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_mel_matches_librosa(case: Case, workdir: Path) -> None:
    """mel = power_to_db(melspectrogram(power=2, n_mels, fmin, fmax), ref=1, amin=1e-10,
    top_db=None), fmin/fmax unset = 0 / sr/2. Tolerance: 0.05 dB where the reference is above
    (its max - 80 dB)."""
    a = analysed(case, workdir)
    p = a.params
    fmin = p.optional_float("fmin") or 0.0
    fmax = p.optional_float("fmax") or case.sr / 2
    power = librosa.feature.melspectrogram(
        y=a.y, sr=case.sr, power=2.0, n_mels=p.get_int("n_mels"), fmin=fmin, fmax=fmax,
        **a.stft_kwargs,
    )  # fmt: skip
    ref = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None)
    got = a.ours("mel")
    ref = as_channels(ref, got.shape[0])
    assert got.shape == ref.shape
    strong = ref > ref.max() - 80
    assert np.abs(got - ref)[strong].max() <= 0.05
    meta = a.results["core.mel"]["mel"].meta
    centres = librosa.mel_frequencies(n_mels=p.get_int("n_mels") + 2, fmin=fmin, fmax=fmax)
    np.testing.assert_allclose(meta.bins, centres[1:-1], rtol=1e-9)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_chroma_matches_librosa(case: Case, workdir: Path) -> None:
    """chroma = librosa.feature.chroma_stft(n_chroma, tuning=0.0). Tolerance: 1e-3 of the
    reference's maximum, absolute."""
    a = analysed(case, workdir)
    ref = librosa.feature.chroma_stft(
        y=a.y, sr=case.sr, tuning=0.0, n_chroma=a.params.get_int("n_chroma"), **a.stft_kwargs
    )
    got = a.ours("chroma")
    ref = as_channels(ref, got.shape[0])
    assert got.shape == ref.shape
    scale = max(float(ref.max()), 1e-12)
    assert np.abs(got - ref).max() <= 1e-3 * scale


@pytest.mark.parametrize("case", CASES, ids=str)
def test_centroid_matches_librosa(case: Case, workdir: Path) -> None:
    """centroid = librosa.feature.spectral_centroid. Tolerance: 1e-3 relative, on frames
    with energy (|STFT| summed over bins above 1e-6 of the loudest frame's)."""
    a = analysed(case, workdir)
    ref = librosa.feature.spectral_centroid(y=a.y, sr=case.sr, **a.stft_kwargs)
    got = a.ours("centroid")
    ref = as_channels(ref, got.shape[0])
    assert got.shape == ref.shape
    energy = as_channels(np.abs(librosa.stft(a.y, **a.stft_kwargs)).sum(axis=-2), got.shape[0])
    voiced = energy > max(1e-6 * float(energy.max()), 1e-12)
    if case.name.startswith("silence"):
        assert not voiced.any()
        assert np.all(got == 0.0)
    else:
        assert voiced.sum() >= min(10, voiced.size)
        np.testing.assert_allclose(got[voiced], ref[voiced], rtol=1e-3)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_onset_matches_librosa(case: Case, workdir: Path) -> None:
    """onset = librosa.onset.onset_strength(sr, n_fft, hop_length, center=True) on the shared
    STFT (win_length, window). Tolerance: 1e-3 of the reference's maximum, absolute."""
    a = analysed(case, workdir)
    ref = onset_reference(a)
    got = a.ours("onset")
    ref = as_channels(ref, got.shape[0])
    assert got.shape == ref.shape
    scale = max(float(ref.max()), 1e-12)
    assert np.abs(got - ref).max() <= 1e-3 * scale


def onset_reference(a: Analysed) -> np.ndarray:
    kwargs = a.stft_kwargs
    del kwargs["pad_mode"]  # onset_strength pads its own way; "constant" is the default
    return librosa.onset.onset_strength(y=a.y, sr=a.case.sr, **kwargs)


def test_onset_matches_librosa_across_read_back_chunks(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The onset envelope is assembled from its spill file in chunks: chunk edges (7 frames
    here, instead of 8192) must not show. Tolerance: 1e-3 of the reference's maximum."""
    monkeypatch.setattr(_OnsetRun, "CHUNK", 7)
    case = Case(
        "onset_chunks",
        lambda sr: af.chirp(200.0, 3000.0, 1.0, sr) + af.clicks(0.1, 1.0, sr, amp=0.4),
        22050,
        {"hop_size": 128, "window_size": 1024},
        block_frames=2000,
    )
    _analysed.pop(case.name, None)
    a = analysed(case, workdir)
    _analysed.pop(case.name)
    ref = onset_reference(a)
    got = a.ours("onset")[0, 0]
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= 1e-3 * float(ref.max())


@pytest.mark.parametrize("case", CASES, ids=str)
def test_pitch_matches_librosa_yin(case: Case, workdir: Path) -> None:
    """pitch f0 = librosa.yin(fmin, fmax (unset: C2, C7), frame_length=window_size,
    hop_length=hop_size, trough_threshold, center=True, pad_mode="constant").
    Tolerance: 0.5 % on voiced frames (our confidence >= 0.8). For tonal signals every frame
    whose window lies inside the signal must be voiced, so the comparison is never empty."""
    a = analysed(case, workdir)
    p = a.params
    win, hop = p.get_int("window_size"), p.get_int("hop_size")
    fmin = p.optional_float("fmin") or PITCH_FMIN_DEFAULT
    fmax = p.optional_float("fmax") or PITCH_FMAX_DEFAULT
    ref = librosa.yin(
        a.y,
        fmin=fmin,
        fmax=fmax,
        sr=case.sr,
        frame_length=win,
        hop_length=hop,
        center=True,
        pad_mode="constant",
        trough_threshold=p.get_float("trough_threshold"),
    )
    got = a.ours("pitch")  # (channels, 2, frames): f0, confidence
    ref = as_channels(ref, got.shape[0])[:, 0]
    f0, confidence = got[:, 0], got[:, 1]
    assert f0.shape == ref.shape
    assert np.all((confidence >= 0) & (confidence <= 1))
    voiced = confidence >= 0.8
    if case.tonal:
        n = a.signal.shape[1]
        t = np.arange(f0.shape[-1])
        interior = (t * hop - win // 2 >= 0) & (t * hop + win // 2 <= n)
        assert interior.sum() > 10
        assert voiced[:, interior].all()
    np.testing.assert_allclose(f0[voiced], ref[voiced], rtol=5e-3)


def test_every_feature_is_covered() -> None:
    """The references above cover every built-in feature."""
    assert set(Registry.builtin().features()) == set(FEATURES)
