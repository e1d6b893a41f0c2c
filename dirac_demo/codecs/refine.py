"""Encoder-side latent refinement for the neural codec: stochastic Gumbel annealing (SGA).

Yang, Bamler & Mandt, "Improving Inference for Neural Image Compression" (NeurIPS 2020): the
amortised encoder g_a (and h_a) gives latents that are good on average, not the best for this
image. Refinement optimises the image's own latents y and hyper-latents z for the codec's
rate–distortion loss D + λ·R with the decoder, the entropy models and the latent scale s(λ)
fixed, so the bitstream format and the decoder do not change: a refined file is an ordinary
.drc file that any copy of the decoder reads. Only encoding gets slower (one decoder forward and
backward pass per iteration).

Rounding is relaxed by SGA: each value is rounded down or up by a Gumbel-softmax sample whose
logits favour the nearer integer, with a temperature annealed from 0.5 to 0.05, so the last
iterations already see (almost) hard rounding. Adam with a linearly decaying step size. The
Gumbel noise comes from a seeded generator: refining the same image twice gives the same file.
"""
from __future__ import annotations

import torch

MAX_REFINE = 1000       # the most encoder-side refinement iterations a file may ask for
DEFAULT_ITERS = 60      # chosen on held-out training images (not Kodak); see the model card
DEFAULT_LR = 0.03       # in units of the quantisation step (latents are rounded to integers)
TAU_START, TAU_END = 0.5, 0.05


def sga_round(v: torch.Tensor, tau: float, gen: torch.Generator) -> torch.Tensor:
    """Soft rounding of ``v``: floor(v) + w, w ∈ (0, 1) a 2-way Gumbel-softmax sample at ``tau``.

    The logits are −atanh(distance)/τ for the floor and the ceiling, so the nearer integer is
    the likelier one and a value on an integer rounds to it almost surely (SGA, eq. 8).
    """
    vf = torch.floor(v.detach())
    r = v - vf                                    # distance to the floor; gradient 1 w.r.t. v
    eps = 1e-5
    logits = torch.stack([-torch.atanh(r.clamp(eps, 1 - eps)),
                          -torch.atanh((1 - r).clamp(eps, 1 - eps))], -1) / tau
    u = torch.rand(logits.shape, generator=gen, device=v.device, dtype=v.dtype)
    gumbel = -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))
    w = torch.softmax((logits + gumbel) / tau, dim=-1)
    return vf + w[..., 1]


def _z_bits(codec, z_hat: torch.Tensor) -> torch.Tensor:
    """−log2 likelihood of the hyper-latents under the factorised entropy bottleneck."""
    eb = codec.entropy_bottleneck
    c = z_hat.shape[1]
    lik = eb._likelihood(z_hat.permute(1, 0, 2, 3).reshape(c, 1, -1))
    lik = lik[0] if isinstance(lik, tuple) else lik
    return -torch.log2(eb.likelihood_lower_bound(lik)).sum()


def _y_bits(codec, y_hat: torch.Tensor, scales: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """−log2 likelihood of the latents under the conditional Gaussian."""
    gc = codec.gaussian_conditional
    lik = gc._likelihood(y_hat, scales, means=means)
    return -torch.log2(gc.likelihood_lower_bound(lik)).sum()


def refine_latents(codec, x: torch.Tensor, lmbda: float, iters: int = DEFAULT_ITERS,
                   lr: float = DEFAULT_LR, seed: int = 0, callback=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents (y, z) of image ``x`` (1, 3, H, W) in [0, 1] refined for D + λ·R at rate ``lmbda``.

    ``y`` is already multiplied by the bitstream's latent scale s(λ); both go to the entropy
    coder as they are (``NeuralCodec.compress(x, λ, refine=iters)``). ``callback(i, iters)``, if
    given, is called after every iteration (progress reporting). The codec's parameters are
    not changed and receive no gradients.
    """
    if iters < 0:
        raise ValueError(f"iters must be ≥ 0, got {iters}")
    s = codec.bitstream_scale(lmbda)
    h, w = x.shape[-2:]
    with torch.no_grad():
        y0, z0 = codec.encode_latents(x, lmbda)
    if iters == 0:
        return y0, z0
    y, z = y0.clone().requires_grad_(True), z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([y, z], lr=lr)
    gen = torch.Generator(device=x.device).manual_seed(seed)
    z_off = codec.entropy_bottleneck._get_medians().detach()
    pixels = h * w
    with torch.enable_grad():
        for i in range(iters):
            tau = TAU_START * (TAU_END / TAU_START) ** (i / max(1, iters - 1))
            z_hat = sga_round(z - z_off, tau, gen) + z_off
            scales, means = codec.h_s(z_hat).chunk(2, 1)
            y_hat = sga_round(y - means, tau, gen) + means
            x_hat = codec.synthesis(y_hat, s, lmbda, (h, w))
            bpp = (_y_bits(codec, y_hat, scales, means) + _z_bits(codec, z_hat)) / pixels
            loss = torch.mean((x_hat - x) ** 2) + lmbda * bpp
            if not torch.isfinite(loss):
                return y0, z0                        # diverged: fall back to the encoder's latents
            gy, gz = torch.autograd.grad(loss, [y, z])
            y.grad, z.grad = gy, gz
            for g in opt.param_groups:
                g["lr"] = lr * (1 - i / iters)
            opt.step()
            if callback is not None:
                callback(i + 1, iters)
    return y.detach(), z.detach()

