"""Export of one row's feature data, with its provenance (interface §4).

``npy`` holds a float32 array (frames, channels): bins for image features, 1 for scalar
features, 2 for pitch (f0, confidence); ``peaks`` keeps (blocks, audio channels, 2). With
``channel_mode: per_channel`` a third axis keeps the channels: (frames, channels, width).
``npy`` and ``csv`` get a ``PATH.provenance.json`` beside them; ``json`` holds it inline.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from diagnostics_app.core.errors import DiagnosticsError, StoreError

if TYPE_CHECKING:
    from diagnostics_app.core.diagnostics import Row
    from diagnostics_app.core.session import Session


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


def export_row(session: Session, row: Row, fmt: str, path: Path) -> Path:
    entry = session.store.get(row.key.entry_key)
    if entry is None or row.key.feature not in entry.features:
        raise StoreError(f"{row.key.source}/{row.key.feature}: nothing cached to export")
    loaded = session.store.load(entry, row.key.feature)
    data = export_array(row.key.feature, np.asarray(loaded.data, dtype=np.float32))
    times = np.asarray(loaded.times, dtype=np.float64)
    prov = provenance(row)
    prov["shape"] = list(data.shape)
    prov["axes"] = _axes(row.key.feature, data.ndim)
    meta = loaded.meta
    if meta.bins:
        prov["bins"] = {"unit": meta.bin_unit, "values": list(meta.bins)}
    prov["unit"] = meta.unit
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # exists, but is not a folder
            raise StoreError(f"{path}: cannot write ({path.parent} is not a folder)") from None
        if fmt == "npy":
            _atomic(path, lambda f: np.save(f, data, allow_pickle=False))
            _write_json(
                path.with_name(path.name + ".provenance.json"),
                {**prov, "frame_times": times.tolist()},
            )
        elif fmt == "csv":
            _atomic(
                path,
                lambda f: _write_csv(
                    f, row.key.feature, data, times, meta.width_names, meta.channel_names
                ),
            )
            _write_json(path.with_name(path.name + ".provenance.json"), prov)
        elif fmt == "json":
            _write_json(
                path,
                {
                    "schema_version": 1,
                    "provenance": prov,
                    "frame_times": times.tolist(),
                    "data": data.tolist(),
                },
            )
        else:
            raise DiagnosticsError(f"unknown export format {fmt!r}")
    except OSError as exc:
        raise StoreError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path


def _axes(feature: str, ndim: int) -> list[str]:
    if feature == "peaks":
        return ["block", "channel", "min_max"]
    return ["frame", "value"] if ndim == 2 else ["frame", "channel", "value"]


def _write_csv(
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
    text = _TextWrapper(f)
    writer = csv.writer(text)
    writer.writerow(["time", *cols])
    for t, values in zip(times, flat, strict=False):
        writer.writerow([f"{t:.6f}", *(f"{v:.7g}" for v in values)])


class _TextWrapper:
    def __init__(self, f: Any) -> None:
        self.f = f

    def write(self, s: str) -> int:
        return int(self.f.write(s.encode("utf-8")))


def _write_json(path: Path, obj: Any) -> None:
    _atomic(path, lambda f: f.write(json.dumps(obj, indent=1).encode("utf-8")))


def _atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
