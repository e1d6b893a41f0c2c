"""Encoder-side latent refinement (SGA): smaller RD cost, ordinary files, deterministic."""
from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from dirac_demo import codecs
from dirac_demo.errors import InputError
from dirac_demo.images import pil_to_tensor
from dirac_demo.codecs.refine import refine_latents, sga_round


def test_sga_round_brackets_and_has_gradients():
    gen = torch.Generator().manual_seed(0)
    v = (torch.randn(4000) * 3).requires_grad_(True)
    out = sga_round(v, 0.5, gen)
    lo = torch.floor(v.detach())
    assert torch.isfinite(out).all() and (out >= lo).all() and (out <= lo + 1).all()
    g, = torch.autograd.grad(out.sum(), [v])
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    # at a low temperature the sample is (almost) the nearest integer
    cold = sga_round(v.detach(), 0.02, torch.Generator().manual_seed(1))
    assert (cold - torch.round(v.detach())).abs().mean() < 0.02
    # the same seed gives the same sample
    assert torch.equal(sga_round(v.detach(), 0.5, torch.Generator().manual_seed(3)),
                       sga_round(v.detach(), 0.5, torch.Generator().manual_seed(3)))


@pytest.fixture(scope="module")
def shipped_codec():
    from dirac_demo.weights import ASSETS, load_codec
    return load_codec(ASSETS / "codec")


@pytest.fixture(scope="module")
def kodim_crop():
    from dirac_demo.weights import ASSETS
    x = pil_to_tensor(Image.open(ASSETS / "examples" / "kodim23.png").convert("RGB"))
    return x[..., 0:256, 256:512].contiguous()


def _coded_cost(codec, x, lmbda, refine):
    enc = codec.compress(x, lmbda, refine=refine)
    data = codecs.pack(enc)
    x_hat = codec.decompress(codecs.parse(data))["x_hat"]   # the ordinary decoder reads it
    mse = torch.mean((x_hat - x) ** 2).item()
    bpp = sum(len(c) for c in enc.chunks) * 8 / (x.shape[-1] * x.shape[-2])
    return mse + lmbda * bpp, mse, bpp, data


@pytest.mark.parametrize("lmbda", [0.0004, 0.0016])
def test_refinement_lowers_the_real_rd_cost(shipped_codec, kodim_crop, lmbda):
    """Measured on real entropy-coded bytes: D + λ·R falls, and the file is an ordinary .drc file."""
    plain = _coded_cost(shipped_codec, kodim_crop, lmbda, 0)
    refined = _coded_cost(shipped_codec, kodim_crop, lmbda, 30)
    assert refined[0] < plain[0] * 0.99, (plain[:3], refined[:3])
    assert 10 * math.log10(1 / refined[1]) > 24
    # deterministic: the same image, rate and iterations give the same bytes
    assert _coded_cost(shipped_codec, kodim_crop, lmbda, 30)[3] == refined[3]


def test_zero_iterations_is_the_plain_encoder(shipped_codec, kodim_crop):
    assert _coded_cost(shipped_codec, kodim_crop, 0.0016, 0)[3] == codecs.pack(
        shipped_codec.compress(kodim_crop, 0.0016))
    y, z = refine_latents(shipped_codec, kodim_crop, 0.0016, 0)
    assert y.shape[1] == shipped_codec.config.M and z.shape[1] == shipped_codec.config.N


def test_refinement_leaves_the_codec_untouched(shipped_codec, kodim_crop):
    before = {k: v.clone() for k, v in shipped_codec.state_dict().items()}
    refine_latents(shipped_codec, kodim_crop, 0.0016, 3)
    assert all(p.grad is None for p in shipped_codec.parameters())
    assert all(torch.equal(before[k], v) for k, v in shipped_codec.state_dict().items())


def test_refine_argument_checks(pipe, photo, shipped_codec, kodim_crop):
    with pytest.raises(InputError, match="learned codec; JPEG has no latents"):
        pipe.compress(photo, "jpeg", 10, refine=5)
    with pytest.raises(InputError, match="0..1000"):
        shipped_codec.compress(kodim_crop, 0.0016, refine=-1)
    calls = []
    comp = pipe.compress(photo, "neural", 0.0016, refine=4, callback=lambda i, n: calls.append((i, n)))
    assert calls == [(i, 4) for i in range(1, 5)] and comp.nbytes > 0
