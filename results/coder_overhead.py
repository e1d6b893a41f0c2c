"""How far the neural codec's real y bitstream is above its model's estimate.

For each image and λ: the bytes CompressAI's rANS coder writes for y, against −log2 p(ŷ) under the
Gaussians h_s predicts (continuous scales). The gap is the entropy coder's overhead, almost all of it
from snapping each scale to one of CompressAI's table levels. Run it on held-out training images,
never to choose anything on Kodak:

    PYTHONPATH=. python results/coder_overhead.py --data DIR [--levels 64 256]
"""
from __future__ import annotations

import argparse
import sys

import torch
from compressai.models.google import get_scale_table

from dirac_demo.train.data import heldout_images
from dirac_demo.images import load_image, pad_to_multiple, pil_to_tensor
from dirac_demo.weights import load_codec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="the training folder (its held-out files are used)")
    p.add_argument("--codec", default="assets/codec")
    p.add_argument("--levels", type=int, nargs="+", default=[64, 256], help="scale-table sizes (64: CompressAI's)")
    p.add_argument("--lmbda", type=float, nargs="+", default=[0.0004, 0.0016, 0.016])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    codec = load_codec(args.codec)     # in eval mode: its forward rounds ŷ, as the file does
    gc = codec.gaussian_conditional
    images = [pil_to_tensor(load_image(f)) for f in heldout_images(args.data)]
    print("| scale levels | λ | y bpp written | y bpp estimated | overhead |\n|---|---|---|---|---|")
    for levels in args.levels:
        gc.update_scale_table(get_scale_table(0.11, 256, levels), force=True)
        gc.update()
        for lmbda in args.lmbda:
            written = estimated = pixels = 0.0
            for x in images:
                with torch.no_grad():
                    written += 8 * len(codec.compress(x, lmbda).chunks[0])      # the file's y chunk
                    lik = codec(pad_to_multiple(x, codec.multiple), lmbda)["likelihoods"]["y"]  # eval: ŷ rounded
                estimated += float(-torch.log2(lik).sum())
                pixels += x.shape[-1] * x.shape[-2]
            print(f"| {levels} | {lmbda:g} | {written / pixels:.4f} | {estimated / pixels:.4f} | "
                  f"{100 * (written / estimated - 1):+.2f} % |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
