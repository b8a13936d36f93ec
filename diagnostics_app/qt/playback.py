"""Audio playback of the shown source through sounddevice (PortAudio), when there is a device.

Availability is checked once, at construction: the ``sounddevice`` import raises ``OSError``
when the PortAudio library is missing, and with no output device ``sd.query_devices`` lists
nothing and the default output device is ``-1`` (querying it raises ``PortAudioError``). Then
:attr:`Player.available` is False, :attr:`Player.unavailable_reason` says why, and every
method still works (``play`` does nothing and returns False): the app runs without audio.

The ``OutputStream`` callback runs on PortAudio's thread and only copies the next frames of the
buffer prepared by :meth:`Player.load` into ``outdata`` (no allocation beyond two array views);
it touches no Qt object. The GUI thread learns the position from a ~30 Hz ``QTimer`` while
playing (:attr:`Player.positionChanged`) and notices the end of the buffer there too.
"""

from __future__ import annotations

import contextlib
import threading
from types import ModuleType
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

POSITION_INTERVAL_MS = 33  # ~30 Hz position updates while playing


def _load_sounddevice() -> tuple[ModuleType | None, str]:
    """The sounddevice module and a default output device, or None and why not."""
    try:
        import sounddevice as sd
    except (OSError, ImportError) as exc:  # the PortAudio library itself is missing
        return None, f"no audio: PortAudio library not found ({exc})"
    try:
        devices = sd.query_devices()
        if len(devices) == 0:
            return None, "no audio output device (PortAudio lists no devices)"
        info = sd.query_devices(kind="output")  # the default output device
        if int(info.get("max_output_channels", 0)) < 1:
            return (
                None,
                f"no audio output device (default device {info.get('name')!r} has no outputs)",
            )
    except (sd.PortAudioError, ValueError, OSError) as exc:
        return None, f"no audio output device ({exc})"
    return sd, ""


class Player(QObject):
    """Plays a preloaded ``(frames, channels)`` float32 buffer from a given time."""

    positionChanged = Signal(float)  # seconds, ~30 Hz while playing, and after seeks/stops
    stateChanged = Signal(bool)  # playing or not
    errorOccurred = Signal(str)  # opening or starting the stream failed

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._sd, reason = _load_sounddevice()
        self.available: bool = self._sd is not None
        self.unavailable_reason: str = reason
        self._device_channels = 0
        if self._sd is not None:
            info = self._sd.query_devices(kind="output")
            self._device_channels = int(info["max_output_channels"])
        self._buffer = np.zeros((0, 1), np.float32)
        self._rate = 0
        self._frame = 0  # next frame the callback copies (written by the callback thread)
        self._ended = threading.Event()  # the callback ran out of frames
        self._stream: Any = None
        self._playing = False
        self._timer = QTimer(self)
        self._timer.setInterval(POSITION_INTERVAL_MS)
        self._timer.timeout.connect(self._tick)

    # --- public API -----------------------------------------------------------------------

    def load(self, samples: np.ndarray, sample_rate: int) -> None:
        """Stop, and take ``samples`` ((frames, channels) float32) as the buffer to play,
        mixed down (or cut) to what the output device has."""
        self.pause()
        self._close_stream()
        data = np.asarray(samples, np.float32)
        if data.ndim == 1:
            data = data[:, None]
        if data.ndim != 2:
            raise ValueError(f"samples must be (frames, channels), got shape {data.shape}")
        if self._device_channels and data.shape[1] > self._device_channels:
            data = (
                data.mean(axis=1, keepdims=True)
                if self._device_channels == 1
                else data[:, : self._device_channels]
            )
        self._buffer = np.ascontiguousarray(data)
        self._rate = int(sample_rate)
        self._frame = 0
        self._ended.clear()
        self.positionChanged.emit(0.0)

    def duration(self) -> float:
        return self._buffer.shape[0] / self._rate if self._rate else 0.0

    def is_playing(self) -> bool:
        return self._playing

    def position(self) -> float:
        """Seconds of the buffer handed to the device so far (ahead of what is heard by the
        device's output latency)."""
        return self._frame / self._rate if self._rate else 0.0

    def play(self, from_seconds: float | None = None) -> bool:
        """Play from ``from_seconds`` (None: from the current position); False when playback
        is unavailable, nothing is loaded, or the stream could not be started."""
        sd = self._sd
        if sd is None or self._rate <= 0 or self._buffer.shape[0] == 0:
            if from_seconds is not None:
                self._seek(from_seconds)
            return False
        try:
            if self._stream is not None and self._playing:
                self._stream.abort()  # stop the callback before moving its position
            if from_seconds is not None:
                self._seek(from_seconds)
            if self._frame >= self._buffer.shape[0]:
                self._frame = 0
            self._ended.clear()
            if self._stream is None:
                self._stream = sd.OutputStream(
                    samplerate=self._rate,
                    channels=self._buffer.shape[1],
                    dtype="float32",
                    callback=self._callback,
                )
            self._stream.start()
        except (sd.PortAudioError, ValueError, OSError) as exc:
            self._close_stream()
            self._set_playing(False)
            self.errorOccurred.emit(f"cannot play: {exc}")
            return False
        self._set_playing(True)
        self.positionChanged.emit(self.position())
        return True

    def pause(self) -> None:
        """Stop at the current position (at once: buffered audio is dropped)."""
        if self._stream is not None and self._playing:
            try:
                self._stream.abort()
            except (self._sd.PortAudioError, OSError) as exc:  # type: ignore[union-attr]
                self.errorOccurred.emit(f"cannot stop: {exc}")
        if self._playing:
            self._set_playing(False)
            self.positionChanged.emit(self.position())

    def toggle(self) -> bool:
        """Pause if playing, else play from the current position. Returns is_playing()."""
        if self._playing:
            self.pause()
        else:
            self.play()
        return self._playing

    def close(self) -> None:
        """Stop and release the device (call before the app quits)."""
        self.pause()
        self._close_stream()

    # --- internals -------------------------------------------------------------------------

    def _seek(self, seconds: float) -> None:
        frame = round(max(0.0, float(seconds)) * self._rate) if self._rate else 0
        self._frame = min(frame, self._buffer.shape[0])
        self.positionChanged.emit(self.position())

    def _set_playing(self, playing: bool) -> None:
        if playing:
            self._timer.start()
        else:
            self._timer.stop()
        if playing != self._playing:
            self._playing = playing
            self.stateChanged.emit(playing)

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                stream.close(ignore_errors=True)

    def _callback(self, outdata: np.ndarray, frames: int, time: Any, status: Any) -> None:
        """PortAudio's thread: copy the next ``frames`` frames, zeros past the end."""
        start = self._frame
        buffer = self._buffer
        n = max(0, min(frames, buffer.shape[0] - start))
        if n:
            outdata[:n] = buffer[start : start + n]
        if n < frames:
            outdata[n:] = 0.0
            self._ended.set()
        self._frame = start + n

    @Slot()
    def _tick(self) -> None:
        self.positionChanged.emit(self.position())
        if self._ended.is_set() and self._playing:
            self.pause()
