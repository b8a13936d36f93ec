"""Adversarial cases of partial recomputation (issue 13) that found defects: each test is the
attack, kept with its fix. A tampered index must fail its row in one line naming the cause,
never raise from a listing, never compose frames from parts that cannot be this store's."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from diagnostics_app.core import partial_work
from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.store import INDEX_NAME, FeatureStore, StaleBase
from diagnostics_app.core.store.records import part_files
from tests.core import test_partial_jobs as jobs
from tests.core.test_store_splices import KEY, base_arrays, put, same_for_all


def _fields(edit: Callable[[list[Any]], list[Any]]) -> Callable[[str], str]:
    return lambda text: json.dumps([edit(list(p)) for p in json.loads(text)])


TAMPERED: dict[str, tuple[Callable[[str], str], str]] = {
    "not json": (lambda _: "{oops", "malformed"),
    "not a list": (lambda _: json.dumps({"a": 1}), "malformed"),
    "a part not a list": (lambda _: json.dumps([5]), "malformed"),
    "too few fields": (lambda _: json.dumps([[1, 2, 3]]), "malformed"),
    "wrong types": (
        lambda _: json.dumps([["x", None, 2.5, 7, None, "a", "b", "c"]]),
        "malformed",
    ),
    "a count that is a bool": (_fields(lambda p: [True, *p[1:]]), "malformed"),
    "overlapping parts": (_fields(lambda p: [p[0], p[1] + 100, *p[2:]]), "does not fit"),
    "huge frame count": (_fields(lambda p: [p[0], p[1], 10**15, *p[3:]]), "does not fit"),
    "negative first": (_fields(lambda p: [-5, *p[1:]]), "does not fit"),
    "past the base's end": (_fields(lambda p: [5000, *p[1:]]), "does not fit"),
    # feature "t" has frame times: its part without them hit an assert in the read
    "t: a part without times": (_fields(lambda p: [*p[:4], None, *p[5:]]), "no frame times"),
}


@pytest.mark.parametrize("case", list(TAMPERED), ids=list(TAMPERED))
def test_a_tampered_splices_column_fails_its_row_in_one_line(tmp_path: Path, case: str) -> None:
    """Before the fix: a malformed column raised JSONDecodeError/TypeError out of every
    listing (a traceback for ``analyze``, ``check``, the window); parts that overlap, start
    before 0 or lie past the base passed the listing as ``ok`` (the base file's stamp matched)
    and a read composed wrong frames (5 frames of 1204) or failed later."""
    edit, words = TAMPERED[case]
    feature = "t" if case.startswith("t: ") else "a"
    root = tmp_path / "c"
    with FeatureStore.open(root) as store:
        entry = put(store, base_arrays())
        store.commit_splices(KEY, {}, 1, entry.commit_id, same_for_all([(10, 1, 2), (50, 0, 3)], 1))
    with sqlite3.connect(root / INDEX_NAME) as con:
        (text,) = con.execute(
            "SELECT splices FROM features WHERE feature = ?", (feature,)
        ).fetchone()
        con.execute("UPDATE features SET splices = ? WHERE feature = ?", (edit(text), feature))
    con.close()
    with FeatureStore.open(root) as store:
        (listed,) = store.entries()
        problems = dict(listed.problems)
        assert list(problems) == [feature]  # the other features stay sound
        assert words in problems[feature] and "\n" not in problems[feature]
        with pytest.raises(StoreError, match=words) as err:
            store.load(listed, feature)
        assert "\n" not in str(err.value)
        store.load(listed, "db")  # untouched features still read
    if words == "malformed":  # names no file: its deletion warns of no "refused path"
        assert part_files(edit(text)) == []


def test_a_tempo_change_past_the_end_recuts_no_beat(tmp_path: Path) -> None:
    """Before the fix: tempo_changed_from gives the frame count (nothing differs over the
    file), the wanted range [count, end) reached recompute_frames, which raised ValueError:
    the job ended 'internal error: ValueError: core.beats: wanted frame 144 is past the new
    data's 144 frames' and the row failed. Now: nothing recomputed, the new fingerprint taken,
    the data equal to a whole recomputation's."""
    a, b = jobs._twins(tmp_path, ("beat_rms",))
    for p in (a, b):
        doc = json.loads(p.read_text(encoding="utf-8"))
        doc["tempo_map"] = [{"time": 0.0, "bpm": 120.0}, {"time": 100.0, "bpm": 90.0}]
        p.write_text(json.dumps(doc), encoding="utf-8")
    done = jobs._analyse(a)  # asserts every job done and every row ok
    assert [job.partial for job, _ in done] == [True]
    assert [r.message for _, r in done] == ["partial: 0:00.000 of 0:17.878 recomputed"]
    jobs._analyse(b, partial=False)
    jobs._assert_same(a, b)


@pytest.mark.timeout(60)  # a regression hangs in open(): fail instead of stalling the suite
@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_part_file_replaced_after_the_listing_fails_its_read(tmp_path: Path, kind: str) -> None:
    """Before the fix: a FIFO in a part's (or any array file's) place blocked the read's
    open() until a writer came, forever (the entry was listed sound before the swap); a
    folder raised IsADirectoryError out of ``load`` (a traceback). Now one StoreError line
    naming the file, and a commit of splices over it falls back (StaleBase)."""
    with FeatureStore.open(tmp_path / "c") as store:
        entry = put(store, base_arrays())
        new = store.commit_splices(
            KEY, {}, 1, entry.commit_id, same_for_all([(10, 1, 2), (50, 0, 3)], 1)
        )
        part = store.root / new.features["a"].splices[0].path
        part.unlink()
        os.mkfifo(part) if kind == "fifo" else part.mkdir()
        with pytest.raises(StoreError, match="not a regular file") as err:
            store.load(new, "a")
        assert part.name in str(err.value) and "\n" not in str(err.value)
        with pytest.raises(StaleBase, match=part.name):
            store.commit_splices(KEY, {}, 1, new.commit_id, same_for_all([(12, 1, 2)], 3))
        assert dict(store.entries()[0].problems).keys() == {"a"}


def test_an_entry_whose_files_go_during_the_partial_run_is_recomputed_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the fix: the frames a splice replaces are read before the commit, and a base
    file gone since the entry was read (another process recomputed and purged it) raised
    StoreError out of the partial attempt: the job failed and the row showed 'failed' where
    the full pass would have recomputed it. Now it falls back to whole, like StaleBase."""
    a, b = jobs._twins(tmp_path, ("rms",))
    for p in (a, b):
        jobs._edit(p, jobs._middle)
    real = partial_work.recompute_frames
    gone: list[str] = []

    def files_go_meanwhile(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        with FeatureStore.open(a.parent / ".featurecache") as other:
            (entry,) = other.entries()
            base = other.root / entry.features["rms"].path
            base.unlink()
            gone.append(base.name)
        return result

    monkeypatch.setattr(partial_work, "recompute_frames", files_go_meanwhile)
    (done,) = jobs._analyse(a)  # asserts the job done and the row ok
    message = done[1].message or ""
    assert message.startswith("recomputed whole: core.rms: ") and gone[0] in message
    jobs._analyse(b, partial=False)
    jobs._assert_same(a, b)


def test_a_calculator_that_cannot_start_on_the_blocks_leaves_the_others_partial(
    tmp_path: Path,
) -> None:
    """Before the fix: with ``peaks_block`` 1000 (not a divisor of the 65,536-sample digest
    blocks) the pass's one windowed recomputation refused the window for peaks, and every
    calculator of the pass fell back to whole ('recomputed whole: core.peaks: a window at
    sample 131072 does not start on one of its 1000-sample blocks'). Now peaks alone runs
    whole, the others stay partial; all equal a whole recomputation (a non-default profile:
    hop 256, window 4096, fft_size 8192)."""
    profile = {"hop_size": 256, "window_size": 4096, "fft_size": 8192, "peaks_block": 1000}
    a = jobs._project(tmp_path / "a", ("peaks", "rms", "spectrogram"))
    doc = json.loads(a.read_text(encoding="utf-8"))
    doc["profiles"] = {"default": profile}
    a.write_text(json.dumps(doc), encoding="utf-8")
    jobs._analyse(a)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    b = tmp_path / "b" / "project.json"
    for p in (a, b):
        jobs._edit(p, jobs._middle)
    (done,) = {r.message for _, r in jobs._analyse(a)}
    # peaks is left to the whole pass before any window is planned (no fallback message),
    # and the pass's note says it ran whole beside the partial calculators
    assert done is not None and done.startswith("partial: ") and "recomputed whole" not in done
    assert done.endswith("; whole: core.peaks")
    jobs._analyse(b, partial=False)
    jobs._assert_same(a, b)


def test_a_window_whose_seek_fails_is_recomputed_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the fix: only PartialUnsupported fell back, so a partial decode's AudioError (a
    format libsndfile cannot seek) failed the job, though the full pass, which never seeks,
    recomputes it. Now any failure of the partial attempt but Cancelled falls back."""
    from diagnostics_app.core import engine
    from diagnostics_app.core.errors import AudioError

    a, b = jobs._twins(tmp_path, ("rms",))
    for p in (a, b):
        jobs._edit(p, jobs._middle)
    real = engine.iter_blocks

    def no_seek(path: Any, block_frames: int, **kwargs: Any) -> Any:
        # a generator, as the real one: the error comes on the decode thread's first read
        if kwargs.get("start"):
            raise AudioError(str(path), "cannot seek to 1.00 s (unsupported)")
        yield from real(path, block_frames, **kwargs)

    monkeypatch.setattr(engine, "iter_blocks", no_seek)
    (done,) = jobs._analyse(a)  # asserts the job done and the row ok
    assert (done[1].message or "").startswith("recomputed whole: ")
    assert "cannot seek" in (done[1].message or "")
    jobs._analyse(b, partial=False)
    jobs._assert_same(a, b)
