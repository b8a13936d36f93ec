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
   with rows (bench/gui.py's child), plus the longest GUI-thread stall (a 5 ms heartbeat
   timer) from show to rows, during the first selection of a source (and 1.5 s after), and
   while the library folder is dropped on an empty project, until its rows are shown.
5. ``add`` again on the same folder (everything already present: nothing written).
6. GUI: "Calculate missing" on the opened project (one pass per source): the GUI thread's CPU
   time (``time.thread_time``) and wall time of ``controller.calculate_missing()``, the
   longest GUI-thread stall from the call until the job panel shows the queued passes, and
   the same for "Cancel all" on them.

    .venv/bin/python bench/library.py [--sources N] [--code OTHER_CHECKOUT] [--queue-only]
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


def _code_root() -> Path:
    """The checkout whose ``diagnostics_app`` is measured: ``--code DIR`` (an A/B against
    another worktree, e.g. main's), else this one. Read before anything is imported."""
    if "--code" in sys.argv:
        return Path(sys.argv[sys.argv.index("--code") + 1]).resolve()
    return ROOT


CODE = _code_root()
sys.path.insert(0, str(CODE))
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
    env = {**os.environ, "PYTHONPATH": str(CODE)}
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
import json, os, sys, time
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QElapsedTimer, QTimer
from diagnostics_app.core.session import Session
from diagnostics_app.qt.app import ensure_app
from diagnostics_app.qt.controller import Controller
from diagnostics_app.qt.main_window import MainWindow
from diagnostics_app.qt.settings import AppSettings
project, mode = sys.argv[1], sys.argv[2]
app = ensure_app()
session = Session.open(project)
controller = Controller(session, AppSettings(workers=1, auto_analyse=False))
w = MainWindow(controller)
w.force_close = True
w.resize(1400, 900)
clock = QElapsedTimer(); clock.start()
last = [clock.nsecsElapsed()]; worst = [0.0]; phase = ["open"]; since = [0]
def ms(): return clock.nsecsElapsed() / 1e6
def rows_shown(n):
    return w.sources.model.rowCount() >= n and w.table.table_model.rowCount() > 0
def next_phase(name):
    print(f"STALL {phase[0]} {worst[0]:.1f} {(ms() - since[0]) / 1000:.2f}", flush=True)
    phase[0] = name; worst[0] = 0.0; since[0] = ms()
queued = [0]
def timed(name, call):
    wall, cpu = time.perf_counter(), time.thread_time()
    n = call()
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    print(f"{name} {n} {cpu:.4f} {wall:.4f} {os.getloadavg()[0]:.2f}", flush=True)
    return n
def queue():
    queued[0] = timed("QUEUE", controller.calculate_missing)
def cancel():
    timed("CANCEL", controller.cancel_all)
