"""The full-resolution crop: the same window of several frames side by side, pixel for pixel."""
from __future__ import annotations

import numpy as np

CROP_SIZE = 128                   # side of the 100% crop, in image pixels
GAP = 8                           # white gap between the panels of the crop view


def side_by_side(panels: list[np.ndarray], cx: float, cy: float, zoom: int = 1) -> np.ndarray:
    """The CROP_SIZE window at (cx, cy) (percent of the free range) of each (H, W, 3) panel, each
    enlarged ×zoom by pixel copies, left to right with white gaps between."""
    h, w = panels[0].shape[:2]
    ch, cw = min(CROP_SIZE, h), min(CROP_SIZE, w)
    top = int(round(float(cy) / 100.0 * (h - ch)))
    left = int(round(float(cx) / 100.0 * (w - cw)))
    z = max(1, int(zoom))
    cut = [p[top:top + ch, left:left + cw].repeat(z, axis=0).repeat(z, axis=1) for p in panels]
    gap = np.full((ch * z, GAP, 3), 255, np.uint8)
    return np.concatenate([x for c in cut for x in (c, gap)][:-1], axis=1)


def centre_on(width: int, height: int, x: float, y: float) -> tuple[float, float]:
    """The crop position in percent that centres the crop on pixel (x, y) of a width × height image."""
    ch, cw = min(CROP_SIZE, height), min(CROP_SIZE, width)
    px = 0.0 if width == cw else (x - cw / 2) / (width - cw) * 100.0
    py = 0.0 if height == ch else (y - ch / 2) / (height - ch) * 100.0
    return float(np.clip(round(px), 0, 100)), float(np.clip(round(py), 0, 100))
