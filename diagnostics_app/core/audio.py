"""Audio input: metadata without decoding, streaming decode in blocks, and content digests.

Every failure a file can cause (missing, empty, truncated, corrupt, unsupported, zero sample
rate, no frames, NaN/Inf samples) becomes one :class:`AudioError` naming the file and the cause.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat as stat_module
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf

from diagnostics_app.core import files
from diagnostics_app.core.errors import AudioError
from diagnostics_app.core.ranges import BlockDigests, digest_blocks
from diagnostics_app.core.stamp import FileStamp as FileStamp  # re-exported (the store, tests)

# Decoding block: large enough that per-block overhead vanishes, small enough that memory stays
# flat (2^17 frames of 8-channel float32 = 4 MiB).
DEFAULT_BLOCK_FRAMES = 1 << 17
_DIGEST_CHUNK = 1 << 20


@dataclass(frozen=True)
class AudioInfo:
    """What the file's header says; read without decoding the audio."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str  # e.g. "WAV", "FLAC", "OGG", "MP3", "AIFF"
    subtype: str  # e.g. "PCM_16", "FLOAT", "VORBIS"

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0

    @property
    def length_is_estimate(self) -> bool:
        """The header's frame count is an estimate of what decoding yields (lossy formats)."""
        return self.format in _ESTIMATED_LENGTH


def _stat(path: Path) -> os.stat_result:
    """Stat, and refuse what cannot be audio, before anything opens the file: opening a FIFO
    blocks until a writer appears, and a device has no size (st_size 0, not "empty")."""
    if "\x00" in str(path):
        raise AudioError(files.printable(path), "the path contains a null byte")
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AudioError(path, "file not found") from None
    except PermissionError:
        raise AudioError(path, "permission denied") from None
    except OSError as exc:
        raise AudioError(path, f"cannot access: {exc.strerror or exc}") from None
    if stat_module.S_ISDIR(st.st_mode):
        raise AudioError(path, "is a folder, not an audio file")
    reason = files.non_regular_reason(st.st_mode)
    if reason is not None:
        raise AudioError(path, reason)
    if st.st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    return st


def _open(path: Path) -> sf.SoundFile:
    _stat(path)
    try:
        # bytes: soundfile would encode a str path strictly, and a file name that is not
        # UTF-8 (carried by Python as lone surrogates) would then fail to open
        return sf.SoundFile(os.fsencode(path))
    except PermissionError:
        raise AudioError(path, "permission denied") from None
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(path, _wav_header_problem(path) or _open_cause(exc)) from None


def _libsndfile_text(exc: BaseException) -> str:
    """libsndfile's own words for an error, without the repeated "Error opening '<path>'"."""
    text = getattr(exc, "error_string", None) or str(exc)
    text = text.strip().splitlines()[-1] if text.strip() else type(exc).__name__
    if text.startswith("Error opening") and ": " in text:
        text = text.split(": ", 1)[1].strip() or type(exc).__name__
    if text.startswith("Error : "):
        text = text[len("Error : ") :]
    return text.rstrip(".")


def _open_cause(exc: BaseException) -> str:
    """Why a file that exists (``_stat`` passed) could not be opened as audio."""
    text = _libsndfile_text(exc)
    lowered = text.lower()
    # "not a regular file" comes from libsndfile's MPEG probe when the bytes are no MPEG
    # stream at all: the file exists and is regular (``_stat`` checked), so it is not audio.
    if any(
        marker in lowered
        for marker in ("format not recognised", "unknown format", "not a regular file")
    ):
        return "unsupported or unrecognised audio format"
    if "chunk" in lowered or "malformed" in lowered:
        return f"corrupt or truncated header ({text})"
    return f"cannot decode ({text})"


def _decode_cause(exc: BaseException) -> str:
    """Why decoding failed part-way through the data."""
    return f"corrupt or truncated audio data ({_libsndfile_text(exc)})"


