"""Hostile input to the commands added last (compare --against, add, analyze --workers,
screenshot --row) and to the project file (values of megabytes): each gives a one-line message
naming the culprit, never a hang, a traceback or a message of megabytes. Where a hang is
possible the CLI runs in a fresh process with a hang guard (``fresh``)."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from diagnostics_app.core.errors import MAX_MESSAGE, DiagnosticsError, bounded, escaped
from tests.core.project_factory import write_tone
from tests.core.test_cli import (  # the helpers and fixtures of the CLI tests
    Cli,
    _no_plugins,  # noqa: F401  (autouse fixture)
    analysed,  # noqa: F401  (fixture)
    assert_bad_input,
    cli,  # noqa: F401  (fixture)
    edit_project,
    project,  # noqa: F401  (fixture)
)
from tests.core.test_hostile_input import fresh, needs_dev, needs_fifo

ROW = ("--source", "bass", "--feature", "rms")


# --- compare --against FILE.npy --------------------------------------------------------------


@needs_fifo
def test_against_a_fifo_is_refused_not_waited_on(analysed: Path, tmp_path: Path) -> None:  # noqa: F811
    fifo = tmp_path / "x.npy"
    os.mkfifo(fifo)
    assert_bad_input(fresh("compare", analysed, *ROW, "--against", fifo), str(fifo), "FIFO")


@needs_dev
def test_against_a_device_is_refused(analysed: Path, cli: Cli) -> None:  # noqa: F811
    assert_bad_input(
        cli("compare", analysed, *ROW, "--against", "/dev/zero"), "/dev/zero", "device"
    )


def test_against_a_folder_is_refused(analysed: Path, tmp_path: Path, cli: Cli) -> None:  # noqa: F811
    folder = tmp_path / "d.npy"
    folder.mkdir()
    assert_bad_input(cli("compare", analysed, *ROW, "--against", folder), str(folder), "folder")


def test_against_a_file_that_is_not_npy_says_so(analysed: Path, tmp_path: Path, cli: Cli) -> None:  # noqa: F811
    text = tmp_path / "notes.npy"
    text.write_text("hello\n", encoding="utf-8")
    line = assert_bad_input(
        cli("compare", analysed, *ROW, "--against", text), str(text), "not a .npy file"
    )
    assert "pickle" not in line  # numpy's guess for a file without its magic bytes


def test_against_a_truncated_npy_names_it(analysed: Path, tmp_path: Path, cli: Cli) -> None:  # noqa: F811
    whole = tmp_path / "whole.npy"
    np.save(whole, np.zeros(44, np.float32))
    cut = tmp_path / "cut.npy"
    cut.write_bytes(whole.read_bytes()[:100])
    assert_bad_input(cli("compare", analysed, *ROW, "--against", cut), str(cut))


# --- values of megabytes in the project file -------------------------------------------------

HUGE = "x" * 3_000_000


def _messages(cli: Cli, project: Path) -> tuple[list[str], list[str]]:  # noqa: F811
    """The invalid rows' messages and the warnings of ``check --json``."""
    result = cli("check", project, "--json")
    assert result.code in (0, 1), result.err[:500]
    doc = json.loads(result.out)
    return [r["message"] for r in doc["rows"] if r["state"] == "invalid"], doc["warnings"]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d["tracks"][2]["requests"][0].update(params={"fmin": HUGE}), "params.fmin"),
        (lambda d: d["tracks"][2]["requests"][0].update(params={HUGE: 1}), "unknown parameter"),
        (lambda d: d["tracks"][2]["requests"][0].update(profile=HUGE), "unknown profile"),
        (lambda d: d["tracks"][2]["requests"][0].update({HUGE: 1}), "unknown key"),
        (lambda d: d["profiles"]["fine"].update(window_size=HUGE), "profiles.fine.window_size"),
    ],
    ids=["param-value", "param-key", "profile-name", "request-key", "profile-value"],
)
def test_a_huge_value_gives_a_short_invalid_row(
    cli: Cli,  # noqa: F811
    project: Path,  # noqa: F811
    change: Any,
    needle: str,
) -> None:
    edit_project(project, change)
    messages, _ = _messages(cli, project)
    assert len(messages) == 1 and needle in messages[0], messages[0][:300]
    assert len(messages[0]) <= 2 * MAX_MESSAGE and "characters cut" in messages[0]
    assert "\n" not in messages[0]


