"""The store writes u16db features in their stored encoding as frames arrive (issue 12).

The engine tells the pass writer each run's layout at its start (``PassWriter.expect``); a run
that cannot tell it then is stored as before (float32, transcoded at close), and a run whose
final layout contradicts what it told fails with a one-line message instead of storing values
quantised over the wrong range.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from diagnostics_app.core.calculators.base import (
    AnalysisContext,
    Block,
    Calculator,
    CalculatorRun,
    FeatureSpec,
    OutputMeta,
    Outputs,
    uniform_meta,
)
from diagnostics_app.core.engine import PassPlan, run_pass
from diagnostics_app.core.params import resolve_params
from diagnostics_app.core.store import FeatureStore
from diagnostics_app.core.store import arrays as store_arrays  # where stored data is finished
from diagnostics_app.core.tempo import TempoMap
from tests.core.project_factory import write_tone

LEVEL = FeatureSpec("level", kind="image", unit="dB", storage="u16db")


class Level(Calculator):
    """dB of each frame's mean square; ``range_at`` says when its value range is known:
    ``"start"``, ``"end"`` (outputs() raises before), or ``"moves"`` (another range at the
    end than at the start)."""

    id = "test.level"
    version = 1
    features = (LEVEL,)
    params = ("hop_size",)

    def __init__(self, range_at: str) -> None:
        self.range_at = range_at

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _LevelRun(ctx, self.range_at)


class _LevelRun(CalculatorRun):
    def __init__(self, ctx: AnalysisContext, range_at: str) -> None:
        self.ctx = ctx
        self.range_at = range_at
        self.finished = False

    def process(self, block: Block) -> Outputs:
        frames = block.frames(512, -256)
        db = 10 * np.log10(np.mean(frames * frames, axis=-1) + 1e-10)
        return {"level": np.ascontiguousarray(db.T[:, :, None], dtype=np.float32)}

    def finish(self) -> list[Outputs]:
        self.finished = True
        return []

    def outputs(self) -> Mapping[str, OutputMeta]:
        if self.range_at == "end" and not self.finished:
            raise RuntimeError("known only at the end")
        hi = 6.0 if self.range_at == "moves" and self.finished else 0.0
        return {"level": uniform_meta(self.ctx, LEVEL, 1, value_range=(-60.0, hi))}


def run(tmp_path: Path, range_at: str, store: FeatureStore) -> FeatureStore:
    wav = write_tone(tmp_path / "a.wav", 3.0, 330.0)
    calc = Level(range_at)
    writer = store.pass_writer("a", "default", "{}", {calc.id: {"c": 1}}, {calc.id: 1})
    run_pass(PassPlan(str(wav), resolve_params(), TempoMap(), (calc,)), writer, block_frames=8192)
    return store


def data_bytes(store: FeatureStore) -> tuple[str, bytes]:
    (entry,) = store.entries_for_source("a")
    f = entry.features["level"]
    return f.encoding, (store.root / f.path).read_bytes()


def test_a_range_known_at_the_start_is_encoded_as_written_and_equals_the_transcoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FeatureStore.open(tmp_path / "late") as late:
        late_bytes = data_bytes(run(tmp_path, "end", late))
    calls: list[object] = []
    real = store_arrays.transcode_u16

    def counting(*args: object) -> str:
        calls.append(args)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(store_arrays, "transcode_u16", counting)
    with FeatureStore.open(tmp_path / "early") as early:
        early_bytes = data_bytes(run(tmp_path, "start", early))
    assert calls == []  # no float32 file transcoded
    assert early_bytes[0] == late_bytes[0] == "u16db"
    assert early_bytes == late_bytes


def test_a_range_known_only_at_the_end_is_still_stored_u16db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    real = store_arrays.transcode_u16

    def counting(*args: object) -> str:
        calls.append(args)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(store_arrays, "transcode_u16", counting)
    with FeatureStore.open(tmp_path / "s") as store:
        encoding, _ = data_bytes(run(tmp_path, "end", store))
    assert encoding == "u16db"
    assert len(calls) == 1


def test_a_range_that_moves_after_the_start_fails_the_pass_naming_the_feature(
    tmp_path: Path,
) -> None:
    with FeatureStore.open(tmp_path / "s") as store:
        with pytest.raises(ValueError, match=r"test\.level/level: stored as u16db over") as exc:
            run(tmp_path, "moves", store)
        assert "\n" not in str(exc.value)
        assert store.entries_for_source("a") == []
