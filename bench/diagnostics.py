"""Benchmark: diagnostics at scale (``check`` and incremental re-derivation).

    .venv/bin/python bench/diagnostics.py [--runs 5] [--edit-runs 5] [--rebuild] [--json OUT]

1. Builds, once, a synthetic project in ``bench/out/diag/`` (gitignored; reused while
   ``BUILD`` is unchanged, ``--rebuild`` forces it): 2,000 real WAV sources of 0.05 s (mono
   and stereo, 22.05/44.1/48 kHz), 10,000 tracks (5 per source), 3 profiles × 2 parameter
   variants × 9 features = 50 descriptors per source (4 combinations left out), each requested
   by 2 or 3 of the source's tracks: 100,000 requested rows. The store is POPULATED with
   ``FeatureStore.import_entries`` (one transaction, real tiny ``.npy`` files) with
   fingerprints made by ``fingerprint.build`` from the real audio facts (``read_info`` and
   the content digest, cached in the store as an analysis would leave it), except: ~2 % of
   the descriptors are not stored (``missing``), ~2 % are stored with an old fingerprint
   (``stale``: old audio digest, old ``hop_size`` or old calculator version), every other
   source has one entry nobody requests (``extraneous``), and 20 missing rows have a failed
   job record (``failed``).
2. Measures, medians of ``--runs``:
   a. ``python -m diagnostics_app check PROJECT --json > /dev/null`` in a subprocess (wall),
      also with the two changes proposed to cli.py applied by a driver (``cli_driver``: the
      C JSON encoder, no cyclic GC in the one-shot process), and the same in this process
      (``Session.open`` + ``diagnose`` + the JSON text the CLI prints, with ``indent=2`` as
      the CLI and with the C encoder), with a breakdown of one in-process run;
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
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _util

from diagnostics_app.core import edits
from diagnostics_app.core import fingerprint as fpr
from diagnostics_app.core.audio import content_digest, read_info
from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.diagnostics import Diagnosis
from diagnostics_app.core.params import resolve_params
from diagnostics_app.core.project import load_project
from diagnostics_app.core.session import Session
from diagnostics_app.core.store import INDEX_NAME, EntryImport, EntryKey, FeatureStore, JobRecord
from diagnostics_app.core.tempo import TempoMap

ROOT = Path(__file__).resolve().parents[1]
OUT = _util.OUT_DIR / "diag"
BUILD = 2  # bump when the synthetic project changes

N_SOURCES = 2000
TRACKS_PER_SOURCE = 5
SECONDS = 0.05
FEATURES: tuple[str, ...] = ("peaks", "rms", "spectrogram", "mel", "chroma", "centroid")
FEATURES += ("onset", "pitch", "beat_rms")
PROFILES: dict[str, dict[str, Any]] = {
    "default": {},
    "fine": {"window_size": 1024, "hop_size": 256},
    "coarse": {"window_size": 4096, "hop_size": 1024},
}
VARIANTS: tuple[dict[str, Any], ...] = ({}, {"channel_mode": "per_channel"})
LEFT_OUT = {("coarse", 1, f) for f in ("spectrogram", "mel", "chroma", "pitch")}
DESCRIPTORS = [
    (f, p, v)
    for p in PROFILES
    for v in range(len(VARIANTS))
    for f in FEATURES
    if (p, v, f) not in LEFT_OUT
]  # 50
EXTRANEOUS_PARAMS = {"n_mels": 64}  # a mel variant nobody requests
IMAGE_WIDTH = 4  # tiny stand-ins for bins (the diagnostics never read the arrays)
EDITED_SOURCE = 7  # the source whose audio is replaced


def owners(d: int) -> list[int]:
    """Which of a source's tracks request descriptor ``d``: 2 or 3 of the 5."""
    out = {d % 5, (d + 1) % 5}
    if d % 2 == 0:
        out.add((d + 3) % 5)
    return sorted(out)


