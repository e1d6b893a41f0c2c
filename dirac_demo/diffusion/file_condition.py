"""What a receiver reads from a JPEG file's header, as the vector a file-conditioned network takes.

A decoded JPEG does not say how it was written, but its header does: the quantisation tables
and the chroma subsampling. :func:`jpeg_condition` turns them into a vector of
:data:`FILE_COND_DIM` numbers, computed alike for training pairs (from each crop's JPEG bytes)
and for a file being enhanced (from the bytes a ``.drc`` file or a plain JPEG carries):

====  =====================================================================================
 0    luminance table scale: the mean over its 64 entries of ln(Q / Q_K), Q the table of the
      first component and Q_K the JPEG Annex K luminance table (IJG quality 50). IJG tables
      from quality 25 up give ln(s / 100), s libjpeg's percent scale: 0 at quality 50, −1.62
      at 90; below 25 baseline files clamp entries at 255, so quality 10 reads 1.35 (not
      ln 5) and 5 reads 1.59. Other writers' tables (mozjpeg's, cameras') read as their
      overall level against Annex K
 1    chrominance table scale: the same for the tables of the second and third components
      against the Annex K chrominance table (their mean); 0 without chroma components
 2    1 when the chroma is not subsampled (4:4:4), else 0
 3    1 for 4:2:2 (chroma halved horizontally), else 0
 4    1 for 4:2:0 (halved both ways; Pillow's and libjpeg's default), else 0
 5    1 for a grayscale file (one component), else 0
====  =====================================================================================

Other layouts (4:4:0, 4:1:1, CMYK) have entries 2–5 all 0. Only the header is read; the
pixels are not decoded.
"""
from __future__ import annotations

import io
import math

import torch
from PIL import Image, JpegImagePlugin

from ..codecs.jpeg import ijg_tables
from ..errors import BitstreamError

FILE_COND_DIM = 6
_SUBSAMPLING_SLOT = {0: 2, 1: 3, 2: 4}      # Pillow's get_sampling -> vector entry
_GRAYSCALE_SLOT = 5


def _log_scale(table, reference) -> float:
    """Mean of ln(table / reference) over the 64 entries (entries of 0 read as 1)."""
    return sum(math.log(max(q, 1) / r) for q, r in zip(table, reference)) / 64


def _component_tables(img: Image.Image) -> list[list[int]]:
    """The quantisation table each colour component of a JPEG uses, in component order."""
    tables = img.quantization
    try:
        out = [list(tables[layer[3]]) for layer in img.layer]
    except (KeyError, IndexError, TypeError) as exc:
        raise BitstreamError("The JPEG file's components name a quantisation table it lacks.") from exc
    if not out or any(len(t) != 64 for t in out):
        raise BitstreamError("The JPEG file has no usable quantisation table.")
    return out


def jpeg_condition(data: bytes) -> torch.Tensor:
    """The file-conditioning vector (float32, shape (:data:`FILE_COND_DIM`,)) of a JPEG file's
    bytes; a file that is not a readable JPEG raises :class:`BitstreamError`."""
    try:
        img = Image.open(io.BytesIO(data))
        if img.format != "JPEG":
            raise BitstreamError("The conditioning needs a JPEG file.")
        tables = _component_tables(img)
    except BitstreamError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on corrupt headers
        raise BitstreamError(f"The JPEG file is corrupt ({type(exc).__name__}).") from exc
    luma_k, chroma_k = ijg_tables()[50]           # IJG quality 50 is Annex K itself (scale 100 %)
    vec = torch.zeros(FILE_COND_DIM)
    vec[0] = _log_scale(tables[0], luma_k)
    if len(tables) == 3:
        vec[1] = sum(_log_scale(t, chroma_k) for t in tables[1:]) / 2
    if len(tables) == 1:
        vec[_GRAYSCALE_SLOT] = 1.0
    elif (slot := _SUBSAMPLING_SLOT.get(JpegImagePlugin.get_sampling(img))) is not None:
        vec[slot] = 1.0
    return vec
