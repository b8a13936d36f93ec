"""GUI benchmark (run by hand, not part of the suite):

1. launch → first painted main window on a 2,000-source project, against an empty QMainWindow
   with the same imports (both in fresh processes, medians). Target: under 2x. The diagnosis is
   derived in a worker thread, so the window paints first (empty, "Loading diagnostics…") and
   fills in when it arrives: the time until the tree and the table have painted their rows is
   reported too.
2. the longest GUI-thread stall (a 5 ms heartbeat timer) while 20 sources are analysed by the
   worker pool, the GUI thread waiting in its event loop as in the application (``--spin``:
   calling ``processEvents()`` in a loop instead, as this benchmark did before issue 8's last
   step: the GUI thread then never sleeps and takes a core from the analysis). Target: no stall
   above 50 ms. Each gap is split with the GUI thread's ``/proc/thread-self/schedstat`` into its
   CPU time and its wait for a core: the most CPU the GUI thread used in one gap is what the
   code can change; the rest is the machine's load.
3. time to show, and to pan, a 60-minute waveform (bench/_plot_pan.py). Target: pan repaint
   under 16 ms.

    .venv/bin/python bench/gui.py            # all three
    .venv/bin/python bench/gui.py --stalls   # only 2. (``--spin``: the old busy wait)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Stalls:
    longest: float  # ms between two heartbeats, the longest
    p99: float  # ms, 99th percentile of the gaps
    beats: int
    elapsed: float  # s; negative when not every row ended ok
    cpu_max: float  # ms: the most CPU the GUI thread used within one gap (-1: unknown)
    cpu_longest: float  # ms: its CPU within the longest gap (-1: unknown)
    own: float  # ms: the longest gap less the GUI thread's wait for a core in it (-1: unknown)


def _thread_clock() -> tuple[float, float]:
    """This thread's CPU time and run-queue wait so far, in ms ((-1, -1) where unknown)."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            cpu, wait = f.read().split()[:2]
    except OSError:
        return -1.0, -1.0
    return int(cpu) / 1e6, int(wait) / 1e6


def stalls_during_analysis(project: Path, spin: bool = False) -> Stalls:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer

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
    cpus: list[float] = []
    waits: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]
    last_clock = [_thread_clock()]

    def beat() -> None:
        now = clock.nsecsElapsed()
        cpu, wait = _thread_clock()
        gaps.append((now - last[0]) / 1e6)
        cpus.append(cpu - last_clock[0][0] if cpu >= 0 else -1.0)
        waits.append(wait - last_clock[0][1] if wait >= 0 else -1.0)
        last[0] = now
        last_clock[0] = (cpu, wait)

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(beat)
    timer.start()
    start = time.perf_counter()
    controller.calculate_missing()

    def done() -> bool:
        now = time.perf_counter() - start
        return (controller.is_idle() and now >= 0.5) or now > 600

    if spin:
        while not done():
            app.processEvents()
    else:  # the application's way: the GUI thread sleeps in its event loop between events
        loop = QEventLoop()
        poll = QTimer()
        poll.setInterval(20)
        poll.timeout.connect(lambda: loop.quit() if done() else None)
        poll.start()
        loop.exec()
        poll.stop()
    elapsed = time.perf_counter() - start
    timer.stop()
    states = {r.state for r in controller.diagnosis.rows}
    window.close()
    controller.shutdown()
    session.close()
    worst = int(np.argmax(gaps))
    return Stalls(
        longest=max(gaps),
        p99=float(np.percentile(gaps, 99)),
        beats=len(gaps),
        elapsed=elapsed if states == {"ok"} else -elapsed,
        cpu_max=max(cpus),
        cpu_longest=cpus[worst],
        own=max(g - w for g, w in zip(gaps, waits, strict=True)) if min(waits) >= 0 else -1.0,
    )


def _print_stalls(s: Stalls, spin: bool) -> None:
    how = "processEvents() in a loop" if spin else "event loop"
    print(
        "\n2. GUI-thread heartbeat (5 ms timer) while 20 × 20 s sources are analysed "
        f"(2 workers; GUI thread in its {how})"
    )
    print(
        f"   longest stall {s.longest:6.1f} ms, 99th percentile {s.p99:5.1f} ms, {s.beats} beats in "
        f"{abs(s.elapsed):.1f} s" + ("" if s.elapsed > 0 else "  (NOT all rows ok!)")
    )
    if s.cpu_max >= 0:
        print(
            f"   GUI-thread CPU: at most {s.cpu_max:.1f} ms in one gap, "
            f"{s.cpu_longest:.1f} ms in the longest; longest gap less its wait for a core "
            f"{s.own:.1f} ms"
        )


def _small_project() -> Path:
    twenty = OUT / "p20"
    if (twenty / ".featurecache").exists():
        import shutil

        shutil.rmtree(twenty / ".featurecache")
    return make_project(twenty, 20, 20.0, 2)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    spin = "--spin" in sys.argv[1:]
    if "--stalls" in sys.argv[1:]:
        _print_stalls(stalls_during_analysis(_small_project(), spin), spin)
        return 0
    big = make_project(OUT / "p2000", 2000, 0.05, 5)
    small = _small_project()

    first_paint("main", big)  # warm-up: fills the digest cache, OS file cache
    empty = [first_paint("empty", None)[0] for _ in range(RUNS)]
    main_runs = [first_paint("main", big) for _ in range(RUNS)]
    e = statistics.median(empty)
    m = statistics.median(paint for paint, _ in main_runs)
    r = statistics.median(rows or 0.0 for _, rows in main_runs)

    stalls = stalls_during_analysis(small, spin)

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
    _print_stalls(stalls, spin)
    print("\n3. 60-minute waveform (bench/_plot_pan.py)")
    print("   " + pan.stdout.strip().replace("\n", "\n   "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
