"""The AVIF base codec: AV1 intra through libavif (Pillow), quality 0–100; the payload is the AVIF file.

The encoder settings are fixed, so a quality names one file for given libavif and libaom
versions, and a receiver looks up its rate-dependent threshold and spacing by quality alone:
libaom ``speed`` 8 of 0..10 (speed 6, libavif's default, needs about 7 % fewer bytes for the
same PSNR and takes twice as long), 4:2:0 chroma subsampling, full range, one encoder thread
(libaom's output depends on its thread count).
"""
from __future__ import annotations

import io

import torch
from PIL import Image

from ..errors import BitstreamError, InputError
from ..images import pil_to_tensor, tensor_to_pil
from .bitstream import QUALITY_CODECS, Encoded
from .payload import open_payload

SPEED = 8
SUBSAMPLING = "4:2:0"
THREADS = 1
QUALITIES = QUALITY_CODECS["avif"]  # Pillow's quality scale, 0..100
FTYP_BRANDS = (b"avif", b"avis")   # an AVIF file's ISO-BMFF major brand
AVIF_FILE = "avif_file"            # Encoded.extra key: the facts of a plain AVIF file read as a bitstream


def encode(img: Image.Image, quality: int) -> bytes:
    """The AVIF file of an RGB image at Pillow ``quality`` 0..100, with the fixed settings."""
    if int(quality) not in QUALITIES:
        raise InputError(f"AVIF quality must be in 0..100, got {quality}.")
    buf = io.BytesIO()
    img.save(buf, format="AVIF", quality=int(quality), speed=SPEED, subsampling=SUBSAMPLING, range="full",
             max_threads=THREADS)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    """An AVIF file's RGB image; a file that is not AVIF, or a corrupt one, raises BitstreamError."""
    return open_payload(data, "AVIF").convert("RGB")


class AvifCodec:
    """AVIF via Pillow; the payload is exactly libavif's file."""

    name = "avif"

    def compress(self, x: torch.Tensor, quality: int) -> Encoded:
        """Encode a (1, 3, H, W) tensor in [0, 1] at Pillow quality ``quality``."""
        h, w = x.shape[-2:]
        data = encode(tensor_to_pil(x), int(quality))
        return Encoded(codec="avif", width=w, height=h, chunks=[data], quality=int(quality))

    def decompress(self, enc: Encoded) -> torch.Tensor:
        """Decode to a (1, 3, H, W) tensor in [0, 1]; a bad payload raises BitstreamError."""
        if len(enc.chunks) != 1:
            raise BitstreamError("An AVIF bitstream must hold exactly one payload chunk.")
        img = decode(enc.chunks[0])
        if img.size != (enc.width, enc.height):
            raise BitstreamError("The AVIF payload's size does not match the header.")
        return pil_to_tensor(img)


def is_avif_file(data: bytes) -> bool:
    """Whether ``data`` starts like an AVIF file: an ISO-BMFF ``ftyp`` box with an AVIF brand."""
    head = bytes(data[:12])
    return len(head) == 12 and head[4:8] == b"ftyp" and head[8:12] in FTYP_BRANDS


def read_avif_file(data: bytes) -> Encoded:
    """A plain AVIF file as the AVIF codec's :class:`Encoded`: its bytes are the payload, its
    quality is the one this codec's encoder maps to the file's AV1 quantiser ``base_q_idx``
    (exact when the file's quantiser is one this encoder writes, up to the qualities that share
    it; else the nearest one's)."""
    from .av1 import estimate_quality
    img = decode(data)
    quality, exact = estimate_quality(data)
    return Encoded(codec="avif", width=img.width, height=img.height, chunks=[bytes(data)], quality=quality,
                   extra={AVIF_FILE: {"quality_exact": exact}})
