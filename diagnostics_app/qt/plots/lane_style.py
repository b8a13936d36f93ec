"""How an image lane is drawn: its frequency scale, colour range and colour map, per lane kind.

A :class:`LaneStyle` is a value; the :class:`StyleBook` holds one per *style key* (the
calculator and feature, e.g. ``core.spectrogram:spectrogram``), so every lane of that feature,
in any source and after a restart, is drawn the same way. The book reads and writes the app
settings (:meth:`~diagnostics_app.qt.settings.SettingsStore.load_lane_styles`) itself and is
plain Python behind a lock: the plot loader's worker threads read it when they prepare lanes,
the GUI thread changes it (a lane's context menu) and calls the lanes listening for that key.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from diagnostics_app.qt.settings import SETTINGS_ENV, SettingsStore

Scale = Literal["native", "linear", "log"]
SCALES: tuple[Scale, ...] = ("log", "linear", "native")
# colour maps offered (pyqtgraph's names; "CET-L1" is a perceptually uniform grey)
COLOR_MAPS: tuple[str, ...] = ("viridis", "magma", "inferno", "plasma", "turbo", "CET-L1")
COLOR_MAP_TITLES = {"CET-L1": "grey"}
DEFAULT_COLOR_MAP = "viridis"


@dataclass(frozen=True)
class LaneStyle:
    """``scale``: ``log`` (rows resampled to log Hz), ``linear`` (to linear Hz) or ``native``
    (the bins as stored: linear Hz for a spectrogram, mel bands for mel); ``None``: the
    lane kind's default. ``floor``/``ceiling``: the colour range in the feature's unit (dB);
    ``None``: from the data (:func:`~.images.image_levels`)."""

    scale: Scale | None = None
    floor: float | None = None
    ceiling: float | None = None
    cmap: str = DEFAULT_COLOR_MAP

    def levels(self, auto: tuple[float, float]) -> tuple[float, float]:
        """The colour range: the style's ends where set, ``auto``'s elsewhere (never empty)."""
        lo = auto[0] if self.floor is None else self.floor
        hi = auto[1] if self.ceiling is None else self.ceiling
        return (lo, hi) if hi > lo else (lo, lo + 1.0)

    def to_text(self) -> str:
        """``scale;floor;ceiling;cmap`` with empty fields for defaults (the settings value)."""

        def num(v: float | None) -> str:
            return "" if v is None else f"{v:g}"

        return f"{self.scale or ''};{num(self.floor)};{num(self.ceiling)};{self.cmap}"

    @staticmethod
    def from_text(text: str) -> LaneStyle:
        """The inverse of :meth:`to_text`; anything unreadable falls back to the default."""
        parts = [*str(text).split(";"), "", "", "", ""][:4]
        scale = next((s for s in SCALES if s == parts[0]), None)

        def num(s: str) -> float | None:
            try:
                v = float(s)
            except ValueError:
                return None
            return v if math.isfinite(v) else None

        cmap = parts[3] if parts[3] in COLOR_MAPS else DEFAULT_COLOR_MAP
        return LaneStyle(scale, num(parts[1]), num(parts[2]), cmap)

    def with_scale(self, scale: Scale) -> LaneStyle:
        return replace(self, scale=scale)


Listener = Callable[[str], None]


class StyleBook:
    """Lane styles by style key, backed by the settings file (written on every change)."""

    def __init__(self, store: SettingsStore | None = None) -> None:
        self._lock = threading.Lock()
        self._store = store
        self._styles: dict[str, LaneStyle] | None = None  # read on first use
        # weak: a lane listens while shown, and the book must not keep a dropped lane alive
        self._listeners: list[weakref.WeakMethod[Listener]] = []

    def _loaded(self) -> dict[str, LaneStyle]:
        if self._styles is None:
            store = self._store if self._store is not None else SettingsStore()
            self._store = store
            self._styles = {
                key: LaneStyle.from_text(text) for key, text in store.load_lane_styles().items()
            }
        return self._styles

    def get(self, key: str) -> LaneStyle:
        with self._lock:
            return self._loaded().get(key, LaneStyle())

    def set(self, key: str, style: LaneStyle) -> None:
        """Remember ``style`` for ``key`` (the default style forgets it) and tell the
        listeners."""
        with self._lock:
            styles = self._loaded()
            if styles.get(key, LaneStyle()) == style:
                return
            if style == LaneStyle():
                styles.pop(key, None)
            else:
                styles[key] = style
            assert self._store is not None
            self._store.save_lane_style(key, None if style == LaneStyle() else style.to_text())
            self._listeners = [ref for ref in self._listeners if ref() is not None]
            listeners = [ref() for ref in self._listeners]
        for listener in listeners:
            if listener is not None:
                listener(key)

    def listen(self, listener: Listener) -> None:
        """Call the bound method ``listener`` with the key of every change (held weakly)."""
        with self._lock:
            self._listeners.append(weakref.WeakMethod(listener))

    def unlisten(self, listener: Listener) -> None:
        with self._lock:
            self._listeners = [
                ref for ref in self._listeners if ref() is not None and ref() != listener
            ]


_books: dict[str, StyleBook] = {}
_books_lock = threading.Lock()


def book() -> StyleBook:
    """The style book of the settings in use (one per settings location, so tests that point
    :data:`~diagnostics_app.qt.settings.SETTINGS_ENV` elsewhere get their own)."""
    where = os.environ.get(SETTINGS_ENV, "")
    with _books_lock:
        found = _books.get(where)
        if found is None:
            found = _books[where] = StyleBook()
        return found
