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

import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Protocol

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
from diagnostics_app.core.engine_blocks import (
    BlockOutputs,
    FiniteGuard,
    Framer,
    Pending,
    Pieces,
    frame_margin,
    make_block,
    one_blas_thread,
    quiet,
    submit_block,
    submit_pieces,
)
from diagnostics_app.core.engine_blocks import NonFiniteOutput as NonFiniteOutput
from diagnostics_app.core.errors import Cancelled, ParamError
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
    """Receives a pass's outputs; the store's writer implements it. A sink may also have
    ``expect(calculator_id, metas)``: the engine then tells it, before the first frame, the
    layout of every run that knows it at its start (so the store writes each feature in its
    stored encoding directly); optional, so that any sink of three methods still serves."""

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


def to_signal(samples: np.ndarray, params: Params) -> np.ndarray:
    """The signal the calculators see: the channel mean ("mix") or every channel."""
    return _signal(samples, str(params["channel_mode"]))


def _signal(samples: np.ndarray, channel_mode: str) -> np.ndarray:
    if channel_mode == "mix" and samples.shape[0] == 2:
        # the mean's float32 arithmetic without its reduction machinery (3x less CPU): its
        # sum starts from +0.0, so -0.0 + -0.0 gives +0.0 (the "+= 0" does the same), and
        # halving by a multiply is the same correctly rounded value as dividing by 2
        mixed = np.add(samples[0], samples[1])[None]
        mixed += np.float32(0.0)
        mixed *= np.float32(0.5)
        return mixed
    if channel_mode == "mix" and samples.shape[0] > 1:
        return samples.mean(axis=0, keepdims=True, dtype=np.float32)
    return samples


@dataclass(frozen=True)
class PassPlan:
    """One analysis pass: one source, one set of parameters, the calculators to run."""

    path: str
    params: Params
    tempo: TempoMap
    calculators: tuple[Calculator, ...]


@dataclass(frozen=True)
class SourceRun:
    """What :func:`run_source_passes` did: the file's facts (None when they could not be
    read) and, per pass, None when it committed or the error that ended it."""

    info: AudioInfo | None
    errors: tuple[Exception | None, ...]
    complete: bool = False  # the whole file was decoded (every block went to ``on_block``)


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
    done = run_source_passes(
        plan.path, [plan], [sink], [progress], [cancel or CancelToken()], block_frames, info
    )
    if done.errors[0] is not None:
        raise done.errors[0]
    assert done.info is not None
    return done.info


def run_source_passes(
    path: str,
    plans: Sequence[PassPlan],
    sinks: Sequence[FeatureSink],
    progress: Sequence[ProgressFn | None] | None = None,
    cancel: Sequence[CancelToken] | None = None,
    block_frames: int = DEFAULT_BLOCK_FRAMES,
    info: AudioInfo | None = None,
    on_block: Callable[[np.ndarray], None] | None = None,
) -> SourceRun:
    """Run several passes over one source with ONE decode: each decoded block goes to every
    pass (each keeps its own signal, framing, STFT and calculators; a block's work of all the
    passes runs on the pool at once). Blocks are the same as for a pass alone, so every pass's
    outputs are exactly those of :func:`run_pass` with its plan.

    Passes end independently: a pass whose token is cancelled, whose calculator raises or whose
    progress callback raises is aborted (its sink only) and the others go on; decoding stops
    when no pass is left. A decoding error ends every pass still running. Only an interrupt
    (KeyboardInterrupt and other non-``Exception``\\ s) aborts them all and is raised.
    ``on_block`` sees every decoded block (channels, n), in order, on the calling thread
    while the pool analyses that block (not on the decode thread, which is the chain every
    block waits for): core.ranges' block digests come from the same decode. Its error ends
    every pass, as a decoding error does.
    """
    n = len(plans)
    assert len(sinks) == n, "one sink per plan"
    assert all(p.path == path for p in plans), "every plan reads this source"
    with one_blas_thread():
        return _run_source_passes(
            path, plans, sinks, progress, cancel, block_frames, info, on_block
        )


