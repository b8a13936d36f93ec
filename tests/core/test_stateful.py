"""Random interleavings of edits, analyses, cancellations, job completions, audio replacement
and prunes. After every step the incrementally derived states equal a from-scratch derivation,
and no row is ``ok`` unless its stored fingerprint equals the current one."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from diagnostics_app.core import edits
from diagnostics_app.core.calculators.registry import Registry
from diagnostics_app.core.diagnostics import diagnose
from diagnostics_app.core.planner import Selection
from diagnostics_app.core.session import Session
from tests.core.project_factory import write_project, write_tone

FEATURES = ("rms", "beat_rms", "centroid", "peaks")
REGISTRY = Registry.builtin()


class CacheMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="stateful-"))
        write_tone(self.folder / "a.wav", 0.3, 220.0, channels=2, seed=1)
        write_tone(self.folder / "b.wav", 0.2, 110.0, seed=2)
        path = write_project(
            self.folder,
            {
                "sources": [{"id": "a", "path": "a.wav"}, {"id": "b", "path": "b.wav"}],
                "profiles": {"fine": {"window_size": 512, "hop_size": 256}},
                "tracks": [
                    {
                        "id": "t1",
                        "source": "a",
                        "requests": [{"feature": "rms"}, {"feature": "beat_rms"}],
                    },
                    {
                        "id": "t2",
                        "source": "a",
                        "requests": [
                            {"feature": "rms"},
                            {"feature": "centroid", "profile": "fine"},
                        ],
                    },
                    {"id": "t3", "source": "b", "requests": [{"feature": "peaks"}]},
                ],
            },
        )
        self.session = Session.open(path, REGISTRY)
        self.tone = 0

    def teardown(self) -> None:
        self.session.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    @rule(bpm=st.sampled_from([90.0, 120.0, 150.0]))
    def edit_tempo(self, bpm: float) -> None:
        self.session.edit("tempo", lambda p: edits.set_tempo_map(p, [{"time": 0.0, "bpm": bpm}]))

    @rule(hop=st.sampled_from([128, 256]), profile=st.sampled_from(["default", "fine"]))
    def edit_hop(self, hop: int, profile: str) -> None:
        self.session.edit("hop", lambda p: edits.set_profile_param(p, profile, "hop_size", hop))

    @rule(track=st.sampled_from(["t1", "t2", "t3"]), feature=st.sampled_from(FEATURES))
    def toggle_request(self, track: str, feature: str) -> None:
        requests = self.session.project.track(track).requests
        idx = next((i for i, r in enumerate(requests) if r.feature == feature), None)
        if idx is None:
            self.session.edit("add", lambda p: edits.add_request(p, track, feature))
        else:
            self.session.edit("remove", lambda p: edits.remove_request(p, track, idx))

    @rule(feature=st.sampled_from((*FEATURES, None)))
    def enqueue(self, feature: str | None) -> None:
        selection = Selection(features=(feature,)) if feature else Selection()
        self.session.enqueue(self.session.plan(selection))

    @rule()
    def run_one(self) -> None:
        self.session.runner.run_next()

    @rule()
    def cancel_all(self) -> None:
        self.session.runner.cancel_all()

    @rule()
    def replace_audio(self) -> None:
        self.tone += 1
        write_tone(self.folder / "b.wav", 0.2, 110.0 + 10 * self.tone, seed=2 + self.tone)

    @rule()
    def prune(self) -> None:
        self.session.prune([r for r in self.session.diagnose().rows if r.state == "extraneous"])

    @rule()
    def undo(self) -> None:
        self.session.undo()

    @invariant()
    def derived_equals_from_scratch(self) -> None:
        incremental = self.session.diagnose()
        statuses = {s.id: self.session.source_status(s.id) for s in self.session.project.sources}
        fresh = diagnose(
            self.session.project,
            REGISTRY,
            statuses,
            self.session.store.entries(),
            self.session.store.jobs(),
            # the block digests the incremental one found (it stored the current audio's):
            # without them a changed source's reason has no ranges, and the two differ
            self.session.store.get_blocks,
        )
        assert incremental == fresh
        for row in incremental.rows:
            if row.state == "ok":
                assert row.stored is not None and row.stored == row.current


CacheMachine.TestCase.settings = settings(
    max_examples=12,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCacheMachine = CacheMachine.TestCase
