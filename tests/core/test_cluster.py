"""Passes on a Dask cluster (core/cluster.py, core/store/staged.py): a real LocalCluster of two
worker processes analyses to the same bytes as local analysis; a worker killed mid-pass never
leaves an ``ok`` row without data; cancel requests, Ctrl+C and a digest mismatch end a pass
with nothing committed and nothing left staged; without the option nothing of Dask is loaded.

One cluster serves the whole module (it takes seconds to start); its tests run one after the
other in one xdist worker (the ``cluster`` group). The worker-side hooks are functions of this
module: the cluster's worker processes import them by name.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from diagnostics_app.core import cluster as cluster_mod
from diagnostics_app.core import fingerprint as fpr
from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.cluster import (
    Cluster,
    ClusterPasses,
    ClusterTask,
    TaskOutcome,
    analyse_on_worker,
    open_cluster,
)
from diagnostics_app.core.events import JobUpdated
from diagnostics_app.core.session import Session
from diagnostics_app.core.store import TMP_DIR
from diagnostics_app.core.store.staged import StagingSink
from tests.core.project_factory import shared_source_project, write_project, write_tone

pytestmark = [pytest.mark.xdist_group("cluster")]

HOLD_S = 60.0  # the longest a held pass waits for its cancel (a failed test, not a hang)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with open_cluster(workers=2) as c:
        yield c


# --- worker-side hooks (run in the cluster's worker processes) --------------------------------


def kill_after_first_entry(marker: str, task: ClusterTask) -> TaskOutcome:
    """The pass's worker process dies right after staging its first entry, the first time only
    (``marker`` is created first): the scheduler runs the pass again elsewhere."""

    class Dying(StagingSink):
        def close(
            self,
            calculator_id: str,
            metas: Any,
            times: Any,
        ) -> None:
            super().close(calculator_id, metas, times)
            if not os.path.exists(marker):
                Path(marker).touch()
                os._exit(3)

    cluster_mod.StagingSink = Dying  # type: ignore[misc]  # only in this worker process
    try:
        return analyse_on_worker(task)
    finally:
        cluster_mod.StagingSink = StagingSink  # type: ignore[misc]


HELD = "held"  # the progress label of a held pass: the tests cancel it only then


def hold_until_cancelled(task: ClusterTask) -> TaskOutcome:
    """Stage the pass's first entry, report ``HELD``, then hold until the client sets the
    pass's cancel event: the cancel lands mid-pass (files staged) however fast the machine."""
    from distributed import Event, get_worker

    event = Event(task.cancel_event)

    class Holding(StagingSink):
        def close(self, calculator_id: str, metas: Any, times: Any) -> None:
            super().close(calculator_id, metas, times)
            if not event.is_set():
                get_worker().log_event(task.topic, [task.work.job_id, 0.5, HELD])
                assert event.wait(HOLD_S), "the pass was never cancelled"

    cluster_mod.StagingSink = Holding  # type: ignore[misc]
    try:
        return analyse_on_worker(task)
    finally:
        cluster_mod.StagingSink = StagingSink  # type: ignore[misc]


# --- helpers ---------------------------------------------------------------------------------


def _data(session: Session) -> dict[tuple[str, str, str], str]:
    """Per (entry key, feature, file kind): the committed file's bytes (names differ)."""
    out = {}
    for entry in session.store.entries():
        for name, feature in entry.features.items():
            assert feature.problem is None, (entry.key, name, feature.problem)
            for kind, rel in (("data", feature.path), ("times", feature.times_path)):
                if rel is not None:
                    digest = hashlib.sha256(session.store.path_of(rel).read_bytes()).hexdigest()
                    out[(str(entry.key), name, kind)] = digest
    return out


def _staged_left(session: Session) -> list[str]:
    return sorted(p.name for p in (Path(session.store.root) / TMP_DIR).iterdir())


def _run(session: Session, cluster: Cluster, **kwargs: Any) -> list[Any]:
    passes = ClusterPasses(session.store, cluster.client, **kwargs)
    try:
        return session.runner.run_all(workers=cluster.in_flight(), run=passes)
    finally:
        passes.close()


