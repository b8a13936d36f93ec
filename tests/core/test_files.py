"""core.files: whole-file reads that refuse devices and FIFOs without blocking, and the one
atomic writer behind every file the app creates (project, exports, provenance, the demo):
new files follow the umask, a replaced file keeps its mode, nothing half-written is left."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from diagnostics_app.core import files
from diagnostics_app.core.errors import DiagnosticsError, ProjectError
from diagnostics_app.core.project import load_project, save_project
from tests.core.project_factory import shared_source_project

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX files and permissions")
HANG_GUARD = 60  # seconds: a test that would block for ever fails instead; no duration asserted


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process umask for this test (restored after)."""
    old = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- writing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_files_follow_the_umask(
    tmp_path: Path, umask: Callable[[int], None], mask: int, mode: int
) -> None:
    umask(mask)
    target = tmp_path / "new.bin"
    files.atomic_write(target, lambda f: f.write(b"data"))
    assert target.read_bytes() == b"data"
    assert mode_of(target) == mode


@pytest.mark.parametrize("mode", [0o640, 0o600, 0o755, 0o444])
def test_a_replaced_file_keeps_its_mode(
    tmp_path: Path, umask: Callable[[int], None], mode: int
) -> None:
    target = tmp_path / "kept.bin"
    target.write_bytes(b"old")
    target.chmod(mode)
    files.atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new"
    assert mode_of(target) == mode


def test_temporary_file_is_recognisable_and_removed_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_bytes(b"before")
    seen: list[str] = []

    def write(f: object) -> None:
        seen.extend(p.name for p in tmp_path.iterdir() if p.name != "out.csv")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        files.atomic_write(target, write)
    assert len(seen) == 1
    assert seen[0].startswith(".out.csv.") and seen[0].endswith(files.TEMP_SUFFIX)
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    assert target.read_bytes() == b"before"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_atomic_write_refuses_to_replace_what_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "folder").mkdir()
    for target, kind in ((fifo, "is a FIFO"), (tmp_path / "folder", "is a folder")):
        with pytest.raises(files.FileRefused, match=kind):
            files.atomic_write(target, lambda f: f.write(b"x"))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "folder"]
    with pytest.raises(files.FileRefused, match="null byte"):
        files.atomic_write(tmp_path / "a\x00b", lambda f: f.write(b"x"))


def test_a_long_name_still_has_room_for_its_temporary_name(tmp_path: Path) -> None:
    target = tmp_path / ("n" * 250)  # 255 bytes is the usual limit of one name
    files.atomic_write(target, lambda f: f.write(b"x"))
    assert target.read_bytes() == b"x"


# --- the project file: save ------------------------------------------------------------------


def test_project_save_follows_the_umask_and_keeps_a_mode(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    umask(0o022)
    project = load_project(shared_source_project(tmp_path))
    fresh = tmp_path / "saved-as.json"
    save_project(project, fresh)
    assert mode_of(fresh) == 0o644  # was 0600 whatever the umask
    assert project.path is not None
    project.path.chmod(0o640)
    save_project(project)
    assert mode_of(project.path) == 0o640  # a save keeps the existing file's mode
    assert load_project(project.path).name == project.name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio", "project.json", "saved-as.json"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_project_save_over_a_fifo_is_refused(tmp_path: Path) -> None:
    project = load_project(shared_source_project(tmp_path))
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(ProjectError, match=r"fifo\.json: cannot save \(is a FIFO"):
        save_project(project, fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_demo_files_follow_the_umask(tmp_path: Path, umask: Callable[[int], None]) -> None:
    from diagnostics_app.core.demo import write_demo

    umask(0o022)
    project = write_demo(tmp_path / "demo")
    made = [p for p in project.parent.rglob("*") if p.is_file() and ".featurecache" not in p.parts]
    assert {p.name for p in made} == {"project.json", "drums.wav", "bass.flac", "pad.ogg"}
    assert {p.name: mode_of(p) for p in made} == {p.name: 0o644 for p in made}


# --- reading ---------------------------------------------------------------------------------


def test_read_regular_caps_the_size(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 101)
    assert files.read_regular(big, 101) == b"x" * 101
    with pytest.raises(files.FileRefused, match="too large"):
        files.read_regular(big, 100)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this platform")
def test_read_regular_refuses_devices() -> None:
    for device in ("/dev/zero", "/dev/null"):
        with pytest.raises(files.FileRefused, match="is a character device"):
            files.read_regular(device, 1 << 20)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    """In a fresh process with a hang guard: a blocking open must fail the test, not hang it."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_read_regular_refuses_a_fifo_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code = (
        "from diagnostics_app.core import files\n"
        f"try: files.read_regular({str(fifo)!r}, 1 << 20)\n"
        "except files.FileRefused as exc: print(exc.reason)\n"
    )
    result = _run(code)
    assert result.stdout.strip() == "is a FIFO, not a regular file", result


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_read_regular_survives_a_fifo_swapped_in_after_the_stat(tmp_path: Path) -> None:
    """The path is a regular file when stat looks and a FIFO when open runs: O_NONBLOCK keeps
    the open from waiting for a writer, and the open descriptor is checked again."""
    regular, fifo = tmp_path / "regular", tmp_path / "fifo"
    regular.write_text("{}")
    os.mkfifo(fifo)
    code = (
        "import os\n"
        "from diagnostics_app.core import files\n"
        f"real = os.stat; os.stat = lambda p, *a, **k: real({str(regular)!r})\n"
        f"try: files.read_regular({str(fifo)!r}, 1 << 20)\n"
        "except files.FileRefused as exc: print(exc.reason)\n"
    )
    result = _run(code)
    assert result.stdout.strip() == "is a FIFO, not a regular file", result


def test_file_refused_is_a_one_line_diagnostics_error() -> None:
    exc = files.FileRefused("a\x00b", "the path contains a null byte")
    assert isinstance(exc, DiagnosticsError)
    assert str(exc) == "a\\x00b: the path contains a null byte"
    assert json.dumps(str(exc))  # printable


def test_a_write_through_a_link_writes_the_file_it_names(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    files.atomic_write(link, lambda f: f.write(b"new"))
    assert link.is_symlink(), "the link was replaced by a separate file"
    assert real.read_text() == "new"


def test_check_json_with_an_unknown_users_cache_dir_is_a_row_not_a_traceback(
    tmp_path: Path,
) -> None:
    project = shared_source_project(tmp_path, cache_dir="~nosuchuser_zz/cache")
    done = subprocess.run(
        [sys.executable, "-m", "diagnostics_app", "check", str(project), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (1, 2), done.stderr
