"""The conditional residual network g_θ(r_t, t, x̃) (paper §3.1, §4), designed for CPUs.

Conditioning is by channel concatenation of r_t and x̃ (both in [−1, 1]); the network
predicts r0 directly (predict_xstart). With ``file_cond = k > 0`` it also takes a vector of k
facts about the base file (:mod:`dirac_demo.diffusion.file_condition`), embedded by a small MLP
whose output is added to the timestep embedding; that MLP's last layer starts at zero, so a
conditioned network loaded with an unconditioned one's weights computes the same function.
A pixel-unshuffle stem puts all work at half resolution or below, so a DDIM step on a Kodak
image stays within a CPU budget.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class UNetConfig:
    """Architecture hyper-parameters; stored next to the weights as JSON."""

    channels: list[int] = field(default_factory=lambda: [48, 96, 192])
    blocks: list[int] = field(default_factory=lambda: [1, 1, 2])
    emb_dim: int = 128
    unshuffle: int = 2
    groups: int = 8
    file_cond: int = 0      # length of the file-conditioning vector; 0: none

    def to_dict(self) -> dict:
        """The JSON form; ``file_cond`` only when used, so unconditioned configs read as before."""
        out = asdict(self)
        if not self.file_cond:
            del out["file_cond"]
        return out


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, as in guided-diffusion."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, timestep injected by scale and shift (FiLM)."""

    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(min(groups, cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1 and not torch.is_grad_enabled():
            return self._forward_inference(x, emb)
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return self.skip(x) + h

    def _forward_inference(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """The same function for one image without autograd, with fewer passes over memory.

        For a batch of one, the FiLM scale and shift fold into GroupNorm's affine parameters,
        so norm, scale and shift are one pass; SiLU and the skip addition work in place.
        """
        h = self.conv1(F.silu(self.norm1(x), inplace=True))
        scale, shift = self.emb(emb)[0].chunk(2)
        n2 = self.norm2
        h = F.group_norm(h, n2.num_groups, n2.weight * (1 + scale), n2.bias * (1 + scale) + shift, n2.eps)
        h = self.conv2(F.silu(h, inplace=True))
        return h.add_(self.skip(x))


class ResidualUNet(nn.Module):
    """U-Net predicting the residual r0 from (r_t, x̃, t); input and output in [−1, 1] units."""

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or UNetConfig()
        ch, s = cfg.channels, cfg.unshuffle
        self.multiple = s * 2 ** (len(ch) - 1)
        self.time_mlp = nn.Sequential(nn.Linear(cfg.emb_dim, cfg.emb_dim), nn.SiLU(),
                                      nn.Linear(cfg.emb_dim, cfg.emb_dim))
        self.file_cond = file_embedding(cfg.file_cond, cfg.emb_dim) if cfg.file_cond else None
        self.stem = nn.Conv2d(6 * s * s, ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downs = nn.ModuleList()
        for i, c in enumerate(ch):
            self.down_blocks.append(nn.ModuleList(
                ResBlock(c, c, cfg.emb_dim, cfg.groups) for _ in range(cfg.blocks[i])))
            if i + 1 < len(ch):
                self.downs.append(nn.Conv2d(c, ch[i + 1], 3, stride=2, padding=1))
        self.ups = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        for i in reversed(range(len(ch) - 1)):
            self.ups.append(nn.Conv2d(ch[i + 1], ch[i] * 4, 1))
            self.up_blocks.append(ResBlock(2 * ch[i], ch[i], cfg.emb_dim, cfg.groups))
        self.out_norm = nn.GroupNorm(min(cfg.groups, ch[0]), ch[0])
        self.out = nn.Conv2d(ch[0], 3 * s * s, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, r_t: torch.Tensor, t: torch.Tensor, x_base: torch.Tensor,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        """Predict r0 from r_t at timestep t given the base reconstruction x̃ (all in [−1, 1]) and,
        for a file-conditioned network, the base file's vector ``cond``: (k,) or (batch, k)."""
        if t.dim() == 0:
            t = t.expand(r_t.shape[0])
        emb = self.time_mlp(timestep_embedding(t, self.config.emb_dim).to(r_t.dtype))
        if self.file_cond is not None or cond is not None:
            emb = emb + self._file_embedding(cond, r_t.shape[0]).to(emb.dtype)
        h = self.stem(F.pixel_unshuffle(torch.cat([r_t, x_base], dim=1), self.config.unshuffle))
        skips = []
        for i, blocks in enumerate(self.down_blocks):
            for block in blocks:
                h = block(h, emb)
            if i < len(self.downs):
                skips.append(h)
                h = self.downs[i](h)
        for up, block in zip(self.ups, self.up_blocks):
            h = F.pixel_shuffle(up(h), 2)
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        h = self.out(F.silu(self.out_norm(h), inplace=not torch.is_grad_enabled()))
        return F.pixel_shuffle(h, self.config.unshuffle)

    def _file_embedding(self, cond: torch.Tensor | None, batch: int) -> torch.Tensor:
        """The file MLP's output for ``cond`` broadcast to ``batch`` rows; a missing or unexpected
        vector raises ValueError (a conditioned network never runs on a made-up one)."""
        k = self.config.file_cond
        if self.file_cond is None:
            raise ValueError("this network takes no file-conditioning vector (its config has file_cond 0)")
        if cond is None:
            raise ValueError(f"this network is file-conditioned: pass cond, a vector of {k} numbers")
        if cond.shape[-1] != k or cond.dim() > 2 or (cond.dim() == 2 and cond.shape[0] not in (1, batch)):
            raise ValueError(f"cond must have shape ({k},) or ({batch}, {k}), got {tuple(cond.shape)}")
        lin = self.file_cond[0]
        return self.file_cond(cond.to(lin.weight.device, lin.weight.dtype).reshape(-1, k)).expand(batch, -1)


def file_embedding(k: int, emb_dim: int) -> nn.Sequential:
    """The MLP embedding a file-conditioning vector of length ``k``; its last layer starts at zero."""
    mlp = nn.Sequential(nn.Linear(k, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
    nn.init.zeros_(mlp[2].weight)
    nn.init.zeros_(mlp[2].bias)
    return mlp
