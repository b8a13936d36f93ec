"""GUI benchmark (run by hand, not part of the suite):

1. launch → first painted main window on a 2,000-source project, against an empty QMainWindow
   with the same imports (both in fresh processes, medians). Target: under 2x. The diagnosis is
   derived in a worker thread, so the window paints first (empty, "Loading diagnostics…") and
   fills in when it arrives: the time until the tree and the table have painted their rows is
   reported too.
2. the longest GUI-thread stall (a 5 ms heartbeat timer) while 20 sources are analysed by the
   worker pool. Target: no stall above 50 ms.
3. time to show, and to pan, a 60-minute waveform (bench/_plot_pan.py). Target: pan repaint
   under 16 ms.

    .venv/bin/python bench/gui.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import _util  # noqa: E402

OUT = ROOT / "bench" / "out" / "gui"
SR = 22050
RUNS = 5


def _tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def make_project(folder: Path, sources: int, seconds: float, tracks_per_source: int) -> Path:
    """Real audio files and a project; nothing cached yet (every row `missing`)."""
    audio = folder / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    feats = ["peaks", "rms", "spectrogram", "centroid", "beat_rms"]
    srcs, tracks = [], []
    for i in range(sources):
        path = audio / f"s{i:04d}.wav"
        if not path.exists():
            sf.write(path, _tone(seconds, 110.0 + i % 400), SR, subtype="PCM_16")
        srcs.append({"id": f"s{i:04d}", "path": f"audio/{path.name}"})
        for k in range(tracks_per_source):
            tracks.append(
                {
                    "id": f"t{i:04d}_{k}",
                    "name": f"Track {i}.{k}",
                    "source": f"s{i:04d}",
                    "requests": [{"feature": f} for f in feats[k % 2 :: 1 + k % 2]],
                }
            )
    project = {
        "format": "diagnostics-app/project",
        "schema_version": 1,
        "name": folder.name,
        "sources": srcs,
        "tracks": tracks,
    }
    path = folder / "project.json"
    path.write_text(json.dumps(project))
    return path


# --- 1. first paint (child processes) ---------------------------------------------------------

CHILD = r"""
import os, sys, time
t0 = time.perf_counter()
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
import pyqtgraph
from diagnostics_app.core.session import Session
from diagnostics_app.qt.app import ensure_app
from diagnostics_app.qt.controller import Controller
from diagnostics_app.qt.main_window import MainWindow
from diagnostics_app.qt.settings import AppSettings
app = ensure_app()

class FirstPaint(QObject):
    # PAINT: the window's first paint. ROWS (main window): the first paint of both the tree
    # and the table after the diagnosis put rows in them.

    def __init__(self):
        super().__init__()
        self.painted = False
        self.views = {}  # viewport -> painted with rows
        self.ready = False

    def eventFilter(self, obj, event):
        if event.type() != QEvent.Type.Paint:
            return False
        if obj is w and not self.painted:
            self.painted = True
            print(f"PAINT {time.time():.6f}", flush=True)
            if sys.argv[1] == "empty":
                QTimer.singleShot(0, app.quit)
        elif obj in self.views and self.ready and not self.views[obj]:
            self.views[obj] = True
            if all(self.views.values()):
                print(f"ROWS {time.time():.6f}", flush=True)
                QTimer.singleShot(0, app.quit)
        return False

    def on_diagnosis(self):
        self.ready = (
            w.sources.model.rowCount() > 0 and w.table.table_model.rowCount() > 0
        )

spy = FirstPaint()
if sys.argv[1] == "empty":
    w = QMainWindow()
else:
    session = Session.open(sys.argv[2])
    controller = Controller(session, AppSettings(workers=1, auto_analyse=False))
    w = MainWindow(controller)
    w.force_close = True
    for view in (w.sources.view.viewport(), w.table.viewport()):
        spy.views[view] = False
        view.installEventFilter(spy)
    controller.diagnosisChanged.connect(spy.on_diagnosis)
