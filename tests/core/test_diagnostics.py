"""Descriptor-level diagnostics: one named test per seed problem, with real audio files,
real analyses and a real store on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from diagnostics_app.core import edits
from diagnostics_app.core.calculators.base import (
    AnalysisContext,
    Calculator,
    CalculatorRun,
    FeatureSpec,
    OutputMeta,
    Outputs,
    as_frames,
    uniform_meta,
)
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.calculators.temporal import RmsCalculator
from diagnostics_app.core.diagnostics import Diagnosis, Row, diagnose
from diagnostics_app.core.events import JobUpdated
from diagnostics_app.core.planner import Selection
from diagnostics_app.core.project import load_project, save_project
from diagnostics_app.core.session import Session
from tests.core.project_factory import shared_source_project, write_tone


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    s = Session.open(shared_source_project(tmp_path), Registry.builtin())
    yield s
    s.close()


def rows_of(d: Diagnosis, source: str, feature: str) -> list[Row]:
    return [r for r in d.rows if r.key.source == source and r.key.feature == feature]


def one(d: Diagnosis, source: str, feature: str, profile: str = "default") -> Row:
    found = [r for r in rows_of(d, source, feature) if r.key.profile == profile]
    assert len(found) == 1, found
    return found[0]


def analyse_all(session: Session) -> None:
    session.enqueue(session.plan())
    results = session.runner.run_all()
    assert all(r.status == "done" for r in results), [r.message for r in results]


# 1 ----------------------------------------------------------------------------------------


def test_shared_source_one_row_both_tracks_same_state_through_lifecycle(session: Session) -> None:
    row = one(session.diagnose(), "drums", "rms")
    assert row.tracks == ("kick", "snare")
    assert row.state == "missing"

    [batch] = session.enqueue(session.plan(Selection(sources=("drums",), features=("rms",))))
    row = one(session.diagnose(), "drums", "rms")
    assert (row.state, row.tracks) == ("queued", ("kick", "snare"))

    seen_running: list[Row] = []

    def during(ev: JobUpdated) -> None:
        if (
            ev.state == "running"
            and ev.progress is not None
            and 0 < ev.progress < 1
            and not seen_running
        ):
            seen_running.append(one(session.diagnose(), "drums", "rms"))

    session.runner.events.job_updated.connect(during)
    taken = session.runner.take()
    assert taken is batch
    result = session.runner.execute(taken)
    assert result.status == "done"
    assert seen_running, "the pass never reported progress while running"
    running = seen_running[0]
    assert (running.state, running.tracks) == ("running", ("kick", "snare"))
    assert running.progress is not None and 0 < running.progress < 1

    row = one(session.diagnose(), "drums", "rms")
    assert (row.state, row.tracks) == ("ok", ("kick", "snare"))
    # a one-row request for every track: no per-track disagreement is even representable
    assert len(rows_of(session.diagnose(), "drums", "rms")) == 1


# 2 ----------------------------------------------------------------------------------------


def test_tempo_change_stales_only_beat_rms(session: Session) -> None:
    analyse_all(session)
    assert session.diagnose().healthy
    session.edit("tempo", lambda p: edits.set_tempo_map(p, [{"time": 0.0, "bpm": 100.0}]))
    d = session.diagnose()
    stale = [r for r in d.rows if r.state == "stale"]
    assert {r.key.feature for r in stale} == {"beat_rms"}
    assert all(r.state == "ok" for r in d.rows if r.key.feature != "beat_rms")
    [reason] = stale[0].reasons
    assert reason.input == "tempo_map"
    assert reason.old == [{"time": 0.0, "bpm": 120.0}]
    assert reason.new == [{"time": 0.0, "bpm": 100.0}]


class RmsV2(RmsCalculator):
    version = 2


def test_calculator_version_change_stales_only_its_rows(tmp_path: Path) -> None:
    path = shared_source_project(tmp_path)
    with Session.open(path, Registry.builtin()) as s1:
        analyse_all(s1)
    registry = Registry([RmsV2() if c.id == "core.rms" else c for c in Registry.builtin()])
    with Session.open(path, registry) as s2:
        d = s2.diagnose()
        stale = [r for r in d.rows if r.state == "stale"]
        assert {(r.key.source, r.key.calculator) for r in stale} == {
            ("drums", "core.rms"),
            ("bass", "core.rms"),
        }
        assert all(r.state == "ok" for r in d.rows if r.key.calculator != "core.rms")
        for r in stale:
            assert [x.to_json() for x in r.reasons] == [
                {"input": "calculator.version", "old": 1, "new": 2}
            ]
            assert r.calculator_version == 2


# 3 ----------------------------------------------------------------------------------------


class _Pair(Calculator):
    id = "test.pair"
    features = (FeatureSpec("alpha"), FeatureSpec("beta"))
    params = ("hop_size", "window_size", "channel_mode")

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        return _PairRun(ctx, self)


class _PairRun(CalculatorRun):
    def __init__(self, ctx: AnalysisContext, calc: Calculator) -> None:
        self.ctx, self.calc = ctx, calc

    def process(self, block) -> Outputs:  # type: ignore[no-untyped-def]
        frames = block.frames(
            self.ctx.params.get_int("window_size"), -self.ctx.params.get_int("window_size") // 2
        )
        mean = frames.mean(axis=-1)
        return {f.name: as_frames(mean) for f in self.calc.features}

    def outputs(self) -> dict[str, OutputMeta]:
        return {f.name: uniform_meta(self.ctx, f, 1) for f in self.calc.features}


class PairV1(_Pair):
    version = 1


class PairV2(_Pair):
    version = 2
    features = (FeatureSpec("alpha"),)


def _pair_project(tmp_path: Path, requested: list[str]) -> Path:
    path = shared_source_project(tmp_path)
    data = json.loads(path.read_text())
    data["tracks"][0]["requests"] = [{"feature": f, "calculator": "test.pair"} for f in requested]
    data["tracks"] = data["tracks"][:1]
    path.write_text(json.dumps(data))
    return path


def test_feature_dropped_by_new_version_is_gone_after_regeneration(tmp_path: Path) -> None:
    path = _pair_project(tmp_path, ["alpha"])  # beta is produced by v1 but requested by nobody
    with Session.open(path, Registry([*Registry.builtin(), PairV1()])) as s1:
        analyse_all(s1)
        d = s1.diagnose()
        assert one(d, "drums", "alpha").state == "ok"
        entry = s1.store.get(one(d, "drums", "alpha").key.entry_key)
        assert entry is not None and sorted(entry.features) == [
            "alpha"
        ]  # unrequested beta never stored

    path = _pair_project(tmp_path, ["alpha", "beta"])
    with Session.open(path, Registry([*Registry.builtin(), PairV1()])) as s1:
        analyse_all(s1)
        assert {r.state for r in s1.diagnose().rows} == {"ok"}

    with Session.open(path, Registry([*Registry.builtin(), PairV2()])) as s2:
        d = s2.diagnose()
        assert one(d, "drums", "alpha").state == "stale"
        beta = one(d, "drums", "beta")
        assert beta.state == "invalid" and "does not produce feature 'beta'" in (beta.message or "")
        analyse_all(s2)
        d = s2.diagnose()
        assert one(d, "drums", "alpha").state == "ok"
        assert [r.state for r in rows_of(d, "drums", "beta")] == ["invalid"]  # not extraneous
        entry = s2.store.get(one(d, "drums", "alpha").key.entry_key)
        assert entry is not None and sorted(entry.features) == ["alpha"]


# 4 ----------------------------------------------------------------------------------------


def test_fingerprint_same_from_analysis_import_and_undo(session: Session, tmp_path: Path) -> None:
    analyse_all(session)
    before = {r.key: (r.stored, r.current) for r in session.diagnose().rows}
    assert all(stored == current for stored, current in before.values())

    # import: save, load in a fresh session (fresh registry, fresh store connection)
    saved = session.save(tmp_path / "copy.json")
    with Session.open(saved, Registry.builtin()) as other:
        again = {r.key: (r.stored, r.current, r.state) for r in other.diagnose().rows}
    assert {k: v[:2] for k, v in again.items()} == before
    assert {v[2] for v in again.values()} == {"ok"}

    # undo of an edit: back to the same current fingerprint, hence ok
    session.edit("tempo", lambda p: edits.set_tempo_map(p, [{"time": 0.0, "bpm": 90.0}]))
    assert one(session.diagnose(), "drums", "beat_rms").state == "stale"
    session.undo()
    assert {r.key: (r.stored, r.current) for r in session.diagnose().rows} == before

    # undo of a prune: the restored entry has the very same stored fingerprint
    session.edit("drop", lambda p: edits.remove_request(p, "bass", 1))
    extr = one(session.diagnose(), "bass", "rms")
    assert extr.state == "extraneous"
    session.prune([extr])
    assert rows_of(session.diagnose(), "bass", "rms") == []
    session.undo()
    restored = one(session.diagnose(), "bass", "rms")
    assert restored.state == "extraneous"
    assert restored.stored == before[extr.key][0]
    session.undo()  # the request is back: the restored entry is ok again
    assert one(session.diagnose(), "bass", "rms").state == "ok"


# 5 ----------------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "diagnostics_app", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_regenerating_one_row_runs_one_calculator(session: Session) -> None:
    analyse_all(session)
    session.edit("tempo", lambda p: edits.set_tempo_map(p, [{"time": 0.0, "bpm": 100.0}]))
    session.edit("hop", lambda p: edits.set_profile_param(p, "default", "hop_size", 256))
    path = session.save()
    out = run_cli(
        "analyze", str(path), "--source", "drums", "--feature", "rms", "--dry-run", "--json"
    )
    assert out.returncode == 0, out.stderr
    jobs = json.loads(out.stdout)["jobs"]
    assert [(j["source"], j["calculator"], j["features"]) for j in jobs] == [
        ("drums", "core.rms", ["rms"])
    ]
    everything = json.loads(run_cli("analyze", str(path), "--dry-run", "--json").stdout)["jobs"]
    # the hop change touches rms, spectrogram, pitch; the tempo change beat_rms; centroid (fine) nothing
    assert sorted((j["source"], j["calculator"]) for j in everything) == [
        ("bass", "core.pitch"),
        ("bass", "core.rms"),
        ("drums", "core.beats"),
        ("drums", "core.rms"),
        ("drums", "core.spectrogram"),
    ]


# 6 ----------------------------------------------------------------------------------------


def test_work_started_elsewhere_shows_queued_and_running(tmp_path: Path) -> None:
    path = shared_source_project(tmp_path)
    with (
        Session.open(path, Registry.builtin()) as viewer,
        Session.open(path, Registry.builtin()) as worker,
    ):
        worker.enqueue(worker.plan(Selection(sources=("drums",), features=("rms",))), origin="auto")
        row = one(viewer.diagnose(), "drums", "rms")
        assert row.state == "queued"
        seen: list[str] = []

        def look(ev: JobUpdated) -> None:
            if ev.state == "running" and ev.progress and ev.progress < 1:
                seen.append(one(viewer.diagnose(), "drums", "rms").state)

        worker.runner.events.job_updated.connect(look)
        worker.runner.run_all()
        assert "running" in seen
        assert one(viewer.diagnose(), "drums", "rms").state == "ok"


def test_job_of_a_dead_process_is_not_running_forever(tmp_path: Path) -> None:
    path = shared_source_project(tmp_path)
    code = (
        "import sys, os\n"
        "from diagnostics_app.core.session import Session\n"
        "from diagnostics_app.core.calculators.registry import Registry\n"
        "s = Session.open(sys.argv[1], Registry.builtin())\n"
        "s.enqueue(s.plan())\n"
        "os._exit(0)  # dies without running or cleaning up\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)
    with Session.open(path, Registry.builtin()) as s:
        states = {r.state for r in s.diagnose().rows}
        assert "queued" not in states and "running" not in states
        assert "failed" in states
        failed = next(r for r in s.diagnose().rows if r.state == "failed")
        assert "died" in (failed.message or "")


# 7 ----------------------------------------------------------------------------------------


def test_tests_run_real_analyses_synchronously(session: Session) -> None:
    from diagnostics_app.core.engine import analyse
    from diagnostics_app.core.params import resolve_params

    analyse_all(session)
    row = one(session.diagnose(), "drums", "rms")
    entry = session.store.get(row.key.entry_key)
    assert entry is not None
    loaded = session.store.load(entry, "rms")
    direct = analyse(session.project.audio_path("drums"), [RmsCalculator()], resolve_params())[
        "core.rms"
    ]["rms"]
    np.testing.assert_array_equal(np.asarray(loaded.data), direct.data)
    assert {r.state for r in session.diagnose().rows} == {"ok"}  # nothing staged as stale


# more -------------------------------------------------------------------------------------


def test_tempo_edit_during_a_running_job_leaves_the_result_stale(session: Session) -> None:
    session.enqueue(session.plan(Selection(features=("beat_rms",))))
    edited: list[bool] = []

    def edit_midway(ev: JobUpdated) -> None:
        if ev.state == "running" and ev.progress and not edited:
            edited.append(True)
            session.edit("tempo", lambda p: edits.set_tempo_map(p, [{"time": 0.0, "bpm": 133.0}]))

    session.runner.events.job_updated.connect(edit_midway)
    session.runner.run_all()
    row = one(session.diagnose(), "drums", "beat_rms")
    assert row.state == "stale"
    assert [r.input for r in row.reasons] == ["tempo_map"]
    assert row.reasons[0].new == [{"time": 0.0, "bpm": 133.0}]


def test_profile_parameter_edit_stales_only_rows_that_read_it(session: Session) -> None:
    analyse_all(session)
    session.edit("window", lambda p: edits.set_profile_param(p, "fine", "window", "hamming"))
    d = session.diagnose()
    stale = {(r.key.source, r.key.feature) for r in d.rows if r.state == "stale"}
    assert stale == {
        ("drums", "centroid")
    }  # the only request on profile "fine"; rms ignores windows
    [reason] = one(d, "drums", "centroid", "fine").reasons
    assert (reason.input, reason.old, reason.new) == ("profile.window", "hann", "hamming")


def test_audio_file_replaced_on_disk_stales_only_that_source(session: Session) -> None:
    analyse_all(session)
    write_tone(session.project.audio_path("bass"), 1.0, 98.0, seed=9)
    d = session.diagnose()
    assert {r.state for r in d.rows if r.key.source == "bass"} == {"stale"}
    assert {r.state for r in d.rows if r.key.source == "drums"} == {"ok"}
    reason = one(d, "bass", "rms").reasons[0]
    assert reason.input == "audio.content" and reason.old != reason.new


def test_removed_request_becomes_extraneous_then_pruned_then_undone(session: Session) -> None:
    analyse_all(session)
    session.edit("remove", lambda p: edits.remove_request(p, "kick", 2))  # spectrogram
    spec = one(session.diagnose(), "drums", "spectrogram")
    assert spec.state == "extraneous" and spec.tracks == ()
    others = {r.key: r.state for r in session.diagnose().rows if r.key != spec.key}
    session.prune([spec])
    d = session.diagnose()
    assert rows_of(d, "drums", "spectrogram") == []
    assert {r.key: r.state for r in d.rows} == others  # nothing else touched
    session.undo()
    assert one(session.diagnose(), "drums", "spectrogram").state == "extraneous"
    session.redo()
    assert rows_of(session.diagnose(), "drums", "spectrogram") == []
    session.undo()
    session.undo()  # the request comes back and the restored data is ok
    assert one(session.diagnose(), "drums", "spectrogram").state == "ok"


def test_unresolvable_request_is_invalid_never_a_full_analysis(tmp_path: Path) -> None:
    path = shared_source_project(tmp_path)
    data = json.loads(path.read_text())
    data["tracks"][0]["requests"] += [
        {"feature": "loudness"},
        {"feature": "rms", "calculator": "core.chroma"},
        {"feature": "rms", "params": {"window_size": 1024, "fft_size": 512}},
    ]
    path.write_text(json.dumps(data))
    with Session.open(path, Registry.builtin()) as s:
        d = s.diagnose()
        invalid = [r for r in d.rows if r.state == "invalid"]
        messages = sorted(r.message or "" for r in invalid)
        assert len(invalid) == 3
        assert any("unknown feature 'loudness'" in m for m in messages)
        assert any("'core.chroma' does not produce feature 'rms'" in m for m in messages)
        assert any("fft_size" in m for m in messages)
        planned = s.plan()
        assert all(
            j.calculator
            in ("core.rms", "core.beats", "core.spectrogram", "core.centroid", "core.pitch")
            for j in planned
        )
        assert len(planned) == len({j.entry_key for j in planned})


def test_two_param_sets_are_two_rows_and_a_match_satisfies_exactly_one(session: Session) -> None:
    session.edit(
        "add", lambda p: edits.add_request(p, "bass", "pitch", params={"fmin": 50.0, "fmax": 400.0})
    )
    pitch_rows = rows_of(session.diagnose(), "bass", "pitch")
    assert len(pitch_rows) == 2 and {r.state for r in pitch_rows} == {"missing"}
    target = next(r for r in pitch_rows if r.params == {"fmin": 40.0, "fmax": 400.0})
    session.enqueue(session.plan(Selection(rows=(target.key,))))
    session.runner.run_all()
    states = {
        json.dumps(dict(r.params), sort_keys=True): r.state
        for r in rows_of(session.diagnose(), "bass", "pitch")
    }
    assert states == {
        '{"fmax": 400.0, "fmin": 40.0}': "ok",
        '{"fmax": 400.0, "fmin": 50.0}': "missing",
    }


def test_source_with_cache_but_no_requests_is_all_extraneous(session: Session) -> None:
    analyse_all(session)
    session.edit("rm", lambda p: edits.remove_track(p, "bass"))
    bass = [r for r in session.diagnose().rows if r.key.source == "bass"]
    assert bass and {r.state for r in bass} == {"extraneous"}


def test_corrupt_source_fails_with_message_and_the_rest_works(session: Session) -> None:
    session.project.audio_path("bass").write_bytes(b"RIFF\x00\x00garbage" * 50)
    session.enqueue(session.plan())
    results = session.runner.run_all()
    d = session.diagnose()
    assert {r.state for r in d.rows if r.key.source == "drums"} == {"ok"}
    bass = [r for r in d.rows if r.key.source == "bass"]
    assert {r.state for r in bass} == {"failed"}
    assert all("bass.wav" in (r.message or "") for r in bass)
    assert sorted(r.status for r in results).count("done") >= 1


def test_incremental_diagnosis_equals_from_scratch_and_touches_only_affected_rows(
    session: Session,
) -> None:
    analyse_all(session)
    session.diagnose()
    session.edit("tempo", lambda p: edits.set_tempo_map(p, [{"time": 0.0, "bpm": 90.0}]))
    d = session.diagnose()
    assert session.diagnoser.last_evaluated == 1  # only drums/beat_rms
    statuses = {s.id: session.source_status(s.id) for s in session.project.sources}
    fresh = diagnose(
        session.project,
        session.registry,
        statuses,
        session.store.entries(),
        session.store.jobs(),
        session.blocks_lookup(session.project, statuses),  # as the session's (tempo ranges)
    )
    assert fresh == d


def test_project_reload_keeps_staleness(session: Session, tmp_path: Path) -> None:
    analyse_all(session)
    session.edit("tempo", lambda p: edits.set_tempo_map(p, [{"time": 0.0, "bpm": 80.0}]))
    path = session.save()
    project = load_project(path)
    save_project(project, path)
    with Session.open(path, Registry.builtin()) as again:
        assert one(again.diagnose(), "drums", "beat_rms").state == "stale"


def test_another_process_can_cancel_a_queued_or_running_job(tmp_path: Path) -> None:
    path = shared_source_project(tmp_path)
    write_tone(tmp_path / "audio" / "drums.wav", 20.0, 110.0, channels=2, seed=1)  # several blocks
    with (
        Session.open(path, Registry.builtin()) as viewer,
        Session.open(path, Registry.builtin()) as worker,
    ):
        # queued in the worker, cancelled from the viewer before it starts
        [first] = worker.enqueue(worker.plan(Selection(sources=("bass",), features=("rms",))))
        assert viewer.runner.cancel(first.job_id)
        assert worker.runner.run_next().status == "cancelled"  # type: ignore[union-attr]
        # running in the worker, cancelled from the viewer at its first progress report
        [second] = worker.enqueue(worker.plan(Selection(sources=("drums",), features=("rms",))))

        def cancel_from_viewer(ev: JobUpdated) -> None:
            if ev.state == "running" and ev.progress and ev.progress < 1:
                viewer.runner.cancel(ev.job_id)

        worker.runner.events.job_updated.connect(cancel_from_viewer)
        result = worker.runner.run_next()
        assert result is not None and result.status == "cancelled"
        row = one(viewer.diagnose(), "drums", "rms")
        assert row.state == "missing"  # nothing half-written, nothing shown as running
        assert not viewer.runner.cancel(second.job_id)  # no longer active


def test_cache_limit_evicts_extraneous_first_then_oldest(session: Session) -> None:
    analyse_all(session)
    session.edit("drop", lambda p: edits.remove_request(p, "kick", 2))  # spectrogram: extraneous
    rows = session.diagnose().rows
    spectrogram = one(session.diagnose(), "drums", "spectrogram")
    assert spectrogram.state == "extraneous"
    total = session.store.total_bytes()
    assert session.enforce_cache_limit(total) == 0  # under the limit: nothing happens
    limit = total - (spectrogram.nbytes or 0)
    freed = session.enforce_cache_limit(limit)
    assert freed == spectrogram.nbytes
    assert session.store.total_bytes() <= limit
    after = session.diagnose()
    assert rows_of(after, "drums", "spectrogram") == []
    assert {r.state for r in after.rows} == {"ok"}  # everything requested survived
    # a tighter limit evicts requested data too, oldest first; those rows become missing
    oldest = min((r for r in rows if r.state == "ok"), key=lambda r: r.updated or 0)
    session.enforce_cache_limit(session.store.total_bytes() - 1)
    assert (
        one(session.diagnose(), oldest.key.source, oldest.key.feature, oldest.key.profile).state
        == "missing"
    )
    assert session.store.total_bytes() < limit
