"""The engine's block machinery: framing the signal, a block's tasks on the worker pool, and
the check that no non-finite value is written where a feature does not declare one.

Split from :mod:`.engine` (which drives passes over a decode) so that each stays readable; a
pass's blocks are built, run and checked here exactly as they were there.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from diagnostics_app.core.calculators.base import Block, Calculator, CalculatorRun
from diagnostics_app.core.dsp import stft_magnitude, stft_offset
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.params import Params


class Framer:
    """Holds the signal around the current frames and cuts frames of any (length, offset)."""

    def __init__(self, channels: int, hop: int, margin: int, start: int = 0) -> None:
        self.hop = hop
        self.margin = margin
        # buffer holds signal samples [start, start + buf.shape[1]); before 0 it is zeros
        self.start = -margin
        self.buf = np.zeros((channels, margin), np.float32)
        # the first frame whose reads (within ``margin`` of its centre) all lie in the signal
        # given: 0 from the file's start (zeros before it, librosa's padding); from a later
        # ``start`` (a window of the file, core.engine_window) the samples before it are
        # unknown, so the frames that would read them are never cut
        self.first_frame = 0
        if start > 0:
            self.start = start
            self.buf = np.zeros((channels, 0), np.float32)
            self.first_frame = -(-(start + margin) // hop)

    def append(self, signal: np.ndarray) -> None:
        self.buf = np.concatenate([self.buf, signal], axis=1) if self.buf.size else signal

    @property
    def end(self) -> int:
        return self.start + self.buf.shape[1]

    def ready_until(self, n_frames: int) -> int:
        """Frames t < result have every sample they may need (t * hop + margin < end)."""
        return min(n_frames, max(0, (self.end - self.margin) // self.hop + 1))

    def frames(self, t0: int, count: int, length: int, offset: int) -> np.ndarray:
        return _cut(self.buf, self.start, self.hop, t0, count, length, offset)

    def snapshot(self) -> Callable[[int, int, int, int], np.ndarray]:
        """:meth:`frames` of the signal buffered now, whatever is appended or dropped later
        (the buffer is replaced, never changed in place): a block's tasks may still run
        while the next block is framed."""
        return partial(_cut, self.buf, self.start, self.hop)

    def drop_before(self, t: int) -> None:
        # never past what is buffered: a window's first frame may lie beyond its first block
        keep_from = min(t * self.hop - self.margin - self.start, self.buf.shape[1])
        if keep_from > 0:
            # a view: the next append() copies what is kept into a fresh buffer anyway
            self.buf = self.buf[:, keep_from:]
            self.start += keep_from


def frame_margin(params: Params) -> int:
    """Samples a frame may read on either side of its anchor ``t * hop``: the longest frame
    any calculator cuts, plus a hop. What the framer keeps, and where a window's frames start."""
    return max(params.n_fft, params.get_int("window_size")) + params.get_int("hop_size")


def _cut(
    buf: np.ndarray, start: int, hop: int, t0: int, count: int, length: int, offset: int
) -> np.ndarray:
    first = t0 * hop + offset - start
    last = (t0 + count - 1) * hop + offset + length - start
    assert first >= 0, "frame before the buffered signal"
    assert last <= buf.shape[1], "frame past the buffered signal"
    view = np.lib.stride_tricks.sliding_window_view(buf[:, first:last], length, axis=1)
    return view[:, ::hop]


def make_block(
    samples: np.ndarray,
    signal: np.ndarray,
    sample_start: int,
    frame_start: int,
    count: int,
    final: bool,
    framer: Framer,
    params: Params,
) -> Block:
    cut, channels = framer.snapshot(), framer.buf.shape[0]

    def frames(length: int, offset: int) -> np.ndarray:
        if count == 0:
            return np.zeros((channels, 0, length), np.float32)
        return cut(frame_start, count, length, offset)

    def spectrum() -> np.ndarray:
        return stft_magnitude(frames(params.get_int("window_size"), stft_offset(params)), params)

    return Block(samples, signal, sample_start, frame_start, count, final, frames, spectrum)


