"""Uploads that must be refused in one line: a decompression bomb."""
from __future__ import annotations

import struct
import zlib


def bomb_png(side: int = 20000) -> bytes:
    """A valid 1-bit PNG of side x side pixels: tiny on disk, a decompression bomb in memory."""
    packer = zlib.compressobj(9)
    row = b"\0" * (1 + side // 8)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
