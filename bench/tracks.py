"""Benchmark: time against the number of tracks requesting one row (issue 9: "time grows with
the square of the number of tracks requesting one row; 32,000 tracks: 34 s").

    .venv/bin/python bench/tracks.py [--sizes 10000 100000] [--skip-diagnose]

For each size N, a project in ``bench/out/tracks/`` (gitignored) with one source (0.05 s of
audio) and N tracks that all request its ``rms``: one row listing N tracks. In a fresh process
per size: ``load_project`` (read and validate the file) and the first ``Session.diagnose()``
(which builds each row's track list), each timed once. Linear time shows as a ratio close to
the ratio of the sizes (10× for 10,000 → 100,000).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _util

FOLDER = _util.OUT_DIR / "tracks"

_CHILD = """
import json, sys, time
from diagnostics_app.core.project import load_project
from diagnostics_app.core.session import Session
t0 = time.perf_counter()
project = load_project(sys.argv[1])
t1 = time.perf_counter()
out = {"load": t1 - t0}
if sys.argv[2] == "1":
    with Session(project) as session:
        t2 = time.perf_counter()
        rows = session.diagnose().rows
        out["diagnose"] = time.perf_counter() - t2
        out["tracks_on_row"] = max(len(r.tracks) for r in rows)
print(json.dumps(out))
"""


def build(n: int) -> Path:
    folder = FOLDER / str(n)
    path = folder / "project.json"
    if path.exists():
        return path
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    sf.write(folder / "audio" / "a.wav", np.zeros(1102, np.float32), 22050, subtype="PCM_16")
    doc = {
        "format": "diagnostics-app/project",
        "schema_version": 1,
        "sources": [{"id": "a", "path": "audio/a.wav"}],
        "tracks": [
            {"id": f"t{i}", "source": "a", "requests": [{"feature": "rms"}]} for i in range(n)
        ],
    }
    path.write_text(json.dumps(doc))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--skip-diagnose", action="store_true", help="time only load_project")
    args = ap.parse_args()
    results = {}
    for n in args.sizes:
        path = build(n)
        flag = "0" if args.skip_diagnose else "1"
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), flag],
            capture_output=True,
            text=True,
            check=True,
        )
        results[n] = json.loads(proc.stdout)
        shown = "  ".join(
            f"{k} {v:.3f} s" if isinstance(v, float) else f"{k} {v}" for k, v in results[n].items()
        )
        print(f"{n:>8} tracks  {shown}", flush=True)
    small, large = min(args.sizes), max(args.sizes)
    if small != large:
        print(f"\nratio {large:,} / {small:,} tracks (sizes ×{large / small:g}):")
        for key in ("load", "diagnose"):
            if key in results[small]:
                print(f"  {key}: ×{results[large][key] / results[small][key]:.1f}")


if __name__ == "__main__":
    main()
