"""BLAS at one thread while the engine analyses (its pool is the parallelism; BLAS threads inside
its tasks only oversubscribe the cores), its own count again afterwards, and passes running at
once keep the limit until the last ends. Asserted on the libraries' thread counts as
threadpoolctl reads them, with BLAS set to two threads first (whatever the machine's default)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.engine import MemorySink, PassPlan, run_pass
from diagnostics_app.core.engine_blocks import _BlasThreads
from diagnostics_app.core.params import resolve_params
from diagnostics_app.core.tempo import TempoMap
from tests.core import audio_factory as af

SR = 22050


def _blas() -> list[int]:
    return [int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]


class _Watching(MemorySink):
    """Notes BLAS's thread counts at each write (on the engine's thread, mid-pass)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[int]] = []

    def write(self, calculator_id: str, feature: str, frames: np.ndarray) -> None:
        self.seen.append(_blas())
        super().write(calculator_id, feature, frames)


def test_a_pass_runs_blas_at_one_thread_and_gives_its_count_back(tmp_path: Path) -> None:
    path = af.write_float_wav(tmp_path / "a.wav", af.stereo(3.0, SR), SR)
    mel = Registry.builtin().get("core.mel")
    plan = PassPlan(str(path), resolve_params(), TempoMap(), (mel,))
    with threadpool_limits(limits=2, user_api="blas"):
        assert _blas() and set(_blas()) == {2}
        sink = _Watching()
        run_pass(plan, sink, block_frames=1 << 14)
        assert sink.seen and all(set(counts) == {1} for counts in sink.seen)
        assert set(_blas()) == {2}  # given back


def test_passes_at_once_keep_one_thread_until_the_last_ends() -> None:
    guard = _BlasThreads()
    with threadpool_limits(limits=2, user_api="blas"):
        first, second = guard.one(), guard.one()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert set(_blas()) == {1}  # the second pass still runs
        second.__exit__(None, None, None)
        assert set(_blas()) == {2}


def test_a_pass_on_another_thread_sees_the_same_limit(tmp_path: Path) -> None:
    """OpenBLAS's count is the process's: set by the engine's thread, it holds in the pool's."""
    guard = _BlasThreads()
    seen: list[list[int]] = []
    with threadpool_limits(limits=2, user_api="blas"), guard.one():
        worker = threading.Thread(target=lambda: seen.append(_blas()))
        worker.start()
        worker.join()
    assert seen and set(seen[0]) == {1}
