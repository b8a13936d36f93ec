"""``diagnostics-app verify``: silent drift (stored data the current code no longer computes,
with every fingerprint input unchanged) is found by recomputing a seeded sample in a scratch
store; ``--repair`` marks drifted rows stale with reason ``environment`` until regenerated.

Drift is simulated as an older library would have left it: the stored ``.npy`` values are
changed on disk and the store's checksum and stamp are made consistent with them, so the store
itself is sound (``check --verify`` passes) and only a recomputation can tell."""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import sqlite3
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from diagnostics_app.core.calculators.registry import PLUGIN_PATH_ENV
from diagnostics_app.core.diagnostics import Row, RowKey, diagnose
from diagnostics_app.core.session import Session
from diagnostics_app.core.store import (
    SCHEMA_VERSION,
    FeatureStore,
    current_provenance,
    provenance_text,
)
from diagnostics_app.core.store.arrays import npy_header
from diagnostics_app.core.verify_drift import mark_drifted, sample_rows, verify
from tests.core import test_cli
from tests.core.project_factory import SR, write_project, write_tone
from tests.core.test_cli import Cli, assert_bad_input, rows_by, tree_digest
from tests.core.test_compare_cli import CHANGED
from tests.core.test_compare_cli import PLUGIN as LEVEL_PLUGIN

# the CLI tests' fixtures, used here too
_no_plugins = test_cli._no_plugins
analysed = test_cli.analysed
cli = test_cli.cli
project = test_cli.project

DRIFT_FRAMES = slice(10, 20)


def cache_of(project: Path) -> Path:
    return project.parent / ".featurecache"


OLD_NUMPY = {**current_provenance(), "numpy": "1.26.4", "scipy": "1.11.4"}


def alter_stored(
    project: Path,
    source: str,
    feature: str,
    change: Callable[[np.ndarray], None],
    produced_by: Mapping[str, Any] | None = OLD_NUMPY,
) -> None:
    """Rewrite a stored feature's values in place, and its checksum and stamp in the index, as
    if another version of a numeric library had computed them: the store stays consistent,
    and the entry's provenance says which versions (``produced_by``; None: as recorded)."""
    cache = cache_of(project)
    db = sqlite3.connect(cache / "index.sqlite")
    try:
        eid, rel, encoding, frames, channels, width = db.execute(
            "SELECT f.entry_id, f.path, f.encoding, f.frames, f.channels, f.width "
            "FROM features f JOIN entries e ON e.id = f.entry_id "
            "WHERE e.source_id = ? AND f.feature = ?",
            (source, feature),
        ).fetchone()
        dtype = np.dtype("<f4" if encoding == "float32" else "<u2")
        shape = (frames, channels, width)
        header = npy_header(dtype, shape)
        path = cache / rel
        raw = path.read_bytes()
        assert raw.startswith(header)
        values = np.frombuffer(raw[len(header) :], dtype).reshape(shape).copy()
        change(values)
        body = values.tobytes()
        path.write_bytes(header + body)
        st = os.stat(path)
        if produced_by is not None:
            db.execute(
                "UPDATE entries SET provenance = ? WHERE id = ?",
                (provenance_text(produced_by), eid),
            )
        db.execute(
            "UPDATE features SET checksum = ?, stamp = ? WHERE entry_id = ? AND feature = ?",
            (
                "b2:" + hashlib.blake2b(body, digest_size=16).hexdigest(),
                f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}",
                eid,
                feature,
            ),
        )
        db.commit()
    finally:
        db.close()


def louder(values: np.ndarray) -> None:
    values[DRIFT_FRAMES] *= 1.5


def index_rows(project: Path) -> list[tuple[object, ...]]:
    """What verify must not change: entries, features, marks."""
    db = sqlite3.connect(cache_of(project) / "index.sqlite")
    try:
        return [
            *db.execute("SELECT * FROM entries ORDER BY id"),
            *db.execute("SELECT * FROM features ORDER BY entry_id, feature"),
            *db.execute("SELECT * FROM environment_marks ORDER BY entry_id"),
        ]
    finally:
        db.close()


