"""The command line (interface §4), run for real: ``diagnostics_app.cli.main`` in-process for
speed, plus a few ``python -m diagnostics_app`` / console-script runs for the entry point, the
exit codes and the absence of tracebacks. Every project is a small real one on disk."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from diagnostics_app import __version__
from diagnostics_app.cli import main
from diagnostics_app.core.session import Session
from diagnostics_app.core.store import FeatureStore, StoredEntry
from tests.core.project_factory import SR, shared_source_project, write_project, write_tone

STATES = ("ok", "missing", "stale", "extraneous", "queued", "running", "failed", "invalid")
ROW_KEYS = {
    "source",
    "feature",
    "calculator",
    "calculator_version",
    "profile",
    "params",
    "state",
    "tracks",
    "reasons",
    "message",
    "progress",
}
JOB_KEYS = {"source", "calculator", "profile", "params", "features", "status", "seconds", "message"}
GUI_ENV = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")


# --- helpers (also used by test_bad_input.py) ------------------------------------------------


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Result]


@pytest.fixture(autouse=True)
def _no_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIAGNOSTICS_APP_PLUGIN_PATH", raising=False)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``main([...])`` in this process: (exit code, stdout, stderr)."""

    def run(*args: object) -> Result:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse --version, and every exit-2 path
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def run_module(
    *args: object,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
    cwd: Path | None = None,
    exe: list[str] | None = None,
) -> Result:
    """``python -m diagnostics_app ARGS`` in a fresh process."""
    base = os.environ.copy() if env is None else env
    base.pop("DIAGNOSTICS_APP_PLUGIN_PATH", None)
    proc = subprocess.run(
        [*(exe or [sys.executable, "-m", "diagnostics_app"]), *(str(a) for a in args)],
        capture_output=True,
        text=True,
        env=base,
        cwd=cwd,
        preexec_fn=preexec_fn,
        timeout=120,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_bad_input(result: Result, *needles: str) -> str:
    """Exit 2, nothing on stdout, exactly one line on stderr naming the culprit, no traceback."""
    assert result.code == 2, result
    assert "Traceback" not in result.err, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("diagnostics-app"), lines[0]
    assert result.out == "", result.out
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def tree_digest(folder: Path) -> dict[str, str]:
    """sha1 of every file under ``folder``, by relative path: byte-identity of a folder."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def edit_project(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")


def track(doc: dict[str, Any], track_id: str) -> dict[str, Any]:
    return next(t for t in doc["tracks"] if t["id"] == track_id)


def store_entries(cache: Path) -> dict[tuple[str, str, str, str], StoredEntry]:
    with FeatureStore.open(cache) as store:
        return {
            (e.key.source_id, e.key.calculator_id, e.key.profile, e.key.params): e
            for e in store.entries()
        }


def assert_store_loadable(cache: Path) -> list[StoredEntry]:
    """The store opens, every listed feature loads completely, nothing in data/ or tmp/ is
    unreferenced."""
    with FeatureStore.open(cache) as store:
        entries = store.entries()
        referenced: set[str] = set()
        for entry in entries:
            for name, feature in entry.features.items():
                loaded = store.load(entry, name, mmap=False)
                data = np.asarray(loaded.data)
                assert data.shape == (feature.frames, feature.channels, feature.width)
                assert len(loaded.times) == feature.frames
                referenced.add(feature.path)
                if feature.times_path:
                    referenced.add(feature.times_path)
        on_disk = {str(p.relative_to(cache)) for p in (cache / "data").iterdir()}
        assert on_disk <= referenced, on_disk - referenced
        assert not list((cache / "tmp").iterdir())
    return entries


def rows_by(doc: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["source"], r["feature"], r["profile"]): r for r in doc["rows"]}


def jobs_of(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(j["source"], j["calculator"]) for j in doc["jobs"]}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return shared_source_project(tmp_path)


@pytest.fixture
def analysed(project: Path, cli: Cli) -> Path:
    result = cli("analyze", project)
    assert result.code == 0, result
    return project


# --- check -----------------------------------------------------------------------------------


def test_check_fresh_project_json_has_the_interface_shape(project: Path, cli: Cli) -> None:
    result = cli("check", project, "--json")
    assert result.code == 1
    doc = result.json()
    assert doc["schema_version"] == 1
    assert doc["project"] == str(project)
    assert list(doc["summary"]) == list(STATES)
    assert doc["summary"] == {s: (6 if s == "missing" else 0) for s in STATES}
    assert len(doc["rows"]) == 6
    for row in doc["rows"]:
        assert set(row) >= ROW_KEYS, ROW_KEYS - set(row)
        assert row["state"] == "missing"
        assert isinstance(row["calculator_version"], int)
        assert row["reasons"] == []
        assert row["progress"] is None
        assert isinstance(row["params"], dict)
        assert isinstance(row["tracks"], list)
    rows = rows_by(doc)
    shared = rows[("drums", "rms", "default")]
    assert (shared["calculator"], shared["tracks"]) == ("core.rms", ["kick", "snare"])
    assert rows[("drums", "centroid", "fine")]["tracks"] == ["snare"]
    pitch = rows[("bass", "pitch", "default")]
    assert (pitch["calculator"], pitch["params"]) == ("core.pitch", {"fmin": 40.0, "fmax": 400.0})


def test_check_text_table(project: Path, cli: Cli) -> None:
    result = cli("check", project)
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[0].split()[:6] == ["source", "feature", "calculator", "v", "profile", "state"]
    assert any(line.split()[:2] == ["drums", "rms"] and "kick,snare" in line for line in lines)
    assert lines[-1] == "6 missing"


def test_check_after_analyze_is_all_ok(analysed: Path, cli: Cli) -> None:
    result = cli("check", analysed, "--json")
    assert result.code == 0, result
    doc = result.json()
    assert doc["summary"] == {s: (6 if s == "ok" else 0) for s in STATES}
    assert {r["state"] for r in doc["rows"]} == {"ok"}
    assert all(r["reasons"] == [] and r["message"] is None for r in doc["rows"])
    text = cli("check", analysed)
    assert (text.code, text.out.splitlines()[-1]) == (0, "6 ok")


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--source", "bass"], {("bass", "pitch"), ("bass", "rms")}),
        (["--track", "snare"], {("drums", "rms"), ("drums", "beat_rms"), ("drums", "centroid")}),
        (["--track", "kick", "--track", "bass"], None),  # everything but centroid
        (["--feature", "rms"], {("drums", "rms"), ("bass", "rms")}),
        (["--feature", "rms", "--source", "drums"], {("drums", "rms")}),
        (["--calculator", "core.centroid"], {("drums", "centroid")}),
        (["--profile", "fine"], {("drums", "centroid")}),
        (["--param", "fmin=40"], {("bass", "pitch")}),
        (["--param", "fmin=40.0", "--param", "fmax=400"], {("bass", "pitch")}),
        (["--param", "fmin=41"], set()),
        (["--feature", "mel"], set()),  # a known feature nobody requests: no rows
    ],
)
def test_check_selection_flags_filter_rows(
    analysed: Path, cli: Cli, flags: list[str], expected: set[tuple[str, str]] | None
) -> None:
    everything = {
        (r["source"], r["feature"]) for r in cli("check", analysed, "--json").json()["rows"]
    }
    if expected is None:
        expected = everything - {("drums", "centroid")}
    result = cli("check", analysed, "--json", *flags)
    assert result.code == 0
    doc = result.json()
    assert {(r["source"], r["feature"]) for r in doc["rows"]} == expected
    assert doc["summary"]["ok"] == len(doc["rows"]) == len(expected)


def test_check_selection_summary_counts_only_selected_rows(analysed: Path, cli: Cli) -> None:
    edit_project(analysed, lambda d: d.update(tempo_map=[{"time": 0.0, "bpm": 100.0}]))
    assert cli("check", analysed).code == 1  # beat_rms is stale now
    result = cli("check", analysed, "--json", "--source", "bass")
    assert result.code == 0  # the stale row is not in the selection
    assert result.json()["summary"]["stale"] == 0
    stale = cli("check", analysed, "--json", "--feature", "beat_rms")
    assert stale.code == 1
    assert stale.json()["summary"] == {s: (1 if s == "stale" else 0) for s in STATES}


# --- analyze ---------------------------------------------------------------------------------


def test_analyze_json_shape_and_second_run_does_nothing(project: Path, cli: Cli) -> None:
    result = cli("analyze", project, "--json")
    assert result.code == 0, result
    doc = result.json()
    assert doc["schema_version"] == 1
    assert list(doc["summary"]) == list(STATES)
    assert doc["summary"] == {s: (6 if s == "ok" else 0) for s in STATES}
    for job in doc["jobs"]:
        assert set(job) >= JOB_KEYS, JOB_KEYS - set(job)
        assert (job["status"], job["message"]) == ("done", None)
        assert isinstance(job["seconds"], float) and job["seconds"] >= 0
    # one job per calculator entry: rms of drums is shared by two tracks but runs once
    assert sorted((j["source"], j["calculator"], j["profile"]) for j in doc["jobs"]) == sorted(
        [
            ("drums", "core.rms", "default"),
            ("drums", "core.beats", "default"),
            ("drums", "core.spectrogram", "default"),
            ("drums", "core.centroid", "fine"),
            ("bass", "core.pitch", "default"),
            ("bass", "core.rms", "default"),
        ]
    )
    pitch = next(j for j in doc["jobs"] if j["calculator"] == "core.pitch")
    assert (pitch["params"], pitch["features"]) == ({"fmin": 40.0, "fmax": 400.0}, ["pitch"])

    before = store_entries(project.parent / ".featurecache")
    again = cli("analyze", project, "--json")
    assert again.code == 0
    assert again.json()["jobs"] == []
    assert store_entries(project.parent / ".featurecache") == before
    text = cli("analyze", project)
    assert (text.code, text.out.strip()) == (0, "nothing to do")


def test_analyze_runs_missing_stale_failed_and_nothing_else(analysed: Path, cli: Cli) -> None:
    folder = analysed.parent
    (folder / "audio" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00not really a wave file")

    def change(doc: dict[str, Any]) -> None:
        doc["tempo_map"] = [{"time": 0.0, "bpm": 100.0}]  # drums beat_rms: stale
        track(doc, "bass")["requests"].append({"feature": "spectrogram"})  # bass: missing
        track(doc, "snare")["requests"].pop()  # drums centroid/fine: extraneous
        doc["sources"].append({"id": "broken", "path": "audio/broken.wav"})  # failed
        doc["tracks"].append({"id": "brk", "source": "broken", "requests": [{"feature": "rms"}]})

    edit_project(analysed, change)
    states = {k: r["state"] for k, r in rows_by(cli("check", analysed, "--json").json()).items()}
    assert states == {
        ("drums", "beat_rms", "default"): "stale",
        ("drums", "centroid", "fine"): "extraneous",
        ("drums", "rms", "default"): "ok",
        ("drums", "spectrogram", "default"): "ok",
        ("bass", "pitch", "default"): "ok",
        ("bass", "rms", "default"): "ok",
        ("bass", "spectrogram", "default"): "missing",
        ("broken", "rms", "default"): "failed",
    }
    before = store_entries(folder / ".featurecache")

    result = cli("analyze", analysed, "--json")
    assert result.code == 1  # the broken source's job failed
    doc = result.json()
    assert jobs_of(doc) == {
        ("drums", "core.beats"),
        ("bass", "core.spectrogram"),
        ("broken", "core.rms"),
    }
    status = {(j["source"], j["calculator"]): (j["status"], j["message"]) for j in doc["jobs"]}
    assert status[("drums", "core.beats")] == ("done", None)
    assert status[("bass", "core.spectrogram")] == ("done", None)
    failed, message = status[("broken", "core.rms")]
    assert failed == "failed"
    assert "broken.wav" in message and "\n" not in message

    after = store_entries(folder / ".featurecache")
    for key, entry in before.items():  # untouched entries are the very same commits
        if key[:2] != ("drums", "core.beats"):
            assert after[key].commit_id == entry.commit_id, key
    assert (
        after[("drums", "core.beats", "default", "{}")].commit_id
        != before[("drums", "core.beats", "default", "{}")].commit_id
    )
    assert doc["summary"] == {
        **{s: 0 for s in STATES},
        "ok": 6,
        "extraneous": 1,
        "failed": 1,
    }

    # failed rows are planned again by default; ok and extraneous ones still are not
    retry = cli("analyze", analysed, "--json")
    assert retry.code == 1
    assert jobs_of(retry.json()) == {("broken", "core.rms")}
    write_tone(folder / "audio" / "broken.wav", 0.5)
    fixed = cli("analyze", analysed, "--json")
    assert fixed.code == 0
    assert jobs_of(fixed.json()) == {("broken", "core.rms")}
    assert cli("analyze", analysed, "--json").json()["jobs"] == []
    assert (
        rows_by(cli("check", analysed, "--json").json())[("drums", "centroid", "fine")]["state"]
        == "extraneous"
    )


def test_analyze_dry_run_lists_jobs_and_changes_nothing(project: Path, cli: Cli) -> None:
    assert cli("check", project).code == 1  # creates the (empty) store
    cache = project.parent / ".featurecache"
    snapshot = tree_digest(project.parent)
    result = cli("analyze", project, "--dry-run", "--json")
    assert result.code == 0
    doc = result.json()
    assert len(doc["jobs"]) == 6
    for job in doc["jobs"]:
        assert set(job) >= JOB_KEYS
        assert (job["status"], job["seconds"], job["message"]) == ("planned", None, None)
    assert doc["summary"]["missing"] == 6
    assert tree_digest(project.parent) == snapshot  # store and project byte-identical
    with FeatureStore.open(cache) as store:
        assert (store.entries(), store.jobs()) == ([], [])

    derived: list[int] = []
    diagnose = Session.diagnose

    def counting(self: Session) -> Any:
        derived.append(1)
        return diagnose(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Session, "diagnose", counting)
        again = cli("analyze", project, "--dry-run", "--json")
    assert again.json() == doc and len(derived) == 1  # the summary is the plan's diagnosis

    text = cli("analyze", project, "--dry-run", "--source", "bass")
    assert text.code == 0
    assert [line.split()[:3] for line in text.out.splitlines()] == [
        ["planned", "bass", "core.pitch"],
        ["planned", "bass", "core.rms"],
    ]

    ran = cli("analyze", project, "--json").json()["jobs"]
    strip = ("status", "seconds", "message", "pass", "pass_seconds")
    assert sorted(
        json.dumps({k: v for k, v in j.items() if k not in strip}) for j in ran
    ) == sorted(json.dumps({k: v for k, v in j.items() if k not in strip}) for j in doc["jobs"])


def test_analyze_all_reruns_the_ok_rows_of_the_selection_only(analysed: Path, cli: Cli) -> None:
    cache = analysed.parent / ".featurecache"
    assert cli("analyze", analysed, "--source", "bass", "--json").json()["jobs"] == []
    before = store_entries(cache)
    result = cli("analyze", analysed, "--all", "--source", "bass", "--json")
    assert result.code == 0
    assert jobs_of(result.json()) == {("bass", "core.pitch"), ("bass", "core.rms")}
    after = store_entries(cache)
    assert set(after) == set(before)
    for key, entry in before.items():
        recomputed = after[key].commit_id != entry.commit_id
        assert recomputed == (key[0] == "bass"), key

    by_feature = cli("analyze", analysed, "--all", "--feature", "rms", "--json")
    assert jobs_of(by_feature.json()) == {("drums", "core.rms"), ("bass", "core.rms")}
    assert cli("check", analysed).code == 0


def test_analyze_with_two_workers(project: Path, cli: Cli) -> None:
    result = cli("analyze", project, "--jobs", "2", "--json")
    assert result.code == 0, result
    doc = result.json()
    assert len(doc["jobs"]) == 6
    assert {j["status"] for j in doc["jobs"]} == {"done"}
    assert doc["summary"]["ok"] == 6
    assert cli("check", project).code == 0
    assert_store_loadable(project.parent / ".featurecache")


def test_analyze_failing_source_fails_its_jobs_only(project: Path, cli: Cli) -> None:
    bass = project.parent / "audio" / "bass.wav"
    bass.write_bytes(bass.read_bytes()[:44] + b"\x01" * 10)  # a header promising much more
    result = cli("analyze", project, "--jobs", "2", "--json")
    assert result.code == 1
    doc = result.json()
    for job in doc["jobs"]:
        if job["source"] == "bass":
            assert job["status"] == "failed"
            assert "bass.wav" in job["message"] and "\n" not in job["message"]
        else:
            assert (job["status"], job["message"]) == ("done", None)
    assert {j["source"] for j in doc["jobs"] if j["status"] == "done"} == {"drums"}
    assert doc["summary"]["ok"] == 4 and doc["summary"]["failed"] == 2

    text = cli("analyze", project)
    assert text.code == 1
    assert all(line.startswith("failed") and "bass.wav" in line for line in text.out.splitlines())
    check = cli("check", project, "--json")
    assert check.code == 1
    for row in check.json()["rows"]:
        assert row["state"] == ("failed" if row["source"] == "bass" else "ok")
        if row["source"] == "bass":
            assert "bass.wav" in row["message"]


# --- explain ---------------------------------------------------------------------------------


def test_explain_ok_row_text_and_json(analysed: Path, cli: Cli) -> None:
    text = cli("explain", analysed, "--source", "drums", "--feature", "rms")
    assert text.code == 0, text
    assert "drums / rms  (core.rms v1, profile default)" in text.out
    assert "state: ok" in text.out
    assert "tracks: kick, snare" in text.out
    for name in ("audio.content", "audio.sample_rate", "audio.channels", "calculator.version"):
        assert name in text.out
    assert "≠" not in text.out

    result = cli("explain", analysed, "--source", "drums", "--feature", "rms", "--json")
    assert result.code == 0
    doc = result.json()
    assert doc["schema_version"] == 1
    assert set(doc["row"]) >= ROW_KEYS
    assert doc["row"]["state"] == "ok"
    assert doc["stored"] == doc["current"]
    assert doc["stored"]["audio.sample_rate"] == SR
    assert doc["stored"]["audio.channels"] == 2
    assert [f["input"] for f in doc["fields"]] == sorted(doc["stored"])
    for field in doc["fields"]:
        assert field["stored"] == field["current"] == doc["stored"][field["input"]]
        assert field["differs"] is False


def test_explain_stale_row_names_the_differing_field(analysed: Path, cli: Cli) -> None:
    edit_project(analysed, lambda d: d["profiles"]["fine"].update(hop_size=128))
    result = cli("explain", analysed, "--source", "drums", "--feature", "centroid", "--json")
    assert result.code == 1
    doc = result.json()
    assert doc["row"]["state"] == "stale"
    assert doc["row"]["reasons"] == [{"input": "profile.hop_size", "old": 256, "new": 128}]
    differing = [f for f in doc["fields"] if f["differs"]]
    assert differing == [
        {"input": "profile.hop_size", "stored": 256, "current": 128, "differs": True}
    ]
    same = [f for f in doc["fields"] if not f["differs"]]
    assert same and all(f["stored"] == f["current"] for f in same)

    text = cli("explain", analysed, "--source", "drums", "--feature", "centroid")
    assert text.code == 1
    assert "state: stale" in text.out
    [marked] = [line for line in text.out.splitlines() if line.startswith("≠")]
    assert marked.split() == ["≠", "profile.hop_size", "256", "128"]
    # the other profile's rows are untouched
    assert cli("explain", analysed, "--source", "drums", "--feature", "rms").code == 0


def test_explain_missing_row(project: Path, cli: Cli) -> None:
    result = cli("explain", project, "--source", "bass", "--feature", "rms", "--json")
    assert result.code == 1
    doc = result.json()
    assert (doc["row"]["state"], doc["stored"]) == ("missing", None)
    assert doc["current"]["calculator.version"] == 1
    assert all(f["stored"] is None and not f["differs"] for f in doc["fields"])


@pytest.fixture
def two_pitches(tmp_path: Path) -> Path:
    write_tone(tmp_path / "audio" / "bass.wav", 0.5, 55.0)
    return write_project(
        tmp_path,
        {
            "sources": [{"id": "bass", "path": "audio/bass.wav"}],
            "tracks": [
                {
                    "id": "bass",
                    "source": "bass",
                    "requests": [
                        {"feature": "pitch", "params": {"fmin": 40.0}},
                        {"feature": "pitch", "params": {"fmin": 60.0}},
                        {"feature": "rms"},
                    ],
                }
            ],
        },
    )


@pytest.mark.parametrize("command", ["explain", "export"])
def test_ambiguous_selection_exits_2_and_lists_candidates(
    two_pitches: Path, cli: Cli, tmp_path: Path, command: str
) -> None:
    extra = ["--format", "npy", "-o", tmp_path / "out.npy"] if command == "export" else []
    result = cli(command, two_pitches, "--source", "bass", "--feature", "pitch", *extra)
    line = assert_bad_input(result, "ambiguous", "2 rows")
    assert "--param fmin=40.0" in line and "--param fmin=60.0" in line
    assert not (tmp_path / "out.npy").exists()


def test_param_picks_one_of_two_param_sets(two_pitches: Path, cli: Cli) -> None:
    result = cli(
        "explain",
        two_pitches,
        "--source",
        "bass",
        "--feature",
        "pitch",
        "--param",
        "fmin=60",
        "--json",
    )
    assert result.code == 1
    assert (result.json()["row"]["params"], result.json()["row"]["state"]) == (
        {"fmin": 60.0},
        "missing",
    )
    analysed = cli("analyze", two_pitches, "--param", "fmin=60", "--json")
    assert jobs_of(analysed.json()) == {("bass", "core.pitch")}
    assert [j["params"] for j in analysed.json()["jobs"]] == [{"fmin": 60.0}]
    states = {
        json.dumps(r["params"]): r["state"]
        for r in cli("check", two_pitches, "--json", "--feature", "pitch").json()["rows"]
    }
    assert states == {'{"fmin": 40.0}': "missing", '{"fmin": 60.0}': "ok"}


@pytest.mark.parametrize(
    "flags",
    [["--feature", "rms"], ["--source", "bass"], []],
    ids=["no-source", "no-feature", "none"],
)
def test_explain_needs_source_and_feature(project: Path, cli: Cli, flags: list[str]) -> None:
    assert_bad_input(cli("explain", project, *flags), "--source and --feature are required")


def test_explain_no_matching_row_exits_2(analysed: Path, cli: Cli) -> None:
    assert_bad_input(
        cli("explain", analysed, "--source", "bass", "--feature", "centroid"), "no row matches"
    )


# --- prune -----------------------------------------------------------------------------------


@pytest.fixture
def with_extraneous(analysed: Path) -> Path:
    def change(doc: dict[str, Any]) -> None:
        track(doc, "snare")["requests"].pop()  # drums centroid/fine
        track(doc, "bass")["requests"].pop()  # bass rms

    edit_project(analysed, change)
    return analysed


def test_prune_dry_run_lists_extraneous_only_and_deletes_nothing(
    with_extraneous: Path, cli: Cli
) -> None:
    snapshot = tree_digest(with_extraneous.parent)
    result = cli("prune", with_extraneous, "--dry-run", "--json")
    assert result.code == 0
    doc = result.json()
    assert doc["dry_run"] is True
    assert sorted(
        (p["source"], p["feature"], p["calculator"], p["profile"]) for p in doc["pruned"]
    ) == [
        ("bass", "rms", "core.rms", "default"),
        ("drums", "centroid", "core.centroid", "fine"),
    ]
    assert all(p["params"] == {} and p["bytes"] > 0 for p in doc["pruned"])
    assert doc["bytes"] == sum(p["bytes"] for p in doc["pruned"])
    assert tree_digest(with_extraneous.parent) == snapshot

    text = cli("prune", with_extraneous, "--dry-run")
    assert text.code == 0
    assert text.out.splitlines()[-1].startswith("would delete 2 extraneous entries (")
    assert sum(line.startswith("would delete") for line in text.out.splitlines()[:-1]) == 2
    assert tree_digest(with_extraneous.parent) == snapshot
    assert cli("check", with_extraneous, "--json").json()["summary"]["extraneous"] == 2


def test_prune_deletes_extraneous_entries_and_their_files_only(
    with_extraneous: Path, cli: Cli
) -> None:
    cache = with_extraneous.parent / ".featurecache"
    before = store_entries(cache)
    gone_keys = {("drums", "core.centroid", "fine", "{}"), ("bass", "core.rms", "default", "{}")}
    gone_files = {
        p
        for k in gone_keys
        for f in before[k].features.values()
        for p in (f.path, f.times_path)
        if p
    }
    files_before = {str(p.relative_to(cache)) for p in (cache / "data").iterdir()}
    bytes_before = sum(p.stat().st_size for p in (cache / "data").iterdir())
    states_before = {
        k: r["state"] for k, r in rows_by(cli("check", with_extraneous, "--json").json()).items()
    }

    result = cli("prune", with_extraneous, "--json")
    assert result.code == 0
    doc = result.json()
    assert doc["dry_run"] is False
    assert {(p["source"], p["calculator"]) for p in doc["pruned"]} == {
        ("drums", "core.centroid"),
        ("bass", "core.rms"),
    }

    after = store_entries(cache)
    assert set(after) == set(before) - gone_keys
    for key in after:
        assert after[key].commit_id == before[key].commit_id
    files_after = {str(p.relative_to(cache)) for p in (cache / "data").iterdir()}
    assert gone_files and gone_files <= files_before
    assert files_after == files_before - gone_files  # the files are deleted, not just unlisted
    freed = bytes_before - sum(p.stat().st_size for p in (cache / "data").iterdir())
    assert freed == doc["bytes"] > 0
    with FeatureStore.open(cache) as store:
        assert store.trash() == []  # the CLI has no undo: nothing kept in the trash
    assert_store_loadable(cache)

    check = cli("check", with_extraneous, "--json")
    assert check.code == 0
    assert {k: r["state"] for k, r in rows_by(check.json()).items()} == {
        k: s for k, s in states_before.items() if s != "extraneous"
    }
    again = cli("prune", with_extraneous)
    assert (again.code, again.out.strip()) == (0, "no extraneous entries: nothing to delete")


def test_prune_entries_of_a_removed_source(analysed: Path, cli: Cli) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["sources"] = [s for s in doc["sources"] if s["id"] != "bass"]
        doc["tracks"] = [t for t in doc["tracks"] if t["source"] != "bass"]

    edit_project(analysed, change)
    check = cli("check", analysed, "--json", "--source", "bass")  # a source only the store knows
    assert check.code == 1
    assert {r["state"] for r in check.json()["rows"]} == {"extraneous"}
    result = cli("prune", analysed, "--json")
    assert {p["source"] for p in result.json()["pruned"]} == {"bass"}
    assert cli("check", analysed).code == 0
    assert {k[0] for k in store_entries(analysed.parent / ".featurecache")} == {"drums"}


# --- export ----------------------------------------------------------------------------------

DRUMS_SECONDS, BASS_SECONDS = 1.5, 1.0


@pytest.fixture(scope="module")
def export_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    write_tone(folder / "audio" / "drums.wav", DRUMS_SECONDS, 110.0, channels=2, seed=1)
    write_tone(folder / "audio" / "bass.wav", BASS_SECONDS, 55.0, seed=2)
    path = write_project(
        folder,
        {
            "sources": [
                {"id": "drums", "path": "audio/drums.wav"},
                {"id": "bass", "path": "audio/bass.wav"},
            ],
            "tracks": [
                {
                    "id": "kick",
                    "source": "drums",
                    "requests": [
                        {"feature": "peaks"},
                        {"feature": "spectrogram"},
                        {"feature": "rms"},
                        {"feature": "rms", "params": {"channel_mode": "per_channel"}},
                    ],
                },
                {
                    "id": "bass",
                    "source": "bass",
                    "requests": [{"feature": "pitch", "params": {"fmin": 40.0, "fmax": 400.0}}],
                },
            ],
        },
    )
    with Session.open(path) as session:
        session.enqueue(session.plan())
        results = session.runner.run_all()
        assert [r.status for r in results] == ["done"] * len(results)
    return path


def stored_feature(
    project: Path, source: str, calculator: str, feature: str, params: str = "{}"
) -> tuple[np.ndarray, np.ndarray, StoredEntry]:
    with FeatureStore.open(project.parent / ".featurecache") as store:
        entry = next(
            e
            for e in store.entries()
            if (e.key.source_id, e.key.calculator_id, e.key.params) == (source, calculator, params)
        )
        loaded = store.load(entry, feature, mmap=False)
        return np.array(loaded.data), np.array(loaded.times), entry


def frames_of(seconds: float, hop: int = 512) -> int:
    return 1 + int(SR * seconds) // hop  # center=True framing


EXPORTS = {
    # id: (selection flags, source, calculator, params key, expected shape)
    "spectrogram": (
        ["--source", "drums", "--feature", "spectrogram"],
        ("drums", "core.spectrogram", "{}"),
        (frames_of(DRUMS_SECONDS), 1025),
    ),
    "rms": (
        ["--source", "drums", "--feature", "rms"],
        ("drums", "core.rms", "{}"),
        (frames_of(DRUMS_SECONDS), 1),
    ),
    "rms-per-channel": (
        ["--source", "drums", "--feature", "rms", "--param", "channel_mode=per_channel"],
        ("drums", "core.rms", '{"channel_mode":"per_channel"}'),
        (frames_of(DRUMS_SECONDS), 2, 1),
    ),
    "pitch": (
        ["--source", "bass", "--feature", "pitch"],
        ("bass", "core.pitch", '{"fmax":400.0,"fmin":40.0}'),
        (frames_of(BASS_SECONDS), 2),
    ),
    "peaks": (["--source", "drums", "--feature", "peaks"], ("drums", "core.peaks", "{}"), None),
}


def _feature_name(case: str) -> str:
    return case.split("-")[0]


@pytest.mark.parametrize("case", list(EXPORTS))
def test_export_npy_shapes(export_project: Path, cli: Cli, tmp_path: Path, case: str) -> None:
    flags, (source, calc, params), shape = EXPORTS[case]
    out = tmp_path / "sub" / f"{case}.npy"
    result = cli("export", export_project, *flags, "--format", "npy", "-o", out)
    assert result.code == 0, result
    assert result.err.strip() == str(out)
    arr = np.load(out, allow_pickle=False)
    assert arr.dtype == np.float32
    data, times, entry = stored_feature(export_project, source, calc, _feature_name(case), params)
    if case == "peaks":
        assert arr.ndim == 3 and arr.shape[1:] == (2, 2)  # (blocks, audio channels, min/max)
        assert arr.shape[0] > 1
        assert np.all(arr[..., 0] <= arr[..., 1])
        assert arr[..., 0].min() < 0 < arr[..., 1].max()
    else:
        assert arr.shape == shape
    assert arr.reshape(-1).tolist() == pytest.approx(data.reshape(-1).tolist(), nan_ok=True)
    prov = json.loads(out.with_name(out.name + ".provenance.json").read_text())
    assert (prov["source"], prov["calculator"], prov["profile"]) == (source, calc, "default")
    assert prov["fingerprint"] == entry.fingerprint
    assert prov["shape"] == list(arr.shape)
    assert prov["frame_times"] == pytest.approx(times.tolist())


@pytest.mark.parametrize("case", ["rms", "pitch", "spectrogram", "peaks"])
def test_export_csv_header_and_time_column(
    export_project: Path, cli: Cli, tmp_path: Path, case: str
) -> None:
    flags, (source, calc, params), _ = EXPORTS[case]
    npy, out = tmp_path / "x.npy", tmp_path / "x.csv"
    assert cli("export", export_project, *flags, "--format", "npy", "-o", npy).code == 0
    assert cli("export", export_project, *flags, "--format", "csv", "-o", out).code == 0
    arr = np.load(npy).reshape(np.load(npy).shape[0], -1)
    _, times, _ = stored_feature(export_project, source, calc, case, params)
    with out.open(newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    assert header[0] == "time"
    assert len(header) == 1 + arr.shape[1]
    assert len(set(header)) == len(header)
    if case == "pitch":
        assert header == ["time", "f0", "confidence"]
    assert len(body) == arr.shape[0] == len(times)
    assert [float(r[0]) for r in body] == pytest.approx(times.tolist(), abs=1e-6)
    values = np.array([[float(v) for v in r[1:]] for r in body])
    assert values.shape == arr.shape
    np.testing.assert_allclose(values, arr, rtol=1e-6, atol=1e-6)
    assert (tmp_path / "x.csv.provenance.json").is_file()


@pytest.mark.parametrize("case", ["rms", "pitch", "peaks"])
def test_export_json_holds_provenance_times_and_data(
    export_project: Path, cli: Cli, tmp_path: Path, case: str
) -> None:
    flags, (_source, calc, _params), _ = EXPORTS[case]
    npy, out = tmp_path / "x.npy", tmp_path / "x.json"
    assert cli("export", export_project, *flags, "--format", "npy", "-o", npy).code == 0
    assert cli("export", export_project, *flags, "--format", "json", "-o", out).code == 0

    def no_constants(name: str) -> None:
        raise AssertionError(f"not strict JSON: {name}")

    doc = json.loads(out.read_text(encoding="utf-8"), parse_constant=no_constants)
    prov = doc["provenance"]
    explain = cli("explain", export_project, *flags, "--json").json()
    assert prov["calculator"] == calc
    assert prov["version"] == explain["row"]["calculator_version"] == 1
    assert prov["profile"] == "default"
    assert prov["fingerprint"] == explain["stored"] == explain["current"]
    assert prov["parameters"] == {
        k.removeprefix("profile."): v
        for k, v in explain["stored"].items()
        if k.startswith("profile.")
    }
    assert prov["parameters"]  # the profile parameters this calculator declares
    if case in ("rms", "pitch"):
        assert prov["parameters"]["window_size"] == 2048
        assert prov["parameters"]["hop_size"] == 512
    if case == "pitch":
        assert prov["parameters"]["fmin"] == 40.0 and prov["parameters"]["fmax"] == 400.0
    data = np.asarray(doc["data"], dtype=np.float64)
    assert data.shape == np.load(npy).shape
    np.testing.assert_allclose(data, np.load(npy), rtol=1e-6)
    times = np.asarray(doc["frame_times"])
    assert len(times) == data.shape[0]
    assert np.all(np.diff(times) > 0) and 0 <= times[0] < 0.1
    assert not list(tmp_path.glob(".x.json.*"))  # no temp file left behind


def test_export_refuses_a_row_that_is_not_ok(project: Path, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out.npy"
    missing = cli(
        "export", project, "--source", "drums", "--feature", "rms", "--format", "npy", "-o", out
    )
    assert_bad_input(missing, "refusing to export drums/rms", "state is missing")
    assert cli("analyze", project).code == 0
    edit_project(project, lambda d: d.update(tempo_map=[{"time": 0.0, "bpm": 90.0}]))
    stale = cli(
        "export",
        project,
        "--source",
        "drums",
        "--feature",
        "beat_rms",
        "--format",
        "csv",
        "-o",
        out,
    )
    assert_bad_input(stale, "drums/beat_rms", "state is stale", "tempo_map")
    assert not list(tmp_path.glob("out.npy*"))
    ok = cli(
        "export", project, "--source", "drums", "--feature", "rms", "--format", "npy", "-o", out
    )
    assert ok.code == 0 and out.is_file()


# --- demo, version, the console entry --------------------------------------------------------


def test_demo_no_gui_writes_a_project_check_reads(tmp_path: Path, cli: Cli) -> None:
    result = cli("demo", tmp_path / "demo", "--no-gui")
    assert result.code == 0, result
    path = Path(result.out.strip())
    assert path == tmp_path / "demo" / "project.json" and path.is_file()
    check = cli("check", path, "--json")
    assert check.code == 1  # stale, missing and extraneous rows by design
    summary = check.json()["summary"]
    for state in ("ok", "stale", "missing", "extraneous"):
        assert summary[state] >= 1, summary
    assert summary["failed"] == summary["invalid"] == 0
    stale = [r for r in check.json()["rows"] if r["state"] == "stale"]
    assert {r["reasons"][0]["input"] for r in stale} == {"tempo_map", "profile.hop_size"}


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert (result.code, result.out.strip()) == (0, f"diagnostics-app {__version__}")


def test_console_entry_exit_codes_and_json(project: Path) -> None:
    check = run_module("check", project, "--json", cwd=project.parent)
    assert check.code == 1, check
    assert check.json()["summary"]["missing"] == 6
    assert "Traceback" not in check.err
    analyze = run_module("analyze", "project.json", "--jobs", "2", cwd=project.parent)
    assert analyze.code == 0, analyze
    assert analyze.err == ""  # progress only on a terminal
    script = Path(sys.executable).parent / "diagnostics-app"
    exe = [str(script)] if script.exists() else [sys.executable, "-m", "diagnostics_app"]
    ok = run_module("check", project, exe=exe)
    assert (ok.code, ok.out.splitlines()[-1], ok.err) == (0, "6 ok", "")
    version = run_module("--version", exe=exe)
    assert (version.code, version.out.strip()) == (0, f"diagnostics-app {__version__}")


@pytest.mark.parametrize("args", [[], ["open", "PROJECT"]], ids=["gui", "open"])
def test_gui_without_a_display_exits_2_naming_the_way_out(
    project: Path, tmp_path: Path, args: list[str]
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in GUI_ENV}
    result = run_module(*(str(project) if a == "PROJECT" else a for a in args), env=env)
    line = assert_bad_input(result, "no display")
    assert "QT_QPA_PLATFORM=offscreen" in line and "screenshot" in line


def test_output_pipe_closed_early_stops_quietly(tmp_path: Path) -> None:
    """``check --json | head``: no traceback, no "Exception ignored" noise, exit 1."""
    n = 400  # rows of ~450 bytes: more than a pipe buffer holds
    path = write_project(
        tmp_path,
        {
            "sources": [{"id": f"s{i}", "path": f"audio/s{i}.wav"} for i in range(n)],
            "tracks": [
                {"id": f"t{i}", "source": f"s{i}", "requests": [{"feature": "rms"}]}
                for i in range(n)
            ],
        },
    )
    env = os.environ.copy()
    env.pop("DIAGNOSTICS_APP_PLUGIN_PATH", None)
    with subprocess.Popen(
        [sys.executable, "-m", "diagnostics_app", "check", str(path), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(20).startswith(b"{")
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 1
    assert err == ""
