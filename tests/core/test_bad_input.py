"""Bad input on the command line: each case gives a clear one-line message on stderr, exit 2
(or, for a broken audio file, a ``failed`` row and exit 1), never a traceback, and loses or
corrupts nothing (the project file and the store stay byte-identical where it matters)."""

from __future__ import annotations

import json
import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from diagnostics_app.core.session import Session
from tests.core.project_factory import shared_source_project
from tests.core.test_cli import (  # the helpers and fixtures of the CLI tests
    Cli,
    Result,
    _no_plugins,  # noqa: F401  (autouse fixture)
    assert_bad_input,
    assert_store_loadable,
    cli,  # noqa: F401  (fixture)
    edit_project,
    project,  # noqa: F401  (fixture)
    rows_by,
    run_module,
    tree_digest,
)


@dataclass(frozen=True)
class Frozen:
    """An analysed project shared by the tests of this module that must change nothing."""

    path: Path
    digest: dict[str, str]

    def unchanged(self) -> None:
        """The whole project folder (project file, audio, store) is byte-identical."""
        assert tree_digest(self.path.parent) == self.digest


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Frozen:
    path = shared_source_project(tmp_path_factory.mktemp("shared"))
    with Session.open(path) as session:
        session.enqueue(session.plan())
        assert {r.status for r in session.runner.run_all()} == {"done"}
    with Session.open(path) as session:  # every digest is cached: reading writes nothing now
        assert session.diagnose().healthy
    digest = tree_digest(path.parent)
    assert len(digest) > 5  # the project, two audio files, the index and data files
    return Frozen(path, digest)


@pytest.fixture
def frozen(shared: Frozen) -> Frozen:
    shared.unchanged()  # an earlier test did not spoil it
    return shared


