"""Benchmark: diagnostics at scale (``check`` and incremental re-derivation).

    .venv/bin/python bench/diagnostics.py [--runs 5] [--edit-runs 5] [--rebuild] [--json OUT]

1. Builds, once, the synthetic project of ``_diag_project.py`` in ``bench/out/diag/``: 2,000
   sources, 10,000 tracks, 100,000 requested rows plus 1,000 extraneous, a populated store
   with a few percent of missing, stale and failed rows.
2. Measures, medians of ``--runs``:
   a. ``python -m diagnostics_app check PROJECT --json > /dev/null`` in a subprocess (wall):
      as a user runs it again and again (the result cached in the store folder by the run
      before, ``core/check_cache.py``), and with no cached result (the file deleted before
      each run, outside the timing: the first check after any change, which derives the rows
      and saves the result); the same derivation in this process (``Session.open`` +
      ``diagnose`` + the JSON text, as ``cli_check`` builds it), with a breakdown of one run;
   b. the floor: one SELECT of every entry joined with its features (sqlite3 directly) plus
      one ``os.stat`` per source file, in this process, and in a subprocess (interpreter
      start + ``import sqlite3, os`` + the same work) for a fair end-to-end ratio;
   c. in a warm Session, after one edit (a tempo change; a profile parameter that one
      calculator reads; one source's audio replaced): the time of ``diagnose()``, the rows it
      evaluated (``diagnoser.last_evaluated``) and the rows whose value actually changed.
      Each edit is undone (or the audio restored) after each repetition.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _util
from _diag_project import EDITED_SOURCE, OUT, ROOT, build, source_id, write_audio

from diagnostics_app import check_json, cli
from diagnostics_app.core import check_cache, edits
from diagnostics_app.core.diagnostics import Diagnosis
from diagnostics_app.core.project import load_project
from diagnostics_app.core.session import Session
from diagnostics_app.core.store import INDEX_NAME

# --- measuring -------------------------------------------------------------------------------


def median(
    fn: Callable[[], object], runs: int, before: Callable[[], object] | None = None
) -> tuple[float, list[float]]:
    """Median wall time of ``runs`` calls; before each, outside the timing, ``before()`` and a
    full collection (so that one run's garbage, a Session holds a reference cycle, is not the
    next one's)."""
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def cached_result(project: Path) -> Path:
    return load_project(project).cache_path() / check_cache.CACHE_NAME


def check_subprocess(project: Path) -> None:
    """``python -m diagnostics_app check PROJECT --json > /dev/null``."""
    cmd = [sys.executable, "-m", "diagnostics_app", "check", str(project), "--json"]
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, cwd=ROOT, check=False).returncode
    if rc not in (0, 1):
        raise SystemExit(f"check exited {rc}")


def must_be_cached(project: Path) -> None:
    if not cached_result(project).exists():
        raise SystemExit("check saved no result: was a file it reads changed meanwhile?")


def check_output(project: Path) -> bytes:
    cmd = [sys.executable, "-m", "diagnostics_app", "check", str(project), "--json"]
    return subprocess.run(cmd, capture_output=True, cwd=ROOT, check=False).stdout


def check_json_text(session: Session, project: Path) -> str:
    """What ``check --json`` prints, built as cli_check builds it when it derives the rows."""
    diagnosis = session.diagnose()
    head = {
        "schema_version": 1,
        "project": str(project),
        "summary": diagnosis.summary(),
        "rows": [],
    }
    return check_json.check_text(cli._json_text(head), diagnosis.rows)


def check_in_process(project: Path) -> None:
    with Session.open(project) as session:
        check_json_text(session, project)


def breakdown(project: Path) -> dict[str, float]:
    """One in-process check, step by step (the same work as Session.open + diagnose)."""
    out: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        out[name] = now - t
        t = now

    p = load_project(project)
    lap("load_project")
    session = Session(p)
    lap("Session() (registry, FeatureStore.open)")
    session.store.reap_dead_jobs()
    statuses = {s.id: session.source_status(s.id) for s in p.sources}
    lap("source statuses (stat, header, digest)")
    entries = session.store.entries()
    lap("store.entries()")
    jobs = session.store.jobs()
    lap("store.jobs()")
    diagnosis = session.diagnoser.diagnose(p, statuses, entries, jobs)
    lap("Diagnoser.diagnose")
    head = {"schema_version": 1, "project": str(project), "summary": diagnosis.summary()}
    check_json.check_text(cli._json_text({**head, "rows": []}), diagnosis.rows)
    lap("the JSON text (check_json.check_text)")
    session.close()
    lap("close")
    return out