def source_id(i: int) -> str:
    return f"s{i:04d}"


def audio_format(i: int) -> tuple[int, int]:
    rate = 48000 if i % 10 == 0 else 22050 if i % 10 == 5 else 44100
    return rate, 2 if i % 3 == 0 else 1


def write_audio(path: Path, i: int, variant: int = 0) -> None:
    rate, channels = audio_format(i)
    rng = np.random.default_rng(i * 1000 + variant)
    data = (0.1 * rng.standard_normal((round(SECONDS * rate), channels))).astype(np.float32)
    sf.write(path, data, rate, subtype="PCM_16")


# --- building the project --------------------------------------------------------------------


def project_json() -> dict[str, Any]:
    sources, tracks = [], []
    for i in range(N_SOURCES):
        sid = source_id(i)
        sources.append({"id": sid, "path": f"audio/{sid}.wav"})
        for k in range(TRACKS_PER_SOURCE):
            requests = []
            for d, (feature, profile, v) in enumerate(DESCRIPTORS):
                if k in owners(d):
                    req: dict[str, Any] = {"feature": feature}
                    if profile != "default":
                        req["profile"] = profile
                    if VARIANTS[v]:
                        req["params"] = VARIANTS[v]
                    requests.append(req)
            tracks.append(
                {"id": f"{sid}-t{k}", "name": f"{sid} {k}", "source": sid, "requests": requests}
            )
    return {
        "format": "diagnostics-app/project",
        "schema_version": 1,
        "name": "diagnostics at scale",
        "tempo_map": [{"time": 0.0, "bpm": 120.0}],
        "profiles": {k: v for k, v in PROFILES.items() if v},
        "sources": sources,
        "tracks": tracks,
    }


def synthetic_meta(feature: str, calc: Any, params: Any, rate: int, channels: int) -> OutputMeta:
    per_channel = params["channel_mode"] == "per_channel"
    ch = channels if per_channel or feature == "peaks" else 1
    width = {"peaks": 2, "pitch": 2}.get(feature, 1)
    if feature in ("spectrogram", "mel", "chroma"):
        width = IMAGE_WIDTH
    hop = params["peaks_block"] if feature == "peaks" else params["hop_size"]
    return OutputMeta(
        feature=feature,
        channels=ch,
        width=width,
        frame_step=hop / rate,
        storage="u16db" if feature == "spectrogram" else "float32",
        value_range=(-80.0, 0.0) if feature == "spectrogram" else None,
    )


def entry_imports(
    registry: Registry, facts: dict[str, fpr.AudioFacts], tempo: TempoMap
) -> Iterator[EntryImport]:
    """What an analysis would have left, with a few percent stale/missing/extraneous."""
    rng = np.random.default_rng(42)
    params_of = {
        (p, v): resolve_params(PROFILES[p], VARIANTS[v])
        for p in PROFILES
        for v in range(len(VARIANTS))
    }
    for i in range(N_SOURCES):
        sid = source_id(i)
        af = facts[sid]
        wanted = list(DESCRIPTORS)
        for d, (feature, profile, v) in enumerate(wanted):
            r = rng.random()
            if r < 0.02:
                continue  # missing
            calc = registry.resolve(feature, None)
            params = params_of[(profile, v)]
            fp = fpr.build(calc, params, af, tempo)
            version = calc.version
            if r < 0.04:  # stale, for one of three reasons
                why = d % 3
                if why == 0:
                    fp[fpr.AUDIO_CONTENT] = "b2:" + "0" * 32
                elif why == 1 and f"{fpr.PROFILE_PREFIX}hop_size" in fp:
                    fp[f"{fpr.PROFILE_PREFIX}hop_size"] = 333
                else:
                    version = calc.version - 1
                    fp[fpr.CALC_VERSION] = version
            yield _entry(sid, calc, feature, profile, VARIANTS[v], params, fp, version, af)
        if i % 2 == 0:  # one extraneous entry
            calc = registry.resolve("mel", None)
            params = resolve_params({}, EXTRANEOUS_PARAMS)
            fp = fpr.build(calc, params, af, tempo)
            yield _entry(sid, calc, "mel", "default", EXTRANEOUS_PARAMS, params, fp, 1, af)