# --- the project file ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["check"],
        ["analyze"],
        ["explain", "--source", "a", "--feature", "rms"],
        ["prune"],
        ["export", "--source", "a", "--feature", "rms", "--format", "npy", "-o", "x.npy"],
        ["screenshot", "-o", "x.png"],
        ["open"],
    ],
    ids=lambda c: c[0],
)
def test_nonexistent_project(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if command[0] == "open":  # with a display the GUI says it too (tests/qt/test_open_failure.py)
        for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
            monkeypatch.delenv(name, raising=False)
    missing = tmp_path / "nope.json"
    assert_bad_input(cli(command[0], missing, *command[1:]), str(missing), "not found")
    assert not list(tmp_path.iterdir())  # nothing created (no cache folder, no output)


def test_nonexistent_project_in_a_fresh_process(tmp_path: Path) -> None:
    result = run_module("check", "nope.json", cwd=tmp_path)
    assert_bad_input(result, "nope.json: project file not found")


BAD_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "not-json": ("{ this is not json", ("not valid JSON", "line 1")),
    "binary": ("\udcff\udcfe", ("not a text file",)),
    "empty": ("", ("not valid JSON",)),
    "a-list": ("[1, 2, 3]", ("expected a JSON object",)),
    "wrong-format": ('{"format": "something/else"}', ("format", "not a diagnostics-app project")),
    "sources-not-a-list": ('{"sources": {"id": "a"}}', ("sources: expected a list",)),
    "source-without-path": ('{"sources": [{"id": "a"}]}', ("sources[0].path",)),
    "duplicate-source": (
        '{"sources": [{"id": "a", "path": "a.wav"}, {"id": "a", "path": "b.wav"}]}',
        ("sources[1].id", "duplicate"),
    ),
    "track-unknown-source": (
        '{"sources": [], "tracks": [{"id": "t", "source": "zz"}]}',
        ("tracks[0].source", "unknown source"),
    ),
    # an unknown profile or a bad parameter is an invalid row: test_project_mistakes.py
    "bad-tempo": ('{"tempo_map": [{"time": 0, "bpm": 0}]}', ("tempo_map",)),
    "newer-schema": (
        '{"format": "diagnostics-app/project", "schema_version": 99}',
        ("schema_version", "99", "newer", "upgrade"),
    ),
    "schema-not-a-number": ('{"schema_version": "one"}', ("schema_version",)),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
@pytest.mark.parametrize("command", ["check", "analyze", "prune"])
def test_unreadable_or_invalid_project_file(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
    case: str,
    command: str,
) -> None:
    text, needles = BAD_FILES[case]
    path = tmp_path / "project.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    before = path.read_bytes()
    assert_bad_input(cli(command, path), str(path), *needles)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project.json"]  # no store created


def test_project_path_is_a_folder(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    assert_bad_input(cli("check", tmp_path), str(tmp_path), "is a folder")


# --- selection flags, flags ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "needles"),
    [
        ("--source", "zz", ("unknown source 'zz'", "known: drums, bass")),
        ("--track", "zz", ("unknown track 'zz'", "known: kick, snare, bass")),
        ("--feature", "zz", ("unknown feature 'zz'", "spectrogram")),
        ("--calculator", "core.zz", ("unknown calculator 'core.zz'",)),
        ("--profile", "zz", ("unknown profile 'zz'", "known: default, fine")),
        ("--param", "fmin", ("--param 'fmin'", "KEY=VALUE")),
    ],
)
@pytest.mark.parametrize("command", ["check", "analyze", "explain", "export"])
def test_unknown_id_in_selection_flags(
    cli: Cli,  # noqa: F811
    frozen: Frozen,
    tmp_path: Path,
    command: str,
    flag: str,
    value: str,
    needles: tuple[str, ...],
) -> None:
    base = {
        "check": [],
        "analyze": [],
        "explain": [],
        "export": ["--format", "npy", "-o", tmp_path / "o.npy"],
    }
    row = [] if flag == "--source" else ["--source", "bass"]
    row += [] if flag == "--feature" else ["--feature", "rms"]
    extra = row if command in ("explain", "export") else []
    assert_bad_input(cli(command, frozen.path, *extra, flag, value, *base[command]), *needles)
    frozen.unchanged()
    assert not (tmp_path / "o.npy").exists()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["check", "P", "--bogus"], ("unrecognized arguments: --bogus",)),
        (["frobnicate", "P"], ("invalid choice: 'frobnicate'",)),
        (["check"], ("the following arguments are required: project",)),
        (["analyze", "P", "--jobs", "0"], ("--jobs must be at least 1",)),
        (["analyze", "P", "--jobs", "-3"], ("--jobs must be at least 1",)),
        (["analyze", "P", "--jobs", "two"], ("--jobs", "invalid int value: 'two'")),
        (
            ["export", "P", "--source", "bass", "--feature", "rms", "--format", "xyz", "-o", "o"],
            ("--format", "invalid choice: 'xyz'"),
        ),
        (["export", "P", "--source", "bass", "--feature", "rms", "-o", "o"], ("--format",)),
        (["export", "P", "--source", "bass", "--feature", "rms", "--format", "npy"], ("-o",)),
        (["screenshot", "P", "-o", "o.png", "--size", "10x10"], ("--size '10x10'", "200x150")),
        (["screenshot", "P", "-o", "o.png", "--size", "big"], ("--size 'big'", "WxH")),
        (["screenshot", "P", "-o", "o.png", "--size", "0x-5"], ("--size '0x-5'",)),
        (["screenshot", "P"], ("-o",)),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_flags(
    cli: Cli,  # noqa: F811
    frozen: Frozen,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    needles: tuple[str, ...],
) -> None:
    monkeypatch.chdir(frozen.path.parent)  # relative outputs would land in the frozen folder
    result = cli(*("project.json" if a == "P" else a for a in args))
    assert_bad_input(result, *needles)
    frozen.unchanged()


def test_bad_flag_in_a_fresh_process(frozen: Frozen) -> None:
    result = run_module("analyze", frozen.path, "--jobs", "0")
    assert_bad_input(result, "--jobs must be at least 1")
    frozen.unchanged()


