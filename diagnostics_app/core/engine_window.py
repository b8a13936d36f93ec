"""Recompute only the frames an edit touches (issue 13): decode the needed spans of the new
audio, run the calculators over them, keep the wanted frames.

**Windows.** Each wanted frame range needs a span of samples (below); spans are widened to
whole digest blocks (the start aligned down, the end aligned up or to the file's end) so that
``expected`` can verify every decoded block, and spans that overlap or touch are merged: one
window, one seek, one fresh pass (core.engine's ``_Pass``) per window. A window that starts at
sample 0 gets the normal zero padding before it; one that reaches the end gets the final block
(zeros after the end, the final frame count) exactly as the full pass.

**Which frames a window's runs emit, and where they start** (the frame-index rule):

- *framed* runs (a declared reach with ``before > 0``: rms, the STFT features, pitch) see
  ``Block.frames`` from the window's first frame whose reads all lie in the window,
  ``ceil((window_start + margin) / hop)`` (0 for a window at sample 0), to the last frame the
  window's samples complete; a wanted range ``[a, b]`` needs samples
  ``[a * hop - margin, b * hop + margin)`` (``margin``: :func:`~core.engine_blocks.frame_margin`).
- *sample-blocked* runs (``before == 0``: peaks) emit from ``window_start // step``; the
  window start must be a multiple of ``step`` (it is when ``step`` divides the digest block),
  else :class:`PartialUnsupported`. ``[a, b]`` needs ``[a * step, (b + 1) * step)``.
- *beat* runs (beat_rms, explicit times) emit every frame at finish, from 0: frame ``k`` is
  exact when its segment ``[bounds[k], bounds[k + 1])`` lies in the window, so ``[a, b]`` needs
  ``[bounds[a], bounds[b + 1])``, the wanted frames are kept and the rest dropped.
- any other run (unbounded reach: onset, plugins that declare none) is exact only over the
  whole file: any of its frames needs the window ``[0, end)``.

Every run's output count is checked against its rule, and every wanted frame must be covered;
anything else raises :class:`PartialUnsupported` (the caller recomputes whole: never a guess).

**Exactness.** The wanted frames are bit-identical to a full :func:`~core.engine.run_pass` of
the same plan (``tests/core/test_partial_engine.py``): a frame is computed from the same framed
samples by the same code, and the decode keeps the full decode's block grid
(:func:`~core.audio.iter_blocks`' ``start``), so per-block accumulations (beat_rms's segment
sums) add the same pieces in the same order. No tolerance is needed.

**Seeking.** libsndfile seeks WAV and FLAC sample-exactly (the tests). Ogg Vorbis, measured on a
singularity song (48 kHz stereo, Awakening.ogg, 9,984,000 frames): 62 windowed decodes (40
random starts, 22 at multiples of 65,536) were bit-identical to the full decode, and a partial
recomputation of rms, spectrogram, pitch and peaks there equalled the full one while decoding
393,216 of the 9,984,000 samples; a generated Ogg is checked in the tests. Whatever a format
does, ``expected`` (the new audio's block digests) guards it: a decoded block whose digest
differs raises :class:`PartialUnsupported` before any frame is returned (tested with a seek
that lands one sample late). Without ``expected`` a lossy format is refused (its header length
is an estimate).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diagnostics_app.core import hashing
from diagnostics_app.core.audio import DEFAULT_BLOCK_FRAMES, AudioInfo, read_info
from diagnostics_app.core.calculators.base import (
    Calculator,
    OutputMeta,
    declared_reach,
)
from diagnostics_app.core.calculators.temporal import BeatRmsCalculator
from diagnostics_app.core.engine import (
    CancelToken,
    MemorySink,
    PassPlan,
    ProgressFn,
    _metas_at_start,
    _Pass,
    _Reader,
    worker_pool,
)
from diagnostics_app.core.engine_blocks import frame_margin, one_blas_thread
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.params import Params
from diagnostics_app.core.ranges import (
    BLOCK_FRAMES,
    BlockDigests,
    BlockHasher,
    FrameRange,
    SampleRange,
    affected_frames,
)
from diagnostics_app.core.tempo import TempoMap


class PartialUnsupported(DiagnosticsError):
    """This recomputation cannot be partial: the caller recomputes whole (the message says
    why, in one line)."""


@dataclass(frozen=True)
class WindowedFrames:
    first: int  # frame index (in the NEW data) of data[0]
    data: np.ndarray  # (frames, channels, width) float32, exactly the frames of the wanted range
    times: np.ndarray | None  # explicit times of those frames for timed features, else None


@dataclass(frozen=True)
class PartialResult:
    frames: Mapping[str, Mapping[str, tuple[WindowedFrames, ...]]]  # id -> feature -> per range
    metas: Mapping[str, Mapping[str, OutputMeta]]  # id -> its run's outputs()
    n_frames: Mapping[str, Mapping[str, int]]  # id -> feature -> frames of the NEW full data
    decoded: int  # samples (frames per channel) decoded
    total: int  # samples in the file


# --- the planner's helpers -------------------------------------------------------------------


def wanted_frames(
    calc: Calculator,
    params: Params,
    sample_rate: int,
    spans: Sequence[SampleRange],
    n_frames_new: int,
    *,
    tempo: TempoMap | None = None,
    n_samples: int | None = None,
) -> tuple[FrameRange, ...] | None:
    """The frames of the NEW data whose reads overlap the changed sample ``spans``
    (:func:`core.ranges.affected_frames` on the calculator's declared reach); None when the
    reach is unbounded (recompute whole). beat_rms, whose frames are the tempo map's
    segments, is bounded given ``tempo`` and ``n_samples`` (the new file's header count, as
    its run's ``AnalysisContext.n_samples``): ``BeatRmsCalculator.audio_reach``."""
    if isinstance(calc, BeatRmsCalculator) and tempo is not None and n_samples is not None:
        return calc.audio_reach(params, sample_rate, n_samples, tempo, spans)
    reach = declared_reach(calc, params, sample_rate)
    if reach is None:
        return None
    return affected_frames(spans, reach, n_frames_new)


def tempo_changed_from(
    calc: Calculator,
    params: Params,
    sample_rate: int,
    n_samples: int,
    old_tempo: TempoMap,
    new_tempo: TempoMap,
) -> int | None:
    """For a tempo-reading calculator: the first frame whose segment differs between the two
    tempo maps over the file's ``n_samples`` (the header's count, as the run's
    ``AnalysisContext.n_samples``) (frames before it are bit-identical; the rest, to the new end,
    are wanted), the frame count when none differs, or None when nothing can be kept (frame
    0 differs, or the calculator declares no tempo reach: a plugin)."""
    if not calc.uses_tempo:
        raise ValueError(f"{calc.id} does not read the tempo map")
    if not isinstance(calc, BeatRmsCalculator):
        return None
    try:
        return calc.tempo_reach(params, sample_rate, n_samples, old_tempo, new_tempo)
    except DiagnosticsError:  # a map the full recomputation will refuse, with its message
        return None


def aligned(calc: Calculator, params: Params, sample_rate: int, block: int) -> bool:
    """Whether windows starting on multiples of the digest ``block`` suit ``calc`` (the
    frame-index rule, which ``_kind`` and ``_check_starts`` enforce: a sample-blocked run
    starts on one of its blocks, so its step must divide ``block`` (``peaks_block`` 1000 does
    not divide 65,536); a framed run steps by ``hop_size``). The caller leaves a calculator
    that does not to the full pass before the windows are planned: one such calculator must
    not make the windowed recomputation of the others fall back."""
    if isinstance(calc, BeatRmsCalculator):
        return True
    reach = declared_reach(calc, params, sample_rate)
    if reach is None:
        return True
    if reach.before == 0:
        return block % reach.step == 0
    return reach.step == params.get_int("hop_size")


# --- planning --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    """How a calculator's frames map to samples (the frame-index rule of the module)."""

    name: str  # "framed" | "blocked" | "beats" | "whole"
    step: int = 0  # blocked: samples per frame
    bounds: np.ndarray | None = None  # beats: segment sample bounds
    times: np.ndarray | None = None  # beats: frame times


@dataclass(frozen=True)
class _Need:
    calc: str
    index: int  # position in the calculator's wanted ranges
    first: int
    last: int
    start: int  # samples [start, stop) the frames read
    stop: int
    unbounded: bool = False  # its frame count is known only from its run


@dataclass(frozen=True)
class _Window:
    start: int
    stop: int  # == total: reaches the end (decoded to the end of the file)
    needs: tuple[_Need, ...]


def _kind(calc: Calculator, plan: PassPlan, info: AudioInfo) -> _Kind:
    params, sr = plan.params, info.sample_rate
    if isinstance(calc, BeatRmsCalculator):
        times, bounds = calc.segment_bounds(params, sr, info.frames, plan.tempo)
        return _Kind("beats", bounds=bounds, times=times)
    reach = declared_reach(calc, params, sr)
    if reach is None:
        return _Kind("whole")
    if reach.before == 0:
        return _Kind("blocked", step=reach.step)
    if reach.step != params.get_int("hop_size"):
        raise PartialUnsupported(
            f"{calc.id}: its reach steps {reach.step} samples, its frames hop_size"
        )
    return _Kind("framed")


def _frame_total(kind: _Kind, params: Params, total: int) -> int | None:
    """Frames of the new full data by the kind's rule (None: known only from a whole run)."""
    if kind.name == "framed":
        return 1 + total // params.get_int("hop_size")
    if kind.name == "blocked":
        return -(-total // kind.step)
    if kind.name == "beats":
        assert kind.times is not None
        return len(kind.times)
    return None


def _span(kind: _Kind, params: Params, first: int, last: int, total: int) -> SampleRange:
    """The samples frames ``[first, last]`` read, by the kind's rule (clipped to the file)."""
    if kind.name == "framed":
        hop, margin = params.get_int("hop_size"), frame_margin(params)
        a, b = first * hop - margin, last * hop + margin
    elif kind.name == "blocked":
        a, b = first * kind.step, (last + 1) * kind.step
    elif kind.name == "beats":
        assert kind.bounds is not None
        a, b = int(kind.bounds[first]), int(kind.bounds[last + 1])
    else:
        a, b = 0, total
    return max(0, a), min(total, b)


def _windows(needs: Sequence[_Need], block: int, total: int) -> list[_Window]:
    """The needed spans widened to whole digest blocks, merged where they overlap or touch."""
    out: list[_Window] = []
    for need in sorted(needs, key=lambda n: n.start):
        start = need.start // block * block
        stop = min(total, -(-max(need.stop, start + 1) // block) * block)
        if out and start <= out[-1].stop:
            out[-1] = _Window(out[-1].start, max(out[-1].stop, stop), (*out[-1].needs, need))
        else:
            out.append(_Window(start, stop, (need,)))
    return out


# --- the recomputation -----------------------------------------------------------------------


def recompute_frames(
    plan: PassPlan,
    wanted: Mapping[str, Sequence[tuple[int, int]]],
    *,
    expected: BlockDigests | None = None,
    info: AudioInfo | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    block_frames: int = DEFAULT_BLOCK_FRAMES,
) -> PartialResult:
    """The ``wanted`` frames (calculator id -> inclusive ``[first, last]`` frame ranges of the
    NEW data, ascending, merged; the last may run past the new end, it is cut there) of
    ``plan``'s calculators, bit-identical to a full :func:`~core.engine.run_pass` of the same
    plan and ``block_frames``, decoding only the windows they need (module docstring).

    ``expected``: the new audio's block digests; every decoded block must match them (else
    PartialUnsupported). Without them the windows align to :data:`core.ranges.BLOCK_FRAMES`
    and a lossy format (whose header length is an estimate) is refused. Raises
    PartialUnsupported, AudioError, ParamError, Cancelled; ValueError for ranges that are not
    ascending frame ranges of the new data."""
    info = info or read_info(plan.path)
    cancel = cancel or CancelToken()
    calcs = {c.id: c for c in plan.calculators}
    unknown = sorted(set(wanted) - set(calcs))
    if unknown:
        raise ValueError(f"wanted frames of calculators not in the plan: {', '.join(unknown)}")
    total, block = _total(info, expected)
    kinds = {cid: _kind(calcs[cid], plan, info) for cid in wanted}
    counts: dict[str, int] = {}
    needs: list[_Need] = []
    for cid, ranges in wanted.items():
        n = _frame_total(kinds[cid], plan.params, total)
        if n is None and not ranges:
            raise PartialUnsupported(f"{cid}: unbounded reach, its frames are known only whole")
        if n is not None:
            counts[cid] = n
        needs.extend(_needs(cid, ranges, kinds[cid], plan.params, total, n))
    windows = _windows(needs, block, total)
    for w in windows:
        _check_starts(w, kinds)
    to_decode = sum(w.stop - w.start for w in windows)
    label = Path(plan.path).name
    decoded = 0

    def tick(n: int) -> None:
        nonlocal decoded
        decoded += n
        if progress is not None and to_decode:
            progress(min(decoded / to_decode, 1.0) * 0.98, label)

    frames: dict[str, dict[str, list[WindowedFrames]]] = {cid: {} for cid in wanted}
    metas: dict[str, dict[str, OutputMeta]] = {}
    for w in windows:
        ids = sorted({n.calc for n in w.needs})
        sub = PassPlan(plan.path, plan.params, plan.tempo, tuple(calcs[i] for i in ids))
        with one_blas_thread():
            results, first_frame, cut = _run_window(
                sub, info, w, total, block, block_frames, expected, tick, cancel
            )
        for cid in ids:
            metas.setdefault(cid, dict(results[cid].metas))
            for feature, data, times in results[cid].features:
                start = _output_start(cid, kinds[cid], w, first_frame, len(data), cut, total)
                end = counts.setdefault(cid, start + len(data))  # an unbounded run: its own
                if w.stop == total and start + len(data) != end:
                    raise PartialUnsupported(
                        f"{cid}/{feature}: {start + len(data)} frames at the end, expected {end}"
                    )
                kept = _keep(f"{cid}/{feature}", w, [n for n in w.needs if n.calc == cid], start)
                frames[cid].setdefault(feature, []).extend(kept(data, times))
    _fill_idle(plan, info, wanted, calcs, metas)
    if progress is not None:
        progress(1.0, label)
    return PartialResult(
        frames={cid: {f: tuple(frames[cid].get(f, ())) for f in metas[cid]} for cid in wanted},
        metas=metas,
        n_frames={cid: {f: counts[cid] for f in metas[cid]} for cid in wanted},
        decoded=decoded,
        total=total,
    )


def _keep(
    name: str, w: _Window, needs: Sequence[_Need], start: int
) -> Callable[[np.ndarray, np.ndarray | None], list[WindowedFrames]]:
    """The wanted ranges cut from a run's outputs over ``w`` (which start at frame
    ``start``); PartialUnsupported unless the outputs cover every one."""

    def cut(data: np.ndarray, times: np.ndarray | None) -> list[WindowedFrames]:
        out = []
        for need in needs:
            # an unbounded run's count is its own: its last range is cut at its end
            last = min(need.last, start + len(data) - 1) if need.unbounded else need.last
            if need.first < start or last >= start + len(data) or need.first > last:
                raise PartialUnsupported(
                    f"{name}: frames {need.first}-{need.last} are not all computed by the "
                    f"window of samples {w.start}-{w.stop}"
                )
            a, b = need.first - start, last + 1 - start
            kept_times = None if times is None else times[a:b].copy()
            out.append(WindowedFrames(need.first, data[a:b].copy(), kept_times))
        return out

    return cut


def _total(info: AudioInfo, expected: BlockDigests | None) -> tuple[int, int]:
    """The new audio's length in samples and the window alignment."""
    if expected is None:
        if info.length_is_estimate:
            raise PartialUnsupported(
                f"{Path(info.path).name}: {info.format}'s header length is an estimate and "
                "no block digests were given"
            )
        return info.frames, BLOCK_FRAMES
    if (expected.sample_rate, expected.channels) != (info.sample_rate, info.channels) or (
        not info.length_is_estimate and expected.frames != info.frames
    ):
        raise PartialUnsupported(
            f"{Path(info.path).name}: the block digests describe other audio "
            f"({expected.frames} frames at {expected.sample_rate} Hz, {expected.channels} ch)"
        )
    return expected.frames, expected.block_frames


def _needs(
    cid: str,
    ranges: Sequence[tuple[int, int]],
    kind: _Kind,
    params: Params,
    total: int,
    n: int | None,
) -> list[_Need]:
    out: list[_Need] = []
    end = -1
    for i, (first, last) in enumerate(ranges):
        if n is not None:
            if first == n and i == len(ranges) - 1 and end < first <= last:
                # the last range, from the new end on, cut there: nothing (a tempo change past
                # the file's end re-cuts no beat; tempo_changed_from gives the frame count)
                continue
            if first >= n:
                raise ValueError(f"{cid}: wanted frame {first} is past the new data's {n} frames")
            last = min(last, n - 1)
        if first <= end or first > last:
            raise ValueError(f"{cid}: wanted frames [{first}, {last}] are not ascending ranges")
        end = last
        start, stop = _span(kind, params, first, last, total)
        out.append(_Need(cid, i, first, last, start, stop, n is None))
    return out


def _check_starts(w: _Window, kinds: Mapping[str, _Kind]) -> None:
    """Refuse, before decoding, a window a run cannot start at (see the frame-index rule; an
    unbounded run's window is the whole file, see ``_span``)."""
    for need in w.needs:
        kind = kinds[need.calc]
        if w.start == 0:
            continue
        if kind.name == "blocked" and w.start % kind.step:
            raise PartialUnsupported(
                f"{need.calc}: a window at sample {w.start} does not start on one of its "
                f"{kind.step}-sample blocks"
            )


@dataclass(frozen=True)
class _Outputs:
    metas: Mapping[str, OutputMeta]
    features: tuple[tuple[str, np.ndarray, np.ndarray | None], ...]  # feature, data, times


def _run_window(
    plan: PassPlan,
    info: AudioInfo,
    w: _Window,
    total: int,
    block: int,
    block_frames: int,
    expected: BlockDigests | None,
    tick: Callable[[int], None],
    cancel: CancelToken,
) -> tuple[dict[str, _Outputs], int, int]:
    """One pass over the window's samples (core.engine's ``_Pass`` from the window's start):
    the runs' outputs, the first frame the framer cut and how many it cut."""
    final = w.stop == total
    sink = MemorySink()
    p = _Pass(0, plan, sink, None, cancel, info, window_start=w.start)
    # digested as the blocks it is checked against were (older stores: BLAKE2b, core.hashing)
    algorithm = hashing.CURRENT if expected is None else expected.algorithm
    hasher = BlockHasher(info.sample_rate, info.channels, block, algorithm)
    stop = None if final else w.stop  # to the end: the end's checks and its final block
    reader = _Reader(plan.path, block_frames, {p.mode}, w.start, stop)
    pool = worker_pool()
    at = w.start
    try:
        while True:
            cancel.raise_if_cancelled()
            item = reader.next()
            if item is None and not final:
                break  # the window ends inside the file: no final block, no zeros after it
            samples = np.zeros((info.channels, 0), np.float32) if item is None else item[0]
            # the engine's order for a block (core.engine.run_source_passes): its pieces, the
            # previous block's outputs, its other tasks, the previous block's writes
            p.submit(pool, samples, {} if item is None else item[1], at)
            p.collect()
            p.submit_rest(pool)
            p.flush()
            if item is not None:
                hasher.feed(samples)
            at += samples.shape[1]
            tick(samples.shape[1])
            if item is None:
                break
        reader.close()
        _verify(hasher, expected, w, at, final, info)
        p.finish()
    except BaseException:
        p.wait()
        reader.close()
        sink.abort()
        raise
    out = {
        cid: _Outputs(
            {f: r.meta for f, r in feats.items()},
            tuple(
                (f, r.data, r.times if r.meta.frame_step is None else None)
                for f, r in feats.items()
            ),
        )
        for cid, feats in sink.results.items()
    }
    return out, p.framer.first_frame, p.next_frame - p.framer.first_frame


def _verify(
    hasher: BlockHasher,
    expected: BlockDigests | None,
    w: _Window,
    at: int,
    final: bool,
    info: AudioInfo,
) -> None:
    """The window decoded what it should: its length, and every block's digest."""
    name = Path(info.path).name
    if not final and at != w.stop:
        raise PartialUnsupported(f"{name}: the decode ended at frame {at}, before {w.stop}")
    if expected is None:
        return
    if final and at != expected.frames:
        raise PartialUnsupported(
            f"{name}: {at} frames decoded, the block digests describe {expected.frames}"
        )
    got = hasher.result()
    first = w.start // expected.block_frames
    for i in range(got.count):
        if first + i >= expected.count or got.block(i) != expected.block(first + i):
            seconds = (first + i) * expected.block_frames / info.sample_rate
            raise PartialUnsupported(
                f"{name}: the decoded block at {seconds:.2f} s differs from its digest "
                "(the file changed, or the seek is not sample-exact)"
            )


def _output_start(
    cid: str, kind: _Kind, w: _Window, first_frame: int, length: int, cut: int, total: int
) -> int:
    """Where a run's outputs over window ``w`` start (the frame-index rule), after checking
    that the run emitted what its rule says."""
    if kind.name == "beats":
        assert kind.times is not None
        if length != len(kind.times):
            raise PartialUnsupported(f"{cid}: {length} beat frames, expected {len(kind.times)}")
        return 0
    if kind.name == "whole":
        return 0
    if kind.name == "framed":
        if length != cut:
            raise PartialUnsupported(f"{cid}: {length} frames for the {cut} frames cut")
        return first_frame
    # full blocks only inside the file; the last, partial block at its end
    span = w.stop - w.start
    blocks = -(-span // kind.step) if w.stop == total else span // kind.step
    if length != blocks:
        raise PartialUnsupported(f"{cid}: {length} frames for {blocks} blocks of samples")
    return w.start // kind.step


def _fill_idle(
    plan: PassPlan,
    info: AudioInfo,
    wanted: Mapping[str, Sequence[tuple[int, int]]],
    calcs: Mapping[str, Calculator],
    metas: dict[str, dict[str, OutputMeta]],
) -> None:
    """The layouts of wanted calculators that no window ran (no frame wanted): from a run
    started but fed nothing."""
    idle = tuple(calcs[cid] for cid in wanted if cid not in metas)
    if not idle:
        return
    p = _Pass(
        0,
        PassPlan(plan.path, plan.params, plan.tempo, idle),
        MemorySink(),
        None,
        CancelToken(),
        info,
    )
    for calc, run in p.runs:
        known = _metas_at_start(run)
        if known is None:
            raise PartialUnsupported(f"{calc.id}: its output layout is known only after a run")
        metas[calc.id] = dict(known)
