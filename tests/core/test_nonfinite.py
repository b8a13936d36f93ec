"""Non-finite output never reaches the cache under ``ok`` (issue 9): a float WAV with one
sample of 1e30 overflows the spectral features; those passes fail naming the feature and the
frames, nothing non-finite is stored, no NumPy warning escapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from diagnostics_app.core.calculators.base import FeatureSpec
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.engine import MemorySink, NonFiniteOutput, PassPlan, run_pass
from diagnostics_app.core.params import resolve_params
from diagnostics_app.core.session import Session
from diagnostics_app.core.tempo import TempoMap
from tests.core.project_factory import SR, write_project


def _spiky_wav(path: Path) -> Path:
    t = np.arange(SR * 2) / SR
    y = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    y[SR] = 1e30  # one absurd sample at 1.0 s (a float WAV can hold it)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, SR, subtype="FLOAT")
    return path


def test_overflowing_audio_fails_the_passes_it_breaks_and_stores_nothing_non_finite(
    tmp_path: Path,
) -> None:
    _spiky_wav(tmp_path / "audio" / "spike.wav")
    features = ["peaks", "rms", "spectrogram", "mel", "chroma", "centroid", "onset", "pitch"]
    project = write_project(
        tmp_path,
        {
            "name": "Spike",
            "sources": [{"id": "spike", "path": "audio/spike.wav"}],
            "tracks": [
                {
                    "id": "t",
                    "name": "T",
                    "source": "spike",
                    "requests": [{"feature": f} for f in features],
                }
            ],
        },
    )
    with Session.open(project, Registry.builtin()) as session:
        session.enqueue(session.plan())
        results = session.runner.run_all()
        failures = [r.message or "" for r in results if r.status == "failed"]
        assert failures, "the overflow went unnoticed"
        for message in failures:
            assert "non-finite values" in message and "spike.wav" in message, message
            assert "frame" in message
        assert not any("internal error" in m for m in failures)
        rows = {r.key.feature: r for r in session.diagnose().rows}
        assert {rows[f].state for f in features} <= {"ok", "failed"}
        assert rows["mel"].state == "failed"
        for row in rows.values():
            if row.state == "ok":
                data = session.store.load(row.key.entry_key, row.key.feature).data
                assert np.isfinite(data).all(), row.key.feature


def test_the_guard_names_the_frames_and_respects_a_declared_meaning(tmp_path: Path) -> None:
    path = _spiky_wav(tmp_path / "spike.wav")
    calc = next(c for c in Registry.builtin() if any(f.name == "mel" for f in c.features))
    plan = PassPlan(str(path), resolve_params(), TempoMap(), (calc,))
    with pytest.raises(NonFiniteOutput, match=r"'mel' at frames? \d+"):
        run_pass(plan, MemorySink())

    # the same calculator declaring what non-finite values mean: the pass succeeds
    class Declared(type(calc)):  # type: ignore[misc]
        features = tuple(
            FeatureSpec(**{**f.__dict__, "nonfinite": "inf: overflow"}) for f in calc.features
        )

    sink = MemorySink()
    run_pass(PassPlan(str(path), resolve_params(), TempoMap(), (Declared(),)), sink)
    data = next(iter(sink.results.values()))["mel"].data
    assert not np.isfinite(data).all()
