"""A mistake in a request or a profile makes exactly that request (or the profile's requests)
an ``invalid`` row naming the key and its path, while the rest of the project loads and works
(``check``, ``analyze``, edits, saving); only a file that is not a project is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from diagnostics_app.core import edits
from diagnostics_app.core.errors import ProjectError
from diagnostics_app.core.mistakes import EXAMPLES, outcome
from diagnostics_app.core.project import load_project, problems, save_project
from diagnostics_app.core.suggest import did_you_mean, unknown_keys
from tests.core.test_cli import (  # the helpers and fixtures of the CLI tests
    Cli,
    _no_plugins,  # noqa: F401  (autouse fixture)
    analysed,  # noqa: F401  (fixture)
    assert_bad_input,
    cli,  # noqa: F401  (fixture)
    edit_project,
    project,  # noqa: F401  (fixture)
)

Change = Callable[[dict[str, Any]], None]


def _add(track: int, request: Any) -> Change:
    return lambda doc: doc["tracks"][track]["requests"].append(request)


def _bad_profile(doc: dict[str, Any]) -> None:
    doc["profiles"]["fine"]["window_size"] = -3


# (change, number of invalid rows, what each message holds); the shared project's `fine`
# profile is used by one request (snare's centroid)
MISTAKES: dict[str, tuple[Change, int, tuple[str, ...]]] = {
    "misspelt-key": (
        _add(0, {"feture": "mel"}),
        1,
        ('tracks[0].requests[3].feture: unknown key — did you mean "feature"?',),
    ),
    "missing-feature": (_add(0, {"profile": "fine"}), 1, ("tracks[0].requests[3].feature",)),
    "feature-not-a-string": (_add(0, {"feature": 3}), 1, ("tracks[0].requests[3].feature",)),
    "null-byte-in-feature": (
        _add(2, {"feature": "r\x00ms"}),
        1,
        ("tracks[2].requests[2].feature: contains a null byte",),
    ),
    "request-not-an-object": (_add(1, "rms"), 1, ("tracks[1].requests[3]:", "an object")),
    "unknown-feature": (
        _add(0, {"feature": "specrogram"}),
        1,
        ("unknown feature 'specrogram'", 'did you mean "spectrogram"?'),
    ),
    "unknown-calculator": (
        _add(2, {"feature": "pitch", "calculator": "core.pich"}),
        1,
        ("unknown calculator 'core.pich'", 'did you mean "core.pitch"?'),
    ),
    "unknown-profile": (
        _add(0, {"feature": "rms", "profile": "fien"}),
        1,
        ('tracks[0].requests[3].profile: unknown profile "fien" — did you mean "fine"?',),
    ),
    "bad-param-type": (
        _add(2, {"feature": "rms", "params": {"hop_size": "big"}}),
        1,
        ("tracks[2].requests[2].params.hop_size: expected a number",),
    ),
    "bad-param-range": (
        _add(2, {"feature": "rms", "params": {"hop_size": -4}}),
        1,
        ("tracks[2].requests[2].params.hop_size: -4 is below the minimum 1",),
    ),
    "unknown-param": (
        _add(2, {"feature": "rms", "params": {"hop_sise": 128}}),
        1,
        ('tracks[2].requests[2].params.hop_sise: unknown parameter — did you mean "hop_size"?',),
    ),
    "params-not-an-object": (
        _add(2, {"feature": "rms", "params": [1]}),
        1,
        ("tracks[2].requests[2].params: expected an object of parameters",),
    ),
    "bad-profile": (
        _bad_profile,
        1,
        ("profile 'fine' is invalid: profiles.fine.window_size: -3 is below the minimum 16",),
    ),
    "unknown-param-in-profile": (
        lambda doc: doc["profiles"]["fine"].update(windw_size=512),
        1,
        ('profiles.fine.windw_size: unknown parameter — did you mean "window_size"?',),
    ),
    "profile-not-an-object": (
        lambda doc: doc["profiles"].update(fine=7),
        1,
        ("profiles.fine: expected an object of parameters, got 7",),
    ),
}


def _states(doc: dict[str, Any]) -> dict[tuple[str, str, str, str], str]:
    return {
        (r["source"], r["feature"], r["profile"], json.dumps(r["params"])): r["state"]
        for r in doc["rows"]
    }


@pytest.mark.parametrize("case", list(MISTAKES))
def test_a_mistake_marks_only_its_request(
    analysed: Path,  # noqa: F811
    cli: Cli,  # noqa: F811
    case: str,
) -> None:
    change, count, needles = MISTAKES[case]
    before = cli("check", analysed, "--json")
    assert before.code == 0
    ok_before = _states(before.json())
    edit_project(analysed, change)

    check = cli("check", analysed, "--json")
    assert check.code == 1, check  # an invalid row is an issue, not bad input
    assert check.err == ""
    doc = check.json()
    invalid = [r for r in doc["rows"] if r["state"] == "invalid"]
    assert len(invalid) == count == doc["summary"]["invalid"]
    for row in invalid:
        for needle in needles:
            assert needle in row["message"], row["message"]
        assert "\n" not in row["message"] and "\x00" not in row["message"]
    # every other row is as before: the bad profile's request aside, all still ok
    states = _states(doc)
    for key, state in ok_before.items():
        if case in ("bad-profile", "unknown-param-in-profile", "profile-not-an-object") and (
            key[2] == "fine"
        ):
            assert state == "ok"
            continue
        assert states[key] == "ok", key
    assert doc["summary"]["ok"] == sum(1 for s in states.values() if s == "ok")

    # analyze skips the invalid rows and runs nothing else; exit 0
    ran = cli("analyze", analysed, "--json")
    assert (ran.code, ran.json()["jobs"]) == (0, []), ran
    assert ran.json()["summary"]["invalid"] == count
    # plain check prints the message in the table, and exits 1
    plain = cli("check", analysed)
    assert plain.code == 1 and needles[0] in plain.out


def test_a_bad_profile_marks_every_request_using_it(project: Path, cli: Cli) -> None:  # noqa: F811
    def change(doc: dict[str, Any]) -> None:
        _bad_profile(doc)
        doc["tracks"][2]["requests"].append({"feature": "rms", "profile": "fine"})

    edit_project(project, change)
    doc = cli("check", project, "--json").json()
    invalid = {(r["source"], r["feature"]) for r in doc["rows"] if r["state"] == "invalid"}
    assert invalid == {("drums", "centroid"), ("bass", "rms")}
    assert {r["state"] for r in doc["rows"] if r["profile"] != "fine"} == {"missing"}
    ran = cli("analyze", project, "--json")
    assert ran.code == 0
    assert {j["profile"] for j in ran.json()["jobs"]} == {"default"}
    assert ran.json()["summary"]["missing"] == 0


def test_warnings_for_unknown_keys_outside_requests(project: Path, cli: Cli) -> None:  # noqa: F811
    def change(doc: dict[str, Any]) -> None:
        doc["tempo_mpa"] = doc.pop("tempo_map")
        doc["sources"][0]["pth"] = "x.wav"
        doc["tracks"][1]["colour"] = "red"
        doc["_comment"] = "a note: never reported"
        doc["tracks"][0]["requests"][0]["_why"] = "a note in a request"

    edit_project(project, change)
    check = cli("check", project, "--json")
    assert check.code == 1  # missing rows, nothing invalid
    doc = check.json()
    assert doc["summary"]["invalid"] == 0
    assert doc["warnings"] == [
        'tempo_mpa: unknown key — did you mean "tempo_map"?',
        "sources[0].pth: unknown key (known: id, path)",
        "tracks[1].colour: unknown key (known: id, name, source, requests)",
    ]
    assert list(doc)[-1] == "rows"
    plain = cli("check", project)
    lines = plain.err.splitlines()
    assert len(lines) == 3 and all(ln.startswith(f"warning: {project}: ") for ln in lines)
    assert "tempo_mpa" in lines[0]


def test_invalid_parts_are_written_back_as_read(tmp_path: Path, project: Path) -> None:  # noqa: F811
    def change(doc: dict[str, Any]) -> None:
        doc["profiles"]["odd"] = 7
        doc["profiles"]["fine"]["window_size"] = "big"
        doc["tracks"][0]["requests"].append({"feture": "mel", "params": [1]})
        doc["tracks"][0]["requests"].append("rms")

    edit_project(project, change)
    written = json.loads(project.read_text())
    loaded = load_project(project)
    assert set(loaded.profile_problems) == {"odd", "fine"}
    assert len(problems(loaded)) == 4
    # an edit elsewhere keeps every mistake the file had, unchanged
    edited = edits.add_source(loaded, "audio/other.wav")
    out = tmp_path / "saved.json"
    save_project(edited, out)
    saved = json.loads(out.read_text())
    assert saved["profiles"] == written["profiles"]
    assert saved["tracks"] == written["tracks"]
    assert problems(load_project(out)) == problems(loaded)


def test_an_edit_may_not_add_a_mistake(project: Path) -> None:  # noqa: F811
    edit_project(project, _add(0, {"feture": "mel"}))
    loaded = load_project(project)
    with pytest.raises(ProjectError, match=r'unknown profile "nope"'):
        edits.add_request(loaded, "kick", "rms", profile="nope")
    with pytest.raises(ProjectError, match=r"profiles\.fine\.hop_size: 0 is below"):
        edits.set_profile_param(loaded, "fine", "hop_size", 0)
    # fixing the mistake is an edit like any other
    kick = loaded.track("kick")
    fixed = edits.set_requests(loaded, "kick", kick.requests[:-1])
    assert problems(fixed) == []


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("[]", "expected a JSON object"),
        ('{"format": "other"}', "not a diagnostics-app project"),
        ('{"schema_version": 7}', "newer"),
        ('{"sources": {}}', "sources: expected a list"),
        ('{"profiles": []}', "profiles: expected an object"),
        ('{"tracks": [{"id": "t", "source": "nope"}]}', 'unknown source "nope"'),
        ("not json", "not valid JSON"),
    ],
)
def test_a_file_that_is_not_a_project_is_refused(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
    content: str,
    needle: str,
) -> None:
    path = tmp_path / "p.json"
    path.write_text(content)
    assert_bad_input(cli("check", path), str(path), needle)


def test_did_you_mean() -> None:
    assert did_you_mean("feture", ["feature", "profile"]) == ' — did you mean "feature"?'
    assert did_you_mean("zzz", ["a", "b"]) == " (known: a, b)"
    # a typo is matched against the keys that are absent, never one already present
    assert unknown_keys({"feature": "x", "featur": "y"}, ["feature", "profile"], "r") == [
        "r.featur: unknown key (known: feature, profile)"
    ]
    assert unknown_keys({"profil": 1, "_note": 2}, ["feature", "profile"], "") == [
        'profil: unknown key — did you mean "profile"?'
    ]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.mistake)
def test_the_readme_examples_say_what_the_code_does(example: Any) -> None:
    got, message = outcome(example)
    assert "\n" not in message
    if "refused" in got:
        assert "exit 2" in got
    elif "invalid" in got:
        assert message and got.startswith("1 row")


def test_selection_flags_reach_invalid_rows(project: Path, cli: Cli) -> None:  # noqa: F811
    edit_project(project, _add(0, {"feature": "rms", "profile": "fien"}))
    only = cli("check", project, "--json", "--profile", "fien")
    assert only.code == 1
    assert [(r["feature"], r["state"]) for r in only.json()["rows"]] == [("rms", "invalid")]
    assert cli("analyze", project, "--profile", "fien", "--json").json()["jobs"] == []
