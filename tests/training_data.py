"""A small synthetic training folder and the tiny network flags both trainers' tests use."""
from pathlib import Path

import numpy as np
from PIL import Image

TINY = ["--channels", "8,16", "--blocks", "1,1"]


def gradient_images(root: Path, height: int, width: int, n: int = 6) -> Path:
    """``n`` coloured gradients with noise, ``width`` x ``height``, saved as PNGs in ``root``."""
    rng = np.random.default_rng(0)
    for i in range(n):
        yy, xx = np.mgrid[0:height, 0:width]
        img = np.stack([xx * (1 + i), yy * 1.5, (xx + yy) * 0.7], -1) % 255 + rng.normal(0, 8, (height, width, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"img{i}.png")
    return root
