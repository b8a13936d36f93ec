"""INTERIM (until the compare branch lands): comparison and provenance stand-ins."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from diagnostics_app.core.store import LoadedFeature, StoredEntry


@dataclass(frozen=True)
class Comparison:
    verdict: str
    max_abs: float

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "max_abs": self.max_abs}

    def summary_text(self) -> str:
        return f"max |diff| {self.max_abs:g}"


def compare_features(old: LoadedFeature, new: LoadedFeature) -> Comparison:
    if old.data.shape != new.data.shape:
        return Comparison("differs", float("inf"))
    diff = float(np.nanmax(np.abs(np.asarray(old.data) - np.asarray(new.data)), initial=0.0))
    return Comparison(
        "identical" if diff == 0 else "differs" if diff > 1e-3 else "within tolerance", diff
    )


def current() -> dict[str, Any]:
    import scipy
    import soundfile

    from diagnostics_app import __version__

    return {
        "app": __version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "soundfile": soundfile.__version__,
    }


def of_entry(entry: StoredEntry) -> dict[str, Any] | None:
    return None


def changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    if not old:
        return []
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def previous_feature(store: Any, entry: StoredEntry, feature: str) -> LoadedFeature | None:
    return None
