"""Small real projects on disk for core tests: generated audio files and a project JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

SR = 22050


def write_tone(
    path: Path, seconds: float = 1.0, freq: float = 220.0, channels: int = 1, seed: int = 0
) -> Path:
    t = np.arange(int(SR * seconds)) / SR
    rng = np.random.default_rng(seed)
    y = 0.4 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(len(t))
    data = np.stack([y * (1 - 0.3 * c) for c in range(channels)], axis=1).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, SR, subtype="PCM_16")
    return path


def write_project(folder: Path, data: dict[str, Any]) -> Path:
    doc = {"format": "diagnostics-app/project", "schema_version": 1, **data}
    path = folder / "project.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def shared_source_project(folder: Path, **extra: Any) -> Path:
    """One stereo source `drums` shared by tracks `kick` and `snare`, plus a mono `bass`."""
    write_tone(folder / "audio" / "drums.wav", 1.5, 110.0, channels=2, seed=1)
    write_tone(folder / "audio" / "bass.wav", 1.0, 55.0, seed=2)
    data: dict[str, Any] = {
        "name": "Test",
        "tempo_map": [{"time": 0.0, "bpm": 120.0}],
        "profiles": {"fine": {"window_size": 1024, "hop_size": 256}},
        "sources": [
            {"id": "drums", "path": "audio/drums.wav"},
            {"id": "bass", "path": "audio/bass.wav"},
        ],
        "tracks": [
            {
                "id": "kick",
                "name": "Kick",
                "source": "drums",
                "requests": [
                    {"feature": "rms"},
                    {"feature": "beat_rms"},
                    {"feature": "spectrogram"},
                ],
            },
            {
                "id": "snare",
                "name": "Snare",
                "source": "drums",
                "requests": [
                    {"feature": "rms"},
                    {"feature": "beat_rms"},
                    {"feature": "centroid", "profile": "fine"},
                ],
            },
            {
                "id": "bass",
                "name": "Bass",
                "source": "bass",
                "requests": [
                    {"feature": "pitch", "params": {"fmin": 40.0, "fmax": 400.0}},
                    {"feature": "rms"},
                ],
            },
        ],
    }
    data.update(extra)
    return write_project(folder, data)
