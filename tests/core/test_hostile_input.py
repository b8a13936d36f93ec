"""Input that used to escape as a traceback or a hang: null bytes, deep JSON, lone surrogates,
devices and FIFOs as the project or as audio, a BOM, a parameter typo. Each now gives a
one-line exit-2 message naming the culprit (or, for audio, a ``failed`` row that says what the
file is). Where a hang is possible the CLI runs in a fresh process with a hang guard."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.core.project_factory import shared_source_project
from tests.core.test_cli import (  # the helpers and fixtures of the CLI tests
    Cli,
    Result,
    _no_plugins,  # noqa: F401  (autouse fixture)
    assert_bad_input,
    cli,  # noqa: F401  (fixture)
    edit_project,
    export_project,  # noqa: F401  (fixture)
    project,  # noqa: F401  (fixture)
)

HANG_GUARD = 60  # seconds before a stuck child fails the test; no duration is asserted
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
needs_dev = pytest.mark.skipif(
    not (Path("/dev/zero").exists() and Path("/dev/null").exists()),
    reason="no /dev/zero or /dev/null on this platform",
)


def _memory_cap() -> None:  # a regression reading /dev/zero must not take the machine down
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def fresh(*args: object | bytes, env: dict[str, str] | None = None, strict: bool = True) -> Result:
    """``python -m diagnostics_app ARGS`` in a fresh process; stdout decoded as strict UTF-8
    (or, not ``strict``, with undecodable bytes escaped)."""
    full = os.environ.copy() if env is None else env
    full.pop("DIAGNOSTICS_APP_PLUGIN_PATH", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "diagnostics_app",
            *(a if isinstance(a, bytes) else str(a) for a in args),
        ],
        capture_output=True,
        env=full,
        timeout=HANG_GUARD,
        preexec_fn=_memory_cap,
        check=False,
    )
    errors = "strict" if strict else "backslashreplace"
    return Result(
        proc.returncode,
        proc.stdout.decode("utf-8", errors),
        proc.stderr.decode("utf-8", "backslashreplace"),
    )


# --- null bytes ------------------------------------------------------------------------------


def test_null_byte_in_the_project_path(cli: Cli, project: Path) -> None:  # noqa: F811
    line = assert_bad_input(cli("check", f"{project}\x00.json"), "null byte")
    assert "\x00" not in line and f"{project}\\x00.json" in line


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--source", "dr\x00ums"),
        ("--track", "ki\x00ck"),
        ("--feature", "r\x00ms"),
        ("--calculator", "core.r\x00ms"),
        ("--profile", "fi\x00ne"),
        ("--param", "f\x00min=40"),
        ("--param", "fmin=4\x000"),
    ],
)
@pytest.mark.parametrize("command", ["check", "analyze", "explain"])
def test_null_byte_in_selection_flags(
    cli: Cli,  # noqa: F811
    project: Path,  # noqa: F811
    command: str,
    flag: str,
    value: str,
) -> None:
    extra = ["--source", "bass", "--feature", "rms"] if command == "explain" else []
    line = assert_bad_input(cli(command, project, *extra, flag, value), flag, "null byte")
    assert "\x00" not in line


def test_null_byte_in_output_and_demo_paths(cli: Cli, project: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "o\x00.csv"
    args = ["--source", "bass", "--feature", "rms", "--format", "csv", "-o", out]
    assert_bad_input(cli("export", project, *args), "--output", "null byte")
    assert_bad_input(cli("demo", tmp_path / "d\x00", "--no-gui"), "dir", "null byte")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio", "project.json"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["sources"][0].update(path="audio/dr\x00ums.wav"), "sources[0].path"),
        (lambda d: d["sources"][1].update(id="ba\x00ss"), "sources[1].id"),
        (lambda d: d["tracks"][0].update(id="ki\x00ck"), "tracks[0].id"),
        (lambda d: d.update(cache_dir=".cache\x00"), "cache_dir"),
        (lambda d: d["profiles"].update({"f\x00": {}}), "profiles['f\\x00']"),
    ],
    # (a null byte in a request is that request's mistake: test_project_mistakes.py)
    ids=["audio-path", "source-id", "track-id", "cache-dir", "profile-name"],
)
def test_null_byte_in_the_project_file(
    cli: Cli,  # noqa: F811
    project: Path,  # noqa: F811
    change: Callable[[dict[str, Any]], None],
    field: str,
) -> None:
    edit_project(project, change)
    for command in ("check", "analyze"):
        assert_bad_input(cli(command, project), str(project), field, "contains a null byte")
    assert not (project.parent / ".featurecache").exists()


# --- deep JSON -------------------------------------------------------------------------------


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_json_nested_100000_deep(cli: Cli, tmp_path: Path, opener: str) -> None:  # noqa: F811
    closer = "]" if opener == "[" else "}"
    path = tmp_path / "project.json"
    path.write_text(opener * 100_000 + ("1" if opener != "[" else "") + closer * 100_000)
    assert_bad_input(cli("check", path), str(path), "nested too deeply")


def test_json_nested_just_below_the_parser_limit(cli: Cli, project: Path) -> None:  # noqa: F811
    """Deep enough to parse at the top of a fresh process but not from inside a call stack (the
    loader, a test runner, the GUI): either a normal run or the same clean message."""
    text = project.read_text().replace(
        '"feature": "rms"', '"x": ' + "[" * 990 + "]" * 990 + ', "feature": "rms"', 1
    )
    project.write_text(text)
    result = cli("check", project)
    if result.code == 2:
        assert_bad_input(result, "nested too deeply")
    else:
        assert result.code == 1 and "Traceback" not in result.err


# --- lone surrogates -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("escaped", "field"),
    [
        ('"id": "dr\\udcffums"', "sources[0].id"),
        ('"id": "kick\\ud800"', "tracks[0].id"),
        ('"name": "\\udfff"', "name"),
        ('"window_size": 1024, "\\ud8ff": 1', "profiles.fine.\\ud8ff"),
    ],
)
def test_lone_surrogate_in_the_project_is_refused(
    cli: Cli,  # noqa: F811
    project: Path,  # noqa: F811
    escaped: str,
    field: str,
) -> None:
    """Refused, not carried: a lone surrogate is not Unicode text, and an id goes on to the
    index, file names, check --json and the saved project, none of which can hold it."""
    plain = {
        "sources[0].id": '"id": "drums"',
        "tracks[0].id": '"id": "kick"',
        "name": '"name": "Test"',
        "profiles.fine.\\ud8ff": '"window_size": 1024',
    }[field]
    text = project.read_text()
    assert plain in text
    project.write_text(text.replace(plain, escaped, 1))
    for command in ("check", "analyze"):
        # in a fresh process: a failure report holding a raw surrogate (an exception, stdout)
        # would crash the test runner's worker instead of failing this test
        assert_bad_input(fresh(command, project, "--json", strict=False), field, "lone surrogate")


def test_a_paired_surrogate_escape_is_just_a_character(cli: Cli, project: Path) -> None:  # noqa: F811
    text = project.read_text().replace('"id": "kick"', '"id": "kick\\ud83d\\ude00"', 1)
    project.write_text(text)
    result = cli("check", project, "--json")
    assert result.code == 1
    assert any("kick\U0001f600" in r["tracks"] for r in result.json()["rows"])


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="needs non-UTF-8 file names")
def test_check_json_is_valid_utf8_for_a_non_utf8_project_path(tmp_path: Path) -> None:
    """A folder name that is not UTF-8 reaches Python as lone surrogates: ``check --json``
    writes them as \\udcXX escapes (valid UTF-8 JSON that reads back as the same string)."""
    shared_source_project(tmp_path / "cafe")
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9"))
    (tmp_path / "cafe").rename(folder)  # written first: soundfile cannot write there
    path = folder / "project.json"
    result = fresh(b"check", os.fsencode(path), b"--json")  # stdout decoded strictly
    assert result.code == 1, result
    assert result.json()["project"] == str(path)
    assert len(result.json()["rows"]) == 6
    table = fresh(b"check", os.fsencode(path) + b"x")
    assert_bad_input(table, "caf", "project file not found")


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="needs non-UTF-8 file names")
def test_check_json_saved_and_served_for_a_non_utf8_project_path(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cached ``check --json`` result (core.check_cache) used to raise UnicodeEncodeError
    saving it; now it is saved with the same \\udcXX escapes, and served byte-identical."""
    from diagnostics_app.core import check_cache

    # a result is saved only for files older than the process start: move the start ahead
    monkeypatch.setattr(check_cache, "STARTED_NS", time.time_ns() + 3600 * 10**9)
    shared_source_project(tmp_path / "cafe")
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9"))
    (tmp_path / "cafe").rename(folder)
    path = folder / "project.json"
    assert cli("analyze", path).code == 0
    first = cli("check", path, "--json")
    assert first.code == 0, first
    assert (folder / ".featurecache" / check_cache.CACHE_NAME).is_file()
    second = cli("check", path, "--json")  # served from the saved result
    assert second == first
    assert second.json()["project"] == str(path)
    assert "\\udce9" in second.out  # the escape, not the raw surrogate


