"""Exposure-bias ε scaling (Ning et al., ICLR 2024) against realism, on DIRAC's held-out images.

    PYTHONPATH=. python results/eps_scale_sweep.py --data ../shared/data/train [--codec jpeg --rate 10]

Each DDIM step re-noises with ε̂ / λ_t instead of ε̂, λ_t = 1 + k·(t / 190)^p (k = 0 is the
shipped sampler; p = 0 scales every step alike). The validation split is every 40th training
file (9 images), which training never sees. Prints the mean PSNR gain over the base after the
first and the last of 20 late-start steps and the last step's SWD (4096 patches) per level.
Session 8 ran it to check whether the JPEG model under-generates texture because of exposure
bias; it does not (k = 0 is best, see the model card).
"""
from __future__ import annotations

import argparse
import math
import time
from contextlib import contextmanager

import numpy as np
import torch

import dirac_demo.diffusion.sampler as sampler
from dirac_demo.diffusion.schedule import Schedule
from dirac_demo.eval.swd import swd
from heldout import base_stats, compress_heldout, parse_spacing, run_steps   # results/heldout.py


@contextmanager
def eps_scaling(k: float, p: float):
    """Swap the sampler's DDIM update for one that divides the re-noising ε̂ by λ_t."""
    abar = Schedule().alphas_cumprod
    plain = sampler.ddim_update

    def update(r_t, r0_hat, abar_t, abar_prev, eta=0.0, noise=None):
        t = int(np.abs(abar - abar_t).argmin())
        lam = 1.0 + k * (t / 190.0) ** p
        signal = math.sqrt(abar_t) * r0_hat      # the plain update then infers ε̂ / λ from this latent
        return plain(signal + (r_t - signal) / lam, r0_hat, abar_t, abar_prev, eta, noise)

    sampler.ddim_update = update
    try:
        yield
    finally:
        sampler.ddim_update = plain


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="the training folder (its validation split is used)")
    ap.add_argument("--codec", default="jpeg", choices=["jpeg", "neural"])
    ap.add_argument("--rate", type=float, default=10.0, help="JPEG QF or neural λ_rate")
    ap.add_argument("--k", default=["0:0", "0.005:0", "0.01:0", "0.02:0", "-0.005:0", "0.01:1", "0.02:2"],
                    nargs="+", help="k:p pairs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--spacing", type=parse_spacing, default=None,
                    help="late-start spacing SCALE:POWER (default: the model's own; 1:1 is the paper's)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe, originals, comps = compress_heldout(args.data, args.codec, args.rate)
    n = len(comps)
    base, b = base_stats(comps, originals)
    print(f"{n} validation images, {args.codec} {args.rate:g}: base PSNR {base:.2f}, SWD {b.mean:.2f} "
          f"(levels {[round(v, 1) for v in b.levels]})")
    for kp in args.k:
        k, p = (float(v) for v in kp.split(":"))
        t0 = time.time()
        with eps_scaling(k, p):
            first, last, _, final = run_steps(pipe, comps, originals, 20, spacing=args.spacing)
        s = swd(originals, final)
        print(f"k {k:+.3f} p {p:g}: first {first - base:+.3f} dB, last {last - base:+.3f} dB, "
              f"SWD {s.mean:.2f} = {s.mean / b.mean:.3f}x base (levels {[round(v, 1) for v in s.levels]}) "
              f"{time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
