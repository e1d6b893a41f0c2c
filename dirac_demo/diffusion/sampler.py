"""Residual DDIM sampling with late start, early stopping and thresholding (§3.3, A.4).

η = 0 (the paper's deterministic DDIM) by default; η > 0 adds fresh seeded noise per step.

``ddim_sample`` is a generator in the style of guided-diffusion's progressive loop: it yields
every step's r̂0(t), so a caller can stop after any step and use x̃ + r̂0(t_k) as the result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch

from .schedule import Schedule

Denoiser = Callable[[torch.Tensor, int], torch.Tensor]


@dataclass
class Step:
    """One DDIM step: 0-based ``index``, timestep ``t``, the latent fed in and the r0 prediction."""

    index: int
    t: int
    r_t: torch.Tensor
    r0_hat: torch.Tensor


def late_start_noise(shape: Sequence[int], t: int, schedule: Schedule,
                     generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """r_t ~ N(0, σ_t² I) with σ_t = sqrt(1 − ᾱ_t): the late-start latent (A.4).

    The noise is drawn on the CPU from ``generator`` so a seed gives the same image on any device.
    """
    noise = torch.randn(tuple(shape), generator=generator, dtype=torch.float32)
    return (noise * schedule.sigma(t)).to(device)


def ddim_sigma(abar_t: float, abar_prev: float, eta: float) -> float:
    """σ_t of Song et al. 2021, eq. 16: η = 0 is deterministic DDIM, η = 1 the DDPM posterior."""
    if eta == 0.0 or abar_prev >= 1.0:
        return 0.0
    return eta * math.sqrt((1.0 - abar_prev) / (1.0 - abar_t)) * math.sqrt(1.0 - abar_t / abar_prev)


def ddim_update(r_t: torch.Tensor, r0_hat: torch.Tensor, abar_t: float, abar_prev: float,
                eta: float = 0.0, noise: torch.Tensor | None = None) -> torch.Tensor:
    """DDIM step (Song et al. 2021, eq. 12) from t to the previous timestep.

    With ``eta`` = 0 (the paper's sampler) it is deterministic; with ``eta`` > 0 a share σ_t of
    the noise is fresh ``noise`` (standard normal, same shape) instead of the predicted ε.
    """
    eps = (r_t - math.sqrt(abar_t) * r0_hat) / math.sqrt(1.0 - abar_t)
    sigma = ddim_sigma(abar_t, abar_prev, eta)
    out = math.sqrt(abar_prev) * r0_hat + math.sqrt(max(1.0 - abar_prev - sigma ** 2, 0.0)) * eps
    if sigma > 0.0:
        if noise is None:
            raise ValueError("A stochastic DDIM step (eta > 0) needs noise.")
        out = out + sigma * noise
    return out


def ddim_sample(denoise: Denoiser, r_init: torch.Tensor, timesteps: Sequence[int],
                schedule: Schedule, clip: float | None = 1.0, eta: float = 0.0,
                generator: torch.Generator | None = None) -> Iterator[Step]:
    """Run DDIM over descending ``timesteps`` from ``r_init``, yielding a :class:`Step` each time.

    ``clip`` bounds r̂0 to [−clip, clip] (1.0 is the plain image range; a rate-dependent
    threshold θ(λ) is smaller); ``None`` disables clipping. ``eta`` > 0 makes the steps
    stochastic, with noise drawn on the CPU from ``generator`` (so a seed is device-independent).
    """
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta}")
    r = r_init
    ts = [int(t) for t in timesteps]
    for i, t in enumerate(ts):
        r0_hat = denoise(r, t).float()
        if clip is not None:
            r0_hat = r0_hat.clamp(-clip, clip)
        yield Step(index=i, t=t, r_t=r, r0_hat=r0_hat)
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        noise = None
        if eta > 0.0 and t_prev >= 0:
            noise = torch.randn(tuple(r.shape), generator=generator, dtype=torch.float32).to(r.device)
        r = ddim_update(r, r0_hat, schedule.abar(t), schedule.abar(t_prev), eta, noise)


def nearest_threshold(table: dict[float, float] | None, lmbda: float) -> float | None:
    """θ from the rate-dependent table (A.4): the entry of the rate itself when the table has it
    (JPEG's and AVIF's list every quality), else the one whose rate (λ_rate) is nearest to
    ``lmbda`` in log space (a rate of 0 counts as the smallest)."""
    if not table:
        return None
    if lmbda in table:
        return float(table[lmbda])
    log = lambda v: math.log(max(v, 1e-12))  # noqa: E731
    key = min(table, key=lambda k: abs(log(k) - log(lmbda)))
    return float(table[key])


def update_angle(prev: Step, cur: Step) -> float:
    """Angle in degrees between consecutive update directions u_t ∝ r̂0(t) − r_t (§5.3, Fig. 7)."""
    u0 = (prev.r0_hat - prev.r_t).flatten().double()
    u1 = (cur.r0_hat - cur.r_t).flatten().double()
    cos = torch.dot(u0, u1) / (u0.norm() * u1.norm()).clamp_min(1e-30)
    return float(torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0))))
