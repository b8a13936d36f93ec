"""The analysis engine: one streaming pass per (source, resolved parameters).

The pass decodes the file once, in blocks; for each block it frames the signal once and
computes one STFT, shared by every spectral calculator, while the other calculators run beside
it on the worker pool. Memory stays flat with the file's length: only one decoded block, the
frame overlap and each calculator's small state are held; outputs go to a :class:`FeatureSink`
as they are produced (the store writes them to disk).

Progress is reported per block; cancellation is checked per block and leaves nothing behind
(the sink is aborted, so no partial output is ever committed).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from diagnostics_app.core.audio import DEFAULT_BLOCK_FRAMES, AudioInfo, iter_blocks, read_info
from diagnostics_app.core.axes import frame_times
from diagnostics_app.core.calculators.base import (
    AnalysisContext,
    Block,
    Calculator,
    CalculatorRun,
    OutputMeta,
)
from diagnostics_app.core.calculators.temporal import PEAKS, PeaksCalculator
from diagnostics_app.core.dsp import stft_magnitude, stft_offset
from diagnostics_app.core.errors import Cancelled, DiagnosticsError, ParamError
from diagnostics_app.core.params import Params, resolve_params
from diagnostics_app.core.resolve import check_rate
from diagnostics_app.core.tempo import TempoMap

ProgressFn = Callable[[float, str], None]


class CancelToken:
    """Cooperative cancellation: set from any thread, checked by the engine between blocks."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled (True) or ``timeout`` s passed (False)."""
        return self._event.wait(timeout)


class FeatureSink(Protocol):
    """Receives a pass's outputs; the store's writer implements it."""

    def write(self, calculator_id: str, feature: str, frames: np.ndarray) -> None: ...

    def close(
        self,
        calculator_id: str,
        metas: Mapping[str, OutputMeta],
        times: Mapping[str, np.ndarray | None],
    ) -> None: ...

    def abort(self) -> None: ...


@dataclass
class FeatureResult:
    meta: OutputMeta
    data: np.ndarray  # (frames, channels, width) float32
    times: np.ndarray  # frame times, seconds


class MemorySink:
    """Collects a pass's outputs in memory (tests, benchmarks, small exports)."""

    def __init__(self) -> None:
        self._parts: dict[tuple[str, str], list[np.ndarray]] = {}
        self.results: dict[str, dict[str, FeatureResult]] = {}
        self.aborted = False

    def write(self, calculator_id: str, feature: str, frames: np.ndarray) -> None:
        self._parts.setdefault((calculator_id, feature), []).append(frames)

    def close(
        self,
        calculator_id: str,
        metas: Mapping[str, OutputMeta],
        times: Mapping[str, np.ndarray | None],
    ) -> None:
        out: dict[str, FeatureResult] = {}
        for feature, meta in metas.items():
            parts = self._parts.pop((calculator_id, feature), [])
            data = (
                np.concatenate(parts, axis=0)
                if parts
                else np.zeros((0, meta.channels, meta.width), np.float32)
            )
            out[feature] = FeatureResult(
                meta,
                data,
                frame_times(meta.frame_start, meta.frame_step, len(data), times.get(feature)),
            )
        self.results[calculator_id] = out

    def abort(self) -> None:
        self._parts.clear()
        self.aborted = True


# --- the worker pool -------------------------------------------------------------------------


@cache
def worker_pool() -> ThreadPoolExecutor:
    """One pool for all numerical work, sized to the machine. numpy and scipy.fft release the
    GIL inside their kernels, so calculators really run in parallel."""
    return ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="calc")


# --- the pass --------------------------------------------------------------------------------


