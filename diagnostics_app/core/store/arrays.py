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
    The pass writer encodes frames as they come when the engine told it a feature's layout
    before the first frame (``PassWriter.expect``: every run that knows its outputs at its
    start, all the built-ins); for a run that knows them only at the end, frames are streamed as
    float32 and transcoded at ``close`` in chunks of 1 MiB (:func:`transcode_u16`). Both give
    the same bytes: the encoding is element-wise.
    The file's real encoding is a column of the feature row, so metas round-trip unchanged.

Checksums and stamps
    Each file's checksum (``x3:`` + XXH3-128 of the array bytes after the ``.npy`` header;
    ``b2:`` + BLAKE2b-128 in stores written before schema 9, still verified: see
    :mod:`core.hashing`) is computed while it is written, and its stamp
    (``size:mtime_ns:inode``) is taken once it is complete; both go into the feature's row
    (:mod:`.verify` checks files against them).

Reading never unpickles, never follows a symbolic link and reads only paths the index may
name (:mod:`.paths`): the header is parsed here and the values are memory-mapped when asked.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

import numpy as np

from diagnostics_app.core.calculators.base import OutputMeta
from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.hashing import Checksum
from diagnostics_app.core.store.causes import one_line, os_cause
from diagnostics_app.core.store.paths import (
    DATA_DIR,
    TMP_DIR,
    index_path_ok,
    is_regular,
    open_no_follow,
    refusal,
)
from diagnostics_app.core.store.records import LoadedFeature, StoredFeature

__all__ = ["DATA_DIR", "TMP_DIR"]  # re-exported: the store's modules import them from here

U16_LEVELS: Final = 65535

_HEADER_BYTES: Final = 128  # fixed .npy header area (magic + version + length + dict), 64-aligned
_CHUNK_BYTES: Final = 1 << 20
F32: Final = np.dtype("<f4")
U16: Final = np.dtype("<u2")
F64: Final = np.dtype("<f8")


def stamp_text(st: os.stat_result) -> str:
    """What identifies a file's current state without reading it: size, mtime, inode."""
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def npy_header(dtype: np.dtype[Any], shape: tuple[int, ...]) -> bytes:
    """The exact header :class:`ArrayWriter` writes for ``(dtype, shape)``."""
    return _npy_header(dtype, shape)


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


# values per step of the u16 encoding (a 1 MiB float64 temporary, reused): each numpy call
# releases and retakes the GIL, which a pass's other threads want often, so 8x fewer calls than
# with 16 Ki values made analyze ~4 % faster (bench/analysis.py) for the same codes
_ENCODE_CHUNK: Final = 1 << 17


