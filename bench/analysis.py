"""Benchmark: the analysis engine against the equivalent librosa calls, and its memory.

    .venv/bin/python bench/analysis.py [--runs 5] [--minutes 10] [--long-minutes 60]
        [--music-minutes 10] [--runs-music 3] [--skip-music] [--skip-speed] [--skip-memory]

1. Generates music-like stereo 44.1 kHz 16-bit WAVs (chords of harmonics, a lead line with
   vibrato, clicks on every beat, noise) into bench/out/ (gitignored; reused by later runs).
2. Speed, in this process, on the same file, alternating the sides run by run: our engine
   computing all nine built-in features in one pass (``run_pass`` with every built-in
   calculator, default profile, 120 BPM tempo map), once with a sink that writes the outputs
   to raw files on disk (as the store does) and once with a sink that discards them; and the
   librosa calls a user would write for the same features (sf.read, channel mean, then
   stft/melspectrogram/chroma_stft/spectral_centroid/onset_strength/rms/yin, numpy peaks and
   beat RMS; see ``run_librosa``). librosa is warmed up first (numba compilation excluded).
   Prints the medians of ``--runs`` runs, the ratio, and the parity of both sides' outputs.
3. Memory and scaling: peak RSS (VmHWM) and time of one pass over the short and the long
   file, each in a fresh subprocess (after a 3 s warm-up pass), alternating the files
   ``--runs-scaling`` times; outputs are discarded (``--sink disk`` writes them instead).

4. Real music (``bench/_music.py``, first): 48 kHz stereo Ogg Vorbis songs concatenated to
   ``--music-minutes``; the nine built-ins plus pitch with its own fmin/fmax (two passes over
   one source). Prints end-to-end ``analyze`` on a fresh store / engine only (one decode per
   source), the engine pass by pass (a decode each) and librosa / ours, wall and CPU times.
   Each timed side starts after a 1 s pause (``SETTLE_S``): OpenBLAS's threads, which
   librosa's matrix products leave busy-waiting for more work, would otherwise burn a core
   during the next side's timing (~0.4 s of CPU in our end-to-end run), as they cannot in a
   process of its own.

The machine is described at the top (CPU, cores, versions, BLAS) with its load average: on a
shared machine, other processes' load shows up in the wall times (CPU times are also given).
OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE, when set, are reported; to benchmark without them, unset
both for the whole command: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python ...``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _music
import _util

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.engine import MemorySink, PassPlan, run_pass
from diagnostics_app.core.params import (
    PITCH_FMAX_DEFAULT,
    PITCH_FMIN_DEFAULT,
    resolve_params,
)
from diagnostics_app.core.tempo import TempoMap

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.numba_slot import claim_numba_cache

N_FFT, HOP = 2048, 512  # the default profile
BPM, SUBDIVISION, PEAKS_BLOCK = 120.0, 4, 64

# --- sinks -----------------------------------------------------------------------------------


class DiscardSink:
    """Drops every output (counts the bytes)."""

    def __init__(self) -> None:
        self.nbytes = 0

    def write(self, calculator_id: str, feature: str, frames: np.ndarray) -> None:
        self.nbytes += frames.nbytes

    def close(
        self,
        calculator_id: str,
        metas: Mapping[str, OutputMeta],
        times: Mapping[str, np.ndarray | None],
    ) -> None:
        pass

    def abort(self) -> None:
        pass


class DiskSink(DiscardSink):
    """Appends every output to a raw float32 file per feature in a temporary folder, as the
    store does (the store quantises the spectrogram to uint16; this writes float32)."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self.files: dict[tuple[str, str], Any] = {}

    def write(self, calculator_id: str, feature: str, frames: np.ndarray) -> None:
        key = (calculator_id, feature)
        if key not in self.files:
            self.files[key] = open(self.folder / f"{calculator_id}-{feature}.f32", "wb")  # noqa: SIM115
        self.files[key].write(memoryview(np.ascontiguousarray(frames)))
        self.nbytes += frames.nbytes

    def close(
        self,
        calculator_id: str,
        metas: Mapping[str, OutputMeta],
        times: Mapping[str, np.ndarray | None],
    ) -> None:
        for feature in metas:
            f = self.files.pop((calculator_id, feature), None)
            if f is not None:
                f.close()

    def abort(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()


def run_ours(path: Path, sink_kind: str) -> int:
    """One pass of every built-in calculator; returns the bytes of output produced."""
    plan = PassPlan(str(path), resolve_params(), TempoMap(), tuple(Registry.builtin()))
    if sink_kind == "discard":
        sink = DiscardSink()
        run_pass(plan, sink)
        return sink.nbytes
    _util.OUT_DIR.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="sink-", dir=_util.OUT_DIR))
    try:
        disk = DiskSink(folder)
        run_pass(plan, disk)
        return disk.nbytes
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- the librosa side ------------------------------------------------------------------------


