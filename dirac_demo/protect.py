"""Realism chosen per region: protected pixels keep a fidelity step, the rest a realism step.

Every DIRAC step is a valid output, so a receiver can take each pixel from a different step
without running the network again. A mask (True = protect: faces, text, logos) picks the
fidelity step's frame inside and the realism step's frame outside; a feathered band of
``feather`` pixels on each side of the mask's edge blends the two, so no seam shows.

The mask is read from any image (:func:`read_mask`: the opaque pixels of a layer with
transparency, else the bright pixels) or from the layers painted on the page (:func:`paint_mask`),
and can travel in a ``.drc`` file as a low-resolution bitmap, a few hundred bytes
(:func:`pack_mask`, :func:`unpack_mask`; the container's layout is in ``docs/bitstream.md``).
"""
from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import BitstreamError, InputError
from .images import ImageLike, open_stored

DEFAULT_FEATHER = 8         # pixels of blending on each side of the mask's edge
MAX_FEATHER = 64
BLOCK = 8                   # a mask travels in a .drc as one bit per BLOCK × BLOCK pixels
_HEAD = struct.Struct(">BHH")


def read_mask(src: ImageLike, width: int, height: int) -> np.ndarray:
    """A (height, width) bool mask from an image. In an image with transparency (a painted layer)
    the opaque pixels are protected (alpha ≥ 128); otherwise the bright ones (grey level ≥ 128).
    A mask of another size is resized to ``width`` × ``height`` with nearest-neighbour sampling,
    whatever its aspect ratio."""
    img = open_stored(src)
    if img.mode == "P":
        img = img.convert("RGBA")
    img = img.getchannel("A") if img.mode in ("RGBA", "LA", "PA") else img.convert("L")
    if img.size != (width, height):
        img = img.resize((width, height), Image.Resampling.NEAREST)
    return np.asarray(img) >= 128


def paint_mask(layers: Iterable[ImageLike], width: int, height: int) -> np.ndarray:
    """The (height, width) bool mask painted on an image editor's layers: every pixel that any
    layer covers (alpha above 0, so a half-transparent brush counts), each layer resized like
    :func:`read_mask`; a layer without transparency covers everything. No layers: nothing."""
    mask = np.zeros((height, width), bool)
    for layer in layers:
        alpha = open_stored(layer).convert("RGBA").getchannel("A")
        if alpha.size != (width, height):
            alpha = alpha.resize((width, height), Image.Resampling.NEAREST)
        mask |= np.asarray(alpha) > 0
    return mask


def blend_weights(mask: np.ndarray, feather: int = DEFAULT_FEATHER) -> torch.Tensor:
    """The fidelity frame's weight per pixel, (1, 1, H, W): the mask averaged over a square of
    side 2·``feather`` + 1, so exactly 1 inside the mask and 0 outside it, away from the band."""
    if not 0 <= int(feather) <= MAX_FEATHER:
        raise InputError(f"The feather width must be a whole number of pixels in 0..{MAX_FEATHER}, got {feather}.")
    w = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    k = int(feather)
    if k == 0:
        return w
    padded = F.pad(w, (k, k, k, k), mode="replicate")
    return F.avg_pool2d(padded, 2 * k + 1, stride=1)


def compose(fidelity: torch.Tensor, realism: torch.Tensor, mask: np.ndarray,
            feather: int = DEFAULT_FEATHER) -> torch.Tensor:
    """``fidelity`` inside ``mask``, ``realism`` outside, blended across the feathered band.

    Frames are (1, 3, H, W) in [0, 1] and the mask (H, W); away from the band each output pixel
    is bit for bit the frame it comes from.
    """
    if mask.shape != tuple(fidelity.shape[-2:]) or fidelity.shape != realism.shape:
        raise InputError(f"The mask is {mask.shape[1]}x{mask.shape[0]}; the frames are "
                         f"{fidelity.shape[-1]}x{fidelity.shape[-2]}.")
    w = blend_weights(mask, feather).to(fidelity.dtype)
    return w * fidelity + (1 - w) * realism


def pack_mask(mask: np.ndarray) -> bytes:
    """A mask as a ``.drc`` mask section: one bit per 8 × 8 block (set when any of its pixels is
    protected), bit-packed and zlib-compressed behind (block, columns, rows)."""
    h, w = mask.shape
    rows, cols = math.ceil(h / BLOCK), math.ceil(w / BLOCK)
    padded = np.zeros((rows * BLOCK, cols * BLOCK), bool)
    padded[:h, :w] = mask
    blocks = padded.reshape(rows, BLOCK, cols, BLOCK).any(axis=(1, 3))
    return _HEAD.pack(BLOCK, cols, rows) + zlib.compress(np.packbits(blocks).tobytes(), 9)


def unpack_mask(data: bytes, width: int, height: int) -> np.ndarray:
    """The (height, width) bool mask of a ``.drc`` mask section; a bad one raises BitstreamError."""
    try:
        block, cols, rows = _HEAD.unpack_from(data, 0)
        bits = np.unpackbits(np.frombuffer(zlib.decompress(data[_HEAD.size:], bufsize=cols * rows // 8 + 1),
                                           np.uint8))
    except (struct.error, zlib.error) as exc:
        raise BitstreamError(f"The bitstream's protect mask is corrupt ({exc}).") from None
    if block == 0 or (cols, rows) != (math.ceil(width / block), math.ceil(height / block)) \
            or bits.size < cols * rows:
        raise BitstreamError("The bitstream's protect mask does not fit its image.")
    blocks = bits[:cols * rows].reshape(rows, cols).astype(bool)
    return blocks.repeat(block, axis=0).repeat(block, axis=1)[:height, :width]


def coverage(mask: np.ndarray) -> float:
    """The protected share of the image."""
    return float(mask.mean()) if mask.size else 0.0


def file_mask(enc) -> np.ndarray | None:
    """The protect mask an :class:`~dirac_demo.codecs.bitstream.Encoded` carries, or None."""
    return unpack_mask(enc.mask, enc.width, enc.height) if enc.mask else None
