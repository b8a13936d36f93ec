"""The shortcuts that make diagnostics fast at 100,000 rows (``bench/diagnostics.py``) give
exactly what the plain code gives (the fingerprint text, the loaded project), and
re-derivation after an edit touches only the rows that depend on it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from diagnostics_app.core import diagnostics as dg
from diagnostics_app.core import edits
from diagnostics_app.core import fingerprint as fpr
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.calculators.temporal import RmsCalculator
from diagnostics_app.core.canonical import canonical_json
from diagnostics_app.core.errors import ParamError
from diagnostics_app.core.fingerprint import AudioFacts, Reason
from diagnostics_app.core.params import Params, resolve_params
from diagnostics_app.core.project import project_from_json
from diagnostics_app.core.session import Session
from diagnostics_app.core.tempo import TempoMap
from tests.core.project_factory import shared_source_project


def analyse_all(session: Session) -> None:
    session.enqueue(session.plan())
    results = session.runner.run_all()
    assert all(r.status == "done" for r in results), [r.message for r in results]


def from_scratch(session: Session) -> dg.Diagnosis:
    statuses = {s.id: session.source_status(s.id) for s in session.project.sources}
    return dg.diagnose(
        session.project,
        session.registry,
        statuses,
        session.store.entries(),
        session.store.jobs(),
    )


@pytest.mark.parametrize(
    "overrides",
    [{}, {"window_size": 1024, "hop_size": 256, "fmin": 40.0, "window": "hamming"}],
)
def test_fingerprint_text_from_parts_equals_the_stored_spelling(overrides: dict) -> None:
    params = resolve_params({}, overrides)
    tempo = TempoMap.from_json([{"time": 0.0, "bpm": 97.5}, {"time": 8.0, "bpm": 140.0}])
    audio = AudioFacts("b2:" + "ab" * 16, 48000, 2)
    for calc in Registry.builtin():
        fp = fpr.build(calc, params, audio, tempo)
        assert fp == {**fpr.audio_part(audio), **fpr.calculator_part(calc, params, tempo)}
        assert list(fp)[:3] == [fpr.AUDIO_CONTENT, fpr.AUDIO_RATE, fpr.AUDIO_CHANNELS]
        text = fpr.joined_text(
            fpr.canonical_text(fpr.audio_part(audio)),
            fpr.canonical_text(fpr.calculator_part(calc, params, tempo)),
        )
        assert text == canonical_json(fp) == fpr.canonical_text(fp)  # what the writer stores


def test_diff_shortcut_keeps_the_numeric_rules() -> None:
    assert fpr.diff({"a": 2048, "b": True}, {"a": 2048.0, "b": 1}) == ()
    assert fpr.diff({"a": 1, "x": None}, {"a": 1}) == ()
    assert fpr.diff({"a": 1}, {"a": 2}) == (Reason("a", 1, 2),)


# --- re-derivation touches only what an edit affects -----------------------------------------


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    s = Session.open(shared_source_project(tmp_path), Registry.builtin())
    yield s
    s.close()


def test_nothing_changed_nothing_evaluated(session: Session) -> None:
    analyse_all(session)
    session.edit("rm", lambda p: edits.remove_track(p, "bass"))  # bass: all extraneous
    first = session.diagnose()
    assert any(r.state == "extraneous" for r in first.rows)
    again = session.diagnose()
    assert session.diagnoser.last_evaluated == 0
    assert again == first


def test_a_parameter_edit_evaluates_only_the_rows_that_read_it(session: Session) -> None:
    analyse_all(session)
    session.diagnose()
    # the "fine" profile serves only centroid, which does not read n_mels
    session.edit("n_mels", lambda p: edits.set_profile_param(p, "fine", "n_mels", 64))
    d = session.diagnose()
    assert session.diagnoser.last_evaluated == 0
    assert d == from_scratch(session)
    assert d.healthy
    # centroid reads hop_size: its row (and only it) is evaluated, and stale
    session.edit("hop", lambda p: edits.set_profile_param(p, "fine", "hop_size", 128))
    d = session.diagnose()
    assert session.diagnoser.last_evaluated == 1
    assert [r.key.feature for r in d.rows if r.state != "ok"] == ["centroid"]
    assert d == from_scratch(session)


class PickyRms(RmsCalculator):
    """Refuses a parameter it does not declare (so it is not in its fingerprint)."""

    id = "test.picky_rms"

    def check(self, params: Params, sample_rate: int) -> None:
        if params.get_int("n_chroma") > 24:
            raise ParamError("n_chroma: too many for this test")


def test_parameters_read_by_check_are_tracked_too(tmp_path: Path) -> None:
    path = shared_source_project(tmp_path)
    data = json.loads(path.read_text())
    data["tracks"][2]["requests"].append({"feature": "rms", "calculator": "test.picky_rms"})
    path.write_text(json.dumps(data))
    registry = Registry([*Registry.builtin(), PickyRms()])
    with Session.open(path, registry) as session:
        analyse_all(session)
        assert session.diagnose().healthy
        session.edit("chroma", lambda p: edits.set_profile_param(p, "default", "n_chroma", 36))
        d = session.diagnose()
        assert session.diagnoser.last_evaluated == 1  # n_chroma: only the picky row reads it
        [bad] = [r for r in d.rows if r.state != "ok"]
        assert (bad.key.calculator, bad.state) == ("test.picky_rms", "invalid")
        assert d == dg.diagnose(
            session.project,
            registry,
            {s.id: session.source_status(s.id) for s in session.project.sources},
            session.store.entries(),
            session.store.jobs(),
        )


# --- the loader shares equal requests ----------------------------------------------------------


def _doc(requests_a: list, requests_b: list) -> dict:
    return {
        "profiles": {"fine": {"hop_size": 256}},
        "sources": [{"id": "s", "path": "s.wav"}],
        "tracks": [
            {"id": "a", "source": "s", "requests": requests_a},
            {"id": "b", "source": "s", "requests": requests_b},
        ],
    }


def test_equal_requests_are_one_value_and_types_still_count() -> None:
    req = {"feature": "rms", "profile": "fine", "params": {"window_size": 1024}, "_note": [1]}
    p = project_from_json(_doc([req, {"feature": "pitch"}], [dict(req)]))
    a, b = p.track("a").requests, p.track("b").requests
    assert a[0] is b[0]
    assert dict(a[0].extra) == {"_note": [1]}
    # 1024 and 1024.0 are equal numbers but different requests (key order in extra too)
    p = project_from_json(
        _doc(
            [{"feature": "rms", "params": {"window_size": 1024}, "_x": 1, "_y": 2}],
            [{"feature": "rms", "params": {"window_size": 1024.0}, "_y": 2, "_x": 1}],
        )
    )
    ra, rb = p.track("a").requests[0], p.track("b").requests[0]
    assert ra is not rb
    assert list(rb.extra) == ["_y", "_x"]
    # a bad value after an equal good one is still an invalid request, with its own path
    p = project_from_json(
        _doc(
            [{"feature": "rms", "params": {"window_size": 1024}}],
            [{"feature": "rms", "params": {"window_size": True}}],
        )
    )
    assert p.track("a").requests[0].problem is None
    assert str(p.track("b").requests[0].problem).startswith(
        "tracks[1].requests[0].params.window_size"
    )
    # a profile unknown to this project makes the request invalid even if it was seen before
    p = project_from_json(
        {
            "sources": [{"id": "s", "path": "s.wav"}],
            "tracks": [{"id": "a", "source": "s", "requests": [req]}],
        }
    )
    assert "unknown profile" in str(p.track("a").requests[0].problem)