def _run_source_passes(
    path: str,
    plans: Sequence[PassPlan],
    sinks: Sequence[FeatureSink],
    progress: Sequence[ProgressFn | None] | None,
    cancel: Sequence[CancelToken] | None,
    block_frames: int,
    info: AudioInfo | None,
    on_block: Callable[[np.ndarray], None] | None,
) -> SourceRun:
    n = len(plans)
    progress = progress or [None] * n
    cancel = cancel or [CancelToken() for _ in range(n)]
    errors: list[Exception | None] = [None] * n
    live: list[_Pass] = []
    reader: _Reader | None = None
    try:
        try:
            info = info or read_info(path)
        except Exception as exc:
            for sink in sinks:
                sink.abort()
            return SourceRun(None, tuple(exc for _ in plans))
        for i, plan in enumerate(plans):
            try:
                live.append(_Pass(i, plan, sinks[i], progress[i], cancel[i], info))
            except Exception as exc:
                errors[i] = exc
                sinks[i].abort()
        pool = worker_pool()
        if live:
            reader = _Reader(path, block_frames, {p.mode for p in live})
        decoded = 0
        complete = False
        while live:
            live = _each(live, errors, lambda p: p.cancel.raise_if_cancelled())
            if not live:
                break
            assert reader is not None
            try:
                item = reader.next()  # decoded while the previous block was being analysed
            except Exception as exc:
                live = _end_all(live, errors, exc)
                break
            final = item is None
            samples = np.zeros((info.channels, 0), np.float32) if item is None else item[0]
            signals = {} if item is None else item[1]
            # Two blocks in flight per pass: this block's frame-independent pieces are queued
            # before the previous block's tasks are awaited (the workers never wait at a
            # block's end), its other tasks once they are done (those runs see their blocks
            # in order), and the previous block's outputs are written while the pool computes
            # this one (the sink's encoding, checksums and writes overlap the analysis).
            step = partial(_Pass.submit, pool=pool, samples=samples, signals=signals, start=decoded)
            live = _each(live, errors, step)
            live = _each(live, errors, _Pass.collect)
            live = _each(live, errors, partial(_Pass.submit_rest, pool=pool))
            live = _each(live, errors, _Pass.flush)
            if on_block is not None and item is not None:
                try:
                    on_block(samples)
                except Exception as exc:
                    live = _end_all(live, errors, exc)
                    break
            decoded += samples.shape[1]
            live = _each(live, errors, partial(_Pass.report, decoded=decoded, total=info.frames))
            if final:
                complete = True
                break
        if reader is not None:
            reader.close()
        _each(live, errors, lambda p: p.finish())
    except BaseException:
        for p in live:
            p.wait()
        if reader is not None:
            reader.close()
        for p in live:
            p.sink.abort()
        raise
    return SourceRun(info, tuple(errors), complete)


def _end_all(passes: list[_Pass], errors: list[Exception | None], exc: Exception) -> list[_Pass]:
    """Ends every pass with ``exc`` (a decoding error, or ``on_block``'s): each waits for its
    tasks on the pool, then its sink is aborted. No pass is left."""
    for p in passes:
        errors[p.index] = exc
        p.wait()
        p.sink.abort()
    return []


def _each(
    passes: list[_Pass], errors: list[Exception | None], step: Callable[[_Pass], object]
) -> list[_Pass]:
    """``step`` on every pass; the passes it raised for are aborted (their error kept) and
    left out of the result."""
    out = []
    for p in passes:
        try:
            step(p)
        except Exception as exc:
            errors[p.index] = exc
            p.wait()  # none of its tasks may outlive it
            p.sink.abort()
            continue
        out.append(p)
    return out


