"""One decode per source (issue 12): every pass planned for a source runs over one decode.

The passes of a source (one per parameter set) are grouped by the job runner and fed the same
decoded blocks; each keeps its own job record, progress and cancellation, and a pass failing
fails alone. Stored arrays are byte-equal to running each pass alone with the float32 file
transcoded at close (the path before this change), and u16db features are encoded as written.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from diagnostics_app.core import engine
from diagnostics_app.core import jobs as core_jobs
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
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.errors import AudioError
from diagnostics_app.core.events import JobUpdated
from diagnostics_app.core.jobs import BatchResult
from diagnostics_app.core.params import resolve_params
from diagnostics_app.core.project import DEFAULT_CACHE_DIR
from diagnostics_app.core.session import Session
from diagnostics_app.core.store import FeatureStore
from diagnostics_app.core.store import arrays as store_arrays  # where stored data is finished
from diagnostics_app.core.store.writing import PassWriter
from diagnostics_app.core.tempo import TempoMap
from tests.core.audio_factory import truncate
from tests.core.project_factory import write_project, write_tone

SECONDS = 14.0  # 308,700 frames at 22.05 kHz: three engine blocks of 131,072


class Broken(Calculator):
    """A plugin whose run raises on its second block."""

    id = "test.broken"
    version = 1
    features = (FeatureSpec("broken"),)
    params = ("hop_size",)

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _BrokenRun(ctx)


class _BrokenRun(CalculatorRun):
    blocks: ClassVar[int] = 0

    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        self.seen = 0

    def process(self, block: Block) -> Outputs:
        self.seen += 1
        if self.seen == 2:
            raise RuntimeError("the plugin broke")
        return {"broken": np.zeros((block.frame_count, 1, 1), np.float32)}

    def outputs(self) -> Mapping[str, OutputMeta]:
        return {"broken": uniform_meta(self.ctx, Broken.features[0], 1)}


def registry() -> Registry:
    return Registry([*Registry.builtin(), Broken()])


def project(folder: Path, broken: bool = False) -> Path:
    """One stereo source ``song`` asked for every built-in in three parameter sets (the
    default profile; pitch with its own fmin/fmax; a finer profile, per channel) and a mono
    ``bass`` asked for rms."""
    write_tone(folder / "audio" / "song.wav", SECONDS, 220.0, channels=2, seed=3)
    write_tone(folder / "audio" / "bass.wav", 2.0, 55.0, seed=4)
    builtins = [c.feature_names()[0] for c in Registry.builtin()]
    fine = [{"feature": "spectrogram", "profile": "fine"}, {"feature": "rms", "profile": "fine"}]
    if broken:
        fine.append({"feature": "broken", "profile": "fine"})
    requests: list[dict[str, Any]] = [
        *({"feature": f} for f in builtins),
        {"feature": "pitch", "params": {"fmin": 60.0, "fmax": 900.0}},
        *fine,
    ]
    return write_project(
        folder,
        {
            "name": "One decode",
            "tempo_map": [{"time": 0.0, "bpm": 120.0}],
            "profiles": {
                "fine": {"window_size": 1024, "hop_size": 256, "channel_mode": "per_channel"}
            },
            "sources": [
                {"id": "song", "path": "audio/song.wav"},
                {"id": "bass", "path": "audio/bass.wav"},
            ],
            "tracks": [
                {"id": "song", "name": "Song", "source": "song", "requests": requests},
                {"id": "bass", "name": "Bass", "source": "bass", "requests": [{"feature": "rms"}]},
            ],
        },
    )


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times the engine opened each file for decoding (by file name)."""
    counts: Counter[str] = Counter()
    real = engine.iter_blocks

    def counting(path: Any, block_frames: int = engine.DEFAULT_BLOCK_FRAMES) -> Iterator[Any]:
        counts[Path(path).name] += 1
        return real(path, block_frames)

    monkeypatch.setattr(engine, "iter_blocks", counting)
    return counts


