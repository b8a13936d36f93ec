"""Benchmark: the CPU time of two checkouts on the same real-music work, run alternately, and
whether their outputs are the same bytes (issue 12's CPU savings).

    .venv/bin/python bench/cpu_ab.py BEFORE AFTER [--rounds 3] [--minutes 10]

BEFORE and AFTER are checkouts (e.g. ``/work/main`` and a worktree). Each round runs one child
process per checkout, BEFORE first, with ``PYTHONPATH`` set to it: a warm-up, then
``bench/_music.py``'s ``engine_only`` (``run_source_passes`` over the two passes of the
real-music work, outputs discarded) and ``end_to_end`` (``analyze`` on a fresh store), each
timed with ``time.process_time`` (CPU of every thread of the child) and ``perf_counter``.
CPU is the figure to compare on a shared machine: wall time moves with the other load, CPU
time much less. Printed: every run, the medians and AFTER / BEFORE.

Before the timed rounds each checkout's outputs of ``engine_only`` (every array of both
passes, in memory, float32 as computed) are hashed, and the script stops if they differ:
a saving must change no output bit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _child(audio: Path) -> None:
    """In a checkout (cwd, PYTHONPATH): the hash of every output, or one timed round."""
    import importlib.util

    from diagnostics_app.core.engine import MemorySink, run_source_passes  # the checkout's

    spec = importlib.util.spec_from_file_location("_music", Path.cwd() / "bench" / "_music.py")
    assert spec is not None
    assert spec.loader is not None
    _music = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(_music)
    if os.environ.get("CPU_AB_HASH"):
        sinks = [MemorySink(), MemorySink()]
        done = run_source_passes(str(audio), _music._plans(audio), sinks)
        if any(e is not None for e in done.errors):
            raise SystemExit(f"engine failed: {done.errors}")
        digest = hashlib.sha256()
        for i, sink in enumerate(sinks):
            for calc in sorted(sink.results):
                for feature, result in sorted(sink.results[calc].items()):
                    for array in (result.data, result.times):
                        digest.update(f"{i}/{calc}/{feature}/{array.dtype}{array.shape}".encode())
                        digest.update(array.tobytes())
        print(json.dumps({"hash": digest.hexdigest()}))
        return
    with tempfile.TemporaryDirectory(prefix="cpu-ab-") as folder:
        project = _music.music_project(Path(folder), audio)
        _music.engine_only(audio, MemorySink)  # warm: imports, pool threads, filterbank caches
        _music.end_to_end(project)
        out: dict[str, float] = {}
        for side, run in (
            ("engine", lambda: _music.engine_only(audio, _Discard)),
            ("end_to_end", lambda: _music.end_to_end(project)),
        ):
            c0 = time.process_time()
            out[side + "_wall"] = run()
            out[side] = time.process_time() - c0
    print(json.dumps(out))


class _Discard:
    """A sink that keeps nothing (the engine's work only)."""

    def write(self, calculator_id: str, feature: str, frames: Any) -> None:
        pass

    def close(self, calculator_id: str, metas: Any, times: Any) -> None:
        pass

    def abort(self) -> None:
        pass


def _run(root: Path, audio: Path, **env: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(HERE / "cpu_ab.py"), "--child", str(audio)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root), **env},
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"{root}: the child failed:\n{done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path, nargs="?")
    ap.add_argument("after", type=Path, nargs="?")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # the audio, in a child
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child)
        return
    if args.before is None or args.after is None:
        ap.error("give two checkouts: BEFORE AFTER")
    roots = {"before": args.before.resolve(), "after": args.after.resolve()}
    for name, root in roots.items():
        if not (root / "bench" / "_music.py").is_file():
            raise SystemExit(f"{name}: {root} is not a checkout with bench/_music.py")
    sys.path.insert(0, str(HERE))
    import _music  # this checkout's: both sides read the very same file
    import _util

    audio = _music.real_music(_util.OUT_DIR, args.minutes)
    hashes = {name: _run(root, audio, CPU_AB_HASH="1")["hash"] for name, root in roots.items()}
    print(f"outputs: {'the same bytes' if len(set(hashes.values())) == 1 else 'DIFFERENT'}")
    if len(set(hashes.values())) != 1:
        raise SystemExit(f"outputs differ: {hashes}")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in roots}
    for r in range(args.rounds):
        for name, root in roots.items():
            runs[name].append(_run(root, audio))
            load = os.getloadavg()[0]
            print(f"round {r + 1} {name:6s} " + _line(runs[name][-1]) + f" (load {load:.2f})")
    for side in ("engine", "end_to_end"):
        med = {n: statistics.median(x[side] for x in runs[n]) for n in roots}
        wall = {n: statistics.median(x[side + "_wall"] for x in runs[n]) for n in roots}
        print(
            f"{side}: CPU median before {med['before']:.2f} s, after {med['after']:.2f} s, "
            f"after / before {med['after'] / med['before']:.3f} "
            f"(wall medians {wall['before']:.2f} / {wall['after']:.2f} s)"
        )


def _line(run: dict[str, float]) -> str:
    return (
        f"engine CPU {run['engine']:.2f} s (wall {run['engine_wall']:.2f}), "
        f"end to end CPU {run['end_to_end']:.2f} s (wall {run['end_to_end_wall']:.2f})"
    )


if __name__ == "__main__":
    main()