class _Pass:
    """One pass's state while the shared decode runs: its calculators' runs, its framer, the
    frames it has written."""

    def __init__(
        self,
        index: int,
        plan: PassPlan,
        sink: FeatureSink,
        progress: ProgressFn | None,
        cancel: CancelToken,
        info: AudioInfo,
        window_start: int = 0,
    ) -> None:
        # window_start > 0: the pass sees the file from that sample on (core.engine_window);
        # its frames start at the framer's first frame whose reads all lie in the window
        self.index, self.plan, self.sink, self.progress, self.cancel = (
            index,
            plan,
            sink,
            progress,
            cancel,
        )
        params = plan.params
        # the same checks as a row's (core.resolve); jobs make them before they get here, so
        # a job's message is its row's, and this is for any other caller of the engine
        problem = check_rate(
            plan.calculators, params, info.sample_rate, where=f"{Path(plan.path).name}: "
        )
        if problem is not None:
            raise ParamError(problem.message)
        self.mode = str(params["channel_mode"])
        self.signal_channels = 1 if self.mode == "mix" else info.channels
        ctx = AnalysisContext(
            info.sample_rate, info.channels, self.signal_channels, info.frames, params, plan.tempo
        )
        self.guard = FiniteGuard(plan.calculators, plan.path)
        self.runs = [(c, c.start(ctx)) for c in plan.calculators]
        hint = getattr(sink, "expect", None)
        if hint is not None:  # a writer that can store each feature in its final encoding
            for calc, run in self.runs:
                metas = _metas_at_start(run)
                if metas is not None:
                    hint(calc.id, metas)
        self.spectral = [(c, r) for c, r in self.runs if c.uses_spectrum]
        self.others = [(c, r) for c, r in self.runs if not c.uses_spectrum]
        self.hop = ctx.hop
        self.margin = frame_margin(params)
        self.framer = Framer(self.signal_channels, self.hop, self.margin, window_start)
        self.n_frames = ctx.n_frames
        self.next_frame = self.framer.first_frame
        self.label = Path(plan.path).name
        self._pending: Pending | None = None
        self._ready: BlockOutputs = []  # collected, not yet written (see flush)
        self._block: Block | None = None  # submitted, its other tasks not yet (submit_rest)
        self._pieces: Pieces = {}  # its frame-independent pieces, already on the pool

    def submit(
        self,
        pool: ThreadPoolExecutor,
        samples: np.ndarray,
        signals: Mapping[str, np.ndarray],
        start: int,
    ) -> None:
        """Frames the block (the frames that became complete) and hands it to its
        frame-independent runs on ``pool`` (the others get it in :meth:`submit_rest`); an
        empty ``signals``: the end of the source."""
        final = not signals
        signal = signals.get(self.mode)
        if signal is None:  # the end: frames past it read zeros, as librosa's constant padding
            self.n_frames = 1 + start // self.hop
            self.framer.append(np.zeros((self.signal_channels, self.margin + self.hop), np.float32))
            signal = samples[: self.signal_channels]
        else:
            self.framer.append(signal)
        t_end = (
            self.n_frames if final else min(self.framer.ready_until(self.n_frames), self.n_frames)
        )
        count = max(0, t_end - self.next_frame)
        block = make_block(
            samples, signal, start, self.next_frame, count, final, self.framer, self.plan.params
        )
        assert self._block is None, "submit before the previous block's other tasks"
        self._block, self._pieces = block, submit_pieces(pool, block, self.others)
        self.next_frame += count

    def submit_rest(self, pool: ThreadPoolExecutor) -> None:
        """The submitted block's other tasks, after :meth:`collect` took the previous one's."""
        assert self._block is not None, "submit_rest before submit"
        assert self._pending is None, "submit_rest before the previous block was collected"
        self._pending = submit_block(pool, self._block, self.spectral, self.others, self._pieces)
        self._block, self._pieces = None, {}

    def collect(self) -> None:
        """Waits for the previous block's tasks (none before the first); their outputs are
        written by the next :meth:`flush`, once this block's tasks are queued, so that writing
        overlaps computing."""
        if self._pending is None:
            return
        assert not self._ready, "collect before the previous block was flushed"
        self._ready = self._pending.result()
        self._pending = None
        # the blocks' tasks cut their frames from the buffer they were made with (a snapshot)
        self.framer.drop_before(self.next_frame)

    def flush(self) -> None:
        """Checks and writes the outputs :meth:`collect` took, in calculator order. Outputs
        are never changed once a run returned them (a sink may keep them), so they may be
        written while the next block is being computed."""
        ready, self._ready = self._ready, []
        for calc, outputs in ready:
            for feature, frames in outputs.items():
                self.guard.check(calc, feature, frames)
                self.sink.write(calc.id, feature, frames)

    def wait(self) -> None:
        """Waits for every task of the pass still on the pool (none may outlive it)."""
        futures = [f for fs in self._pieces.values() for f in fs]
        if self._pending is not None:
            futures.extend(self._pending.futures)
        wait(futures)
        self._pending, self._block, self._pieces = None, None, {}

    def report(self, decoded: int, total: int) -> None:
        if self.progress is not None and total:
            self.progress(min(decoded / total, 1.0) * 0.98, self.label)

    def finish(self) -> None:
        self.flush()
        self.collect()  # the last block
        self.flush()
        for calc, run in self.runs:
            self.cancel.raise_if_cancelled()
            with quiet():
                finished = list(run.finish())
            for outputs in finished:
                for feature, frames in outputs.items():
                    self.guard.check(calc, feature, frames)
                    self.sink.write(calc.id, feature, frames)
            metas = run.outputs()
            self.sink.close(calc.id, metas, {f: run.times(f) for f in metas})
        if self.progress is not None:
            self.progress(1.0, self.label)


def _metas_at_start(run: CalculatorRun) -> Mapping[str, OutputMeta] | None:
    """A run's output layout before its first block, when it can tell (the built-ins can);
    None for a run that knows it only later (its outputs are then stored as before)."""
    try:
        with quiet():
            return dict(run.outputs())
    except Exception:
        return None


class _Reader:
    """Decodes the next block on a thread of its own while the current one is analysed
    (libsndfile and numpy release the GIL), with the signal of each channel mode the passes
    use. At most one block is read ahead."""

    def __init__(
        self,
        path: str,
        block_frames: int,
        modes: set[str],
        start: int = 0,
        stop: int | None = None,
    ) -> None:
        whole = start == 0 and stop is None  # the plain call (tests wrap it to count decodes)
        self._blocks = (
            iter_blocks(path, block_frames)
            if whole
            else iter_blocks(path, block_frames, start=start, stop=stop)
        )
        self._modes = sorted(modes)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode")
        self._ahead: Future[tuple[np.ndarray, dict[str, np.ndarray]] | None] | None = self._submit()

    def _read(self) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        samples = next(self._blocks, None)
        if samples is None:
            return None
        return samples, {mode: _signal(samples, mode) for mode in self._modes}

    def _submit(self) -> Future[tuple[np.ndarray, dict[str, np.ndarray]] | None]:
        return self._thread.submit(self._read)

    def next(self) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        """The next (samples, signal per channel mode), or None at the end; raises what
        decoding raised."""
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