def run_librosa(
    path: Path, extra_pitch: Mapping[str, float] | None = None
) -> dict[str, np.ndarray]:
    """What a user would write with librosa (and numpy) for the same nine features (and, with
    ``extra_pitch``, pitch again with those fmin/fmax on the same signal)."""
    claim_numba_cache()  # librosa's numba cache: never shared with a live suite (docs/testing.md)
    import librosa

    audio, sr = sf.read(path, dtype="float32", always_2d=True)  # (n, channels), as librosa.load
    y = audio.mean(axis=1)  # the "mix" signal
    stft_kw = {"n_fft": N_FFT, "hop_length": HOP, "center": True, "pad_mode": "constant"}
    out: dict[str, np.ndarray] = {}
    mag = np.abs(librosa.stft(y, **stft_kw))
    window_sum = librosa.filters.get_window("hann", N_FFT, fftbins=True).sum()
    out["spectrogram"] = np.clip(20 * np.log10(np.maximum(mag * 2 / window_sum, 1e-5)), -80, 0)
    out["mel"] = librosa.power_to_db(
        librosa.feature.melspectrogram(y=y, sr=sr, power=2.0, n_mels=128, **stft_kw),
        ref=1.0,
        amin=1e-10,
        top_db=None,
    )
    out["chroma"] = librosa.feature.chroma_stft(y=y, sr=sr, tuning=0.0, **stft_kw)
    out["centroid"] = librosa.feature.spectral_centroid(y=y, sr=sr, **stft_kw)
    out["onset"] = librosa.onset.onset_strength(
        y=y, sr=sr, n_fft=N_FFT, hop_length=HOP, center=True
    )
    out["rms"] = librosa.feature.rms(
        y=y, frame_length=N_FFT, hop_length=HOP, center=True, pad_mode="constant"
    )
    out["pitch"] = librosa.yin(
        y,
        fmin=PITCH_FMIN_DEFAULT,  # C2
        fmax=PITCH_FMAX_DEFAULT,  # C7
        sr=sr,
        frame_length=N_FFT,
        hop_length=HOP,
        center=True,
        pad_mode="constant",
    )
    if extra_pitch is not None:
        out["pitch_2"] = librosa.yin(
            y,
            sr=sr,
            frame_length=N_FFT,
            hop_length=HOP,
            center=True,
            pad_mode="constant",
            **extra_pitch,
        )
    # min/max per 64 samples per channel (the last, partial block padded with its last sample)
    n = audio.shape[0]
    pad = -n % PEAKS_BLOCK
    padded = np.concatenate([audio, np.repeat(audio[-1:], pad, axis=0)]) if pad else audio
    blocks = padded.reshape(-1, PEAKS_BLOCK, audio.shape[1])
    out["peaks"] = np.stack([blocks.min(axis=1), blocks.max(axis=1)], axis=-1)
    # RMS over each 16th note at 120 BPM
    step = 60.0 / BPM / SUBDIVISION
    starts = np.round(np.arange(0.0, n / sr, step) * sr).astype(np.int64)
    sums = np.add.reduceat(np.square(y, dtype=np.float64), starts)
    out["beat_rms"] = np.sqrt(sums / np.diff(np.append(starts, n)))
    return out


