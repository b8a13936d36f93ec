"""Library benchmark (run by hand, not part of the suite): a project of 20,000 sources made
with ``diagnostics-app add``, then opened, checked and painted.

The library is N copies of one short WAV (0.05 s, 8 kHz mono: 844 bytes each) in folders of
100; copies, not links, because ``add`` takes a file reached twice (hard or symbolic links)
once. Measured, each in a fresh process unless said:

1. ``add PROJECT lib --recursive --request rms`` (walk, sniff and read every header, name,
   write the project): one track per source, so there is one row per source.
2. ``Session.open`` (read and validate the project, open the store), in-process, median of 3.
3. ``check --json``: cold (every file's digest computed and cached) and warm (again).
4. GUI: launch -> first paint of the window, and -> the source tree and the table painted
   with rows (bench/gui.py's child), plus the longest GUI-thread stall from show to rows
   (a 5 ms heartbeat timer).
5. ``add`` again on the same folder (everything already present: nothing written).

    .venv/bin/python bench/library.py [--sources N]
"""

from __future__ import annotations

import argparse
import os
import shutil
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

OUT = ROOT / "bench" / "out" / "library"
PER_FOLDER = 100


def make_library(folder: Path, n: int) -> Path:
    lib = folder / "lib"
    if lib.exists():
        shutil.rmtree(lib)
    one = folder / "one.wav"
    t = np.arange(400) / 8000
    sf.write(one, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000, subtype="PCM_16")
    data = one.read_bytes()
    for i in range(n):
        sub = lib / f"set_{i // PER_FOLDER:03d}"
        if i % PER_FOLDER == 0:
            sub.mkdir(parents=True)
        (sub / f"take_{i % PER_FOLDER:02d}.wav").write_bytes(data)
    return lib


def cli(*args: object) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "diagnostics_app", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
        check=False,
    )
    return time.perf_counter() - start, proc


STALL_CHILD = r"""
import os, sys, time
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QElapsedTimer, QTimer
from diagnostics_app.core.session import Session
from diagnostics_app.qt.app import ensure_app
from diagnostics_app.qt.controller import Controller
from diagnostics_app.qt.main_window import MainWindow
from diagnostics_app.qt.settings import AppSettings
app = ensure_app()
session = Session.open(sys.argv[1])
controller = Controller(session, AppSettings(workers=1, auto_analyse=False))
w = MainWindow(controller)
w.force_close = True
w.resize(1400, 900)
clock = QElapsedTimer(); clock.start()
last = [clock.nsecsElapsed()]; worst = [0.0]
def beat():
    now = clock.nsecsElapsed()
    worst[0] = max(worst[0], (now - last[0]) / 1e6)
    last[0] = now
    if w.sources.model.rowCount() > 0 and w.table.table_model.rowCount() > 0:
        print(f"STALL {worst[0]:.1f}", flush=True)
        app.quit()
timer = QTimer(); timer.setInterval(5); timer.timeout.connect(beat); timer.start()
w.show()
app.exec()
os._exit(0)
"""


def longest_stall(project: Path) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "QT_QPA_PLATFORM": "offscreen",
        "DIAGNOSTICS_APP_SETTINGS": str(OUT / "settings.ini"),
    }
    out = subprocess.run(
        [sys.executable, "-c", STALL_CHILD, str(project)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    marks = [line for line in out.stdout.splitlines() if line.startswith("STALL")]
    if not marks:
        raise SystemExit(f"stall child failed: {out.stderr[-2000:]}")
    return float(marks[0].split()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=20_000)
    args = parser.parse_args()
    n = args.sources
    OUT.mkdir(parents=True, exist_ok=True)
    work = OUT / f"n{n}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    lib = make_library(work, n)
    print(f"library: {n} files written in {time.perf_counter() - t0:.1f} s")
    project = work / "project.json"

    def report(what: str, seconds: float) -> None:
        print(f"{what:<42} {seconds:8.2f} s   {seconds / n * 1e6:8.1f} µs/source")

    seconds, proc = cli("add", project, lib, "--recursive", "--request", "rms")
    if proc.returncode != 0:
        raise SystemExit(f"add failed: {proc.stderr}")
    print(proc.stdout.splitlines()[-1])
    report("add (new project, fresh process)", seconds)

    from diagnostics_app.core import library
    from diagnostics_app.core.project import load_project
    from diagnostics_app.core.session import Session

    start = time.perf_counter()
    found = library.scan([lib], recursive=True)
    report("  of which: scan (in-process)", time.perf_counter() - start)
    start = time.perf_counter()
    library.plan_addition(load_project(project), found, None)
    report("  plan against the full project (all present)", time.perf_counter() - start)

    def open_close() -> None:
        Session.open(project).close()

    median, _ = _util.median_time(open_close, 3)
    report("Session.open + close (in-process, median of 3)", median)

    for label in ("check --json, cold (digests computed)", "check --json, warm"):
        seconds, proc = cli("check", project, "--json")
        if proc.returncode not in (0, 1) or '"missing": ' + str(n) not in proc.stdout:
            raise SystemExit(f"check failed: {proc.stderr[-500:]}")
        report(label, seconds)

    import gui  # bench/gui.py: the first-paint child

    paint, rows = gui.first_paint("main", project)
    report("GUI launch -> first paint", paint)
    assert rows is not None
    report("GUI launch -> tree and table painted with rows", rows)
    print(f"{'GUI longest stall, show -> rows':<42} {longest_stall(project):8.1f} ms")

    seconds, proc = cli("add", project, lib, "--recursive", "--request", "rms")
    print(proc.stdout.splitlines()[-1])
    report("add again (all present, fresh process)", seconds)
    print(f"machine: {_util.cpu_model()}, {os.cpu_count()} logical cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
