"""Image quality metrics on 8-bit RGB.

* Full reference: PSNR, MS-SSIM (pytorch-msssim), LPIPS (AlexNet, only with cached weights).
* Distribution: SWD (:mod:`dirac_demo.swd`, needs no weights), FID/256 and KID/256 on
  half-overlapping 256×256 crops (pytorch-fid's Inception, only with cached weights).
* Rate curves: Bjøntegaard delta rate and delta PSNR.

Metrics that need network weights never download them: a loader returns ``(None, reason)``
when the weights are not already in the torch hub cache, and callers report ``null`` with it.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import scipy.interpolate
import scipy.linalg
import torch
import torch.nn.functional as F

from ..images import quantize_8bit
from ..quality import ms_ssim, psnr  # noqa: F401  (re-exported: the full-reference metrics)
from ..swd import SlicedWasserstein, SWDResult, swd  # noqa: F401  (re-exported: the SWD metric)


# ---- LPIPS (full reference, needs AlexNet weights) ----------------------------------------
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"            # torchvision's IMAGENET1K_V1 AlexNet
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"   # pytorch-fid's FID Inception


def hub_checkpoint(filename: str) -> Path:
    """Where torch.hub keeps (or would download) a checkpoint file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def load_lpips(device: str | torch.device = "cpu") -> tuple[torch.nn.Module | None, str | None]:
    """LPIPS (AlexNet, v0.1) if its weights are on disk, else ``(None, reason)``; never downloads."""
    try:
        import lpips
    except ImportError:
        return None, "the lpips package is not installed"
    linear = Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"
    if not linear.exists():
        return None, f"LPIPS linear-layer weights not found at {linear}"
    backbone = hub_checkpoint(ALEXNET_FILE)
    if not backbone.exists():
        return None, (f"AlexNet weights not found in the torch hub cache ({backbone}); "
                      "LPIPS needs torchvision's pretrained AlexNet and nothing is downloaded here")
    with warnings.catch_warnings():   # lpips passes torchvision's deprecated `pretrained=`
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net="alex", verbose=False)
    return model.eval().to(device), None


@torch.no_grad()
def lpips_distance(model: torch.nn.Module, a: torch.Tensor, b: torch.Tensor) -> float:
    """LPIPS between two [0, 1] images (8-bit rounded), each (1, 3, H, W)."""
    dev = next(model.parameters()).device
    a, b = quantize_8bit(a.float()).to(dev), quantize_8bit(b.float()).to(dev)
    return float(model(a, b, normalize=True).mean())