def test_a_huge_unknown_top_key_gives_a_short_warning(cli: Cli, project: Path) -> None:  # noqa: F811
    edit_project(project, lambda d: d.update({HUGE: 1}))
    _, warnings = _messages(cli, project)
    assert len(warnings) == 1 and "unknown key" in warnings[0]
    assert len(warnings[0]) <= 2 * MAX_MESSAGE


def test_bounded_keeps_the_start_and_the_end() -> None:
    assert bounded("short") == "short"
    text = "culprit: " + "y" * 5000 + " (hint)"
    cut = bounded(text, 300)
    assert cut.startswith("culprit: ") and cut.endswith(" (hint)") and len(cut) < 330
    assert f"[{len(text) - 200 - 75} characters cut]" in cut


# --- analyze --workers -----------------------------------------------------------------------


def test_a_huge_local_cluster_is_refused_before_anything_starts(project: Path) -> None:  # noqa: F811
    # fresh: a regression forks worker processes until the hang guard fires
    line = assert_bad_input(fresh("analyze", project, "--workers", 10**9), "--workers 1000000000")
    assert "per CPU" in line
    assert not (project.parent / ".featurecache").exists()  # nothing was computed or opened


def test_the_local_cluster_limit_follows_the_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    from diagnostics_app.core.cluster import ClusterError, check_local_workers

    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    check_local_workers(12)
    with pytest.raises(ClusterError, match="at most 12 local worker processes"):
        check_local_workers(13)
    with pytest.raises(ClusterError, match="must be at least 1"):
        check_local_workers(0)


# --- file names with a newline ---------------------------------------------------------------


def _newline_wav(folder: Path) -> Path:
    audio = folder / "in" / "a\nb.wav"
    write_tone(audio)
    return audio


