"""How many SWD patches per image are enough? The estimator's floor against patch count.

    PYTHONPATH=. python results/swd_floor.py --data ../shared/data/train [--patches 1024 4096]

Uses 16 training-set images, never Kodak: every 40th file (DIRAC's validation split) and every
40th from the 20th on, cropped to a square and resized to 512². Prints, per patch count, the floor SWD(originals, an independent resampling of them) and SWD(originals, JPEG QF 10):
a realism ratio can only be resolved where the floor is well below the signal.
"""
from __future__ import annotations

import argparse
import io
import time

import numpy as np
import torch
from PIL import Image

from dirac_demo.train.data import list_images
from dirac_demo.eval.swd import SlicedWasserstein, num_levels


def _tensor(im: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(im)).permute(2, 0, 1).float()[None] / 255.0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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


if __name__ == "__main__":
    main()