# --- devices, FIFOs, folders, a BOM ----------------------------------------------------------


@needs_dev
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_project_path_is_a_device(device: str) -> None:
    """/dev/zero used to be read until memory ran out (24 GB); ``check --json`` reads the file
    first for its cached result, and used to do the same there."""
    for command in (["check"], ["check", "--json"], ["analyze"]):
        result = fresh(command[0], device, *command[1:])
        assert_bad_input(result, device, "is a character device, not a regular file")


@needs_fifo
def test_project_path_is_a_fifo(tmp_path: Path) -> None:
    """Opening a FIFO blocks until a writer comes: it is refused before it is opened."""
    fifo = tmp_path / "project.json"
    os.mkfifo(fifo)
    for command in (["check"], ["check", "--json"], ["analyze"], ["prune"]):
        result = fresh(command[0], fifo, *command[1:])
        assert_bad_input(result, str(fifo), "is a FIFO, not a regular file")


def test_project_with_a_utf8_bom_is_read(cli: Cli, project: Path) -> None:  # noqa: F811
    project.write_bytes(b"\xef\xbb\xbf" + project.read_bytes())
    result = cli("check", project, "--json")
    assert result.code == 1, result
    assert result.json()["summary"]["missing"] == 6


@needs_fifo
@needs_dev
@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda p: os.mkfifo(p) or str(p), "is a FIFO, not a regular file"),
        (lambda p: "/dev/zero", "is a character device, not a regular file"),
        (lambda p: "/dev/null", "is a character device, not a regular file"),
    ],
    ids=["fifo", "dev-zero", "dev-null"],
)
def test_audio_that_is_a_device_or_fifo_is_named_so(
    project: Path,  # noqa: F811
    make: Callable[[Path], str],
    kind: str,
) -> None:
    """Used to be called "empty file (0 bytes)"; never opened (a FIFO would block)."""
    audio = make(project.parent / "audio" / "fifo.wav")
    edit_project(project, lambda d: d["sources"][0].update(path=audio))
    check = fresh("check", project, "--json")
    assert check.code == 1, check
    rows = [r for r in check.json()["rows"] if r["source"] == "drums"]
    assert rows and {r["state"] for r in rows} == {"failed"}
    assert {r["message"] for r in rows} == {f"source 'drums': {audio}: {kind}"}
    analyze = fresh("analyze", project, "--json")
    assert analyze.code == 1, analyze
    assert {j["status"] for j in analyze.json()["jobs"] if j["source"] == "bass"} == {"done"}


