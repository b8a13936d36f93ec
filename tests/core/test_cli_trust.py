"""Trust (issue 9, the store's part), through the real command line on real projects:

- ``ok`` means the data is there: a deleted, truncated or replaced ``.npy`` makes its row
  ``failed`` naming the file, ``analyze`` recomputes it; ``check --verify`` compares checksums;
- paths in the index are input: a crafted path in any table is refused, reported, and the file
  it names is never deleted, read or exported;
- the store keeps to its own folder: a symlinked ``tmp/`` is refused, not swept;
- a ``cache_dir`` that is a system folder, or a non-empty folder without a store, is refused;
- ``trash`` lists, restores and purges what prunes left, also after a prune killed mid-way.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from diagnostics_app.core.session import Session
from diagnostics_app.core.store import DATA_DIR, INDEX_NAME, TMP_DIR, EntryKey, FeatureStore
from tests.core.project_factory import shared_source_project
from tests.core.test_cli import (  # the helpers and fixtures of the CLI tests
    Cli,
    Result,
    _no_plugins,  # noqa: F401  (autouse fixture)
    assert_bad_input,
    assert_store_loadable,
    edit_project,
    rows_by,
    run_module,
    store_entries,
    track,
)
from tests.core.test_cli import cli as _cli  # noqa: F401  (a fixture, here named _cli)
from tests.core.test_store import dead_pid

RMS = ("drums", "core.rms", "default", "{}")
BEATS = ("drums", "core.beats", "default", "{}")


@pytest.fixture
def cli(_cli: Cli) -> Cli:  # noqa: F811  (the imported fixture, by its name)
    """``main([...])`` in this process (test_cli.py's fixture)."""
    return _cli


@pytest.fixture
def analysed(tmp_path: Path, cli: Cli) -> Path:
    """An analysed project in ``tmp_path/proj``: its cache's ``../../outside`` is
    ``tmp_path/outside``."""
    path = shared_source_project(tmp_path / "proj")
    assert cli("analyze", path).code == 0
    assert cli("check", path).code == 0
    return path


def cache_of(project: Path) -> Path:
    return project.parent / ".featurecache"


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.err, result.err


# --- ok means the data is there ---------------------------------------------------------------


def damage(path: Path, how: str) -> str:
    """Damage a float32 (frames, 1, 1) data file; the words its row's message must hold."""
    size = path.stat().st_size
    frames = (size - 128) // 4
    if how == "deleted":
        path.unlink()
        return f"data file {path} is missing"
    if how == "truncated":
        with path.open("r+b") as f:
            f.truncate(size // 2)
        return f"data file {path} is {size // 2:,} bytes, expected {size:,}"
    np.save(path, np.zeros((frames, 2), np.float32))  # another shape
    return f"data file {path}: header says float32 ({frames}, 2), expected float32 ({frames}, 1, 1)"


@pytest.mark.parametrize("how", ["deleted", "truncated", "replaced"])
def test_a_damaged_file_fails_its_row_and_analyze_recomputes_it(
    analysed: Path, cli: Cli, how: str
) -> None:
    cache = cache_of(analysed)
    path = cache / store_entries(cache)[RMS].features["rms"].path
    words = damage(path, how)

    check = cli("check", analysed, "--json")
    assert check.code == 1
    rows = rows_by(check.json())
    assert rows["drums", "rms", "default"]["state"] == "failed"
    assert rows["drums", "rms", "default"]["message"] == words
    assert {k: r["state"] for k, r in rows.items() if r["state"] != "ok"} == {
        ("drums", "rms", "default"): "failed"
    }
    table = cli("check", analysed)
    assert table.code == 1
    assert str(path) in table.out

    plan = cli("analyze", analysed, "--dry-run", "--json").json()
    assert [(j["source"], j["calculator"]) for j in plan["jobs"]] == [("drums", "core.rms")]
    assert cli("analyze", analysed).code == 0
    assert cli("check", analysed).code == 0
    assert not path.exists()  # the damaged file went with the replaced entry
    assert_store_loadable(cache)


def test_check_verify_catches_a_same_size_byte_flip(analysed: Path, cli: Cli) -> None:
    cache = cache_of(analysed)
    path = cache / store_entries(cache)[BEATS].features["beat_rms"].times_path  # type: ignore[operator]
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01
    path.write_bytes(bytes(raw))

    assert cli("check", analysed).code == 0  # size and header are right
    check = cli("check", analysed, "--verify", "--json")
    assert check.code == 1
    row = rows_by(check.json())["drums", "beat_rms", "default"]
    assert (row["state"], row["message"]) == (
        "failed",
        f"times file {path}: its content differs from the checksum recorded at commit",
    )
    # the verdict is kept: a plain check says so too, and analyze recomputes the row
    assert rows_by(cli("check", analysed, "--json").json())["drums", "beat_rms", "default"] == row
    plan = cli("analyze", analysed, "--dry-run", "--json").json()
    assert [(j["source"], j["calculator"]) for j in plan["jobs"]] == [("drums", "core.beats")]
    assert cli("analyze", analysed).code == 0
    assert cli("check", analysed, "--verify").code == 0


# --- paths in the index are input ---------------------------------------------------------------


VICTIM_REL = "../../outside/victim.txt"


def victims(project: Path) -> tuple[Path, Path, dict[Path, bytes]]:
    """Two files outside the store: one reached by ``../..``, one by an absolute path."""
    outside = project.parent.parent / "outside"
    outside.mkdir()
    rel, absolute = outside / "victim.txt", outside / "absolute.npy"
    np.save(absolute, np.zeros((10, 1, 1), np.float32))  # a plausible array, to be safe
    rel.write_bytes(absolute.read_bytes())
    return rel, absolute, {rel: rel.read_bytes(), absolute: absolute.read_bytes()}


def sql(project: Path, statement: str, *args: Any) -> None:
    with sqlite3.connect(cache_of(project) / INDEX_NAME) as db:
        db.execute(statement, args)


def survived(contents: dict[Path, bytes]) -> None:
    for path, data in contents.items():
        assert path.is_file() and path.read_bytes() == data, path


def assert_refused(result: Result, *paths: str) -> None:
    no_traceback(result)
    for path in paths:
        assert repr(path) in result.out + result.err, (path, result)


def test_crafted_feature_paths_are_refused_never_read_nor_deleted(analysed: Path) -> None:
    _, absolute, contents = victims(analysed)
    sql(
        analysed,
        "UPDATE features SET path = ? WHERE feature = 'rms' AND entry_id = "
        "(SELECT id FROM entries WHERE source_id = 'drums' AND calculator_id = 'core.rms')",
        VICTIM_REL,
    )
    sql(analysed, "UPDATE features SET times_path = ? WHERE feature = 'beat_rms'", str(absolute))

    check = run_module("check", analysed, "--json")
    assert check.code == 1
    assert_refused(check, VICTIM_REL, str(absolute))
    rows = rows_by(json.loads(check.out))
    assert {k: r["state"] for k, r in rows.items() if r["state"] != "ok"} == {
        ("drums", "rms", "default"): "failed",
        ("drums", "beat_rms", "default"): "failed",
    }
    assert rows["drums", "rms", "default"]["message"] == (
        f"data file: refused path {VICTIM_REL!r} (not a file of this store's data/ folder); "
        "not read"
    )

    out = analysed.parent / "exported.npy"
    export = run_module(
        "export", analysed, "--source", "drums", "--feature", "rms", "--format", "npy", "-o", out
    )
    assert_bad_input(export, "refusing to export drums/rms", VICTIM_REL)
    assert not out.exists()

    analyze = run_module("analyze", analysed)
    assert analyze.code == 0
    assert_refused(analyze, VICTIM_REL, str(absolute))  # as the replaced files: not deleted
    assert run_module("check", analysed).code == 0
    survived(contents)


def test_crafted_garbage_paths_are_refused_never_deleted(analysed: Path) -> None:
    _, absolute, contents = victims(analysed)
    for path in (VICTIM_REL, str(absolute), "data/../../../outside/victim.txt"):
        sql(analysed, "INSERT INTO garbage VALUES (?)", path)
    check = run_module("check", analysed)  # every open sweeps the garbage
    survived(contents)
    assert check.code == 0
    assert_refused(check, VICTIM_REL, str(absolute), "data/../../../outside/victim.txt")
    assert len(check.err.strip().splitlines()) == 3  # one line each
    again = run_module("check", analysed)  # reported once: the rows are gone
    assert (again.code, again.err) == (0, "")
    assert_store_loadable(cache_of(analysed))


def prune_kept(project: Path, edit: bool = True) -> str:
    """Make two rows extraneous (unless ``edit`` is false: they are) and prune them as the GUI
    does (kept in the trash for undo)."""

    def change(doc: dict[str, Any]) -> None:
        track(doc, "snare")["requests"].pop()  # drums centroid/fine
        track(doc, "bass")["requests"].pop()  # bass rms

    if edit:
        edit_project(project, change)
    with Session.open(project) as session:
        cmd = session.prune([r for r in session.diagnose().rows if r.state == "extraneous"])
        assert cmd is not None
        return cmd.prune_id


def test_crafted_trash_paths_are_refused_never_deleted(analysed: Path, cli: Cli) -> None:
    _, absolute, contents = victims(analysed)
    prune_kept(analysed)
    sql(analysed, "UPDATE trash SET path = ?, pruned = 0 WHERE feature = 'centroid'", VICTIM_REL)
    sql(
        analysed, "UPDATE trash SET times_path = ?, pruned = 0 WHERE feature = 'rms'", str(absolute)
    )
    check = run_module("check", analysed)  # every open purges trash older than a week
    survived(contents)
    assert check.code == 0
    assert_refused(check, VICTIM_REL, str(absolute))
    assert cli("trash", analysed, "--json").json()["trash"] == []


def test_a_crafted_path_of_an_extraneous_entry_survives_prune(analysed: Path) -> None:
    _, absolute, contents = victims(analysed)

    def change(doc: dict[str, Any]) -> None:
        track(doc, "bass")["requests"].pop()  # bass rms: extraneous

    edit_project(analysed, change)
    sql(
        analysed,
        "UPDATE features SET path = ?, times_path = ? WHERE entry_id = "
        "(SELECT id FROM entries WHERE source_id = 'bass' AND calculator_id = 'core.rms')",
        VICTIM_REL,
        str(absolute),
    )
    prune = run_module("prune", analysed, "--json")
    survived(contents)
    assert prune.code == 0
    assert [p["source"] for p in json.loads(prune.out)["pruned"]] == ["bass"]
    assert_refused(prune, VICTIM_REL, str(absolute))
    assert run_module("check", analysed).code == 0


def test_a_symlinked_tmp_folder_is_refused_not_swept(analysed: Path) -> None:
    """Through a symbolic link the sweep would delete a dead writer's "temporary files"
    in another folder."""
    cache = cache_of(analysed)
    elsewhere = analysed.parent.parent / "elsewhere"
    elsewhere.mkdir()
    pid, token = dead_pid()
    tag = f"{pid}-{hashlib.blake2b(token.encode(), digest_size=4).hexdigest()}"
    victim = elsewhere / f"{'a' * 32}.{tag}.npy"  # a dead writer's name
    victim.write_bytes(b"precious")
    (cache / TMP_DIR).rmdir()
    (cache / TMP_DIR).symlink_to(elsewhere)
    check = run_module("check", analysed)
    assert victim.read_bytes() == b"precious"
    assert_bad_input(check, str(cache / TMP_DIR), "symbolic link")


# --- what may be a cache folder -------------------------------------------------------------------


def with_cache_dir(project: Path, cache_dir: str) -> None:
    edit_project(project, lambda doc: doc.__setitem__("cache_dir", cache_dir))


@pytest.mark.parametrize(
    ("cache_dir", "why"),
    [
        ("/", "a system folder"),
        ("/etc", "a system folder"),
        ("/proc", "a system folder"),
        ("/usr/share", "inside the system folder /usr"),
        ("~", "the home folder"),
    ],
)
def test_a_system_cache_dir_is_refused(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, cache_dir: str, why: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    project = shared_source_project(tmp_path / "proj")
    with_cache_dir(project, cache_dir)
    for command in ("check", "analyze", "trash"):
        result = cli(command, project)
        assert_bad_input(result, "refusing to use", why, "cache_dir")
        assert os.path.realpath(os.path.expanduser(cache_dir)) in result.err
    assert list(home.iterdir()) == []
    assert not Path("/etc/index.sqlite").exists()


def test_a_non_empty_cache_dir_without_a_store_is_refused(tmp_path: Path, cli: Cli) -> None:
    project = shared_source_project(tmp_path / "proj")
    with_cache_dir(project, "audio")  # holds the project's audio
    before = sorted(p.name for p in (project.parent / "audio").iterdir())
    result = cli("check", project)
    assert_bad_input(result, str(project.parent / "audio"), "holds other files", "'drums.wav'")
    assert sorted(p.name for p in (project.parent / "audio").iterdir()) == before


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_an_empty_or_missing_cache_dir_is_created(tmp_path: Path, cli: Cli, state: str) -> None:
    project = shared_source_project(tmp_path / "proj")
    with_cache_dir(project, "cache")
    if state == "empty":
        (project.parent / "cache").mkdir()
    assert cli("analyze", project).code == 0
    assert cli("check", project).code == 0
    assert (project.parent / "cache" / INDEX_NAME).is_file()


# --- trash -------------------------------------------------------------------------------------


def test_trash_lists_restores_and_purges(analysed: Path, cli: Cli) -> None:
    cache = cache_of(analysed)
    assert cli("trash", analysed).out.strip() == "trash is empty"
    prune_id = prune_kept(analysed)
    pruned = store_entries(cache)
    listing = cli("trash", analysed, "--json")
    assert listing.code == 0
    doc = listing.json()
    assert doc["schema_version"] == 1
    [group] = doc["trash"]
    assert group["prune_id"] == prune_id
    assert {(i["source"], i["feature"], i["calculator"]) for i in group["items"]} == {
        ("drums", "centroid", "core.centroid"),
        ("bass", "rms", "core.rms"),
    }
    assert group["bytes"] == doc["bytes"] == sum(i["bytes"] for i in group["items"]) > 0
    text = cli("trash", analysed).out
    assert prune_id in text and "centroid" in text

    restored = cli("trash", analysed, "--restore", prune_id, "--json")
    assert restored.code == 0
    assert {i["feature"] for i in restored.json()["restored"]} == {"centroid", "rms"}
    assert restored.json()["kept"] == []
    assert len(store_entries(cache)) == len(pruned) + 2
    assert cli("check", analysed, "--json").json()["summary"]["extraneous"] == 2

    prune_id = prune_kept(analysed, edit=False)
    files = {p.name for p in (cache / DATA_DIR).iterdir()}
    purged = cli("trash", analysed, "--purge", prune_id, "--json")
    assert purged.code == 0
    assert purged.json()["bytes"] == group["bytes"]
    assert len(files - {p.name for p in (cache / DATA_DIR).iterdir()}) == 2  # rms, centroid
    assert cli("trash", analysed, "--json").json() == {
        "schema_version": 1,
        "trash": [],
        "bytes": 0,
    }
    assert cli("trash", analysed, "--purge").code == 0  # all of nothing
    assert_store_loadable(cache)


def test_trash_unknown_prune_id(analysed: Path, cli: Cli) -> None:
    prune_id = prune_kept(analysed)
    for flag in ("--restore", "--purge"):
        result = cli("trash", analysed, flag, "nope")
        assert_bad_input(result, "no prune 'nope' in the trash", prune_id)
    assert_bad_input(cli("trash", analysed, "--restore", "x", "--purge"), "not allowed with")


_BLOCK_BEFORE_PURGE = """
import sys
from diagnostics_app.core.store import FeatureStore
purge = FeatureStore.purge
def blocked(self, prune_id=None, *, older_than=None):
    if prune_id is not None:  # the CLI's purge of the prune it just made
        print(prune_id, flush=True)
        sys.stdin.readline()  # killed here
    return purge(self, prune_id, older_than=older_than)
FeatureStore.purge = blocked
from diagnostics_app.cli import main
sys.exit(main(["prune", sys.argv[1]]))
"""


def test_a_prune_killed_before_its_purge_leaves_nothing_unreachable(
    analysed: Path, cli: Cli
) -> None:
    cache = cache_of(analysed)

    def change(doc: dict[str, Any]) -> None:
        track(doc, "bass")["requests"].pop()  # bass rms: extraneous

    edit_project(analysed, change)
    files = {p.name for p in (cache / DATA_DIR).iterdir()}
    env = {k: v for k, v in os.environ.items() if k != "DIAGNOSTICS_APP_PLUGIN_PATH"}
    with subprocess.Popen(
        [sys.executable, "-c", _BLOCK_BEFORE_PURGE, str(analysed)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as child:
        try:
            assert child.stdout is not None
            prune_id = child.stdout.readline().strip()  # pruned, not yet purged
            child.send_signal(signal.SIGKILL)
            assert child.wait(timeout=60) == -signal.SIGKILL
        finally:
            child.kill()
    assert prune_id
    assert {p.name for p in (cache / DATA_DIR).iterdir()} == files  # nothing deleted yet
    assert cli("check", analysed).code == 0  # no extraneous row: the data is in the trash

    listing = cli("trash", analysed, "--json").json()
    assert [(g["prune_id"], [i["feature"] for i in g["items"]]) for g in listing["trash"]] == [
        (prune_id, ["rms"])
    ]
    freed = cli("trash", analysed, "--purge", "--json")
    assert freed.code == 0
    assert freed.json()["bytes"] == listing["bytes"] > 0
    assert len(files - {p.name for p in (cache / DATA_DIR).iterdir()}) == 1
    with FeatureStore.open(cache) as store:
        assert store.trash() == []
        assert store.get(EntryKey("bass", "core.rms")) is None
    assert_store_loadable(cache)
