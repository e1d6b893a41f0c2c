"""The ``.drc`` container for one transmission: codec, its parameters, image size, payload.

Layout (big-endian)::

    magic    4s   b"DRAC"
    version  B    2, or 3 when the file carries a protect mask (version-1 files, whose neural
                  parameters lack the weights id, still parse)
    codec    B    1 = jpeg, 2 = neural, 3 = avif
    width    H    original width  (16-bit, paper B.2)
    height   H    original height (16-bit)
    nparams  H    length of the parameter block
    params   ...  the codec's own block (its ``params``/``read_params``): jpeg and avif:
                  quality B (1..100 | 0..100; AVIF's encoder settings are fixed, :mod:`.avif`) |
                  neural: λ_rate f32, latent scale s u16 (s·1024), weights id u32 (which codec
                  weights made the payload; 0: not recorded)
    nchunks  B    number of payload chunks
    chunks   ...  each: length I, then bytes
    mask     ...  version 3 only: length H, then the protect mask (``dirac_demo.protect``)
    crc32    I    CRC-32 of everything before it

A file without a mask is written as version 2, byte for byte as before the mask existed; a
reader that knows only versions 1 and 2 refuses a version-3 file with its version message.
An AVIF file keeps the version of its layout (2, or 3 with a mask): a reader that does not
know codec id 3 refuses it with its unknown-codec message.

Parsing is strict: anything that does not match raises :class:`BitstreamError`. This module
knows the container only; :func:`dirac_demo.codecs.pack` and :func:`dirac_demo.codecs.parse` put
a codec's :class:`Encoded` in it and take it out, with the codec table's ids.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..errors import BitstreamError

MAGIC = b"DRAC"
VERSION = 2
MASK_VERSION = 3            # the version of a file that carries a protect mask
READABLE_VERSIONS = (1, 2, 3)
MAX_MASK_BYTES = 65535
_HEAD = struct.Struct(">4sBBHHH")
MAX_CHUNKS = 8


@dataclass
class Container:
    """The fields of one ``.drc`` file, the codec's parameter block still as bytes."""

    codec_id: int
    width: int
    height: int
    params: bytes
    chunks: list[bytes]
    mask: bytes = b""
    version: int = VERSION


def pack(c: Container) -> bytes:
    """Serialise a :class:`Container` to bytes (version 3 when it carries a mask, else 2)."""
    if not (0 < c.width < 65536 and 0 < c.height < 65536):
        raise BitstreamError("Image sides must be between 1 and 65535 pixels.")
    if len(c.chunks) > MAX_CHUNKS:
        raise BitstreamError("Too many payload chunks.")
    if len(c.mask) > MAX_MASK_BYTES:
        raise BitstreamError("The protect mask is too large for the bitstream.")
    version = MASK_VERSION if c.mask else VERSION
    out = bytearray(_HEAD.pack(MAGIC, version, c.codec_id, c.width, c.height, len(c.params)))
    out += c.params
    out += struct.pack(">B", len(c.chunks))
    for chunk in c.chunks:
        out += struct.pack(">I", len(chunk)) + chunk
    if c.mask:
        out += struct.pack(">H", len(c.mask)) + c.mask
    out += struct.pack(">I", zlib.crc32(bytes(out)) & 0xFFFFFFFF)
    return bytes(out)


def _take(data: bytes, pos: int, n: int) -> tuple[bytes, int]:
    if n < 0 or pos + n > len(data):
        raise BitstreamError("The bitstream is truncated.")
    return data[pos:pos + n], pos + n


def _checked_body(data: bytes) -> bytes:
    """The bytes before the CRC, after the magic, size and checksum checks."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError("A bitstream must be bytes.")
    data = bytes(data)
    if not data:
        raise BitstreamError("The bitstream is empty.")
    if len(data) < len(MAGIC) or data[:4] != MAGIC:
        raise BitstreamError("Not a dirac-demo bitstream (bad magic number).")
    if len(data) < _HEAD.size + 5:
        raise BitstreamError("The bitstream is truncated.")
    body, crc = data[:-4], struct.unpack(">I", data[-4:])[0]
    if zlib.crc32(body) & 0xFFFFFFFF != crc:
        raise BitstreamError("The bitstream is corrupted or truncated (checksum mismatch).")
    return body


def parse(data: bytes, known_ids: set[int] | dict) -> Container:
    """Parse bytes made by :func:`pack`; raise :class:`BitstreamError` on any mismatch, and for a
    codec id not in ``known_ids``."""
    body = _checked_body(data)
    _, version, codec_id, width, height, nparams = _HEAD.unpack_from(body, 0)
    if version not in READABLE_VERSIONS:
        raise BitstreamError(f"Unsupported bitstream version {version} (this reader knows "
                             f"{', '.join(map(str, READABLE_VERSIONS))}).")
    if codec_id not in known_ids:
        raise BitstreamError(f"Unknown codec id {codec_id} in the bitstream.")
    if width == 0 or height == 0:
        raise BitstreamError("The bitstream declares an empty image.")
    params, pos = _take(body, _HEAD.size, nparams)
    c = Container(codec_id, width, height, params, [], version=version)
    (nchunks,), pos = struct.unpack(">B", _take(body, pos, 1)[0]), pos + 1
    if nchunks == 0 or nchunks > MAX_CHUNKS:
        raise BitstreamError("Bad payload chunk count in the bitstream.")
    for _ in range(nchunks):
        raw, pos = _take(body, pos, 4)
        chunk, pos = _take(body, pos, struct.unpack(">I", raw)[0])
        c.chunks.append(chunk)
    if version == MASK_VERSION:
        raw, pos = _take(body, pos, 2)
        c.mask, pos = _take(body, pos, struct.unpack(">H", raw)[0])
        if not c.mask:
            raise BitstreamError("A version-3 bitstream must carry a protect mask.")
    if pos != len(body):
        raise BitstreamError("The bitstream has trailing bytes.")
    return c