def _wav_header_problem(path: Path) -> str | None:
    """A precise cause for WAV headers libsndfile refuses with a vague message (a zero sample
    rate or channel count gives "SF_INFO struct incomplete"); None if nothing is found."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return None
    endian = "<" if head[:4] == b"RIFF" else ">"
    pos = 12
    while pos + 8 <= len(head):
        chunk_id = head[pos : pos + 4]
        (size,) = struct.unpack(endian + "I", head[pos + 4 : pos + 8])
        if chunk_id == b"fmt ":
            if pos + 16 > len(head):
                return None
            channels, rate = struct.unpack(endian + "HI", head[pos + 10 : pos + 16])
            if rate == 0:
                return "invalid sample rate 0 in the header"
            if channels == 0:
                return "invalid channel count 0 in the header"
            return None
        pos += 8 + size + (size & 1)
    return None


# libsndfile's parse log notes chunks whose declared size exceeds what the file holds:
# "data : 88200 (should be 44078)" (WAV), " SSND : 88208 (should be 44081)" (AIFF).
_SHORT_CHUNK = re.compile(r"^\s*(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)  # "size unknown" markers of streamed WAVs
# Formats whose header frame count is only an estimate of what decoding yields.
_ESTIMATED_LENGTH = ("MP3", "OGG")


def _truncation(f: sf.SoundFile) -> str | None:
    """Evidence in the header that the file was cut short (None if there is none)."""
    log = f.extra_info
    for match in _SHORT_CHUNK.finditer(log):
        declared, present = int(match.group(2)), int(match.group(3))
        if declared > present and declared not in _STREAMING_SIZES:
            return (
                f"truncated: the header declares {declared} bytes of audio data, "
                f"the file holds only {present}"
            )
    # An Ogg file cut short ends in a partial page ("junk") or a page without the final
    # end-of-stream flag; a complete Ogg stream always ends with its end-of-stream page.
    if f.format == "OGG" and (
        "lacks an end-of-stream" in log or "junk after the last page" in log.lower()
    ):
        return "truncated: the Ogg stream does not end with a complete end-of-stream page"
    return None


def read_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Metadata from the header; raises AudioError for anything that cannot be analysed."""
    p = Path(path)
    with _open(p) as f:
        info = AudioInfo(
            str(p), int(f.samplerate), int(f.channels), int(f.frames), f.format, f.subtype
        )
        truncated = _truncation(f)
    if truncated is not None:
        raise AudioError(p, truncated)
    if info.sample_rate <= 0:
        raise AudioError(p, f"invalid sample rate {info.sample_rate}")
    if info.channels <= 0:
        raise AudioError(p, f"invalid channel count {info.channels}")
    if info.frames <= 0:
        raise AudioError(p, "no audio frames (0 samples)")
    return info


