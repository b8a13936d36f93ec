"""Typed, versioned application settings over :class:`QSettings`.

The values live in one dataclass; :class:`SettingsStore` reads and writes it. Where it is stored:
the platform's native place by default, or the INI file named by the environment variable
``DIAGNOSTICS_APP_SETTINGS`` (tests point it at a temporary file, so they never touch the
user's settings).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

SETTINGS_ENV = "DIAGNOSTICS_APP_SETTINGS"
SETTINGS_VERSION = 1
MAX_RECENT = 10
ORGANIZATION = "diagnostics-app"
APPLICATION = "Diagnostics App"


def default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True)
class AppSettings:
    workers: int = field(default_factory=default_workers)  # analysis passes run in parallel
    cache_limit_mb: int = 0  # 0 = no limit
    auto_analyse: bool = False  # compute missing rows as soon as they appear
    recent_projects: tuple[str, ...] = ()
    last_project: str = ""
    window_geometry: bytes = b""
    window_state: bytes = b""
    output_device: str = ""  # playback device by name as PortAudio lists it; "" = the default
    table_splitter: bytes = b""  # QSplitter.saveState: descriptor table | explain panel
    centre_splitter: bytes = b""  # QSplitter.saveState: table and explain | plots
    ruler_bars: bool = False  # the plots' ruler in bars.beats (with a tempo map), else m:ss.mmm
    scheduler: str = ""  # a Dask scheduler's address (tcp://HOST:PORT); "" = local processes

    def with_recent(self, path: str) -> AppSettings:
        path = str(Path(path).resolve())
        recent = (path, *(p for p in self.recent_projects if p != path))[:MAX_RECENT]
        return replace(self, recent_projects=recent, last_project=path)


def _as_int(value: Any, default: int, lo: int, hi: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return min(max(number, lo), hi)


def _as_bool(value: Any, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return default if value is None else bool(value)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, QByteArray):
        return bytes(value.data())
    if isinstance(value, bytes):
        return value
    return b""


def _as_paths(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if v)[:MAX_RECENT]
    return ()


class SettingsStore:
    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        location = path if path is not None else os.environ.get(SETTINGS_ENV)
        if location:
            self._qs = QSettings(str(location), QSettings.Format.IniFormat)
        else:
            self._qs = QSettings(
                QSettings.Format.NativeFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
            )

    @property
    def file_name(self) -> str:
        return self._qs.fileName()

    def load(self) -> AppSettings:
        qs = self._qs
        version = _as_int(qs.value("version", SETTINGS_VERSION), SETTINGS_VERSION, 0, 10**6)
        if version > SETTINGS_VERSION:  # written by a newer app: use defaults, keep the file
            return AppSettings()
        d = AppSettings()
        return AppSettings(
            workers=_as_int(qs.value("analysis/workers", d.workers), d.workers, 1, 64),
            cache_limit_mb=_as_int(qs.value("cache/limit_mb", d.cache_limit_mb), 0, 0, 10**9),
            auto_analyse=_as_bool(qs.value("analysis/auto", d.auto_analyse), False),
            recent_projects=_as_paths(qs.value("projects/recent", [])),
            last_project=str(qs.value("projects/last", "") or ""),
            window_geometry=_as_bytes(qs.value("window/geometry")),
            window_state=_as_bytes(qs.value("window/state")),
            output_device=str(qs.value("playback/device", "") or ""),
            table_splitter=_as_bytes(qs.value("window/table_splitter")),
            centre_splitter=_as_bytes(qs.value("window/centre_splitter")),
            ruler_bars=_as_bool(qs.value("view/ruler_bars", d.ruler_bars), False),
            scheduler=str(qs.value("analysis/scheduler", d.scheduler) or ""),
        )

    def save(self, settings: AppSettings) -> None:
        qs = self._qs
        qs.setValue("version", SETTINGS_VERSION)
        qs.setValue("analysis/workers", settings.workers)
        qs.setValue("cache/limit_mb", settings.cache_limit_mb)
        qs.setValue("analysis/auto", settings.auto_analyse)
        qs.setValue("projects/recent", list(settings.recent_projects))
        qs.setValue("projects/last", settings.last_project)
        qs.setValue("window/geometry", QByteArray(settings.window_geometry))
        qs.setValue("window/state", QByteArray(settings.window_state))
        qs.setValue("playback/device", settings.output_device)
        qs.setValue("window/table_splitter", QByteArray(settings.table_splitter))
        qs.setValue("window/centre_splitter", QByteArray(settings.centre_splitter))
        qs.setValue("view/ruler_bars", settings.ruler_bars)
        qs.setValue("analysis/scheduler", settings.scheduler)
        qs.sync()

    # Lane styles (scale, colour range and map of image lanes; qt/plots/lane_style.py) are
    # kept apart from AppSettings: a lane changes them at any time, and the window's save of
    # the AppSettings it read at start-up must not write old ones back.

    def load_lane_styles(self) -> dict[str, str]:
        """Style text by style key (``calculator:feature``), as :meth:`save_lane_style` wrote."""
        qs = self._qs
        qs.beginGroup(LANE_STYLES_GROUP)
        try:
            return {
                _unescape_key(key): str(qs.value(key, "") or "")
                for key in qs.childKeys()
                if qs.value(key, "")
            }
        finally:
            qs.endGroup()

    def save_lane_style(self, key: str, text: str | None) -> None:
        """Remember the style ``text`` for ``key`` (None: forget it) and write it now."""
        name = f"{LANE_STYLES_GROUP}/{_escape_key(key)}"
        if text is None:
            self._qs.remove(name)
        else:
            self._qs.setValue(name, text)
        self._qs.sync()


LANE_STYLES_GROUP = "plots/lane_styles"


def _escape_key(key: str) -> str:
    # QSettings keys: "/" separates groups and "\\" is special; calculator ids use neither,
    # but a plugin's could
    return key.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")


def _unescape_key(key: str) -> str:
    return key.replace("%5C", "\\").replace("%2F", "/").replace("%25", "%")


__all__ = ["SETTINGS_ENV", "AppSettings", "SettingsStore"]
