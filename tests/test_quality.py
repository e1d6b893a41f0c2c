"""The page's per-step figures: closed forms, and a module that stays light."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from dirac_demo.quality import LiveSWD, bits_per_pixel, ms_ssim, psnr
from dirac_demo.swd import swd


def test_psnr_closed_form_one_level_everywhere():
    a = torch.full((1, 3, 8, 8), 100 / 255)
    b = torch.full((1, 3, 8, 8), 101 / 255)
    assert psnr(a, b) == pytest.approx(20 * math.log10(255), abs=1e-4)    # MSE of exactly 1 level


def test_psnr_rounds_to_8_bits_first():
    a = torch.full((1, 3, 8, 8), 100 / 255)
    assert psnr(a, a + 0.4 / 255) == float("inf")          # the same 8-bit image
    assert psnr(a, a + 0.6 / 255) == pytest.approx(20 * math.log10(255), abs=1e-4)


def test_ms_ssim_identity_and_size_limit():
    x = torch.rand(1, 3, 192, 192, generator=torch.Generator().manual_seed(0))
    assert ms_ssim(x, x) == pytest.approx(1.0, abs=1e-6)
    assert ms_ssim(x, (x + 0.2).clamp(0, 1)) < 0.99
    assert ms_ssim(x[..., :160, :160], x[..., :160, :160]) is None   # 5 scales need > 160 px



def test_live_swd_is_the_swd_of_one_image_at_the_live_setting():
    g = torch.Generator().manual_seed(0)
    original = torch.rand(1, 3, 64, 80, generator=g)
    blurred = torch.nn.functional.avg_pool2d(original, 3, 1, 1, count_include_pad=False)
    meter = LiveSWD(original)
    assert meter(blurred) == swd([original], [blurred], patches_per_image=1024, dirs_per_repeat=32).mean
    assert meter(blurred) == meter(blurred)                       # the same positions every call
    noisy = (original + 0.1 * torch.randn(original.shape, generator=g)).clamp(0, 1)
    assert meter(original) < min(meter(blurred), meter(noisy))    # only the sampling floor for itself

def test_bits_per_pixel():
    assert bits_per_pixel(1000, 100, 80) == 1.0
    assert bits_per_pixel(11660, 768, 512) == pytest.approx(0.2372, abs=1e-4)


def _imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_runtime_imports_neither_the_evaluation_metrics_nor_gradio():
    loaded = _imported_after("import dirac_demo, dirac_demo.quality, dirac_demo.cli")
    assert "dirac_demo.pipeline" in loaded                       # the check sees the runtime
    heavy = {"dirac_demo.eval", "dirac_demo.eval.metrics", "lpips", "gradio", "pytorch_fid"}
    assert not heavy & loaded
