"""Audio playback of the shown source, streamed from its file, when there is an output device.

:meth:`Player.open_source` reads only the file's header; nothing is decoded until
:meth:`Player.play`. Then a reader thread decodes on demand into a ring of about a second of
audio that the PortAudio callback drains (``diagnostics_app.core.playback_stream``); memory
stays flat whatever the file's length and there is no length limit. The stream itself is
``diagnostics_app.audio_out``.

Availability is checked once, at construction: without the PortAudio library or without an
output device :attr:`Player.available` is False, :attr:`Player.unavailable_reason` says why,
and every method still works (``play`` does nothing and returns False, a seek still moves the
position): the app runs without audio.

The GUI thread polls at ~30 Hz while playing: it emits :attr:`Player.positionChanged` with the
position the listener *hears* (the stream's output latency accounted for), notices the end, and
turns a failed or vanished device into :attr:`Player.errorOccurred` and a stop. The callback
touches no Qt object.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from diagnostics_app.audio_out import (
    OutputDevice,
    OutputDriver,
    list_output_devices,
    load_sounddevice,
    resolve_device,
)
from diagnostics_app.core.errors import DiagnosticsError
from diagnostics_app.core.playback_stream import (
    ArraySource,
    FileSource,
    FrameSource,
    PlaybackStream,
    StreamStats,
)

POSITION_INTERVAL_MS = 33  # ~30 Hz position updates while playing


class Player(QObject):
    """Plays one source (a file, streamed) on the chosen output device."""

    positionChanged = Signal(float)  # seconds heard, ~30 Hz while playing, and after seeks/stops
    stateChanged = Signal(bool)  # playing or not
    errorOccurred = Signal(str)  # opening, starting or running the stream failed
    noticeOccurred = Signal(str)  # e.g. the chosen device is gone and the default is used

    def __init__(self, parent: QObject | None = None, device: str | int | None = None) -> None:
        super().__init__(parent)
        self._sd, reason = load_sounddevice()
        self.available: bool = self._sd is not None
        self.unavailable_reason: str = reason
        self._wanted_device: str | int | None = device
        self._device: OutputDevice | None = None
        self.device_notice = ""  # why the wanted device is not used (shown by the window)
        if self._sd is not None:
            self._device, self.device_notice = resolve_device(self._sd, device)
        self._source: FrameSource | None = None
        self._engine: PlaybackStream | None = None
        self._driver: OutputDriver | None = None
        self._rate = 0
        self._frames = 0
        self._frame = 0  # the position while not playing
        self._loop: tuple[int, int] | None = None
        self._mask: tuple[bool, ...] | None = None
        self._playing = False
        self._once = False  # playing a range once (play_range)
        self.blocksize = 0  # PortAudio's choice; the benchmark sets its own
        self._timer = QTimer(self)
        self._timer.setInterval(POSITION_INTERVAL_MS)
        self._timer.timeout.connect(self._tick)

    # --- sources ----------------------------------------------------------------------------

    def open_source(self, path: str | os.PathLike[str]) -> bool:
        """Stop and make ``path`` the source: reads its header only. False (with
        :attr:`errorOccurred`) when the file cannot be played."""
        try:
            source = FileSource(path)
        except (DiagnosticsError, OSError, RuntimeError) as exc:
            self._set_source(None)
            self.errorOccurred.emit(f"cannot open {os.fspath(path)}: {exc}")
            return False
        self._set_source(source)
        return True

    def load(self, samples: np.ndarray | str | os.PathLike[str], sample_rate: int) -> None:
        """Deprecated: use :meth:`open_source`, which streams from the file.

        Given a path (what the plot worker now hands over), the same as ``open_source``; given
        ``(frames, channels)`` samples, plays them from memory, as before."""
        if isinstance(samples, str | os.PathLike):
            self.open_source(samples)
            return
        self._set_source(ArraySource(samples, sample_rate))

    def close_source(self) -> None:
        self._set_source(None)

    def duration(self) -> float:
        return self._frames / self._rate if self._rate else 0.0

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def channels(self) -> int:
        return self._source.channels if self._source is not None else 0

    # --- devices ----------------------------------------------------------------------------

    def list_output_devices(self) -> list[OutputDevice]:
        """The output devices PortAudio lists (empty without PortAudio)."""
        return list_output_devices(self._sd)

    @property
    def device(self) -> OutputDevice | None:
        """The device streams are opened on (None: no device)."""
        return self._device

    def set_device(self, device: str | int | None) -> OutputDevice | None:
        """Play on ``device`` (a name as listed, an index, None for the default) from the next
        start; when it is not there, the default is used and :attr:`noticeOccurred` says so."""
        self._wanted_device = device
        if self._sd is None:
            return None
        resolved, notice = resolve_device(self._sd, device)
        if notice:
            self.noticeOccurred.emit(notice)
        if resolved != self._device:
            self._device = resolved
            self._rebuild_engine()
        return resolved

    # --- transport --------------------------------------------------------------------------

    def is_playing(self) -> bool:
        return self._playing

    def position(self) -> float:
        """Seconds of the source the listener hears now (while playing), else the playhead."""
        return self._current_frame() / self._rate if self._rate else 0.0

    def play(self, from_seconds: float | None = None) -> bool:
        """Play from ``from_seconds`` (None: from the current position, or the start when at
        the end) to the end, looping the loop range when one is set and reached. False when
        playback is unavailable, nothing is open, or the stream could not be started."""
        if from_seconds is not None:
            self._frame = self._to_frame(from_seconds)
        elif not self._playing and self._frame >= self._frames:
            self._frame = 0
        elif self._playing:
            self._frame = self._current_frame()
        self._once = False
        return self._start(self._frame, None)

    def play_range(self, start: float, end: float) -> bool:
        """Play from ``start`` to ``end`` once, then stop there."""
        a, b = sorted((self._to_frame(start), self._to_frame(end)))
        self._frame = a
        self._once = True
        return self._start(a, b)

    def seek(self, seconds: float) -> None:
        """Move the playhead; while playing, go on playing from there."""
        frame = self._to_frame(seconds)
        self._frame = frame
        if self._playing and self._engine is not None:
            self._start(frame, self._engine.command.stop if self._once else None)
        else:
            self.positionChanged.emit(frame / self._rate if self._rate else 0.0)

    def set_loop(self, start: float | None, end: float | None = None) -> None:
        """Loop ``start``–``end`` (seconds) when playback reaches ``end``; None clears."""
        if start is None or end is None:
            self._loop = None
        else:
            a, b = sorted((self._to_frame(start), self._to_frame(end)))
            self._loop = (a, b) if b > a else None
        if self._playing and not self._once and self._engine is not None:
            frame = self._current_frame()
            self._engine.post(frame, None, self._loop)  # refill: the loop applies at once

    def loop(self) -> tuple[float, float] | None:
        if self._loop is None or not self._rate:
            return None
        return self._loop[0] / self._rate, self._loop[1] / self._rate

    def set_channel_mask(self, mask: Sequence[bool] | None) -> None:
        """Which of the source's channels are heard (False: muted); a single one heard is a
        solo, played on every output channel. None: all."""
        self._mask = None if mask is None else tuple(bool(m) for m in mask)
        if self._engine is not None:
            self._engine.set_mask(self._mask)

    def pause(self) -> None:
        """Stop where the listener is (buffered audio is dropped)."""
        if not self._playing:
            return
        frame = self._current_frame()
        error = self._driver.stop() if self._driver is not None else None
        self._frame = frame
        self._set_playing(False)
        self.positionChanged.emit(self.position())
        if error:
            self._fail(f"cannot stop: {error}")

    def toggle(self) -> bool:
        """Pause if playing, else play from the current position. Returns is_playing()."""
        if self._playing:
            self.pause()
        else:
            self.play()
        return self._playing

    def close(self) -> None:
        """Stop and release the device and the file (call before the app quits)."""
        self.pause()
        self._close_engine()

    def stats(self) -> StreamStats | None:
        """The callback's counters since the source was opened (None: nothing open)."""
        return self._engine.stats() if self._engine is not None else None

    @property
    def engine(self) -> PlaybackStream | None:
        """The streaming core (tests and the benchmark read its counters)."""
        return self._engine

    @property
    def driver(self) -> OutputDriver | None:
        return self._driver

    # --- internals -------------------------------------------------------------------------

    def _to_frame(self, seconds: float) -> int:
        if not self._rate or not math.isfinite(seconds):
            return 0
        return min(max(0, round(float(seconds) * self._rate)), self._frames)

    def _current_frame(self) -> int:
        if self._playing and self._driver is not None:
            return self._driver.heard_frame()
        return self._frame

    def _set_source(self, source: FrameSource | None) -> None:
        self.pause()
        self._close_engine()
        self._source = source
        self._rate = source.sample_rate if source is not None else 0
        self._frames = source.frames if source is not None else 0
        self._frame = 0
        self._loop = None
        self._mask = None
        if source is not None and self._sd is not None:
            self._ensure_engine()  # the ring and the stream's settings; nothing decoded yet
        self.positionChanged.emit(0.0)

    def _out_channels(self, channels: int) -> int:
        limit = self._device.channels if self._device is not None else channels
        return min(channels, max(1, limit))

    def _rebuild_engine(self) -> None:
        """A new stream on the current device (after a device change or a failure)."""
        was = self._playing
        frame = self._current_frame()
        self.pause()
        self._renew_engine()
        self._frame = frame
        if was:
            self.play()

    def _ensure_engine(self) -> PlaybackStream:
        if self._engine is None:
            assert self._source is not None
            self._engine = PlaybackStream(self._source, self._out_channels(self._source.channels))
            self._engine.set_mask(self._mask)
            self._driver = OutputDriver(
                self._sd,
                self._engine,
                self._device.index if self._device is not None else None,
                blocksize=self.blocksize,
            )
        return self._engine

    def _renew_engine(self) -> None:
        """Drop the stream and the ring; a new ring (nothing decoded) for the same source."""
        self._close_engine()
        if self._source is not None and self._sd is not None:
            self._ensure_engine()

    def _close_engine(self) -> None:
        driver, self._driver = self._driver, None
        engine, self._engine = self._engine, None
        if driver is not None:
            driver.close()
        if engine is not None:
            engine.close()  # joins the reader, closes the file (a FileSource reopens on use)

    def _start(self, frame: int, stop: int | None) -> bool:
        sd = self._sd
        if sd is None or self._source is None or self._frames <= 0:
            self.positionChanged.emit(frame / self._rate if self._rate else 0.0)
            return False
        engine = self._ensure_engine()
        engine.post(frame, stop, None if stop is not None else self._loop)
        assert self._driver is not None
        if not self._playing or self._driver.ended.is_set():  # (re)start the stream
            try:
                self._driver.start()
            except (sd.PortAudioError, ValueError, OSError, RuntimeError) as exc:
                if self._fall_back_to_default(str(exc)):
                    return self._start(frame, stop)
                self._renew_engine()
                self._set_playing(False)
                self.errorOccurred.emit(f"cannot play: {exc}")
                return False
        self._set_playing(True)
        self.positionChanged.emit(frame / self._rate)
        return True

    def _fall_back_to_default(self, error: str) -> bool:
        """The chosen device failed to open (unplugged since PortAudio listed it): switch to
        the default device, say so, and tell the caller to try again."""
        default, _ = resolve_device(self._sd, None)
        if default is None or self._device is None or default.index == self._device.index:
            return False
        self.noticeOccurred.emit(
            f"output device {self._device.label!r} failed ({error}); using the default "
            f"({default.label})"
        )
        self._device = default
        self._renew_engine()
        return True

    def _fail(self, message: str) -> None:
        """Stop after a failure of the device or the file, keeping the position."""
        frame = self._current_frame() if self._playing else self._frame
        self._renew_engine()  # the next play opens a new stream
        self._frame = frame
        self._set_playing(False)
        self.positionChanged.emit(self.position())
        self.errorOccurred.emit(message)

    def _set_playing(self, playing: bool) -> None:
        if playing:
            self._timer.start()
        else:
            self._timer.stop()
        if playing != self._playing:
            self._playing = playing
            self.stateChanged.emit(playing)

    @Slot()
    def _tick(self) -> None:
        driver, engine = self._driver, self._engine
        if not self._playing or driver is None or engine is None:
            return
        failure = driver.check()
        if failure is not None:
            self._fail(failure)
            return
        if driver.ended.is_set() and driver.finished.is_set():  # played to the end, drained
            self._frame = engine.command.stop
            driver.stop()
            self._set_playing(False)
            self.positionChanged.emit(self.position())
            return
        self.positionChanged.emit(self.position())


__all__ = ["POSITION_INTERVAL_MS", "OutputDevice", "Player"]
