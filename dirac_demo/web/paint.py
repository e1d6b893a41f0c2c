"""Painted protection: the mask a run's frames are composed with, and the paint editor's values.

The regions a visitor paints (:func:`editor_mask`) become the run's protect mask in place of the
one its file carried; the chosen step is then shown composed with step 1 inside them
(:func:`dirac_demo.protect.compose`), from the kept frames: no step runs again.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from ..protect import compose, paint_mask

# The brush is magenta at half opacity, so the frame shows through the paint.
PAINT_COLOR, PAINT_OPACITY = "#ff00ff", 0.5


def brush_radius(width: int, height: int) -> int:
    """The paint brush's starting radius for an image: a fortieth of its shorter side, at least 3 px."""
    return max(3, round(min(width, height) / 40))


def editor_mask(value, width: int, height: int) -> np.ndarray:
    """The protect mask painted in an image editor's value ({'background', 'layers', 'composite'}):
    the pixels its layers cover (:func:`dirac_demo.protect.paint_mask`); nothing for no value."""
    layers = value.get("layers") if isinstance(value, dict) else None
    return paint_mask(layers or [], width, height)


def paint_layer(mask: np.ndarray) -> np.ndarray:
    """A mask drawn as the editor's paint: an RGBA layer in the brush's colour and opacity."""
    red, green, blue = (int(PAINT_COLOR[i:i + 2], 16) for i in (1, 3, 5))
    layer = np.zeros((*mask.shape, 4), np.uint8)
    layer[mask] = (red, green, blue, round(PAINT_OPACITY * 255))
    return layer


def digest(mask: np.ndarray) -> str:
    """A short name for a mask's pixels, for the files composed with it."""
    return hashlib.blake2b(np.packbits(mask).tobytes() + str(mask.shape).encode(), digest_size=6).hexdigest()


class Protection:
    """The protect mask of one run: the file's, replaced by the painted one once set, and the
    page's toggle; protected pixels keep step ``step``."""

    def __init__(self, width: int, height: int, from_file: np.ndarray | None = None, step: int = 1) -> None:
        self.width, self.height, self.step = width, height, step
        self.from_file = from_file        # the mask the file (or the API's protect image) carried
        self.painted: np.ndarray | None = None
        self.on = True                    # whether the page applies the mask

    def drawn(self) -> np.ndarray | None:
        """The mask as drawn: the painted one once set, else the file's."""
        return self.from_file if self.painted is None else self.painted

    def mask(self) -> np.ndarray | None:
        """The mask the page applies; None when there is none, it is empty, or it is switched off."""
        mask = self.drawn()
        return mask if self.on and mask is not None and mask.any() else None

    def paint(self, mask: np.ndarray | None) -> bool:
        """Take ``mask`` in place of the file's (None: nothing protected); whether that changes
        what is painted."""
        mask = np.zeros((self.height, self.width), bool) if mask is None else mask
        drawn = self.drawn()
        changed = bool(mask.any()) if drawn is None else not np.array_equal(drawn, mask)
        self.painted = mask
        return changed

    def switch(self, on: bool) -> bool:
        """Apply the mask or not; whether that changes anything."""
        changed, self.on = self.on != bool(on), bool(on)
        return changed

    def tag(self, k: int) -> str:
        """'' for frame k as the step made it, '_protected_<the mask's digest>' when it is composed."""
        mask = self.mask()
        return f"_protected_{digest(mask)}" if mask is not None and k > self.step else ""

    def apply(self, frames: list[np.ndarray], k: int) -> np.ndarray:
        """Frame k as shown: inside the mask in effect, the pixels of frame ``step``; else frame k."""
        mask = self.mask()
        if mask is None or k <= self.step:
            return frames[k]
        as_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float()  # noqa: E731
        out = compose(as_tensor(frames[self.step]), as_tensor(frames[k]), mask)
        return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()

    def copy(self) -> Protection:
        """An independent copy (the masks themselves never change in place)."""
        twin = Protection(self.width, self.height, self.from_file, self.step)
        twin.painted, twin.on = self.painted, self.on
        return twin
