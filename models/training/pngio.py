"""Lossless PNG encoding of uint8 RGB images with nothing but zlib.

The encoder is written out here (rather than borrowed from an imaging library) so the bytes in
``reference.json`` depend only on zlib and are identical on every rerun.
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode(pixels: np.ndarray) -> bytes:
    """PNG file bytes of an HxWx3 uint8 image (8-bit truecolour, no filtering, no interlace)."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError("expected an HxWx3 uint8 array")
    height, width, _ = pixels.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    # Each scanline is prefixed with filter type 0 (none).
    raw = b"".join(b"\x00" + row.tobytes() for row in np.ascontiguousarray(pixels))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")


def encode_base64(pixels: np.ndarray) -> str:
    """Base64 text of :func:`encode`, as a client would put it in a JSON request."""
    return base64.b64encode(encode(pixels)).decode("ascii")
