"""The engine keeps two blocks in flight per pass: the next block's frame-independent pieces
run while the previous block's other tasks finish, and a block's outputs are written while the
pool computes the next one; runs that keep state still see their blocks one at a time, in
order. Also the framer's snapshots those blocks cut their frames from."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np

from diagnostics_app.core.calculators.base import (
    AnalysisContext,
    Block,
    Calculator,
    CalculatorRun,
    FeatureSpec,
    OutputMeta,
    Outputs,
    as_frames,
    uniform_meta,
)
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.engine import MemorySink, PassPlan, run_pass, run_source_passes
from diagnostics_app.core.engine_blocks import Framer
from diagnostics_app.core.params import resolve_params
from diagnostics_app.core.tempo import TempoMap
from tests.core import audio_factory as af

SR = 22050
BLOCK = 1 << 16  # 128 frames of hop 512 per block: enough for frame-independent pieces
WAIT = 10.0  # s: a safety net only; each event is set within milliseconds when it works


class Events:
    """What the test calculators saw, shared between the pool's threads."""

    def __init__(self) -> None:
        self.second_block_piece = threading.Event()  # a piece of block 2 started
        self.second_block_state = threading.Event()  # the stateful run got block 2
        self.piece_seen_during_first = False
        self.order: list[int] = []
        self.overlaps = 0
        self.busy = threading.Lock()


class _Independent(CalculatorRun):
    frames_independent = True

    def __init__(self, ctx: AnalysisContext, events: Events) -> None:
        self.ctx, self.events = ctx, events

    def process(self, block: Block) -> Outputs:
        if block.frame_start >= BLOCK // 512:  # a piece of the second block (or later)
            self.events.second_block_piece.set()
        frames = block.frames(1024, -512)  # (C, F, L)
        return {"energy": as_frames(np.square(frames, dtype=np.float64).sum(axis=-1))}

    def outputs(self) -> Mapping[str, OutputMeta]:
        return {"energy": uniform_meta(self.ctx, FeatureSpec("energy"), 1)}


class _Stateful(CalculatorRun):
    def __init__(self, ctx: AnalysisContext, events: Events) -> None:
        self.ctx, self.events = ctx, events
        self.total = 0.0

    def process(self, block: Block) -> Outputs:
        ev = self.events
        if not ev.busy.acquire(blocking=False):
            ev.overlaps += 1  # two blocks of this run at once: must never happen
            return {}
        try:
            ev.order.append(block.sample_start)
            if block.sample_start == 0:
                # block 1 holds its worker until a piece of block 2 has started on another
                ev.piece_seen_during_first = ev.second_block_piece.wait(WAIT)
            elif block.sample_start == BLOCK:
                ev.second_block_state.set()
            self.total += float(np.abs(block.samples).sum())
            return {"running": as_frames(np.full((1, 1), self.total))}
        finally:
            ev.busy.release()

    def outputs(self) -> Mapping[str, OutputMeta]:
        return {"running": uniform_meta(self.ctx, FeatureSpec("running"), 1)}


class _Calc(Calculator):
    version = 1
    events: Events

    def __init__(self, events: Events) -> None:
        self.events = events


class IndependentCalculator(_Calc):
    id = "test.independent"
    features: ClassVar[tuple[FeatureSpec, ...]] = (FeatureSpec("energy"),)

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _Independent(ctx, self.events)


class StatefulCalculator(_Calc):
    id = "test.stateful"
    features: ClassVar[tuple[FeatureSpec, ...]] = (FeatureSpec("running"),)

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _Stateful(ctx, self.events)


class WaitingSink(MemorySink):
    """Holds the first write until the stateful run has been given block 2: the writes of
    block 1 happen while block 2 is computed."""

    def __init__(self, events: Events) -> None:
        super().__init__()
        self.events = events
        self.overlapped: bool | None = None

    def write(self, calculator_id: str, feature: str, frames: np.ndarray) -> None:
        if self.overlapped is None:
            self.overlapped = self.events.second_block_state.wait(WAIT)
        super().write(calculator_id, feature, frames)


def _file(tmp_path: Path, seconds: float = 10.0) -> Path:
    return af.write_float_wav(tmp_path / "p.wav", af.stereo(seconds, SR), SR)


