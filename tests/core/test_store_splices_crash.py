"""Crash safety of ``FeatureStore.commit_splices``: a child process is SIGKILLed exactly at
each step of the commit (its ``splicing._step`` hook replaced: no sleeps, no races) and the
reopened store lists every entry sound, reads the old data or the new, and holds no orphan."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from diagnostics_app.core.store import TMP_DIR, EntryKey, FeatureStore
from diagnostics_app.core.store.splicing import MAX_PARTS
from tests.core.test_store_splices import (
    KEY,
    METAS,
    assert_reads,
    base_arrays,
    data_files,
    expected,
    put,
    referenced,
    same_for_all,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL, /proc")

_CHILD = """
import os, signal, sys
from diagnostics_app.core.store import FeatureStore, splicing
from tests.core.test_store_splices import KEY, same_for_all

def step(name):  # killed exactly at the step asked for
    if name == sys.argv[2]:
        os.kill(os.getpid(), signal.SIGKILL)

splicing._step = step
s = FeatureStore.open(sys.argv[1])
entry = s.get(KEY)
s.commit_splices(KEY, {"gen": 2}, 1, entry.commit_id, same_for_all(%r, 77))
print("committed")
"""


@pytest.mark.parametrize("step", ["written", "renamed", "commit", None])
@pytest.mark.parametrize("compacts", [False, True])
def test_killed_inside_commit_splices_leaves_old_or_new(
    tmp_path: Path, step: str | None, compacts: bool
) -> None:
    cache = tmp_path / "c"
    plan = [(40 * k, 1, 2) for k in range(MAX_PARTS + 1)] if compacts else [(10, 1, 2), (80, 4, 0)]
    with FeatureStore.open(cache) as s:
        entry = put(s, base_arrays())
        # an earlier splice: the killed commit replaces a spliced row (parts and base shared
        # with its previous version)
        entry = s.commit_splices(
            KEY, {"gen": 1}, 1, entry.commit_id, same_for_all([(500, 2, 3)], 5)
        )
        old = expected(s, entry, {n: [] for n in METAS})
        new = expected(s, entry, same_for_all(plan, 77))
        put(s, base_arrays(3), EntryKey("other", "core.test"))
    repo = str(Path(__file__).resolve().parents[2])  # this checkout, for the child's imports
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD % (plan,), str(cache), step or "none"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if step is None:
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == -9, done.stderr
        assert "committed" not in done.stdout
    with FeatureStore.open(cache) as s:  # the open sweeps what the dead writer left
        listed = {e.key: e for e in s.entries()}
        assert all(e.problems == () for e in listed.values())
        now = listed[KEY]
        assert now.fingerprint == ({"gen": 2} if step is None else {"gen": 1})
        assert_reads(s, now, new if step is None else old)
        assert os.listdir(cache / TMP_DIR) == []
        assert data_files(cache) == referenced(s)
        s.sweep(full=True)
        assert data_files(cache) == referenced(s)
