"""A store as schema 8 wrote it, made from a current one: every file's checksum is
``"b2:"`` + BLAKE2b-128 of its values, every ``audio_blocks`` row holds BLAKE2b-128 block
digests of its audio and has no ``algorithm`` column (what the 8 -> 9 migration finds). The old
formats are written here explicitly, independently of the code under test."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np

from diagnostics_app.core.audio import iter_blocks
from diagnostics_app.core.store import INDEX_NAME


def values(path: Path) -> bytes:
    """The bytes of a ``.npy`` file after its header."""
    with path.open("rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            np.lib.format.read_array_header_1_0(f)
        else:
            np.lib.format.read_array_header_2_0(f)
        return f.read()


def b2(data: bytes) -> str:
    return "b2:" + hashlib.blake2b(data, digest_size=16).hexdigest()


def b2_blocks(audio: Path, block_frames: int) -> bytes:
    """BLAKE2b-128 of each block of the decoded audio, interleaved little-endian float32."""
    decoded = np.concatenate(list(iter_blocks(audio)), axis=1)
    return b"".join(
        hashlib.blake2b(
            np.ascontiguousarray(decoded[:, i : i + block_frames].T, dtype="<f4").tobytes(),
            digest_size=16,
        ).digest()
        for i in range(0, decoded.shape[1], block_frames)
    )


def make_schema_8(cache: Path) -> int:
    """Rewrite the store in ``cache`` as schema 8 had it; the number of block rows."""
    db = sqlite3.connect(cache / INDEX_NAME)
    with db:
        rows = db.execute("SELECT entry_id, feature, path, times_path FROM features").fetchall()
        for eid, feature, path, times_path in rows:
            files = [path] if times_path is None else [path, times_path]
            checksum = ",".join(b2(values(cache / p)) for p in files)
            db.execute(
                "UPDATE features SET checksum = ? WHERE entry_id = ? AND feature = ?",
                (checksum, eid, feature),
            )
        blocks = db.execute(
            "SELECT b.digest, b.block_frames, d.path FROM audio_blocks b "
            "JOIN digests d ON d.digest = b.digest"
        ).fetchall()
        for digest, block_frames, audio in blocks:
            db.execute(
                "UPDATE audio_blocks SET blocks = ? WHERE digest = ?",
                (b2_blocks(Path(audio), block_frames), digest),
            )
        db.execute("ALTER TABLE audio_blocks DROP COLUMN algorithm")
        db.execute("UPDATE meta SET value = '8' WHERE key = 'schema_version'")
    db.close()
    return len(blocks)


def block_rows(cache: Path) -> dict[str, tuple[bytes, str]]:
    """digest -> (blocks, algorithm) of every ``audio_blocks`` row."""
    db = sqlite3.connect(cache / INDEX_NAME)
    try:
        return {
            str(d): (bytes(b), str(a))
            for d, b, a in db.execute("SELECT digest, blocks, algorithm FROM audio_blocks")
        }
    finally:
        db.close()


def flip_last_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01
    path.write_bytes(bytes(raw))
