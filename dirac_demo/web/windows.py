"""Choosing the full-resolution window of a file over the page's pixel limit.

A plain JPEG or AVIF file larger than the page's limit is shown whole and small (its overview),
with the window DIRAC will enhance at 100 % outlined on it; a click on the overview centres the
window there (:func:`dirac_demo.window.centred`). The window starts at the photo's centre.
"""
from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..codecs import Encoded
from ..window import Window, centred
from .files import replace_into

OVERVIEW_SIDE = 960            # the overview's longer side, in pixels
KEEP_SECONDS = 3600            # overview files older than this are removed as new ones are written


@dataclass(frozen=True)
class WindowPick:
    """A large file's overview, its size as displayed, the page's pixel limit and the window chosen."""

    overview: np.ndarray       # (h, w, 3) uint8: the whole photo, upright, at most OVERVIEW_SIDE a side
    size: tuple[int, int]      # the file's (width, height) as displayed
    limit: int
    window: Window

    @classmethod
    def of_file(cls, data: bytes, enc: Encoded, limit: int) -> WindowPick:
        """The overview of the file ``data`` (read as ``enc``) with the centre window of at most ``limit``."""
        img = Image.open(io.BytesIO(data))
        img.thumbnail((OVERVIEW_SIDE, OVERVIEW_SIDE))        # a JPEG decodes at 1/2..1/8 size directly
        small = ImageOps.exif_transpose(img).convert("RGB")
        return cls(np.asarray(small), (enc.width, enc.height), limit, centred(enc.width, enc.height, limit))

    @property
    def scale(self) -> float:
        """File pixels per overview pixel."""
        return self.size[0] / self.overview.shape[1]

    def at(self, x: float, y: float) -> WindowPick:
        """The window centred on the overview's pixel (x, y), moved inside the photo."""
        return replace(self, window=centred(*self.size, self.limit, x * self.scale, y * self.scale))

    def drawn(self) -> np.ndarray:
        """The overview with the outside of the window dimmed and its edge outlined."""
        w = self.window
        x0, y0 = round(w.x / self.scale), round(w.y / self.scale)
        x1, y1 = round((w.x + w.width) / self.scale), round((w.y + w.height) / self.scale)
        out = (self.overview * 0.45).astype(np.uint8)
        out[y0:y1, x0:x1] = self.overview[y0:y1, x0:x1]
        edge = max(2, round(min(self.overview.shape[:2]) / 240))
        for ys, xs in ((slice(y0, y0 + edge), slice(x0, x1)), (slice(y1 - edge, y1), slice(x0, x1)),
                       (slice(y0, y1), slice(x0, x0 + edge)), (slice(y0, y1), slice(x1 - edge, x1))):
            out[ys, xs] = (255, 214, 0)
        return out

    def save(self, folder: str | Path) -> Path:
        """:meth:`drawn` as a JPEG file in ``folder``, named after its pixels (written once); older
        overview files there are removed."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = self.drawn()
        path = folder / f"window_{hashlib.blake2b(pixels.tobytes(), digest_size=8).hexdigest()}.jpg"
        if not path.exists():
            _prune(folder)
            replace_into(path, lambda fh: Image.fromarray(pixels).save(fh, "JPEG", quality=88))
        return path


def _prune(folder: Path) -> None:
    """Remove overview files not written for an hour (a visitor's page has long moved on)."""
    old = time.time() - KEEP_SECONDS
    for f in folder.glob("window_*.jpg"):
        try:
            if f.stat().st_mtime < old:
                f.unlink()
        except OSError:
            pass