def warm_up_file() -> Path:
    """3 s of stereo noise at 44.1 kHz, for warm-up passes."""
    path = _util.OUT_DIR / "warmup.wav"
    if not path.exists():
        noise = np.random.default_rng(0).standard_normal((44100 * 3, 2)).astype(np.float32)
        _util.OUT_DIR.mkdir(parents=True, exist_ok=True)
        sf.write(path, noise * 0.1, 44100, subtype="FLOAT")
    return path


def warm_up_librosa() -> None:
    """The first librosa call compiles numba code; keep that out of the timings."""
    run_librosa(warm_up_file())


def parity(path: Path, ref: dict[str, np.ndarray]) -> dict[str, float]:
    """Largest differences between our outputs (a MemorySink pass) and librosa's."""
    sink = MemorySink()
    plan = PassPlan(str(path), resolve_params(), TempoMap(), tuple(Registry.builtin()))
    run_pass(plan, sink)
    got = {f: r.data for c in sink.results.values() for f, r in c.items()}

    def line(name: str) -> np.ndarray:
        return got[name][:, 0, 0].astype(np.float64)

    spec_ref = ref["spectrogram"].T
    loud = spec_ref > -60.0  # min_db + 20
    f0 = got["pitch"][:, 0, 0].astype(np.float64)
    voiced = got["pitch"][:, 0, 1] > 0.9
    f0_rel = np.abs(f0 - ref["pitch"]) / ref["pitch"]
    return {
        "spectrogram dB (where > -60 dB)": float(
            np.abs(got["spectrogram"][:, 0] - spec_ref)[loud].max()
        ),
        "mel dB": float(np.abs(got["mel"][:, 0] - ref["mel"].T).max()),
        "chroma (abs)": float(np.abs(got["chroma"][:, 0] - ref["chroma"].T).max()),
        "centroid (rel)": float(
            np.max(np.abs(line("centroid") - ref["centroid"][0]) / ref["centroid"][0])
        ),
        "onset (abs / max)": float(np.abs(line("onset") - ref["onset"]).max() / ref["onset"].max()),
        "rms (rel)": float(np.max(np.abs(line("rms") - ref["rms"][0]) / ref["rms"][0])),
        "f0 (rel, all frames)": float(f0_rel.max()),
        f"f0 (rel, voiced frames: {voiced.mean():.0%})": float(f0_rel[voiced].max())
        if voiced.any()
        else 0.0,
        "peaks (abs)": float(np.abs(got["peaks"] - ref["peaks"]).max()),
        "beat_rms (abs)": float(np.abs(got["beat_rms"][:, 0, 0] - ref["beat_rms"]).max()),
    }


# --- memory, in fresh processes --------------------------------------------------------------


def child(path: Path, sink_kind: str, runs: int) -> None:
    """Subprocess entry: a warm-up pass over 3 s of audio (imports, worker threads, filterbank
    caches: the fixed costs), then ``runs`` timed passes over ``path``; prints JSON with the
    times and the peak RSS (VmHWM, which includes the warm-up and everything imported)."""
    run_ours(warm_up_file(), sink_kind)
    before = _util.peak_rss_mib()
    times, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        run_ours(path, sink_kind)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(
        json.dumps(
            {"times": times, "cpu": cpu, "rss_before": before, "rss_peak": _util.peak_rss_mib()}
        )
    )


def measure_in_subprocess(path: Path, sink_kind: str, runs: int = 1) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", str(path), "--sink", sink_kind, "--runs", str(runs)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def scaling(files: dict[str, Path], sink_kind: str, reps: int) -> dict[str, dict[str, list[float]]]:
    """One timed pass per fresh subprocess, alternating the files ``reps`` times, so that
    machine noise hits both alike."""
    out: dict[str, dict[str, list[float]]] = {
        k: {"times": [], "cpu": [], "rss_peak": [], "rss_before": []} for k in files
    }
    for _ in range(reps):
        for key, path in files.items():
            r = measure_in_subprocess(path, sink_kind)
            for field in ("times", "cpu"):
                out[key][field].extend(r[field])
            out[key]["rss_peak"].append(r["rss_peak"])
            out[key]["rss_before"].append(r["rss_before"])
    return out


