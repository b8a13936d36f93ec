"""The suite itself must never crash at random or hang (issue 15).

- numba cache slots: no two live processes share a numba cache folder (numba's cache race).
- a worker that dies mid-run ends the run with a failure, with the options ``make test`` uses.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A hang would otherwise stall this test for ever; this bound is a hang guard, not a timing.
HANG_GUARD_S = 300

_CLAIM = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from tests.numba_slot import claim_numba_cache
    import os
    print(claim_numba_cache(), os.environ["NUMBA_CACHE_DIR"], flush=True)
    sys.stdin.read()  # hold the slot until the test closes our stdin
    """
)


def _claimer(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CLAIM.format(repo=str(REPO))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={"DIAGNOSTICS_APP_NUMBA_ROOT": str(root), "PATH": "/usr/bin:/bin"},
    )


def test_live_processes_never_share_a_numba_cache(tmp_path: Path) -> None:
    first, second = _claimer(tmp_path), _claimer(tmp_path)
    assert first.stdout is not None and second.stdout is not None
    slot_a, cache_a = first.stdout.readline().split()
    slot_b, cache_b = second.stdout.readline().split()
    assert slot_a != slot_b
    assert cache_a == f"{slot_a}/cache" and cache_b == f"{slot_b}/cache"
    # when a holder exits its slot is free again: compiled code is reused by the next process
    first.communicate("", timeout=HANG_GUARD_S)
    third = _claimer(tmp_path)
    assert third.stdout is not None
    assert third.stdout.readline().split()[0] == slot_a
    for proc in (second, third):
        proc.communicate("", timeout=HANG_GUARD_S)


def _make_test_options() -> list[str]:
    """The pytest-xdist options of ``make test`` (one home: the Makefile)."""
    text = (REPO / "Makefile").read_text()
    found = re.search(r"^PYTEST_XDIST\s*:?=\s*(.+)$", text, re.MULTILINE)
    assert found, "Makefile must define PYTEST_XDIST"
    return found.group(1).split()


CRASHING_SUITE = """
import os, signal, pytest

@pytest.mark.xdist_group("crashy")
@pytest.mark.parametrize("i", range(6))
def test_grouped(i):
    if i == 5:
        os.kill(os.getpid(), signal.SIGSEGV)  # a worker dies as numba's cache race made it

@pytest.mark.parametrize("i", range(8))
def test_plain(i):
    pass
"""


def test_a_crashed_worker_fails_the_run(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_crash.py").write_text(CRASHING_SUITE)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *_make_test_options(), "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "crashed while running 'test_crash.py::test_grouped[5]'" in out
    assert "worker restarting disabled" in out
