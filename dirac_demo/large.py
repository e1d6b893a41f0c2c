"""Full-resolution enhancement in bounded memory: every overlapping tile runs all its DDIM steps,
then the tiles are blended.

:meth:`DiracPipeline.frames` is step-outer: each step is one pass over the whole image (in
blended tiles above ``tile_above``), so it holds several full-size float copies of the image
(the latent, r̂0, each frame). A 12 to 50 MP photo runs tile-outer instead: one tile of at most
``tile`` pixels walks from the base to step K on its own, the frames kept of it are blended
into a band of rows with linear ramps over the overlaps, and rows that no later tile reaches
leave the band as 8-bit pixels. Memory is the base, one 8-bit image per kept frame, one band of
rows and one tile's network, whatever the image's size.

Tiles of one image exchange nothing between steps, yet their blend stays as close to one
untiled run as the step-outer tiling's: on a 384×288 JPEG at QF 20 with the shipped model and
128-pixel tiles overlapping by 32, both differ from the untiled step 20 by 1.0 grey levels on
average (``experiments/phone_photo.py``; ``tests/test_large.py`` bounds it).

The late-start noise is drawn per :data:`NOISE_BLOCK`-pixel block from (seed, block row, block
column), so each tile draws its own part and a seed gives the same noise field at any tiling
(not the same noise as :meth:`~DiracPipeline.frames`, which draws the whole image at once).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np
import torch

from .diffusion.sampler import ddim_sample
from .diffusion import tiles
from .errors import NoModelError
from .images import from_signed, tensor_to_uint8, to_signed
from .pipeline import NUM_RESPACED, Compressed, check_run

if TYPE_CHECKING:
    from .pipeline import DiracPipeline

NOISE_BLOCK = 64      # pixels per side of one seeded block of late-start noise


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of an image sit: ``tile``-pixel squares starting at ``ys`` × ``xs``."""

    tile: int
    overlap: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.ys) * len(self.xs)


def plan_tiles(height: int, width: int, tile: int, overlap: int = 32) -> TilePlan:
    """The fewest ``tile``-pixel tiles covering ``height`` × ``width`` with at least ``overlap``
    pixels between neighbours (one tile when the image fits in it)."""
    if tile <= overlap and tile < max(height, width):
        raise ValueError(f"A tile ({tile} px) must be wider than its overlap ({overlap} px).")
    return TilePlan(tile, overlap, tuple(tiles.tile_starts(height, tile, overlap)),
                    tuple(tiles.tile_starts(width, tile, overlap)))


def default_plan(pipe: "DiracPipeline", height: int, width: int) -> TilePlan:
    """One tile up to the pipeline's ``tile_above`` pixels (the size it runs whole), else its
    ``tile``-pixel tiles overlapping by its ``tile_overlap``."""
    whole = height * width <= pipe.tile_above
    return plan_tiles(height, width, max(height, width) if whole else pipe.tile, pipe.tile_overlap)


