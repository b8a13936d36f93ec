"""Export writes only regular files of the user's own, streams the matrix block by block, and
writes exactly the bytes the whole-matrix writers wrote (README, "Export")."""

from __future__ import annotations

import csv
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from diagnostics_app.core import export
from diagnostics_app.core.planner import Selection
from diagnostics_app.core.session import Session
from tests.core.test_cli import (  # the helpers and fixtures of the CLI tests
    EXPORTS,
    Cli,
    _no_plugins,  # noqa: F401  (autouse fixture)
    assert_bad_input,
    cli,  # noqa: F401  (fixture)
    export_project,  # noqa: F401  (fixture)
    tree_digest,
)
from tests.core.test_files import umask  # noqa: F401  (fixture)

# --- the reference: the whole-matrix writer of the previous release, verbatim ---------------


def _reference_csv(
    f: Any,
    feature: str,
    data: np.ndarray,
    times: np.ndarray,
    width_names: tuple[str, ...],
    channel_names: tuple[str, ...],
) -> None:
    flat = data.reshape(data.shape[0], -1)
    if data.ndim == 3:
        inner = width_names or tuple(str(i) for i in range(data.shape[2]))
        chans = channel_names or tuple(f"ch{i + 1}" for i in range(data.shape[1]))
        cols = [f"{c}:{w}" for c in chans for w in inner]
    else:
        cols = (
            list(width_names)
            if len(width_names) == flat.shape[1]
            else ([feature] if flat.shape[1] == 1 else [f"bin{i}" for i in range(flat.shape[1])])
        )

    class Text:
        def write(self, s: str) -> int:
            return int(f.write(s.encode("utf-8")))

    writer = csv.writer(Text())
    writer.writerow(["time", *cols])
    for t, values in zip(times, flat, strict=False):
        writer.writerow([f"{t:.6f}", *(f"{v:.7g}" for v in values)])


def _reference_export(session: Session, row: Any, fmt: str, path: Path) -> None:
    entry = session.store.get(row.key.entry_key)
    assert entry is not None
    loaded = session.store.load(entry, row.key.feature)
    data = export.export_array(row.key.feature, np.asarray(loaded.data, dtype=np.float32))
    times = np.asarray(loaded.times, dtype=np.float64)
    prov = export.provenance(row)
    prov["shape"] = list(data.shape)
    prov["axes"] = export._axes(row.key.feature, data.ndim)
    meta = loaded.meta
    if meta.bins:
        prov["bins"] = {"unit": meta.bin_unit, "values": list(meta.bins)}
    prov["unit"] = meta.unit

    def dump(p: Path, obj: Any) -> None:
        p.write_bytes(json.dumps(obj, indent=1).encode("utf-8"))

    side = path.with_name(path.name + ".provenance.json")
    if fmt == "npy":
        with path.open("wb") as f:
            np.save(f, data, allow_pickle=False)
        dump(side, {**prov, "frame_times": times.tolist()})
    elif fmt == "csv":
        with path.open("wb") as f:
            # column names of bins with their unit (mel8_417.2Hz, C#): bin_names, tested in
            # test_csv_headers.py; what is compared here is the streaming of the values
            names = meta.width_names or export.bin_names(
                row.key.feature, data.shape[-1], meta.bins, meta.bin_unit
            )
            _reference_csv(f, row.key.feature, data, times, names, meta.channel_names)
        dump(side, prov)
    else:
        dump(
            path,
            {
                "schema_version": 1,
                "provenance": prov,
                "frame_times": times.tolist(),
                "data": data.tolist(),
            },
        )


def _row(session: Session, flags: list[str]) -> Any:
    pairs = dict(zip(flags[::2], flags[1::2], strict=True))
    params = tuple(tuple(pairs["--param"].split("=", 1)) for _ in ("--param",) if _ in pairs)
    rows = Selection(
        sources=(pairs["--source"],), features=(pairs["--feature"],), params=params
    ).select(session.diagnose())
    if not params:  # as the CLI: without --param, prefer the row without request params
        rows = [r for r in rows if not r.params] or rows
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.parametrize("block_values", [1, 7, export.BLOCK_VALUES], ids=lambda b: f"block{b}")
@pytest.mark.parametrize("fmt", ["npy", "csv", "json"])
@pytest.mark.parametrize("case", list(EXPORTS))
def test_bytes_identical_to_the_whole_matrix_writer(
    export_project: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    fmt: str,
    block_values: int,
) -> None:
    """Every feature layout (2-D, per-channel 3-D, peaks), every format, with blocks of one
    frame, of a few frames (crossing rows mid-way) and the default size."""
    monkeypatch.setattr(export, "BLOCK_VALUES", block_values)
    flags = EXPORTS[case][0]
    with Session.open(export_project) as session:
        row = _row(session, flags)
        want, got = tmp_path / f"want.{fmt}", tmp_path / f"got.{fmt}"
        _reference_export(session, row, fmt, want)
        assert export.export_row(session, row, fmt, got) == got
    assert got.read_bytes() == want.read_bytes()
    if fmt != "json":
        side = ".provenance.json"
        assert Path(f"{got}{side}").read_bytes() == Path(f"{want}{side}").read_bytes()