# --- audio files -----------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["missing", "empty", "garbage", "a-folder"])
def test_broken_audio_fails_that_source_only(
    project: Path,  # noqa: F811
    cli: Cli,  # noqa: F811
    damage: str,
) -> None:
    bass = project.parent / "audio" / "bass.wav"
    bass.unlink()
    if damage == "empty":
        bass.write_bytes(b"")
    elif damage == "garbage":
        bass.write_bytes(bytes(range(256)) * 8)
    elif damage == "a-folder":
        bass.mkdir()
    check = cli("check", project, "--json")
    assert check.code == 1
    assert "Traceback" not in check.err
    for row in check.json()["rows"]:
        if row["source"] == "bass":
            assert row["state"] == "failed"
            assert str(bass) in row["message"] and "\n" not in row["message"]
        else:
            assert (row["state"], row["message"]) == ("missing", None)
    if damage == "empty":
        assert "empty" in check.json()["rows"][-1]["message"]
    if damage == "missing":
        assert "not found" in check.json()["rows"][-1]["message"]

    analyze = cli("analyze", project, "--json")
    assert analyze.code == 1
    assert "Traceback" not in analyze.err
    for job in analyze.json()["jobs"]:
        if job["source"] == "bass":
            assert job["status"] == "failed" and str(bass) in job["message"]
        else:
            assert (job["status"], job["message"]) == ("done", None)
    states = {k: r["state"] for k, r in rows_by(cli("check", project, "--json").json()).items()}
    assert {s for (src, _, _), s in states.items() if src == "drums"} == {"ok"}
    assert {s for (src, _, _), s in states.items() if src == "bass"} == {"failed"}
    # explain tells why, and exit codes stay 1 (an issue), not 2 (bad input)
    explain = cli("explain", project, "--source", "bass", "--feature", "rms")
    assert explain.code == 1 and "state: failed" in explain.out and str(bass) in explain.out
    assert_store_loadable(project.parent / ".featurecache")


def test_invalid_request_is_a_row_not_a_crash(project: Path, cli: Cli) -> None:  # noqa: F811
    def change(doc: dict[str, Any]) -> None:
        doc["tracks"][0]["requests"].append({"feature": "zzz"})
        doc["tracks"][0]["requests"].append({"feature": "rms", "calculator": "core.pitch"})
        doc["tracks"][0]["requests"].append(
            {"feature": "pitch", "params": {"fmin": 9000.0, "fmax": 10500.0}}  # too narrow
        )

    edit_project(project, change)
    check = cli("check", project, "--json")
    assert check.code == 1
    invalid = [r for r in check.json()["rows"] if r["state"] == "invalid"]
    assert len(invalid) == 3
    assert all(r["message"] and "\n" not in r["message"] for r in invalid)
    assert any("zzz" in r["message"] for r in invalid)
    assert any("fmin/fmax" in r["message"] for r in invalid)
    explain = cli("explain", project, "--source", "drums", "--feature", "zzz")
    assert explain.code == 1
    assert explain.out.splitlines()[:2] == [
        "drums / zzz  (no calculator, profile default)",
        "state: invalid — " + next(r["message"] for r in invalid if "zzz" in r["message"]),
    ]
    # an invalid row is never planned; the feature name is known to the selection flags
    dry = cli("analyze", project, "--dry-run", "--json", "--feature", "zzz")
    assert (dry.code, dry.json()["jobs"]) == (0, [])
    ran = cli("analyze", project, "--json")
    assert ran.code == 0
    assert all(j["params"] == {} or j["source"] == "bass" for j in ran.json()["jobs"])
    assert ran.json()["summary"]["invalid"] == 3


# --- the cache folder ------------------------------------------------------------------------


@pytest.mark.parametrize("cache_dir", ["somefile/cache", "somefile"])
@pytest.mark.parametrize("command", ["check", "analyze", "prune"])
def test_impossible_cache_dir(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
    cache_dir: str,
    command: str,
) -> None:
    path = shared_source_project(tmp_path, cache_dir=cache_dir)
    (tmp_path / "somefile").write_text("a regular file\n")
    before = tree_digest(tmp_path)
    line = assert_bad_input(cli(command, path), str(tmp_path / cache_dir))
    assert "feature store folder" in line
    assert tree_digest(tmp_path) == before


