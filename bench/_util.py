"""Helpers shared by the benchmark scripts: test audio, machine description, timing."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

OUT_DIR = Path(__file__).resolve().parent / "out"  # gitignored

_SEGMENT_S = 2.0  # one chord per segment
_CHUNK_S = 10.0  # synthesis chunk (a whole number of segments): memory stays flat
_SCALE = np.array([0, 2, 3, 5, 7, 8, 10])  # natural minor, semitones


def _note_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12)


def _chord_segment(rng: np.random.Generator, sr: int) -> np.ndarray:
    """Two seconds of a chord: three notes, six decaying harmonics each, stereo-panned,
    plus a lead note an octave up with vibrato."""
    n = int(_SEGMENT_S * sr)
    t = np.arange(n) / sr
    root = 45 + int(rng.integers(0, 12))  # A2 .. G#3
    degree = int(rng.integers(0, 7))
    notes = [root + _SCALE[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
    out = np.zeros((2, n))
    env = np.minimum(1.0, t / 0.02) * np.exp(-t * 0.6)
    for i, midi in enumerate(notes):
        f = _note_hz(midi)
        pan = 0.3 + 0.2 * i
        tone = sum(
            (0.6**h) * np.sin(2 * np.pi * f * (h + 1) * t + rng.uniform(0, 2 * np.pi))
            for h in range(6)
            if f * (h + 1) < sr / 2
        )
        out[0] += (1 - pan) * tone * env
        out[1] += pan * tone * env
    lead_hz = _note_hz(notes[-1] + 12)
    vib = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(lead_hz * vib) / sr
    lead = (np.sin(phase) + 0.3 * np.sin(2 * phase)) * np.minimum(1.0, t / 0.05) * 0.5
    out += lead
    return out * 0.12


def synth_chunk(index: int, sr: int) -> np.ndarray:
    """Chunk ``index`` (10 s) of the benchmark signal, float32 (2, n); deterministic."""
    rng = np.random.default_rng(1000 + index)
    n_seg = int(_CHUNK_S / _SEGMENT_S)
    music = np.concatenate([_chord_segment(rng, sr) for _ in range(n_seg)], axis=1)
    n = music.shape[1]
    # clicks: a decaying noise burst on every beat at 120 BPM, accented on the downbeat
    beat = int(0.5 * sr)
    click_len = int(0.03 * sr)
    click_env = np.exp(-np.arange(click_len) / (0.004 * sr))
    for k, start in enumerate(range(0, n - click_len, beat)):
        gain = 0.5 if k % 4 == 0 else 0.25
        music[:, start : start + click_len] += gain * click_env * rng.standard_normal(click_len)
    music += 0.01 * rng.standard_normal(music.shape)
    return np.clip(music, -1.0, 1.0).astype(np.float32)


def make_audio(minutes: float, sr: int = 44100, subtype: str = "PCM_16") -> Path:
    """A stereo WAV of ``minutes`` in ``bench/out`` (reused when it already exists)."""
    import soundfile as sf

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"music-{minutes:g}min-{sr}-{subtype.lower()}.wav"
    if path.exists() and path.stat().st_size > 0:
        return path
    tmp = path.with_suffix(".partial.wav")
    total = round(minutes * 60 * sr)
    with sf.SoundFile(tmp, "w", sr, 2, subtype=subtype) as f:
        done, i = 0, 0
        while done < total:
            chunk = synth_chunk(i, sr)[:, : total - done]
            f.write(chunk.T)
            done += chunk.shape[1]
            i += 1
    tmp.replace(path)
    return path


def median_time(fn: Callable[[], object], runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM), MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (else what platform knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine() -> dict[str, str]:
    """CPU model, cores, library versions and BLAS, for the report."""
    import numpy
    import scipy

    info: dict[str, str] = {}
    cpu = cpu_model()
    info["cpu"] = cpu
    info["cores"] = f"{os.cpu_count()} logical"
    info["python"] = platform.python_version()
    info["numpy"] = numpy.__version__
    info["scipy"] = scipy.__version__
    try:
        import librosa

        info["librosa"] = librosa.__version__
    except ImportError:
        info["librosa"] = "not installed"
    try:
        from threadpoolctl import threadpool_info

        blas = [
            f"{p.get('internal_api')} {p.get('version')} ({p.get('threading_layer', '?')}, "
            f"{p.get('architecture', '?')}, {p.get('num_threads')} threads)"
            for p in threadpool_info()
            if p.get("user_api") == "blas"
        ]
        info["blas"] = "; ".join(dict.fromkeys(blas)) or "none found"
    except ImportError:
        info["blas"] = "unknown (threadpoolctl not installed)"
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    info["openblas env"] = ", ".join(f"{k}={v}" for k, v in env.items()) or "unset"
    return info