# --- no drift ----------------------------------------------------------------------------------


def test_no_drift_exits_0_and_the_store_is_not_written(analysed: Path, cli: Cli) -> None:
    data_before = tree_digest(cache_of(analysed) / "data")
    index_before = index_rows(analysed)
    result = cli("verify", analysed, "--all", "--json")
    assert result.code == 0, result
    doc = result.json()
    summary = doc["summary"]
    # every ok row was recomputed, the u16db spectrogram too (same writer, same encoding)
    assert summary["checked"] == summary["eligible"] == 6
    assert summary["identical"] == 6
    assert {r["status"] for r in doc["rows"]} == {"identical"}
    assert set(doc["environment"]) >= {"numpy", "scipy", "soundfile"}
    assert tree_digest(cache_of(analysed) / "data") == data_before
    assert index_rows(analysed) == index_before


def test_the_scratch_store_is_outside_the_project_and_removed(
    analysed: Path, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    seen: list[set[str]] = []

    def progress(line: str) -> None:  # called while the scratch store exists
        seen.append({str(p) for p in scratch.rglob("*.npy")})

    with Session.open(analysed) as session:
        rows = session.diagnose().rows
        result = verify(session, rows, 1.0, scratch_parent=scratch, progress=progress)
    assert result.clean
    assert len(seen) == 4 and all(s for s in seen)  # one call per pass; fresh data went there
    # ... one pass's data at a time (each is compared and deleted before the next) ...
    assert all(not (a & b) for a, b in itertools.pairwise(seen))
    assert not any(scratch.iterdir())  # ... and is gone


# --- drift ----------------------------------------------------------------------------------


def test_simulated_drift_is_reported_with_versions_and_exit_1(analysed: Path, cli: Cli) -> None:
    alter_stored(analysed, "bass", "rms", louder)
    check = cli("check", analysed, "--verify", "--json")
    assert check.code == 0, check  # the store is sound: no fingerprint input changed
    result = cli("verify", analysed, "--all", "--json")
    assert result.code == 1, result
    doc = result.json()
    by_key = {(r["source"], r["feature"]): r for r in doc["rows"]}
    drifted = by_key.pop(("bass", "rms"))
    assert drifted["status"] == "drift" and drifted["drift"] is True
    comparison = drifted["comparison"]
    assert comparison["verdict"] == "differs"
    # exactly the altered frames, and where they are in time (rms: one frame per hop)
    hop = 512 / SR
    assert comparison["frames_beyond"] == 10
    assert comparison["first_diff_s"] == pytest.approx(10 * hop)
    assert comparison["ranges"] == [[pytest.approx(10 * hop), pytest.approx(20 * hop)]]
    # who produced it, against this environment
    assert drifted["produced_by"]["numpy"] == "1.26.4"
    assert drifted["changed"] == ["numpy", "scipy"]
    assert doc["environment"]["numpy"] == np.__version__
    assert {r["status"] for r in by_key.values()} == {"identical"}
    assert doc["summary"]["drift"] == 1
    assert doc["repaired"] == []
    # the text names the row and the versions, produced-by against now
    text = cli("verify", analysed, "--all")
    assert text.code == 1
    line = next(x for x in text.out.splitlines() if x.startswith("drift"))
    assert "bass" in line and "rms" in line
    produced = next(x for x in text.out.splitlines() if "produced by:" in x)
    now = next(x for x in text.out.splitlines() if "now:" in x)
    assert "numpy 1.26.4" in produced and f"numpy {np.__version__}" in now
    assert "10 of 44 frames beyond" in line and "first at 0:00.232" in line


def test_repair_marks_the_drifted_row_stale_and_analyze_regenerates_it(
    analysed: Path, cli: Cli
) -> None:
    alter_stored(analysed, "bass", "rms", louder)
    # a saved check result (check --json keeps one) must not outlive the mark
    assert cli("check", analysed, "--json").code == 0
    assert cli("check", analysed, "--json").code == 0
    result = cli("verify", analysed, "--all", "--repair", "--json")
    assert result.code == 1, result
    assert result.json()["repaired"] == [
        {
            "source": "bass",
            "feature": "rms",
            "calculator": "core.rms",
            "profile": "default",
            "params": {},
        }
    ]
    rows = rows_by(cli("check", analysed, "--json").json())
    stale = rows.pop(("bass", "rms", "default"))
    assert stale["state"] == "stale"
    assert stale["reasons"] == [
        {
            "input": "environment",
            "old": "numpy 1.26.4, scipy 1.11.4",
            "new": f"numpy {np.__version__}, scipy {current_provenance()['scipy']}",
        }
    ]
    assert {r["state"] for r in rows.values()} == {"ok"}  # nothing else
    explain = cli("explain", analysed, "--source", "bass", "--feature", "rms")
    assert explain.code == 1 and "stale" in explain.out and "environment" in explain.out
    # regenerating clears it: analyze plans exactly that row, and then it is ok and verified
    plan = cli("analyze", analysed, "--dry-run", "--json").json()
    assert [(j["source"], j["calculator"]) for j in plan["jobs"]] == [("bass", "core.rms")]
    assert cli("analyze", analysed).code == 0
    assert cli("check", analysed).code == 0
    assert cli("verify", analysed, "--all").code == 0


def test_repair_marks_only_the_commit_it_compared(analysed: Path, cli: Cli) -> None:
    alter_stored(analysed, "bass", "rms", louder)
    with Session.open(analysed) as session:
        rows = [r for r in session.diagnose().rows if r.key.source == "bass"]
        result = verify(session, rows, 1.0)
        (drifted,) = result.drifted
        # regenerated between the check and the repair: the new data is not the one judged
        assert cli("analyze", analysed, "--all", "--source", "bass").code == 0
        assert mark_drifted(session.store, [drifted], result.current) == ()
    assert cli("check", analysed).code == 0


def test_repair_without_drift_marks_nothing(analysed: Path, cli: Cli) -> None:
    before = index_rows(analysed)
    assert cli("verify", analysed, "--all", "--repair").code == 0
    assert index_rows(analysed) == before


def test_a_mark_is_for_one_commit_and_a_new_commit_drops_it(analysed: Path, cli: Cli) -> None:
    with FeatureStore.open(cache_of(analysed)) as store:
        entry = next(
            e for e in store.entries() if e.key.source_id == "bass" and "rms" in e.features
        )
        detail = {"old": {"numpy": "1.0"}, "new": {"numpy": "2.0"}}
        assert store.mark_environment({entry.key: ("not-its-commit", detail)}) == 0
        assert store.get(entry.key).environment is None  # type: ignore[union-attr]
        seen = store.version()
        assert store.mark_environment({entry.key: (entry.commit_id, detail)}) == 1
        # pollers (the window's store watcher) learn of it by the entries counter
        assert store.version().entries > seen.entries
        marked = store.get(entry.key)
        assert marked is not None and marked.environment is not None
        assert [e for e in store.entries() if e.environment] == [marked]
    rows = rows_by(cli("check", analysed, "--json").json())
    assert rows[("bass", "rms", "default")]["reasons"] == [
        {"input": "environment", "old": "numpy 1.0", "new": "numpy 2.0"}
    ]
    assert cli("analyze", analysed, "--source", "bass", "--all").code == 0
    with FeatureStore.open(cache_of(analysed)) as store:
        assert all(e.environment is None for e in store.entries())
    assert cli("check", analysed).code == 0


def test_a_live_session_sees_a_mark_and_rows_without_job_records_too(analysed: Path) -> None:
    with Session.open(analysed) as session:
        key = RowKey("bass", "rms", "core.rms", "default", "{}")
        assert session.diagnose().by_key()[key].state == "ok"  # remembered by the diagnoser
        entry = session.store.get(key.entry_key)
        assert entry is not None
        detail = {"old": {"scipy": "1.0"}, "new": {"scipy": "1.17"}}
        session.store.mark_environment({entry.key: (entry.commit_id, detail)})
        row = session.diagnose().by_key()[key]  # the memo must not hide the mark
        assert row.state == "stale" and row.reasons[0].input == "environment"
        # the same from scratch, with no job records (the rows' fast path)
        statuses = {s.id: session.source_status(s.id) for s in session.project.sources}
        fresh = diagnose(session.project, session.registry, statuses, session.store.entries())
        assert fresh.by_key()[key].state == "stale"
        assert fresh.by_key()[key].reasons == row.reasons
        assert {r.state for r in fresh.rows if r.key != key} == {"ok"}


def test_an_index_of_schema_5_gets_the_marks_table_and_keeps_its_rows(
    analysed: Path, cli: Cli
) -> None:
    index = cache_of(analysed) / "index.sqlite"
    with sqlite3.connect(index) as db:
        db.execute("DROP TABLE environment_marks")
        db.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    before = index_rows_without_marks(analysed)
    assert cli("check", analysed).code == 0  # opened, migrated, nothing marked
    with sqlite3.connect(index) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        assert db.execute("SELECT COUNT(*) FROM environment_marks").fetchone() == (0,)
    assert index_rows_without_marks(analysed) == before
    alter_stored(analysed, "bass", "rms", louder)
    assert cli("verify", analysed, "--all", "--repair").code == 1
    assert rows_by(cli("check", analysed, "--json").json())[("bass", "rms", "default")][
        "state"
    ] == ("stale")


def index_rows_without_marks(project: Path) -> list[tuple[object, ...]]:
    db = sqlite3.connect(cache_of(project) / "index.sqlite")
    try:
        return [*db.execute("SELECT * FROM entries ORDER BY id")]
    finally:
        db.close()


# --- sampling ----------------------------------------------------------------------------------


def fake_rows(n: int) -> list[Row]:
    return [Row(RowKey(f"s{i:03d}", "rms", "core.rms", "default", "{}"), "ok") for i in range(n)]


def test_sample_is_deterministic_per_seed_and_its_size_is_the_fraction() -> None:
    rows = fake_rows(40)
    first = sample_rows(rows, 0.25, 7)
    assert len(first) == 10
    assert sample_rows(list(reversed(rows)), 0.25, 7) == first  # input order does not matter
    assert first == sorted(first, key=lambda r: r.key.source)
    others = {tuple(r.key.source for r in sample_rows(rows, 0.25, seed)) for seed in range(8)}
    assert len(others) > 1  # another seed checks other rows
    assert len(sample_rows(rows, 0.01, 0)) == 1  # at least one
    assert sample_rows(rows, 1.0, 3) == rows
    assert len(sample_rows(fake_rows(3), 0.5, 0)) == math.ceil(1.5)
    assert sample_rows([], 0.5, 0) == []


def test_cli_sample_with_the_same_seed_checks_the_same_rows(analysed: Path, cli: Cli) -> None:
    def checked(*flags: str) -> list[tuple[str, str]]:
        result = cli("verify", analysed, "--json", *flags)
        assert result.code == 0, result
        return [(r["source"], r["feature"]) for r in result.json()["rows"]]

    once = checked("--sample", "0.5", "--seed", "3")
    assert len(once) == 3
    assert checked("--sample", "0.5", "--seed", "3") == once
    assert any(checked("--sample", "0.5", "--seed", str(s)) != once for s in range(4, 10))
    # the selection narrows what is eligible
    assert {s for s, _ in checked("--all", "--source", "bass")} == {"bass"}


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (("--sample", "0"), "--sample '0'"),
        (("--sample", "1.5"), "--sample '1.5'"),
        (("--sample", "nan"), "--sample 'nan'"),
        (("--sample", "half"), "--sample 'half'"),
        (("--seed", "x"), "--seed 'x'"),
        (("--sample", "0.5", "--all"), "--all"),
        (("--source", "nosuch"), "nosuch"),
        (("--feature", "nosuch"), "nosuch"),
    ],
)
def test_bad_input_is_one_line(
    analysed: Path, cli: Cli, flags: tuple[str, ...], needle: str
) -> None:
    assert_bad_input(cli("verify", analysed, *flags), needle)


