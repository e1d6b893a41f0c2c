"""How many SWD patches per image resolve a realism ratio of 0.6× the base's?

Command: python experiments/swd_floor.py --data DIR [--patches 1024 4096] [--qf 10]
Answer:  4096, the default of ``dirac_demo.swd`` and ``evaluate``. The estimator's floor,
         SWD(originals, an independent resampling of them), falls as 1/sqrt(patches): on 16
         training images (512²) it is 14.33 at 1024 patches, 0.62× the SWD of JPEG QF 10
         (23.04), so a 0.6× target could not be resolved even by a perfect model; at 4096
         patches it is 7.53, 0.40× JPEG's 18.85.

Uses 16 training images, never Kodak: every 40th file (the held-out split) and every 40th from
the 20th on, cropped to a square and resized to 512². Prints, per patch count, the floor and
SWD(originals, JPEG at ``--qf``): a realism ratio can only be resolved where the floor is well
below the signal.
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's dirac_demo, installed or not
from dirac_demo.swd import SlicedWasserstein, num_levels  # noqa: E402
from dirac_demo.train.data import list_images  # noqa: E402


def _tensor(im: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(im)).permute(2, 0, 1).float()[None] / 255.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="training images (not Kodak)")
    p.add_argument("--patches", type=int, nargs="+", default=[1024, 4096])
    p.add_argument("--qf", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    files = list_images(args.data)
    files = (files[::40] + files[20::40])[:16]
    originals, jpegs = [], []
    for f in files:
        im = Image.open(f).convert("RGB")
        side = min(im.size)
        im = im.crop((0, 0, side, side)).resize((512, 512), Image.BICUBIC)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=args.qf)
        originals.append(_tensor(im))
        jpegs.append(_tensor(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
    print(f"{len(files)} images, 512x512, JPEG QF {args.qf}")
    print(f"{'patches':>8} {'floor':>7} {'jpeg':>7} {'floor/jpeg':>10} {'s':>5}")
    for n in args.patches:
        t0 = time.time()
        acc = SlicedWasserstein(num_levels(512), n, seed=0, min_side=512)
        for i, (a, b) in enumerate(zip(originals, jpegs)):
            acc.add_reference(a, i)
            acc.add("floor", a, i)
            acc.add("jpeg", b, i)
        floor, jpeg = acc.distance("floor").mean, acc.distance("jpeg").mean
        print(f"{n:>8} {floor:>7.2f} {jpeg:>7.2f} {floor / jpeg:>10.2f} {time.time() - t0:>5.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