w.resize(1400, 900)
w.installEventFilter(spy)
w.show()
app.exec()
os._exit(0)
"""


def first_paint(kind: str, project: Path | None) -> tuple[float, float | None]:
    """Seconds from starting the process to its first paint, and (main window) to the rows."""
    args = [sys.executable, "-c", CHILD, kind] + ([str(project)] if project else [])
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "DIAGNOSTICS_APP_SETTINGS": str(OUT / "settings.ini"),
    }
    start = time.time()
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    marks = dict(line.split() for line in out.stdout.splitlines() if line[:5] in ("PAINT", "ROWS "))
    if "PAINT" not in marks or (kind == "main" and "ROWS" not in marks):
        raise SystemExit(f"child did not paint: {out.stdout[-500:]} {out.stderr[-2000:]}")
    rows = float(marks["ROWS"]) - start if "ROWS" in marks else None
    return float(marks["PAINT"]) - start, rows


# --- 2. GUI-thread stalls while analysing ------------------------------------------------------


def stalls_during_analysis(project: Path) -> tuple[float, float, int, float]:
    from PySide6.QtCore import QElapsedTimer, QTimer

    from diagnostics_app.core.calculators.registry import Registry
    from diagnostics_app.core.session import Session
    from diagnostics_app.qt.app import ensure_app, wait_until_idle
    from diagnostics_app.qt.controller import Controller
    from diagnostics_app.qt.main_window import MainWindow
    from diagnostics_app.qt.settings import AppSettings

    app = ensure_app()
    session = Session.open(project, Registry.builtin())
    controller = Controller(session, AppSettings(workers=2, auto_analyse=False))
    window = MainWindow(controller)
    window.force_close = True
    window.resize(1400, 900)
    window.show()
    wait_until_idle(window)
    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]

    def beat() -> None:
        now = clock.nsecsElapsed()
        gaps.append((now - last[0]) / 1e6)
        last[0] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(beat)
    timer.start()
    start = time.perf_counter()
    controller.calculate_missing()
    while not controller.is_idle() or time.perf_counter() - start < 0.5:
        app.processEvents()
        if time.perf_counter() - start > 600:
            break
    elapsed = time.perf_counter() - start
    timer.stop()
    states = {r.state for r in controller.diagnosis.rows}
    window.close()
    controller.shutdown()
    session.close()
    return (
        max(gaps),
        float(np.percentile(gaps, 99)),
        len(gaps),
        elapsed if states == {"ok"} else -elapsed,
    )


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    big = make_project(OUT / "p2000", 2000, 0.05, 5)
    twenty = OUT / "p20"
    if (twenty / ".featurecache").exists():
        import shutil

        shutil.rmtree(twenty / ".featurecache")
    small = make_project(twenty, 20, 20.0, 2)

    first_paint("main", big)  # warm-up: fills the digest cache, OS file cache
    empty = [first_paint("empty", None)[0] for _ in range(RUNS)]
    main_runs = [first_paint("main", big) for _ in range(RUNS)]
    e = statistics.median(empty)
    m = statistics.median(paint for paint, _ in main_runs)
    r = statistics.median(rows or 0.0 for _, rows in main_runs)

    worst, p99, beats, elapsed = stalls_during_analysis(small)

    pan = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "_plot_pan.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )

    print(f"machine: {os.cpu_count()} cores, {_util.cpu_model()}; Python {sys.version.split()[0]}")
    print(f"\n1. launch → first paint (fresh process, median of {RUNS})")
    print(f"   empty QMainWindow, same imports   {e * 1000:8.0f} ms")
    print(
        f"   main window, 2,000 sources        {m * 1000:8.0f} ms   ratio {m / e:.2f}x (target < 2x)"
    )
    print(f"   … tree and table rows painted     {r * 1000:8.0f} ms   (diagnosis from its worker)")
    print("\n2. GUI-thread heartbeat (5 ms timer) while 20 × 20 s sources are analysed (2 workers)")
    print(
        f"   longest stall {worst:6.1f} ms, 99th percentile {p99:5.1f} ms, {beats} beats in {abs(elapsed):.1f} s"
        + ("" if elapsed > 0 else "  (NOT all rows ok!)")
    )
    print("\n3. 60-minute waveform (bench/_plot_pan.py)")
    print("   " + pan.stdout.strip().replace("\n", "\n   "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
