"""Spectral calculators, all fed by the one STFT the engine computes per block.

Each matches its librosa definition (see the interface, section 2); the filterbanks are
re-derived here so that librosa (and numba) stay a test-only dependency. Parity tests compare
every one of them against librosa.
"""

from __future__ import annotations

import tempfile
import weakref
from collections.abc import Iterable, Mapping
from functools import cache

import numpy as np

from diagnostics_app.core.calculators.base import (
    AnalysisContext,
    Block,
    Calculator,
    CalculatorRun,
    FeatureSpec,
    OutputMeta,
    Outputs,
    Reach,
    as_frames,
    frame_reach,
    uniform_meta,
)
from diagnostics_app.core.dsp import analysis_window, stft_offset
from diagnostics_app.core.params import Params

STFT_PARAMS = ("window_size", "hop_size", "fft_size", "window", "channel_mode")


def stft_reach(params: Params) -> Reach:
    """An STFT frame reads ``window_size`` samples at the engine's offset (the window sits
    centred in the ``n_fft`` frame; the zero padding to ``n_fft`` reads nothing)."""
    return frame_reach(
        params.get_int("window_size"), stft_offset(params), params.get_int("hop_size")
    )


# --- filterbanks (librosa's definitions) -----------------------------------------------------


def fft_frequencies(sr: int, n_fft: int) -> np.ndarray:
    return np.fft.rfftfreq(n_fft, 1.0 / sr)


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa, htk=False)."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    mel = f / f_sp
    return np.where(
        f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, mel
    )


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@cache
def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-normalised triangular mel filters, (n_mels, 1 + n_fft // 2), float32."""
    fftfreqs = fft_frequencies(sr, n_fft)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    out = weights.astype(np.float32)
    out.setflags(write=False)
    return out


@cache
def mel_centres(n_mels: int, fmin: float, fmax: float) -> tuple[float, ...]:
    return tuple(mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))[1:-1])


