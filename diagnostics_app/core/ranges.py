"""Where the audio changed, and what that touches: block digests, their diff, and reach.

**Block digests.** Besides the whole-file content digest (the file's bytes, see
:func:`core.audio.content_digest`), every version of a source's audio is described by the
digests of fixed blocks of its *decoded* samples: :data:`BLOCK_FRAMES` frames each (the last
block is shorter). Two versions compared block by block give the changed sample ranges
(:func:`changed_ranges`); the choice of the block size is argued in docs/design.md.

**Reach.** A calculator declares, per frame, which samples that frame reads
(:class:`Reach`: frame ``t`` reads ``[t * step - before, t * step + after)``).
:func:`affected_frames` maps changed sample ranges to the frames whose reads overlap them: every
other frame is bit-identical after the edit (``tests/core/test_ranges_reach.py`` checks it
against real recomputations). A calculator that cannot bound its reach declares ``None``.

**Algorithm.** A block's digest is XXH3-128 (``"x3"``) of its samples interleaved as
little-endian float32; stores written before index schema 9 hold BLAKE2b-128 (``"b2"``) digests
of the same bytes, kept with their algorithm (``BlockDigests.algorithm``, ``audio_blocks``):
digests of two algorithms are never compared (:func:`changed_ranges`: the whole file changed).
The algorithms and why: :mod:`core.hashing`.

Pure values and functions (numpy and the digests only): the audio module computes the digests,
the store keeps them, the diagnostics report the ranges (their text: :mod:`core.fingerprint`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from diagnostics_app.core import hashing

# 65,536 frames: 1.37 s at 48 kHz, 1.49 s at 44.1 kHz. 16 bytes of digest per block: an hour at
# 48 kHz is 2,637 blocks, 42 KB per audio version; a changed range is reported to within one
# block (smaller blocks: a larger index and more hashing calls; larger: coarser ranges).
BLOCK_FRAMES: Final = 1 << 16
DIGEST_BYTES: Final = 16

SampleRange = tuple[int, int]  # [start, stop) in frames (samples per channel)
FrameRange = tuple[int, int]  # [first, last] frame indices, both included


@dataclass(frozen=True)
class BlockDigests:
    """The decoded audio of one file version, as digests of consecutive blocks."""

    sample_rate: int
    channels: int
    frames: int
    block_frames: int
    digests: bytes  # DIGEST_BYTES per block, in order
    algorithm: str  # of the digests: core.hashing's name ("x3"; "b2" in older stores)

    @property
    def count(self) -> int:
        return len(self.digests) // DIGEST_BYTES

    def block(self, i: int) -> bytes:
        return self.digests[i * DIGEST_BYTES : (i + 1) * DIGEST_BYTES]


class BlockHasher:
    """Digests of :data:`BLOCK_FRAMES`-frame blocks of decoded audio fed in pieces of any size
    (the decoder's reads need not line up with the blocks), with ``algorithm`` (the current
    one, or the one of the digests a decode is checked against)."""

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        block_frames: int = BLOCK_FRAMES,
        algorithm: str = hashing.CURRENT,
    ) -> None:
        if not hashing.known(algorithm):
            raise ValueError(f"block digests: unknown algorithm {algorithm!r}")
        self.sample_rate, self.channels, self.block_frames = sample_rate, channels, block_frames
        self.algorithm = algorithm
        # the block being filled, interleaved (frames, channels) little-endian float32: each
        # piece is copied in once, channel by channel (a column write from a contiguous row is
        # ~4x faster than numpy's transposing copy, and the digest of XXH3 costs less than
        # either), so the bytes hashed never depend on how the decoder's reads were cut
        self._block = np.empty((block_frames, channels), "<f4")
        self._filled = 0
        self._frames = 0
        self._out = bytearray()

    def feed(self, samples: np.ndarray) -> None:
        """``samples``: float32 (channels, n), the next ``n`` frames of the file."""
        n = samples.shape[1]
        self._frames += n
        at = 0
        while at < n:
            take = min(n - at, self.block_frames - self._filled)
            rows = self._block[self._filled : self._filled + take]
            for c in range(self.channels):
                rows[:, c] = samples[c, at : at + take]
            self._filled += take
            at += take
            if self._filled == self.block_frames:
                self._digest()

    def _digest(self) -> None:
        # hashed through the buffer protocol: no copy of the block
        block = self._block[: self._filled]
        self._out += hashing.digest(self.algorithm, block.data)
        self._filled = 0

    def result(self) -> BlockDigests:
        if self._filled:
            self._digest()
        return BlockDigests(
            self.sample_rate,
            self.channels,
            self._frames,
            self.block_frames,
            bytes(self._out),
            self.algorithm,
        )


def digest_blocks(
    samples: Iterable[np.ndarray],
    sample_rate: int,
    channels: int,
    block_frames: int = BLOCK_FRAMES,
) -> BlockDigests:
    """Block digests of decoded audio given as consecutive (channels, n) float32 pieces."""
    hasher = BlockHasher(sample_rate, channels, block_frames)
    for piece in samples:
        hasher.feed(piece)
    return hasher.result()


def changed_ranges(old: BlockDigests, new: BlockDigests) -> tuple[SampleRange, ...] | None:
    """The sample ranges of ``new`` that differ from ``old``, merged, in order; None when the
    versions cannot be compared sample by sample (another sample rate, channel count, block
    size or digest algorithm: the whole file changed). A length change is the range between
    the two lengths (the frames past the shorter end exist on one side only); an insertion or
    a deletion shifts every later sample, so every block from it to the end is reported."""
    if (old.sample_rate, old.channels, old.block_frames, old.algorithm) != (
        new.sample_rate,
        new.channels,
        new.block_frames,
        new.algorithm,
    ):
        return None
    size = new.block_frames
    spans: list[SampleRange] = []
    common = min(old.frames, new.frames)
    for i in range(min(old.count, new.count)):
        if old.block(i) != new.block(i):
            spans.append((i * size, min((i + 1) * size, max(old.frames, new.frames))))
    if old.frames != new.frames:
        spans.append((common, max(old.frames, new.frames)))
    return merge(spans)


def merge(spans: Iterable[SampleRange]) -> tuple[SampleRange, ...]:
    """Overlapping or touching ranges joined, in order; empty ones dropped."""
    out: list[list[int]] = []
    for a, b in sorted(s for s in spans if s[1] > s[0]):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return tuple((a, b) for a, b in out)


def seconds(spans: Sequence[SampleRange], sample_rate: int) -> tuple[tuple[float, float], ...]:
    """Sample ranges as ``(start_s, end_s)``, rounded to the microsecond (JSON stays short)."""
    return tuple((round(a / sample_rate, 6), round(b / sample_rate, 6)) for a, b in spans)


@dataclass(frozen=True)
class Reach:
    """The samples one output frame reads: frame ``t`` reads ``[t * step - before,
    t * step + after)`` (samples outside the file read as zeros). ``step`` is the frame hop in
    samples. A frame whose reads avoid every changed sample is unchanged by the edit."""

    before: int
    after: int
    step: int

    def __post_init__(self) -> None:
        if self.step <= 0 or self.before + self.after <= 0:
            raise ValueError(f"reach: step {self.step} and width {self.before + self.after}")


def affected_frames(
    spans: Sequence[SampleRange], reach: Reach | None, n_frames: int
) -> tuple[FrameRange, ...]:
    """The frames (of ``n_frames``) whose reads overlap a changed range, as inclusive
    ``[first, last]`` ranges, merged; every frame when the reach is unbounded (``None``)."""
    if n_frames <= 0 or not spans:
        return ()
    if reach is None:
        return ((0, n_frames - 1),)
    out: list[SampleRange] = []
    for a, b in spans:
        # t * step - before < b  and  t * step + after > a
        first = max(0, _ceil_div(a - reach.after + 1, reach.step))
        last = min(n_frames - 1, _ceil_div(b + reach.before, reach.step) - 1)
        if first <= last:
            out.append((first, last + 1))
    return tuple((a, b - 1) for a, b in merge(out))


def frame_count(reach: Reach, n_samples: int) -> int:
    """Frames a calculator with this reach emits over ``n_samples``: a centred analysis
    (``before > 0``, librosa's ``center=True``) anchors a frame at every ``step`` up to and
    including the end, ``1 + n // step``; a blocked one (``before == 0``, the peaks) one per
    started block."""
    if reach.before > 0:
        return 1 + n_samples // reach.step
    return _ceil_div(n_samples, reach.step)


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)
