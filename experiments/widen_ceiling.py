"""What caps the neural codec's quality at high rate: its transforms, or its latent's width M?

Command: python experiments/widen_ceiling.py --data DIR [--codec PREFIX ...] [--k 96 128 160 192 256]
Answer:  The latent's width. With the latents left unquantised the shipped codec (M = 128)
         reaches 35.33 dB on the 9 held-out training images, level with a linear transform that
         keeps 128 of the 768 values of each 16×16 RGB block (35.46 dB; 96 values: 33.87 dB,
         160: 36.92 dB, 192: 38.28 dB, 256: 40.82 dB). The quantised codec at λ 0.0004
         (34.19 dB) is already within 1.1 dB of that cap, which is why its rate-distortion curve
         flattens at high rate; longer training of the same codec moves the cap by hundredths of
         a dB (35.36-35.38 dB).

Two ceilings on the held-out images (every 40th training file), never Kodak:

* the codec's own: PSNR of g_s(g_a(x)·s)/s with the latents left unquantised, the quality
  its transforms reach at an infinite rate (s cancels, so one number per codec; the decoder's
  post-filter is not applied);
* a linear one: PSNR of a block transform keeping k of the 768 values of each 16×16 RGB block
  (PCA fitted on every 6th other training image), for k around the codec's M. The codec's
  latent has M values per 16×16 block too, so a codec near the k = M line is held back by M.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # this checkout's dirac_demo, installed or not
from dirac_demo.images import crop, read_rgb_within, pad_to_multiple, pil_to_tensor  # noqa: E402
from dirac_demo.train.data import heldout_images, list_images  # noqa: E402
from dirac_demo.weights import load_codec  # noqa: E402

BLOCK = 16


def blocks(path) -> np.ndarray:
    """The image's whole 16×16 RGB blocks as rows of 768 values in [0, 1]."""
    a = np.asarray(read_rgb_within(path), dtype=np.float64) / 255
    H, W = a.shape[0] // BLOCK * BLOCK, a.shape[1] // BLOCK * BLOCK
    a = a[:H, :W].reshape(H // BLOCK, BLOCK, W // BLOCK, BLOCK, 3).transpose(0, 2, 1, 3, 4)
    return a.reshape(-1, 3 * BLOCK * BLOCK)


def psnr(mse: float) -> float:
    """From an MSE on [0, 1] without rounding to 8 bits (unlike ``metrics.psnr``), so that the
    linear and the codec ceilings are measured alike."""
    return 10 * math.log10(1 / mse)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="the training folder (its held-out files are measured)")
    p.add_argument("--codec", nargs="+", default=[str(ROOT / "assets" / "codec")], help="codec weights prefixes")
    p.add_argument("--k", type=int, nargs="+", default=[96, 128, 160, 192, 256])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    held = heldout_images(args.data)
    fit = [f for f in list_images(args.data) if f not in set(held)][::6]
    X = np.concatenate([blocks(f) for f in fit])
    mean = X.mean(0)
    _, vectors = np.linalg.eigh(np.cov((X - mean).T))
    vectors = vectors[:, ::-1]
    print(f"{len(held)} held-out images; PCA fitted on {len(fit)} other training images ({len(X)} blocks)\n")
    print("| transform | values per 16×16 block | PSNR, unquantised |\n|---|---|---|")
    held_blocks = [blocks(f) - mean for f in held]
    for k in args.k:
        V = vectors[:, :k]
        scores = [psnr(float(np.mean((b @ V @ V.T - b) ** 2))) for b in held_blocks]
        print(f"| linear (PCA) | {k} | {np.mean(scores):.2f} dB |", flush=True)
    for prefix in args.codec:
        codec = load_codec(prefix)
        scores = []
        for f in held:
            x = pil_to_tensor(read_rgb_within(f))
            with torch.no_grad():
                x_ae = crop(codec.g_s(codec.g_a(pad_to_multiple(x, codec.multiple))).clamp(0, 1), *x.shape[-2:])
            scores.append(psnr(float(((x_ae - x) ** 2).mean())))
        print(f"| codec {prefix} | {codec.config.M} | {np.mean(scores):.2f} dB |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
