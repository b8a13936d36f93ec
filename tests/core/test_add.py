"""``diagnostics-app add`` and ``remove`` (core/library.py, cli_add.py) on real folder trees:
audio in three formats, audio under a wrong extension, files that are not audio, a broken
WAV, nested folders, a symbolic-link loop and a FIFO."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from diagnostics_app.core import library
from diagnostics_app.core.project import load_project
from tests.core.audio_factory import sine, truncate, write
from tests.core.test_cli import Cli, assert_bad_input
from tests.core.test_cli import cli as _cli  # noqa: F401  (the fixture, by its name)

SR = 8000
# every source a recursive add of the tree takes, with the path it is written with
EXPECTED = {
    "take": "lib/take.bin",
    "deep-a-b-c": "lib/deep/a/b/c.flac",
    "drums-kick_01": "lib/drums/kick_01.flac",
    "drums-kick_01-wav": "lib/drums/kick_01.wav",
    "keys-pad": "lib/keys/pad.ogg",
}


@pytest.fixture
def cli(_cli: Cli) -> Cli:  # noqa: F811
    return _cli


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``tmp_path/lib``: a small library with everything ``add`` must tell apart."""
    lib = tmp_path / "lib"
    for sub in ("drums", "keys", "deep/a/b"):
        (lib / sub).mkdir(parents=True)
    tone = sine(440.0, 0.25, SR)
    write(lib / "drums" / "kick_01.wav", tone, SR)
    write(lib / "drums" / "kick_01.flac", tone, SR)  # the same id as the WAV: a clash
    write(lib / "keys" / "pad.ogg", tone, SR)
    write(lib / "deep" / "a" / "b" / "c.flac", tone, SR)
    write(lib / "take.bin", tone, SR, "WAV", "PCM_16")  # audio under an odd extension
    write(lib / "keys" / "broken.wav", tone, SR)
    truncate(lib / "keys" / "broken.wav", 30)  # cut inside the header
    write(lib / ".hidden.wav", tone, SR)
    (lib / "notes.txt").write_text("liner notes\n", encoding="utf-8")
    (lib / "fake.wav").write_text("not audio at all\n", encoding="utf-8")
    (lib / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(60))
    (lib / "keys" / "loop").symlink_to("..")  # back to lib: a loop
    os.mkfifo(lib / "fifo")
    return lib


def _add(cli: Cli, project: Path, *args: object) -> tuple[int, dict[str, Any]]:
    result = cli("add", project, *args, "--json")
    assert "Traceback" not in result.err
    return result.code, result.json()


