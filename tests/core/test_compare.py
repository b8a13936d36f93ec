"""core.compare: the comparison rules (verdicts, tolerances, ranges, common grid), and the
store's previous versions and provenance they rely on."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.compare import (
    Comparison,
    clock,
    compare_sides,
    compare_with_previous,
    regenerated_label,
    rules_for,
    side_of_array,
    side_of_entry,
    side_of_npy,
)
from diagnostics_app.core.compare_rules import TOL_CENTS, TOL_CONFIDENCE, TOL_DB, TOL_LINEAR
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.store import (
    INDEX_NAME,
    PROVENANCE_KEYS,
    EntryImport,
    EntryKey,
    FeatureStore,
    current_provenance,
)

STEP = 0.01


def meta(name: str = "f", width: int = 1, channels: int = 1, **kw: Any) -> OutputMeta:
    kw.setdefault("frame_step", STEP)
    return OutputMeta(feature=name, channels=channels, width=width, **kw)


def ramp(n: int = 1000, width: int = 1) -> np.ndarray:
    t = np.arange(n, dtype=np.float32)[:, None, None]
    return np.repeat(np.sin(t / 17.0) + 2.0, width, axis=2).astype(np.float32)


def cmp(a: np.ndarray, b: np.ndarray, m: OutputMeta | None = None, **kw: Any) -> Comparison:
    m = m or meta(width=a.shape[2])
    return compare_sides(side_of_array(m, a, label="old"), side_of_array(m, b, label="new"), **kw)


# --- verdicts and statistics ------------------------------------------------------------------


def test_equal_arrays_are_identical_nan_included() -> None:
    a = ramp()
    a[10] = np.nan
    c = cmp(a, a.copy())
    assert c.verdict == "identical"
    assert (c.frames_compared, c.frames_beyond, c.ranges, c.first_diff_s) == (1000, 0, (), None)
    assert c.max_abs_diff == 0.0
    assert c.correlation == pytest.approx(1.0)


def test_tiny_differences_are_within_tolerance_not_identical() -> None:
    a = ramp()
    b = a * np.float32(1 + 1e-6)
    c = cmp(a, b, meta(unit="FS"))
    assert c.verdict == "within tolerance"
    assert c.max_abs_diff is not None and 0 < c.max_abs_diff < 1e-5
    assert c.max_rel_diff == pytest.approx(1e-6, rel=0.2)


@pytest.mark.parametrize("block_bytes", [64, 8 << 20])  # ranges carried across blocks
def test_a_changed_range_is_found_exactly(block_bytes: int) -> None:
    a = ramp()
    b = a.copy()
    b[300:420] += 0.5  # frames 300..419: 3.00 s to 4.20 s
    b[700] += 0.2
    c = cmp(a, b, block_bytes=block_bytes)
    assert c.verdict == "differs"
    assert c.frames_beyond == 121
    assert c.share_beyond == pytest.approx(121 / 1000)
    assert np.allclose(c.ranges, [(3.0, 4.2), (7.0, 7.01)])
    assert c.ranges_total == 2
    assert c.first_diff_s == pytest.approx(3.0)
    assert 3.0 <= (c.worst_diff_s or 0) < 4.2  # the 0.5 change, not the 0.2 one
    assert c.max_abs_diff == pytest.approx(0.5, abs=1e-6)
    assert c.rms_abs_diff == pytest.approx(np.sqrt((120 * 0.25 + 0.04) / 1000), rel=1e-4)


def test_nan_on_one_side_differs() -> None:
    a = ramp()
    b = a.copy()
    b[5] = np.nan
    c = cmp(a, b)
    assert c.verdict == "differs"
    assert c.nonfinite_mismatches == 1
    assert np.allclose(c.ranges, [(0.05, 0.06)])


def test_correlation_is_streamed_exactly() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5000, 2, 3)).astype(np.float32)
    b = (a + 0.3 * rng.standard_normal(a.shape)).astype(np.float32)
    c = cmp(a, b, block_bytes=1000)
    assert c.correlation == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1], rel=1e-9)


def test_tolerance_rules_by_unit() -> None:
    assert rules_for(meta(unit="dBFS")) == (TOL_DB,)
    pitch = meta(unit="Hz", width=2, width_names=("f0", "confidence"))
    assert rules_for(pitch) == (TOL_CENTS, TOL_CONFIDENCE)
    assert rules_for(meta(unit="FS")) == (TOL_LINEAR,)
    # 0.04 dB is within, 0.06 dB is not
    a = np.full((10, 1, 1), -20.0, np.float32)
    assert cmp(a, a + 0.04, meta(unit="dB")).verdict == "within tolerance"
    assert cmp(a, a + 0.06, meta(unit="dB")).verdict == "differs"
    # pitch: half a cent is within, 2 cents are not; no pitch vs a pitch always differs
    f0 = np.array([[[440.0, 0.9]]] * 10, np.float32)
    half_cent = f0.copy()
    half_cent[:, :, 0] *= 2 ** (0.5 / 1200)
    assert cmp(f0, half_cent, pitch).verdict == "within tolerance"
    two_cents = f0.copy()
    two_cents[:, :, 0] *= 2 ** (2 / 1200)
    assert cmp(f0, two_cents, pitch).verdict == "differs"
    unvoiced = f0.copy()
    unvoiced[3, 0, 0] = 0.0
    assert cmp(f0, unvoiced, pitch).frames_beyond == 1


def test_relative_difference_is_not_given_for_db() -> None:
    a = np.full((10, 1, 1), -20.0, np.float32)
    assert cmp(a, a + 1, meta(unit="dB")).max_rel_diff is None
    assert cmp(a, a + 1, meta(unit="FS")).max_rel_diff == pytest.approx(1 / 20)


# --- common time grid ------------------------------------------------------------------------


def test_another_hop_is_compared_on_a_common_grid_and_said_so() -> None:
    t_fine = np.arange(2000) * 0.005
    fine = (np.sin(t_fine) + 2)[:, None, None].astype(np.float32)
    t_coarse = np.arange(1000) * 0.01
    coarse = (np.sin(t_coarse) + 2)[:, None, None].astype(np.float32)
    old = side_of_array(meta(frame_step=0.01), coarse, label="previous")
    new = side_of_array(meta(frame_step=0.005), fine, label="current")
    c = compare_sides(old, new)
    assert c.common_grid
    assert c.verdict == "within tolerance"  # never "identical" on an interpolated grid
    assert c.note is not None and "common time grid" in c.note and "frame step" in c.note
    assert c.frames_compared == 1000  # the coarser side's frames within the common span
    changed = fine.copy()
    changed[1000:1200] += 1.0  # 5.0 s .. 6.0 s
    c2 = compare_sides(old, side_of_array(meta(frame_step=0.005), changed, label="current"))
    assert c2.verdict == "differs"
    start, end = c2.ranges[0]
    assert 4.98 <= start <= 5.0 and 5.99 <= end <= 6.02


def test_other_bins_are_matched_by_frequency() -> None:
    bins_a = tuple(float(x) for x in np.linspace(0, 1000, 11))
    bins_b = tuple(float(x) for x in np.linspace(0, 1000, 21))
    a = np.tile(np.array(bins_a, np.float32), (50, 1, 1))
    b = np.tile(np.array(bins_b, np.float32), (50, 1, 1))
    c = compare_sides(
        side_of_array(meta(width=11, bins=bins_a), a, label="old"),
        side_of_array(meta(width=21, bins=bins_b), b, label="new"),
    )
    assert c.common_grid and c.verdict == "within tolerance"
    assert c.note is not None and "11 vs 21 columns" in c.note


def test_mismatched_layouts_are_one_line_errors() -> None:
    a = ramp(width=2)
    with pytest.raises(DiagnosticsError, match="channel") as err:
        compare_sides(
            side_of_array(meta(width=2), a),
            side_of_array(meta(width=1, channels=2), a[:, :, :1].repeat(2, 1)),
        )
    assert "\n" not in str(err.value)
    with pytest.raises(DiagnosticsError, match="bin centres"):
        compare_sides(side_of_array(meta(width=2), a), side_of_array(meta(width=1), a[:, :, :1]))


def test_times_that_do_not_increase_are_refused() -> None:
    a = ramp(5)
    t = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    bad = t.copy()
    bad[-1] = 0.7  # a damaged times file
    m = meta(frame_step=None)
    with pytest.raises(DiagnosticsError, match="frame times do not increase"):
        compare_sides(side_of_array(m, a, bad, "previous"), side_of_array(m, a, t, "current"))


def test_no_common_time_differs() -> None:
    a = ramp(100)
    later = meta(frame_step=0.02, frame_start=100.0)
    c = compare_sides(side_of_array(meta(), a), side_of_array(later, a))
    assert c.verdict == "differs" and c.note is not None and "no common time" in c.note


# --- files ------------------------------------------------------------------------------------


def test_npy_files_of_several_shapes(tmp_path: Path) -> None:
    a = ramp()
    like = side_of_array(meta(), a, label="current")
    for shape in [(1000,), (1000, 1), (1000, 1, 1)]:
        np.save(tmp_path / "x.npy", a.reshape(shape))
        assert compare_sides(side_of_npy(tmp_path / "x.npy", like), like).verdict == "identical"
    np.save(tmp_path / "bad.npy", np.zeros((1000, 3)))
    with pytest.raises(DiagnosticsError, match=r"shape \(1000, 3\) does not match"):
        side_of_npy(tmp_path / "bad.npy", like)
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    with pytest.raises(DiagnosticsError, match=r"not a readable \.npy") as err:
        side_of_npy(tmp_path / "junk.npy", like)
    assert "\n" not in str(err.value)
    np.save(tmp_path / "obj.npy", np.array(["a", "b"]))
    with pytest.raises(DiagnosticsError, match="not numbers"):
        side_of_npy(tmp_path / "obj.npy", like)
    with pytest.raises(DiagnosticsError, match="no such file"):
        side_of_npy(tmp_path / "none.npy", like)


def test_clock_and_labels() -> None:
    assert clock(3.0) == "0:03.000"
    assert clock(61.2345) == "1:01.234" or clock(61.2345) == "1:01.235"
    assert clock(3725.5) == "62:05.500"  # minutes unbounded, as on the ruler
    assert regenerated_label("within tolerance") == "identical"
    assert regenerated_label("differs") == "changed"
    assert regenerated_label(None) is None


# --- the store: previous versions and provenance -------------------------------------------


def imp(store: FeatureStore, data: np.ndarray, version: int, m: OutputMeta | None = None) -> Any:
    m = m or meta(unit="FS")
    item = EntryImport(
        EntryKey.of("s", "c"), {"v": version}, version, {m.feature: m}, {m.feature: data}
    )
    return store.import_entries([item], durable=True)[0]


def test_replacing_keeps_the_previous_version(tmp_path: Path) -> None:
    with FeatureStore.open(tmp_path / "cache") as store:
        first = imp(store, ramp(), 1)
        assert store.previous(first.key, "f") is None
        second = imp(store, ramp() + 1, 2)
        prev = store.previous(second.key, "f")
        assert prev is not None
        assert (prev.commit_id, prev.replaced_by, prev.calculator_version) == (
            first.commit_id,
            second.commit_id,
            1,
        )
        assert prev.fingerprint == {"v": 1}
        np.testing.assert_array_equal(store.load_previous(prev).data, ramp())
        # the size shown counts previous versions
        assert store.total_bytes() == second.nbytes + prev.nbytes
        c = compare_with_previous(store, second, "f")
        assert c is not None and c.verdict == "differs" and c.frames_beyond == 1000
        # the next replacement drops it (its files too)
        third = imp(store, ramp(), 3)
        prev3 = store.previous(third.key, "f")
        assert prev3 is not None and prev3.commit_id == second.commit_id
        assert not (store.root / prev.feature.path).exists()
        freed = store.drop_previous([(third.key, "f")])
        assert freed == prev3.nbytes and store.previous(third.key, "f") is None
        assert not (store.root / prev3.feature.path).exists()
        assert store.total_bytes() == third.nbytes


def test_regenerated_verdict_is_recorded_for_the_current_commit_only(tmp_path: Path) -> None:
    with FeatureStore.open(tmp_path / "cache") as store:
        imp(store, ramp(), 1)
        second = imp(store, ramp(), 2)
        assert store.set_regenerated(second.key, "f", second.commit_id, "identical")
        listed = store.entries()[0]
        assert listed.features["f"].regenerated == "identical"
        assert not store.set_regenerated(second.key, "f", "stale-commit", "differs")
        with pytest.raises(ValueError, match="verdict"):
            store.set_regenerated(second.key, "f", second.commit_id, "same")
        third = imp(store, ramp(), 3)
        assert store.entries()[0].features["f"].regenerated is None  # a new commit: not compared
        assert third.features["f"].regenerated is None


def test_provenance_is_recorded_at_commit(tmp_path: Path) -> None:
    with FeatureStore.open(tmp_path / "cache") as store:
        entry = imp(store, ramp(), 1)
        assert set(entry.provenance) == set(PROVENANCE_KEYS)
        assert entry.provenance == current_provenance()
        assert entry.provenance["numpy"] == np.__version__
        assert store.entries()[0].provenance == current_provenance()
        old = {**current_provenance(), "numpy": "1.0.0"}
        item = EntryImport(
            EntryKey.of("s", "c"), {"v": 2}, 2, {"f": meta()}, {"f": ramp()}, provenance=old
        )
        store.import_entries([item])
        assert store.entries()[0].provenance["numpy"] == "1.0.0"
        prev = store.previous(entry.key, "f")
        assert prev is not None and prev.provenance == current_provenance()


def test_prune_restore_keeps_provenance_and_verdict(tmp_path: Path) -> None:
    with FeatureStore.open(tmp_path / "cache") as store:
        imp(store, ramp(), 1)
        second = imp(store, ramp(), 2)
        store.set_regenerated(second.key, "f", second.commit_id, "identical")
        prune_id = store.prune([(second.key, "f")])
        assert store.entries() == []
        assert store.previous(second.key, "f") is not None  # a prune leaves it
        store.restore(prune_id)
        back = store.entries()[0]
        assert back.features["f"].regenerated == "identical"
        assert back.provenance == current_provenance()
        store.purge(store.prune([(second.key, "f")]))  # gone for good: its previous goes too
        assert store.previous(second.key, "f") is None
        assert store.total_bytes() == 0


def test_an_index_of_schema_4_is_migrated(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with FeatureStore.open(cache) as store:
        imp(store, ramp(), 1)
    with sqlite3.connect(cache / INDEX_NAME) as db:  # as a version-4 program left it
        db.execute("DROP TABLE previous")
        db.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
        for table, column in [
            ("entries", "provenance"),
            ("features", "regenerated"),
            ("trash", "provenance"),
            ("trash", "regenerated"),
        ]:
            db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    with FeatureStore.open(cache) as store:
        entry = store.entries()[0]
        assert entry.provenance == {} and entry.features["f"].regenerated is None
        second = imp(store, ramp() + 1, 2)
        assert store.previous(second.key, "f") is not None
        assert json.loads(second.provenance_json or "{}") == current_provenance()


def test_side_of_entry_streams_u16db(tmp_path: Path) -> None:
    m = meta("spec", width=4, unit="dBFS", storage="u16db", value_range=(-80.0, 0.0))
    data = -np.abs(np.random.default_rng(0).standard_normal((300, 1, 4)) * 20).astype(np.float32)
    with FeatureStore.open(tmp_path / "cache") as store:
        imp(store, data, 1, m)
        e2 = imp(store, data, 2, m)
        c = compare_with_previous(store, e2, "spec", block_bytes=100)
        assert c is not None and c.verdict == "identical"  # the same quantised values
        assert side_of_entry(store, e2, "spec").frames == 300


def test_check_json_writes_regenerated_as_the_encoder_does() -> None:
    from dataclasses import replace

    from diagnostics_app import check_json, cli
    from diagnostics_app.core.diagnostics import STATES, Row, RowKey

    base = Row(RowKey("s", "f", "c", "default", "{}"), "ok")
    rows = [
        replace(base, regenerated=v) for v in (None, "identical", "within tolerance", "differs")
    ]
    head = {"schema_version": 1, "project": "p", "summary": {s: 0 for s in STATES}}
    fast = check_json.check_text(cli._json_text({**head, "rows": []}), rows)
    assert fast == cli._json_text({**head, "rows": [r.to_json() for r in rows]})
    got = [r["regenerated"] for r in json.loads(fast)["rows"]]
    assert got == [None, "identical", "identical", "changed"]
    assert [r.note for r in rows] == [
        None,
        "regenerated — identical to the previous version",
        "regenerated — identical to the previous version",
        "regenerated — differs from the previous version",
    ]


def test_a_verdict_that_cannot_be_written_leaves_the_commit_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """record_regenerations runs after a pass committed: a store error while recording (index
    busy or read-only) must not reach the pass, which would then be reported as failed."""
    from diagnostics_app.core.compare import record_regenerations
    from diagnostics_app.core.errors import StoreError

    with FeatureStore.open(tmp_path / "cache") as store:
        imp(store, ramp(), 1)
        second = imp(store, ramp(), 2)

        def refuse(*_: Any) -> bool:
            raise StoreError("index: database is locked")

        monkeypatch.setattr(store, "set_regenerated", refuse)
        record_regenerations(store, [second])  # no error
        assert store.entries()[0].features["f"].regenerated is None
        monkeypatch.undo()
        record_regenerations(store, [second])
        assert store.entries()[0].features["f"].regenerated == "identical"
