"""A tiny PNG encoder: an 8-bit RGB (or grey) numpy array → the bytes of a PNG file.

The QA report inlines its pictures, and the core may import neither Qt nor a plotting library
(none is a dependency), so pictures are drawn into numpy arrays (:mod:`.thumbnails`) and
encoded here with zlib and struct: a signature, IHDR, one IDAT and IEND, each chunk with its
CRC (PNG specification, ISO/IEC 15948). Every scanline uses filter 0 (none): thumbnails are
small, and simplicity beats a few percent of size.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPE = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA)


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def encode_png(pixels: np.ndarray) -> bytes:
    """``pixels``: uint8 ``(height, width)`` grey or ``(height, width, 3|4)`` RGB(A)."""
    if pixels.dtype != np.uint8:
        raise ValueError(f"PNG pixels must be uint8, got {pixels.dtype}")
    image = pixels[:, :, None] if pixels.ndim == 2 else pixels
    if image.ndim != 3 or image.shape[2] not in _COLOUR_TYPE:
        raise ValueError(f"PNG pixels must be (h, w), (h, w, 3) or (h, w, 4), got {pixels.shape}")
    height, width, channels = image.shape
    if height < 1 or width < 1:
        raise ValueError(f"a PNG needs at least one pixel, got {width}x{height}")
    rows = np.ascontiguousarray(image).reshape(height, width * channels)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)  # filter byte 0
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPE[channels], 0, 0, 0)
    return (
        SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
        + _chunk(b"IEND", b"")
    )


def decode_png(data: bytes) -> np.ndarray:
    """The inverse of :func:`encode_png` for the files it writes (filter 0, 8 bits, one or
    more IDAT chunks): for tests and for checking a report's pictures without a browser."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG file")
    pos = len(SIGNATURE)
    width = height = channels = 0
    idat = b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"PNG chunk {kind!r}: bad CRC")
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            if depth != 8 or colour not in _COLOUR_TYPE.values():
                raise ValueError("only 8-bit grey, RGB and RGBA PNGs are read")
            channels = {v: k for k, v in _COLOUR_TYPE.items()}[colour]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * channels)
    if np.any(raw[:, 0] != 0):
        raise ValueError("only unfiltered scanlines are read")
    return raw[:, 1:].reshape(height, width, channels)