def select():
    sources = controller.project.sources
    w.select(("source", sources[len(sources) // 2].id))
def beat():
    now = clock.nsecsElapsed()
    worst[0] = max(worst[0], (now - last[0]) / 1e6)
    last[0] = now
    if mode == "open":
        if phase[0] == "open" and rows_shown(1):
            next_phase("select")
            QTimer.singleShot(0, select)
        elif phase[0] == "select" and ms() - since[0] > 1500:
            next_phase("done")
            app.quit()
    elif mode == "queue":
        if phase[0] == "open" and rows_shown(1) and not controller.diagnosis_pending:
            next_phase("settle")
        elif phase[0] == "settle" and ms() - since[0] > 1500:
            next_phase("queue")  # from the call until the job panel shows the passes
            QTimer.singleShot(0, queue)
        elif phase[0] == "queue" and queued[0] and w.jobs.model.rowCount() >= 0.9 * queued[0]:
            next_phase("cancel")  # from the call until the job panel is empty
            QTimer.singleShot(0, cancel)
        elif phase[0] == "cancel" and w.jobs.model.rowCount() == 0 and ms() - since[0] > 50:
            next_phase("done")
            app.quit()
        elif ms() - since[0] > 600000:
            next_phase("timeout")
            app.quit()
    elif phase[0] == "open" and ms() > 1500:  # the empty project shown and settled
        next_phase("drop")
        QTimer.singleShot(0, lambda: w._on_files_dropped([sys.argv[3]]))
    elif phase[0] == "drop" and rows_shown(int(sys.argv[4])):
        next_phase("done")
        app.quit()
timer = QTimer(); timer.setInterval(5); timer.timeout.connect(beat); timer.start()
w.show()
app.exec()
os._exit(0)
"""


def stalls(project: Path, *extra: object) -> dict[str, tuple[float, ...]]:
    """The child's phases: {phase: (longest GUI-thread gap in ms, seconds the phase took)};
    and its timed calls: {"QUEUE"/"CANCEL": (count, GUI-thread CPU s, wall s, load)}."""
    env = {
        **os.environ,
        "PYTHONPATH": str(CODE),
        "QT_QPA_PLATFORM": "offscreen",
        "DIAGNOSTICS_APP_SETTINGS": str(OUT / "settings.ini"),
    }
    out = subprocess.run(
        [sys.executable, "-c", STALL_CHILD, str(project), *map(str, extra)],
        capture_output=True,
        text=True,
        env=env,
        cwd=CODE,
        timeout=900,
        check=False,
    )
    marks: dict[str, tuple[float, ...]] = {
        line.split()[1]: (float(line.split()[2]), float(line.split()[3]))
        for line in out.stdout.splitlines()
        if line.startswith("STALL")
    }
    for line in out.stdout.splitlines():
        if line.startswith(("QUEUE", "CANCEL")):
            marks[line.split()[0]] = tuple(float(x) for x in line.split()[1:])
    if not marks:
        raise SystemExit(f"stall child failed: {out.stderr[-2000:]}")
    return marks


def queue_step(project: Path, n: int) -> None:
    """Step 6: "Calculate missing" and "Cancel all" in a GUI child (one pass per source)."""
    got = stalls(project, "queue")
    if "QUEUE" not in got or "CANCEL" not in got:
        raise SystemExit(f"the queue child did not finish: {got}")
    for name, what in (("QUEUE", "calculate missing"), ("CANCEL", "cancel all")):
        count, cpu, wall, load = got[name]
        print(
            f"{'GUI ' + what + ': GUI-thread CPU':<42} {cpu:8.3f} s   {cpu / n * 1e6:8.1f} µs/source"
            f"   (wall {wall:.3f} s, {count:.0f} passes, load {load:.1f})"
        )
    print(f"{'GUI calculate missing -> queued painted':<42} {got['queue'][1]:8.2f} s")
    print(f"{'  longest stall (the call included)':<42} {got['queue'][0]:8.1f} ms")
    print(f"{'GUI cancel all -> job panel empty':<42} {got['cancel'][1]:8.2f} s")
    print(f"{'  longest stall (the call included)':<42} {got['cancel'][0]:8.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=20_000)
    parser.add_argument("--code", help="the checkout to measure (default: this one)")
    parser.add_argument(
        "--queue-only",
        action="store_true",
        help="make the library and the project, then only step 6 (calculate missing)",
    )
    args = parser.parse_args()
    print(f"code: {CODE}; load average {os.getloadavg()[0]:.1f}")
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

    if args.queue_only:
        cli("check", project, "--json")  # the digests cached, as in the full run
        queue_step(project, n)
        return 0

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

    os.environ["PYTHONPATH"] = str(CODE)  # its child imports the code measured
    gui.ROOT = CODE  # (and runs there: ``-c`` puts its working folder first on the path)
    paint, rows = gui.first_paint("main", project)
    report("GUI launch -> first paint", paint)
    assert rows is not None
    report("GUI launch -> tree and table painted with rows", rows)
    opened = stalls(project, "open")
    print(f"{'GUI longest stall, show -> rows':<42} {opened['open'][0]:8.1f} ms")
    print(f"{'GUI first selection (longest stall, 1.5 s)':<42} {opened['select'][0]:8.1f} ms")
    drop = work / "drop"
    drop.mkdir()
    empty = drop / "project.json"
    empty.write_text(
        '{"format": "diagnostics-app/project", "schema_version": 1, "name": "drop",'
        ' "sources": [], "tracks": []}',
        encoding="utf-8",
    )
    dropped = stalls(empty, "drop", lib, n)
    print(f"{'GUI drop of the folder: longest stall':<42} {dropped['drop'][0]:8.1f} ms")
    report("GUI drop of the folder -> rows shown", dropped["drop"][1])

    seconds, proc = cli("add", project, lib, "--recursive", "--request", "rms")
    print(proc.stdout.splitlines()[-1])
    report("add again (all present, fresh process)", seconds)
    queue_step(project, n)  # last: its passes compute some rows
    print(f"machine: {_util.cpu_model()}, {os.cpu_count()} logical cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