def iter_blocks(
    path: str | os.PathLike[str],
    block_frames: int = DEFAULT_BLOCK_FRAMES,
    *,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[np.ndarray]:
    """Decoded float32 blocks of shape (channels, frames), in order, never more than one block
    in memory. Raises AudioError on corrupt data, NaN/Inf samples or a short read.

    ``start``/``stop``: only frames ``[start, stop)`` (``stop`` None: to the end), reached by a
    seek. Blocks keep the grid of a whole decode (each ends at a multiple of ``block_frames``
    counted from the file's start, so the first may be shorter): a computation that
    accumulates per block sees the same pieces as in a whole decode. The short-read check of
    lossy formats (whose header length is an estimate) applies only when reading to the end."""
    p = Path(path)
    info = read_info(p)
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"iter_blocks: frames [{start}, {stop}) of {p}")
    if start > info.frames:
        raise AudioError(p, f"cannot seek to frame {start}: the file has {info.frames}")
    done = 0
    with _open(p) as f:
        if start:
            try:
                f.seek(start)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioError(
                    p, f"cannot seek to {start / info.sample_rate:.2f} s ({_libsndfile_text(exc)})"
                ) from None
        while True:
            at = start + done
            want = block_frames - at % block_frames
            if stop is not None:
                want = min(want, stop - at)
                if want <= 0:
                    break
            try:
                block = f.read(want, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioError(
                    p, f"{_decode_cause(exc)} at {at / info.sample_rate:.2f} s"
                ) from None
            if block.shape[0] == 0:
                break
            if not np.isfinite(block).all():
                bad = int(np.argmin(np.isfinite(block).all(axis=1)))
                raise AudioError(
                    p, f"non-finite sample (NaN or Inf) at {(at + bad) / info.sample_rate:.3f} s"
                )
            done += block.shape[0]
            yield np.ascontiguousarray(block.T)
    if done == 0 and stop is None:
        raise AudioError(p, "no audio frames could be decoded")
    # Lossy formats report an estimate; a clear shortfall means the file was cut off. Other
    # formats state the exact count, and any shortfall does (also before ``stop``).
    if info.format in _ESTIMATED_LENGTH:
        expected = info.frames * 0.99 - 1 if stop is None else 0
    else:
        expected = info.frames if stop is None else min(stop, info.frames)
    if start + done < expected:
        raise AudioError(
            p, f"truncated: header says {info.frames} frames, only {start + done} decoded"
        )


def read_all(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """The whole file as (channels, frames) float32, for tests and small files only."""
    info = read_info(path)
    blocks = list(iter_blocks(path))
    return np.concatenate(blocks, axis=1), info.sample_rate


# --- content digest --------------------------------------------------------------------------


def stamp_of(path: str | os.PathLike[str]) -> FileStamp:
    """The stamp of an audio file (:class:`~diagnostics_app.core.stamp.FileStamp`, the one of
    the app); AudioError, naming the file and why, for what cannot be audio (see ``_stat``)."""
    # (a Path is taken as it is: ``Path(path)`` parses it again, ~15 µs, a 20,000-source
    # diagnosis stamps each source several times)
    return FileStamp.from_stat(_stat(path if isinstance(path, Path) else Path(path)))


class DigestCache(Protocol):
    """Where digests are remembered between runs (the feature store implements it)."""

    def get_digest(self, path: str, stamp: FileStamp) -> str | None: ...

    def put_digest(self, path: str, stamp: FileStamp, digest: str) -> None: ...


class MemoryDigestCache:
    def __init__(self) -> None:
        self._known: dict[tuple[str, FileStamp], str] = {}

    def get_digest(self, path: str, stamp: FileStamp) -> str | None:
        return self._known.get((path, stamp))

    def put_digest(self, path: str, stamp: FileStamp, digest: str) -> None:
        self._known[(path, stamp)] = digest


def hash_file(path: str | os.PathLike[str]) -> str:
    """BLAKE2b-128 of the file's bytes, as ``"b2:<hex>"``."""
    p = Path(path)
    _stat(p)
    h = hashlib.blake2b(digest_size=16)
    try:
        with p.open("rb") as f:
            while chunk := f.read(_DIGEST_CHUNK):
                h.update(chunk)
    except OSError as exc:
        raise AudioError(p, f"cannot read: {exc.strerror or exc}") from None
    return "b2:" + h.hexdigest()


def _text_key(path: Path) -> str:
    """The path as valid Unicode text (the digest cache keys a SQLite text column): the same
    string for a UTF-8 name, and ``\\xe9``-style escapes for bytes that are not UTF-8 (which
    Python carries as lone surrogates, and SQLite refuses)."""
    text = str(path)
    if text.isascii():
        return text
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def content_digest(
    path: str | os.PathLike[str],
    cache: DigestCache | None = None,
    *,
    resolved: str | os.PathLike[str] | None = None,
    stamp: FileStamp | None = None,
) -> str:
    """The digest of the file's bytes; re-reads the file only when its stat stamp changed.
    ``resolved`` (the file's real path) and ``stamp`` (just taken), when the caller has them:
    a batch resolves each folder once instead of each file (a ``realpath`` per file was
    ~40 % of a 20,000-source first diagnosis)."""
    key = _text_key(Path(resolved) if resolved is not None else Path(path).resolve())
    if stamp is None:
        stamp = stamp_of(path)
    if cache is not None and (known := cache.get_digest(key, stamp)) is not None:
        return known
    digest = hash_file(path)
    if cache is not None:
        cache.put_digest(key, stamp, digest)
    return digest


# --- block digests ---------------------------------------------------------------------------


class BlockCache(Protocol):
    """Where block digests are remembered, by the whole-file content digest (the store)."""

    def get_blocks(self, digest: str) -> BlockDigests | None: ...

    def put_blocks(self, digest: str, blocks: BlockDigests) -> None: ...


def block_digests(path: str | os.PathLike[str]) -> BlockDigests:
    """Digests of fixed blocks of the decoded audio (:mod:`core.ranges`); decodes the file."""
    info = read_info(path)
    return digest_blocks(iter_blocks(path), info.sample_rate, info.channels)


def content_blocks(
    path: str | os.PathLike[str], digest: str, cache: BlockCache | None = None
) -> BlockDigests:
    """The block digests of the file whose content digest is ``digest``: decoded once per
    version of the audio, ever (kept by content digest, so an unchanged file costs a lookup)."""
    if cache is not None and (known := cache.get_blocks(digest)) is not None:
        return known
    blocks = block_digests(path)
    if cache is not None:
        cache.put_blocks(digest, blocks)
    return blocks
