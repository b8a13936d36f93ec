"""Reading a feature whose row has splice parts (see :mod:`.splicing`): its frames are the base
file's with each part's frames in place of the base frames it replaces, exactly
:func:`~diagnostics_app.core.splice.apply_splices` of the base data and the parts.

The composition works on the *stored* values (uint16 for u16db, float32 otherwise) and decodes
once at the end, so a spliced u16db feature decodes to the same float32 values as a full write
of the same frames (the u16db encoding is element-wise). A range of frames reads only the base
frames and the parts it overlaps: the base file is memory-mapped and sliced, parts are small.
An unspliced feature is read by :func:`~.arrays.load_feature` as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from diagnostics_app.core.errors import StoreError
from diagnostics_app.core.store.arrays import (
    F32,
    F64,
    U16,
    load_feature,
    load_times,
    loaded,
    read_array,
)
from diagnostics_app.core.store.records import (
    MALFORMED_SPLICES,
    LoadedFeature,
    SplicePart,
    StoredFeature,
)


@dataclass(frozen=True)
class Run:
    """A run of a spliced feature's frames: ``[cur0, cur1)`` of the spliced data, which is
    ``[base0, base1)`` of the base file (``part`` None) or the whole of ``part`` (then
    ``[base0, base1)`` is what the part replaces)."""

    cur0: int
    cur1: int
    base0: int
    base1: int
    part: SplicePart | None


def runs(sf: StoredFeature) -> list[Run]:
    """The runs of ``sf``'s frames in order (a part that removes frames and adds none is an
    empty run: it still marks where the base skips)."""
    out: list[Run] = []
    base = cur = 0
    for p in sf.splices:
        if p.first > base:
            out.append(Run(cur, cur + p.first - base, base, p.first, None))
            cur += p.first - base
        out.append(Run(cur, cur + p.frames, p.first, p.stop, p))
        cur += p.frames
        base = p.stop
    end = sf.base_frames
    if end > base:
        out.append(Run(cur, cur + end - base, base, end, None))
    return out


def parts_problem(sf: StoredFeature) -> str | None:
    """Why ``sf``'s parts cannot be the parts this store wrote, or None: a malformed column
    (see ``records.splices_from_json``), or parts that are not ascending, disjoint, inside the
    base frames. An index edited behind the store's back must fail its row in one line, not
    compose frames from nonsense (the base file's stamp alone would pass it)."""
    stop, base = 0, sf.base_frames
    for p in sf.splices:
        if p.path == MALFORMED_SPLICES:
            return f"its splices column in the index is malformed ({p.stamp}); not read"
        if min(p.first, p.removed, p.frames, p.nbytes) < 0 or p.first < stop or p.stop > base:
            return (
                f"its splice part {p.path!r} (base frames {p.first}-{p.stop}, {p.frames} "
                f"frames) does not fit its {base} base frames and other parts; not read"
            )
        if (p.times_path is None) != (sf.times_path is None):
            has = "has no frame times" if p.times_path is None else "has frame times"
            return f"its splice part {p.path!r} {has}, unlike its feature; not read"
        stop = p.stop
    return None


def stored_dtype(sf: StoredFeature) -> np.dtype[Any]:
    return U16 if sf.encoding == "u16db" else F32


class Reader:
    """Reads ranges of one spliced feature's stored values or times (see the module)."""

    def __init__(
        self, root: Path, sf: StoredFeature, what: str, why_missing: Callable[[], str]
    ) -> None:
        self.root, self.sf, self.what, self.why_missing = root, sf, what, why_missing
        problem = parts_problem(sf)
        if problem is not None:
            raise StoreError(f"{root}: {what}: {problem}")
        self.runs = runs(sf)

    def _base(self, times: bool) -> np.ndarray:
        sf, n = self.sf, self.sf.base_frames
        if times:
            assert sf.times_path is not None
            return read_array(self.root, sf.times_path, F64, (n,), True, self.what, self.why)
        shape = (n, sf.channels, sf.width)
        return read_array(self.root, sf.path, stored_dtype(sf), shape, True, self.what, self.why)

    def _part(self, part: SplicePart, times: bool) -> np.ndarray:
        sf = self.sf
        if times:
            assert part.times_path is not None
            return read_array(
                self.root, part.times_path, F64, (part.frames,), True, self.what, self.why
            )
        shape = (part.frames, sf.channels, sf.width)
        return read_array(self.root, part.path, stored_dtype(sf), shape, True, self.what, self.why)

    def why(self) -> str:
        return self.why_missing()

    def raw(self, start: int, stop: int, times: bool = False) -> np.ndarray:
        """Frames ``[start, stop)`` of the spliced data, as stored (a new array); ``times``:
        the frame times instead (a timed feature's)."""
        base = self._base(times)  # read (header checked) even for a range of parts only
        pieces: list[np.ndarray] = []
        for run in self.runs:
            lo, hi = max(start, run.cur0), min(stop, run.cur1)
            if lo >= hi:
                continue
            if run.part is None:
                off = run.base0 - run.cur0
                pieces.append(base[lo + off : hi + off])
            else:
                pieces.append(self._part(run.part, times)[lo - run.cur0 : hi - run.cur0])
        if not pieces:
            return np.array(base[:0])
        return np.concatenate(pieces, axis=0)


def load_any(
    root: Path,
    stored: StoredFeature,
    what: str,
    mmap: bool,
    frames: slice | None,
    why_missing: Callable[[], str],
) -> LoadedFeature:
    """A feature's values and times, spliced or not (see ``FeatureStore.load``)."""
    if not stored.splices:
        return load_feature(root, stored, what, mmap, frames, why_missing)
    reader = Reader(root, stored, what, why_missing)
    sel = frames if frames is not None else slice(None)
    start, stop, stride = sel.indices(stored.frames)

    def pick(times: bool) -> np.ndarray:
        if stride > 0:  # only the frames asked for are composed
            return reader.raw(start, max(start, stop), times)[::stride]
        return reader.raw(0, stored.frames, times)[sel]

    return loaded(stored, pick(False), pick(True) if stored.times_path is not None else None, sel)


def load_any_times(
    root: Path, stored: StoredFeature, what: str, why_missing: Callable[[], str]
) -> np.ndarray:
    """A feature's frame times alone, spliced or not (see ``FeatureStore.load_times``)."""
    if not stored.splices:
        return load_times(root, stored, what, why_missing)
    reader = Reader(root, stored, what, why_missing)
    if stored.times_path is not None:
        return reader.raw(0, stored.frames, times=True)
    reader.raw(0, 0)  # the base file's header is checked, as for an unspliced feature
    step = stored.meta.frame_step or 0.0
    return stored.meta.frame_start + step * np.arange(stored.frames, dtype=np.float64)
