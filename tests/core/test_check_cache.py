"""The cached ``check --json`` result (core/check_cache.py): served only while every input of
the check is unchanged, and then byte-identical (output, stderr, exit code) to a full check.

Each invalidating input has its own test: after the change the next check derives the rows
again (``derived``), prints what a full check prints, and the check after it is served from the
cache again. Files written by a test are seconds old; the fixture ``trusting`` moves the cache's
notion of "process start" an hour ahead so that they count as old (see ``RACY_SECONDS``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from diagnostics_app import cli_check
from diagnostics_app.cli import main
from diagnostics_app.core import check_cache
from diagnostics_app.core.calculators import registry as registry_module
from diagnostics_app.core.calculators.registry import ENTRY_POINT_GROUP, PLUGIN_PATH_ENV
from diagnostics_app.core.calculators.temporal import RmsCalculator
from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.store import FeatureStore, JobRecord
from tests.core.project_factory import shared_source_project, write_tone

EXAMPLE_PLUGIN = Path(__file__).resolve().parents[2] / "docs" / "example_plugin.py"


@dataclasses.dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    derived: bool  # False: served from the cache

    def rows(self) -> dict[tuple[str, str, str], str]:
        doc = json.loads(self.out)
        return {(r["source"], r["feature"], r["profile"]): r["state"] for r in doc["rows"]}


Check = Callable[..., Run]


@pytest.fixture(autouse=True)
def _no_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PLUGIN_PATH_ENV, raising=False)


@pytest.fixture(autouse=True)
def _code_as_first_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    """The package's own modules keep, for the whole test, the stamps the first check saw.

    They are part of the key, and a checkout edited while the suite runs (a merge, an editor
    or formatter saving, a helper working in the same tree) changes them between the two
    checks of :func:`warm`: the second then derives again, rightly, and a test that expects a
    hit fails for a change that is not its own (the flake "the unchanged project was not
    served from the cache", reproduced by rewriting one module during a run). The tests of a
    code change edit copies in ``tmp_path`` (``_PACKAGE`` moved there, plugins), whose stamps
    stay live."""
    package = check_cache._PACKAGE
    prefix = str(package) + os.sep
    real_stamp, real_modules = check_cache._stamp, check_cache._module_stamps
    stamps: dict[str, list[int] | None] = {}
    listing: dict[str, list[Any]] = {}

    def stamp(path: str | os.PathLike[str] | int) -> list[int] | None:
        if isinstance(path, int) or not os.path.realpath(path).startswith(prefix):
            return real_stamp(path)
        return stamps.setdefault(os.path.realpath(path), real_stamp(path))

    def module_stamps(folder: Path, skip: str = "") -> list[Any]:
        if folder != package:
            return real_modules(folder, skip)
        return list(listing.setdefault(skip, real_modules(folder, skip)))  # code_key extends it

    monkeypatch.setattr(check_cache, "_stamp", stamp)
    monkeypatch.setattr(check_cache, "_module_stamps", module_stamps)


@pytest.fixture
def trusting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check_cache, "STARTED_NS", time.time_ns() + 3600 * 10**9)


@pytest.fixture
def check(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Check:
    """``main(["check", PROJECT, "--json", ...])`` in this process, noting whether the rows
    were derived."""
    derived: list[bool] = []
    real = cli_check._derive

    def spy(*args: Any) -> int:
        derived.append(True)
        return int(real(*args))

    monkeypatch.setattr(cli_check, "_derive", spy)

    def run(project: Path | str, *flags: str, table: bool = False) -> Run:
        derived.clear()
        capsys.readouterr()
        try:
            code = main(["check", str(project), *flags, *(() if table else ("--json",))])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return Run(code, out, err, bool(derived))

    return run


@pytest.fixture
def analysed(tmp_path: Path) -> Path:
    path = shared_source_project(tmp_path)
    assert main(["analyze", str(path)]) == 0
    return path


def cache_file(project: Path) -> Path:
    return project.parent / ".featurecache" / check_cache.CACHE_NAME


def warm(check: Check, project: Path | str) -> Run:
    """Two checks: the first derives and saves, the second is served (and equal)."""
    first = check(project)
    assert first.derived
    second = check(project)
    assert not second.derived, "the unchanged project was not served from the cache"
    assert (second.code, second.out, second.err) == (first.code, first.out, first.err)
    return first


def changed(check: Check, project: Path | str, before: Run) -> Run:
    """After a change: derived again, then served again."""
    after = check(project)
    assert after.derived, "a changed input was served from the cache"
    again = check(project)
    assert not again.derived
    assert (again.code, again.out, again.err) == (after.code, after.out, after.err)
    return after


# --- served while nothing changed ------------------------------------------------------------


@pytest.mark.usefixtures("trusting")
def test_unchanged_project_is_served_byte_identical(analysed: Path, check: Check) -> None:
    first = warm(check, analysed)
    assert first.code == 0
    assert set(first.rows().values()) == {"ok"}
    assert cache_file(analysed).is_file()


@pytest.mark.usefixtures("trusting")
def test_issues_exit_1_from_the_cache_too(tmp_path: Path, check: Check) -> None:
    project = shared_source_project(tmp_path)  # nothing analysed: every row missing
    first = warm(check, project)
    assert first.code == 1
    assert set(first.rows().values()) == {"missing"}


@pytest.mark.usefixtures("trusting")
def test_selection_flags_and_the_table_neither_read_nor_write_it(
    analysed: Path, check: Check
) -> None:
    for _ in range(2):
        assert check(analysed, "--source", "bass").derived
        assert check(analysed, table=True).derived
    assert not cache_file(analysed).exists()


# --- the project file ------------------------------------------------------------------------


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")


@pytest.mark.usefixtures("trusting")
def test_project_edit(analysed: Path, check: Check) -> None:
    before = warm(check, analysed)
    edit(analysed, lambda d: d.update(tempo_map=[{"time": 0.0, "bpm": 90.0}]))
    after = changed(check, analysed, before)
    assert after.rows()[("drums", "beat_rms", "default")] == "stale"
    assert before.rows()[("drums", "beat_rms", "default")] == "ok"


@pytest.mark.usefixtures("trusting")
def test_project_touched_same_bytes(analysed: Path, check: Check) -> None:
    before = warm(check, analysed)
    st = analysed.stat()
    os.utime(analysed, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert changed(check, analysed, before).out == before.out


@pytest.mark.usefixtures("trusting")
def test_same_stamp_other_bytes(
    analysed: Path, check: Check, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digest of the project's bytes is part of the key, not only its stamp (here every
    stamp is reduced to the size, as if no file had been written since)."""
    real = check_cache._stamp
    monkeypatch.setattr(check_cache, "_stamp", lambda p: [*(real(p) or [0])[:1], 0, 0, 0])
    before = warm(check, analysed)
    text = analysed.read_text(encoding="utf-8")
    analysed.write_text(text.replace('"bpm": 120.0', '"bpm": 130.0'), encoding="utf-8")
    after = changed(check, analysed, before)
    assert after.rows()[("drums", "beat_rms", "default")] == "stale"


@pytest.mark.usefixtures("trusting")
def test_project_named_another_way(
    analysed: Path, check: Check, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The output repeats the path as given."""
    before = warm(check, analysed)
    monkeypatch.chdir(analysed.parent)
    after = changed(check, analysed.name, before)
    assert json.loads(after.out)["project"] == analysed.name
    assert json.loads(after.out)["rows"] == json.loads(before.out)["rows"]


@pytest.mark.usefixtures("trusting")
def test_project_reached_through_a_moved_link(tmp_path: Path, check: Check) -> None:
    """Same path as given, same file (inode), other folder: sources resolve elsewhere."""
    a, b = tmp_path / "a", tmp_path / "b"
    project = shared_source_project(a)
    (b / "audio").mkdir(parents=True)
    os.link(project, b / "project.json")  # b's audio folder is empty
    link = tmp_path / "current"
    link.symlink_to(a)
    before = warm(check, link / "project.json")
    link.unlink()
    link.symlink_to(b)
    after = check(link / "project.json")
    assert after.derived
    assert set(after.rows().values()) == {"failed"}  # no audio in b
    assert set(before.rows().values()) == {"missing"}


@pytest.mark.usefixtures("trusting")
def test_home_folder(tmp_path: Path, check: Check, monkeypatch: pytest.MonkeyPatch) -> None:
    """``~`` in a source path follows the home folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home1"))
    project = shared_source_project(tmp_path)
    edit(project, lambda d: d["sources"][1].update(path="~/bass.wav"))
    write_tone(tmp_path / "home1" / "bass.wav", 1.0, 55.0, seed=2)
    before = warm(check, project)
    monkeypatch.setenv("HOME", str(tmp_path / "home2"))  # no bass.wav there
    after = check(project)
    assert after.derived
    assert after.rows()[("bass", "rms", "default")] == "failed"
    assert before.rows()[("bass", "rms", "default")] == "missing"


# --- the audio files -------------------------------------------------------------------------


@pytest.mark.usefixtures("trusting")
def test_audio_replaced(analysed: Path, check: Check) -> None:
    before = warm(check, analysed)
    write_tone(analysed.parent / "audio" / "bass.wav", 1.25, 55.0, seed=3)
    after = changed(check, analysed, before)
    assert after.rows()[("bass", "rms", "default")] == "stale"
    assert after.rows()[("drums", "rms", "default")] == "ok"


@pytest.mark.usefixtures("trusting")
@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_data_file_damaged_behind_the_stores_back(
    analysed: Path, check: Check, damage: str
) -> None:
    """No counter moves when a data file is deleted or truncated by hand: the cached ``ok``
    must not be served (issue 9: ``ok`` means the data is there)."""
    before = warm(check, analysed)
    victim = sorted((analysed.parent / ".featurecache" / "data").glob("*.npy"))[0]
    if damage == "delete":
        victim.unlink()
    else:
        with open(victim, "r+b") as fh:
            fh.truncate(victim.stat().st_size // 2)
    after = check(analysed)
    assert after.derived, "a damaged data file was served from the cache"
    assert after.code == 1 and "failed" in after.rows().values()
    assert victim.name in after.out
    assert before.code == 0


@pytest.mark.usefixtures("trusting")
def test_audio_touched_same_bytes(analysed: Path, check: Check) -> None:
    before = warm(check, analysed)
    audio = analysed.parent / "audio" / "bass.wav"
    st = audio.stat()
    os.utime(audio, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert changed(check, analysed, before).out == before.out


@pytest.mark.usefixtures("trusting")
def test_audio_removed_then_back(analysed: Path, check: Check) -> None:
    """A source that cannot be read: its rows fail, and such a result is never kept (the
    error may be passing)."""
    before = warm(check, analysed)
    audio = analysed.parent / "audio" / "bass.wav"
    kept = audio.read_bytes()
    audio.unlink()
    for _ in range(2):
        failed = check(analysed)
        assert failed.derived
        assert failed.rows()[("bass", "rms", "default")] == "failed"
    audio.write_bytes(kept)
    assert changed(check, analysed, failed).out == before.out


@pytest.mark.usefixtures("trusting")
def test_audio_readability(analysed: Path, check: Check, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether each file is readable is part of the key (another user, other permissions).
    ``os.access`` is faked: as root every file is readable."""
    warm(check, analysed)
    real = os.access
    monkeypatch.setattr(
        check_cache.os, "access", lambda p, mode: not str(p).endswith("bass.wav") and real(p, mode)
    )
    assert check(analysed).derived


# --- the store -------------------------------------------------------------------------------


@pytest.mark.usefixtures("trusting")
def test_entry_written(tmp_path: Path, check: Check) -> None:
    project = shared_source_project(tmp_path)
    before = warm(check, project)
    assert main(["analyze", str(project), "--source", "bass", "--feature", "rms"]) == 0
    after = changed(check, project, before)
    assert after.rows()[("bass", "rms", "default")] == "ok"


@pytest.mark.usefixtures("trusting")
def test_entry_pruned(analysed: Path, check: Check) -> None:
    before = warm(check, analysed)
    with FeatureStore.open(analysed.parent / ".featurecache") as store:
        entry = next(e for e in store.entries() if e.key.source_id == "bass")
        store.prune([(entry.key, f) for f in entry.features])
    after = changed(check, analysed, before)
    assert "missing" in {s for (src, _, _), s in after.rows().items() if src == "bass"}


def add_job(project: Path, **change: Any) -> JobRecord:
    job = dataclasses.replace(JobRecord.new("bass", ["core.rms"], features=["rms"]), **change)
    with FeatureStore.open(project.parent / ".featurecache") as store:
        store.add_job(job)
    return job


@pytest.mark.usefixtures("trusting")
def test_job_queued_then_progressing(analysed: Path, check: Check) -> None:
    before = warm(check, analysed)
    job = add_job(analysed)  # owned by this (live) process
    queued = changed(check, analysed, before)
    assert queued.rows()[("bass", "rms", "default")] == "queued"
    with FeatureStore.open(analysed.parent / ".featurecache") as store:
        store.update_job(job.id, state="running", progress=0.5, label="running")
    running = changed(check, analysed, queued)
    assert json.loads(running.out)["summary"]["running"] == 1


@pytest.mark.usefixtures("trusting")
def test_job_of_a_dead_process_is_failed_first(analysed: Path, check: Check) -> None:
    before = warm(check, analysed)
    job = add_job(analysed, state="running", owner_start="a process long gone")
    after = changed(check, analysed, before)
    assert (
        after.rows()[("bass", "rms", "default")] == "ok"
    )  # its data is current: a failure is moot
    with sqlite3.connect(analysed.parent / ".featurecache" / "index.sqlite") as conn:
        found = conn.execute("SELECT state FROM jobs WHERE id = ?", (job.id,)).fetchall()
    assert found == [("failed",)]


@pytest.mark.usefixtures("trusting")
def test_index_replaced_by_a_copy(analysed: Path, check: Check) -> None:
    """Another file, even with the same content: derived again."""
    before = warm(check, analysed)
    index = analysed.parent / ".featurecache" / "index.sqlite"
    shutil.copy(index, index.with_suffix(".copy"))
    os.replace(index.with_suffix(".copy"), index)
    assert changed(check, analysed, before).out == before.out


def test_state_token_tells_indexes_with_equal_counters_apart(tmp_path: Path) -> None:
    """Two indexes whose change counters are equal: the newest entry's random commit id
    still differs."""
    tokens = []
    for name in ("a", "b"):
        project = shared_source_project(tmp_path / name)
        assert main(["analyze", str(project), "--source", "bass", "--feature", "rms"]) == 0
        with FeatureStore.open(project.parent / ".featurecache") as store:
            tokens.append(store.state_token())
    assert tokens[0][0] == tokens[1][0]  # the counters
    assert tokens[0] != tokens[1]


def test_state_token_follows_every_counter(analysed: Path) -> None:
    with FeatureStore.open(analysed.parent / ".featurecache") as store:
        seen = [store.state_token()]
        job = JobRecord.new("bass", ["core.rms"], features=["rms"])
        store.add_job(job)
        seen.append(store.state_token())
        store.update_job(job.id, progress=0.25)
        seen.append(store.state_token())
        store.request_cancel(job.id)
        seen.append(store.state_token())
        entry = store.entries()[0]
        store.restore(store.prune([(entry.key, f) for f in entry.features]))
        seen.append(store.state_token())
    assert len(set(seen)) == len(seen)


# --- the code --------------------------------------------------------------------------------


@pytest.mark.usefixtures("trusting")
def test_calculator_version(analysed: Path, check: Check, monkeypatch: pytest.MonkeyPatch) -> None:
    before = warm(check, analysed)
    monkeypatch.setattr(RmsCalculator, "version", RmsCalculator.version + 1)
    after = changed(check, analysed, before)
    assert after.rows()[("bass", "rms", "default")] == "stale"


@pytest.mark.usefixtures("trusting")
def test_plugin_added_then_edited(
    analysed: Path, check: Check, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before = warm(check, analysed)
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(folder))
    plugin = folder / "zcr_plugin.py"
    plugin.write_text(EXAMPLE_PLUGIN.read_text())
    edit(analysed, lambda d: d["tracks"][2]["requests"].append({"feature": "zcr"}))
    added = changed(check, analysed, before)
    assert added.rows()[("bass", "zcr", "default")] == "missing"
    plugin.write_text(plugin.read_text() + "\n# an edit that changes no declaration\n")
    assert changed(check, analysed, added).out == added.out


@pytest.mark.usefixtures("trusting")
def test_module_of_a_plugin_package_edited(
    analysed: Path, check: Check, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An entry-point plugin in a package: a module beside its calculator's counts too."""
    package = tmp_path / "site" / "zcr_package_for_check_cache"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "calc.py").write_text(EXAMPLE_PLUGIN.read_text())
    helper = package / "helper.py"
    helper.write_text("LIMIT = 1\n")
    monkeypatch.syspath_prepend(str(package.parent))
    point = EntryPoint("zcr", f"{package.name}.calc:ZeroCrossingRate", ENTRY_POINT_GROUP)
    monkeypatch.setattr(
        registry_module, "entry_points", lambda group: [point] if group == point.group else []
    )
    before = warm(check, analysed)
    helper.write_text("LIMIT = 2\n")
    assert changed(check, analysed, before).out == before.out


@pytest.mark.usefixtures("trusting")
def test_broken_plugin_warns_on_every_check(
    analysed: Path, check: Check, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "broken.py").write_text("raise RuntimeError('no')\n")
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(folder))
    assert "warning: plugin" in warm(check, analysed).err


@pytest.mark.usefixtures("trusting")
def test_package_module_changed(
    analysed: Path, check: Check, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Any module of the package but the GUI's (here a copy of the package stands in)."""
    package = tmp_path / "pkg"
    shutil.copytree(check_cache._PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(check_cache, "_PACKAGE", package)
    before = warm(check, analysed)
    gui = package / "qt" / "app.py"
    gui.write_text(gui.read_text() + "\n")
    assert not check(analysed).derived
    module = package / "core" / "params.py"
    module.write_text(module.read_text() + "\n")
    assert changed(check, analysed, before).out == before.out


@pytest.mark.usefixtures("trusting")
def test_python_version(analysed: Path, check: Check, monkeypatch: pytest.MonkeyPatch) -> None:
    before = warm(check, analysed)
    monkeypatch.setattr(sys, "version", sys.version + " (another build)")
    changed(check, analysed, before)


def test_frozen_bundle_keeps_no_result(
    analysed: Path, check: Check, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(check_cache, "STARTED_NS", time.time_ns() + 3600 * 10**9)
    assert check(analysed).derived
    assert not cache_file(analysed).exists()


# --- when a result is not kept, or not trusted -----------------------------------------------


def test_files_changed_just_before_the_check_are_not_trusted(
    analysed: Path, check: Check, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file changed less than RACY_SECONDS before the process started: a further change in
    the same tick of the file clock could keep its stamp, so the result is not kept. The
    process "starts" just after the project file last changed, not at the clock's now: under
    load the fixture's analysis alone can outlast RACY_SECONDS."""
    monkeypatch.setattr(check_cache, "STARTED_NS", analysed.stat().st_ctime_ns + 1)
    assert check(analysed).derived
    assert not cache_file(analysed).exists()


@pytest.mark.usefixtures("trusting")
def test_change_during_the_check_is_not_kept(
    analysed: Path, check: Check, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diagnostics_app.core.session import Session

    real = Session.diagnose
    audio = analysed.parent / "audio" / "bass.wav"

    def diagnose_while_audio_changes(self: Session) -> Any:
        found = real(self)
        st = audio.stat()
        os.utime(audio, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        return found

    monkeypatch.setattr(Session, "diagnose", diagnose_while_audio_changes)
    assert check(analysed).derived
    assert not cache_file(analysed).exists()


@pytest.mark.usefixtures("trusting")
def test_the_cache_failing_never_fails_a_check(
    analysed: Path, check: Check, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = warm(check, analysed)

    def unreadable(self: FeatureStore) -> None:
        raise StoreError("the counters cannot be read")

    monkeypatch.setattr(FeatureStore, "state_token", unreadable)
    for _ in range(2):  # the saved result cannot be checked, nor a new one kept
        after = check(analysed)
        assert after.derived
        assert (after.code, after.out, after.err) == (before.code, before.out, before.err)


@pytest.mark.usefixtures("trusting")
@pytest.mark.parametrize(
    "spoil",
    [
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: b[:-2] + b"X\n",  # text altered
        lambda b: b"not json\n" + b,
        lambda b: b"",
    ],
)
def test_damaged_file_is_a_miss(
    analysed: Path, check: Check, spoil: Callable[[bytes], bytes]
) -> None:
    before = warm(check, analysed)
    path = cache_file(analysed)
    path.write_bytes(spoil(path.read_bytes()))
    assert changed(check, analysed, before).out == before.out


@pytest.mark.usefixtures("trusting")
def test_custom_cache_dir(tmp_path: Path, check: Check) -> None:
    project = shared_source_project(tmp_path, cache_dir="elsewhere/cache")
    warm(check, project)
    assert (tmp_path / "elsewhere" / "cache" / check_cache.CACHE_NAME).is_file()