def encode_u16(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    span = hi - lo
    if span <= 0:
        return np.zeros(values.shape, U16)
    flat = np.ascontiguousarray(values).reshape(-1)
    out = np.empty(flat.shape, U16)
    x = np.empty(min(flat.size, _ENCODE_CHUNK), np.float64)  # the one temporary, reused
    scale = U16_LEVELS / span
    for start in range(0, flat.size, _ENCODE_CHUNK):
        part = flat[start : start + _ENCODE_CHUNK]
        t = x[: part.size]
        # in float64: fmax maps NaN and -inf to lo, fmin +inf to hi (as nan_to_num, then clip)
        np.fmax(part, lo, out=t)
        np.fmin(t, hi, out=t)
        t -= lo
        t *= scale
        np.rint(t, out=out[start : start + _ENCODE_CHUNK], casting="unsafe")  # whole numbers
    return out.reshape(values.shape)


def decode_u16(raw: np.ndarray, lo: float, hi: float) -> np.ndarray:
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
        self.checksum = ""  # set by finish()
        self._hash = Checksum()  # of the values as written, after the header
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
            data = encode_u16(data, *self.value_range)
        if data.size:
            self._file.write(data.data)
            self._hash.update(data.data)
        self.frames += data.shape[0]

    def finish(self, durable: bool = True) -> None:
        f = self._file
        f.seek(0)
        f.write(_npy_header(self.dtype, (self.frames, self.channels, self.width)))
        f.flush()
        if durable:
            os.fsync(f.fileno())
        f.close()
        self.checksum = self._hash.text()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        unlink(self.path)


def write_array(
    path: Path, values: np.ndarray, value_range: tuple[float, float] | None, *, durable: bool
) -> tuple[str, str]:
    """Write frames ``(n, channels, width)`` through an :class:`ArrayWriter`, 1 MiB of input
    at a time (so the u16 encoding's float64 temporary stays small); the file's encoding and
    checksum."""
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
    return writer.encoding, writer.checksum


def transcode_u16(src: Path, dst: Path, value_range: tuple[float, float]) -> str:
    """Write the float32 file ``src`` again as u16db in ``dst``, reading it memory-mapped;
    the checksum of ``dst``."""
    values = np.load(src, mmap_mode="r", allow_pickle=False)
    try:
        return write_array(dst, values, value_range, durable=True)[1]
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


def write_times(path: Path, times: np.ndarray, *, durable: bool) -> str:
    """Write contiguous float64 frame times (see :func:`frame_times`); the file's checksum
    (``np.save`` writes a contiguous array's bytes as they are, after its header)."""
    with path.open("wb") as f:
        np.save(f, times, allow_pickle=False)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    h = Checksum()
    h.update(times.tobytes())  # frame times: small
    return h.text()


@dataclass
class StagedFeature:
    """A feature's files, written and waiting for the transaction that references them."""

    feature: str
    meta: OutputMeta
    encoding: str
    frames: int
    paths: list[Path]  # data file, then the times file if any
    checksums: list[str]  # one per path
    nbytes: int = 0
    stamps: str | None = None

    def measure(self) -> None:
        """Sizes and stamps of the finished files (a rename into ``data/`` keeps both)."""
        stats = [p.stat() for p in self.paths]
        self.nbytes = sum(st.st_size for st in stats)
        self.stamps = ",".join(map(stamp_text, stats))

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
            self.stamps,
            ",".join(self.checksums),
            None,  # no splices: a fresh file holds every frame
        )


def read_npy_header(f: BinaryIO) -> tuple[np.dtype[Any], tuple[int, ...], int]:
    """The dtype, shape and data offset of an open ``.npy`` file in C order; ValueError (or
    EOFError) if it is not one. Reads only the header."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    if fortran:
        raise ValueError("the array is in Fortran order")
    return dtype, tuple(shape), f.tell()


def describe(dtype: np.dtype[Any], shape: tuple[int, ...]) -> str:
    """``float32 (10, 2)``: how messages name an array's layout."""
    return f"{dtype.name} {shape}"


def expected_size(offset: int, dtype: np.dtype[Any], shape: tuple[int, ...]) -> int:
    return offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


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
    dtype = U16 if stored.encoding == "u16db" else F32
    shape = (stored.frames, stored.channels, stored.width)
    raw = read_array(root, stored.path, dtype, shape, mmap, what, why_missing)
    sel = frames if frames is not None else slice(None)
    times = None
    if stored.times_path is not None:
        times = read_array(root, stored.times_path, F64, (stored.frames,), mmap, what, why_missing)[
            sel
        ]
    return loaded(stored, raw[sel], times, sel)


def loaded(
    stored: StoredFeature, raw: np.ndarray, times: np.ndarray | None, sel: slice
) -> LoadedFeature:
    """The frames ``sel`` of a feature as read (``raw``: in the stored encoding; ``times``:
    of its times file, None for a uniform axis) decoded to float32 with their times: the one
    rule for a base file alone and for a spliced feature (``.spliced``)."""
    meta = stored.meta
    if stored.encoding == "u16db":
        lo, hi = meta.value_range or (0.0, 0.0)
        data = decode_u16(raw, lo, hi)
    else:
        data = raw
    if times is None:
        # only the frames asked for (a block of an export is no reason to build the whole
        # axis); element for element the same values as start + step * k over all frames
        first, stop, stride = sel.indices(stored.frames)
        step = meta.frame_step or 0.0
        times = meta.frame_start + step * np.arange(first, stop, stride, dtype=np.float64)
    return LoadedFeature(meta, data, np.asarray(times, dtype=np.float64))


