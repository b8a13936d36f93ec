"""A/B listening: play the time ranges where two versions differ, one after the other.

:class:`DiffPlayback` drives the window's :class:`~diagnostics_app.qt.playback.Player`: each
range is played once from :data:`PRE_ROLL_S` before it (the ear needs the context to hear
what changes) to its end (:meth:`Player.play_range`), and when the player stops there by
itself the next range starts; after the last one it stops. The playhead follows the player
as always. A stop anywhere else (the user paused, or played something else) ends the
sequence: it never fights the user for the transport.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from PySide6.QtCore import QObject, Signal, Slot

from diagnostics_app.qt.playback import Player

PRE_ROLL_S: Final = 0.5
END_SLACK_S: Final = 0.005  # a stop this close to the range's end is the range's end


def play_spans(
    ranges: Sequence[tuple[float, float]], pre_roll: float = PRE_ROLL_S, end: float | None = None
) -> list[tuple[float, float]]:
    """What is played for ``ranges``: each from ``pre_roll`` before it (not before 0) to its
    end (not after ``end``); spans that would overlap or touch are played as one."""
    spans: list[tuple[float, float]] = []
    for start, stop in sorted(ranges):
        a = max(0.0, float(start) - pre_roll)
        b = float(stop) if end is None else min(float(stop), end)
        if b <= a:
            continue
        if spans and a <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], b))
        else:
            spans.append((a, b))
    return spans


class DiffPlayback(QObject):
    """Plays a list of spans in turn on ``player`` (see the module)."""

    spanStarted = Signal(int, float, float)  # index, start, end (seconds)
    finished = Signal()  # the sequence ended: played to the end, stopped, or failed

    def __init__(self, player: Player, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._player = player
        self.spans: list[tuple[float, float]] = []
        self.index = -1
        self._connected = False

    @property
    def active(self) -> bool:
        return 0 <= self.index < len(self.spans)

    def start(self, ranges: Sequence[tuple[float, float]], pre_roll: float = PRE_ROLL_S) -> bool:
        """Play ``ranges`` (each with ``pre_roll``) one after the other; False: nothing to
        play, or the player could not start."""
        self.stop()
        duration = self._player.duration()
        self.spans = play_spans(ranges, pre_roll, duration if duration > 0 else None)
        if not self.spans:
            return False
        if not self._connected:
            self._player.stateChanged.connect(self._on_state)
            self._connected = True
        self.index = -1
        return self._next()

    def stop(self) -> None:
        """End the sequence (the player is paused when it is playing one of the spans)."""
        if not self.active:
            return
        self.index = -1
        if self._player.is_playing():
            self._player.pause()
        self.finished.emit()

    def _next(self) -> bool:
        self.index += 1
        if self.index >= len(self.spans):
            self.index = -1
            self.finished.emit()
            return False
        start, end = self.spans[self.index]
        self.spanStarted.emit(self.index, start, end)
        if not self._player.play_range(start, end):
            self.index = -1
            self.finished.emit()
            return False
        return True

    @Slot(bool)
    def _on_state(self, playing: bool) -> None:
        if playing or not self.active:
            return
        end = self.spans[self.index][1]
        if self._player.position() >= end - END_SLACK_S:
            self._next()  # the span played to its end: the next one
        else:
            self.index = -1  # paused or stopped elsewhere: the user has the transport
            self.finished.emit()
