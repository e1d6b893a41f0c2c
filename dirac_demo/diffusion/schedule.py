"""Noise schedule and timestep respacing (paper A.2, §3.3): pure functions in float64."""
from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Spacing:
    """Where S late-start steps sit in [0, T): t_k = round(t_start · (k / (S − 1))^power), k = S − 1 … 0.

    ``t_start`` is ``start_scale`` times the paper's late start for S steps (the S-th of the 100
    respaced steps: 10·(S − 1), so 190 for S = 20), capped at T − 1. The defaults are the paper's
    DDIM-100 late start exactly (190, 180, …, 0 for S = 20). ``power`` 2 is DDIM's "quad" skip
    (Song et al. 2021): steps dense near t = 0, where the finest texture is drawn, and sparse at
    the noisy end, where the trajectory is nearly straight (paper §5.3). A DIRAC model's JSON may
    carry its own spacing under ``"sampler"``; the choice is made on held-out training images.
    """

    start_scale: float = 1.0
    power: float = 1.0

    def __post_init__(self) -> None:
        if not (0.0 < self.start_scale <= 10.0 and 1.0 <= self.power <= 4.0):
            raise ValueError(f"spacing needs 0 < start_scale <= 10 and 1 <= power <= 4, got "
                             f"{self.start_scale}, {self.power}")

    @property
    def is_paper(self) -> bool:
        return self.start_scale == 1.0 and self.power == 1.0

    def to_dict(self) -> dict:
        return {"start_scale": self.start_scale, "power": self.power}

    @classmethod
    def from_meta(cls, meta: dict | None) -> "Spacing":
        """The spacing stored in a model JSON's ``"sampler"`` entry; the paper's when absent."""
        meta = meta or {}
        return cls(float(meta.get("start_scale", 1.0)), float(meta.get("power", 1.0)))

    def describe(self) -> str:
        if self.is_paper:
            return "uniform (paper: the last S of 100 respaced steps)"
        return f"t_start = {self.start_scale:g} × 10·(S − 1), power {self.power:g}"

    def timesteps(self, steps: int, num_respaced: int = 100, num_timesteps: int = T_TRAIN) -> np.ndarray:
        """Descending training timesteps of the S = ``steps`` sampling steps, ending at t = 0."""
        if self.is_paper:
            return late_start_timesteps(steps, num_respaced, num_timesteps)
        if not 0 <= steps <= num_respaced:
            raise ValueError(f"steps must be in 0..{num_respaced}, got {steps}")
        if steps <= 1:
            return np.zeros(steps, dtype=np.int64)
        spaced = space_timesteps(num_timesteps, num_respaced)
        stride = int(spaced[1] - spaced[0])
        t_start = min(num_timesteps - 1, int(round(self.start_scale * stride * (steps - 1))))
        if t_start < steps - 1:
            raise ValueError(f"start_scale {self.start_scale:g} leaves no room for {steps} distinct steps")
        ts = np.round(t_start * (np.arange(steps) / (steps - 1)) ** self.power).astype(np.int64)
        for k in range(1, steps):   # distinct timesteps where rounding collides near t = 0; with
            ts[k] = max(ts[k], ts[k - 1] + 1)   # power >= 1 the curve lies below its chord, so the
        return ts[::-1].copy()                  # shifted steps rejoin it and t_start stays first


PAPER_SPACING = Spacing()


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
