"""Benchmark: time-range invalidation (issue 13) — a one-second edit in a 60-minute file, and a
tempo change at 45:00, recomputed partially vs whole, in one run.

    .venv/bin/python bench/partial.py [--minutes 60] [--edit-at 1800] [--tempo-at 2700]
        [--skip-tempo]

1. Real music (Debian's singularity-music, 48 kHz stereo Ogg Vorbis: ``scripts/real-music.sh``
   fetches it) decoded and concatenated to ``--minutes`` as a 16-bit WAV in bench/out/ (made
   once, reused).
2. Audio edit: a project asking for every built-in whose reach is bounded (peaks, rms,
   spectrogram, mel, chroma, centroid, pitch) is analysed once; the store is copied; one
   second at ``--edit-at`` is rewritten in place (gain -6 dB). Then the same ``analyze`` work
   (open, diagnose — which re-reads the changed file for its digests —, plan, run, commit) runs
   on one copy with partial recomputation and on the other with every pass whole
   (``JobRunner.partial = False``: what every other cache does). Both stores then hold the
   same data: every feature is loaded from both and compared (must be bit-identical).
   Printed: each side's diagnose and recompute times, and the ratios whole / partial.
3. The nine built-ins: the same with onset and beat_rms added (their reach is unbounded: they
   are recomputed whole on both sides, so the ratio is lower; printed for honesty).
4. Tempo: beat_rms alone, the tempo map changed from ``--tempo-at`` on (120 → 100 BPM):
   partial (beats before the change kept, the rest re-segmented from a decode of the rest of
   the file) vs whole.

One run per side (each is minutes of work on a 2-core machine); the machine and its load are
printed. Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _music
import _util

from diagnostics_app.core.session import Session

BOUNDED = ("peaks", "rms", "spectrogram", "mel", "chroma", "centroid", "pitch")
UNBOUNDED = ("onset", "beat_rms")


def long_music(minutes: float) -> Path:
    """``minutes`` of real music as a 48 kHz stereo 16-bit WAV (made once)."""
    return _music.concatenate(
        _util.OUT_DIR / f"partial-music-{minutes:g}min.wav", minutes, subtype="PCM_16"
    )


def project(
    folder: Path, audio: Path, features: Sequence[str], tempo: list[dict[str, float]]
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "format": "diagnostics-app/project",
        "schema_version": 1,
        "name": "partial bench",
        "tempo_map": tempo,
        "sources": [{"id": "long", "path": str(audio.resolve())}],
        "tracks": [
            {
                "id": "long",
                "name": "Long",
                "source": "long",
                "requests": [{"feature": f} for f in features],
            }
        ],
    }
    path = folder / "project.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def analyze(project_path: Path, partial: bool = True, everything: bool = False) -> dict[str, Any]:
    """``analyze``'s work, timed in parts: open + diagnose (digests of a changed file), then
    plan + run + commit. Returns the times and the jobs' messages."""
    t0 = time.perf_counter()
    with Session.open(project_path) as session:
        session.runner.partial = partial
        diagnosis = session.diagnose()
        t1 = time.perf_counter()
        jobs = session.plan(include_ok=everything)  # everything: a per-source cache's redo
        session.enqueue(jobs, origin="cli")
        results = session.runner.run_all(workers=0)
        t2 = time.perf_counter()
    bad = [r.message for r in results if r.status != "done"]
    if bad:
        raise SystemExit(f"analyze failed: {bad}")
    return {
        "diagnose": t1 - t0,
        "recompute": t2 - t1,
        "total": t2 - t0,
        "jobs": len(jobs),
        "partial_jobs": sum(j.partial for j in jobs),
        "stale": sum(r.state == "stale" for r in diagnosis.rows),
        "notes": sorted({r.message for r in results if r.message}),
    }


def same_data(a: Path, b: Path) -> tuple[int, list[str]]:
    """Every feature of project ``a``'s store equal to project ``b``'s (bit for bit)."""
    differ: list[str] = []
    count = 0
    with Session.open(a) as sa, Session.open(b) as sb:
        for entry in sa.store.entries():
            other = sb.store.get(entry.key)
            for feature in entry.features:
                count += 1
                if other is None or feature not in other.features:
                    differ.append(f"{entry.key} {feature}: missing")
                    continue
                x = sa.store.load(entry, feature)
                y = sb.store.load(other, feature)
                if not (
                    np.array_equal(x.data, y.data, equal_nan=True)
                    and np.array_equal(x.times, y.times)
                ):
                    differ.append(f"{entry.key} {feature}")
    return count, differ