def block_noise(seed: int, y: int, x: int, height: int, width: int) -> torch.Tensor:
    """Standard normal noise (1, 3, ``height``, ``width``) of the image region at (``y``, ``x``): the
    same numbers for a pixel whatever region asks, each block seeded by (seed, row, column)."""
    out = torch.empty((1, 3, height, width))
    b = NOISE_BLOCK
    for by in range(y // b, (y + height - 1) // b + 1):
        for bx in range(x // b, (x + width - 1) // b + 1):
            key = np.random.SeedSequence([int(seed) % 2 ** 64, by, bx]).generate_state(1, np.uint64)[0]
            block = torch.randn((3, b, b), generator=torch.Generator().manual_seed(int(key)))
            y0, y1 = max(y, by * b), min(y + height, (by + 1) * b)
            x0, x1 = max(x, bx * b), min(x + width, (bx + 1) * b)
            out[0, :, y0 - y:y1 - y, x0 - x:x1 - x] = block[:, y0 - by * b:y1 - by * b, x0 - bx * b:x1 - bx * b]
    return out


def ramp_weights(height: int, width: int, overlap: int) -> np.ndarray:
    """A tile's (height, width, 1) blending weights: 1 inside, falling linearly over ``overlap``
    pixels towards each edge (the step-outer tiling's ramps, :func:`.diffusion.tiles.ramp_weights`)."""
    return tiles.ramp_weights(height, width, overlap)[..., None].numpy()


class BandBlender:
    """Tiles weighted by their ramps, summed into a band of rows; :meth:`flush` turns the rows no
    later tile reaches into 8-bit pixels of :attr:`out`."""

    def __init__(self, height: int, width: int) -> None:
        self.out = np.empty((height, width, 3), np.uint8)
        self.top = 0                                       # the first row still in the band
        self.acc = np.zeros((0, width, 3), np.float32)
        self.wsum = np.zeros((0, width, 1), np.float32)

    def add(self, y: int, x: int, image: np.ndarray, weight: np.ndarray) -> None:
        """Add an (h, w, 3) tile in [0, 1] at (``y``, ``x``) with its (h, w, 1) weights."""
        h, w = image.shape[:2]
        grow = y + h - self.top - len(self.acc)
        if grow > 0:
            self.acc = np.concatenate([self.acc, np.zeros((grow, *self.acc.shape[1:]), np.float32)])
            self.wsum = np.concatenate([self.wsum, np.zeros((grow, *self.wsum.shape[1:]), np.float32)])
        self.acc[y - self.top:y - self.top + h, x:x + w] += image * weight
        self.wsum[y - self.top:y - self.top + h, x:x + w] += weight

    def flush(self, below: int) -> None:
        """Write out every row above ``below`` (rounded to 8 bits) and drop it from the band."""
        n = below - self.top
        if n <= 0:
            return
        rows = self.acc[:n] / self.wsum[:n]
        self.out[self.top:below] = np.clip(np.round(rows * 255.0), 0, 255).astype(np.uint8)
        self.acc, self.wsum, self.top = self.acc[n:], self.wsum[n:], below


def enhance_tiles(pipe: "DiracPipeline", comp: Compressed, stop: int, steps: int = 20, seed: int = 0,
                  threshold: bool = True, keep: Iterable[int] = (), plan: TilePlan | None = None,
                  on_step: Callable[[], None] | None = None) -> dict[int, np.ndarray]:
    """Frames ``stop`` and ``keep`` (0 is the base) of a decoded file as (H, W, 3) uint8 arrays,
    tile by tile (``plan``, default :func:`default_plan`); ``on_step()`` follows every tile's step."""
    check_run(steps, stop, 0.0)
    wanted = sorted({k for k in (*keep, stop) if k > 0})
    out = {0: tensor_to_uint8(comp.base)} if 0 in keep or stop == 0 else {}
    if not wanted:
        return out
    model = pipe.dirac.get(comp.encoded.codec)
    if model is None:
        raise NoModelError(comp.encoded.codec)
    cond = comp.start
    height, width = cond.shape[-2:]
    plan = plan or default_plan(pipe, height, width)
    ts = [int(t) for t in model.spacing.timesteps(steps, NUM_RESPACED, pipe.schedule.num_timesteps)][:stop]
    clip, fcond = pipe.clip_for(comp.encoded, threshold), pipe.file_condition(comp)
    bands = {k: BandBlender(height, width) for k in wanted}
    for j, y in enumerate(plan.ys):
        for x in plan.xs:
            xb = to_signed(cond[..., y:y + plan.tile, x:x + plan.tile]).to(pipe.device)
            noise = block_noise(seed, y, x, *xb.shape[-2:]) * pipe.schedule.sigma(ts[0])
            frames = _tile_frames(pipe, model.net, (xb, fcond), noise.to(pipe.device), ts, clip, wanted, on_step)
            weight = ramp_weights(*xb.shape[-2:], plan.overlap)
            for k, image in frames.items():
                bands[k].add(y, x, image, weight)
        below = plan.ys[j + 1] if j + 1 < len(plan.ys) else height
        for band in bands.values():
            band.flush(below)
    return out | {k: band.out for k, band in bands.items()}


@torch.no_grad()
def _tile_frames(pipe: "DiracPipeline", net, given: tuple, r: torch.Tensor, ts: list[int], clip: float,
                 wanted: list[int], on_step: Callable[[], None] | None) -> dict[int, np.ndarray]:
    """One tile from its late-start latent ``r`` through steps 1..max(``wanted``), ``given`` the
    tile's base and the file's conditioning vector (or None): the wanted frames as (h, w, 3)
    float32 arrays in [0, 1]."""
    frames, (xb, fcond) = {}, given
    sampler = ddim_sample(lambda r_t, t: pipe.call_net(net, r_t, t, xb, fcond), r, ts, pipe.schedule, clip=clip)
    for k in range(1, wanted[-1] + 1):
        step = next(sampler)
        if k in wanted:
            image = from_signed(xb + step.r0_hat).clamp(0, 1)[0].permute(1, 2, 0)
            frames[k] = image.float().cpu().numpy()
        if on_step is not None:
            on_step()
    return frames