def _blocks(data: np.ndarray, frames: int) -> Iterator[np.ndarray]:
    for start in range(0, len(data), frames):
        yield data[start : start + frames]


SPECIAL = np.array(
    [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-45, 3.4e38, -1e-7, 123456789.0, 0.1, 1 / 3],
    dtype=np.float32,
)


@pytest.mark.parametrize(
    "shape", [(11, 1), (11, 3), (5, 2, 3), (0, 4), (3, 0)], ids=lambda s: "x".join(map(str, s))
)
@pytest.mark.parametrize("frames", [1, 2, 64])
def test_writers_match_the_old_spelling_of_special_values(
    tmp_path: Path, shape: tuple[int, ...], frames: int
) -> None:
    """NaN, infinities, -0.0, subnormals, the float32 extremes: the new per-row ``%`` and the
    C-encoded JSON spell them as ``f"{v:.7g}"`` and ``json.dumps(indent=1)`` did."""
    size = int(np.prod(shape))
    data = np.resize(SPECIAL, size).reshape(shape).astype(np.float32)
    times = np.arange(shape[0], dtype=np.float64) / 3 + 1e-9
    # csv
    want = tmp_path / "want.csv"
    with want.open("wb") as f:
        if shape[0]:
            _reference_csv(f, "x", data, times, (), ())
        else:  # the old writer could not reshape an empty matrix; a header is what it meant
            f.write(b"time,bin0,bin1,bin2,bin3\r\n")
    header = export.csv_header("x", data.shape, (), ())
    got = tmp_path / "got.csv"
    with got.open("wb") as f:
        export.write_csv(f, header, zip(_blocks(times, frames), _blocks(data, frames), strict=True))
    assert got.read_bytes() == want.read_bytes()
    # npy
    with (tmp_path / "want.npy").open("wb") as f:
        np.save(f, data, allow_pickle=False)
    with (tmp_path / "got.npy").open("wb") as f:
        export.write_npy(f, data.shape, _blocks(data, frames))
    assert (tmp_path / "got.npy").read_bytes() == (tmp_path / "want.npy").read_bytes()
    # json
    head = {"schema_version": 1, "provenance": {"a": [1, {"b": None}], "c": "é"}}
    whole = {**head, "frame_times": times.tolist(), "data": data.tolist()}
    with (tmp_path / "got.json").open("wb") as f:
        export.write_json(
            f,
            head,
            [
                ("frame_times", export._float_rows(_blocks(times, frames))),
                ("data", export._data_rows(_blocks(data, frames))),
            ],
        )
    assert (tmp_path / "got.json").read_bytes() == json.dumps(whole, indent=1).encode("utf-8")


