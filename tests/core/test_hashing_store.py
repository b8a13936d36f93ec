"""Checksums of stored arrays (core.hashing): new files get ``x3:`` (XXH3-128 of the values
after the ``.npy`` header); stores written before schema 9 keep their ``b2:`` (BLAKE2b-128)
checksums, which still verify, through the store and ``check --verify``; a damaged file is found
with either; a checksum naming no known algorithm is a one-line problem naming its file, in a
listing and in a staged pass's manifest."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import xxhash

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.store import INDEX_NAME, SCHEMA_VERSION, FeatureStore
from diagnostics_app.core.store.staged import StagedPass, StagingSink
from tests.core.old_hashes import b2, block_rows, flip_last_byte, make_schema_8, values
from tests.core.project_factory import shared_source_project
from tests.core.test_cli import (  # the helpers and fixtures of the CLI tests
    Cli,
    _no_plugins,  # noqa: F401  (autouse fixture)
    rows_by,
    store_entries,
)
from tests.core.test_cli import cli as _cli  # noqa: F401  (a fixture, here named _cli)
from tests.core.test_store_verify import data_file, two_entries


@pytest.fixture
def cli(_cli: Cli) -> Cli:  # noqa: F811  (the imported fixture, by its name)
    return _cli


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    two_entries(tmp_path / "c")
    return tmp_path / "c"


def verified(cache: Path) -> tuple[dict[tuple[str, str], str | None], FeatureStore]:
    """(calculator, feature) -> problem of a listing with content checks, and its store."""
    with FeatureStore.open(cache) as s:
        s.verify_content = True
        out = {
            (e.key.calculator_id, name): f.problem
            for e in s.entries()
            for name, f in e.features.items()
        }
    return out, s


def test_new_files_get_xxh3_checksums_of_their_values(cache: Path) -> None:
    with FeatureStore.open(cache) as s:
        features = [f for e in s.entries() for f in e.features.values()]
    assert len(features) == 3
    for f in features:
        files = [f.path] if f.times_path is None else [f.path, f.times_path]
        assert f.checksum == ",".join(
            "x3:" + xxhash.xxh3_128(values(cache / p)).hexdigest() for p in files
        )


@pytest.mark.parametrize("old", [False, True], ids=["x3", "b2"])
def test_a_flipped_byte_is_found_whatever_the_algorithm(cache: Path, old: bool) -> None:
    if old:
        make_schema_8(cache)  # every checksum "b2:...", migrated at the next open
    problems, s = verified(cache)
    assert set(problems.values()) == {None}
    assert s._verifier.contents_read == 4  # each file hashed as its checksum says
    path = data_file(cache, "timed", "db", times=True)
    flip_last_byte(path)
    problems, _ = verified(cache)
    assert problems == {
        ("plain", "a"): None,
        ("plain", "b"): None,
        ("timed", "db"): f"times file {path}: its content differs from the checksum recorded "
        "at commit",
    }


@pytest.mark.parametrize("recorded", ["zz:0123abcd", "0123abcd", "x3"])
def test_a_checksum_of_no_known_algorithm_is_one_line_naming_the_file(
    cache: Path, recorded: str
) -> None:
    path = data_file(cache, "plain", "a")
    with sqlite3.connect(cache / INDEX_NAME) as db:
        db.execute(
            "UPDATE features SET checksum = ? WHERE path = ?",
            (recorded, path.relative_to(cache).as_posix()),
        )
    db.close()
    problems, s = verified(cache)
    assert problems[("plain", "a")] == (
        f"data file {path}: its recorded checksum {recorded!r} names no known algorithm (x3, b2)"
    )
    assert problems[("plain", "b")] is None
    assert s._verifier.contents_read == 3  # the file it cannot check is not read


def test_a_store_of_schema_8_migrates_keeping_its_rows_and_check_verify_passes(
    tmp_path: Path, cli: Cli
) -> None:
    project = shared_source_project(tmp_path / "proj")
    assert cli("analyze", project).code == 0
    cache = project.parent / ".featurecache"
    entries = store_entries(cache)
    blocks = block_rows(cache)
    assert len(blocks) == 2 and {a for _, a in blocks.values()} == {"x3"}
    assert make_schema_8(cache) == 2
    db = sqlite3.connect(cache / INDEX_NAME)
    old_blocks = dict(db.execute("SELECT digest, blocks FROM audio_blocks").fetchall())
    db.close()

    check = cli("check", project, "--verify", "--json")
    assert check.code == 0, check.out
    assert {r["state"] for r in check.json()["rows"]} == {"ok"}
    # the old entries are current: nothing to recompute, every row kept
    assert cli("analyze", project, "--dry-run", "--json").json()["jobs"] == []
    assert {k: e.commit_id for k, e in store_entries(cache).items()} == {
        k: e.commit_id for k, e in entries.items()
    }
    assert all(
        c.startswith("b2:")
        for e in store_entries(cache).values()
        for f in e.features.values()
        for c in f.checksum.split(",")  # type: ignore[union-attr]
    )
    assert block_rows(cache) == {d: (bytes(b), "b2") for d, b in old_blocks.items()}
    db = sqlite3.connect(cache / INDEX_NAME)
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    db.close()
    assert version == (str(SCHEMA_VERSION),) and SCHEMA_VERSION == 9

    # a damaged file of the old store is found by its b2 checksum
    entry = store_entries(cache)[("drums", "core.rms", "default", "{}")]
    path = cache / entry.features["rms"].path
    flip_last_byte(path)
    assert cli("check", project).code == 0  # size and header are right
    check = cli("check", project, "--verify", "--json")
    assert check.code == 1
    row = rows_by(check.json())["drums", "rms", "default"]
    assert (row["state"], row["message"]) == (
        "failed",
        f"data file {path}: its content differs from the checksum recorded at commit",
    )


def test_check_verify_names_a_file_whose_checksum_has_no_known_algorithm(
    tmp_path: Path, cli: Cli
) -> None:
    project = shared_source_project(tmp_path / "proj")
    assert cli("analyze", project).code == 0
    cache = project.parent / ".featurecache"
    entry = store_entries(cache)[("drums", "core.rms", "default", "{}")]
    rel = entry.features["rms"].path
    with sqlite3.connect(cache / INDEX_NAME) as db:
        db.execute("UPDATE features SET checksum = 'md5:00' WHERE path = ?", (rel,))
    db.close()
    check = cli("check", project, "--verify", "--json")
    assert check.code == 1
    assert "Traceback" not in check.err
    message = rows_by(check.json())["drums", "rms", "default"]["message"]
    assert message == (
        f"data file {cache / rel}: its recorded checksum 'md5:00' names no known algorithm (x3, b2)"
    )


def _staged(store: FeatureStore) -> tuple[StagedPass, Path]:
    area = store.staging_area()
    sink = StagingSink(area, "ab" * 16)
    meta = OutputMeta(feature="x", channels=1, width=1, frame_step=0.01)
    sink.write("c", "x", np.arange(10, dtype=np.float32).reshape(10, 1, 1))
    sink.close("c", {"x": meta}, {"x": None})
    manifest = sink.manifest()
    return manifest, Path(area.folder) / manifest.entries["c"][0].data.name


def _with_checksum(manifest: StagedPass, checksum: str) -> StagedPass:
    (out,) = manifest.entries["c"]
    out = dataclasses.replace(out, data=dataclasses.replace(out.data, checksum=checksum))
    return dataclasses.replace(manifest, entries={"c": (out,)})


def test_a_staged_file_is_committed_with_a_checksum_it_can_verify(tmp_path: Path) -> None:
    """A worker's manifest: its ``x3:`` checksum is committed as it is; an older worker's
    ``b2:`` one is too (and verifies); one naming no known algorithm is refused, nothing
    committed."""
    with FeatureStore.open(tmp_path / "c") as store:
        manifest, path = _staged(store)
        assert manifest.entries["c"][0].data.checksum == (
            "x3:" + xxhash.xxh3_128(values(path)).hexdigest()
        )
        bad = _with_checksum(manifest, "zz:00")
        with pytest.raises(StoreError) as caught:
            store.commit_staged(store.staging_area(), bad, "a", "default", None, {"c": {}}, {})
        assert str(caught.value) == (
            f"{path}: staged file: its recorded checksum 'zz:00' names no known algorithm (x3, b2)"
        )
        assert store.entries() == []
        old = b2(values(path))
        older = _with_checksum(manifest, old)
        (entry,) = store.commit_staged(
            store.staging_area(), older, "a", "default", None, {"c": {}}, {}
        )
        assert entry.features["x"].checksum == old
        store.verify_content = True
        assert [e.problems for e in store.entries()] == [()]


def test_a_splice_over_an_old_base_verifies_each_file_with_its_own_algorithm(
    tmp_path: Path,
) -> None:
    """Frames spliced into a feature of an old store: the base keeps its ``b2:`` checksum,
    the new parts get ``x3:``; a content check verifies both, and a damaged base is found."""
    from tests.core.test_store_splices import KEY, base_arrays, put, same_for_all

    cache = tmp_path / "c"
    with FeatureStore.open(cache) as s:
        put(s, base_arrays())
    make_schema_8(cache)
    with FeatureStore.open(cache) as s:
        entry = s.get(KEY)
        assert entry is not None
        new = s.commit_splices(KEY, {}, 1, entry.commit_id, same_for_all([(10, 1, 2)], 1))
        for f in new.features.values():
            assert {c[:3] for c in (f.checksum or "").split(",")} == {"b2:"}
            assert f.splices and {c[:3] for p in f.splices for c in p.checksum.split(",")} == {
                "x3:"
            }
        s.verify_content = True
        assert [e.problems for e in s.entries()] == [()]
        assert s._verifier.contents_read == sum(len(f.files) for f in new.features.values())
        base = cache / new.features["db"].path
        flip_last_byte(base)
        problems = dict(s.entries()[0].problems)
    assert problems == {
        "db": f"data file {base}: its content differs from the checksum recorded at commit"
    }