def test_a_scratch_folder_that_is_missing_or_in_the_store_is_one_line(
    analysed: Path, tmp_path: Path, cli: Cli
) -> None:
    data = cache_of(analysed) / "data"
    before = tree_digest(data)
    assert_bad_input(cli("verify", analysed, "--scratch", tmp_path / "nope"), "nope")
    assert_bad_input(cli("verify", analysed, "--scratch", data), "inside the feature store")
    assert tree_digest(data) == before  # nothing was made there
    (tmp_path / "scratch").mkdir()
    assert cli("verify", analysed, "--all", "--scratch", tmp_path / "scratch").code == 0


def test_a_missing_project_is_one_line(tmp_path: Path, cli: Cli) -> None:
    assert_bad_input(cli("verify", tmp_path / "nope.json"), "nope.json")


def test_nothing_ok_to_verify_exits_0(project: Path, cli: Cli) -> None:
    result = cli("verify", project, "--all")
    assert result.code == 0, result
    assert "verified 0 of 0" in result.out


# --- a calculator whose output changed without a version bump ---------------------------------


def install_level(folder: Path, factor: str) -> Path:
    """The compare tests' ``qa.level`` plugin, version 1 always, its frames in CHANGED scaled
    by ``factor`` (a Python expression): what a library upgrade under it could do."""
    folder.mkdir(parents=True)
    code = LEVEL_PLUGIN.format(version=1, changed=CHANGED, factor=factor)
    (folder / "level_plugin.py").write_text(textwrap.dedent(code))
    return folder


