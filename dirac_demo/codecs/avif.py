"""The AVIF base codec: AV1 intra through libavif (Pillow), quality 0–100; the payload is the AVIF
file, and any plain AVIF file is a bitstream of this codec.

The encoder settings are fixed, so a quality names one file for given libavif and libaom
versions, and a receiver looks up its rate-dependent threshold and spacing by quality alone:
libaom ``speed`` 8 of 0..10 (speed 6, libavif's default, needs about 7 % fewer bytes for the
same PSNR and takes twice as long), 4:2:0 chroma subsampling, full range, one encoder thread
(libaom's output depends on its thread count). A plain file's quality is the one this encoder
maps to the file's AV1 ``base_q_idx`` (:mod:`.av1` reads it; :func:`quality_table` maps it).
"""
from __future__ import annotations

import functools
import io

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import BitstreamError, InputError
from ..images import pil_to_tensor, tensor_to_pil
from . import av1
from .base import Encoded, FileFacts, QualityCodec, RateRange, file_size
from .payload import open_payload

SPEED = 8
SUBSAMPLING = "4:2:0"
THREADS = 1
QUALITIES = range(0, 101)          # Pillow's quality scale
UNKNOWN_QUALITY = 50               # the thresholds of a file whose quantiser cannot be read


def encode(img: Image.Image, quality: int) -> bytes:
    """The AVIF file of an RGB image at Pillow ``quality`` 0..100, with the fixed settings."""
    if int(quality) not in QUALITIES:
        raise InputError(f"AVIF quality must be in 0..100, got {quality}.")
    buf = io.BytesIO()
    img.save(buf, format="AVIF", quality=int(quality), speed=SPEED, subsampling=SUBSAMPLING, range="full",
             max_threads=THREADS)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    """An AVIF file's RGB image as displayed (turned by its EXIF orientation, as JPEG files are);
    a file that is not AVIF, or a corrupt one, raises BitstreamError."""
    return ImageOps.exif_transpose(open_payload(data, "AVIF")).convert("RGB")


class AvifCodec(QualityCodec):
    """AVIF via Pillow; the payload is exactly libavif's file."""

    name, codec_id, label, model = "avif", 3, "AVIF", "dirac_avif"
    description = "AVIF (AV1 intra) through libavif (Pillow), quality 0–100"
    color = "tab:purple"
    plain_files = (".avif",)
    sweep = (25, 30, 40, 50, 60, 70, 85)
    rates = RateRange(0, 100, 50, "quality", "AVIF quality", demo=30)

    def compress(self, x: torch.Tensor, rate: float, **opts) -> Encoded:
        """Encode a (1, 3, H, W) tensor in [0, 1] at Pillow quality ``rate``."""
        quality = self.check_rate(rate)
        h, w = x.shape[-2:]
        return Encoded(codec=self.name, width=w, height=h, chunks=[encode(tensor_to_pil(x), quality)], quality=quality)

    def decompress(self, enc: Encoded) -> dict[str, torch.Tensor]:
        """Decode to ``{"x_hat": (1, 3, H, W) in [0, 1]}``; a bad payload raises BitstreamError."""
        img = decode(self.one_chunk(enc))
        if img.size != (enc.width, enc.height):
            raise BitstreamError("The AVIF payload's size does not match the header.")
        return {"x_hat": pil_to_tensor(img)}

    def is_file(self, data: bytes) -> bool:
        """Whether ``data`` starts like an AVIF file: an ISO-BMFF ``ftyp`` box with an AVIF brand."""
        head = bytes(data[:12])
        return len(head) == 12 and head[4:8] == b"ftyp" and head[8:12] in av1.FTYP_BRANDS

    def read_file(self, data: bytes) -> Encoded:
        """A plain AVIF file as this codec's :class:`Encoded`. Its quality is the one this encoder maps
        to the file's quantiser (exact up to the qualities that share it, else the nearest one's);
        a file whose headers cannot be read still decodes, with the quality unknown and the
        thresholds of quality :data:`UNKNOWN_QUALITY`."""
        img = decode(data)
        try:
            quality, exact = estimate_quality(data)
            read = "exact" if exact else "estimated"
        except BitstreamError:
            quality, read = UNKNOWN_QUALITY, "unknown"
        return Encoded(codec=self.name, width=img.width, height=img.height, chunks=[bytes(data)], quality=quality,
                       file=FileFacts("AVIF", read))

    def describe(self, enc: Encoded, nbytes: int) -> str:
        f = enc.file
        if f is None:
            return super().describe(enc, nbytes)
        if f.quality_read == "unknown":
            return (f"AVIF file {enc.width}x{enc.height}, {file_size(enc, nbytes)}, quality unknown (its quantiser could not be read): "
                    f"the thresholds of quality {enc.quality}")
        kind = "quality" if f.quality_read == "exact" else "estimated quality"
        return (f"AVIF file {enc.width}x{enc.height}, {file_size(enc, nbytes)}, {kind} {enc.quality}"
                + ("" if f.quality_read == "exact" else " (a quantiser this encoder does not use: the nearest one)"))


def _table_image() -> Image.Image:
    """The image the quality table is measured on: 64×64 gradients plus noise (deterministic)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    base = np.stack([xx * 4.0, yy * 4.0, (xx + yy) * 2.0], -1)
    return Image.fromarray(np.clip(base + rng.normal(0, 16, base.shape), 0, 255).astype(np.uint8), "RGB")


@functools.cache
def quality_table() -> dict[int, tuple[int, ...]]:
    """Each ``base_q_idx`` that :func:`.encode` writes, with the Pillow qualities that write
    it (ascending), measured once per process with the installed libavif and libaom."""
    img, table = _table_image(), {}
    for quality in QUALITIES:
        table.setdefault(av1.base_q_idx(encode(img, quality)), []).append(quality)
    return {q_idx: tuple(qualities) for q_idx, qualities in sorted(table.items())}


def quality_of(q_idx: int) -> tuple[int, bool]:
    """The Pillow quality that :func:`.encode` maps to ``q_idx`` and whether it is exact.

    One to three neighbouring qualities give one ``base_q_idx`` (libavif maps quality to one of
    libaom's 64 quantiser levels) and then the same file, so any of them is right; the middle one
    (the lower of two) is returned, which is nearest to whichever the sender chose. A ``q_idx``
    the encoder never writes gets the group of the nearest one it does (the finer on a tie), not
    exact.
    """
    if not 0 <= q_idx <= 255:
        raise InputError(f"An AV1 base_q_idx is in 0..255, got {q_idx}.")
    table = quality_table()
    nearest = min(table, key=lambda k: (abs(k - q_idx), k))
    group = table[nearest]
    return group[(len(group) - 1) // 2], nearest == q_idx


def estimate_quality(data: bytes) -> tuple[int, bool]:
    """The Pillow quality of an AVIF file (:func:`quality_of` its :func:`base_q_idx`)."""
    return quality_of(av1.base_q_idx(data))
