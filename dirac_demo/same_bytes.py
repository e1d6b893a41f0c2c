"""What a visitor would use instead at the same bytes: WebP and AVIF files no larger than a budget.

:func:`same_bytes` encodes an original with each standard codec at the largest quality whose file
is not larger than ``nbytes`` (the base codec's file size), found by bisection over Pillow's
quality 0..100 (:func:`largest_fitting`). Each codec's settings live in one encoder function
(:func:`encode_webp`, :func:`encode_avif`); :func:`roundtrip` is also the evaluation's WebP and
AVIF baseline (``python -m dirac_demo.eval.evaluate --codec webp|avif``).

Settings (fixed, so with the same libwebp and libaom a quality names one file on every machine):

* WebP: libwebp lossy, ``method`` 6, its slowest (the one ``results/webp.json`` was made with;
  method 4 is 2.5–3× faster and needs about 3 % more bytes for the same PSNR);
* AVIF: the AVIF base codec's encoder (:func:`dirac_demo.codecs.avif.encode`: libaom speed 8,
  4:2:0 chroma subsampling like WebP's (4:4:4 gives the same PSNR per byte), full range, one
  encoder thread).

(Rates at equal PSNR: BD-rates on four Kodak images.) A search is about 7 encodes; at 768×512
both take 0.8 s together at 0.25 bpp and 2 s at 1 bpp (medians over Kodak, on one core of a
2-core CPU shared with another job). Both encoders release the GIL while they work.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import torch
from PIL import Image

from .codecs.avif import encode as encode_avif
from .images import pil_to_tensor, tensor_to_pil

WEBP_METHOD = 6
QUALITIES = range(0, 101)   # Pillow's quality scale for both codecs


def _save(img: Image.Image, fmt: str, quality: int, **options) -> bytes:
    if quality not in QUALITIES:
        raise ValueError(f"quality must be in 0..100, got {quality}")
    buf = io.BytesIO()
    img.save(buf, format=fmt, quality=int(quality), **options)
    return buf.getvalue()


def encode_webp(img: Image.Image, quality: int) -> bytes:
    """Lossy WebP file of an RGB image at Pillow ``quality`` 0..100 (method 6)."""
    return _save(img, "WEBP", quality, method=WEBP_METHOD)


CODECS: dict[str, tuple[str, Callable[[Image.Image, int], bytes]]] = {
    "webp": ("WebP", encode_webp), "avif": ("AVIF", encode_avif)}


def decode(data: bytes) -> torch.Tensor:
    """A WebP or AVIF file -> float32 tensor (1, 3, H, W) in [0, 1]."""
    with Image.open(io.BytesIO(data)) as im:
        return pil_to_tensor(im.convert("RGB"))


def roundtrip(codec: str, img: Image.Image, quality: int) -> tuple[bytes, torch.Tensor]:
    """``codec``'s ("webp" or "avif") file of ``img`` at ``quality`` and its decoded image."""
    data = CODECS[codec][1](img, quality)
    return data, decode(data)


def largest_fitting(size: Callable[[int], int], budget: int, lo: int = 0, hi: int = 100) -> int | None:
    """The largest ``q`` in ``lo..hi`` with ``size(q) <= budget`` by bisection, or None when even
    ``size(lo)`` is larger; ``size`` is taken as non-decreasing. Unless it is ``hi``, ``size`` of
    the answer + 1 was evaluated and is over the budget."""
    fits, over = lo - 1, hi + 1          # invariant: size(fits) <= budget < size(over)
    while over - fits > 1:
        mid = (fits + over) // 2
        if size(mid) <= budget:
            fits = mid
        else:
            over = mid
    return fits if fits >= lo else None


@dataclass(frozen=True)
class SameBytesFile:
    """A standard codec's file at the largest quality that fits a byte budget, or why none does."""

    codec: str                          # "webp" | "avif"
    name: str                           # "WebP" | "AVIF"
    budget: int                         # the byte budget the file had to fit
    quality: int | None = None          # Pillow quality 0..100; None when no quality fits
    data: bytes = b""                   # the file
    image: torch.Tensor | None = None   # the decoded file, (1, 3, H, W) in [0, 1]
    reason: str | None = None           # why there is no file (None when there is)

    @property
    def nbytes(self) -> int:
        """Size of the file in bytes (0 when no quality fits)."""
        return len(self.data)


def fit_budget(img: Image.Image, nbytes: int, codec: str) -> SameBytesFile:
    """``codec``'s file of ``img`` at the largest quality whose file has at most ``nbytes`` bytes."""
    name, encode = CODECS[codec]
    files: dict[int, bytes] = {}

    def size(q: int) -> int:
        files[q] = encode(img, q)
        return len(files[q])

    q = largest_fitting(size, nbytes, QUALITIES.start, QUALITIES.stop - 1)
    if q is None:
        return SameBytesFile(codec, name, nbytes, reason=f"{name} at its lowest quality is {len(files[0]):,} bytes, "
                                                     f"over the budget of {nbytes:,} bytes.")
    data = files[q]
    assert len(data) <= nbytes, (codec, q, len(data), nbytes)
    return SameBytesFile(codec, name, nbytes, q, data, decode(data))


def same_bytes(original: torch.Tensor, nbytes: int, codecs: tuple[str, ...] = ("webp", "avif")) -> list[SameBytesFile]:
    """WebP and AVIF files of ``original`` ((1, 3, H, W) in [0, 1]) at the largest quality whose file
    is not larger than ``nbytes``, in the order of ``codecs``."""
    if original.dim() != 4 or original.shape[:2] != (1, 3):
        raise ValueError(f"expected an image tensor of shape (1, 3, H, W), got {tuple(original.shape)}")
    if nbytes < 1:
        raise ValueError(f"the byte budget must be positive, got {nbytes}")
    img = tensor_to_pil(original)
    return [fit_budget(img, int(nbytes), c) for c in codecs]
