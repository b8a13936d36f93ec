"""Changed ranges in the diagnosis: a source's file edited in one place after analysis; the
stale rows' ``audio.content`` reason names the changed time ranges and the frames they affect,
in the rows, in ``check --json`` and ``explain --json``, and in the stale message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from diagnostics_app.cli import main
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.diagnostics import Row
from diagnostics_app.core.ranges import BLOCK_FRAMES
from diagnostics_app.core.session import Session
from tests.core.project_factory import write_project

SR = 22050
N = BLOCK_FRAMES * 3 + 1000  # 3 full blocks and a partial one (~8.9 s)


def _project(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "a.wav", 0.3 * rng.standard_normal((N, 1)), SR, "PCM_16")
    return write_project(
        tmp_path,
        {
            "name": "Ranges",
            "sources": [{"id": "a", "path": "audio/a.wav"}],
            "tracks": [
                {
                    "id": "t",
                    "name": "T",
                    "source": "a",
                    "requests": [{"feature": "rms"}, {"feature": "onset"}],
                }
            ],
        },
    )


def _edit(path: Path, start: int, stop: int) -> None:
    data, sr = sf.read(path, dtype="int16", always_2d=True)
    data[start:stop] //= 2
    sf.write(path, data, sr, "PCM_16")


def _rows(project: Path) -> dict[str, Row]:
    with Session.open(project, Registry.builtin()) as session:
        return {r.key.feature: r for r in session.diagnose().rows}


@pytest.fixture
def analysed(tmp_path: Path) -> Path:
    project = _project(tmp_path)
    with Session.open(project, Registry.builtin()) as session:
        session.enqueue(session.plan())
        assert all(r.status == "done" for r in session.runner.run_all())
    return project


def test_an_edit_in_the_second_block_is_reported_as_that_block(analysed: Path) -> None:
    _edit(analysed.parent / "audio" / "a.wav", BLOCK_FRAMES + 100, BLOCK_FRAMES + 200)
    rows = _rows(analysed)
    rms = rows["rms"]
    assert rms.state == "stale"
    (reason,) = rms.reasons
    assert reason.input == "audio.content"
    block = (round(BLOCK_FRAMES / SR, 6), round(2 * BLOCK_FRAMES / SR, 6))
    assert reason.ranges == (block,)
    # rms: window 2048, hop 512 by default: the frames whose windows overlap the block
    first = (BLOCK_FRAMES - 1024 + 1 + 511) // 512
    last = (2 * BLOCK_FRAMES + 1024 + 511) // 512 - 1
    assert reason.affected_frames == ((first, last),)
    assert "changed 0:02.972–0:05.944" in (rms.message or "")
    # onset's reach is unbounded (a global clip level): every frame
    assert rows["onset"].reasons[0].affected_frames == "all"
    assert rows["onset"].reasons[0].ranges == (block,)


def test_appended_audio_is_a_range_to_the_new_end(analysed: Path) -> None:
    path = analysed.parent / "audio" / "a.wav"
    data, sr = sf.read(path, dtype="int16", always_2d=True)
    sf.write(path, np.concatenate([data, data[:5000]]), sr, "PCM_16")
    (reason,) = _rows(analysed)["rms"].reasons
    assert reason.ranges == ((round(3 * BLOCK_FRAMES / SR, 6), round((N + 5000) / SR, 6)),)


def test_a_new_sample_rate_is_a_whole_file_change(analysed: Path) -> None:
    path = analysed.parent / "audio" / "a.wav"
    data, _ = sf.read(path, dtype="int16", always_2d=True)
    sf.write(path, data, 44100, "PCM_16")
    rms = _rows(analysed)["rms"]
    content = next(r for r in rms.reasons if r.input == "audio.content")
    assert content.ranges is None and content.affected_frames is None
    assert "changed" not in (rms.message or "")


def test_check_and_explain_json_carry_the_ranges(
    analysed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(analysed.parent / "audio" / "a.wav", 10, 20)
    assert main(["check", str(analysed), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    rms = next(r for r in doc["rows"] if r["feature"] == "rms")
    (reason,) = rms["reasons"]
    assert reason["ranges"] == [[0.0, round(BLOCK_FRAMES / SR, 6)]]
    assert reason["affected_frames"] == [[0, (BLOCK_FRAMES + 1024 + 511) // 512 - 1]]
    assert main(["explain", str(analysed), "--source", "a", "--feature", "rms", "--json"]) == 1
    explained = json.loads(capsys.readouterr().out)
    assert explained["row"]["reasons"][0]["ranges"] == reason["ranges"]
    assert main(["check", str(analysed)]) == 1
    assert "changed 0:00.000–0:02.972" in capsys.readouterr().out


def test_only_the_bytes_changed(analysed: Path) -> None:
    """Rewritten with other bytes (a float WAV) but the same decoded samples: no range."""
    path = analysed.parent / "audio" / "a.wav"
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    sf.write(path, data, sr, "FLOAT")
    (reason,) = _rows(analysed)["rms"].reasons
    assert reason.ranges == () and reason.affected_frames == ()
    assert "no decoded sample changed" in str(reason)


def test_blocks_are_digested_by_the_analysis_not_by_a_check(tmp_path: Path) -> None:
    """``check`` of files never analysed decodes nothing for the blocks; the analysis digests
    the version its entries are computed from (so a later edit finds them)."""
    project = _project(tmp_path)
    with Session.open(project, Registry.builtin()) as session:
        session.diagnose()
        status = session.source_status("a")
        assert status.facts is not None
        assert session.store.get_blocks(status.facts.digest) is None
        session.enqueue(session.plan())
        session.runner.run_all()
        blocks = session.store.get_blocks(status.facts.digest)
        assert blocks is not None and blocks.frames == N and blocks.count == 4


def test_the_memo_does_not_serve_rows_without_ranges_to_a_call_with_them(analysed: Path) -> None:
    from diagnostics_app.core.diagnostics import Diagnoser

    _edit(analysed.parent / "audio" / "a.wav", 10, 20)
    with Session.open(analysed, Registry.builtin()) as session:
        session.diagnose()  # digests the edited version's blocks into the store
        project = session.project
        statuses = {s.id: session.source_status(s.id) for s in project.sources}
        entries = list(session.store.entries())
        diagnoser = Diagnoser(session.registry)
        plain = diagnoser.diagnose(project, statuses, entries)
        assert all(r.reasons[0].ranges is None for r in plain.rows)
        ranged = diagnoser.diagnose(project, statuses, entries, (), session.store.get_blocks)
        assert all(r.reasons[0].ranges for r in ranged.rows)
