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

``probe=`` (``train_codec --new-channels live``) starts them live instead, as channels are at the
start of training: g_a's new outputs are random, scaled so that on the probe crops their
standard deviation is ``LIVE_STD`` (about the lower quartile of the trained channels': with the
latent scale s(λ) they are on at high rates and near silence at low ones), and h_s predicts each
one's mean and spread on the probe at the middle rate. g_s reads them with zero weights, so the
reconstructions are still the old ones (the STE-rounded latents give those weights their
gradient); the rate is not (the new channels now cost bits, which --new-channel-ramp phases in).
Measured (session 15, CPU, batch 16, from 48 700 steps): with a 500-step ramp the rate term shut
them again within 300 steps; with their rate left out of the loss they took 35–38 % of the y bits
for no gain in PSNR while the old channels' rate fell 5–8 % (information moved, none was added).
"""
from __future__ import annotations

from dataclasses import replace

import torch

from .base_codec import NeuralCodec

INIT_STD = 1e-3   # the small random weights that let gradients into the new channels
LIVE_STD = 0.3    # live new channels' spread before the latent scale (trained ones: median 0.38)
LIVE_LMBDA = 0.0025  # the rate at which h_s's first guess for them is fitted (log-middle of the range)


def widen_codec(old: NeuralCodec, M: int, seed: int = 0, probe: torch.Tensor | None = None) -> NeuralCodec:
    """A codec with ``M`` latent channels that reconstructs exactly what ``old`` reconstructs.

    Without ``probe`` the new channels are silent (rates equal too); with a batch of training
    crops they start live, calibrated on it (module docstring).
    """
    M0, N = old.config.M, old.config.N
    if M < M0:
        raise ValueError(f"cannot narrow the latent from {M0} to {M} channels")
    new = NeuralCodec(replace(old.config, M=M))         # a post-filter, if any, is kept as it is
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
    if probe is not None:
        _make_live(new, M0, probe, gen)
    return new


@torch.no_grad()
def _make_live(new: NeuralCodec, M0: int, probe: torch.Tensor, gen: torch.Generator) -> None:
    """Give the new channels random analysis weights, and h_s their spread, measured on ``probe``."""
    M = new.config.M
    w, b = new.g_a[6].weight, new.g_a[6].bias
    w[M0:] = torch.randn(w[M0:].shape, generator=gen)
    b[M0:] = 0
    y = new.g_a(probe)[:, M0:]
    gain = LIVE_STD / y.std()                         # the new outputs are linear in w (zero bias)
    w[M0:] *= gain
    new.g_s[0].weight[M0:] = 0                        # read with zero weights: the same reconstructions
    y = y * gain * float(new.scale(LIVE_LMBDA))
    h = new.h_s[4].bias                               # outputs: M scales, then M means
    h[M0:M] = y.std(dim=(0, 2, 3))
    h[M + M0:] = y.mean(dim=(0, 2, 3))
