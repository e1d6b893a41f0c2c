"""Overlapping tiles for images too large for one network call: the fewest tiles that cover an image
with at least ``overlap`` pixels between neighbours, blended back with linear ramps."""
from __future__ import annotations

from typing import Callable

import torch


def tiled(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], r: torch.Tensor, xb: torch.Tensor,
          tile: int, overlap: int) -> torch.Tensor:
    """``fn(r_tile, xb_tile)`` over overlapping ``tile``-pixel tiles of ``r`` and ``xb``, blended
    with ramps over the overlaps into one output of ``r``'s shape."""
    h, w = r.shape[-2:]
    out = torch.zeros_like(r)
    wsum = torch.zeros((1, 1, h, w), device=r.device)
    for y in tile_starts(h, tile, overlap):
        for x in tile_starts(w, tile, overlap):
            sl = (..., slice(y, y + tile), slice(x, x + tile))
            pred = fn(r[sl], xb[sl])
            wt = ramp_weights(pred.shape[-2], pred.shape[-1], overlap, r.device)
            out[sl] += pred * wt
            wsum[sl] += wt
    return out / wsum


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Fewest tile origins covering ``length`` with at least ``overlap`` between neighbours."""
    if length <= tile:
        return [0]
    n = -(-(length - overlap) // (tile - overlap))
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def ramp(n: int, overlap: int, device) -> torch.Tensor:
    i = torch.arange(n, device=device, dtype=torch.float32)
    return torch.minimum(torch.ones_like(i), torch.minimum(i + 1, n - i) / max(1, overlap))


def ramp_weights(height: int, width: int, overlap: int, device="cpu") -> torch.Tensor:
    """A tile's (height, width) blending weights: 1 inside, falling linearly over ``overlap``
    pixels towards each edge."""
    return ramp(height, overlap, device)[:, None] * ramp(width, overlap, device)[None]