@cache
def chroma_filterbank(sr: int, n_fft: int, n_chroma: int) -> np.ndarray:
    """librosa.filters.chroma(sr, n_fft, n_chroma, tuning=0, ctroct=5, octwidth=2, norm=2,
    base_c=True), float32."""
    frequencies = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    a440_over_16 = 440.0 / 16
    frqbins = n_chroma * np.log2(frequencies / a440_over_16)
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    d = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype="d")).T
    n_chroma2 = np.round(float(n_chroma) / 2)
    d = np.remainder(d + n_chroma2 + 10 * n_chroma, n_chroma) - n_chroma2
    wts = np.exp(-0.5 * (2 * d / np.tile(binwidthbins, (n_chroma, 1))) ** 2)
    norms = np.sqrt(np.sum(wts**2, axis=0, keepdims=True))
    wts = wts / np.where(norms < np.finfo(wts.dtype).tiny, 1.0, norms)
    wts *= np.tile(np.exp(-0.5 * (((frqbins / n_chroma - 5.0) / 2.0) ** 2)), (n_chroma, 1))
    wts = np.roll(wts, -3 * (n_chroma // 12), axis=0)
    out = np.ascontiguousarray(wts[:, : int(1 + n_fft / 2)], dtype=np.float32)
    out.setflags(write=False)
    return out


def _mel_limits(ctx: AnalysisContext) -> tuple[float, float]:
    fmin = ctx.params.optional_float("fmin")
    fmax = ctx.params.optional_float("fmax")
    return (0.0 if fmin is None else fmin), (ctx.sample_rate / 2 if fmax is None else fmax)


def framewise_dot(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``x @ weights`` for x of shape (..., frames, k), computed one frame at a time.

    A plain matrix product lets BLAS pick its kernels and summation order from the number of
    frames, so a frame's result would depend on how the engine happened to cut the file into
    blocks. One small product per frame (numpy loops over the stacked frames) gives every frame
    the same arithmetic whatever the block size: outputs are bit-identical across block sizes.
    """
    vector = weights.ndim == 1
    w = weights[:, None] if vector else weights
    out = np.matmul(x[..., None, :], w)[..., 0, :]
    return out[..., 0] if vector else out


def mel_power(
    block: Block, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float
) -> np.ndarray:
    """Mel power spectrum (channels, frames, n_mels), shared between calculators per block."""
    fb = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    return block.shared(("mel", n_mels, fmin, fmax), lambda: framewise_dot(block.power, fb.T))


def power_to_db(power: np.ndarray, amin: float = 1e-10) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(power, amin))


# --- spectrogram -----------------------------------------------------------------------------

SPECTROGRAM = FeatureSpec(
    "spectrogram",
    kind="image",
    unit="dBFS",
    bin_unit="Hz",
    storage="u16db",
    description="STFT magnitude in dB full scale",
)


class SpectrogramCalculator(Calculator):
    """``20*log10(max(|STFT| * 2 / sum(window), 1e-5))`` clipped to [min_db, max_db]."""

    id = "core.spectrogram"
    version = 1
    features = (SPECTROGRAM,)
    params = (*STFT_PARAMS, "min_db", "max_db")
    uses_spectrum = True
    description = "STFT magnitude, dB full scale"

    def reach(self, params: Params, sample_rate: int) -> Reach | None:
        return stft_reach(params)

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _SpectrogramRun(ctx)


class _SpectrogramRun(CalculatorRun):
    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        p = ctx.params
        win = analysis_window(p.get_str("window"), p.get_int("window_size"))
        self.scale = np.float32(2.0 / float(win.sum(dtype=np.float64)))
        self.lo, self.hi = p.get_float("min_db"), p.get_float("max_db")

    def process(self, block: Block) -> Outputs:
        # one array, every step in place (the same operations, two fewer block-sized arrays)
        db = block.magnitude * self.scale
        np.maximum(db, np.float32(1e-5), out=db)
        np.log10(db, out=db)
        db *= np.float32(20.0)
        np.clip(db, self.lo, self.hi, out=db)
        return {"spectrogram": as_frames(db)}

    def outputs(self) -> Mapping[str, OutputMeta]:
        bins = fft_frequencies(self.ctx.sample_rate, self.ctx.params.n_fft)
        return {
            "spectrogram": uniform_meta(
                self.ctx, SPECTROGRAM, len(bins), bins=bins, value_range=(self.lo, self.hi)
            )
        }


# --- mel -------------------------------------------------------------------------------------

MEL = FeatureSpec(
    "mel", kind="image", unit="dB", bin_unit="Hz", description="mel power spectrum in dB"
)


class MelCalculator(Calculator):
    """``power_to_db(melspectrogram(power=2, n_mels, fmin, fmax), ref=1, amin=1e-10, top_db=None)``."""

    id = "core.mel"
    version = 1
    features = (MEL,)
    params = (*STFT_PARAMS, "n_mels", "fmin", "fmax")
    uses_spectrum = True
    description = "mel spectrogram, dB"

    def reach(self, params: Params, sample_rate: int) -> Reach | None:
        return stft_reach(params)

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _MelRun(ctx)


class _MelRun(CalculatorRun):
    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        self.n_mels = ctx.params.get_int("n_mels")
        self.fmin, self.fmax = _mel_limits(ctx)

    def process(self, block: Block) -> Outputs:
        mel = mel_power(
            block, self.ctx.sample_rate, self.ctx.params.n_fft, self.n_mels, self.fmin, self.fmax
        )
        return {"mel": as_frames(power_to_db(mel))}

    def outputs(self) -> Mapping[str, OutputMeta]:
        return {
            "mel": uniform_meta(
                self.ctx, MEL, self.n_mels, bins=mel_centres(self.n_mels, self.fmin, self.fmax)
            )
        }


# --- chroma ----------------------------------------------------------------------------------

CHROMA = FeatureSpec(
    "chroma",
    kind="image",
    unit="",
    bin_unit="pitch class",
    description="chroma (max-normalised per frame)",
)
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


class ChromaCalculator(Calculator):
    """``librosa.feature.chroma_stft(..., tuning=0.0)``: chroma filters over the power
    spectrum, each frame normalised by its maximum."""

    id = "core.chroma"
    version = 1
    features = (CHROMA,)
    params = (*STFT_PARAMS, "n_chroma")
    uses_spectrum = True
    description = "chroma from the STFT"

    def reach(self, params: Params, sample_rate: int) -> Reach | None:
        return stft_reach(params)

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _ChromaRun(ctx)


class _ChromaRun(CalculatorRun):
    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        self.n = ctx.params.get_int("n_chroma")
        self.fb = chroma_filterbank(ctx.sample_rate, ctx.params.n_fft, self.n)

    def process(self, block: Block) -> Outputs:
        raw = framewise_dot(block.power, self.fb.T)  # (C, F, n_chroma)
        peak = np.max(np.abs(raw), axis=-1, keepdims=True)
        tiny = np.finfo(np.float32).tiny
        return {"chroma": as_frames(raw / np.where(peak < tiny, 1.0, peak))}

    def outputs(self) -> Mapping[str, OutputMeta]:
        return {"chroma": uniform_meta(self.ctx, CHROMA, self.n, bins=range(self.n))}


# --- centroid --------------------------------------------------------------------------------

CENTROID = FeatureSpec("centroid", unit="Hz", description="spectral centroid")


class CentroidCalculator(Calculator):
    """``librosa.feature.spectral_centroid``: magnitude-weighted mean frequency per frame."""

    id = "core.centroid"
    version = 1
    features = (CENTROID,)
    params = STFT_PARAMS
    uses_spectrum = True
    description = "spectral centroid"

    def reach(self, params: Params, sample_rate: int) -> Reach | None:
        return stft_reach(params)

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _CentroidRun(ctx)


class _CentroidRun(CalculatorRun):
    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        self.freqs = fft_frequencies(ctx.sample_rate, ctx.params.n_fft).astype(np.float32)

    def process(self, block: Block) -> Outputs:
        mag = block.magnitude
        total = mag.sum(axis=-1, dtype=np.float64)
        weighted = framewise_dot(mag, self.freqs).astype(np.float64)
        tiny = np.finfo(np.float32).tiny
        centroid = weighted / np.where(total < tiny, 1.0, total)
        return {"centroid": as_frames(centroid)}

    def outputs(self) -> Mapping[str, OutputMeta]:
        return {"centroid": uniform_meta(self.ctx, CENTROID, 1)}


# --- onset strength --------------------------------------------------------------------------

ONSET = FeatureSpec(
    "onset", unit="", description="onset strength (spectral flux of the mel dB spectrum)"
)
_ONSET_MELS = 128
_TOP_DB = 80.0


class OnsetCalculator(Calculator):
    """``librosa.onset.onset_strength(y, sr, n_fft, hop_length, center=True)``: mean over 128
    mel bands of the half-wave rectified first difference of the mel spectrum in dB.

    librosa clips the dB spectrum at (global maximum - 80 dB), a value only known at the end of
    the file. To stay exact while streaming, the mel dB frames spill to a temporary file (disk,
    not memory) and the onset envelope is computed from it in blocks at the end.
    """

    id = "core.onset"
    version = 1
    features = (ONSET,)
    params = STFT_PARAMS
    uses_spectrum = True
    description = "onset strength envelope"

    def reach(self, params: Params, sample_rate: int) -> Reach | None:
        # Unbounded: the dB spectrum is clipped at (the file's maximum - 80 dB), and an edit
        # anywhere can move that maximum and so every frame. (With the maximum unchanged a
        # frame would read its STFT frame and the one before: a later refinement.)
        return None

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _OnsetRun(ctx)


class _OnsetRun(CalculatorRun):
    CHUNK = 8192  # frames per read-back chunk in finish()

    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        self.spill = tempfile.TemporaryFile(prefix="onset-")  # noqa: SIM115 (closed in finish)
        # A cancelled or failed pass never calls finish(): close the spill when the run is
        # dropped instead (no leaked descriptor, no ResourceWarning).
        self._close_spill = weakref.finalize(self, self.spill.close)
        self.frames = 0
        self.peak = -np.inf

    def process(self, block: Block) -> Outputs:
        if block.frame_count:
            mel = mel_power(
                block,
                self.ctx.sample_rate,
                self.ctx.params.n_fft,
                _ONSET_MELS,
                0.0,
                self.ctx.sample_rate / 2,
            )
            db = np.ascontiguousarray(
                power_to_db(mel).transpose(1, 0, 2), dtype=np.float32
            )  # (F, C, M)
            self.peak = max(self.peak, float(db.max()))
            self.spill.write(db.tobytes())
            self.frames += db.shape[0]
        return {}

    def finish(self) -> Iterable[Outputs]:
        ch = self.ctx.signal_channels
        floor = np.float32(self.peak - _TOP_DB)
        # librosa pads the envelope on the left by lag + n_fft // (2 * hop) frames
        shift = 1 + self.ctx.params.n_fft // (2 * self.ctx.hop)
        self.spill.flush()
        self.spill.seek(0)
        try:
            emitted = 0
            while emitted < self.frames:
                # output frame k = mean(max(0, S[k - shift + 1] - S[k - shift]))
                n = min(self.CHUNK, self.frames - emitted)
                out = np.zeros((n, ch), np.float64)
                lo = emitted - shift  # S index of the "previous" frame for output frame `emitted`
                first = max(lo, 0)
                last = min(emitted + n - shift + 1, self.frames)  # exclusive end of S needed
                if last - first >= 2:
                    s = np.maximum(self._read(first, last), floor)
                    diff = np.maximum(0.0, s[1:] - s[:-1]).mean(
                        axis=-1
                    )  # diff[j]: S[first+j+1]-S[first+j]
                    k0 = first + shift  # output index of diff[0]
                    out[k0 - emitted : k0 - emitted + len(diff)] = diff[: n - (k0 - emitted)]
                yield {"onset": as_frames(out.T)}
                emitted += n
        finally:
            self._close_spill()

    def _read(self, first: int, last: int) -> np.ndarray:
        """Spilled frames [first, last), read into a fresh array: a memmap would keep every
        page it touched resident, so peak memory would grow with the file's length."""
        out = np.empty((last - first, self.ctx.signal_channels, _ONSET_MELS), np.float32)
        self.spill.seek(first * out[0].nbytes)
        self.spill.readinto(out.data.cast("B"))
        return out

    def outputs(self) -> Mapping[str, OutputMeta]:
        return {"onset": uniform_meta(self.ctx, ONSET, 1)}
