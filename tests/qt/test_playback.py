"""Playback: unavailable (and saying why) on a machine with no output device, and the
play/pause/position logic with a fake stream put in place of ``sounddevice.OutputStream``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pytest
import sounddevice as sd
from pytestqt.qtbot import QtBot

from diagnostics_app.qt.playback import Player


def _has_output_device() -> bool:
    try:
        return len(sd.query_devices()) > 0 and sd.query_devices(kind="output") is not None
    except (sd.PortAudioError, ValueError, OSError):
        return False


@pytest.mark.skipif(_has_output_device(), reason="this machine has an audio output device")
def test_no_output_device_makes_player_unavailable(qtbot: QtBot) -> None:
    player = Player()  # the real sounddevice, on a machine with no sound card
    assert not player.available
    assert "device" in player.unavailable_reason
    samples = np.zeros((48_000, 2), np.float32)
    player.load(samples, 48_000)
    assert player.duration() == pytest.approx(1.0)
    assert player.play(0.25) is False
    assert player.position() == pytest.approx(0.25)  # a seek still moves the position
    assert not player.is_playing()
    assert player.toggle() is False
    player.pause()
    player.close()


class FakeStream:
    """Stands in for ``sd.OutputStream``: records how it was opened and started; the test calls
    the audio callback itself, as PortAudio's thread would."""

    instances: ClassVar[list[FakeStream]] = []
    fail_start: Exception | None = None

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.callback: Callable[..., None] = kwargs["callback"]
        self.active = False
        self.calls: list[str] = []
        FakeStream.instances.append(self)

    def start(self) -> None:
        self.calls.append("start")
        if FakeStream.fail_start is not None:
            raise FakeStream.fail_start
        self.active = True

    def abort(self) -> None:
        self.calls.append("abort")
        self.active = False

    def close(self, ignore_errors: bool = True) -> None:
        self.calls.append("close")
        self.active = False

    def pull(self, frames: int) -> np.ndarray:
        """One callback, as PortAudio would make it: returns what was written."""
        out = np.full((frames, self.kwargs["channels"]), np.nan, np.float32)
        self.callback(out, frames, None, sd.CallbackFlags())
        return out


@pytest.fixture
def fake_device(monkeypatch: pytest.MonkeyPatch) -> type[FakeStream]:
    """Pretend PortAudio has one stereo output device and open FakeStreams on it."""
    device = {"name": "fake output", "max_output_channels": 2, "default_samplerate": 48_000.0}

    def query_devices(device_id: Any = None, kind: str | None = None) -> Any:
        return dict(device) if kind is not None else [dict(device)]

    FakeStream.instances = []
    FakeStream.fail_start = None
    monkeypatch.setattr(sd, "query_devices", query_devices)
    monkeypatch.setattr(sd, "OutputStream", FakeStream)
    return FakeStream


def test_play_pause_and_position_with_a_stream(qtbot: QtBot, fake_device: type[FakeStream]) -> None:
    player = Player()
    assert player.available
    assert player.unavailable_reason == ""
    rate = 1000
    samples = np.stack([np.arange(2000), -np.arange(2000)], axis=1).astype(np.float32)
    player.load(samples, rate)

    with qtbot.waitSignal(player.stateChanged) as state:
        assert player.play(0.5)
    assert state.args == [True]
    assert player.is_playing()
    (stream,) = fake_device.instances
    assert stream.kwargs["samplerate"] == rate
    assert stream.kwargs["channels"] == 2
    assert stream.kwargs["dtype"] == "float32"

    out = stream.pull(100)
    assert np.array_equal(out, samples[500:600])  # copied from the preloaded buffer
    assert player.position() == pytest.approx(0.6)
    with qtbot.waitSignal(player.positionChanged, timeout=1000) as pos:
        pass  # emitted by the ~30 Hz timer while playing
    assert pos.args[0] == pytest.approx(0.6)

    with qtbot.waitSignal(player.stateChanged) as state:
        player.pause()
    assert state.args == [False]
    assert stream.calls[-1] == "abort"
    assert player.position() == pytest.approx(0.6)  # pause keeps the position

    assert player.toggle() is True  # resumes where it paused
    assert np.array_equal(stream.pull(10), samples[600:610])

    assert player.play(1.9)  # seek while playing: stop, move, start again
    assert stream.calls[-2:] == ["abort", "start"]
    out = stream.pull(150)
    assert np.array_equal(out[:100], samples[1900:2000])
    assert np.all(out[100:] == 0.0)  # silence past the end
    with qtbot.waitSignal(player.stateChanged, timeout=1000) as state:
        pass  # the timer notices the end and stops
    assert state.args == [False]
    assert not player.is_playing()
    assert player.position() == pytest.approx(2.0)

    assert player.play()  # at the end, play starts again from the beginning
    assert np.array_equal(stream.pull(5), samples[:5])
    player.close()
    assert stream.calls[-1] == "close"


def test_more_channels_than_the_device_are_mixed_or_cut(
    qtbot: QtBot, fake_device: type[FakeStream], monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = np.random.default_rng(0).random((100, 4)).astype(np.float32)
    player = Player()
    player.load(samples, 1000)
    assert player.play(0.0)
    assert fake_device.instances[-1].kwargs["channels"] == 2
    assert np.array_equal(fake_device.instances[-1].pull(10), samples[:10, :2])
    player.close()

    mono = {"name": "mono", "max_output_channels": 1, "default_samplerate": 48_000.0}
    monkeypatch.setattr(
        sd, "query_devices", lambda device_id=None, kind=None: mono if kind else [mono]
    )
    player = Player()
    player.load(samples, 1000)
    assert player.play(0.0)
    assert np.allclose(fake_device.instances[-1].pull(10)[:, 0], samples[:10].mean(axis=1))
    player.close()


def test_a_stream_that_fails_to_start_is_reported(
    qtbot: QtBot, fake_device: type[FakeStream]
) -> None:
    player = Player()
    player.load(np.zeros((100, 2), np.float32), 1000)
    fake_device.fail_start = sd.PortAudioError("Device unavailable")
    with qtbot.waitSignal(player.errorOccurred) as error:
        assert player.play(0.0) is False
    assert "Device unavailable" in error.args[0]
    assert not player.is_playing()
    fake_device.fail_start = None
    assert player.play(0.0)  # a later attempt opens a new stream
    assert len(fake_device.instances) == 2
    player.close()


def test_nothing_loaded_plays_nothing(qtbot: QtBot, fake_device: type[FakeStream]) -> None:
    player = Player()
    assert player.play() is False
    assert player.position() == 0.0
    assert fake_device.instances == []
