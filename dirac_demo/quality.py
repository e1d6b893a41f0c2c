"""The per-step figures the page and the CLI show: PSNR, MS-SSIM and bits per pixel.

Cheap and weight-free; the evaluation metrics that need more (SWD, LPIPS, FID) live in
:mod:`dirac_demo.eval.metrics`.
"""
from __future__ import annotations

import math

import torch

from .images import quantize_8bit


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


def bits_per_pixel(nbytes: int, width: int, height: int) -> float:
    """Rate in bits per pixel of ``nbytes`` for a ``width`` x ``height`` image."""
    return nbytes * 8.0 / (width * height)
