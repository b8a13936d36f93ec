"""Test signals and real audio files written with soundfile.

Signals are float64 arrays of shape ``(frames, channels)`` (soundfile's layout), amplitudes in
[-1, 1]. :func:`write` puts one on disk in any format soundfile can write; :func:`decoded`
reads a file back exactly as the engine sees it (float32), which is what reference
computations must start from (PCM and lossy formats do not round-trip bit for bit).

Malformed files (cut, garbage, hand-made headers) are made here too, so that every audio error
test works on a real file.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soundfile as sf

# extension -> (soundfile format, a subtype that format can hold)
FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "aiff": ("AIFF", "PCM_16"),
}


# --- signals ---------------------------------------------------------------------------------


def _time(duration: float, sr: int) -> np.ndarray:
    return np.arange(round(duration * sr), dtype=np.float64) / sr


def _column(x: np.ndarray) -> np.ndarray:
    return x[:, None] if x.ndim == 1 else x


def sine(freq: float, duration: float, sr: int, amp: float = 0.5, phase: float = 0.0) -> np.ndarray:
    """A mono sine, (frames, 1)."""
    return _column(amp * np.sin(2 * np.pi * freq * _time(duration, sr) + phase))


def chirp(f0: float, f1: float, duration: float, sr: int, amp: float = 0.5) -> np.ndarray:
    """A mono exponential sweep from ``f0`` to ``f1`` Hz, (frames, 1)."""
    t = _time(duration, sr)
    k = (f1 / f0) ** (1.0 / duration)
    phase = 2 * np.pi * f0 * (k**t - 1.0) / np.log(k)
    return _column(amp * np.sin(phase))


def clicks(interval: float, duration: float, sr: int, amp: float = 0.9) -> np.ndarray:
    """Single-sample impulses every ``interval`` seconds (the first at 0), (frames, 1)."""
    y = np.zeros(round(duration * sr))
    y[:: max(1, round(interval * sr))] = amp
    return _column(y)


def white_noise(duration: float, sr: int, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    """Uniform white noise in [-amp, amp], reproducible by ``seed``, (frames, 1)."""
    rng = np.random.default_rng(seed)
    return _column(rng.uniform(-amp, amp, round(duration * sr)))


def silence(duration: float, sr: int, channels: int = 1) -> np.ndarray:
    return np.zeros((round(duration * sr), channels))


def stack(*channels: np.ndarray) -> np.ndarray:
    """Mono signals side by side as channels (cut to the shortest)."""
    n = min(len(c) for c in channels)
    return np.concatenate([_column(c)[:n] for c in channels], axis=1)


def stereo(duration: float, sr: int) -> np.ndarray:
    """Left: a 440 Hz sine; right: a 1 kHz sine plus quiet noise. The channels differ, so the
    mix and every channel give different features."""
    left = sine(440.0, duration, sr, amp=0.5)
    right = sine(1000.0, duration, sr, amp=0.3) + white_noise(duration, sr, amp=0.05, seed=7)
    return stack(left, right)


def multichannel(channels: int, duration: float, sr: int) -> np.ndarray:
    """``channels`` channels, each a sine of a different frequency."""
    return stack(*(sine(220.0 * (i + 1), duration, sr, amp=0.4) for i in range(channels)))


# --- files -----------------------------------------------------------------------------------


def write(
    path: Path,
    data: np.ndarray,
    sr: int,
    fmt: str | None = None,
    subtype: str | None = None,
) -> Path:
    """Write ``data`` (frames, channels) to ``path``; the format follows the extension unless
    given. Returns ``path``."""
    ext = path.suffix.lstrip(".").lower()
    default_fmt, default_subtype = FORMATS.get(ext, ("WAV", "FLOAT"))
    sf.write(
        str(path),
        _column(np.asarray(data)),
        sr,
        format=fmt or default_fmt,
        subtype=subtype or default_subtype,
    )
    return path


def write_float_wav(path: Path, data: np.ndarray, sr: int) -> Path:
    """A 32-bit float WAV: decoding gives back exactly ``data.astype(float32)``."""
    return write(path, data, sr, "WAV", "FLOAT")


def decoded(path: Path) -> tuple[np.ndarray, int]:
    """The file as the engine decodes it: float32 (channels, frames), and its rate."""
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.T), int(sr)


def mono_mix(samples: np.ndarray) -> np.ndarray:
    """The "mix" signal: the mean of the channels, (frames,) float32."""
    return samples.astype(np.float64).mean(axis=0).astype(np.float32)


# --- malformed and hand-made files -----------------------------------------------------------


def truncate(path: Path, keep: float | int) -> Path:
    """Cut ``path`` in place to a fraction (float) or a byte count (int) of its size."""
    raw = path.read_bytes()
    n = int(len(raw) * keep) if isinstance(keep, float) else keep
    path.write_bytes(raw[:n])
    return path


def wav_header(
    *,
    sample_rate: int,
    channels: int = 1,
    bits: int = 16,
    data_bytes: int = 0,
    float_format: bool = False,
) -> bytes:
    """A canonical 44-byte RIFF/WAVE header with any field value, even invalid ones."""
    fmt_tag = 3 if float_format else 1
    block_align = channels * bits // 8
    fmt = struct.pack(
        "<HHIIHH", fmt_tag, channels, sample_rate, sample_rate * block_align, block_align, bits
    )
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", data_bytes)
    return b"RIFF" + struct.pack("<I", len(body) + data_bytes) + body


def write_raw_wav(
    path: Path,
    samples: np.ndarray,
    *,
    sample_rate: int,
    float_format: bool = True,
) -> Path:
    """A WAV written byte by byte (no library checks): float32 or int16 samples, mono."""
    if float_format:
        payload = np.asarray(samples, dtype="<f4").tobytes()
        bits = 32
    else:
        payload = np.asarray(samples, dtype="<i2").tobytes()
        bits = 16
    header = wav_header(
        sample_rate=sample_rate, bits=bits, data_bytes=len(payload), float_format=float_format
    )
    path.write_bytes(header + payload)
    return path