def edit_in_place(audio: Path, at_s: float, seconds: float = 1.0) -> None:
    """Gain -6 dB over ``seconds`` from ``at_s``, written over the same samples."""
    with sf.SoundFile(audio, "r+") as f:
        f.seek(int(at_s * f.samplerate))
        block = f.read(int(seconds * f.samplerate), dtype="int16", always_2d=True)
        f.seek(int(at_s * f.samplerate))
        f.write((block // 2).astype(np.int16))


def side_by_side(
    name: str,
    base: Path,
    audio_src: Path,
    features: Sequence[str],
    change: Any,
    per_source: bool = False,
) -> dict[str, Any]:
    """Analyse, copy, change (``change(project_a, project_b, audio)``), then re-analyse one
    copy partially and the other whole; the two stores compared."""
    shutil.rmtree(base, ignore_errors=True)
    audio = base / "audio" / audio_src.name
    audio.parent.mkdir(parents=True)
    shutil.copyfile(audio_src, audio)
    tempo = [{"time": 0.0, "bpm": 120.0}]
    pa = project(base / "partial", audio, features, tempo)
    t0 = time.perf_counter()
    first = analyze(pa)
    initial = time.perf_counter() - t0
    pb = base / "whole" / "project.json"
    shutil.copytree(base / "partial", base / "whole")
    change(pa, pb, audio)
    part = analyze(pa, partial=True)
    # per_source: the other side re-analyses the whole source (every feature, as a cache that
    # treats a source as one unit does), not only what the change reaches
    whole = analyze(pb, partial=False, everything=per_source)
    count, differ = same_data(pa, pb)
    print(f"\n{name}: {len(features)} features ({', '.join(features)}), {first['jobs']} jobs")
    print(f"  first analysis (fresh store): {initial:.2f} s")
    for label, r in (("partial", part), ("whole", whole)):
        print(
            f"  {label:8s} diagnose {r['diagnose']:6.2f} s  recompute {r['recompute']:7.2f} s  "
            f"total {r['total']:7.2f} s  ({r['stale']} stale rows, {r['partial_jobs']} of "
            f"{r['jobs']} jobs planned partial)"
        )
    for n in part["notes"]:
        print(f"    note: {n}")
    ratio_r = whole["recompute"] / max(part["recompute"], 1e-9)
    ratio_t = whole["total"] / max(part["total"], 1e-9)
    print(f"  whole / partial, recomputation: {ratio_r:.1f}x (target >= 50x)")
    print(f"  whole / partial, end to end (with the digests of the changed file): {ratio_t:.1f}x")
    print(
        f"  stores compared: {count} features, "
        + ("all bit-identical" if not differ else f"{len(differ)} DIFFER: {differ[:5]}")
    )
    if differ:
        raise SystemExit("partial and whole recomputation differ")
    return {"partial": part, "whole": whole, "ratio_recompute": ratio_r, "ratio_total": ratio_t}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--edit-at", type=float, default=1800.0, help="seconds (default 30:00)")
    ap.add_argument("--tempo-at", type=float, default=2700.0, help="seconds (default 45:00)")
    ap.add_argument("--skip-tempo", action="store_true")
    ap.add_argument("--skip-nine", action="store_true")
    ap.add_argument("--skip-edit", action="store_true", help="only the tempo changes")
    args = ap.parse_args()
    print(json.dumps(_util.machine(), indent=1))
    print(f"load average at start: {os.getloadavg()}")
    audio = long_music(args.minutes)
    info = sf.info(audio)
    print(
        f"audio: {audio.name}: {info.duration / 60:.1f} min, {info.channels} ch, {info.samplerate} Hz"
    )
    base = _util.OUT_DIR / "partial-run"

    def audio_edit(pa: Path, pb: Path, path: Path) -> None:
        edit_in_place(path, args.edit_at)

    if not args.skip_edit:
        side_by_side(
            "one second changed at " + _clock(args.edit_at), base, audio, BOUNDED, audio_edit
        )
    if not args.skip_nine and not args.skip_edit:
        side_by_side(
            "the nine built-ins, one second changed", base, audio, BOUNDED + UNBOUNDED, audio_edit
        )
    if not args.skip_tempo:

        def tempo_edit(pa: Path, pb: Path, path: Path) -> None:
            for p in (pa, pb):
                doc = json.loads(p.read_text(encoding="utf-8"))
                doc["tempo_map"] = [
                    {"time": 0.0, "bpm": 120.0},
                    {"time": args.tempo_at, "bpm": 100.0},
                ]
                p.write_text(json.dumps(doc, indent=2), encoding="utf-8")

        side_by_side(
            "tempo changed from " + _clock(args.tempo_at), base, audio, ("beat_rms",), tempo_edit
        )
        side_by_side(
            "tempo changed from " + _clock(args.tempo_at) + ", the nine built-ins, against a "
            "per-source cache (the source re-analysed whole)",
            base,
            audio,
            BOUNDED + UNBOUNDED,
            tempo_edit,
            per_source=True,
        )
    shutil.rmtree(base, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()}")


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


if __name__ == "__main__":
    main()
