"""Benchmark: streaming playback's memory against the file's length, and its audio callback's
time against its buffer period, on a real PortAudio stream (ALSA's null device).

    .venv/bin/python bench/playback.py [--minutes 1] [--long-minutes 60] [--runs 3]

1. Generates music-like stereo 44.1 kHz 16-bit WAVs into bench/out/ (shared with
   bench/analysis.py; gitignored, reused by later runs).
2. Each measurement runs in a fresh subprocess whose ``HOME`` holds an ``.asoundrc`` making
   ALSA's null device the default output (set before sounddevice is imported, so PortAudio
   sees it). The subprocess builds the app's ``Player`` (in the app's ``QApplication``, with
   its process settings: ``gc.freeze()``, a 0.5 ms GIL switch interval),
   opens the file and plays it from the start to the end. ALSA's null device takes the
   audio as fast as the callback hands it over, so a whole 60-minute file plays in seconds:
   every frame of it goes through the reader thread, the ring and the callback.
3. Memory: the subprocess's peak RSS (``VmHWM``) at the end, and its RSS just before Play
   (imports done, file opened: the growth is what playing costs). The files alternate,
   ``--runs`` subprocesses each; the medians are compared.
4. Callback: the longest time one callback took, against the duration of the audio it
   produced (its buffer period), and the mean over all callbacks, with PortAudio's own
   buffer size and with fixed sizes (``--blocksizes``). The null device calls back-to-back,
   so the reader thread decodes at full speed meanwhile and competes for the GIL: a harsher
   case than a sound card calling once per period.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _util

ROOT = Path(__file__).resolve().parents[1]


def child(path: Path, blocksize: int) -> None:
    """Play ``path`` to its end on ALSA's null device; print the figures as JSON."""
    home = Path(tempfile.mkdtemp(prefix="bench-alsa-"))
    (home / ".asoundrc").write_text("pcm.!default { type null }\n")
    os.environ["HOME"] = str(home)  # before sounddevice (PortAudio) is imported
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop

    from diagnostics_app.qt.app import ensure_app
    from diagnostics_app.qt.playback import Player

    app = ensure_app()  # as the app runs: gc.freeze(), its GIL switch interval
    player = Player()
    if not player.available:
        raise SystemExit(f"no output: {player.unavailable_reason}")
    player.blocksize = blocksize
    assert player.open_source(path)
    rss_before = _rss_mib()
    loop = QEventLoop()
    errors: list[str] = []
    player.errorOccurred.connect(errors.append)
    player.stateChanged.connect(lambda playing: None if playing else loop.quit())
    t0 = time.perf_counter()
    assert player.play(0.0)
    loop.exec()
    wall = time.perf_counter() - t0
    stats = player.stats()
    assert stats is not None
    loads = sorted(d / p for d, p in stats.durations if p > 0)
    periods = [p for _, p in stats.durations]
    driver = player.driver
    result: dict[str, Any] = {
        "file": path.name,
        "seconds": player.duration(),
        "blocksize": blocksize,
        "rss_before_play_mib": rss_before,
        "peak_rss_mib": _util.peak_rss_mib(),
        "delivered_frames": stats.delivered_frames,
        "file_frames": round(player.duration() * player.sample_rate),
        "callbacks": stats.callbacks,
        "underruns": stats.underruns,
        "worst_callback_ms": stats.worst_callback_s * 1e3,
        "worst_load": stats.worst_load,
        "mean_load": stats.mean_load,
        "p99_load_last": loads[int(0.99 * (len(loads) - 1))] if loads else 0.0,
        "median_period_ms": statistics.median(periods) * 1e3 if periods else 0.0,
        "output_latency_ms": (driver.output_latency * 1e3) if driver else 0.0,
        "wall_s": wall,
        "errors": errors,
        "switch_interval_ms": sys.getswitchinterval() * 1e3,
    }
    player.close()
    del app
    print(json.dumps(result))


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_child(path: Path, blocksize: int) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, __file__, "--child", str(path), "--blocksize", str(blocksize)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, timeout=1800)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--long-minutes", type=float, default=60.0)
    ap.add_argument("--runs", type=int, default=3, help="fresh subprocesses per file")
    ap.add_argument("--blocksizes", type=int, nargs="*", default=[256, 1024])
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--blocksize", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.blocksize)
        return

    info = _util.machine()
    print(f"machine: {info['cpu']}, {os.cpu_count()} logical CPUs (nproc), Python {info['python']}")
    print(f"load average: {os.getloadavg()}")
    short = _util.make_audio(args.minutes)
    long = _util.make_audio(args.long_minutes)

    print("\nmemory: each file played to its end in a fresh subprocess (PortAudio's block size)")
    results: dict[Path, list[dict[str, Any]]] = {short: [], long: []}
    for _ in range(args.runs):
        for path in (short, long):
            r = run_child(path, 0)
            assert r["delivered_frames"] == r["file_frames"], r
            assert not r["errors"], r["errors"]
            results[path].append(r)
            print(
                f"  {r['file']}: peak RSS {r['peak_rss_mib']:.1f} MiB (before Play "
                f"{r['rss_before_play_mib']:.1f}), {r['callbacks']} callbacks, "
                f"{r['wall_s']:.1f} s wall, underruns {r['underruns']}, "
                f"worst callback {r['worst_callback_ms']:.2f} ms = {r['worst_load']:.2f} of its "
                f"period, mean {r['mean_load']:.4f}"
            )
    peak = {p: statistics.median(r["peak_rss_mib"] for r in rs) for p, rs in results.items()}
    growth = {
        p: statistics.median(r["peak_rss_mib"] - r["rss_before_play_mib"] for r in rs)
        for p, rs in results.items()
    }
    print(
        f"  median peak RSS: {args.long_minutes:g} min {peak[long]:.1f} MiB, "
        f"{args.minutes:g} min {peak[short]:.1f} MiB: ratio {peak[long] / peak[short]:.3f}"
    )
    print(
        f"  median growth from Play to the end: {growth[long]:.1f} MiB vs {growth[short]:.1f} MiB"
    )
    every = [r for rs in results.values() for r in rs]
    print(
        f"  callback (PortAudio's block size, period {every[0]['median_period_ms']:.2f} ms, "
        f"output latency {every[0]['output_latency_ms']:.1f} ms): worst of each run "
        f"{sorted(round(r['worst_load'], 2) for r in every)} of the period; mean "
        f"{statistics.median(r['mean_load'] for r in every):.4f}"
    )
    decoded = args.long_minutes * 60 * 44100 * 2 * 4 / 2**20
    print(f"  (decoding the {args.long_minutes:g}-minute file whole, as before: {decoded:.0f} MiB)")

    print("\ncallback: worst and mean time in the callback / its buffer period (1-minute file)")
    for bs in args.blocksizes:
        rs = [run_child(short, bs) for _ in range(args.runs)]
        worst = max(r["worst_load"] for r in rs)
        print(
            f"  blocksize {bs}: period {rs[0]['median_period_ms']:.2f} ms, worst "
            f"{max(r['worst_callback_ms'] for r in rs):.2f} ms = {worst:.2f} of the period; "
            f"mean {statistics.median(r['mean_load'] for r in rs):.4f}; p99 (last 1024 "
            f"callbacks) {statistics.median(r['p99_load_last'] for r in rs):.3f}; underruns "
            f"{[r['underruns'] for r in rs]}"
        )


if __name__ == "__main__":
    main()
