"""A full-resolution window of a large file: the part of a photo enhanced at 100 %.

A JPEG or AVIF file larger than a decoder's pixel limit (the page's 1 MP) is still decoded at its
full size, and DIRAC enhances one window of it, at most the limit, from the file's own decoded
pixels: downscaling would remove the blocking and ringing DIRAC repairs. Windows sit on the
16-pixel grid of the largest JPEG block (a 4:2:0 macroblock), so a window sees the file's blocks
where the whole image has them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InputError

GRID = 16


@dataclass(frozen=True)
class Window:
    """A rectangle of an image in pixels: its left and top edges, its width and height."""

    x: int
    y: int
    width: int
    height: int

    @classmethod
    def parse(cls, text: str) -> Window:
        """``"x,y,width,height"`` (spaces allowed), or a one-line :class:`InputError`."""
        parts = re.split(r"[,\s]+", str(text).strip())
        if len(parts) != 4 or not all(p.isdigit() for p in parts):
            raise InputError(f"window must be four whole numbers x,y,width,height, got {text!r}.")
        return cls(*(int(p) for p in parts))

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.width},{self.height}"

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def label(self) -> str:
        """The window in a file name: ``x1504_y992_1024x1024``."""
        return f"x{self.x}_y{self.y}_{self.width}x{self.height}"

    def check(self, width: int, height: int, max_pixels: int) -> None:
        """Raise a one-line :class:`InputError` unless the window lies inside a ``width`` × ``height``
        image and holds at most ``max_pixels`` pixels."""
        if self.width < 1 or self.height < 1 or self.x + self.width > width or self.y + self.height > height:
            raise InputError(f"The window {self} (x,y,width,height) is not inside the {width}x{height} image.")
        if self.pixels > max_pixels:
            raise InputError(f"The window {self.width}x{self.height} is over the {max_pixels / 1e6:.1f} MP "
                             "limit of this decoder.")

    def crop(self, x):
        """The window of an image tensor (…, H, W) or array (H, W, …) whose first two axes after
        any batch and channel axes are rows and columns: tensors by their last two axes, arrays
        by their first two."""
        if hasattr(x, "dim"):
            return x[..., self.y:self.y + self.height, self.x:self.x + self.width]
        return x[self.y:self.y + self.height, self.x:self.x + self.width]


def window_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """The largest window of at most ``max_pixels``, as square as the image allows, its sides on
    the 16-pixel grid unless a side is the image's whole side."""
    side = int(max_pixels ** 0.5)
    h = height if height <= side else side // GRID * GRID
    w = width if width * h <= max_pixels else max_pixels // h // GRID * GRID
    if w * h > max_pixels:              # a short side off the grid: shorten the other one to fit
        h = max_pixels // w
    return w, h


def centred(width: int, height: int, max_pixels: int, cx: float | None = None, cy: float | None = None) -> Window:
    """The window of :func:`window_size` centred on (``cx``, ``cy``) (default: the image's centre),
    moved inside the image and its corner onto the 16-pixel grid."""
    w, h = window_size(width, height, max_pixels)
    cx = width / 2 if cx is None else cx
    cy = height / 2 if cy is None else cy
    return Window(_place(cx - w / 2, w, width), _place(cy - h / 2, h, height), w, h)


def _place(start: float, size: int, whole: int) -> int:
    """A window side's start: inside 0..whole-size, rounded down onto the grid."""
    start = int(min(max(start, 0), whole - size))
    return start // GRID * GRID
