"""Partial recomputation through the planner, the job runner and the store (issue 13): a
source edited in one place after analysis is brought up to date by recomputing only the
frames the edit touches, and the store then holds exactly what a whole recomputation of the
edited file holds (a copy of the project recomputed whole is the reference)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from diagnostics_app.cli import main
from diagnostics_app.core import partial_work
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.ranges import BLOCK_FRAMES
from diagnostics_app.core.session import Session
from diagnostics_app.core.store import StaleBase
from tests.core.project_factory import write_project

SR = 22050
N = BLOCK_FRAMES * 6 + 1000  # six full blocks and a partial one (~17.9 s)
BOUNDED = ("peaks", "rms", "spectrogram", "mel", "chroma", "centroid", "pitch")


def _project(folder: Path, features: tuple[str, ...] = BOUNDED, channels: int = 1) -> Path:
    rng = np.random.default_rng(11)
    (folder / "audio").mkdir(parents=True)
    t = np.arange(N) / SR
    tone = 0.3 * np.sin(2 * np.pi * 220.0 * t)[:, None] + 0.05 * rng.standard_normal((N, channels))
    sf.write(folder / "audio" / "a.wav", tone, SR, "PCM_16")
    return write_project(
        folder,
        {
            "name": "Partial",
            "tempo_map": [{"time": 0.0, "bpm": 120.0}],
            "sources": [{"id": "a", "path": "audio/a.wav"}],
            "tracks": [
                {
                    "id": "t",
                    "name": "T",
                    "source": "a",
                    "requests": [{"feature": f} for f in features],
                }
            ],
        },
    )


def _analyse(project: Path, partial: bool = True) -> list[Any]:
    with Session.open(project, Registry.builtin()) as session:
        session.runner.partial = partial
        jobs = session.plan()
        session.enqueue(jobs)
        results = session.runner.run_all()
        assert all(r.status == "done" for r in results), [r.message for r in results]
        assert {r.state for r in session.diagnose().rows} == {"ok"}
        return [(job, r) for job in jobs for r in results if job in r.batch.jobs]


def _data(project: Path) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    with Session.open(project, Registry.builtin()) as session:
        out = {}
        for entry in session.store.entries():
            for feature in entry.features:
                loaded = session.store.load(entry, feature, mmap=False)
                out[(entry.key.calculator_id, feature)] = (
                    np.array(loaded.data),
                    np.array(loaded.times),
                )
        return out


def _edit(project: Path, change: Any) -> None:
    path = project.parent / "audio" / "a.wav"
    data, sr = sf.read(path, dtype="int16", always_2d=True)
    sf.write(path, change(data), sr, "PCM_16")


def _twins(tmp_path: Path, features: tuple[str, ...] = BOUNDED) -> tuple[Path, Path]:
    """A project analysed, and a copy of it (store and audio included)."""
    a = _project(tmp_path / "a", features)
    _analyse(a)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    return a, tmp_path / "b" / "project.json"


def _verdicts(project: Path) -> dict[tuple[str, str], str | None]:
    with Session.open(project, Registry.builtin()) as session:
        return {
            (e.key.calculator_id, f): e.features[f].regenerated
            for e in session.store.entries()
            for f in e.features
        }


def _assert_same(a: Path, b: Path, verdicts: bool = False) -> None:
    da, db = _data(a), _data(b)
    assert da.keys() == db.keys()
    for key in da:
        assert np.array_equal(da[key][0], db[key][0], equal_nan=True), key
        assert np.array_equal(da[key][1], db[key][1]), key
    if verdicts:  # the regeneration verdicts too (recorded from the spliced frames alone)
        va, vb = _verdicts(a), _verdicts(b)
        assert va == vb and set(va.values()) <= {"identical", "within tolerance", "differs"}


def _middle(data: np.ndarray) -> np.ndarray:
    data[3 * BLOCK_FRAMES + 100 : 3 * BLOCK_FRAMES + 2000] //= 2
    return data


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(samples decoded, samples in the file) of every partial recomputation."""
    seen: list[tuple[int, int]] = []
    real = partial_work.recompute_frames

    def spy(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        seen.append((result.decoded, result.total))
        return result

    monkeypatch.setattr(partial_work, "recompute_frames", spy)
    return seen


def test_an_edit_recomputes_only_its_frames_and_equals_a_whole_recomputation(
    tmp_path: Path, decoded: list[tuple[int, int]]
) -> None:
    a, b = _twins(tmp_path)
    for p in (a, b):
        _edit(p, _middle)
    done = _analyse(a)
    assert done and all(job.partial for job, _ in done)
    assert all((r.message or "").startswith("partial: ") for _, r in done)
    # one decode for the pass's calculators, of a few blocks around the edit, not the file
    assert len(decoded) == 1
    samples, total = decoded[0]
    assert total == N
    assert samples <= 3 * BLOCK_FRAMES
    _analyse(b, partial=False)
    _assert_same(a, b, verdicts=True)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: np.concatenate([d, d[: BLOCK_FRAMES // 3]]),  # appended
        lambda d: d[: N - BLOCK_FRAMES - 777],  # truncated
        lambda d: np.concatenate([d[:5000], d[4000:]]),  # inserted near the start
    ],
    ids=["append", "truncate", "insert"],
)
def test_length_changes_are_spliced_to_the_new_end(tmp_path: Path, change: Any) -> None:
    a, b = _twins(tmp_path)
    for p in (a, b):
        _edit(p, change)
    done = _analyse(a)
    assert all(job.partial for job, _ in done)
    assert all((r.message or "").startswith("partial: ") for _, r in done)
    _analyse(b, partial=False)
    _assert_same(a, b)


def test_another_changed_input_recomputes_whole(tmp_path: Path) -> None:
    a, b = _twins(tmp_path, ("rms",))
    for p in (a, b):
        _edit(p, _middle)
        doc = json.loads(p.read_text(encoding="utf-8"))
        doc["profiles"] = {"default": {"window_size": 1024}}  # the same entry, another input
        p.write_text(json.dumps(doc), encoding="utf-8")
    done = _analyse(a)
    assert not any(job.partial for job, _ in done)
    assert all(r.message is None for _, r in done)
    _analyse(b, partial=False)
    _assert_same(a, b)


def test_unbounded_features_run_whole_beside_partial_ones(tmp_path: Path) -> None:
    a, b = _twins(tmp_path, ("rms", "onset", "spectrogram"))
    for p in (a, b):
        _edit(p, _middle)
    done = _analyse(a)
    partial = {job.calculator: job.partial for job, _ in done}
    assert partial["core.onset"] is False
    assert partial["core.rms"] is True
    # one pass, one job record: its message names what ran whole beside the partial ones
    assert {r.message for _, r in done} == {
        next(r.message for _, r in done if (r.message or "").startswith("partial: "))
    }
    assert all((r.message or "").endswith("recomputed; whole: core.onset") for _, r in done)
    _analyse(b, partial=False)
    _assert_same(a, b)


def test_an_entry_changed_since_it_was_read_is_recomputed_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = _twins(tmp_path, ("rms",))
    for p in (a, b):
        _edit(p, _middle)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise StaleBase("the entry was recomputed since it was read")

    with Session.open(a, Registry.builtin()) as session:
        monkeypatch.setattr(session.store, "commit_splices", refuse)
        session.enqueue(session.plan())
        (result,) = session.runner.run_all()
        assert result.status == "done"
        assert "recomputed whole" in (result.message or "")
        assert {r.state for r in session.diagnose().rows} == {"ok"}
    _analyse(b, partial=False)
    _assert_same(a, b)


def test_a_tempo_change_resegments_only_the_beats_after_it(
    tmp_path: Path, decoded: list[tuple[int, int]]
) -> None:
    a, b = _twins(tmp_path, ("beat_rms",))
    for p in (a, b):
        doc = json.loads(p.read_text(encoding="utf-8"))
        doc["tempo_map"] = [{"time": 0.0, "bpm": 120.0}, {"time": 12.0, "bpm": 90.0}]
        p.write_text(json.dumps(doc), encoding="utf-8")
    with Session.open(a, Registry.builtin()) as session:
        (row,) = session.diagnose().rows
    (reason,) = row.reasons
    assert reason.input == "tempo_map"
    # 120 BPM, 4 subdivisions: a frame every 0.125 s; from 12 s on, the frames are re-cut
    assert reason.ranges == ((12.0, round(N / SR, 6)),)
    assert isinstance(reason.affected_frames, tuple)
    assert reason.affected_frames[0][0] == 96
    done = _analyse(a)
    assert all(job.partial for job, _ in done)
    assert all((r.message or "").startswith("partial: ") for _, r in done)
    (seen,) = decoded
    assert seen[0] < N * 0.5  # the audio from the first changed beat on, not the file
    _analyse(b, partial=False)
    _assert_same(a, b)


def test_analyze_json_reports_partial_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _project(tmp_path / "a", ("rms",))
    _analyse(a)
    _edit(a, _middle)
    assert main(["analyze", str(a), "--dry-run", "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert [j.get("partial") for j in planned["jobs"]] == [True]
    assert main(["analyze", str(a), "--json"]) == 0
    ran = json.loads(capsys.readouterr().out)
    assert ran["jobs"][0]["message"].startswith("partial: ")


def test_an_audio_edit_recomputes_only_the_beats_it_overlaps(tmp_path: Path) -> None:
    a, b = _twins(tmp_path, ("beat_rms", "rms"))
    for p in (a, b):
        _edit(p, _middle)
    with Session.open(a, Registry.builtin()) as session:
        rows = {r.key.feature: r for r in session.diagnose().rows}
    assert isinstance(rows["beat_rms"].reasons[0].affected_frames, tuple)
    done = _analyse(a)
    assert all(job.partial for job, _ in done)
    assert all((r.message or "").startswith("partial: ") for _, r in done)
    _analyse(b, partial=False)
    _assert_same(a, b)


def test_the_same_samples_in_new_bytes_recompute_nothing(
    tmp_path: Path, decoded: list[tuple[int, int]]
) -> None:
    """Re-saved as float WAV: another file, the same decoded samples (ranges []): the rows
    take the new fingerprint with no frame recomputed, and their verdict is "identical"."""
    a, b = _twins(tmp_path, ("rms", "spectrogram"))
    for p in (a, b):
        path = p.parent / "audio" / "a.wav"
        data, sr = sf.read(path, dtype="float32", always_2d=True)
        sf.write(path, data, sr, "FLOAT")
    done = _analyse(a)
    assert all(job.partial for job, _ in done)
    assert all((r.message or "").startswith("partial: 0:00.000 of ") for _, r in done)
    assert [d[0] for d in decoded] == [0]
    _analyse(b, partial=False)
    _assert_same(a, b, verdicts=True)
    assert set(_verdicts(a).values()) == {"identical"}
