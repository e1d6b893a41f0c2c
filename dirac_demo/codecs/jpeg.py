"""The JPEG base codec: libjpeg through Pillow, quality factor 1–100; the payload is the JPEG file."""
from __future__ import annotations

import functools
import io
import math

import torch
from PIL import Image, ImageOps, JpegImagePlugin

from ..errors import BitstreamError, InputError
from ..images import pil_to_tensor, tensor_to_pil
from .bitstream import Encoded
from .payload import open_payload


class JpegCodec:
    """JPEG via Pillow; the payload is exactly Pillow's JPEG file."""

    name = "jpeg"

    def compress(self, x: torch.Tensor, quality: int) -> Encoded:
        """Encode a (1, 3, H, W) tensor in [0, 1] at quality factor ``quality``."""
        quality = int(quality)
        if not 1 <= quality <= 100:
            raise InputError(f"JPEG quality factor must be in 1..100, got {quality}.")
        buf = io.BytesIO()
        tensor_to_pil(x).save(buf, format="JPEG", quality=quality)
        h, w = x.shape[-2:]
        return Encoded(codec="jpeg", width=w, height=h, chunks=[buf.getvalue()], quality=quality)

    def decompress(self, enc: Encoded) -> torch.Tensor:
        """Decode to a (1, 3, H, W) tensor in [0, 1]; a bad payload raises BitstreamError."""
        if len(enc.chunks) != 1:
            raise BitstreamError("A JPEG bitstream must hold exactly one payload chunk.")
        img = ImageOps.exif_transpose(open_payload(enc.chunks[0], "JPEG"))     # a plain JPEG file's orientation; a no-op otherwise
        if img.size != (enc.width, enc.height):
            raise BitstreamError("The JPEG payload's size does not match the header.")
        return pil_to_tensor(img.convert("RGB"))


SOI = b"\xff\xd8\xff"      # every JPEG file starts with its start-of-image marker
SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}
JPEG_FILE = "jpeg_file"    # Encoded.extra key: the facts of a plain JPEG file read as a bitstream


def is_jpeg_file(data: bytes) -> bool:
    """Whether ``data`` starts like a JPEG file (by its marker, whatever the file's name)."""
    return bytes(data[:3]) == SOI


def read_jpeg_file(data: bytes) -> Encoded:
    """A plain JPEG file as the JPEG codec's :class:`Encoded`: its bytes are the payload, its
    quality factor is estimated from its tables, its size is as displayed (EXIF orientation)."""
    try:
        img = Image.open(io.BytesIO(data))
        if img.format != "JPEG":
            raise BitstreamError("The file starts like a JPEG but is not one.")
        quality, exact = estimate_quality(img.quantization)
        turned = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except BitstreamError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on corrupt headers
        raise BitstreamError(f"The JPEG file is corrupt ({type(exc).__name__}).") from exc
    w, h = img.size[::-1] if turned else img.size
    subsampling = SUBSAMPLING.get(JpegImagePlugin.get_sampling(img), "other") if img.mode != "L" else "grayscale"
    facts = {"quality_exact": exact, "mode": img.mode, "subsampling": subsampling,
             "scan": "progressive" if "progression" in img.info else "baseline"}
    return Encoded(codec="jpeg", width=w, height=h, chunks=[bytes(data)], quality=quality,
                   extra={JPEG_FILE: facts})


@functools.cache
def _annex_k() -> tuple[tuple[int, ...], ...]:
    """The IJG base tables (JPEG Annex K, luminance then chrominance), read back from a file that
    libjpeg wrote through Pillow at quality 50, where its scaling is exactly 100 %."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="JPEG", quality=50)
    tables = Image.open(buf).quantization
    return tuple(tuple(tables[k]) for k in sorted(tables))


def ijg_scale(table, quality: int, baseline: bool = True) -> tuple[int, ...]:
    """libjpeg's ``jpeg_set_quality`` rule on a base ``table``: scale = 5000 / q below 50, else
    200 − 2q (percent), each entry ⌊(base · scale + 50) / 100⌋ clamped to 1..255 when
    ``baseline`` (Pillow, and ``cjpeg -baseline``), else to 1..32767 (``cjpeg``'s default, which
    differs below quality 25)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    top = 255 if baseline else 32767
    return tuple(min(max((v * scale + 50) // 100, 1), top) for v in table)


@functools.cache
def ijg_tables(baseline: bool = True) -> dict[int, tuple[tuple[int, ...], ...]]:
    """The quantisation tables of the IJG quality factors 1–100 (:func:`ijg_scale`), in Pillow's order."""
    return {q: tuple(ijg_scale(t, q, baseline) for t in _annex_k()) for q in range(1, 101)}


def estimate_quality(tables: dict[int, list[int]]) -> tuple[int, bool]:
    """The IJG quality factor of a JPEG's quantisation ``tables`` (Pillow's ``Image.quantization``)
    and whether it is exact.

    Tables written with the IJG scaling match one quality factor exactly, whether clamped to
    baseline's 8 bits or not (grayscale files, with one table, match on the luminance table). Other tables (mozjpeg's, cameras', editors') get
    the quality factor whose luminance table is nearest in scale: the smallest mean absolute
    log ratio over the 64 entries.
    """
    own = tuple(tuple(tables[k]) for k in sorted(tables))
    if not own or any(len(t) != 64 for t in own):
        raise BitstreamError("The JPEG file has no usable quantisation table.")
    for baseline in (True, False):
        for q, ref in ijg_tables(baseline).items():
            if own == ref[:len(own)]:
                return q, True
    luma = own[0]

    def distance(ref: tuple[int, ...]) -> float:
        return sum(abs(math.log(max(a, 1) / b)) for a, b in zip(luma, ref)) / 64
    return min(ijg_tables(), key=lambda q: distance(ijg_tables()[q][0])), False
