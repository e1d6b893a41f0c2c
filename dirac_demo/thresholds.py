"""Rate-dependent thresholds θ(λ) (paper A.4): ``python -m dirac_demo.thresholds --data DIR``.

For each of ``--num`` λ_rate values spaced log-uniformly over [0.0004, 0.016], θ is the
value such that ``--coverage`` (95%) of the training residuals r = x − x̃ (in [−1, 1] units)
satisfy |r| ≤ θ. The table is written as JSON and shipped inside the DIRAC model's JSON.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from .base_codec import sample_lmbda
from .data import CropSampler, to_tensor
from .weights import load_codec


def threshold_table(codec, crops: torch.Tensor, num: int = 20, coverage: float = 0.95) -> dict[float, float]:
    """{λ: θ} with θ the ``coverage`` quantile of |x − x̃| (×2 for [−1, 1] units) at each λ."""
    table = {}
    for u in np.linspace(0.0, 1.0, num):
        lmbda = float(np.float32(sample_lmbda(float(u))))
        res = []
        for i in range(0, len(crops), 8):
            x = crops[i:i + 8]
            res.append(((x - codec.reconstruct(x, lmbda)) * 2.0).abs().flatten())
        r = torch.cat(res)
        k = max(1, int(round(coverage * r.numel())))
        table[lmbda] = float(r.kthvalue(k).values)
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dirac_demo.thresholds", description=__doc__)
    p.add_argument("--data", required=True, help="training images (never Kodak)")
    p.add_argument("--codec", default="assets/codec", help="neural codec weights prefix")
    p.add_argument("--out", required=True, help="output JSON")
    p.add_argument("--crops", type=int, default=64)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--num", type=int, default=20)
    p.add_argument("--coverage", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    codec = load_codec(args.codec)
    crops = to_tensor(CropSampler(args.data, args.crop, seed=args.seed).batch(args.crops))
    with torch.no_grad():
        table = threshold_table(codec, crops, args.num, args.coverage)
    with open(args.out, "w") as fh:
        json.dump({f"{k:.6g}": round(v, 6) for k, v in table.items()}, fh, indent=2)
    for k, v in table.items():
        print(f"lambda {k:.6g}  theta {v:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
