"""Shared fixtures: tiny randomly initialised models built here (never presented as trained)."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

warnings.filterwarnings("ignore", category=FutureWarning)
torch.set_num_threads(1)
os.environ.setdefault("DIRAC_EXAMPLE_CACHE", "0")   # the page's example runs: built only where a test asks

from dirac_demo.codecs.neural import CodecConfig, NeuralCodec  # noqa: E402
from dirac_demo.pipeline import DiracPipeline  # noqa: E402
from dirac_demo.diffusion.unet import ResidualUNet, UNetConfig  # noqa: E402
from dirac_demo.weights import export_codec, export_dirac  # noqa: E402

TINY_UNET = UNetConfig(channels=[8, 16], blocks=[1, 1], emb_dim=16, groups=4)
TINY_CODEC = CodecConfig(N=16, M=16)
TABLE = {0.0004: 0.05, 0.0016: 0.1, 0.016: 0.2}
TABLE_JPEG = {5.0: 0.3, 10.0: 0.25, 50.0: 0.1}     # θ by quality factor
TABLE_AVIF = {20.0: 0.2, 60.0: 0.1}                # θ by AVIF quality


def tiny_codec(seed: int = 0) -> NeuralCodec:
    torch.manual_seed(seed)
    codec = NeuralCodec(TINY_CODEC)
    codec.update(force=True)
    return codec.eval()


def tiny_net(seed: int = 0) -> ResidualUNet:
    torch.manual_seed(seed)
    net = ResidualUNet(TINY_UNET)
    with torch.no_grad():   # the output conv starts at zero; give it weights so steps differ
        net.out.weight.normal_(0, 0.05)
    return net.eval()


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory):
    """A folder laid out like assets/ holding tiny random models (test fixtures only)."""
    root = tmp_path_factory.mktemp("assets")
    note = {"note": "tiny random test fixture, not a trained model"}
    export_codec(tiny_codec(), root / "codec", note)
    export_dirac(tiny_net(1), root / "dirac_jpeg", note, TABLE_JPEG)
    export_dirac(tiny_net(2), root / "dirac_neural", note, TABLE)
    export_dirac(tiny_net(3), root / "dirac_avif", note, TABLE_AVIF)
    return root


@pytest.fixture(scope="session")
def pipe(tiny_assets):
    return DiracPipeline.from_pretrained(str(tiny_assets), device="cpu", precision="fp32")


@pytest.fixture(scope="session")
def photo() -> Image.Image:
    """A small smooth-plus-texture RGB test image (deterministic)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:72, 0:96]
    base = np.stack([xx * 2.5, yy * 3.0, (xx + yy) * 1.5], -1)
    img = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(img, "RGB")


@pytest.fixture
def photo_path(tmp_path, photo):
    p = tmp_path / "photo.png"
    photo.save(p)
    return p
