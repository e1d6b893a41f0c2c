"""The JPEG base codec: libjpeg through Pillow, quality factor 1–100; the payload is the JPEG file,
and any plain JPEG file is a bitstream of this codec."""
from __future__ import annotations

import functools
import io
import math

import torch
from PIL import Image, ImageOps, JpegImagePlugin

from ..errors import BitstreamError
from ..images import pil_to_tensor, tensor_to_pil
from .base import Encoded, FileFacts, QualityCodec, RateRange, file_size
from .payload import open_payload

SOI = b"\xff\xd8\xff"      # every JPEG file starts with its start-of-image marker
SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


class JpegCodec(QualityCodec):
    """JPEG via Pillow; the payload is exactly Pillow's JPEG file."""

    name, codec_id, label, model = "jpeg", 1, "JPEG", "dirac_jpeg"
    description = "JPEG through libjpeg (Pillow), quality factor 1–100"
    color = "tab:blue"
    plain_files = (".jpg", ".jpeg", ".jfif")
    sweep = (5, 10, 20, 40)
    rates = RateRange(1, 100, 75, "qf", "JPEG quality factor", demo=10)

    def compress(self, x: torch.Tensor, rate: float, **opts) -> Encoded:
        """Encode a (1, 3, H, W) tensor in [0, 1] at quality factor ``rate``."""
        quality = self.check_rate(rate)
        buf = io.BytesIO()
        tensor_to_pil(x).save(buf, format="JPEG", quality=quality)
        h, w = x.shape[-2:]
        return Encoded(codec=self.name, width=w, height=h, chunks=[buf.getvalue()], quality=quality)

    def decompress(self, enc: Encoded) -> dict[str, torch.Tensor]:
        """Decode to ``{"x_hat": (1, 3, H, W) in [0, 1]}``; a bad payload raises BitstreamError."""
        img = ImageOps.exif_transpose(open_payload(self.one_chunk(enc), "JPEG"))   # a plain file's orientation
        if img.size != (enc.width, enc.height):
            raise BitstreamError("The JPEG payload's size does not match the header.")
        return {"x_hat": pil_to_tensor(img.convert("RGB"))}

    def is_file(self, data: bytes) -> bool:
        """Whether ``data`` starts like a JPEG file (by its marker, whatever the file's name)."""
        return bytes(data[:3]) == SOI

    def read_file(self, data: bytes) -> Encoded:
        """A plain JPEG file as this codec's :class:`Encoded`: its bytes are the payload, its quality
        factor is estimated from its tables, its size is as displayed (EXIF orientation)."""
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
        facts = FileFacts("JPEG", "exact" if exact else "estimated", subsampling,
                          "progressive" if "progression" in img.info else "baseline", img.mode)
        return Encoded(codec=self.name, width=w, height=h, chunks=[bytes(data)], quality=quality, file=facts)

    def describe(self, enc: Encoded, nbytes: int) -> str:
        f = enc.file
        if f is None:
            return super().describe(enc, nbytes)
        kind = "quality" if f.quality_read == "exact" else "estimated quality"
        return (f"JPEG file {enc.width}x{enc.height}, {file_size(enc, nbytes)}, {f.subsampling}, {f.scan}, "
                f"{kind} {enc.quality}"
                + ("" if f.quality_read == "exact" else " (not the IJG tables: nearest by table scale)"))


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
