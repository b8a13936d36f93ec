"""Export of one row's feature data, with its provenance (interface §4).

``npy`` holds a float32 array (frames, channels): bins for image features, 1 for scalar
features, 2 for pitch (f0, confidence); ``peaks`` keeps (blocks, audio channels, 2). With
``channel_mode: per_channel`` a third axis keeps the channels: (frames, channels, width).
``npy`` and ``csv`` get a ``PATH.provenance.json`` beside them; ``json`` holds it inline.

Two rules (README, "Export"):

- Only regular files are written, and never the project file, an audio source or anything in
  the feature store: every target is checked before anything is read, and written through
  :func:`core.files.atomic_write` (a temporary file beside it, renamed over it), so a device
  such as ``/dev/null`` is neither written to nor replaced.
- Memory stays flat whatever the length: the data is read from the store a block of frames at
  a time (each block a fresh memory map, released before the next) and written as it comes.
  The bytes are exactly those ``np.save``, ``csv.writer`` (``%.7g`` values) and
  ``json.dumps(indent=1)`` of the whole matrix would give (tests/core/test_export.py).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from diagnostics_app.core import files
from diagnostics_app.core.axes import complete_names
from diagnostics_app.core.calculators.spectral import PITCH_CLASSES
from diagnostics_app.core.errors import DiagnosticsError, StoreError

if TYPE_CHECKING:
    from diagnostics_app.core.calculators.base import OutputMeta
    from diagnostics_app.core.diagnostics import Row
    from diagnostics_app.core.project import Project
    from diagnostics_app.core.session import Session
    from diagnostics_app.core.store import FeatureStore, StoredEntry

FORMATS = ("npy", "csv", "json")
# Values per block read from the store: 64 Ki float32 values, which ``tolist`` turns into
# ~2 MB of Python floats; far below the memory of any long matrix, large enough that the
# per-block cost (a memory map, a header read) vanishes.
BLOCK_VALUES = 1 << 16


def export_array(feature: str, data: np.ndarray) -> np.ndarray:
    """The exported layout of a stored (frames, channels, width) array."""
    if feature == "peaks" or data.shape[1] != 1:
        return data
    return data[:, 0, :]


def provenance(row: Row) -> dict[str, Any]:
    return {
        "source": row.key.source,
        "feature": row.key.feature,
        "calculator": row.key.calculator,
        "version": row.stored_version,
        "profile": row.key.profile,
        "parameters": {
            k[len("profile.") :]: v
            for k, v in (row.stored or {}).items()
            if k.startswith("profile.")
        },
        "request_params": dict(row.params),
        "fingerprint": row.stored,
        "tracks": list(row.tracks),
    }


def sidecar(path: Path) -> Path:
    """Where the provenance of an ``npy`` or ``csv`` export goes."""
    return path.with_name(path.name + ".provenance.json")


def outputs(fmt: str, path: Path) -> tuple[Path, ...]:
    """Every file an export in ``fmt`` to ``path`` writes."""
    return (path,) if fmt == "json" else (path, sidecar(path))


def check_targets(project: Project, targets: Sequence[Path]) -> None:
    """Refuse, with a one-line message, any target that is not (or would not be) a regular
    file of the user's own: an existing folder, device, FIFO or socket (or a link to one), the
    project file, an audio source, or anything inside the feature store."""
    cache = Path(os.path.realpath(project.cache_path()))
    project_file = Path(os.path.realpath(project.path)) if project.path is not None else None
    audio = {}
    for source in project.sources:
        if "\x00" not in source.path:
            audio[Path(os.path.realpath(project.audio_path(source)))] = source.id
    for target in targets:
        try:
            files.refuse_non_regular(target)
        except files.FileRefused as exc:
            raise DiagnosticsError(
                f"{exc.path}: cannot write ({exc.reason}; export writes only regular files)"
            ) from None
        # the rename replaces the last component itself (a link there is replaced, not
        # followed), but refuse both spellings: what the name is, and what it points to
        named = Path(os.path.realpath(target.parent)) / target.name
        for where in (named, Path(os.path.realpath(target))):
            if where == project_file:
                raise DiagnosticsError(f"{target}: cannot write (it is the project file)")
            if where in audio:
                raise DiagnosticsError(
                    f"{target}: cannot write (it is the audio of source {audio[where]!r})"
                )
            if where.is_relative_to(cache):
                raise DiagnosticsError(
                    f"{target}: cannot write (inside the feature store {project.cache_path()})"
                )


def export_row(session: Session, row: Row, fmt: str, path: Path) -> Path:
    if fmt not in FORMATS:
        raise DiagnosticsError(f"unknown export format {fmt!r}")
    if not path.name:  # "", "." or "/": a folder, and no name to put a sidecar beside
        raise DiagnosticsError(f"{path}: cannot write (a folder, not a file name)")
    targets = outputs(fmt, path)
    check_targets(session.project, targets)
    entry = session.store.get(row.key.entry_key)
    if entry is None or row.key.feature not in entry.features:
        raise StoreError(f"{row.key.source}/{row.key.feature}: nothing cached to export")
    source = _Blocks(session.store, entry, row.key.feature)
    prov = provenance(row)
    prov["shape"] = list(source.shape)
    prov["axes"] = _axes(row.key.feature, len(source.shape))
    meta = source.meta
    if meta.bins:
        prov["bins"] = {"unit": meta.bin_unit, "values": list(meta.bins)}
    prov["unit"] = meta.unit
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # exists, but is not a folder
            raise StoreError(f"{path}: cannot write ({path.parent} is not a folder)") from None
        if fmt == "npy":
            files.atomic_write(path, lambda f: write_npy(f, source.shape, source.data()))
            files.atomic_write(
                targets[1],
                lambda f: write_json(f, prov, [("frame_times", _float_rows(source.times()))]),
            )
        elif fmt == "csv":
            header = csv_header(
                row.key.feature,
                source.shape,
                meta.width_names,
                meta.channel_names,
                meta.bins,
                meta.bin_unit,
            )
            files.atomic_write(path, lambda f: write_csv(f, header, source.frames()))
            files.atomic_write(targets[1], lambda f: write_json(f, prov, []))
        else:
            files.atomic_write(
                path,
                lambda f: write_json(
                    f,
                    {"schema_version": 1, "provenance": prov},
                    [
                        ("frame_times", _float_rows(source.times())),  # a first pass
                        ("data", _data_rows(source.data())),
                    ],
                ),
            )
    except files.FileRefused as exc:  # replaced by a device since the check
        raise StoreError(f"{exc.path}: cannot write ({exc.reason})") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path


def _axes(feature: str, ndim: int) -> list[str]:
    if feature == "peaks":
        return ["block", "channel", "min_max"]
    return ["frame", "value"] if ndim == 2 else ["frame", "channel", "value"]


# --- reading: the stored array, a block of frames at a time ----------------------------------


@dataclass(frozen=True)
class _Blocks:
    store: FeatureStore
    entry: StoredEntry
    feature: str

    @property
    def meta(self) -> OutputMeta:
        return self.entry.features[self.feature].meta

    @property
    def shape(self) -> tuple[int, ...]:
        stored = self.entry.features[self.feature]
        if self.feature == "peaks" or stored.channels != 1:
            return (stored.frames, stored.channels, stored.width)
        return (stored.frames, stored.width)

    def _ranges(self) -> Iterator[slice]:
        stored = self.entry.features[self.feature]
        step = max(1, BLOCK_VALUES // max(1, stored.channels * stored.width))
        for start in range(0, stored.frames, step):
            yield slice(start, min(start + step, stored.frames))

    def frames(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(times, values) of each block of frames, in order, values float32 in the exported
        layout; only one block is alive at a time."""
        for frames in self._ranges():
            loaded = self.store.load(self.entry, self.feature, frames=frames)
            data = export_array(self.feature, np.asarray(loaded.data, dtype=np.float32))
            yield np.asarray(loaded.times, dtype=np.float64), data

    def data(self) -> Iterator[np.ndarray]:
        return (values for _, values in self.frames())

    def times(self) -> Iterator[np.ndarray]:
        # a pass of its own where the times come first (json, the npy provenance): keeping
        # the whole time axis for the data pass would grow with the length
        return (times for times, _ in self.frames())


