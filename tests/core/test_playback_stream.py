"""The streaming playback core without a device: the test thread plays PortAudio's part and
calls ``render`` itself, so every frame handed out can be checked against the source."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from diagnostics_app.core.errors import AudioError
from diagnostics_app.core.playback_stream import (
    HISTORY,
    ArraySource,
    FileSource,
    PlaybackStream,
    channel_mix,
)

RATE = 8000
TIMEOUT_S = 20.0


def ramp(frames: int, channels: int = 2) -> np.ndarray:
    """Each frame says where it is: channel c of frame i is (i + 1) * (c + 1) / 2**22."""
    i = np.arange(1, frames + 1, dtype=np.float64)[:, None]
    return (i * np.arange(1, channels + 1) / 2**22).astype(np.float32)


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT_S) -> None:
    """Wait for ``condition`` (the reader thread works meanwhile); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


@pytest.fixture
def streams() -> Iterator[list[PlaybackStream]]:
    made: list[PlaybackStream] = []
    yield made
    for s in made:
        s.close()


def make(
    streams: list[PlaybackStream], samples: np.ndarray, out_channels: int | None = None, **kw: int
) -> PlaybackStream:
    s = PlaybackStream(ArraySource(samples, RATE), out_channels, **kw)
    streams.append(s)
    return s


class Recorder:
    """The engine's tap: each run of source frames output, as (source frame, rows, epoch)."""

    def __init__(self, stream: PlaybackStream) -> None:
        self.runs: list[tuple[int, np.ndarray, int]] = []
        stream.tap = lambda rows, frame, epoch: self.runs.append((frame, rows.copy(), epoch))

    def frames(self, epoch: int | None = None) -> list[int]:
        """The source frame of every frame output (of ``epoch``), in order."""
        out: list[int] = []
        for start, rows, e in self.runs:
            if epoch is None or e == epoch:
                out.extend(range(start, start + len(rows)))
        return out


def pull(stream: PlaybackStream, frames: int, block: int = 64) -> tuple[np.ndarray, bool]:
    """Render ``frames`` frames in blocks, waiting for the reader before each block (as if
    the device were slower than the disk). Returns the output and whether the end came."""
    out = np.full((frames, stream.out_channels), np.nan, np.float32)
    pos = 0
    while pos < frames:
        n = min(block, frames - pos)
        wait_until(lambda n=n: stream.readahead()[0] >= n or stream.readahead()[1])
        if stream.render(out[pos : pos + n]):
            out[pos + n :] = 0.0
            return out, True
        pos += n
    return out, False


def test_frames_from_the_start_position_in_order(streams: list[PlaybackStream]) -> None:
    src = ramp(50_000)
    stream = make(streams, src, chunk_frames=1000, ring_seconds=0.5)
    rec = Recorder(stream)
    stream.post(12_345)
    out, ended = pull(stream, 20_000, block=333)  # blocks straddle ring blocks
    assert not ended
    assert np.array_equal(out, src[12_345:32_345])
    assert rec.frames() == list(range(12_345, 32_345))
    assert stream.heard_frame() == 32_345  # no DAC times, no latency: all of it heard
    assert stream.stats().delivered_frames == 20_000
    assert stream.stats().underruns == 0


def test_the_ring_stays_bounded_whatever_the_source(streams: list[PlaybackStream]) -> None:
    short = make(streams, ramp(RATE))
    long = PlaybackStream(ArraySource(np.zeros((RATE * 3600, 2), np.float32), RATE))
    streams.append(long)
    assert long._data.nbytes == short._data.nbytes  # about a second of audio, preallocated
    assert short._data.nbytes <= 2 * 2 * 4 * (RATE + 4096)


def test_play_to_the_end_then_silence_and_done(streams: list[PlaybackStream]) -> None:
    src = ramp(10_000)
    stream = make(streams, src, chunk_frames=512)
    stream.post(9_000)
    out, ended = pull(stream, 5_000, block=256)
    assert ended
    assert np.array_equal(out[:1000], src[9_000:])
    assert np.all(out[1000:] == 0.0)
    assert stream.ended()
    assert stream.heard_frame() == 10_000
    assert stream.stats().delivered_frames == 1000