def _sub_block(block: Block, first: int, count: int) -> Block:
    """Frames [first, first + count) of ``block`` (relative), for frame-independent runs. The
    samples are the whole block's: such a run reads only ``frames()``."""

    def frames(length: int, offset: int) -> np.ndarray:
        return block.frames(length, offset)[:, first : first + count]

    def spectrum() -> np.ndarray:
        return block.magnitude[:, first : first + count]

    return Block(
        block.samples,
        block.signal,
        block.sample_start,
        block.frame_start + first,
        count,
        block.final,
        frames,
        spectrum,
    )


# A run whose class sets ``frames_independent = True`` computes each output frame from its own
# input frame only (YIN): the engine may cut a block's frames into pieces, process them on
# several workers at once and concatenate the outputs in order. Such a run must read nothing
# but ``Block.frames()`` and keep no state between blocks.
_MIN_PIECE = 32  # frames: below this, splitting costs more than it saves


def _pieces(count: int, workers: int) -> list[tuple[int, int]]:
    n = max(1, min(2 * workers, count // _MIN_PIECE))
    bounds = [count * i // n for i in range(n + 1)]
    return [(a, b - a) for a, b in itertools.pairwise(bounds) if b > a]


class Pending:
    """A block's tasks of one pass on the pool; :meth:`result` waits for all of them and
    gives the outputs in calculator order."""

    def __init__(self, futures: list[Future[Any]], assemble: Callable[[], BlockOutputs]) -> None:
        self.futures = futures
        self._assemble = assemble

    def result(self) -> BlockOutputs:
        # wait for every task even when one fails: no task may outlive the block (they read
        # the framer's buffer, and a failed pass must leave no calculator running)
        wait(self.futures)
        return self._assemble()


BlockOutputs = list[tuple[Calculator, Mapping[str, np.ndarray]]]


Pieces = dict[int, list[Future[Mapping[str, np.ndarray]]]]  # per index in ``others``


def submit_pieces(
    pool: ThreadPoolExecutor, block: Block, others: Sequence[tuple[Calculator, CalculatorRun]]
) -> Pieces:
    """The pieces of the block's frame-independent runs (see above), on ``pool``. They keep
    no state between blocks, so they may be submitted before the previous block's tasks are
    done (the engine does, so that the workers never wait at a block's end); every other run
    must see its blocks one after another."""

    def run_piece(run: CalculatorRun, piece: Block) -> Mapping[str, np.ndarray]:
        with quiet():
            return run.process(piece)

    workers = getattr(pool, "_max_workers", os.cpu_count() or 2)
    split: Pieces = {}
    for i, (_, run) in enumerate(others):
        if getattr(run, "frames_independent", False) and block.frame_count >= 2 * _MIN_PIECE:
            split[i] = [
                pool.submit(run_piece, run, _sub_block(block, first, n))
                for first, n in _pieces(block.frame_count, workers)
            ]
    return split


def submit_block(
    pool: ThreadPoolExecutor,
    block: Block,
    spectral: Sequence[tuple[Calculator, CalculatorRun]],
    others: Sequence[tuple[Calculator, CalculatorRun]],
    pieces: Pieces | None = None,
) -> Pending:
    """Spectral calculators run one after another on one worker (they share the STFT);
    frame-independent runs are cut into pieces that fill the other workers (``pieces``: the
    ones :func:`submit_pieces` submitted already); every other calculator gets a worker of its
    own. Results come back in calculator order.

    Submission order is longest first (the spectral group, then the pieces, then the rest), so
    the workers finish a block together; pieces submitted already (the engine's, queued before
    the previous block's tasks were awaited) come before all of them."""

    def run_group(
        group: Sequence[tuple[Calculator, CalculatorRun]],
    ) -> list[Mapping[str, np.ndarray]]:
        with quiet():
            return [run.process(block) for _, run in group]

    spectral_future = pool.submit(run_group, spectral) if spectral else None
    split = submit_pieces(pool, block, others) if pieces is None else pieces
    submitted: list[Future[Any]] = [f for i in sorted(split) for f in split[i]]
    single = {i: pool.submit(run_group, [item]) for i, item in enumerate(others) if i not in split}
    submitted.extend(single.values())
    if spectral_future is not None:
        submitted.append(spectral_future)

    def assemble() -> BlockOutputs:
        out: BlockOutputs = []
        if spectral_future is not None:
            out.extend(zip((c for c, _ in spectral), spectral_future.result(), strict=True))
        for i, (calc, _) in enumerate(others):
            if i in split:
                parts = [f.result() for f in split[i]]
                out.append(
                    (calc, {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]})
                )
            else:
                out.append((calc, single[i].result()[0]))
        return out

    return Pending(submitted, assemble)


def quiet() -> Any:
    """Overflow and invalid-value warnings of numpy inside a calculator: not printed (and not
    raised where warnings are errors). Their result, a non-finite value, is what matters,
    and :class:`FiniteGuard` reports it with the frames it is in. Per thread: numpy's error
    state does not follow work into the pool's threads, so each task sets it."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")


class NonFiniteOutput(DiagnosticsError):
    """A calculator produced NaN or infinity where its feature declares no meaning for it."""


class FiniteGuard:
    """Checks every block a calculator writes: NaN or infinity in a feature that does not
    declare what they mean (``FeatureSpec.nonfinite``) fails the pass, naming the feature,
    the frames and the file, so that nothing non-finite is ever committed under ``ok``. One
    ``isfinite`` per block (a fraction of the block's computation)."""

    def __init__(self, calculators: Iterable[Calculator], path: str) -> None:
        self._allowed = {(c.id, f.name) for c in calculators for f in c.features if f.nonfinite}
        self._name = Path(path).name
        self._written: dict[tuple[str, str], int] = {}

    def check(self, calc: Calculator, feature: str, frames: np.ndarray) -> None:
        key = (calc.id, feature)
        first = self._written.get(key, 0)
        self._written[key] = first + len(frames)
        if key in self._allowed or frames.dtype.kind not in "fc":
            return
        finite = np.isfinite(frames)
        if finite.all():
            return
        bad = np.flatnonzero(~finite.reshape(len(frames), -1).all(axis=1)) + first
        where = f"frame {bad[0]}" if len(bad) == 1 else f"frames {bad[0]}–{bad[-1]}"
        raise NonFiniteOutput(
            f"{self._name}: {calc.id} produced non-finite values (NaN or infinity) in "
            f"{feature!r} at {where} ({len(bad)} frame{'s' if len(bad) != 1 else ''})"
        )


class _BlasThreads:
    """The BLAS libraries (OpenBLAS, under numpy's and scipy's matrix products: the mel and
    chroma filterbanks) at one thread while any pass runs, their own count again after the last.

    The engine's pool is the parallelism: a block's tasks already keep every core busy, and a
    BLAS call that starts its own threads inside them only oversubscribes the cores (its
    threads also spin for a while after each call). On 2 cores that was ~12 % of the CPU of
    ``analyze`` on real music (bench/analysis.py: librosa / ours 7.2x -> 8.3x). Dask's workers
    set the same limit through their environment for the same reason. Counted, so passes
    running at once (``analyze --jobs``) leave the limit in place until the last one ends.

    A limit of the bundled OpenBLAS (0.3.30-0.3.31, pthreads): once the main thread has set
    its count, a count set from another thread has no effect. The passes of ``analyze`` (its
    main thread, or only its job threads with ``--jobs``) and of the window's worker processes
    (each process's main thread) never mix the two; a program that runs passes on both its
    main thread and others keeps BLAS's threads on the others (slower, never different)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._limiter: Any = None
        self._controller: Any = None
        self._loaded = 0  # len(sys.modules) when the controller was made

    @contextmanager
    def one(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._limiter = self._limit()
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._limiter is not None:
                    self._limiter.restore_original_limits()
                    self._limiter = None

    def _limit(self) -> Any:
        import scipy.fft  # noqa: F401  (deferred elsewhere; it loads scipy's OpenBLAS)
        from threadpoolctl import ThreadpoolController  # deferred: start-up time

        # the BLAS libraries loaded (numpy's, and scipy's once a module of it that links one
        # is imported): found again when an import may have loaded another (a scan: ~3 ms)
        loaded = len(sys.modules)
        if self._controller is None or loaded != self._loaded:
            self._controller, self._loaded = ThreadpoolController(), loaded
        return self._controller.limit(limits=1, user_api="blas")


_BLAS = _BlasThreads()


def one_blas_thread() -> AbstractContextManager[None]:
    """While analysing: BLAS at one thread (see :class:`_BlasThreads`)."""
    return _BLAS.one()
