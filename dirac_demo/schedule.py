"""Noise schedule and timestep respacing (paper A.2, §3.3): pure functions in float64."""
from __future__ import annotations

import numpy as np

T_TRAIN = 1000
BETA_START = 1e-4
BETA_END = 0.02


def linear_betas(num_timesteps: int = T_TRAIN, beta_start: float = BETA_START,
                 beta_end: float = BETA_END) -> np.ndarray:
    """Linear β schedule of eq. (9): β_1 = 1e-4 … β_T = 0.02, float64."""
    return np.linspace(beta_start, beta_end, num_timesteps, dtype=np.float64)


def alphas_cumprod(betas: np.ndarray) -> np.ndarray:
    """ᾱ_t = ∏_{s≤t} (1 − β_s), float64."""
    return np.cumprod(1.0 - betas)


def space_timesteps(num_timesteps: int = T_TRAIN, num_steps: int = 100) -> np.ndarray:
    """Evenly strided timesteps as guided-diffusion's ``space_timesteps(T, "ddimN")``.

    Returns the ascending training timesteps kept for sampling, e.g. 0, 10, …, 990 for N = 100.
    """
    if not 1 <= num_steps <= num_timesteps:
        raise ValueError(f"num_steps must be in 1..{num_timesteps}, got {num_steps}")
    for stride in range(1, num_timesteps):
        if len(range(0, num_timesteps, stride)) == num_steps:
            return np.arange(0, num_timesteps, stride)
    return np.arange(num_timesteps)


def late_start_timesteps(steps: int, num_respaced: int = 100,
                         num_timesteps: int = T_TRAIN) -> np.ndarray:
    """Descending timesteps of the last ``steps`` of the ``num_respaced`` DDIM steps (late start)."""
    if not 0 <= steps <= num_respaced:
        raise ValueError(f"steps must be in 0..{num_respaced}, got {steps}")
    spaced = space_timesteps(num_timesteps, num_respaced)
    return spaced[:steps][::-1].copy()


class Schedule:
    """The training schedule: β, ᾱ and the late-start noise scale σ_t = sqrt(1 − ᾱ_t)."""

    def __init__(self, num_timesteps: int = T_TRAIN) -> None:
        self.num_timesteps = num_timesteps
        self.betas = linear_betas(num_timesteps)
        self.alphas_cumprod = alphas_cumprod(self.betas)

    def abar(self, t: int) -> float:
        """ᾱ_t, or 1.0 for t = −1 (the clean end of the chain)."""
        return 1.0 if t < 0 else float(self.alphas_cumprod[t])

    def sigma(self, t: int) -> float:
        """Std of the forward-process noise at t: sqrt(1 − ᾱ_t) (A.4, late start)."""
        return float(np.sqrt(1.0 - self.abar(t)))
