"""The ``.drc`` container for one transmission: codec, its parameters, image size, payload.

Layout (big-endian)::

    magic    4s   b"DRAC"
    version  B    2, or 3 when the file carries a protect mask (version-1 files, whose neural
                  parameters lack the weights id, still parse)
    codec    B    1 = jpeg, 2 = neural, 3 = avif
    width    H    original width  (16-bit, paper B.2)
    height   H    original height (16-bit)
    nparams  H    length of the parameter block
    params   ...  jpeg: quality B (1..100) | avif: quality B (0..100; the encoder settings
                  are fixed, :mod:`.avif`) | neural: λ_rate f32, latent scale s u16 (s·1024),
                  weights id u32 (which codec weights made the payload; 0: not recorded)
    nchunks  B    number of payload chunks
    chunks   ...  each: length I, then bytes
    mask     ...  version 3 only: length H, then the protect mask (``dirac_demo.protect``)
    crc32    I    CRC-32 of everything before it

A file without a mask is written as version 2, byte for byte as before the mask existed; a
reader that knows only versions 1 and 2 refuses a version-3 file with its version message.
An AVIF file keeps the version of its layout (2, or 3 with a mask): a reader that does not
know codec id 3 refuses it with its unknown-codec message.

Parsing is strict: anything that does not match raises :class:`BitstreamError`.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from ..errors import BitstreamError

MAGIC = b"DRAC"
VERSION = 2
MASK_VERSION = 3            # the version of a file that carries a protect mask
READABLE_VERSIONS = (1, 2, 3)
MAX_MASK_BYTES = 65535
CODEC_IDS = {"jpeg": 1, "neural": 2, "avif": 3}
QUALITY_CODECS = {"jpeg": range(1, 101), "avif": range(0, 101)}   # rate = a quality, one byte
CODEC_NAMES = {v: k for k, v in CODEC_IDS.items()}
SCALE_STEP = 1024           # the latent scale s travels as round(s * 1024) in 16 bits
LMBDA_MIN, LMBDA_MAX = 0.0004, 0.016
_HEAD = struct.Struct(">4sBBHHH")
MAX_CHUNKS = 8


@dataclass
class Encoded:
    """A compressed image: everything a receiver needs, and nothing else."""

    codec: str
    width: int
    height: int
    chunks: list[bytes]
    quality: int = 0          # JPEG quality factor, or AVIF quality
    lmbda: float = 0.0        # neural λ_rate (the receiver's post-filter and DIRAC thresholds read it)
    scale_q: int = 0          # neural latent scale, round(s * 1024)
    weights_id: int = 0       # neural: fingerprint of the codec weights that made it (0: unknown)
    mask: bytes = b""         # the sender's protect mask (dirac_demo.protect.pack_mask), or none
    extra: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """The rate parameter: the quality for JPEG and AVIF, λ_rate for the neural codec."""
        return float(self.quality) if self.codec in QUALITY_CODECS else float(self.lmbda)


def _params(enc: Encoded) -> bytes:
    if enc.codec in QUALITY_CODECS:
        if enc.quality not in QUALITY_CODECS[enc.codec]:
            raise BitstreamError(f"Bad {enc.codec} quality {enc.quality}.")
        return struct.pack(">B", enc.quality)
    return struct.pack(">fHI", enc.lmbda, enc.scale_q, enc.weights_id)


def pack(enc: Encoded) -> bytes:
    """Serialise an :class:`Encoded` to bytes."""
    if enc.codec not in CODEC_IDS:
        raise BitstreamError(f"Unknown codec {enc.codec!r}.")
    if not (0 < enc.width < 65536 and 0 < enc.height < 65536):
        raise BitstreamError("Image sides must be between 1 and 65535 pixels.")
    if not 0 <= enc.weights_id < 2 ** 32:
        raise BitstreamError("The weights id must fit in 32 bits.")
    if len(enc.chunks) > MAX_CHUNKS:
        raise BitstreamError("Too many payload chunks.")
    if len(enc.mask) > MAX_MASK_BYTES:
        raise BitstreamError("The protect mask is too large for the bitstream.")
    params = _params(enc)
    version = MASK_VERSION if enc.mask else VERSION
    out = bytearray(_HEAD.pack(MAGIC, version, CODEC_IDS[enc.codec], enc.width, enc.height, len(params)))
    out += params
    out += struct.pack(">B", len(enc.chunks))
    for chunk in enc.chunks:
        out += struct.pack(">I", len(chunk)) + chunk
    if enc.mask:
        out += struct.pack(">H", len(enc.mask)) + enc.mask
    out += struct.pack(">I", zlib.crc32(bytes(out)) & 0xFFFFFFFF)
    return bytes(out)


def _take(data: bytes, pos: int, n: int) -> tuple[bytes, int]:
    if n < 0 or pos + n > len(data):
        raise BitstreamError("The bitstream is truncated.")
    return data[pos:pos + n], pos + n


def parse(data: bytes) -> Encoded:
    """Parse bytes made by :func:`pack`; raise :class:`BitstreamError` on any mismatch."""
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
    _, version, codec_id, width, height, nparams = _HEAD.unpack_from(body, 0)
    if zlib.crc32(body) & 0xFFFFFFFF != crc:
        raise BitstreamError("The bitstream is corrupted or truncated (checksum mismatch).")
    if version not in READABLE_VERSIONS:
        raise BitstreamError(f"Unsupported bitstream version {version} (this reader knows "
                             f"{', '.join(map(str, READABLE_VERSIONS))}).")
    if codec_id not in CODEC_NAMES:
        raise BitstreamError(f"Unknown codec id {codec_id} in the bitstream.")
    if width == 0 or height == 0:
        raise BitstreamError("The bitstream declares an empty image.")
    codec = CODEC_NAMES[codec_id]
    params, pos = _take(body, _HEAD.size, nparams)
    enc = Encoded(codec=codec, width=width, height=height, chunks=[])
    if codec in QUALITY_CODECS:
        if nparams != 1 or params[0] not in QUALITY_CODECS[codec]:
            raise BitstreamError(f"Bad {codec.upper()} parameters in the bitstream.")
        enc.quality = params[0]
    else:
        if nparams != (6 if version == 1 else 10):
            raise BitstreamError("Bad neural-codec parameters in the bitstream.")
        enc.lmbda, enc.scale_q = struct.unpack(">fH", params[:6])
        enc.weights_id = struct.unpack(">I", params[6:])[0] if version > 1 else 0
        if not (LMBDA_MIN * 0.999 <= enc.lmbda <= LMBDA_MAX * 1.001) or enc.scale_q == 0:
            raise BitstreamError("Bad neural-codec parameters in the bitstream.")
    (nchunks,), pos = struct.unpack(">B", _take(body, pos, 1)[0]), pos + 1
    if nchunks == 0 or nchunks > MAX_CHUNKS:
        raise BitstreamError("Bad payload chunk count in the bitstream.")
    for _ in range(nchunks):
        raw, pos = _take(body, pos, 4)
        chunk, pos = _take(body, pos, struct.unpack(">I", raw)[0])
        enc.chunks.append(chunk)
    if version == MASK_VERSION:
        raw, pos = _take(body, pos, 2)
        enc.mask, pos = _take(body, pos, struct.unpack(">H", raw)[0])
        if not enc.mask:
            raise BitstreamError("A version-3 bitstream must carry a protect mask.")
    if pos != len(body):
        raise BitstreamError("The bitstream has trailing bytes.")
    return enc