def analyse_all(session: Session) -> list[BatchResult]:
    session.enqueue(session.plan(), origin="cli")
    return session.runner.run_all(workers=0)


def by_pass(results: list[BatchResult]) -> dict[tuple[str, str, str], str]:
    """(source, profile, params) → status."""
    return {
        (r.batch.source, r.batch.jobs[0].profile, r.batch.jobs[0].params_key): r.status
        for r in results
    }


def test_three_parameter_sets_on_one_source_decode_it_once(
    tmp_path: Path, decodes: Counter[str]
) -> None:
    with Session.open(project(tmp_path), registry()) as session:
        results = analyse_all(session)
        song = [r for r in results if r.batch.source == "song"]
        assert len(song) == 3  # a record per pass
        # they ran together: each has an even share of the group's time (a sum over passes
        # counts nothing twice)
        assert len({r.seconds for r in song}) == 1
        assert song[0].seconds > 0
        assert {r.status for r in results} == {"done"}
        assert dict(decodes) == {"song.wav": 1, "bass.wav": 1}
        assert {r.state for r in session.diagnose().rows} == {"ok"}


def test_jobs_in_threads_still_decode_each_source_once(
    tmp_path: Path, decodes: Counter[str]
) -> None:
    with Session.open(project(tmp_path), registry()) as session:
        session.enqueue(session.plan(), origin="cli")
        results = session.runner.run_all(workers=3)
        assert len(results) == 4
        assert {r.status for r in results} == {"done"}
        assert dict(decodes) == {"song.wav": 1, "bass.wav": 1}


def test_cancelling_one_pass_of_a_group_leaves_the_others_to_finish(
    tmp_path: Path, decodes: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_jobs, "PROGRESS_INTERVAL", 0.0)  # a report per block
    with Session.open(project(tmp_path), registry()) as session:
        batches = session.enqueue(session.plan(), origin="cli")
        victim = next(b for b in batches if b.jobs[0].profile == "fine")
        progressed: list[float] = []

        def cancel_mid_pass(event: JobUpdated) -> None:
            if event.job_id == victim.job_id and event.state == "running" and event.progress:
                progressed.append(event.progress)
                session.runner.cancel(victim.job_id)

        session.events.job_updated.connect(cancel_mid_pass)
        results = session.runner.run_all(workers=0)
        status = {r.batch.job_id: r.status for r in results}
        assert progressed and progressed[0] < 0.9  # cancelled after its first block
        assert status.pop(victim.job_id) == "cancelled"
        assert set(status.values()) == {"done"}
        assert decodes["song.wav"] == 1
        stored = {(e.key.profile, e.key.calculator_id) for e in session.store.entries()}
        assert ("fine", "core.spectrogram") not in stored  # nothing of it committed
        assert ("default", "core.spectrogram") in stored
        record = {j.id: j for j in session.store.jobs()}[victim.job_id]
        assert record.state == "cancelled"


def test_a_plugin_failing_fails_its_pass_only(tmp_path: Path, decodes: Counter[str]) -> None:
    with Session.open(project(tmp_path, broken=True), registry()) as session:
        results = analyse_all(session)
        failed = [r for r in results if r.status != "done"]
        assert [(r.batch.jobs[0].profile, r.status) for r in failed] == [("fine", "failed")]
        assert "the plugin broke" in (failed[0].message or "")
        assert len(results) == 4
        assert decodes["song.wav"] == 1
        states = {(r.key.profile, r.key.feature): r.state for r in session.diagnose().rows}
        assert states[("fine", "broken")] == "failed"
        assert states[("fine", "spectrogram")] == "failed"  # the pass is one unit
        assert states[("default", "spectrogram")] == "ok"
        assert states[("default", "pitch")] == "ok"


