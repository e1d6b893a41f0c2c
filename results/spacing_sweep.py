"""Late-start spacing against realism and fidelity, on DIRAC's held-out validation images (never Kodak).

    PYTHONPATH=. python results/spacing_sweep.py --data ../shared/data/train [--codec jpeg --rate 10]
        [--spacing 1:1 1.5:2 2:2 ...] [--every 5]

Each ``SCALE:POWER`` is a :class:`dirac_demo.diffusion.schedule.Spacing`: S = 20 steps from t_start =
SCALE × 190 down to 0, t_k = round(t_start · (k / 19)^POWER); 1:1 is the paper's uniform late
start (190, 180, …, 0), POWER 2 DDIM's "quad" spacing. For each: the first timestep, mean PSNR
gain over the base after the first and the last step, and SWD (4096 patches) of the last step
against the originals, with its pyramid levels (finest first); with ``--every K`` also the SWD
after steps 1, K, 2K, … and the largest step-to-step rise (the traversal's smoothness). This is
how the shipped models' spacings were chosen.
"""
from __future__ import annotations

import argparse
import time

import torch

from dirac_demo.eval.report import largest_swd_rise
from dirac_demo.diffusion.schedule import Spacing
from dirac_demo.eval.swd import swd
from heldout import base_stats, compress_heldout, parse_spacing, run_steps   # results/heldout.py


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="the training folder (its validation split is used)")
    p.add_argument("--codec", default="jpeg", choices=["jpeg", "neural"])
    p.add_argument("--rate", type=float, default=10.0, help="JPEG QF or neural λ_rate")
    p.add_argument("--spacing", type=parse_spacing, nargs="+",
                   default=[Spacing(), Spacing(1.0, 2.0), Spacing(1.5, 2.0), Spacing(2.0, 2.0)])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--every", type=int, default=0,
                   help="also SWD after steps 1, K, 2K, … (the traversal) and its largest rise (0: last step only)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe, originals, comps = compress_heldout(args.data, args.codec, args.rate)
    n = len(comps)
    base_psnr, base_swd = base_stats(comps, originals)
    print(f"{n} validation images, {args.codec} {args.rate:g}: base PSNR {base_psnr:.2f}, SWD {base_swd.mean:.2f} "
          f"(levels {' / '.join(f'{v:.1f}' for v in base_swd.levels)})")
    print(f"{'scale:power':>11} {'t_start':>7} {'ΔPSNR 1':>8} {f'ΔPSNR {args.steps}':>9} {f'SWD {args.steps}':>7} "
          f"{'× base':>6}  levels{'':>20} {'s':>4}")
    keep = tuple(sorted({1, *range(args.every, args.steps, args.every)})) if args.every else ()
    for sp in args.spacing:
        t0 = time.time()
        first, last, kept, final = run_steps(pipe, comps, originals, args.steps, keep, spacing=sp)
        s = swd(originals, final)
        print(f"{sp.start_scale:>5g}:{sp.power:<5g} {int(sp.timesteps(args.steps)[0]):>7} "
              f"{first - base_psnr:>+8.3f} {last - base_psnr:>+9.3f} {s.mean:>7.2f} "
              f"{s.mean / base_swd.mean:>6.3f}  {' / '.join(f'{v:.1f}' for v in s.levels):<26} "
              f"{time.time() - t0:>4.0f}",
              flush=True)
        if keep:
            at = keep + (args.steps,)
            path = [swd(originals, kept[k]).mean for k in keep] + [s.mean]
            rise = max(largest_swd_rise([{"step": k, "swd": v} for k, v in zip(at, path)])[0], 0.0)
            print(f"{'':>11} SWD at steps {', '.join(map(str, at))}: "
                  f"{' → '.join(f'{v:.2f}' for v in path)}; largest rise {100 * rise:+.1f} %", flush=True)


if __name__ == "__main__":
    main()
