"""Benchmark: peak memory and time of ``compare`` for two versions of a long spectrogram.

    .venv/bin/python bench/compare.py [--minutes 1 60] [--runs 1] [--json OUT]

1. Builds, once, in ``bench/out/compare/`` (gitignored; reused): a project with no tracks
   whose store holds, per length, a synthetic ``spectrogram`` entry laid out as the default
   one (1025 bins, hop 512 at 44.1 kHz: 86 frames a second, ``u16db`` over -80..0 dB),
   written TWICE through the store's pass writer (streamed in blocks, as the engine writes):
   version 1, then version 2 which is 1 dB louder over one 10-second range in the middle.
   So each row has a previous version (its rows are ``extraneous``: compare works on any row
   with data). A 60-minute spectrogram is 310,078 frames × 1025 bins: 1.27 GB as float32,
   635 MB as stored, per version.
2. For each length: the CLI's ``compare PROJECT --source S --json`` in a fresh process, which
   reports its own peak resident set size (``VmHWM``) as it ends; with the wall and CPU
   time (the CPU time is the figure to trust on a shared machine), the verdict and the range
   found (it must be the changed one).

Memory is flat when the 60-minute peak is close to the 1-minute one (ratio ≈ 1) and far
below the size of the arrays compared (both versions as float32: 2.5 GB at 60 minutes).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _util

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.store import EntryKey, FeatureStore

FOLDER = _util.OUT_DIR / "compare"
SR, HOP, BINS = 44100, 512, 1025
CALC, FEATURE = "core.spectrogram", "spectrogram"
CHUNK = 4096  # frames per write: 16 MB of float32
LOUDER_S = 10.0  # version 2 is 1 dB louder over this many seconds, in the middle


def _source_id(minutes: float) -> str:
    return f"m{minutes:g}"


def frames_of(minutes: float) -> int:
    return 1 + round(minutes * 60 * SR) // HOP


def changed_range(minutes: float) -> tuple[int, int]:
    """Frames [first, stop) that version 2 changes."""
    n = frames_of(minutes)
    width = round(LOUDER_S * SR / HOP)
    first = (n - width) // 2
    return first, first + width


def meta() -> OutputMeta:
    return OutputMeta(
        feature=FEATURE,
        channels=1,
        width=BINS,
        frame_start=0.0,
        frame_step=HOP / SR,
        bins=tuple(float(b) * SR / 2048 for b in range(BINS)),
        bin_unit="Hz",
        unit="dBFS",
        storage="u16db",
        value_range=(-80.0, 0.0),
    )


def _block(start: int, stop: int) -> np.ndarray:
    """Deterministic, cheap, spectrogram-like values (dB) of frames [start, stop)."""
    t = np.arange(start, stop, dtype=np.float32)[:, None]
    b = np.arange(BINS, dtype=np.float32)[None, :]
    db = -30.0 + 12.0 * np.sin(t * 0.013 + b * 0.02) - b * 0.03
    return np.clip(db, -80.0, 0.0).astype(np.float32)[:, None, :]


def _write(store: FeatureStore, minutes: float, version: int) -> None:
    n = frames_of(minutes)
    first, stop = changed_range(minutes)
    sid = _source_id(minutes)
    writer = store.pass_writer(sid, "default", {}, {CALC: {"bench": version}}, {CALC: version})
    with writer:
        for start in range(0, n, CHUNK):
            end = min(n, start + CHUNK)
            block = _block(start, end)
            if version == 2:
                lo, hi = max(first, start), min(stop, end)
                if lo < hi:
                    block[lo - start : hi - start] += 1.0
            writer.write(CALC, FEATURE, block)
        writer.close(CALC, {FEATURE: meta()}, {FEATURE: None})


def build(minutes: list[float]) -> Path:
    """The project (no tracks) and, per length, versions 1 and 2 (kept while present)."""
    FOLDER.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": "diagnostics-app/project",
        "schema_version": 1,
        "name": "compare benchmark",
        "sources": [],
        "tracks": [],
    }
    path = FOLDER / "project.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    with FeatureStore.open(FOLDER / ".featurecache") as store:
        for m in minutes:
            key = EntryKey.of(_source_id(m), CALC)
            entry = store.get(key)
            if (
                entry is not None
                and entry.calculator_version == 2
                and store.previous(key, FEATURE) is not None
            ):
                continue
            print(f"writing two versions of a {m:g}-minute spectrogram ...", file=sys.stderr)
            _write(store, m, 1)
            _write(store, m, 2)
    return path


def measure(project: Path, minutes: float) -> dict[str, Any]:
    # VmHWM read by the child itself at the end (see bench/export.py)
    driver = (
        "import sys\n"
        "from diagnostics_app.cli import main\n"
        "try:\n"
        "    code = main(sys.argv[1:])\n"
        "finally:\n"
        "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
        "    print('PEAK_KIB', hwm[0].split()[1], file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    cmd = [sys.executable, "-c", driver, "compare", str(project), "--source", _source_id(minutes)]
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([*cmd, "--json"], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"compare failed ({proc.returncode}): {proc.stderr.strip()}")
    peak_kib = int(proc.stderr.split("PEAK_KIB", 1)[1].split()[0])
    (row,) = json.loads(proc.stdout)["rows"]
    first, stop = changed_range(minutes)
    step = HOP / SR
    expected = [first * step, stop * step]
    found = row["ranges"]
    if row["verdict"] != "differs" or len(found) != 1 or not np.allclose(found[0], expected):
        raise SystemExit(f"compare found {row['verdict']} {found}, expected {expected}")
    n = frames_of(minutes)
    return {
        "minutes": minutes,
        "frames": n,
        "float32_bytes_both": 2 * n * BINS * 4,
        "peak_rss_mib": peak_kib / 1024,
        "seconds": wall,
        "cpu_seconds": cpu,
        "verdict": row["verdict"],
        "range": row["ranges_text"][0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 60.0])
    ap.add_argument("--runs", type=int, default=1, help="fresh processes per case")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    project = build(args.minutes)
    results = []
    for m in args.minutes:
        for _ in range(args.runs):
            r = measure(project, m)
            results.append(r)
            gb = r["float32_bytes_both"] / 1e9
            print(
                f"{m:>5g} min  {r['frames']:>8,} frames  peak RSS {r['peak_rss_mib']:7.1f} MiB "
                f"({r['peak_rss_mib'] * 2**20 / r['float32_bytes_both']:.3f} of the {gb:.2f} GB "
                f"compared as float32)  {r['seconds']:6.1f} s ({r['cpu_seconds']:.1f} s CPU)  "
                f"{r['verdict']} {r['range']}",
                flush=True,
            )
    base = min(args.minutes)
    peak = {m: max(r["peak_rss_mib"] for r in results if r["minutes"] == m) for m in args.minutes}
    print(
        "\nratio of peak RSS to the shortest compare: "
        + "  ".join(f"{m:g} min: {peak[m] / peak[base]:.2f}" for m in peak)
    )
    info = _util.machine()
    print(f"\n{info['cpu']}, {info['cores']}, Python {info['python']}, numpy {info['numpy']}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2))


if __name__ == "__main__":
    main()