# --- parameter names in selections -----------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "needles"),
    [
        ("fmn=60", ("--param 'fmn'", "unknown parameter", "did you mean 'fmin'?")),
        ("hopsize=256", ("--param 'hopsize'", "did you mean 'hop_size'?")),
        ("zzzzzz=1", ("--param 'zzzzzz'", "unknown parameter", "known: window_size")),
        ("fmin=6O", ("--param 'fmin=6O'", "fmin: expected a number, got '6O'")),
        ("fmin=NaN", ("--param 'fmin=NaN'", "must be finite")),
        ("fmin=-1", ("--param 'fmin=-1'", "below the minimum")),
        ("window=hanning", ("--param 'window=hanning'", "is not one of hann")),
        ("fmin=" + "[" * 100_000, ("--param 'fmin=[[[", "expected a number")),
    ],
)
@pytest.mark.parametrize("command", ["check", "analyze", "explain", "export"])
def test_unknown_parameter_name_in_a_selection(
    cli: Cli,  # noqa: F811
    project: Path,  # noqa: F811
    tmp_path: Path,
    command: str,
    param: str,
    needles: tuple[str, ...],
) -> None:
    """A typo (in the name or the value) used to match no row: "no rows", exit 0, a CI gate
    passing on nothing. Requests pass the same check when the project loads, so a value that
    fails it can match nothing."""
    extra = {
        "check": [],
        "analyze": ["--dry-run"],
        "explain": ["--source", "bass", "--feature", "pitch"],
        "export": [
            "--source",
            "bass",
            "--feature",
            "pitch",
            "--format",
            "csv",
            "-o",
            tmp_path / "o",
        ],
    }[command]
    assert_bad_input(cli(command, project, *extra, "--param", param), *needles)
    assert not (tmp_path / "o").exists()


def test_known_parameter_still_selects(cli: Cli, project: Path) -> None:  # noqa: F811
    result = cli("check", project, "--param", "fmin=40", "--json")
    assert result.code == 1
    assert [(r["source"], r["feature"]) for r in result.json()["rows"]] == [("bass", "pitch")]


# --- found by trying -------------------------------------------------------------------------


def test_home_of_an_unknown_user_is_a_failed_row(cli: Cli, project: Path) -> None:  # noqa: F811
    """``~nosuchuser/x.wav`` used to raise RuntimeError from Path.expanduser (a traceback)."""
    edit_project(project, lambda d: d["sources"][0].update(path="~nosuchuser-diag/x.wav"))
    result = cli("check", project, "--json")
    assert result.code == 1, result
    rows = [r for r in result.json()["rows"] if r["source"] == "drums"]
    assert {r["state"] for r in rows} == {"failed"}
    assert all("~nosuchuser-diag/x.wav: file not found" in r["message"] for r in rows)


@pytest.mark.parametrize("target", ["", ".", "/"])
def test_export_to_no_file_name(
    cli: Cli,  # noqa: F811
    export_project: Path,  # noqa: F811
    target: str,
) -> None:
    """Used to raise ValueError ("has an empty name") building the provenance file's name."""
    args = ["--source", "drums", "--feature", "rms", "--format", "npy", "-o", target]
    result = cli("export", export_project, *args)
    assert_bad_input(result, "cannot write (a folder, not a file name)")
