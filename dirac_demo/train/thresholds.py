"""Rate-dependent thresholds θ (paper A.4): ``python -m dirac_demo.train.thresholds --data DIR``.

θ at a rate is the value such that ``--coverage`` (95%) of the training residuals r = x − x̃
(in [−1, 1] units) satisfy |r| ≤ θ. The rate is the base codec's own control: λ_rate for the
neural codec (``--num`` values spaced log-uniformly over [0.0004, 0.016], as in the paper) and
the quality for JPEG (every QF in 1..100: JPEG's residuals shrink with its quality just as the
codec's do with its rate) and for AVIF (every quality in 0..100). The table is written as JSON ({rate: θ} and the
``dirac_demo_version`` that wrote it) and shipped inside the DIRAC model's JSON (``python -m
dirac_demo.train.export --thresholds`` or ``export table``); the sampler clips r̂0 at θ of the
file's rate.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .. import __version__
from ..codecs.neural import sample_lmbda
from ..codecs import CODECS, BaseCodec
from ..weights import ASSETS, load_codec
from . import data
from .data import CropSampler, heldout_images, to_tensor

Reconstruct = Callable[[torch.Tensor, float], torch.Tensor]
VERSION_KEY = "dirac_demo_version"     # the one entry of a table file that is not a rate


def coverage_table(reconstruct: Reconstruct, crops: torch.Tensor, rates: list[float],
                   coverage: float = 0.95, chunk: int = 8) -> dict[float, float]:
    """{rate: θ} with θ the ``coverage`` quantile of |x − x̃| (×2 for [−1, 1] units) at each rate;
    ``reconstruct(x, rate)`` is the base codec's round trip of a batch."""
    table = {}
    for rate in rates:
        res = [((x - reconstruct(x, rate)) * 2.0).abs().flatten()
               for x in torch.split(crops, chunk)]
        r = torch.cat(res)
        k = max(1, int(round(coverage * r.numel())))
        table[rate] = float(r.kthvalue(k).values)
    return table


def threshold_table(codec, crops: torch.Tensor, num: int = 20, coverage: float = 0.95) -> dict[float, float]:
    """{λ: θ} for the neural codec at ``num`` λ log-spaced over [λ_min, λ_max]."""
    rates = [float(np.float32(sample_lmbda(float(u)))) for u in np.linspace(0.0, 1.0, num)]
    return coverage_table(lambda x, lam: codec.reconstruct(x, lam, post=False), crops, rates, coverage)


def _uint8(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().clamp(0, 1).mul(255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def jpeg_roundtrip(x: torch.Tensor, quality: float) -> torch.Tensor:
    """:func:`dirac_demo.train.data.jpeg_roundtrip` of [0, 1] images (n, 3, H, W), all at ``quality``
    (what the receiver's x̃ is: the JPEG base codec gives the same pixels)."""
    crops = _uint8(x)
    return to_tensor(data.jpeg_roundtrip(crops, [quality] * len(crops)))


def avif_roundtrip(x: torch.Tensor, quality: float) -> torch.Tensor:
    """:func:`dirac_demo.train.data.avif_roundtrip` of [0, 1] images (n, 3, H, W), all at ``quality``."""
    crops = _uint8(x)
    return to_tensor(data.avif_roundtrip(crops, [int(quality)] * len(crops)))


def table_json(table: dict[float, float]) -> dict[str, float]:
    """A {rate: θ} table as the JSON object both the table file and the DIRAC model's JSON hold."""
    return {f"{k:.6g}": round(float(v), 6) for k, v in sorted(table.items())}


def read_table(path: str | os.PathLike) -> dict[float, float]:
    """The {rate: θ} table of a file written by :func:`main` (or a plain {rate: θ} JSON object)."""
    return {float(k): float(v) for k, v in json.loads(Path(path).read_text()).items() if k != VERSION_KEY}


def codec_roundtrip(codec: BaseCodec) -> Reconstruct:
    """The receiver's x̃ of a batch through ``codec`` at one rate (its own compress and decompress)."""
    def reconstruct(x: torch.Tensor, rate: float) -> torch.Tensor:
        return torch.cat([codec.decompress(codec.compress(xi[None], rate))["x_hat"] for xi in x])
    return reconstruct


def quality_threshold_table(codec: BaseCodec, crops: torch.Tensor, qualities: list[int] | None = None,
                            coverage: float = 0.95) -> dict[float, float]:
    """{quality: θ} for a codec with integer qualities, every one of its range unless ``qualities`` is given."""
    r = codec.rates
    rates = [float(q) for q in (qualities or range(int(r.low), int(r.high) + 1))]
    return coverage_table(codec_roundtrip(codec), crops, rates, coverage)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dirac_demo.train.thresholds", description=__doc__)
    p.add_argument("--data", required=True, help="training images (never Kodak); the held-out files are left out")
    p.add_argument("--base", choices=list(CODECS), required=True, help="the base codec of the table")
    p.add_argument("--codec", default=None, help="the base codec's own weights (prefix; default assets/<its weights>)")
    p.add_argument("--out", required=True, help="output JSON")
    p.add_argument("--crops", type=int, default=64)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--num", type=int, default=20, help="neural: how many λ values")
    p.add_argument("--coverage", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not 0.0 < args.coverage <= 1.0:
        p.error(f"--coverage must be in (0, 1], got {args.coverage}")
    crops = to_tensor(CropSampler(args.data, args.crop, seed=args.seed,
                                  exclude=set(heldout_images(args.data))).batch(args.crops))
    with torch.no_grad():
        codec = CODECS[args.base]
        if codec.rates.integer:
            table, name = quality_threshold_table(codec, crops, coverage=args.coverage), codec.rates.flag
        else:
            net = load_codec(args.codec or str(ASSETS / codec.weights))
            table, name = threshold_table(net, crops, args.num, args.coverage), codec.rates.flag
    with open(args.out, "w") as fh:
        json.dump({VERSION_KEY: __version__, **table_json(table)}, fh, indent=2)
    for k, v in table.items():
        print(f"{name} {k:.6g}  theta {v:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
