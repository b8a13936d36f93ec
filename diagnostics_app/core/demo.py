"""The demo project: generated audio, shared sources, two profiles, a tempo change, and a
store that shows every interesting state (ok, stale with reasons, missing, extraneous).

It is built for real: audio is synthesised and written with soundfile, analysed by the engine
into the store, then the project is edited the way a user would, so the states the app shows
are derived, not staged.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from diagnostics_app.core import edits, files
from diagnostics_app.core.project import load_project

SR = 44100
SECONDS = 24.0
BPM = 120.0


def _drums(rng: np.random.Generator) -> np.ndarray:
    n = int(SR * SECONDS)
    t = np.arange(n) / SR
    y = np.zeros((n, 2), np.float32)
    beat = 60.0 / BPM
    for i, start in enumerate(np.arange(0, SECONDS, beat / 2)):
        s = int(start * SR)
        length = min(int(0.25 * SR), n - s)
        env = np.exp(-np.arange(length) / (0.04 * SR))
        if i % 2 == 0:  # kick: a falling sine
            f = 110 * np.exp(-np.arange(length) / (0.05 * SR)) + 45
            hit = np.sin(2 * np.pi * np.cumsum(f) / SR) * env
            y[s : s + length] += 0.8 * hit[:, None]
        if i % 4 == 2:  # snare: noise burst, a little to the right
            hit = rng.standard_normal(length) * env * 0.35
            y[s : s + length, 0] += 0.7 * hit
            y[s : s + length, 1] += hit
        hat = rng.standard_normal(min(int(0.03 * SR), n - s)) * 0.05  # hi-hat on every 8th
        y[s : s + len(hat)] += hat[:, None]
    y += 0.002 * np.sin(2 * np.pi * 50 * t)[:, None]
    return np.clip(y, -1, 1)


def _bass() -> np.ndarray:
    n = int(SR * SECONDS)
    notes = [55.0, 55.0, 65.41, 73.42, 55.0, 82.41, 73.42, 65.41]
    y = np.zeros(n, np.float32)
    bar = 4 * 60.0 / BPM / 2
    for i, start in enumerate(np.arange(0, SECONDS, bar)):
        s, e = int(start * SR), min(int((start + bar * 0.9) * SR), n)
        t = np.arange(e - s) / SR
        f = notes[i % len(notes)]
        env = np.minimum(1, t / 0.01) * np.exp(-t / 1.2)
        y[s:e] += (0.5 * np.sin(2 * np.pi * f * t) + 0.15 * np.sin(4 * np.pi * f * t)) * env
    return y


def _pad() -> np.ndarray:
    n = int(SR * SECONDS)
    t = np.arange(n) / SR
    chords = [
        (261.63, 329.63, 392.0),
        (220.0, 261.63, 329.63),
        (174.61, 220.0, 261.63),
        (196.0, 246.94, 293.66),
    ]
    y = np.zeros(n, np.float32)
    seg = SECONDS / 8
    for i in range(8):
        s, e = int(i * seg * SR), int((i + 1) * seg * SR)
        tt = t[s:e]
        env = np.minimum(1, (tt - tt[0]) / 0.3) * np.minimum(1, (tt[-1] - tt + 1e-3) / 0.3)
        for f in chords[i % 4]:
            y[s:e] += 0.12 * np.sin(2 * np.pi * f * tt) * env
    return np.stack([y, np.roll(y, 300)], axis=1)


def demo_project_json() -> dict[str, object]:
    return {
        "format": "diagnostics-app/project",
        "schema_version": 1,
        "name": "Demo mix",
        "tempo_map": [{"time": 0.0, "bpm": 120.0}, {"time": 16.0, "bpm": 100.0}],
        "profiles": {
            "default": {"window_size": 2048, "hop_size": 512},
            "fine": {"window_size": 1024, "hop_size": 256},
        },
        "sources": [
            {"id": "drums", "path": "audio/drums.wav"},
            {"id": "bass", "path": "audio/bass.flac"},
            {"id": "pad", "path": "audio/pad.ogg"},
        ],
        "tracks": [
            {
                "id": "kick",
                "name": "Kick",
                "source": "drums",
                "requests": [
                    {"feature": "peaks"},
                    {"feature": "spectrogram"},
                    {"feature": "rms", "profile": "fine"},
                    {"feature": "onset"},
                    {"feature": "beat_rms"},
                ],
            },
            {
                "id": "snare",
                "name": "Snare",
                "source": "drums",
                "requests": [
                    {"feature": "peaks"},
                    {"feature": "spectrogram"},
                    {"feature": "rms", "profile": "fine"},
                    {"feature": "beat_rms"},
                    {"feature": "centroid"},
                ],
            },
            {
                "id": "bass",
                "name": "Bass",
                "source": "bass",
                "requests": [
                    {"feature": "peaks"},
                    {
                        "feature": "pitch",
                        "calculator": "core.pitch",
                        "params": {"fmin": 40.0, "fmax": 400.0},
                    },
                    {"feature": "rms"},
                    {"feature": "spectrogram"},
                ],
            },
            {
                "id": "pad",
                "name": "Pad",
                "source": "pad",
                "requests": [
                    {"feature": "peaks"},
                    {"feature": "chroma"},
                    {"feature": "mel"},
                    {"feature": "spectrogram"},
                ],
            },
        ],
        "cache_dir": ".featurecache",
    }


def _write_audio(path: Path, data: np.ndarray, fmt: str, subtype: str) -> None:
    files.atomic_write(path, lambda f: sf.write(f, data, SR, format=fmt, subtype=subtype))


def write_demo(folder: str | Path, analyse: bool = True) -> Path:
    """Write the demo into ``folder`` (created; an earlier demo there is replaced) and return
    the project file's path. With ``analyse``, compute the store and then make the edits that
    leave stale, missing and extraneous rows to look at."""
    from diagnostics_app.core.session import Session  # local: session imports the store

    root = Path(folder)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    # every file through the one atomic writer: whole or absent, and following the umask
    _write_audio(root / "audio" / "drums.wav", _drums(rng), "WAV", "PCM_16")
    _write_audio(root / "audio" / "bass.flac", _bass(), "FLAC", "PCM_16")
    _write_audio(root / "audio" / "pad.ogg", _pad(), "OGG", "VORBIS")
    project_file = root / "project.json"
    text = json.dumps(demo_project_json(), indent=2) + "\n"
    files.atomic_write(project_file, lambda f: f.write(text.encode("utf-8")))
    cache = root / ".featurecache"
    if cache.exists():
        import shutil

        shutil.rmtree(cache)
    if not analyse:
        return project_file
    session = Session(load_project(project_file))
    try:
        session.enqueue(session.plan(), origin="demo")
        session.runner.run_all()
        # Edits a user might make after the analysis, each visible in the diagnostics:
        session.edit(
            "Tempo change",
            lambda p: edits.set_tempo_map(
                p, [{"time": 0.0, "bpm": 120.0}, {"time": 16.0, "bpm": 96.0}]
            ),
        )
        session.edit("Finer hop", lambda p: edits.set_profile_param(p, "fine", "hop_size", 128))
        session.edit("Drop centroid", lambda p: edits.remove_request(p, "snare", 4))
        session.edit("Add onset", lambda p: edits.add_request(p, "pad", "onset"))
        session.save()
    finally:
        session.close()
    return project_file