def test_never_loads_the_whole_matrix(
    export_project: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each read from the store is one block of frames (a fresh map, released before the
    next): memory stays flat whatever the length (bench/export.py measures it)."""
    monkeypatch.setattr(export, "BLOCK_VALUES", 1025 * 4)  # 4 spectrogram frames
    with Session.open(export_project) as session:
        row = _row(session, EXPORTS["spectrogram"][0])
        frames = session.store.get(row.key.entry_key).features["spectrogram"].frames
        assert frames > 20
        reads: list[slice | None] = []
        load = session.store.load

        def spy(entry: Any, feature: str, mmap: bool = True, frames: slice | None = None) -> Any:
            reads.append(frames)
            return load(entry, feature, mmap=mmap, frames=frames)

        monkeypatch.setattr(session.store, "load", spy)
        for fmt in ("npy", "csv", "json"):
            reads.clear()
            export.export_row(session, row, fmt, tmp_path / f"s.{fmt}")
            assert reads and all(isinstance(r, slice) for r in reads), reads
            assert max(r.stop - r.start for r in reads if r is not None) <= 4


# --- where an export may write ---------------------------------------------------------------


def _export(cli: Cli, project: Path, target: Path | str, fmt: str = "csv") -> Any:  # noqa: F811
    return cli(
        "export", project, "--source", "bass", "--feature", "pitch", "--format", fmt, "-o", target
    )


@pytest.mark.parametrize("fmt", ["npy", "csv", "json"])
@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ("project.json", "it is the project file"),
        ("./audio/../project.json", "it is the project file"),
        (".featurecache/index.sqlite", "inside the feature store"),
        (".featurecache/new.csv", "inside the feature store"),
        (".featurecache/data/x/y.csv", "inside the feature store"),
        (".featurecache", "is a folder, not a regular file"),
        ("audio/bass.wav", "it is the audio of source 'bass'"),
    ],
)
def test_export_never_writes_the_project_its_audio_or_the_store(
    cli: Cli,  # noqa: F811
    export_project: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    needle: str,
    fmt: str,
) -> None:
    folder = export_project.parent
    monkeypatch.chdir(folder)
    before = tree_digest(folder)
    result = _export(cli, export_project, target, fmt)
    assert_bad_input(result, str(Path(target)), "cannot write", needle)
    assert tree_digest(folder) == before  # nothing written, not even a temporary file


def test_export_refuses_a_link_to_the_project_and_a_sidecar_onto_it(
    cli: Cli,  # noqa: F811
    export_project: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    link = tmp_path / "link.csv"
    link.symlink_to(export_project)
    assert_bad_input(_export(cli, export_project, link), str(link), "it is the project file")
    # -o X writes X.provenance.json too: refused when that is the project file
    target = export_project.parent / "evil.npy"
    alias = export_project.parent / "evil.npy.provenance.json"
    alias.symlink_to(export_project)
    try:
        result = _export(cli, export_project, target, "npy")
        assert_bad_input(result, "evil.npy.provenance.json", "it is the project file")
        assert not target.exists()
    finally:
        alias.unlink()
    assert json.loads(export_project.read_text())["sources"]  # intact


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null on this platform")
@pytest.mark.parametrize("fmt", ["npy", "csv", "json"])
def test_export_to_dev_null_leaves_the_device(
    cli: Cli,  # noqa: F811
    export_project: Path,  # noqa: F811
    tmp_path: Path,
    fmt: str,
) -> None:
    """As root, renaming a temporary file over /dev/null replaces the device with a regular
    file (every later ``> /dev/null`` then fills the disk); any user: nothing is written."""
    before = os.stat("/dev/null")
    assert stat.S_ISCHR(before.st_mode)
    assert_bad_input(
        _export(cli, export_project, "/dev/null", fmt),
        "/dev/null",
        "is a character device, not a regular file",
    )
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    link = tmp_path / "null.csv"  # a link to a device is refused the same way
    link.symlink_to("/dev/null")
    assert_bad_input(_export(cli, export_project, link, fmt), "character device")
    assert link.is_symlink()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_export_refuses_a_fifo(cli: Cli, export_project: Path, tmp_path: Path) -> None:  # noqa: F811
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    assert_bad_input(_export(cli, export_project, fifo), str(fifo), "is a FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_export_replaces_its_own_earlier_file(
    cli: Cli,  # noqa: F811
    export_project: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    out = tmp_path / "p.json"
    out.write_text("old")
    out.chmod(0o640)
    assert _export(cli, export_project, out, "json").code == 0
    assert json.loads(out.read_text())["provenance"]["feature"] == "pitch"
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # a replaced file keeps its mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_export_files_follow_the_umask(
    cli: Cli,  # noqa: F811
    export_project: Path,  # noqa: F811
    tmp_path: Path,
    umask: Any,  # noqa: F811
) -> None:
    for mask, mode in ((0o022, 0o644), (0o002, 0o664), (0o077, 0o600)):
        umask(mask)
        for fmt in ("npy", "csv", "json"):
            out = tmp_path / f"{mask:o}" / f"x.{fmt}"
            assert _export(cli, export_project, out, fmt).code == 0
        written = sorted((tmp_path / f"{mask:o}").iterdir())
        assert len(written) == 5  # npy, csv, json and two provenance files
        assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in written} == {
            p.name: mode for p in written
        }