def _entry(
    sid: str,
    calc: Any,
    feature: str,
    profile: str,
    overrides: dict[str, Any],
    params: Any,
    fp: dict[str, Any],
    version: int,
    af: fpr.AudioFacts,
) -> EntryImport:
    meta = synthetic_meta(feature, calc, params, af.sample_rate, af.channels)
    hop = params["peaks_block"] if feature == "peaks" else params["hop_size"]
    n = 1 + int(SECONDS * af.sample_rate) // hop
    values = np.linspace(-60.0, -6.0, n * meta.channels * meta.width, dtype=np.float32)
    return EntryImport(
        key=EntryKey.of(sid, calc.id, profile, overrides),
        fingerprint=fp,
        version=version,
        metas={feature: meta},
        arrays={feature: values.reshape(n, meta.channels, meta.width)},
    )


def build(rebuild: bool) -> Path:
    marker = OUT / "build.json"
    project_path = OUT / "project.json"
    want = {"build": BUILD, "sources": N_SOURCES}
    if not rebuild and marker.exists() and json.loads(marker.read_text()) == want:
        return project_path
    print(f"building the synthetic project in {OUT} ...", flush=True)
    t0 = time.perf_counter()
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "audio").mkdir(parents=True)
    for i in range(N_SOURCES):
        write_audio(OUT / "audio" / f"{source_id(i)}.wav", i)
    project_path.write_text(json.dumps(project_json(), indent=1), encoding="utf-8")
    project = load_project(project_path)
    registry = Registry.builtin()
    t1 = time.perf_counter()
    with FeatureStore.open(project.cache_path()) as store:
        facts = {}
        for src in project.sources:
            path = project.audio_path(src)
            info = read_info(path)
            facts[src.id] = fpr.AudioFacts(
                content_digest(path, store), info.sample_rate, info.channels
            )
        t2 = time.perf_counter()
        imported = store.import_entries(entry_imports(registry, facts, project.tempo_map))
        t3 = time.perf_counter()
        # failed jobs for some missing rows: ``failed`` rows, as after a failed analysis
        failed = 0
        for i in range(0, N_SOURCES, 7):
            for feature, profile, v in DESCRIPTORS:
                calc = registry.resolve(feature, None)
                key = EntryKey.of(source_id(i), calc.id, profile, VARIANTS[v])
                if failed < 20 and store.get(key) is None:
                    job = JobRecord.new(
                        key.source_id,
                        [calc.id],
                        profile,
                        VARIANTS[v],
                        [feature],
                        state="failed",
                        label="failed",
                    )
                    store.add_job(job)
                    store.update_job(job.id, message="synthetic failure for the benchmark")
                    failed += 1
    print(
        f"  audio + project {t1 - t0:.1f} s, facts {t2 - t1:.1f} s, import of "
        f"{len(imported)} entries {t3 - t2:.1f} s (one transaction)",
        flush=True,
    )
    marker.write_text(json.dumps(want))
    return project_path


# --- measuring -------------------------------------------------------------------------------


def median(fn: Callable[[], object], runs: int) -> tuple[float, list[float]]:
    """Median wall time of ``runs`` calls; a full collection before each (outside the timing)
    so that one run's garbage (a Session holds a reference cycle) is not the next one's."""
    times = []
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def check_subprocess(project: Path, c_json: bool = False, no_gc: bool = False) -> None:
    """``python -m diagnostics_app check PROJECT --json > /dev/null``. With ``c_json`` or
    ``no_gc`` the same CLI runs with a change proposed to cli.py (not made here: another
    engineer owns it), applied by a small driver (:func:`cli_driver`)."""
    if c_json or no_gc:
        head = [sys.executable, "-c", cli_driver(c_json, no_gc)]
    else:
        head = [sys.executable, "-m", "diagnostics_app"]
    cmd = [*head, "check", str(project), "--json"]
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, cwd=ROOT, check=False).returncode
    if rc not in (0, 1):
        raise SystemExit(f"check exited {rc}")