def _one_source(folder: Path) -> Path:
    write_tone(folder / "audio" / "a.wav", 2.0, 220.0, channels=2, seed=3)
    return write_project(
        folder,
        {
            "name": "P",
            "sources": [{"id": "a", "path": "audio/a.wav"}],
            "tracks": [
                {
                    "id": "t",
                    "name": "T",
                    "source": "a",
                    "requests": [{"feature": "rms"}, {"feature": "spectrogram"}],
                }
            ],
        },
    )


# --- tests -----------------------------------------------------------------------------------


def test_a_project_analysed_on_the_cluster_is_byte_equal_to_local_analysis(
    tmp_path: Path, cluster: Cluster
) -> None:
    with Session.open(shared_source_project(tmp_path / "local")) as local:
        local.enqueue(local.plan())
        assert {r.status for r in local.runner.run_all()} == {"done"}
        expected = _data(local)
    with Session.open(shared_source_project(tmp_path / "cluster")) as remote:
        batches = remote.enqueue(remote.plan())
        results = _run(remote, cluster)
        assert [r.status for r in results] == ["done"] * len(batches), results
        assert _data(remote) == expected
        # float32 and u16db features, with and without explicit times, all compared
        kinds = {k[2] for k in expected}
        assert kinds == {"data", "times"}
        assert {row.state for row in remote.diagnose().rows} == {"ok"}
        assert _staged_left(remote) == []
        # the records are this process's, as for a local pass: others see who runs them
        assert {remote.store.job(b.job_id).origin for b in batches} == {"cli"}  # type: ignore[union-attr]


def test_a_worker_killed_mid_pass_commits_nothing_until_its_pass_ran_again(
    tmp_path: Path, cluster: Cluster
) -> None:
    marker = tmp_path / "killed-once"
    with Session.open(_one_source(tmp_path)) as session:
        session.enqueue(session.plan())
        committed_at_kill: list[int] = []

        def on_update(event: JobUpdated) -> None:
            # every state change while the pass runs: never an entry before the whole pass
            if marker.exists() and event.state == "running":
                committed_at_kill.append(len(session.store.entries(verify=False)))

        session.events.job_updated.connect(on_update)
        [result] = _run(session, cluster, target=partial(kill_after_first_entry, str(marker)))
        assert marker.exists()  # the worker did die once
        assert result.status == "done", result.message
        assert set(committed_at_kill) <= {0}
        entries = session.store.entries()
        assert {e.key.calculator_id for e in entries} == {"core.rms", "core.spectrogram"}
        for entry in entries:  # every ok row has its data
            for name in entry.features:
                assert session.store.load(entry, name).data.shape[0] > 0
        assert _staged_left(session) == []


def test_a_pass_whose_worker_dies_beyond_the_allowed_failures_fails_with_nothing_committed(
    tmp_path: Path, cluster: Cluster
) -> None:
    scheduler = cluster.local.scheduler
    allowed = scheduler.allowed_failures
    scheduler.allowed_failures = 0  # the first death is final
    try:
        with Session.open(_one_source(tmp_path)) as session:
            session.enqueue(session.plan())
            target = partial(kill_after_first_entry, str(tmp_path / "killed-once"))
            [result] = _run(session, cluster, target=target)
            assert result.status == "failed"
            assert "KilledWorker" in (result.message or "")
            assert "\n" not in (result.message or "")
            assert session.store.entries() == []
            assert {row.state for row in session.diagnose().rows} <= {"missing", "failed"}
            assert _staged_left(session) == []
    finally:
        scheduler.allowed_failures = allowed


