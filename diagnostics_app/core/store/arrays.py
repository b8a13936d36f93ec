"""Array files: one ``.npy`` per feature (plus one for its frame times), written and read here.

Two producers write features, the engine's pass writer (frames streamed, their number known
only at the end) and the bulk import (whole arrays at once), and both must leave the same
bytes (``tests/core/test_store_bulk.py`` compares them), so both go through ONE writer,
:class:`ArrayWriter`: the file starts with a fixed 128-byte header area that
:meth:`~ArrayWriter.finish` rewrites with the final shape (memory stays flat whatever the
length of the source), values are float32 or u16db, and the file is fsynced before anything
may reference it.

Storage ``"u16db"``
    dB values are quantised linearly to uint16 over ``meta.value_range = (lo, hi)``:
    ``q = round((clip(x, lo, hi) - lo) / step)`` with ``step = (hi - lo) / 65535``, decoded as
    ``lo + q * step``; the error is at most ``step / 2`` (0.00061 dB for a -80..0 dB range).
    NaN is stored as ``lo``. A u16db feature without a value range is stored as float32.
    *Deviation:* the sink learns a feature's storage only from the metas handed to ``close``
    (the ``FeatureSink`` protocol), so frames are streamed as float32 and transcoded at ``close``
    in chunks of 1 MiB (memory stays flat; one extra pass over the data, from the page cache).
    The file's real encoding is a column of the feature row, so metas round-trip unchanged.

Reading never unpickles (``np.load(..., allow_pickle=False)``) and memory-maps when asked.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.store.causes import one_line
from diagnostics_app.core.store.records import LoadedFeature, StoredFeature

DATA_DIR: Final = "data"
TMP_DIR: Final = "tmp"
U16_LEVELS: Final = 65535

_HEADER_BYTES: Final = 128  # fixed .npy header area (magic + version + length + dict), 64-aligned
_CHUNK_BYTES: Final = 1 << 20
F32: Final = np.dtype("<f4")
U16: Final = np.dtype("<u2")


def _npy_header(dtype: np.dtype[Any], shape: tuple[int, ...]) -> bytes:
    """A version 1.0 ``.npy`` header padded to exactly ``_HEADER_BYTES``."""
    text = repr(
        {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    )
    room = _HEADER_BYTES - 10
    if len(text) + 1 > room:
        raise ValueError(f"array shape {shape} does not fit the reserved .npy header")
    body = (text + " " * (room - len(text) - 1) + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", room) + body


def _encode_u16(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    span = hi - lo
    if span <= 0:
        return np.zeros(values.shape, U16)
    x = np.array(values, dtype=np.float64)  # the one temporary, worked on in place
    np.nan_to_num(x, copy=False, nan=lo, posinf=hi, neginf=lo)
    np.clip(x, lo, hi, out=x)
    x -= lo
    x *= U16_LEVELS / span
    np.rint(x, out=x)
    return x.astype(U16)


def _decode_u16(raw: np.ndarray, lo: float, hi: float) -> np.ndarray:
    out = np.empty(raw.shape, np.float32)
    np.multiply(raw, np.float32((hi - lo) / U16_LEVELS), out=out)
    out += np.float32(lo)
    return out


def u16_range(meta: OutputMeta) -> tuple[float, float] | None:
    """The range a feature is quantised over; None when it is stored as float32."""
    if meta.storage == "u16db" and meta.value_range is not None:
        return float(meta.value_range[0]), float(meta.value_range[1])
    return None


def fsync_dir(path: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover - directories cannot be opened there
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError:
        return False  # e.g. still mapped by a reader on Windows: left for a later sweep
    return True


def unlink_all(paths: Iterable[Path]) -> None:
    for path in paths:
        unlink(path)


def check_layout(what: str, channels: int, width: int, meta: OutputMeta) -> None:
    if (channels, width) != (meta.channels, meta.width):
        raise ValueError(
            f"{what}: frames have {channels} channels × {width} values, "
            f"the meta says {meta.channels} × {meta.width}"
        )


class ArrayWriter:
    """A ``.npy`` file of frames ``(n, channels, width)`` that grows by appending; the header
    is final only after :meth:`finish`. Frames are taken as float32 (what every producer
    hands over) and stored as float32, or as u16db when a ``value_range`` is given."""

    def __init__(
        self, path: Path, channels: int, width: int, value_range: tuple[float, float] | None
    ) -> None:
        self.path = path
        self.channels = channels
        self.width = width
        self.value_range = value_range
        self.encoding = "float32" if value_range is None else "u16db"
        self.dtype = F32 if value_range is None else U16
        self.frames = 0
        self._file = path.open("wb")
        try:
            self._file.write(_npy_header(self.dtype, (0, channels, width)))
        except BaseException:
            self.discard()
            raise

    def append(self, frames: np.ndarray) -> None:
        data = np.ascontiguousarray(frames, dtype=F32)
        if data.ndim != 3 or data.shape[1:] != (self.channels, self.width):
            raise ValueError(
                f"frames of shape {data.shape} after frames of shape "
                f"(n, {self.channels}, {self.width})"
            )
        if self.value_range is not None:
            data = _encode_u16(data, *self.value_range)
        if data.size:
            self._file.write(data.data)
        self.frames += data.shape[0]

    def finish(self, durable: bool = True) -> None:
        f = self._file
        f.seek(0)
        f.write(_npy_header(self.dtype, (self.frames, self.channels, self.width)))
        f.flush()
        if durable:
            os.fsync(f.fileno())
        f.close()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        unlink(self.path)


def write_array(
    path: Path, values: np.ndarray, value_range: tuple[float, float] | None, *, durable: bool
) -> str:
    """Write frames ``(n, channels, width)`` through an :class:`ArrayWriter`, 1 MiB of input
    at a time (so the u16 encoding's float64 temporary stays small); the file's encoding."""
    n, channels, width = values.shape
    writer = ArrayWriter(path, channels, width, value_range)
    try:
        step = max(1, _CHUNK_BYTES // max(1, channels * width * 4))
        for start in range(0, n, step):
            writer.append(values[start : start + step])
        writer.finish(durable)
    except BaseException:
        writer.discard()
        raise
    return writer.encoding


def transcode_u16(src: Path, dst: Path, value_range: tuple[float, float]) -> None:
    """Write the float32 file ``src`` again as u16db in ``dst``, reading it memory-mapped."""
    values = np.load(src, mmap_mode="r", allow_pickle=False)
    try:
        write_array(dst, values, value_range, durable=True)
    finally:
        del values  # release the mapping before the source is unlinked


def frame_times(times: np.ndarray | None, frames: int, what: str) -> np.ndarray | None:
    """Explicit frame times as contiguous float64, checked to be one per frame."""
    if times is None:
        return None
    t = np.ascontiguousarray(np.asarray(times, dtype="<f8").reshape(-1))
    if len(t) != frames:
        raise ValueError(f"{what}: {len(t)} frame times for {frames} frames")
    return t


def write_times(path: Path, times: np.ndarray, *, durable: bool) -> None:
    with path.open("wb") as f:
        np.save(f, times, allow_pickle=False)
        if durable:
            f.flush()
            os.fsync(f.fileno())


@dataclass
class StagedFeature:
    """A feature's files, written and waiting for the transaction that references them."""

    feature: str
    meta: OutputMeta
    encoding: str
    frames: int
    paths: list[Path]  # data file, then the times file if any
    nbytes: int = 0

    def measure(self) -> None:
        self.nbytes = sum(p.stat().st_size for p in self.paths)

    def row(self) -> tuple[Any, ...]:
        """Its ``features`` row (see :mod:`.index`), once its files are in ``data/``."""
        names = [p.name for p in self.paths]
        return (
            self.feature,
            f"{DATA_DIR}/{names[0]}",
            f"{DATA_DIR}/{names[1]}" if len(names) > 1 else None,
            self.meta,
            self.encoding,
            self.frames,
            self.meta.channels,
            self.meta.width,
            self.nbytes,
        )


def load_feature(
    root: Path,
    stored: StoredFeature,
    what: str,
    mmap: bool,
    frames: slice | None,
    why_missing: Callable[[], str],
) -> LoadedFeature:
    """A feature's values decoded to float32 and its frame times (see ``FeatureStore.load``);
    ``why_missing`` explains a missing file (the index is asked only then)."""
    meta = stored.meta
    dtype = U16 if stored.encoding == "u16db" else F32
    shape = (stored.frames, stored.channels, stored.width)
    raw = _read_array(root / stored.path, dtype, shape, mmap, what, why_missing)
    sel = frames if frames is not None else slice(None)
    part = raw[sel]
    if stored.encoding == "u16db":
        lo, hi = meta.value_range or (0.0, 0.0)
        data = _decode_u16(part, lo, hi)
    else:
        data = part
    if stored.times_path is not None:
        path = root / stored.times_path
        times = _read_array(path, np.dtype("<f8"), (stored.frames,), mmap, what, why_missing)[sel]
    else:
        times = (
            meta.frame_start + (meta.frame_step or 0.0) * np.arange(stored.frames, dtype=np.float64)
        )[sel]
    return LoadedFeature(meta, data, np.asarray(times, dtype=np.float64))


def _read_array(
    path: Path,
    dtype: np.dtype[Any],
    shape: tuple[int, ...],
    mmap: bool,
    what: str,
    why_missing: Callable[[], str],
) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise StoreError(f"{path}: array file of {what}: {why_missing()}") from None
    except (OSError, ValueError, EOFError) as exc:
        raise StoreError(
            f"{path}: corrupt array file of {what}: {one_line(str(exc))[:200]}"
        ) from None
    if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.shape != shape:
        got = f"{getattr(arr, 'dtype', '?')} {getattr(arr, 'shape', '?')}"
        raise StoreError(
            f"{path}: corrupt array file of {what}: holds {got}, the index says {dtype} {shape}"
        )
    return arr
