"""Playback on a real PortAudio stream: ALSA's ``null`` device made the default output.

These machines have no sound card, but with ``pcm.!default { type null }`` in ``~/.asoundrc``
PortAudio lists ``default, ALSA`` and runs a real ``OutputStream`` whose callback is drained by
ALSA (much faster than real time: a 21-minute file plays in a few seconds). The tests tap the
frames the callback hands to the device and compare them with the file, frame by frame; the
files hold a ramp, so every frame says where in the file it comes from.

The fake stream is used only where a real device cannot be made to fail: a device that
vanishes mid-play, a stream that cannot be opened.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import sounddevice as sd
import soundfile as sf
from pytestqt.qtbot import QtBot

from diagnostics_app.core.playback_stream import FileSource
from diagnostics_app.qt.playback import Player

RATE = 8000
WAIT_MS = 60_000  # generous: the machine is shared; nothing waits this long when it works
LONG_MINUTES = 21  # longer than the old 20-minute limit of playback


def ramp(first: int, n: int) -> np.ndarray:
    """Frames ``first .. first + n`` of the test files: left (i mod 2**23) / 2**23, right its
    negative; exact in 24-bit FLAC and in float32."""
    i = np.arange(first, first + n, dtype=np.int64) % (1 << 23)
    left = (i / float(1 << 23)).astype(np.float32)
    return np.stack([left, -left], axis=1)


def write_ramp(path: Path, seconds: float) -> Path:
    """A 24-bit stereo FLAC of the ramp, written in blocks: a ramp's second difference is zero,
    so FLAC stores 21 minutes in a few hundred kB."""
    total = round(seconds * RATE)
    with sf.SoundFile(path, "w", RATE, 2, subtype="PCM_24", format="FLAC") as f:
        for a in range(0, total, 1 << 20):
            f.write(ramp(a, min(1 << 20, total - a)))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("playback-audio")
    return {
        "minute": write_ramp(d / "minute.flac", 60.0),
        "long": write_ramp(d / "long.flac", LONG_MINUTES * 60.0),
    }


@pytest.fixture
def alsa_null(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """ALSA's null device as PortAudio's default output, for real streams.

    PortAudio lists devices once, in ``Pa_Initialize``, and sounddevice calls it when it is
    imported, at collection, long before any fixture runs; alsa-lib reads ``$HOME/.asoundrc``
    when PortAudio's ALSA host asks it for devices then. So setting ``HOME`` alone changes
    nothing: the fixture sets it and re-initialises PortAudio with the pair sounddevice itself
    uses at import and at exit (``sd._terminate()``, ``sd._initialize()``; private, but a
    fresh subprocess per test could not use qtbot). alsa-lib notices that its list of
    configuration files changed and reads them again. At teardown the real ``HOME`` and
    another re-initialisation bring back the machine's own devices (none here) for the tests
    that follow in this process."""
    home = tmp_path_factory.mktemp("alsa-home")
    (home / ".asoundrc").write_text("pcm.!default { type null }\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        sd._terminate()
        sd._initialize()
        try:
            outputs = [d for d in sd.query_devices() if d["max_output_channels"] > 0]
            assert outputs, "ALSA's null device did not show up in PortAudio's devices"
            yield
        finally:
            gc.collect()  # streams of players a failed test left behind
            sd._terminate()
    sd._initialize()  # with the real HOME again


@pytest.fixture
def make_player(alsa_null: None, qtbot: QtBot) -> Iterator[Callable[..., Player]]:
    players: list[Player] = []

    def make(device: str | int | None = None) -> Player:
        player = Player(device=device)
        players.append(player)
        return player

    yield make
    for p in players:
        p.close()


class Tap:
    """Records each run of file frames the callback output: (file frame, frames, epoch, the
    rows equal the file's frames there)."""

    def __init__(self, player: Player, expect: Callable[[int, int], np.ndarray] = ramp) -> None:
        self.runs: list[tuple[int, int, int, bool]] = []
        self.expect = expect
        self.fail: Exception | None = None
        assert player.engine is not None
        player.engine.tap = self

    def __call__(self, rows: np.ndarray, frame: int, epoch: int) -> None:
        if self.fail is not None:
            raise self.fail
        ok = bool(np.array_equal(rows, self.expect(frame, rows.shape[0])))
        self.runs.append((frame, rows.shape[0], epoch, ok))

    def epochs(self) -> list[int]:
        return list(dict.fromkeys(e for _, _, e, _ in self.runs))

    def spans(self, epoch: int | None = None) -> list[tuple[int, int]]:
        """The runs of ``epoch`` merged where contiguous: [(first frame, end frame)]."""
        out: list[tuple[int, int]] = []
        for frame, n, e, _ in self.runs:
            if epoch is not None and e != epoch:
                continue
            if out and out[-1][1] == frame:
                out[-1] = (out[-1][0], frame + n)
            else:
                out.append((frame, frame + n))
        return out

    def all_ok(self) -> bool:
        return all(ok for *_, ok in self.runs)

    def frames(self) -> int:
        return sum(n for _, n, _, _ in self.runs)


def until_stopped(
    qtbot: QtBot, player: Player, start: Callable[[], object], ms: int = WAIT_MS
) -> None:
    """Start playback with ``start()`` and wait until it has started and stopped again."""
    states: list[bool] = []
    player.stateChanged.connect(states.append)
    try:
        start()
        qtbot.waitUntil(lambda: states == [True, False], timeout=ms)
    finally:
        player.stateChanged.disconnect(states.append)


def positions(player: Player) -> list[float]:
    got: list[float] = []
    player.positionChanged.connect(got.append)
    return got


# --- a real stream on ALSA's null device ---------------------------------------------------


def test_null_device_is_listed_and_chosen(make_player: Callable[..., Player], qtbot: QtBot) -> None:
    player = make_player()
    assert player.available, player.unavailable_reason
    devices = player.list_output_devices()
    assert [d.name for d in devices if d.is_default] == ["default"]
    assert player.device is not None and player.device.name == "default"
    notices: list[str] = []
    player.noticeOccurred.connect(notices.append)
    assert player.set_device("default") == player.device
    assert notices == []
    chosen = make_player(device="USB headset that was unplugged")
    assert chosen.device is not None and chosen.device.name == "default"  # the fallback
    assert "not available" in chosen.device_notice
    chosen.noticeOccurred.connect(notices.append)
    fallback = chosen.set_device("USB headset that was unplugged")
    assert fallback is not None and fallback.is_default
    assert len(notices) == 1 and "USB headset" in notices[0]


def test_play_a_range_once_delivers_exactly_the_files_frames(
    make_player: Callable[..., Player], files: dict[str, Path], qtbot: QtBot
) -> None:
    player = make_player()
    assert player.open_source(files["minute"])
    assert player.engine is not None and player.engine._thread is None  # nothing decoded yet
    tap = Tap(player)
    seen = positions(player)
    until_stopped(qtbot, player, lambda: player.play_range(10.0, 12.5))
    assert tap.spans() == [(10 * RATE, 12 * RATE + RATE // 2)]  # every frame once, in order
    assert tap.all_ok()  # each frame is the file's
    stats = player.stats()
    assert stats is not None and stats.delivered_frames == 2.5 * RATE
    assert player.position() == 12.5
    assert seen[0] == 10.0 and seen[-1] == 12.5
    assert seen == sorted(seen) and all(10.0 <= p <= 12.5 for p in seen)


def test_pause_resume_and_seek_continue_from_what_was_heard(
    make_player: Callable[..., Player], files: dict[str, Path], qtbot: QtBot
) -> None:
    player = make_player()
    player.open_source(files["long"])
    tap = Tap(player)
    assert player.play(30.0)
    qtbot.waitUntil(lambda: player.position() > 40.0, timeout=WAIT_MS)
    player.pause()
    paused = player.position()
    assert not player.is_playing()
    first = tap.epochs()[0]
    (span,) = tap.spans(first)
    assert span[0] == 30 * RATE
    assert 40 * RATE < paused * RATE <= span[1]  # heard, at most what was handed over

    assert player.play()  # resumes where the listener was
    qtbot.waitUntil(lambda: len(tap.epochs()) == 2, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: player.position() > paused + 5.0, timeout=WAIT_MS)
    assert tap.spans(tap.epochs()[1])[0][0] == round(paused * RATE)

    seen = positions(player)
    player.seek(600.0)  # while playing: flush and go on from there
    assert seen[0] == 600.0
    qtbot.waitUntil(lambda: player.position() > 610.0, timeout=WAIT_MS)
    assert player.is_playing()
    player.pause()
    after = [e for e in tap.epochs() if e > tap.epochs()[1]]
    assert after, "nothing played after the seek"
    assert tap.spans(after[0])[0][0] == 600 * RATE
    assert all(p >= 600.0 for p in seen)
    assert tap.all_ok()


def test_loop_a_range(
    make_player: Callable[..., Player], files: dict[str, Path], qtbot: QtBot
) -> None:
    player = make_player()
    player.open_source(files["long"])
    tap = Tap(player)
    player.set_loop(100.0, 100.5)
    assert player.loop() == (100.0, 100.5)
    seen = positions(player)
    assert player.play(99.0)
    qtbot.waitUntil(lambda: len(tap.spans()) >= 5, timeout=WAIT_MS)
    player.pause()
    spans = tap.spans()
    a, b = 100 * RATE, 100 * RATE + RATE // 2
    assert spans[0] == (99 * RATE, b)  # into the loop, then round and round
    assert all(s == (a, b) for s in spans[1:-1])
    assert spans[-1][0] == a and spans[-1][1] <= b
    assert tap.all_ok()
    assert all(99.0 <= p <= 100.5 for p in seen)
    assert a <= player.position() * RATE <= b


def test_play_a_file_longer_than_20_minutes_to_the_end(
    make_player: Callable[..., Player], files: dict[str, Path], qtbot: QtBot
) -> None:
    player = make_player()
    player.open_source(files["long"])
    assert player.duration() == LONG_MINUTES * 60
    tap = Tap(player)
    until_stopped(qtbot, player, lambda: player.play(0.0), WAIT_MS * 4)
    frames = LONG_MINUTES * 60 * RATE
    assert tap.spans() == [(0, frames)]
    assert tap.all_ok()
    stats = player.stats()
    assert stats is not None and stats.delivered_frames == frames
    assert player.position() == LONG_MINUTES * 60
    assert player.play()  # at the end, Play starts again from the beginning
    qtbot.waitUntil(lambda: len(tap.spans()) == 2, timeout=WAIT_MS)
    assert tap.spans()[1][0] == 0
    player.pause()


def test_solo_a_channel(
    make_player: Callable[..., Player], files: dict[str, Path], qtbot: QtBot
) -> None:
    player = make_player()
    player.open_source(files["minute"])
    player.set_channel_mask([False, True])  # solo the right channel: heard on both sides
    tap = Tap(player, lambda frame, n: np.repeat(ramp(frame, n)[:, 1:], 2, axis=1))
    until_stopped(qtbot, player, lambda: player.play_range(1.0, 2.0))
    assert tap.frames() == RATE and tap.all_ok()


def test_deprecated_load_of_samples_still_plays(
    make_player: Callable[..., Player], qtbot: QtBot
) -> None:
    player = make_player()
    samples = ramp(0, 3 * RATE)
    player.load(samples, RATE)
    assert player.duration() == 3.0
    tap = Tap(player)
    until_stopped(qtbot, player, lambda: player.play(1.0))
    assert tap.spans() == [(RATE, 3 * RATE)] and tap.all_ok()
    assert player.position() == 3.0


def test_a_failing_callback_stops_with_a_message(
    make_player: Callable[..., Player],
    files: dict[str, Path],
    qtbot: QtBot,
    capfd: pytest.CaptureFixture[str],
) -> None:
    player = make_player()
    player.open_source(files["long"])
    tap = Tap(player)
    tap.fail = RuntimeError("boom in the callback")
    errors: list[str] = []
    player.errorOccurred.connect(errors.append)
    until_stopped(qtbot, player, lambda: player.play(5.0))
    assert len(errors) == 1 and "boom in the callback" in errors[0]
    assert not player.is_playing()
    assert "Traceback" not in capfd.readouterr().err  # nothing escaped PortAudio's thread
    assert player.engine is not None  # a new stream is ready for the next Play
    tap = Tap(player)
    until_stopped(qtbot, player, lambda: player.play_range(5.0, 6.0))
    assert tap.spans() == [(5 * RATE, 6 * RATE)]


def test_window_streams_the_selected_source(
    alsa_null: None, make_window: Callable[..., Any], qtbot: QtBot
) -> None:
    """The main window opens the selected source's file in the player (its header only, not
    decoded samples) and plays it on the real stream (more in test_playback_window.py)."""
    window = make_window()
    player: Player = window.player
    assert player.available
    source = next(iter(window.controller.project.sources))
    window.select(("source", source))
    qtbot.waitUntil(lambda: player.duration() > 0, timeout=WAIT_MS)
    source_of_player = player.engine.source if player.engine is not None else None
    path = window.controller.project.audio_path(source)
    assert isinstance(source_of_player, FileSource) and source_of_player.path == Path(path)
    assert player.engine is not None and player.engine._thread is None  # nothing decoded yet
    until_stopped(qtbot, player, window.actionPlay.trigger)
    stats = player.stats()
    assert stats is not None and stats.delivered_frames == sf.info(str(path)).frames


# --- no device ------------------------------------------------------------------------------


def _has_output_device() -> bool:
    try:
        return len(sd.query_devices()) > 0 and sd.query_devices(kind="output") is not None
    except (sd.PortAudioError, ValueError, OSError):
        return False


@pytest.mark.skipif(_has_output_device(), reason="this machine has an audio output device")
def test_no_output_device_makes_player_unavailable(qtbot: QtBot, files: dict[str, Path]) -> None:
    player = Player()  # the real sounddevice, on a machine with no sound card
    assert not player.available
    assert "device" in player.unavailable_reason
    assert player.list_output_devices() == []
    assert player.open_source(files["minute"])
    assert player.duration() == pytest.approx(60.0)
    assert player.play(0.25) is False
    assert player.position() == pytest.approx(0.25)  # a seek still moves the position
    player.seek(2.0)
    assert player.position() == pytest.approx(2.0)
    assert not player.is_playing()
    assert player.toggle() is False
    player.set_loop(1.0, 2.0)
    player.set_channel_mask([True, False])
    assert player.set_device("anything") is None
    player.pause()
    player.close()


# --- failures a real device cannot be made to produce: a fake stream --------------------------


class FakeStream:
    """Stands in for ``sd.OutputStream``; the test plays PortAudio's part."""

    instances: ClassVar[list[FakeStream]] = []
    fail_start: Exception | None = None
    unplugged = False  # device 1 was listed, but is gone when a stream is started on it

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self._active = False
        self.broken = False  # the device is gone: asking the stream anything raises
        self.latency = 0.01
        self.time = 0.0
        FakeStream.instances.append(self)

    @property
    def active(self) -> bool:
        if self.broken:
            raise sd.PortAudioError("Device unavailable")
        return self._active

    @active.setter
    def active(self, value: bool) -> None:
        self._active = value

    def start(self) -> None:
        if FakeStream.fail_start is not None and self.kwargs.get("device") in (None, 0):
            raise FakeStream.fail_start
        if self.kwargs.get("device") == 1 and FakeStream.unplugged:
            raise sd.PortAudioError("Device unavailable [PaErrorCode -9985]")
        self.active = True

    def abort(self) -> None:
        self.active = False

    def close(self, ignore_errors: bool = True) -> None:
        self.active = False

    def pull(self, frames: int) -> np.ndarray:
        out = np.zeros((frames, self.kwargs["channels"]), np.float32)
        self.kwargs["callback"](out, frames, None, sd.CallbackFlags())
        return out

    def vanish(self) -> None:
        """What PortAudio does when the device goes away: the stream ends by itself."""
        self.active = False
        self.kwargs["finished_callback"]()


@pytest.fixture
def fake_device(monkeypatch: pytest.MonkeyPatch) -> type[FakeStream]:
    """Two fake outputs: 0 is the default, 1 a USB headset."""
    devices = [
        {
            "name": name,
            "index": i,
            "hostapi": 0,
            "max_output_channels": 2,
            "default_samplerate": 48_000.0,
        }
        for i, name in enumerate(["fake output", "USB headset"])
    ]

    def query_devices(device_id: Any = None, kind: str | None = None) -> Any:
        return dict(devices[0]) if kind is not None else [dict(d) for d in devices]

    FakeStream.instances = []
    FakeStream.fail_start = None
    FakeStream.unplugged = False
    monkeypatch.setattr(sd, "query_devices", query_devices)
    monkeypatch.setattr(sd, "query_hostapis", lambda: [{"name": "Fake"}])
    monkeypatch.setattr(sd, "OutputStream", FakeStream)
    return FakeStream


def test_a_device_that_vanishes_mid_play_stops_with_a_message(
    qtbot: QtBot, fake_device: type[FakeStream], files: dict[str, Path]
) -> None:
    player = Player()
    player.open_source(files["minute"])
    assert player.play(3.0)
    (stream,) = fake_device.instances
    assert player.engine is not None
    qtbot.waitUntil(lambda: player.engine is not None and player.engine.buffered_frames() >= 100)
    stream.pull(100)
    with (
        qtbot.waitSignal(player.errorOccurred) as error,
        qtbot.waitSignal(player.stateChanged) as state,
    ):
        stream.vanish()
    assert "stopped unexpectedly" in error.args[0]
    assert state.args == [False]
    # where the listener was: 100 frames handed over, the last 10 ms of them not heard yet
    assert player.position() == pytest.approx(3.0 + (100 - stream.latency * RATE) / RATE)
    assert player.play()  # a new stream, from there
    assert len(fake_device.instances) == 2


def test_a_stream_whose_clock_fails_stops_with_a_message(
    qtbot: QtBot, fake_device: type[FakeStream], files: dict[str, Path]
) -> None:
    player = Player()
    player.open_source(files["minute"])
    assert player.play(0.0)
    (stream,) = fake_device.instances
    with qtbot.waitSignal(player.errorOccurred) as error:
        stream.broken = True  # noticed by the next poll
    assert "Device unavailable" in error.args[0]
    assert not player.is_playing()


def test_a_stream_that_fails_to_open_is_reported(
    qtbot: QtBot, fake_device: type[FakeStream], files: dict[str, Path]
) -> None:
    player = Player()
    player.open_source(files["minute"])
    fake_device.fail_start = sd.PortAudioError("Device unavailable")
    with qtbot.waitSignal(player.errorOccurred) as error:
        assert player.play(0.0) is False
    assert "Device unavailable" in error.args[0]
    assert not player.is_playing()
    fake_device.fail_start = None
    assert player.play(0.0)  # a later attempt opens a new stream
    assert len(fake_device.instances) == 2
    player.close()


def test_nothing_open_plays_nothing(qtbot: QtBot, fake_device: type[FakeStream]) -> None:
    player = Player()
    assert player.play() is False
    assert player.position() == 0.0
    assert fake_device.instances == []
    with qtbot.waitSignal(player.errorOccurred) as error:
        assert not player.open_source("/nonexistent/file.wav")
    assert "nonexistent" in error.args[0]


def test_a_chosen_device_that_was_unplugged_falls_back_to_the_default(
    qtbot: QtBot, fake_device: type[FakeStream], files: dict[str, Path]
) -> None:
    player = Player(device="USB headset")
    assert player.device is not None and player.device.index == 1
    assert player.device_notice == ""
    player.open_source(files["minute"])
    fake_device.unplugged = True
    with qtbot.waitSignal(player.noticeOccurred) as notice:
        assert player.play(1.0)  # on the default instead
    assert "USB headset" in notice.args[0] and "default" in notice.args[0]
    assert [s.kwargs["device"] for s in fake_device.instances] == [1, 0]
    assert player.is_playing()
    assert player.device is not None and player.device.is_default
    player.close()


def test_the_output_device_is_remembered_by_name(settings_path: Path) -> None:
    from diagnostics_app.qt.settings import AppSettings, SettingsStore

    assert AppSettings().output_device == ""  # the default device
    SettingsStore(settings_path).save(AppSettings(output_device="USB headset"))
    assert SettingsStore(settings_path).load().output_device == "USB headset"