# --- report ----------------------------------------------------------------------------------


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt_runs(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="timed runs per side (median reported)")
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the compared file")
    ap.add_argument("--long-minutes", type=float, default=60.0, help="length of the long file")
    ap.add_argument(
        "--sink",
        choices=("disk", "discard"),
        default="discard",
        help="sink of the memory/scaling runs (disk: page-cache writeback adds noise)",
    )
    ap.add_argument(
        "--runs-scaling", type=int, default=5, help="fresh subprocesses per file (memory part)"
    )
    ap.add_argument("--music-minutes", type=float, default=10.0, help="real music, minutes")
    ap.add_argument("--runs-music", type=int, default=3, help="timed runs per side (real music)")
    ap.add_argument("--skip-music", action="store_true", help="skip the real-music part")
    ap.add_argument("--skip-speed", action="store_true", help="skip the librosa comparison")
    ap.add_argument("--skip-memory", action="store_true", help="skip the subprocess part")
    ap.add_argument(
        "--music-in-process",
        action="store_true",
        help="real music: every side in this one process (default: each run in a fresh one)",
    )
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--music-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.sink, args.runs)
        return
    if args.music_child is not None:
        music_child(args.music_child, args.music_minutes)
        return
    warnings.simplefilter("ignore")  # librosa/numba chatter

    print("machine:")
    for key, value in _util.machine().items():
        print(f"  {key:13s} {value}")
    print(f"  load average  {os.getloadavg()[0]:.2f} (1 min) at start")
    t0 = time.perf_counter()
    short = _util.make_audio(args.minutes)
    info = sf.info(short)
    print(
        f"\naudio: {short.name}: {info.duration / 60:.1f} min, {info.channels} ch, "
        f"{info.samplerate} Hz, {info.subtype} ({time.perf_counter() - t0:.1f} s to make or find)"
    )

    if not args.skip_music:
        music(args)
    if not args.skip_speed:
        speed(args, short)
    if not args.skip_memory:
        memory(args, short)
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")


def speed(args: argparse.Namespace, short: Path) -> None:
    warm_up_librosa()
    run_ours(short, "disk")  # warm our side too (imports, filterbank caches, pool threads)
    sides = ("ours-disk", "ours-discard", "librosa")
    wall: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    ref: dict[str, np.ndarray] = {}
    for i in range(args.runs):  # alternate, so machine noise hits every side alike
        for side in sides:
            c0, t0 = time.process_time(), time.perf_counter()
            if side == "librosa":
                result = run_librosa(short)
            else:
                run_ours(short, side.removeprefix("ours-"))
            wall[side].append(time.perf_counter() - t0)
            cpu[side].append(time.process_time() - c0)
            if side == "librosa":
                if i == 0:
                    ref = result
                del result
        print(
            f"  run {i + 1}: "
            + ", ".join(f"{side} {wall[side][-1]:.2f} s" for side in sides)
            + f" (load {os.getloadavg()[0]:.2f})",
            flush=True,
        )
    med = {side: statistics.median(wall[side]) for side in sides}
    t0 = time.perf_counter()
    diffs = parity(short, ref)
    mem_sink_t = time.perf_counter() - t0
    del ref

    print(
        f"\nspeed, {args.minutes:g} min stereo 44.1 kHz, all nine features, median of {args.runs}:"
    )
    names = {
        "ours-disk": "ours, run_pass, outputs written to disk",
        "ours-discard": "ours, run_pass, outputs discarded",
        "librosa": "librosa + numpy (outputs in memory)",
    }
    rows = [("side", "wall s (median)", "runs, wall s", "CPU s (median)")]
    for side in sides:
        rows.append(
            (
                names[side],
                f"{med[side]:.2f}",
                fmt_runs(wall[side]),
                f"{statistics.median(cpu[side]):.2f}",
            )
        )
    rows.append(("ours, analyse-style MemorySink (once)", f"{mem_sink_t:.2f}", "-", "-"))
    print(table(rows))
    for side in ("ours-disk", "ours-discard"):
        ratio = med["librosa"] / med[side]
        print(
            f"ratio librosa / {names[side]}: {ratio:.2f}x "
            f"(target >= 3x: {'met' if ratio >= 3 else 'NOT met'})"
        )

    print("\nparity with librosa on this audio (largest difference):")
    for key, value in diffs.items():
        print(f"  {key:36s} {value:.3g}")