def test_a_cancel_request_from_another_process_stops_the_pass_on_its_worker(
    tmp_path: Path, cluster: Cluster
) -> None:
    project = _one_source(tmp_path)
    with Session.open(project) as session:
        [batch] = session.enqueue(session.plan())
        other = Session.open(project)  # the GUI, say: it asks through the store
        try:
            asked = threading.Event()

            def cancel_once_running(event: JobUpdated) -> None:
                if event.label == HELD and not asked.is_set():
                    asked.set()
                    seen = other.store.job(batch.job_id)  # the other process sees it run
                    assert seen is not None and seen.state == "running"
                    assert other.store.request_cancel(batch.job_id)

            session.events.job_updated.connect(cancel_once_running)
            [result] = _run(session, cluster, target=hold_until_cancelled)
        finally:
            other.close()
        assert result.status == "cancelled"
        assert asked.is_set()  # it was held, with a file staged, when the cancel came
        assert session.store.entries() == []  # its first entry was staged, never committed
        assert _staged_left(session) == []
        assert not session.store.cancel_requested(batch.job_id)


def test_ctrl_c_cancels_the_passes_on_the_cluster(tmp_path: Path, cluster: Cluster) -> None:
    with Session.open(shared_source_project(tmp_path)) as session:
        batches = session.enqueue(session.plan())
        main = threading.main_thread().ident
        assert main is not None
        once = threading.Lock()

        def interrupt_once_running(event: JobUpdated) -> None:
            if event.label == HELD and once.acquire(blocking=False):
                signal.pthread_kill(main, signal.SIGINT)  # Ctrl+C in the waiting main thread

        session.events.job_updated.connect(interrupt_once_running)
        with pytest.raises(KeyboardInterrupt):
            _run(session, cluster, target=hold_until_cancelled)
        assert once.locked()  # interrupted while a pass was held with files staged
        states = {session.store.job(b.job_id).state for b in batches}  # type: ignore[union-attr]
        assert "cancelled" in states
        assert not {"queued", "running"} & states
        assert session.store.entries() == []
        assert _staged_left(session) == []


