"""The block digests of core.ranges come from the analysis's own decode (no second decode of
the file), and equal those of a decode made for them alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from diagnostics_app.core import audio
from diagnostics_app.core.audio import block_digests
from diagnostics_app.core.session import Session
from tests.core.project_factory import write_project


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG"])
def test_an_analysis_remembers_the_block_digests_of_its_own_decode(
    tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(7)
    name = f"a.{fmt.lower()}"
    signal = (0.3 * rng.standard_normal((3 * 44_100 + 123, 2))).astype(np.float32)
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / name, signal, 44_100, format=fmt)
    project = write_project(
        tmp_path,
        {
            "name": "P",
            "profiles": {"fine": {"hop_size": 256}},
            "sources": [{"id": "a", "path": f"audio/{name}"}],
            "tracks": [
                {
                    "id": "t",
                    "name": "T",
                    "source": "a",
                    "requests": [{"feature": "rms"}, {"feature": "rms", "profile": "fine"}],
                }
            ],
        },
    )
    expected = block_digests(tmp_path / "audio" / name)  # a decode made for them alone

    def no_second_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was decoded again for its block digests")

    monkeypatch.setattr(audio, "block_digests", no_second_decode)
    with Session.open(project) as session:
        session.enqueue(session.plan())
        results = session.runner.run_all()
        assert [r.status for r in results] == ["done", "done"]
        facts = session.source_status("a").facts
        assert facts is not None
        assert session.store.get_blocks(facts.digest) == expected