def _skips(doc: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    return {Path(s["path"]).name: (s["reason"], s["problem"]) for s in doc["skipped"]}


def test_add_takes_audio_by_content_and_says_why_it_skips_the_rest(
    cli: Cli, tree: Path, tmp_path: Path
) -> None:
    project = tmp_path / "proj.json"
    code, doc = _add(cli, project, tree, "--recursive")
    assert code == 1  # a broken WAV, a fake one and a link loop are problems
    assert doc["created"]
    assert {a["source"]: a["path"] for a in doc["added"]} == EXPECTED
    skips = _skips(doc)
    assert set(skips) == {"broken.wav", "fake.wav", "notes.txt", "cover.jpg", "loop", "fifo"}
    assert skips["broken.wav"] == (skips["broken.wav"][0], True)
    assert "header" in skips["broken.wav"][0]
    assert skips["fake.wav"] == ("unsupported or unrecognised audio format", True)
    assert skips["notes.txt"] == ("not an audio file", False)
    assert skips["cover.jpg"] == ("not an audio file", False)
    assert skips["fifo"] == ("not audio: is a FIFO, not a regular file", False)
    assert skips["loop"][1] and "symbolic link loop" in skips["loop"][0]
    assert doc["hidden"] == 1
    # the file is written, loads, and holds exactly those sources, relative to its folder
    loaded = load_project(project)
    assert {s.id: s.path for s in loaded.sources} == EXPECTED
    assert loaded.tracks == ()  # no --request, no --track-per-source: sources only
    text = project.read_text(encoding="utf-8")
    assert text.startswith('{\n  "format": "diagnostics-app/project"')  # save_project's layout


def test_ids_are_stable_and_a_second_add_adds_nothing(cli: Cli, tree: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "one.json", tmp_path / "two.json"
    _, doc1 = _add(cli, first, tree, "-r")
    _, doc2 = _add(cli, second, tree, "-r")
    assert doc1["added"] == doc2["added"]  # same ids, same order, same paths
    before = first.read_bytes()
    code, again = _add(cli, first, tree, "-r")
    assert code == 1  # the broken files are still reported
    assert again["added"] == []
    assert {p["source"] for p in again["present"]} == set(EXPECTED)
    assert first.read_bytes() == before  # nothing to add: the file is not rewritten


def test_a_file_already_present_under_another_spelling_or_link_is_not_added(
    cli: Cli, tree: Path, tmp_path: Path
) -> None:
    project = tmp_path / "proj.json"
    project.write_text(
        json.dumps({"sources": [{"id": "mine", "path": "./lib/../lib/keys/pad.ogg"}]}),
        encoding="utf-8",
    )
    (tree / "pad-link.ogg").symlink_to(tree / "keys" / "pad.ogg")
    _, doc = _add(cli, project, tree, "-r")
    assert "keys-pad" not in {a["source"] for a in doc["added"]}
    assert {p["source"] for p in doc["present"]} == {"mine"}  # both spellings are "mine"
    assert load_project(project).sources[0].id == "mine"


def test_without_recursive_subfolders_are_listed_not_entered(
    cli: Cli, tree: Path, tmp_path: Path
) -> None:
    _, doc = _add(cli, tmp_path / "proj.json", tree)
    assert [a["source"] for a in doc["added"]] == ["take"]
    skips = _skips(doc)
    for folder in ("drums", "keys", "deep"):
        assert skips[folder] == ("a folder (add --recursive to look inside)", False)


def test_requests_make_one_track_per_new_source(cli: Cli, tree: Path, tmp_path: Path) -> None:
    project = tmp_path / "proj.json"
    project.write_text(json.dumps({"profiles": {"fine": {"hop_size": 256}}}), encoding="utf-8")
    code, doc = _add(cli, project, tree / "drums", "--request", "rms", "--request", "mel:fine")
    assert code == 0
    loaded = load_project(project)
    assert [(t.id, t.name, t.source) for t in loaded.tracks] == [
        ("kick_01", "kick_01", "kick_01"),
        ("kick_01-wav", "kick_01", "kick_01-wav"),
    ]
    assert [(r.feature, r.profile) for r in loaded.tracks[0].requests] == [
        ("rms", "default"),
        ("mel", "fine"),
    ]
    assert [a["track"] for a in doc["added"]] == ["kick_01", "kick_01-wav"]


def test_track_per_source_alone_uses_the_default_requests(
    cli: Cli, tree: Path, tmp_path: Path
) -> None:
    project = tmp_path / "proj.json"
    assert cli("add", project, tree / "keys" / "pad.ogg", "--track-per-source").code == 0
    (track,) = load_project(project).tracks
    assert track.requests == library.DEFAULT_TRACK_REQUESTS
    assert track.source == "pad"  # a file given by itself: its stem


def test_dry_run_writes_nothing(cli: Cli, tree: Path, tmp_path: Path) -> None:
    project = tmp_path / "proj.json"
    result = cli("add", project, tree, "-r", "--dry-run")
    assert "would create" in result.out
    assert "would add drums-kick_01  lib/drums/kick_01.flac" in result.out
    assert not project.exists()


def test_text_output_is_one_line_per_file(cli: Cli, tree: Path, tmp_path: Path) -> None:
    result = cli("add", tmp_path / "proj.json", tree, "-r")
    lines = result.out.splitlines()
    assert sum(line.startswith("add ") for line in lines) == len(EXPECTED)
    assert sum(line.startswith("skipped ") for line in lines) == 6
    assert lines[-1].startswith("5 source(s) added, 0 already in the project, 6 skipped")


def test_a_file_outside_the_project_folder_is_written_absolute(
    cli: Cli, tree: Path, tmp_path: Path
) -> None:
    project = tmp_path / "sub" / "proj.json"
    assert cli("add", project, tree / "keys" / "pad.ogg").code == 0
    (source,) = load_project(project).sources
    assert source.path == str(tree / "keys" / "pad.ogg")


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ("folder", "is a folder, not a project file"),
        ("text", "not valid JSON"),
        ("device", "is a character device"),
    ],
)
def test_a_project_path_that_is_no_project_is_bad_input(
    cli: Cli, tree: Path, tmp_path: Path, setup: str, needle: str
) -> None:
    project = {"folder": tmp_path, "text": tree / "notes.txt", "device": Path("/dev/null")}[setup]
    assert_bad_input(cli("add", project, tree), needle)


def test_a_path_that_does_not_exist_is_bad_input_and_nothing_is_written(
    cli: Cli, tree: Path, tmp_path: Path
) -> None:
    project = tmp_path / "proj.json"
    assert_bad_input(cli("add", project, tree, tmp_path / "nope"), "nope: no such file or folder")
    assert_bad_input(cli("add", project, tree, "--request", "rmss"), "unknown feature 'rmss'")
    assert_bad_input(cli("add", project, tree, "--request", "rms:fien"), "unknown profile")
    assert not project.exists()