def test_a_range_once_stops_at_its_end(streams: list[PlaybackStream]) -> None:
    src = ramp(10_000)
    stream = make(streams, src, chunk_frames=700)
    stream.post(2_000, 4_500)
    out, ended = pull(stream, 4_000)
    assert ended
    assert np.array_equal(out[:2500], src[2_000:4_500])
    assert stream.heard_frame() == 4_500


def test_a_seek_flushes_what_was_read_ahead(streams: list[PlaybackStream]) -> None:
    src = ramp(100_000)
    stream = make(streams, src, chunk_frames=1000)
    rec = Recorder(stream)
    first = stream.post(0)
    pull(stream, 1500)
    wait_until(lambda: stream.buffered_frames() > 3000)  # the ring has read ahead
    second = stream.post(70_000)
    assert stream.heard_frame() == 70_000  # the new position, before any of it is heard
    out = np.zeros((10, 2), np.float32)
    stream.render(out)  # may come before the reader has refilled: silence, not old frames
    assert rec.frames(first) == list(range(1500))
    got, _ = pull(stream, 3000)
    after = rec.frames(second)
    assert after[:3000] == list(range(70_000, 73_000))
    assert rec.frames(first) == list(range(1500))  # nothing read before the seek was output
    assert stream.stats().underruns == 0  # waiting for a seek's first block is not an underrun
    del got


def test_a_loop_wraps_exactly(streams: list[PlaybackStream]) -> None:
    src = ramp(20_000)
    stream = make(streams, src, chunk_frames=300)
    rec = Recorder(stream)
    stream.post(1_000, None, (1_500, 2_200))
    out, ended = pull(stream, 3_000, block=128)
    assert not ended
    want = list(range(1_000, 2_200)) + list(range(1_500, 2_200)) * 3
    assert rec.frames() == want[:3000]
    assert np.array_equal(out, src[want[:3000]])
    # the heard position is inside the loop, where the last frame came from
    assert stream.heard_frame() == want[2999] + 1


def test_channel_mask_mutes_and_solos(streams: list[PlaybackStream]) -> None:
    src = ramp(4000, channels=3)
    stream = make(streams, src, out_channels=2)
    stream.set_mask((True, False, True))
    stream.post(0)
    out, _ = pull(stream, 100)
    assert np.array_equal(out[:, 0], src[:100, 0])  # channel 3 has no output: dropped
    assert np.all(out[:, 1] == 0.0)  # channel 2 muted
    stream.set_mask((False, False, True))  # solo channel 3: on both outputs
    out, _ = pull(stream, 100)
    assert np.array_equal(out, np.repeat(src[100:200, 2:3], 2, axis=1))


def test_channel_mix_matrices() -> None:
    assert channel_mix(2, 2) is None
    assert channel_mix(2, 2, (True, True)) is None
    m = channel_mix(2, 1)
    assert m is not None and np.allclose(m[:, 0], [0.5, 0.5])  # mono device: the average
    m = channel_mix(4, 1, (False, True, False, True))
    assert m is not None and np.allclose(m[:, 0], [0, 0.5, 0, 0.5])
    m = channel_mix(2, 2, (False, False))
    assert m is not None and not m.any()
    m = channel_mix(4, 2)
    assert m is not None and np.array_equal(m, [[1, 0], [0, 1], [0, 0], [0, 0]])