def cli_driver(c_json: bool, no_gc: bool) -> str:
    """``python -m diagnostics_app`` with, when asked: (``c_json``) cli._print_json writing
    ``json.dumps(obj, ensure_ascii=False, default=str)``, the C encoder (``json.dump`` with
    ``indent=2`` runs the pure-Python one); (``no_gc``) no cyclic GC in the one-shot process
    (``gc.disable()`` in ``main``; rows, entries and the project hold no reference cycle)."""
    lines = ["import gc, json, sys", "import diagnostics_app.cli as cli"]
    if c_json:
        lines += [
            "def _print_json(obj):",
            "    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str))",
            "    sys.stdout.write(chr(10))",
            "cli._print_json = _print_json",
        ]
    if no_gc:
        lines.append("gc.disable()")
    lines.append("sys.exit(cli.main(sys.argv[1:]))")
    return "\n".join(lines)


def check_json_text(session: Session, project: Path, indent: int | None = 2) -> str:
    """What ``check --json`` prints, built as cli._check builds it."""
    diagnosis = session.diagnose()
    rows = list(diagnosis.rows)
    return json.dumps(
        {
            "schema_version": 1,
            "project": str(project),
            "summary": dict(Diagnosis(tuple(rows)).summary()),
            "rows": [r.to_json() for r in rows],
        },
        indent=indent,
        ensure_ascii=False,
        default=str,
    )


def check_in_process(project: Path, indent: int | None = 2) -> None:
    with Session.open(project) as session:
        check_json_text(session, project, indent)


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
    rows = [r.to_json() for r in diagnosis.rows]
    lap("Row.to_json")
    json.dumps({"rows": rows}, indent=2, ensure_ascii=False, default=str)
    lap("json.dumps(indent=2)")
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
    check_subprocess(project)  # warm the page cache
    floor_in_process(index, paths)
    figures: dict[str, tuple[float, list[float]]] = {}
    figures["check --json, subprocess"] = median(lambda: check_subprocess(project), runs)
    figures["check --json, subprocess, cli: json.dumps (a)"] = median(
        lambda: check_subprocess(project, c_json=True), runs
    )
    figures["check --json, subprocess, cli: no cyclic GC (b)"] = median(
        lambda: check_subprocess(project, no_gc=True), runs
    )
    figures["check --json, subprocess, cli: (a) + (b)"] = median(
        lambda: check_subprocess(project, c_json=True, no_gc=True), runs
    )
    figures["floor, subprocess"] = median(lambda: floor_subprocess(index, paths_file), runs)
    figures["check, in-process, json indent=2 (as the CLI)"] = median(
        lambda: check_in_process(project), runs
    )
    figures["check, in-process, json C encoder"] = median(
        lambda: check_in_process(project, indent=None), runs
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
        "subprocess": figures["check --json, subprocess"][0] / f_sub,
        "subprocess, cli (a) + (b)": figures["check --json, subprocess, cli: (a) + (b)"][0] / f_sub,
        "in-process, indent=2": figures["check, in-process, json indent=2 (as the CLI)"][0] / f_in,
        "in-process, C encoder": figures["check, in-process, json C encoder"][0] / f_in,
    }
    print(
        "\nratio check/floor (target <= 3x): "
        + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
    )
    print(
        "(a), (b): changes proposed to cli.py, applied by a driver (see cli_driver): "
        "(a) json.dumps instead of json.dump(indent=2), (b) gc.disable() in the one-shot CLI"
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