def test_audio_that_differs_from_the_planned_file_is_refused_on_the_worker(
    tmp_path: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session.open(_one_source(tmp_path)) as session:
        real = session.runner._facts

        def other_digest(source: str) -> fpr.AudioFacts:  # planned for another file
            facts = real(source)
            return fpr.AudioFacts("b2:" + "0" * 32, facts.sample_rate, facts.channels)

        monkeypatch.setattr(session.runner, "_facts", other_digest)
        session.enqueue(session.plan())
        [result] = _run(session, cluster)
        assert result.status == "failed"
        message = result.message or ""
        assert "differs from the file the pass was planned for" in message
        assert "a.wav" in message and "\n" not in message
        assert session.store.entries() == []
        assert _staged_left(session) == []


def test_a_staged_file_that_does_not_match_its_manifest_is_not_committed(tmp_path: Path) -> None:
    """The client checks the files before committing: a truncated one (a worker's write lost
    on the way) fails the commit and nothing of the pass is committed."""
    from diagnostics_app.core.errors import StoreError

    with Session.open(_one_source(tmp_path)) as session:
        store = session.store
        area = store.staging_area()
        sink = StagingSink(area, "ab" * 16)
        meta = OutputMeta(feature="x", channels=1, width=1, frame_step=0.01)
        sink.write("c", "x", np.ones((10, 1, 1), np.float32))
        sink.close("c", {"x": meta}, {"x": None})
        manifest = sink.manifest()
        path = Path(area.folder) / manifest.entries["c"][0].data.name
        with path.open("r+b") as f:
            f.truncate(path.stat().st_size - 4)
        with pytest.raises(StoreError, match="does not match its manifest"):
            store.commit_staged(area, manifest, "a", "default", None, {"c": {}}, {"c": 1})
        assert store.entries() == []
        assert store.discard_staged(area, manifest.stage_id, {"c": ["x"]}) == 1
        assert _staged_left(session) == []


def test_a_staged_entry_records_the_environment_of_the_worker_that_computed_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Provenance says what computed the data (core.store.provenance): for a pass staged on
    a worker with another numpy, that is the worker's record, not the committing client's."""
    from diagnostics_app.core.store import current_provenance
    from diagnostics_app.core.store import staged as staged_mod

    client = current_provenance()
    worker = {**client, "numpy": "0.0.worker"}
    with Session.open(_one_source(tmp_path)) as session:
        store = session.store
        area = store.staging_area()
        monkeypatch.setattr(staged_mod, "current_provenance", lambda: dict(worker))
        sink = StagingSink(area, "ef" * 16)  # as on the worker
        meta = OutputMeta(feature="x", channels=1, width=1, frame_step=0.01)
        sink.write("c", "x", np.ones((10, 1, 1), np.float32))
        sink.close("c", {"x": meta}, {"x": None})
        manifest = sink.manifest()
        monkeypatch.undo()  # back on the client
        (entry,) = store.commit_staged(area, manifest, "a", "default", None, {"c": {}}, {"c": 1})
        assert entry.provenance == worker
        assert store.entries()[0].provenance["numpy"] == "0.0.worker"


def test_what_a_dead_client_left_staged_is_swept_by_the_stores_recovery(tmp_path: Path) -> None:
    """Staged files carry the client's owner tag: once that process is gone (pid 0 never
    runs), the sweep at the next open deletes them, finished files and parts alike."""
    from diagnostics_app.core.store.staged import StagingArea

    with Session.open(_one_source(tmp_path)) as session:
        area = StagingArea(str(Path(session.store.root) / TMP_DIR), "0-00000000")
        sink = StagingSink(area, "cd" * 16)
        meta = OutputMeta(feature="x", channels=1, width=1, frame_step=0.01)
        sink.write("c", "x", np.ones((10, 1, 1), np.float32))
        sink.close("c", {"x": meta}, {"x": None})
        sink.write("c", "y", np.ones((10, 1, 1), np.float32))  # a part, never finished
        assert len(_staged_left(session)) == 2
        assert session.store.sweep() == 2
        assert _staged_left(session) == []
        sink.abort()


def test_scheduler_passes_connect_at_the_first_pass_and_say_why_they_cannot(
    tmp_path: Path, cluster: Cluster
) -> None:
    """The desktop app's way (Settings: a scheduler address): connected on the pass's thread
    when the first pass comes; an unreachable scheduler fails that pass with the reason."""
    from diagnostics_app.core.cluster import SchedulerPasses

    with Session.open(_one_source(tmp_path / "a")) as session:
        session.enqueue(session.plan())
        passes = SchedulerPasses(session.store, "tcp://127.0.0.1:1", timeout=0.5)
        try:
            [result] = session.runner.run_all(run=passes)
        finally:
            passes.close()
        assert result.status == "failed"
        assert (result.message or "").startswith("cannot reach the Dask scheduler at tcp://")
    with Session.open(_one_source(tmp_path / "b")) as session:
        session.enqueue(session.plan())
        passes = SchedulerPasses(session.store, cluster.local.scheduler_address)
        try:
            [result] = session.runner.run_all(workers=2, run=passes)
        finally:
            passes.close()
        assert result.status == "done", result.message
        assert {row.state for row in session.diagnose().rows} == {"ok"}


def test_analyze_without_the_option_imports_nothing_of_dask(tmp_path: Path) -> None:
    project = _one_source(tmp_path)
    code = (
        "import sys; from diagnostics_app.cli import main; rc = main(['analyze', sys.argv[1]]);"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'));"
        "print(rc, loaded)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(project)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout + out.stderr


def test_analyze_with_workers_runs_on_a_local_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from diagnostics_app.cli import main

    project = _one_source(tmp_path)
    assert main(["analyze", str(project), "--workers", "1", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert {j["status"] for j in listing["jobs"]} == {"done"}
    assert {k: v for k, v in listing["summary"].items() if v} == {"ok": 2}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "0"], "--workers 0: must be at least 1"),
        (["--workers", "2", "--scheduler", "tcp://h:8786"], "exclude each other"),
        (["--scheduler", "nonsense"], "'nonsense': not a scheduler address"),
        (["--scheduler", "tcp://h:8786; rm"], "not a scheduler address (expected tcp://HOST:PORT)"),
    ],
)
def test_bad_cluster_flags_are_one_line_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    from diagnostics_app.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", str(_one_source(tmp_path)), *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