def load_times(
    root: Path, stored: StoredFeature, what: str, why_missing: Callable[[], str]
) -> np.ndarray:
    """A feature's frame times alone, float64 ``(frames,)``: a read-only memory map of its
    times file, or the uniform axis computed (its values are never read)."""
    if stored.times_path is None:
        # the frame count is the index's word, checked against the data file's header first:
        # a tampered count is a corrupt entry, not an axis of a trillion frames to allocate
        dtype = U16 if stored.encoding == "u16db" else F32
        shape = (stored.frames, stored.channels, stored.width)
        read_array(root, stored.path, dtype, shape, True, what, why_missing)
        step = stored.meta.frame_step or 0.0
        return stored.meta.frame_start + step * np.arange(stored.frames, dtype=np.float64)
    return read_array(root, stored.times_path, F64, (stored.frames,), True, what, why_missing)


def read_array(
    root: Path,
    rel: str,
    dtype: np.dtype[Any],
    shape: tuple[int, ...],
    mmap: bool,
    what: str,
    why_missing: Callable[[], str],
) -> np.ndarray:
    """The array of the index path ``rel``, checked against the layout the index records."""
    if not index_path_ok(rel):
        raise StoreError(f"{root}: {refusal(rel)} for {what}; not read")
    path = root / rel
    try:
        fd = open_no_follow(str(path))
    except FileNotFoundError:
        raise StoreError(f"{path}: array file of {what}: {why_missing()}") from None
    except OSError as exc:
        raise StoreError(
            f"{path}: cannot read the array file of {what}: {one_line(str(exc))[:200]}"
            + (" (a symbolic link: refused)" if os.path.islink(path) else "")
        ) from None
    st = os.fstat(fd)
    if not is_regular(st.st_mode):  # before fdopen, which raises for a folder
        os.close(fd)
        raise StoreError(f"{path}: corrupt array file of {what}: not a regular file")
    with os.fdopen(fd, "rb") as f:
        try:
            size = st.st_size
            got_dtype, got_shape, offset = read_npy_header(f)
            if got_dtype != dtype or got_shape != shape:
                raise ValueError(
                    f"holds {describe(got_dtype, got_shape)}, the index says "
                    f"{describe(dtype, shape)}"
                )
            need = expected_size(offset, dtype, shape)
            if size != need:
                raise ValueError(f"is {size:,} bytes, expected {need:,}")
            if need == offset:
                return np.empty(shape, dtype)
            if mmap:
                return np.memmap(f, dtype=dtype, mode="r", offset=offset, shape=shape)
            return np.fromfile(f, dtype=dtype, count=int(np.prod(shape))).reshape(shape)
        except (OSError, ValueError, EOFError) as exc:
            raise StoreError(
                f"{path}: corrupt array file of {what}: {one_line(str(exc))[:200]}"
            ) from None


