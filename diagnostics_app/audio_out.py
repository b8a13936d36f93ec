"""The audio output device: sounddevice (PortAudio) streams that drain a
:class:`~diagnostics_app.core.playback_stream.PlaybackStream`. Qt-free, so benchmarks can use
it; the GUI's :class:`~diagnostics_app.qt.playback.Player` drives it.

Availability: the ``sounddevice`` import raises ``OSError`` when the PortAudio library is
missing; with no output device ``sd.query_devices`` lists nothing and the default output device
is ``-1``. :func:`load_sounddevice` says which, in words.

Failures while playing never raise out of the audio thread: :class:`OutputDriver` records them
in :attr:`OutputDriver.failure` (an exception in the callback, a device that stops the stream
without being asked, a stream call that raises) and the owner polls it.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from diagnostics_app.core.playback_stream import PlaybackStream


def load_sounddevice() -> tuple[ModuleType | None, str]:
    """The sounddevice module when there is a default output device, else None and why not."""
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


@dataclass(frozen=True)
class OutputDevice:
    index: int
    name: str
    host_api: str
    channels: int  # max output channels
    default_samplerate: float
    is_default: bool

    @property
    def label(self) -> str:
        return f"{self.name} ({self.host_api})" if self.host_api else self.name


def list_output_devices(sd: Any) -> list[OutputDevice]:
    """The devices PortAudio can play to (as listed when it was initialised)."""
    if sd is None:
        return []
    try:
        devices = list(sd.query_devices())
        apis = [str(a.get("name", "")) for a in sd.query_hostapis()]
    except (sd.PortAudioError, ValueError, OSError):
        return []
    try:
        default = int(sd.query_devices(kind="output")["index"])
    except (sd.PortAudioError, ValueError, OSError, KeyError, TypeError):
        default = -1
    out = []
    for d in devices:
        if int(d.get("max_output_channels", 0)) < 1:
            continue
        api = int(d.get("hostapi", -1))
        out.append(
            OutputDevice(
                int(d["index"]),
                str(d["name"]),
                apis[api] if 0 <= api < len(apis) else "",
                int(d["max_output_channels"]),
                float(d.get("default_samplerate", 0.0)),
                int(d["index"]) == default,
            )
        )
    return out


def resolve_device(sd: Any, wanted: str | int | None) -> tuple[OutputDevice | None, str]:
    """The device to open for ``wanted`` (a name, an index or None for the default), and a
    message when ``wanted`` is not there any more and the default is used instead."""
    devices = list_output_devices(sd)
    default = next((d for d in devices if d.is_default), devices[0] if devices else None)
    if wanted is None or wanted == "":
        return default, ""
    for d in devices:
        if (isinstance(wanted, int) and d.index == wanted) or wanted in (d.name, d.label):
            return d, ""
    fallback = default.label if default is not None else "none"
    return default, f"output device {wanted!r} is not available; using the default ({fallback})"


class OutputDriver:
    """One ``sd.OutputStream`` draining ``engine``; opened on the first :meth:`start`."""

    def __init__(
        self,
        sd: Any,
        engine: PlaybackStream,
        device: int | None = None,
        blocksize: int = 0,
        latency: str | float | None = None,
    ) -> None:
        self._sd = sd
        self.engine = engine
        self.device = device
        self.blocksize = blocksize
        self.latency = latency
        self._stream: Any = None
        self._stopping = False  # we asked the stream to stop: its end is not a failure
        self.ended = threading.Event()  # the callback played the last frame and stopped
        self.finished = threading.Event()  # the stream became inactive (finished_callback)
        self.failure: str | None = None
        self.xruns = 0  # buffers PortAudio reported as under/overflowing

    @property
    def output_latency(self) -> float:
        try:
            return float(self._stream.latency) if self._stream is not None else 0.0
        except (AttributeError, TypeError, ValueError):
            return 0.0

    @property
    def running(self) -> bool:
        return self._stream is not None and not self._stopping and not self.finished.is_set()

    def start(self) -> None:
        """Open (first time) and start the stream; raises the stream's errors
        (``PortAudioError``, ``ValueError``, ``OSError``)."""
        sd = self._sd
        if self._stream is None:
            kwargs: dict[str, Any] = {
                "samplerate": self.engine.rate,
                "channels": self.engine.out_channels,
                "dtype": "float32",
                "callback": self._callback,
                "finished_callback": self._finished,
                "blocksize": self.blocksize,
            }
            if self.device is not None:
                kwargs["device"] = self.device
            if self.latency is not None:
                kwargs["latency"] = self.latency
            self._stream = sd.OutputStream(**kwargs)
        elif not self._stopping:
            self._stop_stream()  # a stream that ended by itself must be stopped before a start
        self.ended.clear()
        self.finished.clear()
        self.failure = None
        self.engine.begin_session()
        self._stopping = False
        self._stream.start()

    def stop(self) -> str | None:
        """Stop at once (buffered audio is dropped); the error text if stopping failed."""
        if self._stream is None or self._stopping:
            return None
        return self._stop_stream()

    def _stop_stream(self) -> str | None:
        self._stopping = True
        try:
            self._stream.abort()
        except (self._sd.PortAudioError, OSError, RuntimeError) as exc:
            return str(exc)
        return None

    def close(self) -> None:
        self._stopping = True
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close(ignore_errors=True)

    def now(self) -> float | None:
        """The stream's clock (the callback's ``outputBufferDacTime`` is on it), or None."""
        if self._stream is None:
            return None
        try:
            return float(self._stream.time)
        except Exception:
            return None

    def heard_frame(self) -> int:
        return self.engine.heard_frame(self.now(), self.output_latency)

    def check(self) -> str | None:
        """A failure since the start, in words: the callback's, the reader's, or a stream
        that stopped without being asked to and without having played to the end."""
        if self.failure is None and self.engine.failure is not None:
            self.failure = self.engine.failure
        if (
            self.failure is None
            and self._stream is not None
            and not self._stopping
            and not self.ended.is_set()
        ):
            try:
                active = bool(self._stream.active)
            except Exception as exc:
                self.failure = f"the output stream failed ({exc})"
            else:
                if not active:  # stopped by itself (some hosts never call finished_callback)
                    self.failure = "the output device stopped unexpectedly"
        return self.failure

    # --- PortAudio's thread -----------------------------------------------------------------

    def _callback(self, outdata: np.ndarray, frames: int, time: Any, status: Any) -> None:
        try:
            if status:
                self.xruns += 1
            if time is not None:
                done = self.engine.render(outdata, time.currentTime, time.outputBufferDacTime)
            else:
                done = self.engine.render(outdata)
        except Exception as exc:  # never a traceback from PortAudio's thread: stop and say why
            outdata.fill(0.0)
            self.failure = f"audio callback failed: {type(exc).__name__}: {exc}"
            raise self._sd.CallbackAbort from None
        if done:
            self.ended.set()
            raise self._sd.CallbackStop

    def _finished(self) -> None:
        if not self._stopping and not self.ended.is_set() and self.failure is None:
            self.failure = "the output device stopped unexpectedly"
        self.finished.set()


__all__ = [
    "OutputDevice",
    "OutputDriver",
    "list_output_devices",
    "load_sounddevice",
    "resolve_device",
]
