"""Benchmark (skeleton): a partial recomputation against a full one after a one-second edit.

    .venv/bin/python bench/partial.py [--minutes 10] [--runs 3]

Makes the benchmark's music WAV (``_util.make_audio``, 44.1 kHz stereo, reused), writes an
edited copy with one second in the middle at half gain, then times, for the bounded built-ins
(peaks, rms, spectrogram, mel, chroma, centroid, pitch) with the default profile: a full
``run_pass`` on the edited file, and ``engine_window.recompute_frames`` of the frames the edit
touches (block digests -> changed ranges -> ``wanted_frames``). Prints the medians, the
samples decoded against the file's, and whether the spliced result equals the full one.

The integrator owns this script (store-level timings, the planner's path); this is the engine's
side only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _util

from diagnostics_app.core.audio import block_digests
from diagnostics_app.core.calculators.base import declared_reach
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.engine import MemorySink, PassPlan, run_pass
from diagnostics_app.core.engine_window import recompute_frames, wanted_frames
from diagnostics_app.core.params import resolve_params
from diagnostics_app.core.ranges import changed_ranges, frame_count
from diagnostics_app.core.splice import FrameSplice, apply_splices
from diagnostics_app.core.tempo import TempoMap

BOUNDED = ("peaks", "rms", "spectrogram", "mel", "chroma", "centroid", "pitch")


def edited_copy(path: Path) -> Path:
    """``path`` with one second in the middle at half gain (reused when it exists)."""
    out = path.with_name(path.stem + "-edited.wav")
    if out.exists() and out.stat().st_size > 0:
        return out
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    mid = len(data) // 2
    data[mid : mid + sr] *= 0.5
    sf.write(str(out), data, sr, subtype="PCM_16")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    old_path = _util.make_audio(args.minutes)
    new_path = edited_copy(old_path)
    registry = Registry.builtin()
    calcs = tuple(registry.get(f"core.{name}") for name in BOUNDED)
    params = resolve_params()
    old_d, new_d = block_digests(old_path), block_digests(new_path)
    spans = changed_ranges(old_d, new_d)
    assert spans is not None
    wanted = {}
    for calc in calcs:
        reach = declared_reach(calc, params, new_d.sample_rate)
        assert reach is not None
        ranges = wanted_frames(
            calc, params, new_d.sample_rate, spans, frame_count(reach, new_d.frames)
        )
        assert ranges is not None
        wanted[calc.id] = ranges
    plan = PassPlan(str(new_path), params, TempoMap(), calcs)

    def full(path: Path) -> MemorySink:
        sink = MemorySink()
        run_pass(PassPlan(str(path), params, TempoMap(), calcs), sink)
        return sink

    t_full, _ = _util.median_time(lambda: full(new_path), args.runs)
    t_part, _ = _util.median_time(lambda: recompute_frames(plan, wanted, expected=new_d), args.runs)
    result = recompute_frames(plan, wanted, expected=new_d)
    old, new = full(old_path).results, full(new_path).results
    same = all(
        np.array_equal(
            apply_splices(
                old[c][f].data, [FrameSplice(w.first, len(w.data), w.data) for w in wins]
            ),
            new[c][f].data,
            equal_nan=True,
        )
        for c, fs in result.frames.items()
        for f, wins in fs.items()
    )
    print(f"machine: {_util.machine()}")
    print(f"file: {args.minutes:g} min, changed samples {spans}")
    print(f"full pass:  {t_full:8.3f} s (median of {args.runs})")
    print(f"partial:    {t_part:8.3f} s, decoded {result.decoded:,} of {result.total:,} samples")
    print(f"speed-up:   {t_full / t_part:8.1f}x; spliced == full: {same}")


if __name__ == "__main__":
    main()