def test_heard_position_lags_by_the_output_latency(streams: list[PlaybackStream]) -> None:
    """The playhead follows the DAC: a buffer rendered at stream time t with its first frame
    reaching the DAC at t + 0.05 s is heard from then on, not when it was handed over."""
    src = ramp(40_000)
    stream = make(streams, src)
    stream.post(8_000)
    stream.begin_session()
    out = np.zeros((800, 2), np.float32)  # 0.1 s per buffer
    now = 100.0
    for _ in range(5):
        wait_until(lambda: stream.buffered_frames() >= 800)
        stream.render(out, now, now + 0.05)
        now += 0.1
    # 5 buffers handed over (source frames 8000..12000); the last reaches the DAC at 100.45
    assert stream.heard_frame(100.45, 0.0) == 8_000 + 4 * 800
    assert stream.heard_frame(100.47, 0.0) == 8_000 + 4 * 800 + round(0.02 * RATE)
    assert stream.heard_frame(100.40, 0.0) == 8_000 + 4 * 800 - round(0.05 * RATE)
    assert stream.heard_frame(200.0, 0.0) == 12_000  # never past what was handed over
    # no DAC time from the device: the stream's stated latency behind what was handed over
    wait_until(lambda: stream.buffered_frames() >= 800)  # a whole buffer (not an underrun)
    stream.render(out, 0.0, 0.0)
    assert stream.heard_frame(None, 0.025) == 12_800 - 200
    # after a new start (the device dropped its buffers), only new output counts
    stream.post(30_000)
    stream.begin_session()
    assert stream.heard_frame(0.0, 0.025) == 30_000


def test_underruns_are_counted_and_filled_with_silence(streams: list[PlaybackStream]) -> None:
    stream = make(streams, ramp(100_000), chunk_frames=256, ring_seconds=0.1)
    stream.post(0)
    pull(stream, 10)  # primed: the first frames sounded
    out = np.full((50_000, 2), np.nan, np.float32)  # far more than the ring holds
    stream.render(out)
    assert np.all(np.isfinite(out))
    stats = stream.stats()
    assert stats.underruns == 1
    assert 0 < stats.underrun_frames <= 50_000
    assert stats.worst_callback_s > 0.0
    assert stats.durations[-1][1] == pytest.approx(50_000 / RATE)


class BrokenSource(ArraySource):
    def read_into(self, out: np.ndarray) -> int:
        if self._pos >= 3000:
            raise OSError("disk gone")
        return super().read_into(out)


def test_a_source_that_fails_ends_playback_with_a_message(
    streams: list[PlaybackStream],
) -> None:
    stream = PlaybackStream(BrokenSource(ramp(10_000), RATE), chunk_frames=1000)
    streams.append(stream)
    stream.post(0)
    out, ended = pull(stream, 10_000)
    assert ended
    assert np.array_equal(out[:3000], ramp(3000))
    assert stream.failure is not None and "disk gone" in stream.failure


def test_history_lookups_survive_many_small_runs(streams: list[PlaybackStream]) -> None:
    stream = make(streams, ramp(200_000), chunk_frames=64)
    stream.post(0)
    pull(stream, 64 * (HISTORY + 100), block=64)
    assert stream.heard_frame() == 64 * (HISTORY + 100)


def test_file_source_reads_the_header_only_until_played(tmp_path: Path) -> None:
    path = tmp_path / "a.flac"
    src = ramp(30_000)
    sf.write(path, src, RATE, subtype="PCM_24")
    source = FileSource(path)
    assert (source.frames, source.channels, source.sample_rate) == (30_000, 2, RATE)
    assert source._file is None  # nothing opened for decoding yet
    stream = PlaybackStream(source, chunk_frames=1000)
    try:
        assert source._file is None
        stream.post(25_000)
        out, ended = pull(stream, 6000)
        assert ended
        assert np.array_equal(out[:5000], src[25_000:])  # 24-bit: exact in float32
    finally:
        stream.close()
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVE")
    with pytest.raises(AudioError):
        FileSource(tmp_path / "bad.wav")


def test_close_stops_the_reader(streams: list[PlaybackStream]) -> None:
    stream = PlaybackStream(ArraySource(ramp(100_000), RATE))
    stream.post(0)
    wait_until(lambda: stream.buffered_frames() > 0)
    thread = stream._thread
    assert thread is not None and thread.is_alive()
    stream.close()
    assert not thread.is_alive()
    assert threading.active_count() >= 1