def test_a_silent_change_under_a_calculator_is_drift_in_exactly_its_time_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    write_tone(tmp_path / "proj" / "audio" / "a.wav", 1.5, 330.0)
    project = write_project(
        tmp_path / "proj",
        {
            "name": "Drift",
            "profiles": {"default": {"window_size": 1024, "hop_size": 256}},
            "sources": [{"id": "a", "path": "audio/a.wav"}],
            "tracks": [
                {"id": "t", "source": "a", "requests": [{"feature": "level"}, {"feature": "rms"}]}
            ],
        },
    )
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(install_level(tmp_path / "before", "1.0")))
    assert cli("analyze", project).code == 0
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(install_level(tmp_path / "after", "1.5")))
    assert cli("check", project).code == 0  # no fingerprint input changed: still ok
    result = cli("verify", project, "--all", "--json")
    assert result.code == 1, result
    rows = {r["feature"]: r for r in result.json()["rows"]}
    assert rows["rms"]["status"] == "identical"
    level = rows["level"]
    assert level["status"] == "drift"
    hop = 256 / SR
    ((start, end),) = level["comparison"]["ranges"]
    assert CHANGED[0] <= start < CHANGED[0] + hop
    assert CHANGED[1] <= end < CHANGED[1] + hop
    # a calculator that cannot run any more: the row is reported, not hidden (exit 1)
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(install_level(tmp_path / "broken", "(1 / 0)")))
    broken = cli("verify", project, "--all", "--json")
    assert broken.code == 1
    rows = {r["feature"]: r for r in broken.json()["rows"]}
    assert rows["level"]["status"] == "failed" and rows["level"]["comparison"] is None
    assert "ZeroDivisionError" in rows["level"]["message"]
    assert rows["rms"]["status"] == "identical"
    assert broken.json()["summary"]["failed"] == 1