class _Framer:
    """Holds the signal around the current frames and cuts frames of any (length, offset)."""

    def __init__(self, channels: int, hop: int, margin: int) -> None:
        self.hop = hop
        self.margin = margin
        # buffer holds signal samples [start, start + buf.shape[1]); before 0 it is zeros
        self.start = -margin
        self.buf = np.zeros((channels, margin), np.float32)

    def append(self, signal: np.ndarray) -> None:
        self.buf = np.concatenate([self.buf, signal], axis=1) if self.buf.size else signal

    @property
    def end(self) -> int:
        return self.start + self.buf.shape[1]

    def ready_until(self, n_frames: int) -> int:
        """Frames t < result have every sample they may need (t * hop + margin < end)."""
        return min(n_frames, max(0, (self.end - self.margin) // self.hop + 1))

    def frames(self, t0: int, count: int, length: int, offset: int) -> np.ndarray:
        first = t0 * self.hop + offset - self.start
        last = (t0 + count - 1) * self.hop + offset + length - self.start
        assert first >= 0, "frame before the buffered signal"
        assert last <= self.buf.shape[1], "frame past the buffered signal"
        view = np.lib.stride_tricks.sliding_window_view(self.buf[:, first:last], length, axis=1)
        return view[:, :: self.hop]

    def drop_before(self, t: int) -> None:
        keep_from = t * self.hop - self.margin - self.start
        if keep_from > 0:
            # a view: the next append() copies what is kept into a fresh buffer anyway
            self.buf = self.buf[:, keep_from:]
            self.start += keep_from


def to_signal(samples: np.ndarray, params: Params) -> np.ndarray:
    """The signal the calculators see: the channel mean ("mix") or every channel."""
    if params["channel_mode"] == "mix" and samples.shape[0] > 1:
        return samples.mean(axis=0, keepdims=True, dtype=np.float32)
    return samples


@dataclass(frozen=True)
class PassPlan:
    """One analysis pass: one source, one set of parameters, the calculators to run."""

    path: str
    params: Params
    tempo: TempoMap
    calculators: tuple[Calculator, ...]


def run_pass(
    plan: PassPlan,
    sink: FeatureSink,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    block_frames: int = DEFAULT_BLOCK_FRAMES,
    info: AudioInfo | None = None,
) -> AudioInfo:
    """Run every calculator of ``plan`` over the source; outputs go to ``sink``.

    Raises AudioError, ParamError or Cancelled; on any error (also one found before decoding,
    such as a missing file or a bad parameter) the sink is aborted.
    """
    reader: _Reader | None = None
    try:
        info = info or read_info(plan.path)
        params = plan.params
        # the same checks as a row's (core.resolve); jobs make them before they get here, so
        # a job's message is its row's, and this is for any other caller of the engine
        problem = check_rate(
            plan.calculators, params, info.sample_rate, where=f"{Path(plan.path).name}: "
        )
        if problem is not None:
            raise ParamError(problem.message)
        cancel = cancel or CancelToken()
        signal_channels = 1 if params["channel_mode"] == "mix" else info.channels
        ctx = AnalysisContext(
            info.sample_rate, info.channels, signal_channels, info.frames, params, plan.tempo
        )
        guard = _FiniteGuard(plan.calculators, plan.path)
        runs = [(c, c.start(ctx)) for c in plan.calculators]
        spectral = [(c, r) for c, r in runs if c.uses_spectrum]
        others = [(c, r) for c, r in runs if not c.uses_spectrum]
        hop = ctx.hop
        margin = max(params.n_fft, params.get_int("window_size")) + hop
        framer = _Framer(signal_channels, hop, margin)
        pool = worker_pool()
        label = Path(plan.path).name
        reader = _Reader(plan.path, block_frames, params)
        next_frame = 0
        n_frames = ctx.n_frames
        decoded = 0
        final = False
        while not final:
            cancel.raise_if_cancelled()
            item = reader.next()  # decoded while the previous block was being analysed
            if item is None:
                final = True
                samples = np.zeros((info.channels, 0), np.float32)
                # frames past the end read zeros, as librosa's constant padding
                n_frames = 1 + decoded // hop
                framer.append(np.zeros((signal_channels, margin + hop), np.float32))
                signal = samples[:signal_channels]
            else:
                samples, signal = item
                framer.append(signal)
            t_end = n_frames if final else min(framer.ready_until(n_frames), n_frames)
            count = max(0, t_end - next_frame)
            block = _make_block(samples, signal, decoded, next_frame, count, final, framer, params)
            results = _process_block(pool, block, spectral, others)
            for calc, outputs in results:
                for feature, frames in outputs.items():
                    guard.check(calc, feature, frames)
                    sink.write(calc.id, feature, frames)
            decoded += samples.shape[1]
            next_frame += count
            framer.drop_before(next_frame)
            if progress is not None and info.frames:
                progress(min(decoded / info.frames, 1.0) * 0.98, label)
        reader.close()
        for calc, run in runs:
            cancel.raise_if_cancelled()
            with _quiet():
                finished = list(run.finish())
            for outputs in finished:
                for feature, frames in outputs.items():
                    guard.check(calc, feature, frames)
                    sink.write(calc.id, feature, frames)
            metas = run.outputs()
            sink.close(calc.id, metas, {f: run.times(f) for f in metas})
        if progress is not None:
            progress(1.0, label)
    except BaseException:
        if reader is not None:
            reader.close()
        sink.abort()
        raise
    return info


class _Reader:
    """Decodes the next block on a thread of its own while the current one is analysed
    (libsndfile and numpy release the GIL). At most one block is read ahead."""

    def __init__(self, path: str, block_frames: int, params: Params) -> None:
        self._blocks = iter_blocks(path, block_frames)
        self._params = params
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode")
        self._ahead: Future[tuple[np.ndarray, np.ndarray] | None] | None = self._submit()

    def _read(self) -> tuple[np.ndarray, np.ndarray] | None:
        samples = next(self._blocks, None)
        return None if samples is None else (samples, to_signal(samples, self._params))

    def _submit(self) -> Future[tuple[np.ndarray, np.ndarray] | None]:
        return self._thread.submit(self._read)

    def next(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The next (samples, signal), or None at the end; raises what decoding raised."""
        assert self._ahead is not None, "read past the end"
        item = self._ahead.result()
        self._ahead = self._submit() if item is not None else None
        return item

    def close(self) -> None:
        """Waits for a read in flight, then closes the file and the thread (idempotent)."""
        if self._ahead is not None:
            self._ahead.exception()  # wait; its error no longer matters
            self._ahead = None
        close = getattr(self._blocks, "close", None)  # a generator: closes the file
        if close is not None:
            close()
        self._thread.shutdown(wait=True)


def _make_block(
    samples: np.ndarray,
    signal: np.ndarray,
    sample_start: int,
    frame_start: int,
    count: int,
    final: bool,
    framer: _Framer,
    params: Params,
) -> Block:
    def frames(length: int, offset: int) -> np.ndarray:
        if count == 0:
            return np.zeros((framer.buf.shape[0], 0, length), np.float32)
        return framer.frames(frame_start, count, length, offset)

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


def _process_block(
    pool: ThreadPoolExecutor,
    block: Block,
    spectral: Sequence[tuple[Calculator, CalculatorRun]],
    others: Sequence[tuple[Calculator, CalculatorRun]],
) -> list[tuple[Calculator, Mapping[str, np.ndarray]]]:
    """Spectral calculators run one after another on one worker (they share the STFT);
    frame-independent runs are cut into pieces that fill the other workers; every other
    calculator gets a worker of its own. Results come back in calculator order.

    Submission order is longest first (the spectral group, then the pieces, then the rest), so
    the workers finish a block together."""

    def run_group(
        group: Sequence[tuple[Calculator, CalculatorRun]],
    ) -> list[Mapping[str, np.ndarray]]:
        with _quiet():
            return [run.process(block) for _, run in group]

    def run_piece(run: CalculatorRun, piece: Block) -> Mapping[str, np.ndarray]:
        with _quiet():
            return run.process(piece)

    workers = getattr(pool, "_max_workers", os.cpu_count() or 2)
    submitted: list[Future[Any]] = []
    spectral_future = pool.submit(run_group, spectral) if spectral else None
    split: dict[int, list[Future[Mapping[str, np.ndarray]]]] = {}
    for i, (_, run) in enumerate(others):
        if getattr(run, "frames_independent", False) and block.frame_count >= 2 * _MIN_PIECE:
            split[i] = [
                pool.submit(run_piece, run, _sub_block(block, first, n))
                for first, n in _pieces(block.frame_count, workers)
            ]
            submitted.extend(split[i])
    single = {i: pool.submit(run_group, [item]) for i, item in enumerate(others) if i not in split}
    submitted.extend(single.values())
    if spectral_future is not None:
        submitted.append(spectral_future)
    # wait for every task even when one fails: no task may outlive the block (they read the
    # framer's buffer, and a failed pass must leave no calculator running)
    wait(submitted)
    out: list[tuple[Calculator, Mapping[str, np.ndarray]]] = []
    if spectral_future is not None:
        out.extend(zip((c for c, _ in spectral), spectral_future.result(), strict=True))
    for i, (calc, _) in enumerate(others):
        if i in split:
            parts = [f.result() for f in split[i]]
            out.append((calc, {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}))
        else:
            out.append((calc, single[i].result()[0]))
    return out


def _quiet() -> Any:
    """Overflow and invalid-value warnings of numpy inside a calculator: not printed (and not
    raised where warnings are errors). Their result, a non-finite value, is what matters,
    and :class:`_FiniteGuard` reports it with the frames it is in. Per thread: numpy's error
    state does not follow work into the pool's threads, so each task sets it."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")


class NonFiniteOutput(DiagnosticsError):
    """A calculator produced NaN or infinity where its feature declares no meaning for it."""


class _FiniteGuard:
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


def analyse(
    path: str | os.PathLike[str],
    calculators: Iterable[Calculator],
    params: Params,
    tempo: TempoMap | None = None,
    **kwargs: object,
) -> dict[str, dict[str, FeatureResult]]:
    """Convenience: run a pass into memory; ``{calculator_id: {feature: result}}``."""
    sink = MemorySink()
    run_pass(PassPlan(str(path), params, tempo or TempoMap(), tuple(calculators)), sink, **kwargs)  # type: ignore[arg-type]
    return sink.results


def audio_peaks(
    path: str | os.PathLike[str], cancelled: Callable[[], bool] = lambda: False
) -> FeatureResult:
    """The waveform peaks of an audio file, computed by the peaks calculator (``core.peaks``)
    with the default parameters: exactly what a ``peaks`` row analysed with the default
    profile holds. For a view that has no usable stored peaks; raises AudioError, or
    Cancelled once ``cancelled()`` (asked after every decoded block) is true."""
    token = CancelToken()

    def progress(fraction: float, label: str) -> None:
        if cancelled():
            token.cancel()

    calc = PeaksCalculator()
    plan = PassPlan(str(path), resolve_params(), TempoMap(), (calc,))
    sink = MemorySink()
    run_pass(plan, sink, progress=progress, cancel=token)
    return sink.results[calc.id][PEAKS.name]
