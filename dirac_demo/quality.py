"""The per-step figures: PSNR, MS-SSIM and bits per pixel (the page and the CLI), the live SWD
against one original (:class:`LiveSWD`, the page's realism figure), and :func:`with_metrics`,
the one wrapper that puts them on a run's frames.

Cheap and weight-free; the evaluation's measures (SWD over a set at 4096 patches, LPIPS, FID)
live in :mod:`dirac_demo.eval.metrics`.
"""
from __future__ import annotations

import math
from typing import Iterable, Iterator

import torch

from .images import quantize_8bit
from .swd import SlicedWasserstein, num_levels

# The live SWD's setting, chosen in experiments/live_realism.py (the evaluation's: 4096 patches, 4 × 128)
LIVE_PATCHES = 1024
LIVE_DIR_REPEATS, LIVE_DIRS_PER_REPEAT = 4, 32


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB between two [0, 1] images after rounding both to 8 bits (RGB, peak 255)."""
    mse = torch.mean((quantize_8bit(a.float()) - quantize_8bit(b.float())) ** 2).item()
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def ms_ssim(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """MS-SSIM (pytorch-msssim, data range 1) on 8-bit-rounded images; None below 161 px a side."""
    from pytorch_msssim import ms_ssim as _ms_ssim
    if min(a.shape[-2:]) <= 160:   # 5 scales of an 11x11 window need > 160 px
        return None
    return float(_ms_ssim(quantize_8bit(a.float()), quantize_8bit(b.float()), data_range=1.0))


_ms_ssim_of = ms_ssim   # the function, where a flag of the same name shadows it


def bits_per_pixel(nbytes: int, width: int, height: int) -> float:
    """Rate in bits per pixel of ``nbytes`` for a ``width`` x ``height`` image."""
    return nbytes * 8.0 / (width * height)


class LiveSWD:
    """Realism of single frames against one original: the SWD of :mod:`.swd` (lower = more realistic)
    at a setting cheap enough for every step, ``LIVE_PATCHES`` patches per pyramid level and
    4 × 32 directions.

    The original's descriptors and sorted projections are computed once; every frame is sampled at
    the same patch positions, so differences between frames are not sampling noise. One image's
    1024 patches leave a floor far above the evaluation's set-level SWD (Karras et al. pool
    thousands of images), so the figure ranks frames of one image (steps, base, WebP, AVIF) and is
    not comparable with ``results/``.
    """

    def __init__(self, original: torch.Tensor, patches: int = LIVE_PATCHES, dir_repeats: int = LIVE_DIR_REPEATS,
                 dirs_per_repeat: int = LIVE_DIRS_PER_REPEAT) -> None:
        side = min(original.shape[-2:])
        self.swd = SlicedWasserstein(num_levels(side), patches, dir_repeats, dirs_per_repeat, min_side=side)
        self.swd.add_reference(original, 0)

    def __call__(self, image: torch.Tensor) -> float:
        """SWD ×10³ of ``image`` ((1, 3, H, W) in [0, 1], the original's size) against the original."""
        self.swd.add("frame", image, 0)
        return self.swd.distance("frame").mean


def with_metrics(events: Iterable, ms_ssim: bool = True, swd: bool = False) -> Iterator:
    """The events of a run (:meth:`dirac_demo.DiracPipeline.run` or ``run_bitstream``), each frame
    with its PSNR, MS-SSIM (``ms_ssim``) and live SWD (``swd``) against the original the
    header carries; on the receiver's side (no original) the frames pass unchanged. The
    original's side of the SWD is computed once per run, like k-diffusion's callback sees every
    step of a sampler."""
    original, meter = None, None
    for ev in events:
        if hasattr(ev, "bitstream"):                     # the header: a new run starts
            original = ev.original
            meter = LiveSWD(original) if swd and original is not None else None
        elif original is not None:
            ev.psnr = psnr(ev.image, original)
            ev.ms_ssim = _ms_ssim_of(ev.image, original) if ms_ssim else None
            ev.swd = meter(ev.image) if meter is not None else None
        yield ev