def test_an_unreadable_folder_is_a_problem_not_a_crash(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.scandir
    locked = str(tree / "keys")

    def scandir(path: Any = ".") -> Any:
        if os.fspath(path) == locked:  # chmod 000 cannot lock root (the test runs as root)
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = library.scan([tree], recursive=True)
    skips = {Path(s.path).name: s for s in found.skipped}
    assert skips["keys"].reason == "cannot read folder (Permission denied)"
    assert skips["keys"].problem
    assert "keys/pad.ogg" not in {f.relative for f in found.found}
    assert "drums/kick_01.wav" in {f.relative for f in found.found}


def test_a_link_to_itself_and_a_second_link_to_a_folder(tree: Path) -> None:
    (tree / "self").symlink_to("self")
    (tree / "drums-again").symlink_to("drums")
    found = library.scan([tree], recursive=True)
    skips = {Path(s.path).name: s for s in found.skipped}
    assert skips["self"].reason == "symbolic link loop (the link leads back to itself)"
    assert not skips["drums-again"].problem
    assert "already scanned" in skips["drums-again"].reason
    assert sum(f.relative.endswith("kick_01.wav") for f in found.found) == 1


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("drums/kick_01.wav", "drums-kick_01"),
        ("kick.wav", "kick"),
        ("My Songs/Ünïcode take (2).flac", "My_Songs-Ünïcode_take__2_"),
        ("a.b.c.wav", "a.b.c"),
        ("!!!.wav", "___"),
    ],
)
def test_ids_are_readable(relative: str, expected: str) -> None:
    assert library.id_base(relative) == expected


def test_clashes_are_resolved_in_a_fixed_order() -> None:
    taken = {"kick"}
    assert library.unique("kick", ".flac", taken) == "kick-flac"
    assert library.unique("kick", ".flac", {"kick", "kick-flac"}) == "kick-2"
    assert library.unique("kick", ".flac", {"kick", "kick-flac", "kick-2"}) == "kick-3"
    assert library.unique("snare", ".wav", taken) == "snare"


# --- remove ------------------------------------------------------------------------------------


@pytest.fixture
def added(cli: Cli, tree: Path, tmp_path: Path) -> Path:
    project = tmp_path / "proj.json"
    cli("add", project, tree, "-r", "--track-per-source")
    return project


def test_remove_missing_removes_the_sources_whose_files_are_gone_and_their_tracks(
    cli: Cli, tree: Path, added: Path
) -> None:
    (tree / "keys" / "pad.ogg").unlink()
    (tree / "deep" / "a" / "b" / "c.flac").unlink()
    before = added.read_bytes()
    dry = cli("remove", added, "--missing", "--dry-run", "--json").json()
    assert added.read_bytes() == before
    assert [r["source"] for r in dry["removed"]] == ["deep-a-b-c", "keys-pad"]
    result = cli("remove", added, "--missing")
    assert result.code == 0
    assert "remove source keys-pad  lib/keys/pad.ogg" in result.out
    assert "remove track keys-pad  (reads source keys-pad)" in result.out
    loaded = load_project(added)
    assert {s.id for s in loaded.sources} == set(EXPECTED) - {"keys-pad", "deep-a-b-c"}
    assert {t.source for t in loaded.tracks} == {s.id for s in loaded.sources}
    again = cli("remove", added, "--missing")
    assert again.out.splitlines()[-1].startswith("0 source(s) and 0 track(s) removed")


def test_remove_by_id(cli: Cli, added: Path) -> None:
    result = cli("remove", added, "take", "drums-kick_01", "--json")
    assert result.code == 0
    assert [t["track"] for t in result.json()["tracks"]] == [
        "take",
        "drums-kick_01",
    ]  # project order
    assert {s.id for s in load_project(added).sources} == set(EXPECTED) - {"take", "drums-kick_01"}


def test_remove_bad_input(cli: Cli, added: Path) -> None:
    before = added.read_bytes()
    assert_bad_input(cli("remove", added, "nope"), "unknown source 'nope'")
    assert_bad_input(cli("remove", added), "SOURCE_ID")
    assert_bad_input(cli("remove", added.parent, "--missing"), "is a folder")
    assert added.read_bytes() == before


def test_add_many_is_one_validation_not_one_per_file(tmp_path: Path) -> None:
    """20,000 sources in one edit: adding them one by one validated the whole project after
    each (quadratic); the batch edit validates once."""
    from diagnostics_app.core import edits
    from diagnostics_app.core import project as project_module
    from diagnostics_app.core.project import Project, Source

    calls = 0
    real = project_module.revalidated

    def counting(project: Project) -> Any:
        nonlocal calls
        calls += 1
        return real(project)

    sources = tuple(Source(f"s{i}", f"a/{i}.wav") for i in range(2000))
    mp = pytest.MonkeyPatch()
    mp.setattr(edits, "revalidated", counting)
    try:
        after = edits.add_sources(Project(path=tmp_path / "p.json"), sources)
    finally:
        mp.undo()
    assert calls == 1
    assert len(after.sources) == 2000
    assert np.unique([s.id for s in after.sources]).size == 2000


def test_a_file_name_that_is_not_utf8_is_skipped_by_name(tree: Path) -> None:
    name = os.fsdecode(b"caf\xe9.wav")  # Latin-1 bytes: a lone surrogate in Python
    (tree / "drums" / "kick_01.wav").rename(tree / "drums" / name)
    found = library.scan([tree / "drums"], recursive=True)
    (skip,) = found.skipped
    assert skip.reason == "the file name is not valid UTF-8 (cannot go in a project)"
    assert [f.relative for f in found.found] == ["kick_01.flac"]
