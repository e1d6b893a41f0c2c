"""Sliced Wasserstein distance over Laplacian-pyramid patches (Karras et al. 2018, §5 and App. D).

A weight-free stand-in for FID/256: a distribution distance between the set of originals and the
set of reconstructions, following ``metrics/sliced_wasserstein.py`` of *Progressive Growing of
GANs* step by step:

* each image (8-bit values, 0..255) is decomposed into a Laplacian pyramid with the 5×5 binomial
  filter and mirror borders (``cv2.pyrDown``/``pyrUp``), one level per resolution down to 16 px;
  the last level is the low-pass image itself;
* ``patches_per_image`` random 7×7×3 neighbourhoods are drawn per image and level;
* the descriptors of a set are normalised per colour channel by that set's own mean and standard
  deviation (so the metric compares local structure, not global colour or contrast);
* the distance is the mean over ``dir_repeats`` × ``dirs_per_repeat`` (4 × 128) random unit
  directions of the 1-D Wasserstein-1 distance between the sorted projections, ×10³, per level,
  and their average.

Differences from the original, all for determinism and for non-square, unequal image sizes:
patch positions come from a generator seeded by (seed, reference-or-test, image index), so every
reconstruction set is sampled at the same places and the originals at independent ones (SWD of a
set with itself is small but not zero: that is the sampling noise); the projection directions are
seeded by (seed, level, repeat) and shared by all sets; the number of levels comes from the
smallest image side; ``pyr_up`` crops to the finer level's size for odd sizes.

Karras et al. draw 128 patches per image from thousands of images (about 2M descriptors per
level); a test set of 24 images needs far more per image for a usable estimate. The estimate has
a floor, SWD(originals, an independent resampling of the originals), that
``python -m dirac_demo.eval.evaluate`` records as ``swd_floor``. It is sampling noise and falls as
1/sqrt(patches): on 16 *training-set* images (512², ``experiments/swd_floor.py``) it is 14.3 at
1024 patches, 0.62× the SWD of JPEG at QF 10 (23.0), so a realism gain of 0.6× could not even be
resolved; at 4096 patches (the default, ``DEFAULT_PATCHES``) it is 7.5, 0.40× JPEG's 18.9.
Independent sampling is kept on purpose: sampling reconstructions at the originals' positions
would lower the floor but favour reconstructions that are pixel-close to the originals over
equally realistic new texture.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .images import quantize_8bit

NHOOD = 7
MIN_RES = 16
DEFAULT_PATCHES = 4096
_TAPS = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)   # Karras's 5×5 gaussian_filter / 256 is their outer product
_REFERENCE, _TEST, _DIRECTIONS = 0, 1, 2


def num_levels(min_side: int, min_res: int = MIN_RES) -> int:
    """Pyramid levels for an image whose shorter side is ``min_side``: halve while ≥ ``min_res``."""
    levels, res = 0, int(min_side)
    while res >= min_res:
        levels, res = levels + 1, res // 2
    return levels


def _blur(x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """5×5 binomial filter per channel with mirror borders (scipy 'mirror' == torch 'reflect'),
    kept at every ``stride``-th row and column. The kernel is separable: two 5-tap passes of
    shifted multiply-adds, several times faster on a CPU than a depthwise conv2d."""
    h, w = x.shape[-2:]
    p = F.pad(x, (2, 2, 2, 2), mode="reflect")
    rows = p[..., :, 0:w:stride] * _TAPS[0]
    for i in range(1, 5):
        rows.add_(p[..., :, i:i + w:stride], alpha=_TAPS[i])
    out = rows[..., 0:h:stride, :] * _TAPS[0]
    for i in range(1, 5):
        out.add_(rows[..., i:i + h:stride, :], alpha=_TAPS[i])
    return out


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur then keep every second pixel, like ``cv2.pyrDown`` (only the kept pixels are computed)."""
    return _blur(x, stride=2)


