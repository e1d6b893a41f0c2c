"""Does CPU training still move a DIRAC model's realism, measured on whole held-out images?

Command: python experiments/realism_curve.py --data ../shared/data/train --run runs/avif_cpu \
             --codec avif --rate 30 --init assets/dirac_avif -- \
             --crop 128 --batch 8 --qf-min 10 --qf-max 80 --lr 5e-5 --lr-end 1e-5 --warmup 100 --steps 14469
Answer:  see docs/findings/realism.md ("AVIF+DIRAC continued on the CPU"): the curve, one row
         every ``--every`` steps, is ``RUN/curve.csv`` and ``RUN/curve.png``.

The driver is :mod:`dirac_demo.train.curve` (the trainer as a child paused at each checkpoint,
each measured checkpoint kept as ``RUN/checkpoint_STEP.pt``, ``RUN/PAUSE``, the step budget and
the plateau rule). The measurement: the held-out images (every 40th training file) through the
base codec at ``--rate``, 20 steps, seed 0, with the shipped model's thresholds and spacing.
Each row holds the first and the last step's mean PSNR gain over the base codec and the last
step's SWD as a multiple of the base's.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dirac_demo.eval.heldout import compress_heldout, base_stats, run_steps  # noqa: E402
from dirac_demo.swd import swd  # noqa: E402
from dirac_demo.train.curve import drive, parse_args, plot_series  # noqa: E402

FIELDS = ["step", "first_db", "last_db", "last_swd_ratio", "eval_seconds"]


def more_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--codec", default="avif", help="the base codec the model is trained for")
    p.add_argument("--rate", type=float, default=30, help="the base codec's rate on the held-out images")


class Curve:
    """The held-out measurement: the base codec's images once, then any weights of the model."""

    fields = FIELDS

    def __init__(self, args: argparse.Namespace) -> None:
        torch.set_num_threads(args.threads)
        self.codec = args.codec
        self.pipe, self.comps = compress_heldout(args.data, args.codec, args.rate)
        self.base_psnr, self.base_swd = base_stats(self.comps)

    def measure(self, ema: dict | None) -> dict:
        """One curve row for the EMA weights ``ema`` (None: the shipped weights)."""
        t0 = time.perf_counter()
        net = self.pipe.dirac[self.codec].net
        if ema is not None:
            net.load_state_dict(ema)
        row = run_steps(self.pipe, self.comps, 20)
        ratio = swd([c.original for c in self.comps], row.final).mean / self.base_swd.mean
        return {"first_db": f"{row.first - self.base_psnr:.3f}", "last_db": f"{row.last - self.base_psnr:.3f}",
                "last_swd_ratio": f"{ratio:.4f}", "eval_seconds": f"{time.perf_counter() - t0:.0f}"}

    def plot(self, rows: list[dict], path: Path, title: str) -> None:
        plot_series(rows, path, title, {self.codec: ""})


def main(argv: list[str] | None = None) -> int:
    args, train = parse_args(argv, __doc__, more_flags)
    return drive(args, train, Curve(args), f"{args.codec} {args.rate:g}, held-out images, 20 steps")


if __name__ == "__main__":
    sys.exit(main())
