"""Benchmark: peak memory of ``export`` for a long spectrogram (README, "Export").

    .venv/bin/python bench/export.py [--minutes 1 60] [--formats npy csv json] [--runs 1]
                                     [--keep] [--json OUT]

1. Builds, once, in ``bench/out/export/`` (gitignored; reused): a project with one source per
   length (the stereo 44.1 kHz music of ``_util.make_audio``), each requesting the default
   ``spectrogram`` (window 2048, hop 512, mix: 1025 bins, 86 frames a second), and analyses it.
   A 60-minute spectrogram is 310,000 frames × 1025 bins: 1.27 GB as float32 (the store keeps
   it as uint16, 635 MB).
2. For each format and length: the CLI's ``export ... -o FILE`` in a fresh process, which
   reports its own peak resident set size (``VmHWM`` of ``/proc/self/status``) as it ends;
   with the wall time and the size of what it wrote. The file is deleted after each run
   unless ``--keep``.

Memory is flat when the 60-minute figure is close to the 1-minute one (ratio ≈ 1); a
whole-matrix export would need at least the float32 matrix (1.27 GB) and, for JSON, several
times that in Python floats.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _util

from diagnostics_app.core.session import Session

FOLDER = _util.OUT_DIR / "export"


def _source_id(minutes: float) -> str:
    return f"m{minutes:g}"


def build(minutes: list[float]) -> Path:
    """The project (rewritten each time, cheap) and its analysis (kept while ok)."""
    FOLDER.mkdir(parents=True, exist_ok=True)
    sources, tracks = [], []
    for m in minutes:
        sid = _source_id(m)
        sources.append({"id": sid, "path": str(_util.make_audio(m))})
        tracks.append({"id": sid, "source": sid, "requests": [{"feature": "spectrogram"}]})
    doc = {
        "format": "diagnostics-app/project",
        "schema_version": 1,
        "name": "export benchmark",
        "sources": sources,
        "tracks": tracks,
    }
    path = FOLDER / "project.json"
    text = json.dumps(doc, indent=2) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    with Session.open(path) as session:
        jobs = session.plan()
        if jobs:
            print(f"analysing {len(jobs)} source(s) ...", file=sys.stderr)
            session.enqueue(jobs)
            results = session.runner.run_all()
            bad = [r for r in results if r.status != "done"]
            if bad:
                raise SystemExit(f"analysis failed: {bad}")
    return path


def measure(project: Path, minutes: float, fmt: str, keep: bool) -> dict[str, Any]:
    out = FOLDER / f"out-{minutes:g}min.{fmt}"
    # VmHWM read by the child itself at the end: the kernel's per-child ru_maxrss would also
    # count the forking parent's memory (this process, with numpy and a Session loaded)
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
    cmd = [sys.executable, "-c", driver, "export", str(project)]
    cmd += ["--source", _source_id(minutes), "--feature", "spectrogram"]
    cmd += ["--format", fmt, "-o", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"export failed ({proc.returncode}): {proc.stderr.strip()}")
    peak_kib = int(proc.stderr.split("PEAK_KIB", 1)[1].split()[0])
    written = [p for p in (out, out.with_name(out.name + ".provenance.json")) if p.exists()]
    size = sum(p.stat().st_size for p in written)
    if not keep:
        for p in written:
            p.unlink()
    return {
        "minutes": minutes,
        "format": fmt,
        "peak_rss_mib": peak_kib / 1024,
        "seconds": wall,
        "bytes": size,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 60.0])
    ap.add_argument("--formats", nargs="+", default=["npy", "csv", "json"])
    ap.add_argument("--runs", type=int, default=1, help="fresh processes per case")
    ap.add_argument("--keep", action="store_true", help="keep the exported files")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    project = build(args.minutes)
    results = []
    for fmt in args.formats:
        for m in args.minutes:
            for _ in range(args.runs):
                r = measure(project, m, fmt, args.keep)
                results.append(r)
                print(
                    f"{fmt:>4} {m:>5g} min  peak RSS {r['peak_rss_mib']:7.1f} MiB  "
                    f"{r['seconds']:7.1f} s  {r['bytes'] / 1e6:9.1f} MB written",
                    flush=True,
                )
    base = min(args.minutes)
    print("\nratio of peak RSS to the shortest export (max over runs):")
    for fmt in args.formats:
        peak = {
            m: max(r["peak_rss_mib"] for r in results if r["format"] == fmt and r["minutes"] == m)
            for m in args.minutes
        }
        print(f"{fmt:>4}  " + "  ".join(f"{m:g} min: {peak[m] / peak[base]:.2f}" for m in peak))
    info = _util.machine()
    print(f"\n{info['cpu']}, {info['cores']}, Python {info['python']}, numpy {info['numpy']}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2))


if __name__ == "__main__":
    main()
