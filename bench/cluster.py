"""Benchmark: analysis throughput on this machine, in hours of audio per minute of wall time.

    .venv/bin/python bench/cluster.py [--music DIR] [--songs 6] [--runs 1]

The same project (``--songs`` real songs, every built-in feature requested, default profile)
is analysed on a fresh store by three runners, one after the other:

1. ``1 local process``: the CLI's ``analyze`` (passes on this process's thread);
2. ``2 local processes``: the desktop app's worker processes (core/pass_process.py, 2 of them);
3. ``2-worker LocalCluster``: ``analyze --workers 2`` (core/cluster.py; a Dask LocalCluster of
   2 processes, one thread each; its start-up is timed apart and not counted).

Each time runs from queuing the passes to their last commit. Prints the throughputs and their
ratios to the first. The machine (CPU, cores, load average) is printed too: on a shared,
loaded machine the wall times carry the other processes' load.

Real music: Debian's ``singularity-music`` (48 kHz Ogg songs), e.g. ``apt-get download
singularity-music`` and ``dpkg -x`` it; ``--music`` names the folder of ``.ogg`` files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _util

from diagnostics_app.core.audio import read_info
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.cluster import Cluster, ClusterPasses, open_cluster
from diagnostics_app.core.pass_process import ProcessPasses
from diagnostics_app.core.session import Session

MUSIC = Path("/tmp/music/x/usr/share/games/singularity/music")


def write_project(folder: Path, songs: list[Path]) -> Path:
    """A project of ``songs`` (copied in: every run reads the same bytes), every built-in
    feature requested on each."""
    features = Registry.builtin().features()
    sources, tracks = [], []
    for i, song in enumerate(songs):
        target = folder / "audio" / f"s{i}{song.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(song, target)
        sources.append({"id": f"s{i}", "path": f"audio/{target.name}"})
        tracks.append(
            {
                "id": f"t{i}",
                "name": song.stem,
                "source": f"s{i}",
                "requests": [{"feature": f} for f in features],
            }
        )
    path = folder / "project.json"
    path.write_text(json.dumps({"name": "bench", "sources": sources, "tracks": tracks}))
    return path


def timed_run(template: Path, run: Callable[[Session], list[Any]]) -> float:
    """Seconds to analyse a fresh copy of the project (fresh store) with ``run``."""
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        folder = Path(tmp) / "p"
        shutil.copytree(template, folder, ignore=shutil.ignore_patterns(".featurecache"))
        with Session.open(folder / "project.json") as session:
            jobs = session.plan()
            start = time.perf_counter()
            session.enqueue(jobs)
            results = run(session)
            seconds = time.perf_counter() - start
            failed = [r for r in results if r.status != "done"]
            if failed:
                raise SystemExit(f"bench: a pass failed: {failed[0].message}")
    return seconds


def one_process(session: Session) -> list[Any]:
    return session.runner.run_all(workers=0)


def two_processes(session: Session) -> list[Any]:
    passes = ProcessPasses(session.store, 2)
    try:
        return session.runner.run_all(workers=2, run=passes)
    finally:
        passes.close()


def on_cluster(cluster: Cluster) -> Callable[[Session], list[Any]]:
    def run(session: Session) -> list[Any]:
        passes = ClusterPasses(session.store, cluster.client)
        try:
            return session.runner.run_all(workers=cluster.in_flight(), run=passes)
        finally:
            passes.close()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--music", type=Path, default=MUSIC)
    parser.add_argument("--songs", type=int, default=6)
    parser.add_argument("--runs", type=int, default=1, help="runs per runner (median)")
    args = parser.parse_args()
    songs = sorted(args.music.glob("*.ogg"))[: args.songs]
    if not songs:
        raise SystemExit(f"bench: no .ogg songs in {args.music} (see --help)")
    hours = sum(read_info(s).duration for s in songs) / 3600
    print(json.dumps(_util.machine()))
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{len(songs)} songs, {hours * 60:.1f} minutes of audio, every built-in feature")
    with tempfile.TemporaryDirectory(prefix="bench-cluster-template-") as tmp:
        template = Path(tmp)
        write_project(template, songs)
        timed_run(template, one_process)  # warm-up: imports, page cache, numba
        rows: list[tuple[str, float]] = []

        def measure(name: str, run: Callable[[Session], list[Any]]) -> None:
            seconds = statistics.median(timed_run(template, run) for _ in range(args.runs))
            rows.append((name, seconds))

        measure("1 local process", one_process)
        measure("2 local processes", two_processes)
        start = time.perf_counter()
        with open_cluster(workers=2) as cluster:
            started = time.perf_counter() - start
            timed_run(template, on_cluster(cluster))  # warm-up of the workers
            measure("2-worker LocalCluster", on_cluster(cluster))
    base = hours * 60 / rows[0][1]
    print(f"{'runner':<24} {'seconds':>8} {'h audio/min':>12} {'ratio':>6}")
    for name, seconds in rows:
        rate = hours * 60 / seconds
        print(f"{name:<24} {seconds:8.2f} {rate:12.2f} {rate / base:6.2f}")
    print(f"(LocalCluster start-up, not counted: {started:.1f} s)")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