def finish_feature(
    arr: ArrayWriter,
    calculator: str,
    feature: str,
    meta: OutputMeta,
    times: np.ndarray | None,
    new_path: Callable[[str], Path],
    verb: str,
) -> StagedFeature:
    """A written feature's files as they are stored: the data in its stored encoding (a
    float32 run that should be u16db is transcoded into ``new_path(".npy")``), then its frame
    times (``new_path(".times.npy")``), each fsynced, with their checksums (sizes and stamps
    not measured yet). The one rule for a store's pass writer and a cluster worker's staging
    sink. On failure nothing it wrote is left; an OSError is a StoreError naming the file
    (``verb``: what the caller does, "write" or "stage")."""
    what = f"{calculator}/{feature}"
    item = StagedFeature(feature, meta, arr.encoding, 0, [arr.path], [""])
    path = arr.path
    try:
        check_layout(what, arr.channels, arr.width, meta)
        arr.finish()
        item.frames = arr.frames
        item.checksums[0] = arr.checksum
        value_range = u16_range(meta)
        if arr.value_range is not None and arr.value_range != value_range:
            raise ValueError(
                f"{what}: stored as u16db over {arr.value_range} as its run declared at its "
                f"start, but its final meta says {value_range or 'float32'}"
            )
        if value_range is not None and arr.value_range is None:
            path = new_path(".npy")
            item.paths[0] = path
            item.checksums[0] = transcode_u16(arr.path, path, value_range)
            unlink(arr.path)
            item.encoding = "u16db"
        t = frame_times(times, arr.frames, what)
        if t is not None:
            path = new_path(".times.npy")
            item.paths.append(path)
            item.checksums.append(write_times(path, t, durable=True))
    except BaseException as exc:
        arr.discard()
        unlink_all(item.paths)
        if isinstance(exc, OSError):
            raise StoreError(f"{path}: cannot {verb} feature data: {os_cause(exc)}") from None
        raise
    return item


class OpenFeatures:
    """The growing files of a pass's features, by (calculator, feature): the one rule for a
    sink's ``write`` (layout check, the file opened at the first frames, an OSError a
    StoreError naming the file) and for dropping what a calculator wrote but did not declare.
    Used by the store's pass writer and a cluster worker's staging sink; ``new_path`` names a
    new file, ``encoding_of`` gives a feature's u16db range (None: float32), ``verb`` is what
    the caller does ("write" or "stage")."""

    def __init__(
        self,
        new_path: Callable[[], Path],
        verb: str,
        encoding_of: Callable[[str, str], tuple[float, float] | None] = lambda c, f: None,
    ) -> None:
        self._new_path, self._verb, self._encoding_of = new_path, verb, encoding_of
        self.open: dict[tuple[str, str], ArrayWriter] = {}

    def writer(self, calculator: str, feature: str, channels: int, width: int) -> ArrayWriter:
        arr = self.open.get((calculator, feature))
        if arr is None:
            path = self._new_path()
            try:
                arr = ArrayWriter(path, channels, width, self._encoding_of(calculator, feature))
            except OSError as exc:
                raise StoreError(
                    f"{path}: cannot {self._verb} feature data: {os_cause(exc)}"
                ) from None
            self.open[(calculator, feature)] = arr
        return arr

    def write(self, calculator: str, feature: str, frames: np.ndarray) -> None:
        """Append frames ``(n, channels, width)`` of one feature."""
        if frames.ndim != 3:
            raise ValueError(f"{calculator}/{feature}: frames must be (n, channels, width)")
        arr = self.writer(calculator, feature, frames.shape[1], frames.shape[2])
        try:
            arr.append(frames)
        except OSError as exc:
            raise StoreError(
                f"{arr.path}: cannot {self._verb} feature data: {os_cause(exc)}"
            ) from None

    def take(self, calculator: str, feature: str, meta: OutputMeta) -> ArrayWriter:
        """A declared feature's file, out of the open ones (an empty one when no frame was
        written)."""
        arr = self.open.pop((calculator, feature), None)
        if arr is None:
            arr = self.writer(calculator, feature, meta.channels, meta.width)
            del self.open[(calculator, feature)]
        return arr

    def discard(self, calculator: str, keep: Iterable[str] = ()) -> None:
        """Delete the files of ``calculator``'s features not in ``keep`` (written but not
        declared, or left after its close)."""
        kept = set(keep)
        for (calc, feature), arr in list(self.open.items()):
            if calc == calculator and feature not in kept:
                arr.discard()
                del self.open[(calc, feature)]

    def discard_all(self) -> None:
        for arr in self.open.values():
            arr.discard()
        self.open.clear()
