"""Time to show, and to pan (repaint), a 60-minute stereo waveform in the plot area.

Offscreen, synthetic peaks (48 kHz, 64-sample blocks: 2.7 M blocks per channel) plus a beat
grid. Prints the median of ``grab()`` after each pan; run by hand, not part of the suite:

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/_plot_pan.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PySide6.QtWidgets import QApplication

from diagnostics_app.core.tempo import TempoMap
from diagnostics_app.qt.plots import PlotArea

SAMPLE_RATE = 48_000
BLOCK = 64
MINUTES = 60
PANS = 40


def synthetic_peaks(blocks: int, channels: int = 2) -> np.ndarray:
    """Min/max of a slowly modulated noise, (blocks, channels, 2) float32."""
    rng = np.random.default_rng(0)
    env = 0.2 + 0.7 * np.abs(np.sin(np.linspace(0, 200 * np.pi, blocks, dtype=np.float32)))
    peaks = np.empty((blocks, channels, 2), np.float32)
    for ch in range(channels):
        wobble = rng.random(blocks, dtype=np.float32) * 0.2
        peaks[:, ch, 1] = env * (0.8 + wobble)
        peaks[:, ch, 0] = -env * (0.8 + wobble[::-1])
    return peaks


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    step = BLOCK / SAMPLE_RATE
    duration = MINUTES * 60.0
    peaks = synthetic_peaks(int(duration / step))
    area = PlotArea()
    area.resize(1600, 700)
    area.show()
    app.processEvents()

    t0 = time.perf_counter()
    area.set_source("bench", duration, peaks, step, ["L", "R"], TempoMap())
    area.grab()
    show_ms = (time.perf_counter() - t0) * 1000

    area.set_time_range(600.0, 660.0)  # one minute of the hour
    area.refresh()
    times = []
    points = []
    for i in range(PANS):
        lo, hi = area.time_range()
        shift = (hi - lo) * (0.1 if i % 2 == 0 else -0.05)
        t = time.perf_counter()
        area.set_time_range(lo + shift, hi + shift)
        area.refresh()
        area.grab()
        times.append((time.perf_counter() - t) * 1000)
        band = area.last_band
        points.append(0 if band is None else band.x.shape[0])

    area.set_time_range(0.0, duration)
    area.refresh()
    t = time.perf_counter()
    area.grab()
    whole_ms = (time.perf_counter() - t) * 1000

    print(f"blocks per channel       {peaks.shape[0]:,}")
    print(f"set_source + first grab  {show_ms:8.1f} ms")
    print(f"pan + grab, median       {statistics.median(times):8.1f} ms  (of {PANS})")
    print(f"pan + grab, max          {max(times):8.1f} ms")
    print(f"grab of the whole hour   {whole_ms:8.1f} ms")
    print(f"points per waveform curve (max) {max(points):,}")
    area.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