FLOOR_SQL = (
    "SELECT e.id, e.source_id, e.calculator_id, e.profile, e.params, e.fingerprint, "
    "e.calculator_version, e.commit_id, e.created, e.updated, f.feature, f.path, f.times_path, "
    "f.meta_id, f.encoding, f.frames, f.channels, f.width, f.nbytes "
    "FROM entries e JOIN features f ON f.entry_id = e.id"
)
FLOOR_CODE = (
    "import sqlite3, os, sys\n"
    "c = sqlite3.connect(sys.argv[1])\n"
    "rows = c.execute(sys.argv[2]).fetchall()\n"
    "for p in open(sys.argv[3]).read().splitlines(): os.stat(p)\n"
)


def floor_in_process(index: Path, paths: list[str]) -> None:
    conn = sqlite3.connect(index)
    conn.execute(FLOOR_SQL).fetchall()
    for p in paths:
        os.stat(p)
    conn.close()


def floor_subprocess(index: Path, paths_file: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", FLOOR_CODE, str(index), FLOOR_SQL, str(paths_file)], check=True
    )


def changed_rows(before: Diagnosis, after: Diagnosis) -> int:
    a, b = before.by_key(), after.by_key()
    return sum(1 for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def edit_runs(project: Path, runs: int) -> list[dict[str, Any]]:
    results = []
    with Session.open(project) as session:
        t0 = time.perf_counter()
        base = session.diagnose()
        cold = time.perf_counter() - t0
        cold_evaluated = session.diagnoser.last_evaluated
        t0 = time.perf_counter()
        again = session.diagnose()
        warm = time.perf_counter() - t0
        assert again == base
        results.append(
            {
                "edit": "none (first diagnose in the session)",
                "diagnose": [cold],
                "evaluated": [cold_evaluated],
                "affected": [len(base.rows)],
                "edit_s": [0.0],
            }
        )
        results.append(
            {
                "edit": "none (diagnose again)",
                "diagnose": [warm],
                "evaluated": [session.diagnoser.last_evaluated],
                "affected": [0],
                "edit_s": [0.0],
            }
        )

        def measure(
            name: str, apply: Callable[[int], object], revert: Callable[[], object]
        ) -> None:
            res: dict[str, Any] = {
                "edit": name,
                "diagnose": [],
                "evaluated": [],
                "affected": [],
                "edit_s": [],
            }
            for k in range(runs):
                t = time.perf_counter()
                apply(k)
                res["edit_s"].append(time.perf_counter() - t)
                t = time.perf_counter()
                d = session.diagnose()
                res["diagnose"].append(time.perf_counter() - t)
                res["evaluated"].append(session.diagnoser.last_evaluated)
                res["affected"].append(changed_rows(base, d))
                revert()
                back = session.diagnose()
                assert back == base, f"{name}: reverting did not restore the rows"
            results.append(res)

        measure(
            "tempo map 120 -> 1xx BPM",
            lambda k: session.edit(
                "tempo", lambda p: edits.set_tempo_map(p, [{"time": 0.0, "bpm": 121.0 + k}])
            ),
            lambda: session.undo() and None,
        )
        measure(
            "profile fine: n_mels 128 -> 6x",
            lambda k: session.edit(
                "n_mels", lambda p: edits.set_profile_param(p, "fine", "n_mels", 60 + k)
            ),
            lambda: session.undo() and None,
        )
        audio = project.parent / "audio" / f"{source_id(EDITED_SOURCE)}.wav"
        original = audio.read_bytes()

        def replace(k: int) -> None:
            write_audio(audio, EDITED_SOURCE, variant=k + 1)

        def restore() -> None:
            audio.write_bytes(original)

        measure(f"audio of {source_id(EDITED_SOURCE)} replaced", replace, restore)
    return results


def machine() -> dict[str, str]:
    return {
        "cpu": _util.cpu_model(),
        "cores": f"{os.cpu_count()} logical",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sqlite": sqlite3.sqlite_version,
        "libsndfile": sf.__libsndfile_version__,
        "os": platform.platform(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--edit-runs", type=int, default=5)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()

    project = build(args.rebuild)
    p = load_project(project)
    index = p.cache_path() / INDEX_NAME
    paths = [str(p.audio_path(s)) for s in p.sources]
    paths_file = OUT / "paths.txt"
    paths_file.write_text("\n".join(paths))

    # what the check sees
    with Session.open(project) as s:
        d = s.diagnose()
        n_tracks = len(s.project.tracks)
        n_entries = len(s.store.entries())
        summary = d.summary()
        multi = sum(1 for r in d.rows if len(r.tracks) > 1)
    shape = {
        "sources": len(p.sources),
        "tracks": n_tracks,
        "requests": sum(len(t.requests) for t in p.tracks),
        "rows": len(d.rows),
        "rows listing 2+ tracks": multi,
        "entries": n_entries,
        "project file MiB": round(project.stat().st_size / 2**20, 1),
    }
    print("project:", ", ".join(f"{k} {v}" for k, v in shape.items()))
    print("states: ", ", ".join(f"{k} {v}" for k, v in summary.items() if v))

    runs = args.runs
    # warm the page cache; the first runs also leave the result cached (a run saves none while
    # a file it depends on is less than 2 s old: a freshly built project, a code edit)
    for _ in range(3):
        check_subprocess(project)
        if cached_result(project).exists():
            break
    served = check_output(project)
    cached_result(project).unlink()
    derived = check_output(project)  # (which saves the result again)
    assert served == derived, "the cached result differs from the derived one"
    print(f"cached and derived output byte-identical ({len(served):,} bytes)")
    floor_in_process(index, paths)
    figures: dict[str, tuple[float, list[float]]] = {}
    figures["check --json, subprocess (result cached)"] = median(
        lambda: check_subprocess(project), runs, before=lambda: must_be_cached(project)
    )
    figures["check --json, subprocess, no cached result"] = median(
        lambda: check_subprocess(project),
        runs,
        before=lambda: cached_result(project).unlink(missing_ok=True),
    )
    check_subprocess(project)  # leave the result cached, as a user's last run would
    figures["floor, subprocess"] = median(lambda: floor_subprocess(index, paths_file), runs)
    figures["check in-process (derive + JSON text)"] = median(
        lambda: check_in_process(project), runs
    )
    figures["floor, in-process"] = median(lambda: floor_in_process(index, paths), runs)
    figures["python -c pass (interpreter start)"] = median(
        lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), runs
    )
    figures["python -c 'import diagnostics_app.cli, core.session'"] = median(
        lambda: subprocess.run(
            [sys.executable, "-c", "import diagnostics_app.cli, diagnostics_app.core.session"],
            check=True,
            cwd=ROOT,
        ),
        runs,
    )
    steps = breakdown(project)
    edits_res = edit_runs(project, args.edit_runs)

    info = machine()
    print()
    print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()))
    print(f"\nmedians of {runs} runs")
    print(f"{'measure':<58}{'median s':>10}   runs")
    for name, (med, times) in figures.items():
        print(f"{name:<58}{med:>10.3f}   {' '.join(f'{t:.3f}' for t in times)}")
    f_sub, f_in = figures["floor, subprocess"][0], figures["floor, in-process"][0]
    ratios = {
        "subprocess, result cached": figures["check --json, subprocess (result cached)"][0] / f_sub,
        "subprocess, no cached result": figures["check --json, subprocess, no cached result"][0]
        / f_sub,
        "in-process, derive + JSON text": figures["check in-process (derive + JSON text)"][0]
        / f_in,
    }
    print(
        "\nratio check/floor (target <= 3x): "
        + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
    )
    print("\none in-process check, step by step:")
    for name, sec in steps.items():
        print(f"  {name:<48}{sec:>8.3f} s")
    print(f"  {'total':<48}{sum(steps.values()):>8.3f} s")
    print(f"\nwarm Session, after one edit (median of {args.edit_runs}; edit undone each time)")
    print(f"{'edit':<40}{'edit s':>8}{'diagnose s':>12}{'evaluated':>11}{'changed':>9}")
    for r in edits_res:
        print(
            f"{r['edit']:<40}{statistics.median(r['edit_s']):>8.3f}"
            f"{statistics.median(r['diagnose']):>12.3f}"
            f"{int(statistics.median(r['evaluated'])):>11}{int(statistics.median(r['affected'])):>9}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "project": shape,
                    "states": summary,
                    "figures": {k: {"median": m, "runs": t} for k, (m, t) in figures.items()},
                    "ratios": ratios,
                    "steps": steps,
                    "edits": edits_res,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