# --- writing: npy, csv, json, each byte-identical to the whole-matrix writers -----------------


def write_npy(f: BinaryIO, shape: tuple[int, ...], blocks: Iterator[np.ndarray]) -> None:
    """What ``np.save(f, whole_float32_array)`` writes, from blocks of frames."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False}
    np.lib.format.write_array_header_1_0(f, {**header, "shape": shape})
    for block in blocks:
        f.write(np.ascontiguousarray(block, dtype="<f4").tobytes())


def csv_header(
    feature: str,
    shape: tuple[int, ...],
    width_names: tuple[str, ...],
    channel_names: tuple[str, ...],
    bins: Sequence[float] = (),
    bin_unit: str = "",
) -> list[str]:
    """``time``, then one name per column: the feature's width names (``f0``,
    ``confidence``), else its bins with their unit (:func:`bin_names`), else ``bin0``...;
    ``CHANNEL:NAME`` per channel when there are several."""
    columns = int(np.prod(shape[1:]))
    width = shape[-1] if len(shape) > 1 else 1
    if not width_names and width > 1:
        width_names = bin_names(feature, width, bins, bin_unit)
    if len(shape) == 3:
        inner = width_names or tuple(str(i) for i in range(shape[2]))
        chans = complete_names(channel_names, shape[1])
        cols = [f"{c}:{w}" for c in chans for w in inner]
    else:
        cols = (
            list(width_names)
            if len(width_names) == columns
            else ([feature] if columns == 1 else [f"bin{i}" for i in range(columns)])
        )
    return ["time", *cols]


def bin_names(feature: str, count: int, bins: Sequence[float], unit: str) -> tuple[str, ...]:
    """Column names that say what each bin is: ``bin5_117.2Hz`` (spectrogram, and any
    feature whose bins are in Hz), ``mel5_247.9Hz`` (a mel band's centre), ``C``, ``C#``...
    (chroma; with more than 12 bins per octave ``C+50c``: cents above the note). Empty when
    the bins are not known (then ``bin0``...)."""
    if len(bins) != count:
        return ()
    if unit == "Hz":
        prefix = "mel" if feature == "mel" else "bin"
        return tuple(f"{prefix}{i}_{hz:.1f}Hz" for i, hz in enumerate(bins))
    if unit == "pitch class":
        names = []
        for b in bins:
            semitones = float(b) * 12.0 / count
            note = int(np.floor(semitones + 1e-9))
            cents = round((semitones - note) * 100)
            names.append(PITCH_CLASSES[note % 12] + (f"+{cents}c" if cents else ""))
        return tuple(names)
    return ()


def write_csv(
    f: BinaryIO, header: list[str], frames: Iterator[tuple[np.ndarray, np.ndarray]]
) -> None:
    """A header row, then per frame its time (``%.6f``) and values (``%.7g``), CRLF-ended as
    ``csv.writer`` ends them. Numbers never need quoting, so one ``%`` per row formats them
    (the same C formatting as ``f"{v:.7g}"``, without a Python call per value)."""
    text = io.StringIO()
    csv.writer(text).writerow(header)
    f.write(text.getvalue().encode("utf-8"))
    for times, block in frames:
        flat = block.reshape(block.shape[0], -1)
        row = ",".join(["%.7g"] * flat.shape[1])
        ts = times.tolist()
        if row:
            lines = [
                f"{t:.6f},{row % tuple(v)}\r\n" for t, v in zip(ts, flat.tolist(), strict=True)
            ]
        else:
            lines = [f"{t:.6f}\r\n" for t in ts]
        f.write("".join(lines).encode("utf-8"))


Rows = Iterator[list[str]]  # the texts of a list's items, in chunks, each at its nesting level


def write_json(f: BinaryIO, head: dict[str, Any], tail: list[tuple[str, Rows]]) -> None:
    """What ``json.dumps({**head, key: list, ...}, indent=1)`` writes, with each list of the
    ``tail`` written chunk by chunk as its items' texts arrive."""
    text = json.dumps(head, indent=1)
    if not tail:
        f.write(text.encode("utf-8"))
        return
    f.write((text[:-2] if head else "{").encode("utf-8"))  # without its closing "\n}"
    for i, (key, chunks) in enumerate(tail):
        sep = ",\n " if head or i else "\n "
        f.write(f"{sep}{json.dumps(key)}: ".encode())
        _write_list(f, chunks, level=1)
    f.write(b"\n}")


def _write_list(f: BinaryIO, chunks: Rows, level: int) -> None:
    """A list at nesting ``level`` (json.dumps, indent=1): ``[``, one item per line, ``]``."""
    inner = "\n" + " " * (level + 1)
    started = False
    for items in chunks:
        if not items:
            continue
        lead = ("," if started else "[") + inner
        f.write((lead + ("," + inner).join(items)).encode("utf-8"))
        started = True
    f.write(("\n" + " " * level + "]" if started else "[]").encode("utf-8"))


def _float_rows(blocks: Iterator[np.ndarray], level: int = 1) -> Rows:
    """The items of a list of floats at ``level``; one C-encoded text per block (its items
    joined by this level's separator, which :func:`_write_list` also puts between chunks)."""
    sep = ",\n" + " " * (level + 1)
    for block in blocks:
        values = block.tolist()
        yield [json.dumps(values, separators=(sep, ": "))[1:-1]] if values else []


def _data_rows(blocks: Iterator[np.ndarray]) -> Rows:
    """Each frame as json.dumps(indent=1) spells it inside the top-level "data" list."""
    for block in blocks:
        yield [_nested(frame, level=2) for frame in block.tolist()]


def _nested(value: list[Any], level: int) -> str:
    if not value:
        return "[]"
    inner = "\n" + " " * (level + 1)
    if isinstance(value[0], list):
        items = [_nested(v, level + 1) for v in value]
        return "[" + inner + ("," + inner).join(items) + "\n" + " " * level + "]"
    # one C call per innermost list: its items joined by the separator of this level
    body = json.dumps(value, separators=("," + inner, ": "))[1:-1]
    return "[" + inner + body + "\n" + " " * level + "]"