def stored_bytes(cache: Path) -> dict[tuple[str, str, str, str, str], tuple[str, bytes, bytes]]:
    """(source, calculator, profile, params, feature) → (encoding, data bytes, times bytes)."""
    store = FeatureStore.open(cache)
    try:
        out = {}
        for entry in store.entries():
            k = entry.key
            for name, f in entry.features.items():
                times = (cache / f.times_path).read_bytes() if f.times_path else b""
                out[(k.source_id, k.calculator_id, k.profile, k.params, name)] = (
                    f.encoding,
                    (cache / f.path).read_bytes(),
                    times,
                )
        return out
    finally:
        store.close()


def test_stored_arrays_are_byte_equal_to_one_pass_at_a_time_with_transcoding(
    tmp_path: Path, decodes: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    grouped, alone = tmp_path / "grouped", tmp_path / "alone"
    project(grouped)
    shutil.copytree(grouped, alone)

    def no_transcode(*args: object) -> str:
        raise AssertionError("u16db transcoded at close instead of encoded as written")

    with monkeypatch.context() as m:
        m.setattr(store_arrays, "transcode_u16", no_transcode)
        with Session.open(grouped / "project.json") as session:
            assert {r.status for r in analyse_all(session)} == {"done"}
    assert decodes["song.wav"] == 1

    # the path before: each pass on its own decode, frames written as float32 and the u16db
    # features transcoded at close (the writer is told nothing at the start)
    monkeypatch.delattr(PassWriter, "expect")
    with Session.open(alone / "project.json") as session:
        session.enqueue(session.plan(), origin="cli")
        results = []
        while (batch := session.runner.take()) is not None:
            results.append(session.runner.execute(batch))
        assert len(results) == 4
        assert {r.status for r in results} == {"done"}
    assert decodes["song.wav"] == 4

    want = stored_bytes(alone / DEFAULT_CACHE_DIR)
    got = stored_bytes(grouped / DEFAULT_CACHE_DIR)
    assert len(want) == 9 + 1 + 2 + 1  # nine built-ins, pitch again, the fine pair, bass rms
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == value, key
    assert {k[-1] for k, v in got.items() if v[0] == "u16db"} == {"spectrogram"}


# --- the engine alone ------------------------------------------------------------------------


def engine_plans(path: Path) -> list[engine.PassPlan]:
    builtins = tuple(Registry.builtin())
    pitch = tuple(c for c in builtins if c.id == "core.pitch")
    fine = resolve_params({"window_size": 1024, "hop_size": 256, "channel_mode": "per_channel"})
    return [
        engine.PassPlan(str(path), resolve_params(), TempoMap(), builtins),
        engine.PassPlan(str(path), resolve_params(None, {"fmin": 60.0}), TempoMap(), pitch),
        engine.PassPlan(str(path), fine, TempoMap(), builtins[:3]),
    ]


def test_run_source_passes_gives_each_pass_what_run_pass_gives_it(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "a.wav", 3.0, 330.0, channels=2)
    plans = engine_plans(path)
    together = [engine.MemorySink() for _ in plans]
    done = engine.run_source_passes(str(path), plans, together, block_frames=20000)
    assert done.errors == (None, None, None)
    for plan, sink in zip(plans, together, strict=True):
        alone = engine.MemorySink()
        engine.run_pass(plan, alone, block_frames=20000)
        assert sink.results.keys() == alone.results.keys()
        for calc, features in alone.results.items():
            for name, result in features.items():
                got = sink.results[calc][name]
                assert got.meta == result.meta
                assert got.data.tobytes() == result.data.tobytes(), (calc, name)


def test_a_decoding_error_fails_every_pass_of_the_source(tmp_path: Path) -> None:
    path = truncate(write_tone(tmp_path / "a.wav", 3.0, 330.0, channels=2), 0.5)
    plans = engine_plans(path)
    sinks = [engine.MemorySink() for _ in plans]
    done = engine.run_source_passes(str(path), plans, sinks, block_frames=20000)
    assert all(isinstance(e, AudioError) for e in done.errors)
    assert "truncated" in str(done.errors[0])
    assert all(s.aborted and not s.results for s in sinks)
