"""The digest algorithms of stored data, by the short name every record of a digest carries.

``"x3"``: XXH3-128 (xxhash), what new data gets: the array files' checksums
(:mod:`.store.arrays`, ``"x3:<hex>"``) and the audio's block digests (:mod:`.ranges`,
``audio_blocks.algorithm``). ``"b2"``: BLAKE2b-128, what stores written before index schema 9
hold; read and verified for ever, never written again. Both are 16-byte digests.

Why XXH3: these digests are hashed on every analysis (each feature file as it is written,
each decoded block of the audio), and XXH3-128 ran ~20x faster than BLAKE2b here (27 GB/s
against 1.4 GB/s). They guard against accidental damage (a truncated or overwritten file, a
flipped bit, a decode that is not sample-exact), which a 128-bit non-cryptographic hash
catches as surely; not against an adversary, which no digest in the index could: whoever can
rewrite the files can rewrite the index that records their digests. (The whole-file content
digest of the audio, :func:`core.audio.hash_file`, stays BLAKE2b: it is in every stored
fingerprint, and changing it would make every entry stale.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Final, Protocol

import xxhash

CURRENT: Final = "x3"  # what new digests are made with
OLD: Final = "b2"  # stores written before schema 9: read, never written


class Hasher(Protocol):
    """A running digest (``hashlib``'s and ``xxhash``'s objects are)."""

    def update(self, data: bytes | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


def _blake2b() -> Hasher:
    return hashlib.blake2b(digest_size=16)


_HASHERS: Final[dict[str, Callable[[], Hasher]]] = {CURRENT: xxhash.xxh3_128, OLD: _blake2b}
_ONE_SHOT: Final[dict[str, Callable[[memoryview], bytes]]] = {
    CURRENT: xxhash.xxh3_128_digest,
    OLD: lambda data: hashlib.blake2b(data, digest_size=16).digest(),
}
ALGORITHMS: Final = tuple(_HASHERS)


def known(algorithm: str) -> bool:
    return algorithm in _HASHERS


def new_hasher(algorithm: str = CURRENT) -> Hasher:
    """A running digest of ``algorithm`` (KeyError for an unknown one: ask :func:`known`)."""
    return _HASHERS[algorithm]()


def digest(algorithm: str, data: memoryview) -> bytes:
    """The 16-byte digest of ``data`` with ``algorithm`` (one call: no hasher object)."""
    return _ONE_SHOT[algorithm](data)


class Checksum:
    """A stored file's checksum as it is computed: its text is ``"<algorithm>:<hex>"``
    (``"x3:…"`` for new files, ``"b2:…"`` in older stores)."""

    def __init__(self, algorithm: str = CURRENT) -> None:
        self.algorithm = algorithm
        self._hasher = new_hasher(algorithm)

    def update(self, data: bytes | memoryview) -> None:
        self._hasher.update(data)

    def text(self) -> str:
        return f"{self.algorithm}:{self._hasher.hexdigest()}"


def checksum_like(recorded: str) -> Checksum | None:
    """A checksum computed as ``recorded`` was (its prefix names the algorithm), to compare
    with it; None when the prefix names no known algorithm. The one rule from a recorded
    checksum to its hasher: every verifier goes through it."""
    algorithm, colon, _ = recorded.partition(":")
    return Checksum(algorithm) if colon and known(algorithm) else None


def unknown_checksum(recorded: str) -> str:
    """Why ``recorded`` cannot be checked, in a few words (the caller names the file)."""
    shown = recorded if len(recorded) <= 40 else recorded[:37] + "..."
    return f"its recorded checksum {shown!r} names no known algorithm ({', '.join(ALGORITHMS)})"
