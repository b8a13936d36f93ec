"""Jobs across processes, PID namespaces and hosts (issue 9, "work lost or stuck").

Real processes throughout: a child that queued work and stays alive (blocked on a pipe, no
sleeps), a writer in a real second PID namespace (``unshare``), ``kill -9``; other hosts are
simulated by records with a foreign place and a heartbeat set on an injected clock.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from diagnostics_app.core.store import (
    DATA_DIR,
    INDEX_NAME,
    LEASE_SECONDS,
    SCHEMA_VERSION,
    TMP_DIR,
    FeatureStore,
    JobRecord,
    this_place,
)
from diagnostics_app.core.store.lease import HEARTBEAT_EVERY, Heartbeat
from tests.core.project_factory import write_project, write_tone

ROOT = Path(__file__).resolve().parents[2]
HOST = socket.gethostname()
ELSEWHERE = "otherhost|0000beef|4026000001"  # a place that is not this one (host, boot, ns)


def env() -> dict[str, str]:
    out = {**os.environ, "PYTHONPATH": str(ROOT)}
    out.pop("DIAGNOSTICS_APP_PLUGIN_PATH", None)
    return out


def many_passes_project(folder: Path, sources: int) -> Path:
    """``sources`` short sources, each asking for rms in two profiles: 2 passes per source."""
    srcs, tracks = [], []
    for i in range(sources):
        write_tone(folder / "audio" / f"s{i}.wav", 0.25, 110.0 + i, seed=i)
        srcs.append({"id": f"s{i}", "path": f"audio/s{i}.wav"})
        tracks.append(
            {
                "id": f"t{i}",
                "name": f"T{i}",
                "source": f"s{i}",
                "requests": [{"feature": "rms"}, {"feature": "rms", "profile": "fine"}],
            }
        )
    return write_project(
        folder,
        {
            "name": "Many",
            "tempo_map": [{"time": 0.0, "bpm": 120.0}],
            "profiles": {"fine": {"window_size": 1024, "hop_size": 256}},
            "sources": srcs,
            "tracks": tracks,
        },
    )


def analyze(project: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "diagnostics_app", "analyze", str(project), *extra],
        capture_output=True,
        text=True,
        env=env(),
        timeout=300,
        check=False,
    )


def check_rows(project: Path) -> dict[tuple[str, str, str], str]:
    out = subprocess.run(
        [sys.executable, "-m", "diagnostics_app", "check", str(project), "--json"],
        capture_output=True,
        text=True,
        env=env(),
        timeout=300,
        check=False,
    )
    assert "Traceback" not in out.stderr, out.stderr
    return {
        (r["source"], r["feature"], r["profile"]): r["state"]
        for r in json.loads(out.stdout)["rows"]
    }


def assert_all_loadable(project: Path, expected: int) -> None:
    with FeatureStore.open(project.parent / ".featurecache") as store:
        entries = store.entries()
        assert len(entries) == expected
        for e in entries:
            assert e.problems == ()
            for feature in e.features:
                assert store.load(e, feature).data.size > 0


@pytest.fixture
def child_procs() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:  # only the children this test started, by their own handles
        if p.poll() is None:
            p.kill()
        p.wait(timeout=60)
        for pipe in (p.stdin, p.stdout):
            if pipe is not None:
                pipe.close()


# --- a live owner in this namespace; then kill -9 ---------------------------------------------


def test_second_analyze_leaves_live_work_alone_and_takes_over_once_its_owner_is_killed(
    tmp_path: Path, child_procs: list[subprocess.Popen[str]]
) -> None:
    project = many_passes_project(tmp_path, 2)  # 4 rows, 4 passes
    child = subprocess.Popen(
        [sys.executable, __file__, "queue-and-wait", str(project)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env(),
    )
    child_procs.append(child)
    assert child.stdout is not None
    queued = json.loads(child.stdout.readline())  # the child queued its passes and now waits
    assert queued == {"pid": child.pid, "passes": 4}

    second = analyze(project, "--json")
    assert second.returncode == 0, second.stderr
    out = json.loads(second.stdout)
    assert out["jobs"] == []
    assert out["summary"]["queued"] == 4
    assert sorted((e["source"], e["profile"]) for e in out["elsewhere"]) == [
        ("s0", "default"),
        ("s0", "fine"),
        ("s1", "default"),
        ("s1", "fine"),
    ]
    assert {(e["state"], e["owner_pid"], e["owner_host"]) for e in out["elsewhere"]} == {
        ("queued", child.pid, HOST)
    }
    text = analyze(project)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines() == [
        f"4 rows are queued or running in process {child.pid} on host {HOST}; not duplicated"
    ]
    with FeatureStore.open(project.parent / ".featurecache") as store:
        active = store.jobs(active_only=True)
    assert len(active) == 4  # nothing duplicated
    assert {j.owner_pid for j in active} == {child.pid}

    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    third = analyze(project, "--json")
    assert third.returncode == 0, third.stderr
    out = json.loads(third.stdout)
    assert out["elsewhere"] == []
    assert sorted(j["status"] for j in out["jobs"]) == ["done"] * 4
    assert set(check_rows(project).values()) == {"ok"}
    assert_all_loadable(project, 4)


# --- a writer in a real second PID namespace --------------------------------------------------


def _unshare_reason() -> str | None:
    """Why a second PID namespace cannot be had here, or None if it can."""
    if not sys.platform.startswith("linux"):
        return f"PID namespaces are Linux-only (this is {sys.platform})"
    exe = shutil.which("unshare")
    if exe is None:
        return "the unshare command (util-linux) is not installed"
    probe = subprocess.run(
        [exe, "--pid", "--fork", "--mount-proc", "true"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        return f"unshare --pid --fork --mount-proc is not permitted: {probe.stderr.strip()}"
    return None


def test_a_writer_in_another_pid_namespace_is_seen_running_and_loses_nothing(
    tmp_path: Path, child_procs: list[subprocess.Popen[str]]
) -> None:
    reason = _unshare_reason()
    if reason is not None:
        pytest.skip(reason)
    project = many_passes_project(tmp_path, 20)  # 40 passes
    child = subprocess.Popen(
        [
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            sys.executable,
            __file__,
            "run-blocking",
            str(project),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env(),
    )
    child_procs.append(child)
    assert child.stdin is not None and child.stdout is not None
    started = json.loads(child.stdout.readline())  # blocked at its first progress report
    assert started["pid"] != child.pid  # it runs in its own namespace (pid 1 there)
    assert started["place"] != this_place()

    while_blocked = check_rows(project)  # a host process: opens, sweeps, reaps, diagnoses
    assert len(while_blocked) == 40
    assert sorted(while_blocked.values()) == ["queued"] * 39 + ["running"]
    with FeatureStore.open(project.parent / ".featurecache") as store:
        assert store.reap_dead_jobs() == []
        active = store.jobs(active_only=True)
        assert len(active) == 40
        assert {(j.owner_pid, j.owner_place) for j in active} == {
            (started["pid"], started["place"])
        }

    child.stdin.write("go\n")
    child.stdin.close()
    summary = json.loads(child.stdout.readline())
    assert child.wait(timeout=300) == 0
    assert summary == {"done": 40, "failed": 0, "other": 0}
    after = check_rows(project)
    assert set(after.values()) == {"ok"} and len(after) == 40
    assert_all_loadable(project, 40)


# --- leases: owners on another host, with an injected clock -----------------------------------


def _foreign_job(store: FeatureStore, job_id: str, heartbeat: float | None) -> None:
    record = JobRecord.new("s", ["core.rms"], features=["rms"], job_id=job_id, state="running")
    start = f"0000beef:{job_id}"  # one owner (process) per job
    record = JobRecord(
        **{**record.__dict__, "owner_pid": 4242, "owner_start": start, "owner_place": ELSEWHERE}
    )
    store.add_job(record)
    if heartbeat is not None:
        with sqlite3.connect(store.index_path) as db:
            db.execute(
                "INSERT OR REPLACE INTO owners VALUES (?, ?, ?, ?)",
                (ELSEWHERE, 4242, record.owner_start, heartbeat),
            )


def test_a_job_on_another_host_lives_by_its_lease(tmp_path: Path) -> None:
    now = 1_000_000.0
    with FeatureStore.open(tmp_path / "c") as store:
        _foreign_job(store, "fresh", now - LEASE_SECONDS + 1)
        assert store.reap_dead_jobs(now=now) == []  # its pid 4242 means nothing here
        assert store.job("fresh").state == "running"  # type: ignore[union-attr]
        assert store.reap_dead_jobs(now=now + 2) == ["fresh"]  # the lease ran out
        assert store.job("fresh").message == (  # type: ignore[union-attr]
            f"owner process 4242 on otherhost stopped (no heartbeat for {LEASE_SECONDS + 1:.0f} s)"
        )
        _foreign_job(store, "never", None)  # no owner row at all: no lease
        assert store.reap_dead_jobs(now=now) == ["never"]
        assert "no heartbeat for ever" in store.job("never").message  # type: ignore[operator,union-attr]


def test_files_of_a_writer_elsewhere_live_by_its_lease(tmp_path: Path) -> None:
    cache = tmp_path / "c"
    now = 1_000_000.0
    start = "0000beef:12345"
    from diagnostics_app.core.store.owners import tag_of

    pid, tok = tag_of(4242, start)
    with FeatureStore.open(cache) as store:
        tmp_file = cache / TMP_DIR / f"{'a' * 32}.{pid}-{tok}.npy"
        data_file = cache / DATA_DIR / f"{'b' * 32}.{pid}-{tok}.npy"
        for f in (tmp_file, data_file):
            f.write_bytes(b"x")
        with sqlite3.connect(store.index_path) as db:
            db.execute(
                "INSERT INTO writers (token, pid, start, since, place) VALUES ('w', ?, ?, ?, ?)",
                (4242, start, now, ELSEWHERE),
            )
            db.execute("INSERT INTO owners VALUES (?, ?, ?, ?)", (ELSEWHERE, 4242, start, now))
        assert store.sweep(now=now + LEASE_SECONDS) == 0  # alive: nothing of it touched
        assert tmp_file.exists() and data_file.exists()
        assert store.sweep(now=now + LEASE_SECONDS + 1) == 2  # expired: swept as a dead writer's
        assert not tmp_file.exists() and not data_file.exists()


# --- the heartbeat thread ---------------------------------------------------------------------


def test_heartbeat_runs_while_held_and_stops_when_idle() -> None:
    beats: list[float] = []
    ticks: list[threading.Event] = []
    stepped = threading.Semaphore(0)
    gate = threading.Semaphore(0)
    clock = iter(range(100))

    def wait(stop: threading.Event, seconds: float) -> None:  # the thread's pause, stepped
        assert seconds == HEARTBEAT_EVERY
        ticks.append(stop)
        stepped.release()
        gate.acquire()

    hb = Heartbeat(beats.append, clock=lambda: float(next(clock)), wait=wait)
    assert not hb.running
    hb.hold()
    assert beats == [0.0]  # at once: the lease is fresh before the work starts
    hb.hold()  # a second active pass: same thread
    assert stepped.acquire(timeout=30)  # the thread pauses
    for expected in ([0.0, 1.0], [0.0, 1.0, 2.0]):
        gate.release()  # one period passes
        assert stepped.acquire(timeout=30)  # it beat once, and pauses again
        assert beats == expected
    hb.release()
    assert hb.running  # one pass still active
    hb.release()  # idle: the thread ends at its next wake-up, without beating
    gate.release()
    hb.close()
    assert not hb.running
    assert beats == [0.0, 1.0, 2.0]
    assert len({id(t) for t in ticks}) == 1


def test_the_runner_holds_the_lease_only_while_it_has_active_passes(tmp_path: Path) -> None:
    from diagnostics_app.core.session import Session

    project = many_passes_project(tmp_path, 1)
    with Session.open(project) as session:
        held: list[bool] = []
        session.events.job_updated.connect(lambda e: held.append(session.store.lease.running))
        batches = session.enqueue(session.plan())
        assert len(batches) == 2 and session.store.lease.running
        session.runner.cancel(batches[1].job_id)
        session.runner.run_all()
        assert all(held[:-1])
        session.store.lease.close()  # joins the thread, whatever its pause
        assert not session.store.lease.running


# --- schema -----------------------------------------------------------------------------------


@pytest.mark.parametrize("old", [2, 3])
def test_an_index_of_schema_2_or_3_gets_owners_and_places(tmp_path: Path, old: int) -> None:
    cache = tmp_path / "c"
    FeatureStore.open(cache).close()
    with sqlite3.connect(cache / INDEX_NAME) as db:
        db.execute("DROP TABLE owners")
        db.execute("ALTER TABLE jobs DROP COLUMN owner_place")
        db.execute("ALTER TABLE writers DROP COLUMN place")
        if old == 2:
            for table in ("features", "trash"):
                db.execute(f"ALTER TABLE {table} DROP COLUMN stamp")
                db.execute(f"ALTER TABLE {table} DROP COLUMN checksum")
        db.execute(
            "INSERT INTO jobs (id, source_id, calculator_ids, profile, params, features, state, "
            "label, origin, owner_pid, owner_start, created, updated) VALUES ('old', 's', "
            "'[\"c\"]', 'default', '{}', '[]', 'running', 'running', 'cli', ?, 'gone', 0, 0)",
            (os.getpid(),),
        )
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(old),))
    with FeatureStore.open(cache) as store:  # opening reaps: the old record is judged by pid
        job = store.job("old")
        assert job is not None and job.owner_place == ""
        assert (job.state, job.message) == ("failed", f"owner process {os.getpid()} died")
    with sqlite3.connect(cache / INDEX_NAME) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        assert SCHEMA_VERSION >= 4
        assert db.execute("SELECT COUNT(*) FROM owners").fetchone() == (0,)


# --- children ---------------------------------------------------------------------------------


def _queue_and_wait(project: str) -> None:
    from diagnostics_app.core.session import Session

    session = Session.open(project)
    batches = session.enqueue(session.plan(), origin="cli")
    print(json.dumps({"pid": os.getpid(), "passes": len(batches)}), flush=True)
    sys.stdin.read()  # until the test closes the pipe or kills this process
    session.close()


def _run_blocking(project: str) -> None:
    from diagnostics_app.core.events import JobUpdated
    from diagnostics_app.core.session import Session

    session = Session.open(project)
    first = [True]

    def on_update(event: JobUpdated) -> None:
        if event.state == "running" and first[0]:
            first[0] = False  # the first progress report: tell the test, wait for its go
            print(json.dumps({"pid": os.getpid(), "place": this_place()}), flush=True)
            sys.stdin.readline()

    session.events.job_updated.connect(on_update)
    session.enqueue(session.plan(), origin="cli")
    results = session.runner.run_all()
    counts = {"done": 0, "failed": 0, "other": 0}
    for r in results:
        counts[r.status if r.status in counts else "other"] += 1
    print(json.dumps(counts), flush=True)
    session.close()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    {"queue-and-wait": _queue_and_wait, "run-blocking": _run_blocking}[sys.argv[1]](sys.argv[2])
