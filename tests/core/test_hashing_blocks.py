"""Block digests and their algorithm (core.ranges, core.hashing): new digests are XXH3-128
("x3"), stores written before schema 9 hold BLAKE2b-128 ("b2") ones. Digests of two
algorithms are never compared (the whole file changed, so a planned partial recomputation runs
whole); a windowed decode is checked against digests with their own algorithm; a pass over
audio whose stored digests are old makes them again with the current algorithm."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from diagnostics_app.core import hashing, partial_work, planner
from diagnostics_app.core.audio import iter_blocks, read_info
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.engine import PassPlan
from diagnostics_app.core.engine_window import PartialUnsupported, recompute_frames
from diagnostics_app.core.params import resolve_params
from diagnostics_app.core.ranges import (
    BLOCK_FRAMES,
    BlockDigests,
    BlockHasher,
    changed_ranges,
    digest_blocks,
)
from diagnostics_app.core.session import Session
from diagnostics_app.core.store import FeatureStore
from diagnostics_app.core.tempo import TempoMap
from tests.core import audio_factory as af
from tests.core.old_hashes import b2_blocks, block_rows, make_schema_8
from tests.core.partial_support import calculators, plan_wanted
from tests.core.test_partial_jobs import _assert_same, _edit, _middle, _project, _twins


def _digests(samples: np.ndarray, algorithm: str) -> BlockDigests:
    hasher = BlockHasher(8000, samples.shape[0], 512, algorithm)
    hasher.feed(samples)
    return hasher.result()


def test_digests_of_two_algorithms_are_never_compared() -> None:
    x = np.random.default_rng(3).standard_normal((2, 3000)).astype(np.float32)
    new, old = _digests(x, "x3"), _digests(x, "b2")
    assert (new.algorithm, old.algorithm) == ("x3", "b2")
    assert new.digests != old.digests and len(new.digests) == len(old.digests) == 6 * 16
    assert changed_ranges(old, old) == () and changed_ranges(new, new) == ()
    assert changed_ranges(old, new) is None and changed_ranges(new, old) is None
    assert digest_blocks([x], 8000, 2, 512).algorithm == hashing.CURRENT == "x3"
    with pytest.raises(ValueError, match="unknown algorithm 'md5'"):
        BlockHasher(8000, 2, 512, "md5")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """6 blocks of 22.05 kHz stereo FLAC, and the same with one block's samples halved."""
    d = tmp_path_factory.mktemp("pair")
    x = np.random.default_rng(5).uniform(-0.4, 0.4, (6 * BLOCK_FRAMES - 321, 2))
    edited = x.copy()
    edited[3 * BLOCK_FRAMES + 50 : 4 * BLOCK_FRAMES - 50] *= 0.5
    paths = (d / "old.flac", d / "new.flac")
    for path, data in zip(paths, (x, edited), strict=True):
        af.write(path, data, 22050)
    return paths


def _old_digests(path: Path) -> BlockDigests:
    """BLAKE2b block digests, as a store of schema 8 holds them (written independently)."""
    info = read_info(path)
    return BlockDigests(
        info.sample_rate,
        info.channels,
        info.frames,
        BLOCK_FRAMES,
        b2_blocks(path, BLOCK_FRAMES),
        "b2",
    )


def test_a_window_is_checked_against_digests_with_their_algorithm(
    pair: tuple[Path, Path],
) -> None:
    old_path, new_path = pair
    old_d, new_d = _old_digests(old_path), _old_digests(new_path)
    info = read_info(new_path)
    fresh = digest_blocks(iter_blocks(new_path), info.sample_rate, info.channels)
    assert fresh.digests != new_d.digests  # XXH3 now: the same audio, other digests
    calcs = calculators("core.rms")
    params = resolve_params()
    wanted = plan_wanted(calcs, params, old_d, new_d)  # old stores compare among themselves
    plan = PassPlan(str(new_path), params, TempoMap(), calcs)
    result = recompute_frames(plan, wanted, expected=new_d)
    assert 0 < result.decoded < result.total
    raw = bytearray(new_d.digests)
    raw[3 * 16] ^= 1  # a block the window decodes
    with pytest.raises(PartialUnsupported, match=r"block at \d+\.\d\d s differs"):
        recompute_frames(plan, wanted, expected=replace(new_d, digests=bytes(raw)))


def test_an_edit_after_the_upgrade_recomputes_whole_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The analysed version's digests are BLAKE2b (schema 8), the edited one's XXH3: no ranges
    are diagnosed, and a job planned partial anyway runs whole, saying nothing of a partial
    recomputation; the data equals a whole recomputation's."""
    a, b = _twins(tmp_path, ("rms", "spectrogram"))
    assert make_schema_8(a.parent / ".featurecache") == 1
    for p in (a, b):
        _edit(p, _middle)
    with Session.open(a, Registry.builtin()) as session:
        rows = session.diagnose().rows
        assert {r.state for r in rows} == {"stale"}
        assert all(r.reasons[0].ranges is None for r in rows)
        assert not any(job.partial for job in session.plan())
    recomputed: list[Any] = []
    monkeypatch.setattr(partial_work, "recompute_frames", lambda *a, **k: recomputed.append(a))
    monkeypatch.setattr(planner, "partial_row", lambda row: True)  # planned partial anyway
    with Session.open(a, Registry.builtin()) as session:
        jobs = session.plan()
        assert jobs and all(job.partial for job in jobs)
        session.enqueue(jobs)
        results = session.runner.run_all()
        assert [(r.status, r.message) for r in results] == [("done", None)]
        assert {r.state for r in session.diagnose().rows} == {"ok"}
    assert recomputed == []  # no window was decoded: the versions are not comparable
    monkeypatch.undo()
    with Session.open(b, Registry.builtin()) as session:
        session.runner.partial = False
        session.enqueue(session.plan())
        assert [r.status for r in session.runner.run_all()] == ["done"]
    _assert_same(a, b)


def test_a_pass_makes_old_digests_of_its_audio_again_with_the_current_algorithm(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path / "p", ("rms",))
    with Session.open(project, Registry.builtin()) as session:
        session.enqueue(session.plan())
        session.runner.run_all()
    cache = project.parent / ".featurecache"
    current = block_rows(cache)
    make_schema_8(cache)
    with FeatureStore.open(cache):  # migrated: the row kept, its digests BLAKE2b
        pass
    assert {a for _, a in block_rows(cache).values()} == {"b2"}
    doc = json.loads(project.read_text(encoding="utf-8"))
    doc["tracks"][0]["requests"].append({"feature": "centroid"})  # a pass over the same audio
    project.write_text(json.dumps(doc), encoding="utf-8")
    with Session.open(project, Registry.builtin()) as session:
        session.enqueue(session.plan())
        assert [r.status for r in session.runner.run_all()] == ["done"]
    assert block_rows(cache) == current  # XXH3 again, from the pass's own decode
