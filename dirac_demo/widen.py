"""Widen a trained codec's latent (M channels → more) without changing what it computes.

The shipped codec's high-rate end is capped by its transforms, not by its rate: with the
latents left unquantised, g_s(g_a(x)) reaches only about 35.3 dB on the held-out images, which
is what a linear transform keeping 128 of the 768 values of each 16×16 RGB block reaches
(`results/widen_ceiling.py`). More latent channels lift that cap; growing them into the trained
codec keeps the 47 k steps it has had instead of starting from scratch.

The new channels start silent, so the widened codec's reconstructions and rates equal the old
one's: g_a's new outputs, h_a's new inputs and the hyper-synthesis weights into old units from
new ones are zero, and the new (scale, mean) outputs of h_s are zero (a scale of 0 is raised to
GaussianConditional's lower bound, 0.11, under which a latent at its mean costs ~0 bits). The
weights that read the new channels in g_s and the new hidden units of h_s start small and
random, so that gradients reach the zero weights from the first step (both sides of a channel
at zero would never move).

Measured (session 14, CPU, batch 16): that is not enough to open them. After 471 steps, and
after 555 with ``train_codec --new-channel-ramp``, the new channels carried 0.00 % of the rate:
at the smallest scale every value off the mean is expensive, and the distortion gradient that
reaches them through the tiny decoder weights is noise. The shipped codec is not widened.
"""
from __future__ import annotations

import torch

from .base_codec import CodecConfig, NeuralCodec

INIT_STD = 1e-3   # the small random weights that let gradients into the new channels


def widen_codec(old: NeuralCodec, M: int, seed: int = 0) -> NeuralCodec:
    """A codec with ``M`` latent channels that computes exactly what ``old`` computes."""
    M0, N = old.config.M, old.config.N
    if M < M0:
        raise ValueError(f"cannot narrow the latent from {M0} to {M} channels")
    new = NeuralCodec(CodecConfig(N=N, M=M))
    gen = torch.Generator().manual_seed(seed)
    src = old.state_dict()
    dst = new.state_dict()
    H0, H = M0 * 3 // 2, M * 3 // 2
    scale_mean = [*range(M0), *range(M, M + M0)]   # where h_s's old outputs go: scales, then means

    def small(shape):
        return torch.randn(shape, generator=gen) * INIT_STD

    out = {}
    for name, w in dst.items():
        w = torch.zeros_like(w)
        s = src[name]
        if name in ("g_a.6.weight", "g_a.6.bias"):          # conv(N, M): new outputs zero
            w[:M0] = s
        elif name == "g_s.0.weight":                          # deconv(M, N): weight (in, out, k, k)
            w = small(w.shape)
            w[:M0] = s
        elif name == "h_a.0.weight":                          # conv(M, N): new inputs zero
            w[:, :M0] = s
        elif name == "h_s.0.weight":                          # deconv(N, M): new hidden units random
            w = small(w.shape)
            w[:, :M0] = s
        elif name == "h_s.0.bias":
            w[:M0] = s
        elif name == "h_s.2.weight":                          # deconv(M, 3M/2): (in, out, k, k)
            w = small(w.shape)
            w[:, :H0] = 0                                     # new inputs reach old units with 0
            w[:M0, :H0] = s
        elif name == "h_s.2.bias":
            w[:H0] = s
        elif name == "h_s.4.weight":                          # conv(3M/2, 2M): (out, in, k, k)
            w[scale_mean, :H0] = s                            # new hidden units' outputs: zero
        elif name == "h_s.4.bias":
            w[scale_mean] = s
        elif w.shape == s.shape or not name.startswith(("g_", "h_")):
            w = s.clone()                                     # N-sized layers; entropy tables (resized on load)
        else:
            raise ValueError(f"widen_codec does not know how to grow {name} {tuple(s.shape)} -> {tuple(w.shape)}")
        out[name] = w
    new.load_state_dict(out)
    return new