def test_add_and_remove_print_a_newline_name_on_one_line(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    audio = _newline_wav(tmp_path)
    target = tmp_path / "p" / "project.json"
    added = cli("add", target, audio.parent)
    assert added.code == 0, added
    assert added.out.splitlines()[1] == f"add a_b  {tmp_path}/in/a\\nb.wav"
    stored = json.loads(target.read_text(encoding="utf-8"))["sources"][0]["path"]
    assert stored == str(audio)  # the target keeps the real name; only the display escapes
    again = cli("add", target, audio.parent)
    assert again.out.splitlines()[0] == f"already {tmp_path}/in/a\\nb.wav  (source a_b)"
    removed = cli("remove", target, "a_b", "--dry-run")
    assert removed.out.splitlines()[0] == f"would remove source a_b  {tmp_path}/in/a\\nb.wav"


def test_a_missing_newline_name_is_one_line_in_the_row_reason(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    audio = _newline_wav(tmp_path)
    target = tmp_path / "p" / "project.json"
    assert cli("add", target, audio, "--track-per-source").code == 0
    audio.unlink()
    result = cli("check", target)
    rows = [line for line in result.out.splitlines() if line.startswith("a_b ")]
    assert len(rows) == 3 and all("a\\nb.wav: file not found" in r for r in rows), result.out


def test_escaped_writes_what_is_not_printable_as_its_escape() -> None:
    assert escaped("plain é ü") == "plain é ü"
    assert escaped("a\nb\tc\x00d\udcff") == "a\\nb\\tc\\x00d\\udcff"
    assert str(DiagnosticsError("x\ny")) == "x\\ny"


# --- a store on a read-only file system ------------------------------------------------------


class _ReadOnlyFs:
    """What ``os.statvfs`` says of a read-only mount (only the flag is read)."""

    f_flag = os.ST_RDONLY


def test_a_store_on_a_read_only_file_system_says_so(
    cli: Cli,  # noqa: F811
    analysed: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # SQLite's own words for an index it cannot open on a read-only mount (no mount in a test)
    def refuse(*_: object, **__: object) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    cache = analysed.parent / ".featurecache"
    monkeypatch.setattr(sqlite3, "connect", refuse)
    monkeypatch.setattr(os, "statvfs", lambda _: _ReadOnlyFs())
    line = assert_bad_input(cli("check", analysed), str(cache / "index.sqlite"))
    assert line.endswith(f"unable to open database file ({cache} is on a read-only file system)")


def test_verify_scratch_on_a_read_only_folder_names_that_folder(
    cli: Cli,  # noqa: F811
    analysed: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    def read_only(*_: object, dir: str | None = None, **__: object) -> str:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), f"{dir}/diagnostics-verify-x1y2")

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)  # what a read-only mount does to it
    line = assert_bad_input(cli("verify", analysed, "--all", "--scratch", scratch))
    assert line == (
        f"diagnostics-app: {scratch}: cannot make the scratch store here "
        f"({os.strerror(errno.EROFS)})"
    )
    assert list(scratch.iterdir()) == []


# --- add / remove ----------------------------------------------------------------------------


def test_remove_given_a_track_id_says_it_is_a_track(cli: Cli, project: Path) -> None:  # noqa: F811
    before = project.read_bytes()
    assert_bad_input(
        cli("remove", project, "kick"),
        "'kick' is a track, not a source",
        "reads source 'drums'",
    )
    assert project.read_bytes() == before


def test_add_creating_a_project_with_a_control_character_prints_one_line(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
) -> None:
    audio = write_tone(tmp_path / "in" / "a.wav")
    result = cli("add", tmp_path / "p\x01.json", audio, "--dry-run")
    assert result.out.splitlines()[0] == f"would create {tmp_path}/p\\x01.json", result.out


# --- a tampered store ------------------------------------------------------------------------


def test_a_tampered_frame_count_of_a_previous_version_is_a_row_error(
    cli: Cli,  # noqa: F811
    analysed: Path,  # noqa: F811
) -> None:
    write_tone(analysed.parent / "audio" / "bass.wav", 1.0, 60.0, seed=5)  # new audio: rerun
    assert cli("analyze", analysed).code == 0
    index = analysed.parent / ".featurecache" / "index.sqlite"
    with sqlite3.connect(index) as db:  # a trillion frames: an axis of 7 TiB if believed
        assert db.execute("UPDATE previous SET frames = 1000000000000").rowcount == 2
    db.close()
    result = cli("compare", analysed, *ROW)
    assert result.code == 1 and result.err == "", result
    assert result.out.splitlines()[0].startswith("error")
    assert "corrupt array file" in result.out and "(1000000000000, 1, 1)" in result.out


def test_add_given_the_same_folder_twice_says_so(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    audio = write_tone(tmp_path / "in" / "a.wav")
    result = cli("add", tmp_path / "p.json", audio.parent, audio.parent, "--dry-run")
    assert result.code == 0, result
    assert f"skipped {audio.parent}: given more than once (scanned once)" in result.out.splitlines()
    assert "would add a  " in result.out and "a link" not in result.out


def test_against_an_empty_array_is_refused_not_within_tolerance(
    analysed: Path,  # noqa: F811
    tmp_path: Path,
    cli: Cli,  # noqa: F811
) -> None:
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros(0, np.float32))
    assert_bad_input(
        cli("compare", analysed, *ROW, "--against", empty), str(empty), "holds no frames"
    )


@pytest.mark.parametrize(
    ("cache_dir", "what"),
    [("project.json", "a file is there"), ("project.json/cache", "a folder above it is a file")],
)
def test_a_cache_dir_that_is_a_file_says_so(
    cli: Cli,  # noqa: F811
    project: Path,  # noqa: F811
    cache_dir: str,
    what: str,
) -> None:
    edit_project(project, lambda d: d.update(cache_dir=cache_dir))
    before = project.read_bytes()
    assert_bad_input(cli("check", project), str(project.parent / cache_dir), f"({what})")
    assert project.read_bytes() == before


# --- written file names and scheduler addresses ----------------------------------------------


def test_report_and_export_name_a_newline_output_on_one_line(
    cli: Cli,  # noqa: F811
    analysed: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    report = tmp_path / "r\n1.html"
    result = cli("report", analysed, "-o", report)
    assert result.code == 0 and result.err == f"{tmp_path}/r\\n1.html\n", result
    assert report.is_file()
    export = tmp_path / "e\n1.csv"
    result = cli("export", analysed, *ROW, "--format", "csv", "-o", export)
    assert result.code == 0 and result.err == f"{tmp_path}/e\\n1.csv\n", result


@pytest.mark.parametrize(
    ("address", "needle"),
    [
        ("tcp://h:99999", "port 99999 is above 65535"),
        ("tcp://" + "a" * 300 + ":8786", "not a host name"),
        ("tcp://" + "a" * 64 + ".example:8786", "63 between dots"),
    ],
    ids=["port", "long-name", "long-label"],
)
def test_an_impossible_scheduler_address_is_refused_before_dask(
    cli: Cli,  # noqa: F811
    project: Path,  # noqa: F811
    address: str,
    needle: str,
) -> None:
    # before: Dask tried it, failed, and its client timed out again at exit with a traceback
    assert_bad_input(cli("analyze", project, "--scheduler", address), needle)


def _with_audio_in_its_store(cli: Cli, project: Path) -> Path:  # noqa: F811
    """An analysed project whose cache folder holds a .wav (as a crafted or stray file)."""
    assert cli("analyze", project).code == 0
    cache = project.parent / ".featurecache"
    write_tone(cache / "tmp" / "sneaky.wav")
    return cache


def test_add_never_takes_audio_from_the_store_reached_through_a_link(
    cli: Cli,  # noqa: F811
    project: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    cache = _with_audio_in_its_store(cli, project)
    library = tmp_path / "library"
    write_tone(library / "song.wav")
    (library / "cache").symlink_to(cache)  # inside a folder that is added
    (tmp_path / "cachelink").symlink_to(cache)  # given itself
    before = project.read_bytes()
    result = cli("add", project, library, tmp_path / "cachelink", "--recursive")
    assert result.code == 0, result
    assert "sneaky" not in project.read_text(encoding="utf-8") and "song" in project.read_text(
        encoding="utf-8"
    )
    assert f"skipped {tmp_path}/cachelink: the project file or its feature cache folder" in (
        result.out
    )
    assert project.read_bytes() != before


def test_add_refuses_a_file_inside_the_store_given_directly(
    cli: Cli,  # noqa: F811
    project: Path,  # noqa: F811
) -> None:
    cache = _with_audio_in_its_store(cli, project)
    before = project.read_bytes()
    result = cli("add", project, cache / "tmp" / "sneaky.wav", project)
    assert result.code == 0, result
    assert result.out.count("the project file or its feature cache folder (not audio)") == 2
    assert project.read_bytes() == before


def test_a_huge_param_does_not_make_a_huge_report_or_explain(
    cli: Cli,  # noqa: F811
    project: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    edit_project(project, lambda d: d["tracks"][2]["requests"][0].update(params={"fmin": HUGE}))
    report = tmp_path / "r.html"
    assert cli("report", project, "-o", report).code == 0
    assert report.stat().st_size < 200_000  # the value is 3 MB; only its start is shown
    assert "characters cut" in report.read_text(encoding="utf-8")
    result = cli("explain", project, "--source", "bass", "--feature", "pitch")
    assert len(result.out) < 20_000, len(result.out)


def test_a_warning_about_a_project_with_a_newline_in_its_name_is_one_line(
    cli: Cli,  # noqa: F811
    project: Path,  # noqa: F811
) -> None:
    edit_project(project, lambda d: d.update(colour="blue"))  # an unknown key: a warning
    odd = project.rename(project.with_name("p\nq.json"))
    result = cli("check", odd)
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith(f"warning: {project.parent}/p\\nq.json: colour: unknown key")