def _up(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Zero insertion along ``dim`` blurred with twice the 5-tap binomial, mirror borders, computed
    from the coarse samples alone: even outputs are (x[i−1] + 6·x[i] + x[i+1]) / 8, odd ones
    (x[i] + x[i+1]) / 2; the mirrored zero-inserted row makes x[−1] = x[1] and x[n] = x[n−1]."""
    n = x.shape[dim]
    p = torch.cat([x.narrow(dim, 1, 1), x, x.narrow(dim, n - 1, 1)], dim=dim)
    left, mid, right = (p.narrow(dim, i, n) for i in range(3))
    even = (left + 6.0 * mid + right) * 0.125
    odd = (mid + right) * 0.5
    return torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)


def pyr_up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-insertion upsampling blurred with 4× the kernel, like ``cv2.pyrUp``, cropped to ``size``
    (separable and polyphase: the inserted zeros are never multiplied)."""
    return _up(_up(x, x.dim() - 1), x.dim() - 2)[..., : size[0], : size[1]]


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid of (N, C, H, W) float images; the last entry is the low-pass residual."""
    pyramid = [x.float()]
    for _ in range(1, levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1], pyramid[-2].shape[-2:])
    return pyramid


def _generator(*key: int) -> torch.Generator:
    seed = int(np.random.SeedSequence([int(k) for k in key]).generate_state(1)[0])
    return torch.Generator().manual_seed(seed)


def sample_patches(level: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random 7×7 neighbourhoods of a (3, H, W) level, as (count, 3, 7, 7)."""
    half = NHOOD // 2
    c, h, w = level.shape
    ys = torch.randint(half, h - half, (count,), generator=generator)
    xs = torch.randint(half, w - half, (count,), generator=generator)
    off = torch.arange(-half, half + 1)
    rows = (ys[:, None] + off)[:, :, None]          # (count, 7, 1)
    cols = (xs[:, None] + off)[:, None, :]          # (count, 1, 7)
    flat = torch.index_select(level.reshape(c, h * w), 1, (rows * w + cols).reshape(-1))
    return flat.reshape(c, count, NHOOD, NHOOD).permute(1, 0, 2, 3)


def image_descriptors(image: torch.Tensor, levels: int, count: int,
                      generator: torch.Generator) -> list[torch.Tensor]:
    """Per level, ``count`` 7×7×3 patches of the Laplacian pyramid of a [0, 1] image (8-bit scale)."""
    x = quantize_8bit(image.detach().float().cpu()).mul(255.0)
    if x.dim() == 3:
        x = x[None]
    if min(x.shape[-2:]) < MIN_RES * 2 ** (levels - 1):
        raise ValueError(f"An image of {x.shape[-1]}x{x.shape[-2]} pixels is too small for "
                         f"{levels} pyramid levels.")
    return [sample_patches(lev[0], count, generator) for lev in laplacian_pyramid(x, levels)]


def normalise(desc: torch.Tensor) -> torch.Tensor:
    """Per-channel standardisation over all neighbourhoods of a set, flattened to (n, 147)."""
    desc = desc.float()
    mean = desc.mean(dim=(0, 2, 3), keepdim=True)
    std = desc.std(dim=(0, 2, 3), keepdim=True, unbiased=False).clamp_min(1e-8)
    return ((desc - mean) / std).reshape(desc.shape[0], -1)


def _directions(dim: int, count: int, generator: torch.Generator) -> torch.Tensor:
    dirs = torch.randn((dim, count), generator=generator, dtype=torch.float64)
    return (dirs / dirs.norm(dim=0, keepdim=True)).float()


@dataclass
class SWDResult:
    """SWD ×10³ per pyramid level (finest first), the shorter side at each level, and the mean."""

    levels: list[float]
    resolutions: list[int]
    mean: float = field(init=False)

    def __post_init__(self) -> None:
        self.mean = float(np.mean(self.levels))


class SlicedWasserstein:
    """Streaming SWD: add originals once, add any number of reconstruction sets by key.

    Images are identified by their index in the data set; a set must hold the same indices as
    the reference. Descriptors are kept (float16) until :meth:`drop`.
    """

    def __init__(self, levels: int, patches_per_image: int = DEFAULT_PATCHES, dir_repeats: int = 4,
                 dirs_per_repeat: int = 128, seed: int = 0, min_side: int | None = None) -> None:
        if levels < 1:
            raise ValueError("SWD needs at least one pyramid level (images of at least 16 px).")
        self.levels, self.count, self.seed = levels, patches_per_image, seed
        self.dir_repeats, self.dirs_per_repeat = dir_repeats, dirs_per_repeat
        self.min_side = min_side or MIN_RES * 2 ** (levels - 1)
        self._sets: dict[Hashable, dict[int, list[torch.Tensor]]] = {}
        self._ref: dict[int, list[torch.Tensor]] = {}
        self._ref_sorted: list[torch.Tensor] | None = None
        self._dirs: dict[int, torch.Tensor] = {}

    def config(self) -> dict:
        """The settings, for the JSON record."""
        return {"levels": self.levels, "resolutions": self.resolutions(), "nhood": NHOOD,
                "patches_per_image": self.count, "dir_repeats": self.dir_repeats,
                "dirs_per_repeat": self.dirs_per_repeat, "seed": self.seed, "scale": 1000}

    def resolutions(self) -> list[int]:
        return [self.min_side // 2 ** i for i in range(self.levels)]

    def _descriptors(self, image: torch.Tensor, role: int, index: int) -> list[torch.Tensor]:
        gen = _generator(self.seed, role, index)
        return [d.half() for d in image_descriptors(image, self.levels, self.count, gen)]

    def add_reference(self, image: torch.Tensor, index: int) -> None:
        """Add original image number ``index``."""
        self._ref[index] = self._descriptors(image, _REFERENCE, index)
        self._ref_sorted = None

    def add(self, key: Hashable, image: torch.Tensor, index: int) -> None:
        """Add the reconstruction of image ``index`` to the set ``key``."""
        self._sets.setdefault(key, {})[index] = self._descriptors(image, _TEST, index)

    def drop(self, key: Hashable) -> None:
        """Forget a reconstruction set (frees its descriptors)."""
        self._sets.pop(key, None)

    def keys(self) -> list[Hashable]:
        return list(self._sets)

    def _stack(self, per_image: dict[int, list[torch.Tensor]], level: int) -> torch.Tensor:
        return normalise(torch.cat([per_image[i][level] for i in sorted(per_image)]))

    def _projections(self, desc: torch.Tensor, level: int) -> torch.Tensor:
        """Sorted projections on all dir_repeats × dirs_per_repeat directions, as (directions, n)."""
        if level not in self._dirs:
            self._dirs[level] = torch.cat([_directions(desc.shape[1], self.dirs_per_repeat,
                                                       _generator(self.seed, _DIRECTIONS, level, rep))
                                           for rep in range(self.dir_repeats)], dim=1)
        proj = (desc @ self._dirs[level]).t().contiguous().numpy()
        return torch.from_numpy(np.sort(proj, axis=1))   # numpy's sort: several times torch's on a CPU

    def distance(self, key: Hashable) -> SWDResult:
        """SWD ×10³ between the originals and the set ``key``, per level and averaged.

        The mean |Δ| over all directions equals Karras's mean over repeats of per-repeat means
        (every repeat has the same number of directions).
        """
        test = self._sets.get(key)
        if not test or not self._ref:
            raise ValueError(f"SWD set {key!r} or the reference set is empty.")
        if sorted(test) != sorted(self._ref):
            raise ValueError(f"SWD set {key!r} does not hold the same images as the reference.")
        if self._ref_sorted is None:
            self._ref_sorted = [self._projections(self._stack(self._ref, lev), lev)
                                for lev in range(self.levels)]
        out = []
        for lev in range(self.levels):
            proj = self._projections(self._stack(test, lev), lev)
            out.append(float((proj - self._ref_sorted[lev]).abs().mean()) * 1e3)
        return SWDResult(out, self.resolutions())


def swd(reference: Sequence[torch.Tensor], test: Sequence[torch.Tensor],
        patches_per_image: int = DEFAULT_PATCHES,
        dir_repeats: int = 4, dirs_per_repeat: int = 128, seed: int = 0,
        levels: int | None = None) -> SWDResult:
    """SWD ×10³ between two equally long lists of [0, 1] images, (1, 3, H, W) or (3, H, W)."""
    if len(reference) != len(test) or not reference:
        raise ValueError("SWD needs two non-empty image lists of equal length.")
    min_side = min(min(x.shape[-2:]) for x in list(reference) + list(test))
    levels = levels or num_levels(min_side)
    acc = SlicedWasserstein(levels, patches_per_image, dir_repeats, dirs_per_repeat, seed,
                            min_side=min_side)
    for i, (a, b) in enumerate(zip(reference, test)):
        acc.add_reference(a, i)
        acc.add("test", b, i)
    return acc.distance("test")
