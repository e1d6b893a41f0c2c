"""The neural codec's decoder-side post-filter: a small residual CNN after the synthesis transform.

The hyperprior's synthesis transform g_s ends in a 5×5 stride-2 transposed convolution, which
leaves correctable structure in its output: ringing around edges and the periodic pattern of
the last upsampling. This filter removes some of it with an MSE objective. It is part of the
*decoder*: it runs on every decoded image, its weights enter the file's weights id, and the
refined encoder optimises through it. Trained for MSE only, it is a fidelity tool and invents
nothing, unlike DIRAC's later steps.

Layout: pixel-unshuffle by ``down`` (the convolutions run at 1/down² of the pixels), a 3×3 head
that also reads log λ_rate (the receiver knows λ from the file, and the artefacts' strength
depends on it), ``blocks`` residual blocks of two 3×3 convolutions, a 3×3 tail back to
3·down² channels, pixel-shuffle, added to the input. The tail starts at zero, so a new filter
is the identity and training it can only start from the codec as it was.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LOG_LMBDA_CENTRE = math.log(0.0016)     # the middle of the codec's λ range in log space
LOG_LMBDA_SPREAD = 2.0                  # ln(0.016 / 0.0004) / 2 ≈ 1.8: log λ maps to about [-1, 1]


class PostFilter(nn.Module):
    """x̃ ↦ x̃ + f(x̃, λ) for (B, 3, H, W) images in [0, 1]; any H, W (odd sides are padded)."""

    def __init__(self, channels: int, blocks: int = 4, down: int = 2) -> None:
        super().__init__()
        if channels < 1 or blocks < 0 or down < 1:
            raise ValueError(f"bad post-filter shape: channels={channels}, blocks={blocks}, down={down}")
        self.down = down
        c_img = 3 * down * down
        self.head = nn.Conv2d(c_img + 1, channels, 3, padding=1)
        self.body = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
                          nn.Conv2d(channels, channels, 3, padding=1))
            for _ in range(blocks))
        self.tail = nn.Conv2d(channels, c_img, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor, lmbda: float | torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = -h % self.down, -w % self.down
        xp = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        u = F.pixel_unshuffle(xp - 0.5, self.down)
        lam = torch.as_tensor(lmbda, dtype=torch.float32, device=x.device).reshape(-1, 1, 1, 1)
        level = ((torch.log(lam) - LOG_LMBDA_CENTRE) / LOG_LMBDA_SPREAD).to(u.dtype)
        f = self.head(torch.cat([u, level.expand(u.shape[0], 1, *u.shape[-2:])], 1))
        for block in self.body:
            f = f + block(f)
        out = xp + F.pixel_shuffle(self.tail(f), self.down).to(x.dtype)
        return out[..., :h, :w]
