"""DDIM η against realism and fidelity, on DIRAC's held-out validation images (never Kodak).

    PYTHONPATH=. python results/eta_sweep.py --data ../shared/data/train [--codec jpeg --rate 10]

The validation split is every 40th training file (9 images), which training never sees. For each
η: mean PSNR after the first and the last of 20 late-start steps, and SWD (4096 patches) of the
10th and the last step against the originals. This is how the default η = 0 was checked.
"""
from __future__ import annotations

import argparse
import time

import torch

from dirac_demo.eval.swd import swd
from heldout import base_stats, compress_heldout, parse_spacing, run_steps   # results/heldout.py


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="the training folder (its validation split is used)")
    p.add_argument("--codec", default="jpeg", choices=["jpeg", "neural"])
    p.add_argument("--rate", type=float, default=10.0, help="JPEG QF or neural λ_rate")
    p.add_argument("--eta", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--spacing", type=parse_spacing, default=None,
                    help="late-start spacing SCALE:POWER (default: the model's own; 1:1 is the paper's)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe, originals, comps = compress_heldout(args.data, args.codec, args.rate)
    n, mid = len(comps), args.steps // 2
    base_psnr, base_swd = base_stats(comps, originals)
    print(f"{n} validation images, {args.codec} {args.rate:g}: base PSNR {base_psnr:.2f}, "
          f"SWD {base_swd.mean:.2f}, floor {swd(originals, originals).mean:.2f}")
    print(f"{'eta':>5} {'PSNR 1':>7} {f'PSNR {args.steps}':>8} {f'SWD {mid}':>7} {f'SWD {args.steps}':>7} {'s':>5}")
    for eta in args.eta:
        t0 = time.time()
        first, last, kept, final = run_steps(pipe, comps, originals, args.steps, (mid,), eta=eta,
                                             spacing=args.spacing)
        print(f"{eta:>5g} {first:>7.2f} {last:>8.2f} {swd(originals, kept[mid]).mean:>7.2f} "
              f"{swd(originals, final).mean:>7.2f} {time.time() - t0:>5.0f}", flush=True)


if __name__ == "__main__":
    main()