# ---- FID/256 and KID/256 (distribution, need Inception weights) ---------------------------
def half_overlapping_crops(x: torch.Tensor, size: int = 256) -> torch.Tensor:
    """The FID/256 crops of HiFiC / MS-ILLM: a grid of non-overlapping ``size`` crops, then the
    same grid shifted by ``size // 2`` when both sides are at least 1.5 × ``size``.

    (N, 3, H, W) -> (K, 3, size, size); sides below ``size`` give no crops.
    """
    def grid(t: torch.Tensor) -> torch.Tensor:
        if min(t.shape[-2:]) < size:
            return t.new_zeros((0, t.shape[1], size, size))
        return (F.unfold(t, kernel_size=size, stride=size).permute(0, 2, 1)
                .reshape(-1, t.shape[1], size, size))
    crops = [grid(x)]
    if x.shape[-2] >= 1.5 * size and x.shape[-1] >= 1.5 * size:
        crops.append(grid(x[..., size // 2:, size // 2:]))
    return torch.cat(crops)


def load_inception(device: str | torch.device = "cpu") -> tuple[torch.nn.Module | None, str | None]:
    """pytorch-fid's InceptionV3 (pool3, 2048-d) if installed and cached, else ``(None, reason)``."""
    try:
        from pytorch_fid.inception import InceptionV3
    except ImportError:
        return None, "pytorch-fid is not installed (pip install pytorch-fid) and its Inception weights are needed"
    weights = hub_checkpoint(INCEPTION_FILE)
    if not weights.exists():
        return None, (f"FID Inception weights not found in the torch hub cache ({weights}); "
                      "nothing is downloaded here")
    model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    return model.eval().to(device), None


@torch.no_grad()
def inception_features(model: torch.nn.Module, crops: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """Pool3 features (K, 2048) of [0, 1] crops (8-bit rounded), in float64 on the CPU."""
    dev = next(model.parameters()).device
    out = []
    for i in range(0, len(crops), batch):
        feats = model(quantize_8bit(crops[i:i + batch].float()).to(dev))[0]
        out.append(feats.flatten(1).double().cpu())
    return torch.cat(out) if out else torch.zeros((0, 2048), dtype=torch.float64)


def frechet_distance(f1: torch.Tensor | np.ndarray, f2: torch.Tensor | np.ndarray, eps: float = 1e-6) -> float:
    """FID between two feature sets: |μ1 − μ2|² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½) (Heusel et al. 2017)."""
    f1, f2 = np.asarray(f1, dtype=np.float64), np.asarray(f2, dtype=np.float64)
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.atleast_2d(np.cov(f1, rowvar=False)), np.atleast_2d(np.cov(f2, rowvar=False))
    with warnings.catch_warnings():   # a singular product is handled below, as pytorch-fid does
        warnings.simplefilter("ignore")
        covmean = scipy.linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            off = np.eye(s1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((s1 + off) @ (s2 + off))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def kernel_inception_distance(f1: torch.Tensor | np.ndarray, f2: torch.Tensor | np.ndarray,
                              subsets: int = 100, subset_size: int = 1000, degree: int = 3,
                              coef0: float = 1.0, seed: int = 0) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): unbiased MMD² with the kernel (x·y/d + 1)³, mean and std over
    random subsets (as torch-fidelity / torchmetrics); the subset size is capped at the set sizes."""
    f1, f2 = np.asarray(f1, dtype=np.float64), np.asarray(f2, dtype=np.float64)
    m = min(subset_size, len(f1), len(f2))
    if m < 2:
        raise ValueError("KID needs at least two samples in each set.")
    rng = np.random.default_rng(seed)
    d = f1.shape[1]
    vals = []
    for _ in range(subsets):
        x = f1[rng.choice(len(f1), m, replace=False)]
        y = f2[rng.choice(len(f2), m, replace=False)]
        kxx = (x @ x.T / d + coef0) ** degree
        kyy = (y @ y.T / d + coef0) ** degree
        kxy = (x @ y.T / d + coef0) ** degree
        vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                    - 2.0 * kxy.mean())
    return float(np.mean(vals)), float(np.std(vals))


# ---- Bjøntegaard delta --------------------------------------------------------------------
def _pchip_mean(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    order = np.argsort(x)
    x, y = x[order], y[order]
    if len(x) < 2 or np.any(np.diff(x) <= 0):
        raise ValueError("A rate curve needs at least two points with distinct quality values.")
    return float(scipy.interpolate.PchipInterpolator(x, y).integrate(lo, hi) / (hi - lo))


def _overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    if min(len(a), len(b)) < 2:
        raise ValueError("A rate curve needs at least two points.")
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    if hi <= lo:
        raise ValueError("The two rate curves do not overlap; BD metrics are undefined.")
    return float(lo), float(hi)


def bd_rate(rate_anchor, psnr_anchor, rate_test, psnr_test) -> float:
    """Bjøntegaard delta rate in % of the test curve against the anchor (negative: fewer bits).

    log-rate as a piecewise cubic (PCHIP) function of PSNR, integrated over the overlapping PSNR
    interval, as in the JVET/VCEG common-test-conditions scripts.
    """
    r1, p1 = np.log(np.asarray(rate_anchor, float)), np.asarray(psnr_anchor, float)
    r2, p2 = np.log(np.asarray(rate_test, float)), np.asarray(psnr_test, float)
    lo, hi = _overlap(p1, p2)
    return float((np.exp(_pchip_mean(p2, r2, lo, hi) - _pchip_mean(p1, r1, lo, hi)) - 1.0) * 100.0)


def bd_psnr(rate_anchor, psnr_anchor, rate_test, psnr_test) -> float:
    """Bjøntegaard delta PSNR in dB of the test curve over the anchor (PCHIP over log-rate)."""
    r1, p1 = np.log(np.asarray(rate_anchor, float)), np.asarray(psnr_anchor, float)
    r2, p2 = np.log(np.asarray(rate_test, float)), np.asarray(psnr_test, float)
    lo, hi = _overlap(r1, r2)
    return _pchip_mean(r2, p2, lo, hi) - _pchip_mean(r1, p1, lo, hi)