def test_corrupt_index(project: Path, cli: Cli) -> None:  # noqa: F811
    assert cli("analyze", project).code == 0
    index = project.parent / ".featurecache" / "index.sqlite"
    index.write_bytes(b"this is not an sqlite database" * 100)
    before = tree_digest(project.parent)
    assert_bad_input(cli("check", project), str(index), "not a database")
    assert tree_digest(project.parent) == before


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:  # in the child, before exec: writes beyond ``limit`` fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_full_disk_while_writing_feature_data(tmp_path: Path, cli: Cli) -> None:  # noqa: F811
    """The data file of one job outgrows the limit: that job fails with a one-line message,
    the others are done, and the store holds only complete entries."""
    path = shared_source_project(tmp_path)
    edit_project(
        path,
        lambda d: d["tracks"][0]["requests"].append(
            {"feature": "spectrogram", "params": {"hop_size": 32}}  # ~4 MB of float32 frames
        ),
    )
    result = run_module("analyze", path, "--json", preexec_fn=_file_size_limit(2_000_000))
    assert result.code == 1, result
    assert "Traceback" not in result.err
    jobs = result.json()["jobs"]
    [failed] = [j for j in jobs if j["status"] != "done"]
    assert (failed["source"], failed["calculator"], failed["params"]) == (
        "drums",
        "core.spectrogram",
        {"hop_size": 32},
    )
    assert failed["status"] == "failed"
    assert "File too large" in failed["message"] and "\n" not in failed["message"]
    assert len(jobs) == 7
    entries = assert_store_loadable(tmp_path / ".featurecache")
    assert len(entries) == 6
    check = cli("check", path, "--json")
    assert check.json()["summary"]["ok"] == 6 and check.json()["summary"]["failed"] == 1
    # with room again, only the failed job runs
    again = cli("analyze", path, "--json")
    assert (again.code, [j["calculator"] for j in again.json()["jobs"]]) == (
        0,
        ["core.spectrogram"],
    )


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_full_disk_while_writing_the_index(tmp_path: Path, cli: Cli) -> None:  # noqa: F811
    """The index itself cannot grow: analyze stops with a one-line message; the store still
    opens and every entry it lists loads."""
    path = shared_source_project(tmp_path)
    assert cli("check", path).code == 1  # the index exists (~100 kB); now it may not grow much
    result = run_module("analyze", path, "--jobs", "2", preexec_fn=_file_size_limit(200_000))
    assert result.code in (1, 2), result
    assert "Traceback" not in result.err
    if result.code == 2:
        assert_bad_input(Result(2, "", result.err), "index.sqlite")
    assert_store_loadable(tmp_path / ".featurecache")
    check = cli("check", path, "--json")
    assert check.code == 1
    assert {r["state"] for r in check.json()["rows"]} <= {"ok", "missing", "failed"}
    fixed = cli("analyze", path)  # room again: everything completes
    assert fixed.code == 0, fixed
    assert cli("check", path).code == 0


# --- export ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["npy", "csv", "json"])
@pytest.mark.parametrize("where", ["under-a-file", "a-folder", "no-such-root"])
def test_export_to_an_unwritable_path(
    cli: Cli,  # noqa: F811
    frozen: Frozen,
    tmp_path_factory: pytest.TempPathFactory,
    fmt: str,
    where: str,
) -> None:
    tmp_path = tmp_path_factory.mktemp("out")  # not the (frozen) project folder
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file\n")
    target = {
        "under-a-file": blocker / f"out.{fmt}",
        "a-folder": tmp_path,
        "no-such-root": Path("/proc/no/such") / f"out.{fmt}",
    }[where]
    before = tree_digest(tmp_path)
    result = cli(
        "export", frozen.path, "--source", "bass", "--feature", "rms", "--format", fmt, "-o", target
    )
    line = assert_bad_input(result, str(target), "cannot write")
    if where == "under-a-file":
        assert "not a folder" in line
    frozen.unchanged()
    assert tree_digest(tmp_path) == before  # no partial or temporary file left behind


def test_demo_into_an_impossible_folder(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "file").write_text("x")
    assert_bad_input(cli("demo", tmp_path / "file" / "demo", "--no-gui"), str(tmp_path / "file"))
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_messages_are_json_free_one_liners(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    """A bad-input exit prints nothing on stdout, so ``--json`` consumers never parse half a
    document."""
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"schema_version": 2}))
    result = cli("check", path, "--json")
    assert_bad_input(result, "schema_version: 2 is newer")
