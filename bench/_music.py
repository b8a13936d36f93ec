"""The real-music part of ``bench/analysis.py``: end-to-end ``analyze`` against the engine alone
and against the librosa calls, on real 48 kHz stereo music (Debian's singularity-music Ogg
Vorbis songs, concatenated to the wanted length).

The work is the issue's example: the nine built-ins with the default profile, plus pitch with
its own ``fmin``/``fmax`` (a second parameter set on the same source, so a second pass).

- end to end: what ``diagnostics-app analyze PROJECT`` does on a fresh store, in this process
  (open the project, diagnose it, which digests the audio, plan, run the passes, commit every
  entry into the store, diagnose again);
- engine only: :func:`run_source_passes` over the same passes, outputs discarded (one decode);
- librosa: the calls a user would write (``run_librosa`` for the nine, one more ``yin`` for the
  second pitch).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.engine import PassPlan, run_pass, run_source_passes
from diagnostics_app.core.params import resolve_params
from diagnostics_app.core.session import Session
from diagnostics_app.core.tempo import TempoMap

# where scripts/real-music.sh unpacks Debian's singularity-music (first), or an older manual unpack
MUSIC_DIRS = (
    Path.home() / ".cache/diagnostics-app/music/usr/share/games/singularity/music",
    Path("/tmp/music/x/usr/share/games/singularity/music"),
)
PITCH_OWN = {"fmin": 80.0, "fmax": 1000.0}  # the second parameter set
MUSIC_SR = 48000


def songs() -> list[Path]:
    """The singularity songs, longest first (SystemExit naming the script when none)."""
    for folder in MUSIC_DIRS:
        found = sorted(folder.glob("*.ogg"), key=lambda p: -sf.info(p).frames)
        if found:
            return found
    raise SystemExit("no songs: run scripts/real-music.sh (fetches singularity-music)")


def concatenate(out: Path, minutes: float, **write: Any) -> Path:
    """``minutes`` of the songs one after another (again from the first when they are
    shorter) as 48 kHz stereo into ``out`` (``write``: soundfile's format/subtype), made once
    and reused."""
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.stem + ".part" + out.suffix)
    remaining = int(minutes * 60 * MUSIC_SR)
    with sf.SoundFile(part, "w", MUSIC_SR, 2, **write) as dst:
        while remaining > 0:
            for song in songs():
                with sf.SoundFile(song) as src:
                    if src.samplerate != MUSIC_SR or src.channels != 2:
                        continue
                    while remaining > 0:
                        block = src.read(min(1 << 16, remaining), dtype="float32", always_2d=True)
                        if not len(block):
                            break
                        dst.write(block)
                        remaining -= len(block)
                if remaining <= 0:
                    break
    part.rename(out)
    return out


def real_music(out_dir: Path, minutes: float) -> Path:
    """``minutes`` of the longest songs, one after another, as 48 kHz stereo Ogg Vorbis in
    ``out_dir`` (made once, reused)."""
    return concatenate(
        out_dir / f"music-{minutes:g}min.ogg", minutes, format="OGG", subtype="VORBIS"
    )


def music_project(folder: Path, audio: Path) -> Path:
    """A project of one source (``audio``) asking for the nine built-ins and pitch again with
    its own fmin/fmax; its store is ``folder/.featurecache`` (deleted before each run)."""
    folder.mkdir(parents=True, exist_ok=True)
    requests: list[dict[str, Any]] = [{"feature": c.feature_names()[0]} for c in Registry.builtin()]
    requests.append({"feature": "pitch", "params": PITCH_OWN})
    doc = {
        "format": "diagnostics-app/project",
        "schema_version": 1,
        "name": "bench",
        "tempo_map": [{"time": 0.0, "bpm": 120.0}],
        "sources": [{"id": "music", "path": str(audio.resolve())}],
        "tracks": [{"id": "music", "name": "Music", "source": "music", "requests": requests}],
    }
    path = folder / "project.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def end_to_end(project: Path) -> float:
    """``analyze``'s work on a fresh store (the digest included); seconds."""
    shutil.rmtree(project.parent / ".featurecache", ignore_errors=True)
    t0 = time.perf_counter()
    with Session.open(project) as session:
        jobs = session.plan()
        session.enqueue(jobs, origin="cli")
        results = session.runner.run_all(workers=0)
        session.diagnose()
    seconds = time.perf_counter() - t0
    bad = [r.message for r in results if r.status != "done"]
    if bad or len(results) != 2:
        raise SystemExit(f"analyze did not do the work: {len(results)} passes, {bad}")
    return seconds


def _plans(audio: Path) -> list[PassPlan]:
    calcs = tuple(Registry.builtin())
    pitch = tuple(c for c in calcs if c.id == "core.pitch")
    return [
        PassPlan(str(audio), resolve_params(), TempoMap(), calcs),
        PassPlan(str(audio), resolve_params(None, PITCH_OWN), TempoMap(), pitch),
    ]


def engine_only(audio: Path, sink: Callable[[], Any]) -> float:
    """The same two passes, by the engine alone over one decode; seconds."""
    plans = _plans(audio)
    t0 = time.perf_counter()
    done = run_source_passes(str(audio), plans, [sink(), sink()])
    seconds = time.perf_counter() - t0
    if any(e is not None for e in done.errors):
        raise SystemExit(f"engine failed: {done.errors}")
    return seconds


def engine_pass_by_pass(audio: Path, sink: Callable[[], Any]) -> float:
    """The same two passes one after the other, each with its own decode (as before issue
    12's grouping); seconds."""
    t0 = time.perf_counter()
    for plan in _plans(audio):
        run_pass(plan, sink())
    return time.perf_counter() - t0


def librosa_calls(
    audio: Path, run_librosa: Callable[..., dict[str, np.ndarray]]
) -> tuple[float, dict[str, np.ndarray]]:
    """The nine features with librosa and the second pitch on the same signal; seconds."""
    t0 = time.perf_counter()
    out = run_librosa(audio, extra_pitch=PITCH_OWN)
    return time.perf_counter() - t0, out
