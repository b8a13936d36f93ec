"""Streaming playback, Qt-free and device-free: a reader thread decodes the source on demand into
a bounded ring of blocks that an audio callback drains.

The pattern is sounddevice's "play a long file" example (a queue of blocks between a reader and
the callback), with the queue preallocated so memory stays flat whatever the file's length:

- **The ring** is ``slots`` blocks of ``chunk`` frames (about one second of audio in all), each
  with its length, the file frame it starts at and the *epoch* it was read for. The reader
  thread is the only writer of blocks and of ``_written`` (blocks published); the callback is
  the only writer of ``_read`` and ``_offset`` (blocks and frames consumed). A block is
  published (``_written += 1``) only after its samples and metadata are in place, and the
  reader never writes a block the callback has not finished with (it waits for space). No lock
  is shared: each counter has one writer, and the other thread only reads it.
- **Commands** (play from here, stop there, loop that range) are one immutable
  :class:`Command` swapped in by the control thread; each has a new epoch. The reader seeks
  and refills for the new epoch; the callback skips blocks of older epochs and outputs silence
  until the new epoch's first block is there (a flush without any lock or stream restart).
- **The callback** (:meth:`PlaybackStream.render`) copies, or mixes through a small matrix for
  channel solo/mute, the next frames into the device's buffer. It allocates no arrays, takes
  no lock and never waits: when the ring is empty it outputs silence and counts an underrun.
  The one synchronisation call it makes is ``Event.set()`` to wake a reader that is waiting for
  space, at most once per half-ring drained.
- **The heard position**: for every run of file frames it outputs, the callback notes in a
  small preallocated history where in the output stream (frame count) the run starts and which
  file frame it is, and for each buffer when its first frame reaches the DAC (PortAudio's
  ``outputBufferDacTime``). :meth:`PlaybackStream.heard_frame` turns "now" into the output
  frame being heard and that into a file frame through the history: the playhead follows
  what the listener hears, not what was handed to the device.

The audio device itself (sounddevice, PortAudio) stays out of the core: see
``diagnostics_app.audio_out``.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf

from diagnostics_app.core.audio import read_info

CHUNK_FRAMES = 4096  # frames per ring block (85 ms at 48 kHz)
RING_SECONDS = 1.0  # audio the ring holds
HISTORY = 2048  # runs of output remembered for the heard position
MIN_LOOP_FRAMES = 256  # a shorter loop is lengthened to this
_WAIT_S = 0.1  # reader's longest sleep (it is woken when space frees up)


class FrameSource(Protocol):
    """What the reader thread reads from: seek, then fill arrays of (frames, channels)."""

    sample_rate: int
    channels: int
    frames: int  # the length the header states (an estimate for some lossy formats)

    def seek(self, frame: int) -> None: ...

    def read_into(self, out: np.ndarray) -> int:
        """Fill ``out[:n]`` ((frames, channels) float32) with the next frames; return n, 0 at
        the end."""
        ...

    def close(self) -> None: ...


class FileSource:
    """An audio file decoded on demand with soundfile. The header is read at construction
    (raising :class:`AudioError` for a file that cannot be played); the file is opened for
    decoding on the first seek, in the thread that reads it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        info = read_info(path)
        self.path = Path(path)
        self.sample_rate = info.sample_rate
        self.channels = info.channels
        self.frames = info.frames
        self._file: sf.SoundFile | None = None

    def seek(self, frame: int) -> None:
        if self._file is None:
            self._file = sf.SoundFile(self.path)
        self._file.seek(frame)

    def read_into(self, out: np.ndarray) -> int:
        if self._file is None:
            self.seek(0)
        assert self._file is not None
        return len(self._file.read(out=out))

    def close(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            f.close()


class ArraySource:
    """Samples already in memory, (frames, channels) float32 (the deprecated ``load()``)."""

    def __init__(self, samples: np.ndarray, sample_rate: int) -> None:
        data = np.asarray(samples, np.float32)
        if data.ndim == 1:
            data = data[:, None]
        if data.ndim != 2:
            raise ValueError(f"samples must be (frames, channels), got shape {data.shape}")
        self._data = np.ascontiguousarray(data)
        self.sample_rate = int(sample_rate)
        self.channels = int(data.shape[1])
        self.frames = int(data.shape[0])
        self._pos = 0

    def seek(self, frame: int) -> None:
        self._pos = min(max(0, frame), self.frames)

    def read_into(self, out: np.ndarray) -> int:
        n = min(out.shape[0], self.frames - self._pos)
        out[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        pass


def channel_mix(n_in: int, n_out: int, mask: tuple[bool, ...] | None = None) -> np.ndarray | None:
    """The (n_in, n_out) matrix that routes the source's channels to the device's, with the
    channels whose ``mask`` entry is False muted; None when it is the identity.

    Channels map one to one, and those beyond the device's are dropped; to a mono device the
    audible channels are averaged; a single audible channel of a multichannel source (a solo)
    goes to every output channel, so it is heard whichever channel it is."""
    audible = tuple(mask[i] if mask is not None and i < len(mask) else True for i in range(n_in))
    if all(audible) and n_in == n_out:
        return None
    mix = np.zeros((n_in, n_out), np.float32)
    on = [i for i, a in enumerate(audible) if a]
    if not on:
        return mix
    if n_out == 1:
        mix[on, 0] = 1.0 / len(on)
    elif len(on) == 1 and n_in > 1:
        mix[on[0], :] = 1.0
    else:
        for i in on:
            if i < n_out:
                mix[i, i] = 1.0
    return mix


@dataclass(frozen=True)
class Command:
    """What to play: from ``start`` up to ``stop`` (exclusive), wrapping from ``loop_end``
    back to ``loop_start`` when a loop is set (``loop_end > loop_start``) and reached."""

    epoch: int
    start: int
    stop: int
    loop_start: int = 0
    loop_end: int = 0

    @property
    def loops(self) -> bool:
        return self.loop_end > self.loop_start


@dataclass(frozen=True)
class StreamStats:
    callbacks: int
    output_frames: int  # frames handed to the device, silence included
    delivered_frames: int  # frames of the source among them
    underruns: int  # callbacks that found the ring empty mid-play (silence output)
    underrun_frames: int
    worst_callback_s: float  # longest time spent in the callback
    worst_load: float  # max over callbacks of (time in the callback) / (its buffer's duration)
    mean_load: float  # all the time in the callback / all the buffers' duration
    durations: tuple[tuple[float, float], ...]  # the latest (seconds in callback, buffer period)


class PlaybackStream:
    """The ring, its reader thread and the callback's body; see the module docstring.

    Control methods (:meth:`post`, :meth:`set_mask`, :meth:`begin_session`,
    :meth:`heard_frame`, :meth:`close`) are called from one control thread; :meth:`render`
    from the audio callback's thread only."""

    def __init__(
        self,
        source: FrameSource,
        out_channels: int | None = None,
        *,
        chunk_frames: int = CHUNK_FRAMES,
        ring_seconds: float = RING_SECONDS,
    ) -> None:
        self.source = source
        self.rate = int(source.sample_rate)
        self.in_channels = int(source.channels)
        self.out_channels = int(out_channels or source.channels)
        self.chunk = int(chunk_frames)
        self.slots = max(4, math.ceil(ring_seconds * self.rate / self.chunk))
        self._data = np.zeros((self.slots, self.chunk, self.in_channels), np.float32)
        self._slot_len = [0] * self.slots
        self._slot_file = [0] * self.slots
        self._slot_epoch = [-1] * self.slots
        self._slot_end = [False] * self.slots
        self._written = 0  # blocks published (reader thread)
        self._read = 0  # blocks consumed (callback)
        self._offset = 0  # frames consumed of block ``_read`` (callback)
        self._command = Command(0, 0, 0)  # epoch 0: nothing to play
        self._mask: tuple[bool, ...] | None = None
        self._mix = channel_mix(self.in_channels, self.out_channels)
        # reader thread
        self._wake = threading.Event()
        self._reader_waiting = False
        self._thread: threading.Thread | None = None
        self._quit = False
        self.failure: str | None = None  # set by the reader when the source cannot be read
        # callback side: counters, the epoch that has started sounding and the one that ended
        self._out_total = 0
        self._primed = 0
        self.ended_epoch = 0
        self._callbacks = 0
        self._delivered = 0
        self._underruns = 0
        self._underrun_frames = 0
        self._worst_s = 0.0
        self._worst_load = 0.0
        self._spent_s = 0.0
        self._dur = [0.0] * 1024
        self._period = [0.0] * 1024
        # runs of source frames in the output: output frame, source frame, length, epoch
        self._h_out = [0] * HISTORY
        self._h_file = [0] * HISTORY
        self._h_len = [0] * HISTORY
        self._h_epoch = [0] * HISTORY
        self._h_count = 0
        # tests and tools: called in the callback with each run of source frames output
        # (the output rows, the source frame of the first, the epoch); None in the app
        self.tap: Callable[[np.ndarray, int, int], None] | None = None
        # the latest buffer: (its first output frame, its DAC time); None before one
        self._last_block: tuple[int, float] | None = None
        self._session_out0 = 0  # output frames before the current stream start (dropped)

    # --- control thread -------------------------------------------------------------------

    @property
    def command(self) -> Command:
        return self._command

    def post(self, start: int, stop: int | None = None, loop: tuple[int, int] | None = None) -> int:
        """Play from frame ``start`` up to ``stop`` (None: the end), looping ``loop`` when
        reached; the ring is flushed and refilled from ``start``. Starts the reader thread on
        first use. Returns the new epoch."""
        frames = self.source.frames
        start = min(max(0, int(start)), frames)
        stop = frames if stop is None else min(max(start, int(stop)), frames)
        loop_start = loop_end = 0
        if loop is not None:
            loop_start = min(max(0, int(loop[0])), frames)
            loop_end = min(max(int(loop[1]), loop_start + MIN_LOOP_FRAMES), frames)
        epoch = self._command.epoch + 1
        self._command = Command(epoch, start, stop, loop_start, loop_end)
        self._ensure_reader()
        self._wake.set()
        return epoch

    def set_mask(self, mask: tuple[bool, ...] | None) -> None:
        """Mute the channels whose entry is False (None: all audible); takes effect at the
        next buffer (the callback reads the matrix once per buffer)."""
        self._mask = mask
        self._mix = channel_mix(self.in_channels, self.out_channels, mask)

    @property
    def mask(self) -> tuple[bool, ...] | None:
        return self._mask

    def begin_session(self) -> None:
        """Call before (re)starting the device: output from an earlier start was dropped."""
        self._last_block = None
        self._session_out0 = self._out_total

    def ended(self) -> bool:
        """The callback has output the last frame of the current command."""
        return self.ended_epoch == self._command.epoch != 0

    def buffered_frames(self) -> int:
        """Frames in the ring for the current epoch, not yet output (approximate)."""
        return self.readahead()[0]

    def readahead(self) -> tuple[int, bool]:
        """Frames in the ring for the current epoch not yet output, and whether the reader
        has reached the command's end (approximate while both threads run)."""
        epoch = self._command.epoch
        total = 0
        end = False
        for k in range(self._read, self._written):
            s = k % self.slots
            if self._slot_epoch[s] == epoch:
                total += self._slot_len[s] - (self._offset if k == self._read else 0)
                end = end or self._slot_end[s]
        return max(0, total), end

    def heard_frame(self, now: float | None = None, latency_s: float = 0.0) -> int:
        """The source frame the listener hears at stream time ``now``: from the latest
        buffer's DAC time when the device reports one, else ``latency_s`` behind the frames
        output so far. Before the current command's first frame is heard: its start."""
        cmd = self._command
        out_total = self._out_total
        block = self._last_block
        if block is None:
            return cmd.start
        out_start, dac = block
        if now is not None and dac > 0.0:
            heard = out_start + (now - dac) * self.rate
        else:
            heard = out_total - latency_s * self.rate
        heard = min(max(heard, float(self._session_out0)), float(out_total))
        run = self._run_at(math.floor(heard))
        if run is None:
            return cmd.start
        out, file, n, epoch = run
        if epoch != cmd.epoch:
            return cmd.start
        return file + min(math.floor(heard) - out, n)

    def stats(self) -> StreamStats:
        n = min(self._callbacks, len(self._dur))
        k0 = self._callbacks - n
        durations = tuple(
            (self._dur[k % len(self._dur)], self._period[k % len(self._dur)])
            for k in range(k0, self._callbacks)
        )
        return StreamStats(
            self._callbacks,
            self._out_total,
            self._delivered,
            self._underruns,
            self._underrun_frames,
            self._worst_s,
            self._worst_load,
            self._spent_s * self.rate / self._out_total if self._out_total else 0.0,
            durations,
        )

    def close(self) -> None:
        """Stop the reader thread (waits for it) and close the source."""
        self._quit = True
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=10.0)
        self.source.close()

    # --- reader thread --------------------------------------------------------------------

    def _ensure_reader(self) -> None:
        if self._thread is None and not self._quit:
            self._thread = threading.Thread(
                target=self._reader_main, name="playback-reader", daemon=True
            )
            self._thread.start()

    def _reader_main(self) -> None:
        epoch = 0
        cmd = self._command
        next_frame = 0
        done = True  # nothing to read until a command arrives
        while not self._quit:
            if self._command.epoch != epoch:
                cmd = self._command
                epoch = cmd.epoch
                next_frame = cmd.start
                done = False
                try:
                    self.source.seek(next_frame)
                except Exception as exc:
                    self._fail(exc, epoch)
                    done = True
            if done or self._written - self._read >= self.slots:
                self._reader_waiting = not done
                # idle until the next command or close(); when full, the callback wakes it
                # once half the ring is free (and the time-out covers a missed wake-up)
                self._wake.wait(None if done else _WAIT_S)
                self._wake.clear()
                self._reader_waiting = False
                continue
            try:
                next_frame, done = self._fill_one(cmd, next_frame)
            except Exception as exc:
                self._fail(exc, epoch)
                done = True

    def _fill_one(self, cmd: Command, next_frame: int) -> tuple[int, bool]:
        """Read and publish one block; returns the next frame and whether the command is
        done (its end block published)."""
        if cmd.loops and next_frame == cmd.loop_end <= cmd.stop:  # the loop's end: wrap
            self.source.seek(cmd.loop_start)
            return cmd.loop_start, False
        limit = cmd.stop
        if cmd.loops and next_frame < cmd.loop_end:
            limit = min(limit, cmd.loop_end)
        n = min(self.chunk, limit - next_frame)
        s = self._written % self.slots
        got = self.source.read_into(self._data[s, :n]) if n > 0 else 0
        self._slot_len[s] = got
        self._slot_file[s] = next_frame
        self._slot_epoch[s] = cmd.epoch
        self._slot_end[s] = got == 0  # the end of the command (or of the file)
        self._written += 1  # publish: after the samples and the metadata
        return next_frame + got, got == 0

    def _fail(self, exc: BaseException, epoch: int) -> None:
        self.failure = f"cannot read {getattr(self.source, 'path', 'the audio')}: {exc}"
        if self._written - self._read < self.slots:  # an end block, so the callback stops
            s = self._written % self.slots
            self._slot_len[s] = 0
            self._slot_file[s] = 0
            self._slot_epoch[s] = epoch
            self._slot_end[s] = True
            self._written += 1

    # --- audio callback -------------------------------------------------------------------

    def render(self, out: np.ndarray, now: float = 0.0, dac: float = 0.0) -> bool:
        """Fill ``out`` ((frames, out_channels) float32) with the next frames; silence where
        there are none. ``dac``: when its first frame reaches the DAC (stream time; 0 when
        unknown). Returns True when the command's last frame has been output."""
        t0 = time.perf_counter()
        frames = out.shape[0]
        epoch = self._command.epoch
        mix = self._mix
        slots = self.slots
        out_start = self._out_total
        pos = 0
        finished = False
        read = self._read
        offset = self._offset
        while pos < frames and read < self._written:
            s = read % slots
            if self._slot_epoch[s] != epoch:  # flushed by a newer command: skip
                read += 1
                offset = 0
                continue
            if self._slot_end[s]:
                finished = True
                break
            n = min(self._slot_len[s] - offset, frames - pos)
            src = self._data[s, offset : offset + n]
            dst = out[pos : pos + n]
            if mix is None:
                np.copyto(dst, src)
            else:
                np.matmul(src, mix, out=dst)
            if self.tap is not None:
                self.tap(dst, self._slot_file[s] + offset, epoch)
            h = self._h_count % HISTORY
            self._h_out[h] = out_start + pos
            self._h_file[h] = self._slot_file[s] + offset
            self._h_len[h] = n
            self._h_epoch[h] = epoch
            self._h_count += 1
            pos += n
            offset += n
            if offset >= self._slot_len[s]:
                read += 1
                offset = 0
        self._read = read
        self._offset = offset
        if pos:
            self._primed = epoch
            self._delivered += pos
        if pos < frames:
            out[pos:] = 0.0
            if finished:
                self.ended_epoch = epoch
            elif self._primed == epoch and epoch:
                self._underruns += 1
                self._underrun_frames += frames - pos
        if self._reader_waiting and self._written - read <= slots // 2:
            self._reader_waiting = False
            self._wake.set()
        self._last_block = (out_start, dac)
        self._out_total = out_start + frames
        k = self._callbacks % len(self._dur)
        spent = time.perf_counter() - t0
        period = frames / self.rate
        self._dur[k] = spent
        self._period[k] = period
        self._callbacks += 1
        self._spent_s += spent
        if spent > self._worst_s:
            self._worst_s = spent
        if period > 0 and spent / period > self._worst_load:
            self._worst_load = spent / period
        return finished

    def _run_at(self, frame: int) -> tuple[int, int, int, int] | None:
        """The latest output run starting at or before output frame ``frame``."""
        for _ in range(3):
            count = self._h_count
            lo, hi = max(0, count - HISTORY // 2), count
            if hi == lo:
                return None
            if self._h_out[lo % HISTORY] > frame:
                return None
            a, b = lo, hi - 1  # invariant: entry a starts at or before frame
            while a < b:
                m = (a + b + 1) // 2
                if self._h_out[m % HISTORY] <= frame:
                    a = m
                else:
                    b = m - 1
            i = a % HISTORY
            run = (self._h_out[i], self._h_file[i], self._h_len[i], self._h_epoch[i])
            if self._h_count - lo <= HISTORY:  # nothing read was overwritten meanwhile
                return run
        return None


__all__ = [
    "ArraySource",
    "Command",
    "FileSource",
    "FrameSource",
    "PlaybackStream",
    "StreamStats",
    "channel_mix",
]