def test_pieces_of_the_next_block_run_beside_the_previous_blocks_tasks(tmp_path: Path) -> None:
    events = Events()
    path = _file(tmp_path)
    plan = PassPlan(
        str(path),
        resolve_params(),
        TempoMap(),
        (StatefulCalculator(events), IndependentCalculator(events)),
    )
    sink = MemorySink()
    run_pass(plan, sink, block_frames=BLOCK)
    assert events.piece_seen_during_first
    # the stateful run saw every block once, in order (the last, empty one at the end of the
    # file), never two at a time
    n = 10 * SR
    assert events.order == [*range(0, n, BLOCK), n]
    assert events.overlaps == 0


def test_a_blocks_outputs_are_written_while_the_next_block_is_computed(tmp_path: Path) -> None:
    events = Events()
    events.second_block_piece.set()  # block 1 need not wait here
    path = _file(tmp_path)
    plan = PassPlan(str(path), resolve_params(), TempoMap(), (StatefulCalculator(events),))
    sink = WaitingSink(events)
    run_pass(plan, sink, block_frames=BLOCK)
    assert sink.overlapped
    assert events.overlaps == 0


def test_outputs_equal_a_block_at_a_time_whatever_the_block_size(tmp_path: Path) -> None:
    """Two blocks in flight change nothing: the built-ins and a stateful and a frame-
    independent run give the same bytes with blocks of 2^16, 3000 and 2^20 frames (one block:
    nothing in flight beside it)."""
    path = _file(tmp_path, 6.0)
    results = []
    for block in (1 << 20, BLOCK, 3000):
        events = Events()
        events.second_block_piece.set()
        calcs = (*Registry.builtin(), StatefulCalculator(events), IndependentCalculator(events))
        sink = MemorySink()
        run_pass(PassPlan(str(path), resolve_params(), TempoMap(), calcs), sink, block_frames=block)
        assert events.overlaps == 0
        results.append({(c, f): r.data for c, per in sink.results.items() for f, r in per.items()})
    reference = results[0]
    for other in results[1:]:
        assert other.keys() == reference.keys()
        for key, data in reference.items():
            if key[0] == "test.stateful":
                continue  # one output per block: its count depends on the blocks by design
            assert other[key].tobytes() == data.tobytes(), key


def test_a_framer_snapshot_keeps_its_frames_after_append_and_drop() -> None:
    framer = Framer(channels=1, hop=4, margin=8)
    signal = np.arange(40, dtype=np.float32)[None]
    framer.append(signal[:, :20])
    before = framer.frames(0, 3, 8, -4).copy()
    cut = framer.snapshot()
    framer.append(signal[:, 20:])
    framer.drop_before(5)
    np.testing.assert_array_equal(cut(0, 3, 8, -4), before)
    # and the framer itself goes on from where it is
    np.testing.assert_array_equal(framer.frames(5, 1, 8, -4)[0, 0], signal[0, 16:24])


def test_on_block_sees_every_block_in_order_on_the_callers_thread(tmp_path: Path) -> None:
    path = _file(tmp_path, 4.0)
    seen: list[tuple[int, int]] = []
    plans = [PassPlan(str(path), resolve_params(), TempoMap(), tuple(Registry.builtin()))] * 2
    done = run_source_passes(
        str(path),
        plans,
        [MemorySink(), MemorySink()],
        block_frames=BLOCK // 4,
        on_block=lambda samples: seen.append((threading.get_ident(), samples.shape[1])),
    )
    assert done.complete
    assert done.errors == (None, None)
    assert {ident for ident, _ in seen} == {threading.get_ident()}
    n = 4 * SR
    assert [size for _, size in seen] == [min(BLOCK // 4, n - s) for s in range(0, n, BLOCK // 4)]


def test_an_on_block_error_ends_every_pass(tmp_path: Path) -> None:
    path = _file(tmp_path, 4.0)
    calls = [0]

    def fail_third(samples: np.ndarray) -> None:
        calls[0] += 1
        if calls[0] == 3:
            raise OSError("cannot digest")

    plans = [PassPlan(str(path), resolve_params(), TempoMap(), tuple(Registry.builtin()))] * 2
    sinks = [MemorySink(), MemorySink()]
    done = run_source_passes(str(path), plans, sinks, block_frames=BLOCK // 4, on_block=fail_third)
    assert not done.complete
    assert [str(e) for e in done.errors] == ["cannot digest", "cannot digest"]
    assert all(s.aborted and not s.results for s in sinks)