SETTLE_S = 1.0  # the pause before each timed side of the real-music comparison (in process)
MUSIC_SIDES = ("end-to-end", "engine-only", "pass-by-pass", "librosa")
CHILD = (sys.executable, __file__, "--music-child")


def _music_runners(audio: Path, project: Path) -> dict[str, Any]:
    return {
        "end-to-end": lambda: _music.end_to_end(project),
        "engine-only": lambda: _music.engine_only(audio, DiscardSink),
        "pass-by-pass": lambda: _music.engine_pass_by_pass(audio, DiscardSink),
        "librosa": lambda: _music.librosa_calls(audio, run_librosa)[0],
    }


def music_child(side: str, minutes: float) -> None:
    """Subprocess entry: one side of the real-music comparison, once untimed (imports, numba's
    compilation for librosa, pool threads, filterbank and FFT caches: what a second run in
    the same process no longer pays) and once timed; prints JSON with its wall and CPU time.
    A process per run keeps the sides apart: librosa's run leaves OpenBLAS threads spinning
    and a heap of freed gigabytes, which the next side in the same process would pay for."""
    warnings.simplefilter("ignore")  # librosa/numba chatter
    audio = _music.real_music(_util.OUT_DIR, minutes)
    project = _music.music_project(_util.OUT_DIR / "music-project", audio)
    runner = _music_runners(audio, project)[side]
    if side == "librosa":
        warm_up_librosa()
    else:
        runner()
    time.sleep(SETTLE_S)
    c0 = time.process_time()
    wall = runner()
    print(json.dumps({"wall": wall, "cpu": time.process_time() - c0}))


