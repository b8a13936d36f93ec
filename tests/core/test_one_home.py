"""One home per rule (issue 8): the state sets and their order (``core/states.py``), the
fingerprint comparison and the value formatter (``core/explain.py``), request resolution
(``core/resolve.py``), channel names and frame times (``core/axes.py``), the waveform's peaks
(``engine.audio_peaks``) and the file stamp (``core/stamp.py``).

Where two copies of a rule used to disagree, the rule that won is pinned here: a field absent
on one side differs (the CLI's ``explain`` did not say so when the other side was ``null``);
a job fails with its row's message (it used to prefix the file name to a sample-rate
problem); the waveform reduces the audio in the peaks calculator's blocks (it used 256
samples, the calculator 64) and names channels as stored data does (``ch1``, ``ch2``, not
``L``, ``R``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from diagnostics_app.cli import main
from diagnostics_app.core import edits
from diagnostics_app.core import fingerprint as fpr
from diagnostics_app.core.audio import stamp_of
from diagnostics_app.core.axes import channel_names, complete_names, frame_step, frame_times
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.calculators.temporal import PeaksCalculator
from diagnostics_app.core.engine import analyse, audio_peaks
from diagnostics_app.core.errors import AudioError, Cancelled
from diagnostics_app.core.explain import ABSENT, compare, differing, format_value, profile_text
from diagnostics_app.core.params import PARAMS, resolve_params
from diagnostics_app.core.planner import Selection
from diagnostics_app.core.resolve import Invalid, Resolved, check_rate, resolve
from diagnostics_app.core.session import Session
from diagnostics_app.core.stamp import FileStamp
from diagnostics_app.core.states import (
    ACTIVE_JOB,
    EVICT_FIRST,
    ISSUES,
    PLANNABLE,
    REGENERABLE,
    SEVERITY,
    STATES,
    eviction_rank,
    extraneous,
    severity_rank,
    sql_list,
)
from diagnostics_app.core.store import EntryKey
from tests.core.project_factory import SR, shared_source_project, write_tone

# --- states ----------------------------------------------------------------------------------


def test_one_severity_order_over_every_state() -> None:
    assert sorted(SEVERITY) == sorted(STATES)
    assert [severity_rank(s) for s in SEVERITY] == list(range(len(STATES)))
    assert severity_rank("failed") < severity_rank("stale") < severity_rank("ok")
    assert severity_rank("no such state") == len(STATES)


def test_named_sets() -> None:
    assert {"queued", "running"} == ACTIVE_JOB  # rows and job records read this one set
    assert sql_list(ACTIVE_JOB) == "('queued', 'running')"
    with pytest.raises(ValueError, match="not a state"):
        sql_list({"queued", "x'); DROP TABLE jobs; --"})
    assert PLANNABLE | {"ok"} == REGENERABLE
    assert set(STATES) - {"ok"} == ISSUES
    assert sorted(STATES, key=eviction_rank)[: len(EVICT_FIRST)] == list(EVICT_FIRST)


@dataclass(frozen=True)
class _R:
    state: str


def test_extraneous_filter_keeps_order_and_only_extraneous_rows() -> None:
    rows = [_R(s) for s in (*STATES, "extraneous")]
    assert extraneous(rows) == [rows[3], rows[-1]]


# --- explain: the comparison and the formatter -----------------------------------------------


def test_a_field_absent_on_one_side_differs_and_reads_absent() -> None:
    stored = {"calculator.version": 1, "profile.hop_size": 512}
    current = {"calculator.version": 1, "profile.hop_size": 512.0, "profile.fmin": None}
    fields = {f.input: f for f in compare(stored, current)}
    assert list(fields) == sorted(fields)  # by name
    assert fields["profile.fmin"].stored is ABSENT
    assert fields["profile.fmin"].current is None
    assert fields["profile.fmin"].differs
    assert not fields["profile.hop_size"].differs  # numbers by value
    assert differing(stored, current) == ("profile.fmin",)
    assert (format_value(ABSENT), format_value(None)) == ("absent", "null")
    # staleness is another question: an added input whose value is unset stales nothing
    assert fpr.diff(stored, current) == ()
    assert differing(current, stored) == ("profile.fmin",)  # either side


def test_nothing_differs_without_both_fingerprints() -> None:
    current = {"calculator.version": 1}
    for stored, now in ((None, current), (current, None)):
        fields = compare(stored, now)
        assert [f.input for f in fields] == ["calculator.version"]
        assert not any(f.differs for f in fields)
    assert compare(None, current)[0].stored is ABSENT


def test_values_compare_as_fingerprints_do() -> None:
    assert not differing({"a": 2048}, {"a": 2048.0})
    assert not differing({"a": True}, {"a": 1})  # as Python (and the staleness diff) has it
    assert differing({"a": float("nan")}, {"a": float("nan")}) == ("a",)


def test_one_formatter() -> None:
    tempo = [{"time": 0.0, "bpm": 120.0}, {"time": 16.0, "bpm": 96.0}]
    assert format_value(tempo) == "0 s: 120 BPM; 16 s: 96 BPM"
    assert format_value("b2:abc") == "b2:abc"
    assert format_value(True) == "true"
    assert format_value({"b": 1, "a": "é"}) == '{"a": "é", "b": 1}'
    assert format_value("x" * 50, 10) == "x" * 9 + "…"
    assert len(format_value(list(range(100)), 30)) == 30
    assert profile_text("fine", {}) == "fine"
    assert profile_text("fine", {"fmin": 80.0}) == 'fine {"fmin": 80.0}'


def test_reasons_read_with_the_one_formatter() -> None:
    tempo = [{"time": 0.0, "bpm": 120.0}, {"time": 16.0, "bpm": 96.0}]
    assert str(fpr.Reason("tempo_map", tempo[:1], tempo)) == (
        "tempo_map: 0 s: 120 BPM → 0 s: 120 BPM; 16 s: 96 BPM"
    )
    assert str(fpr.Reason("profile.fmin", None, 80.0)) == "profile.fmin: null → 80.0"


def _drop_from_stored_fingerprint(project: Path, feature: str, field: str) -> None:
    """Commit the row's cached data again under its current fingerprint without ``field``:
    what a calculator that declared one input more (same version) would find in the store."""
    with Session.open(project, Registry.builtin()) as session:
        [row] = [
            r
            for r in session.diagnose().rows
            if (r.key.source, r.key.feature, r.key.profile) == ("drums", feature, "default")
        ]
        assert row.state == "ok" and row.current is not None and field in row.current
        entry = session.store.get(row.key.entry_key)
        assert entry is not None
        loaded = session.store.load(entry, feature, mmap=False)
        fp = {k: v for k, v in row.current.items() if k != field}
        writer = session.store.pass_writer(
            "drums", "default", row.key.params, {row.key.calculator: fp}, {row.key.calculator: 1}
        )
        writer.write(row.key.calculator, feature, np.array(loaded.data))
        writer.close(row.key.calculator, {feature: loaded.meta}, {feature: None})


def test_cli_explain_shows_an_absent_field_as_differing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIAGNOSTICS_APP_PLUGIN_PATH", raising=False)
    project = shared_source_project(tmp_path)
    assert main(["analyze", str(project), "--feature", "spectrogram"]) == 0
    _drop_from_stored_fingerprint(project, "spectrogram", "profile.fft_size")
    capsys.readouterr()
    flags = [str(project), "--source", "drums", "--feature", "spectrogram"]

    assert main(["explain", *flags, "--json"]) == 0  # still ok: fft_size is unset (null)
    doc = json.loads(capsys.readouterr().out)
    assert doc["row"]["state"] == "ok"
    differs = [f for f in doc["fields"] if f["differs"]]
    assert differs == [
        {"input": "profile.fft_size", "stored": None, "current": None, "differs": True}
    ]

    assert main(["explain", *flags]) == 0
    [marked] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("≠")]
    assert marked.split() == ["≠", "profile.fft_size", "absent", "null"]


# --- resolution: a job fails with its row's message ------------------------------------------


def test_a_job_fails_with_exactly_the_message_its_row_shows(tmp_path: Path) -> None:
    project = shared_source_project(tmp_path)
    with Session.open(project, Registry.builtin()) as session:
        jobs = session.plan(Selection(sources=("drums",), features=("rms",), profiles=("default",)))
        assert [j.calculator for j in jobs] == ["core.rms"]
        # planned, then the profile changes: fmax above Nyquist (a sample-rate check)
        session.edit("fmax", lambda p: edits.set_profile_param(p, "default", "fmax", 30000.0))
        session.enqueue(jobs)
        [result] = session.runner.run_all()
        [row] = [
            r
            for r in session.diagnose().rows
            if (r.key.source, r.key.feature, r.key.profile) == ("drums", "rms", "default")
        ]
        assert row.state == "invalid"
        assert result.status == "failed"
        assert result.message == row.message
        assert row.message == f"fmax: 30000 Hz is above the Nyquist frequency {SR / 2:g} Hz"


def test_resolve_names_what_cannot_be_served(tmp_path: Path) -> None:
    with Session.open(shared_source_project(tmp_path), Registry.builtin()) as session:
        reg, proj = session.registry, session.project
        ok = resolve(reg, proj, "rms", None, "fine", {})
        assert isinstance(ok, Resolved) and ok.calculator.id == "core.rms"
        assert ok.params["hop_size"] == 256
        assert resolve(reg, proj, "loudness", None, "default", {}) == Invalid(
            f"unknown feature 'loudness' (known: {', '.join(reg.features())})"
        )
        bad = resolve(reg, proj, "rms", None, "default", {"fft_size": 512})
        assert bad == Invalid("fft_size: 512 is smaller than window_size 2048")
        pitch = resolve(reg, proj, "pitch", None, "default", {"window_size": 32, "fmax": 400.0})
        assert isinstance(pitch, Resolved)
        pitch_problem = check_rate(pitch.calculator, pitch.params, SR)
        assert pitch_problem == Invalid("window_size: 32 samples is too short for fmax 400 Hz")
        # the same problem and the same message as the diagnosis shows on the row
        session.edit("short", lambda p: edits.set_profile_param(p, "default", "window_size", 32))
        [row] = [r for r in session.diagnose().rows if r.key.feature == "pitch"]
        assert (row.state, row.message) == ("invalid", pitch_problem.message)


# --- axes, peaks, stamps ---------------------------------------------------------------------


def test_channel_names_and_frame_times() -> None:
    assert channel_names(2) == ("ch1", "ch2")
    assert channel_names(1, mixed=True) == ("mix",)
    assert complete_names(("mix",), 1) == ("mix",)
    assert complete_names(("a",), 3) == ("a", "ch2", "ch3")
    assert complete_names(("a", "b", "c"), 2) == ("a", "b")
    np.testing.assert_allclose(frame_times(0.5, 0.25, 3), [0.5, 0.75, 1.0])
    explicit = np.array([0.0, 0.5, 1.5, 2.0])
    np.testing.assert_array_equal(frame_times(0.0, None, 4, explicit), explicit)
    assert frame_step(0.01, explicit) == 0.01
    assert frame_step(None, explicit) == 0.5  # the median spacing
    assert frame_step(None, explicit[:1]) == 1.0


def test_waveform_peaks_are_the_peaks_calculators(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "stereo.wav", 0.7, 330.0, channels=2, seed=3)
    got = audio_peaks(path)
    stored = analyse(path, [PeaksCalculator()], resolve_params())["core.peaks"]["peaks"]
    np.testing.assert_array_equal(got.data, stored.data)
    block = PARAMS["peaks_block"].default
    assert isinstance(block, int)
    assert got.meta.frame_step == pytest.approx(block / SR)
    assert got.data.shape == (-(-int(0.7 * SR) // block), 2, 2)
    assert got.meta.channel_names == channel_names(2)
    with pytest.raises(Cancelled):
        audio_peaks(path, cancelled=lambda: True)


def test_one_file_stamp(tmp_path: Path) -> None:
    audio = write_tone(tmp_path / "a.wav")
    assert FileStamp.peek(audio) == FileStamp.of(audio) == stamp_of(audio)
    fd = os.open(audio, os.O_RDONLY)
    try:
        assert FileStamp.peek(audio) == FileStamp.of(fd)  # an open file too
    finally:
        os.close(fd)
    assert FileStamp.peek(tmp_path / "missing") is None
    empty = tmp_path / "empty.json"
    empty.write_text("")
    assert FileStamp.peek(empty) is not None  # any file
    with pytest.raises(AudioError, match="empty file"):  # but no audio file
        stamp_of(empty)
    # an atomic replace keeping size and mtime is still a change (a new inode)
    before = FileStamp.peek(audio)
    assert before is not None
    copy = tmp_path / "copy.wav"
    copy.write_bytes(audio.read_bytes())
    os.utime(copy, ns=(before.mtime_ns, before.mtime_ns))
    os.replace(copy, audio)
    after = FileStamp.peek(audio)
    assert after is not None and after.size == before.size and after.mtime_ns == before.mtime_ns
    assert after != before


def test_planned_job_resolves_like_its_rows(tmp_path: Path) -> None:
    with Session.open(shared_source_project(tmp_path), Registry.builtin()) as session:
        [job] = session.plan(Selection(sources=("bass",), features=("pitch",)))
        assert job.entry_key == EntryKey("bass", "core.pitch", "default", job.params_key)
        resolved = job.resolve(session.project, session.registry)
        assert isinstance(resolved, Resolved)
        assert (resolved.params["fmin"], resolved.params["fmax"]) == (40.0, 400.0)
        unknown = Registry([c for c in session.registry if c.id != "core.pitch"])
        assert job.resolve(session.project, unknown) == Invalid("unknown calculator 'core.pitch'")