def music(args: argparse.Namespace) -> None:
    """End to end / engine only and librosa / ours on real music (see ``_music``)."""
    audio = _music.real_music(_util.OUT_DIR, args.music_minutes)
    info = sf.info(audio)
    print(
        f"\nreal music: {audio.name}: {info.duration / 60:.1f} min, {info.channels} ch, "
        f"{info.samplerate} Hz, {info.subtype}; nine built-ins + pitch with its own fmin/fmax"
    )
    project = _music.music_project(_util.OUT_DIR / "music-project", audio)
    sides = MUSIC_SIDES
    if args.music_in_process:
        warm_up_librosa()
        _music.end_to_end(project)  # warm: imports, pool threads, filterbank caches
        runners = _music_runners(audio, project)
    print(
        "  each run in "
        + ("this process" if args.music_in_process else "a fresh process (after a warm-up run)"),
        flush=True,
    )
    wall: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    for i in range(args.runs_music):  # alternate, so machine noise hits every side alike
        for side in sides:
            if not args.music_in_process:
                done = subprocess.run(
                    [*CHILD, side, "--music-minutes", str(args.music_minutes)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                timed = json.loads(done.stdout.strip().splitlines()[-1])
                wall[side].append(timed["wall"])
                cpu[side].append(timed["cpu"])
                continue
            # a pause first: threads the previous side's libraries left spinning (OpenBLAS's
            # workers after librosa's matrix products busy-wait for new work a while) must not
            # run into this side's timing, as they would not in a process of its own
            time.sleep(SETTLE_S)
            c0 = time.process_time()  # every thread of this process: steadier under load
            wall[side].append(runners[side]())
            cpu[side].append(time.process_time() - c0)
        print(
            f"  run {i + 1}: "
            + ", ".join(f"{side} {wall[side][-1]:.2f} s" for side in sides)
            + f" (load {os.getloadavg()[0]:.2f})",
            flush=True,
        )
    med = {side: statistics.median(wall[side]) for side in sides}
    med_cpu = {side: statistics.median(cpu[side]) for side in sides}
    rows = [("side", "wall s (median)", "runs, wall s", "CPU s (median)")]
    names = {
        "end-to-end": "analyze on a fresh store (digest, 2 passes, commit)",
        "engine-only": "engine: run_source_passes, outputs discarded",
        "pass-by-pass": "engine: run_pass per pass (a decode each), discarded",
        "librosa": "librosa + numpy (outputs in memory)",
    }
    rows += [(names[k], f"{med[k]:.2f}", fmt_runs(wall[k]), f"{med_cpu[k]:.2f}") for k in sides]
    print(table(rows))
    print(
        f"CPU end-to-end / engine-only: {med_cpu['end-to-end'] / med_cpu['engine-only']:.2f}x; "
        f"CPU librosa / end-to-end: {med_cpu['librosa'] / med_cpu['end-to-end']:.2f}x"
    )
    e2e = med["end-to-end"] / med["engine-only"]
    print(
        f"end-to-end / engine-only: {e2e:.2f}x (target <= 1.3x: {'met' if e2e <= 1.3 else 'NOT met'})"
    )
    lib = med["librosa"] / med["end-to-end"]
    print(
        f"librosa / ours (end to end): {lib:.2f}x (target >= 8x: {'met' if lib >= 8 else 'NOT met'})"
    )
    lib_engine = med["librosa"] / med["engine-only"]
    print(f"librosa / ours (engine only): {lib_engine:.2f}x")
    shared = med["pass-by-pass"] / med["engine-only"]
    print(f"engine, a decode per pass / one decode per source: {shared:.2f}x")


def memory(args: argparse.Namespace, short: Path) -> None:
    long = _util.make_audio(args.long_minutes)
    print(
        f"\nmemory and scaling, each file in a fresh subprocess ({args.sink} sink, outputs not kept):"
    )
    res = scaling({"short": short, "long": long}, args.sink, args.runs_scaling)
    small, large = res["short"], res["long"]
    rows = [
        (
            "file",
            "peak RSS MiB (max)",
            "RSS before pass MiB",
            "wall s (median)",
            "runs, wall s",
            "CPU s (median)",
        )
    ]
    for minutes, r in ((args.minutes, small), (args.long_minutes, large)):
        rows.append(
            (
                f"{minutes:g} min",
                f"{max(r['rss_peak']):.0f}",
                f"{max(r['rss_before']):.0f}",
                f"{statistics.median(r['times']):.2f}",
                fmt_runs(r["times"]),
                f"{statistics.median(r['cpu']):.2f}",
            )
        )
    print(table(rows))
    rss_ratio = max(large["rss_peak"]) / max(small["rss_peak"])
    growth = max(large["rss_peak"]) - max(small["rss_peak"])
    time_ratio = statistics.median(large["times"]) / statistics.median(small["times"])
    cpu_ratio = statistics.median(large["cpu"]) / statistics.median(small["cpu"])
    expected = args.long_minutes / args.minutes
    print(
        f"peak RSS {args.long_minutes:g} / {args.minutes:g} min: {rss_ratio:.3f} "
        f"({growth:+.0f} MiB; target <= 1.2: {'met' if rss_ratio <= 1.2 else 'NOT met'})"
    )
    ok = abs(time_ratio - expected) <= 0.1 * expected
    print(
        f"wall time {args.long_minutes:g} / {args.minutes:g} min: {time_ratio:.2f} "
        f"(target {expected:g} +- {0.1 * expected:g}: {'met' if ok else 'NOT met'})"
    )
    best_ratio = min(large["times"]) / min(small["times"])
    ok = abs(best_ratio - expected) <= 0.1 * expected
    print(
        f"wall time {args.long_minutes:g} / {args.minutes:g} min, fastest runs: {best_ratio:.2f} "
        f"(the least disturbed by other processes; {'within' if ok else 'outside'} the target)"
    )
    print(f"CPU time {args.long_minutes:g} / {args.minutes:g} min: {cpu_ratio:.2f}")


if __name__ == "__main__":
    main()
