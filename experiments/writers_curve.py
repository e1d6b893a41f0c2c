"""Does training only JPEG+DIRAC's file conditioning move its realism on other writers' files?

Command: python experiments/writers_curve.py --data ../shared/data/train --run runs/fc_mixed \
             --init assets/dirac_jpeg --threads 2 -- --file-cond --train-only file_cond \
             --jpeg-writers pillow pillow 444 422 mozjpeg-tables double --crop 128 --batch 8 \
             --qf-min 5 --qf-max 90 --lr 1e-4 --lr-end 1e-5 --warmup 100 --steps 53385
         the control: --run runs/fc_pillow --max-more 2115 --no-stop and no --jpeg-writers
Answer:  no, on the mix it costs realism. From the shipped model's last step at 0.72x / 0.85x the
         JPEG's SWD (Pillow, quality 20 / 40), 0.72x / 0.93x (cjpeg 4:4:4) and 0.76x / 0.88x
         (mozjpeg's tables), 1 115 steps on the six writers read 0.81x / 0.90x, 0.84x / 1.06x and
         0.85x / 0.92x, the first step within +0.06 dB; the plateau rule stopped the run there.
         On Pillow's files alone, 2 115 steps read 0.73x / 0.79x, 0.76x / 0.93x and 0.78x / 0.84x:
         Pillow's quality 40 reaches 0.8x, quality 20 does not reach 0.7x. The curves are
         results/curves/jpeg_filecond_{mixed,pillow}_heldout.csv (RUN/curve.csv and curve.png
         of each run); the finding is in docs/findings/jpeg-encoders.md.

:mod:`dirac_demo.train.curve`'s driver (the trainer as a child paused at each checkpoint, each
measured checkpoint kept, ``RUN/PAUSE``, the step budget and the plateau rule) with another
measurement: each held-out image (every 40th training file, never Kodak) is written by each of
``--encoders`` at each of ``--qualities`` (:mod:`dirac_demo.eval.jpeg_writers`: Pillow, cjpeg
4:4:4, cjpeg with mozjpeg's tables; cjpeg's progressive 4:2:0 files decode to Pillow's pixels),
read back as a receiver reads a plain JPEG, and enhanced with 20 steps, seed 0,
the shipped thresholds and spacing. A checkpoint's network is built with the file conditioning
its weights have, and the pipeline feeds it each file's vector. Per writer and quality the row
holds the first and last step's PSNR gain over the JPEG and the last step's SWD as a multiple of
the JPEG's; ``last_swd_ratio`` is their mean over all settings (the plateau rule's measure).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dirac_demo.diffusion.unet import ResidualUNet  # noqa: E402
from dirac_demo.eval.heldout import base_stats, run_steps  # noqa: E402
from dirac_demo.eval.jpeg_writers import ENCODERS  # noqa: E402
from dirac_demo.images import pil_to_tensor, read_rgb  # noqa: E402
from dirac_demo.pipeline import DiracPipeline  # noqa: E402
from dirac_demo.swd import swd  # noqa: E402
from dirac_demo.train.curve import drive, parse_args, plot_series  # noqa: E402
from dirac_demo.train.data import heldout_images  # noqa: E402

CODEC = "jpeg"


def more_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encoders", nargs="+", default=["pillow", "cjpeg-444", "cjpeg-moz-tables"],
                   choices=list(ENCODERS))
    p.add_argument("--qualities", type=int, nargs="+", default=[20, 40])


class WriterCurve:
    """Each writer's files at each quality, decoded once; then any weights of the JPEG model."""

    def __init__(self, args: argparse.Namespace) -> None:
        torch.set_num_threads(args.threads)
        self.pipe = DiracPipeline.from_pretrained()
        self.shipped = self.pipe.dirac[CODEC]
        images = [read_rgb(str(f)) for f in heldout_images(args.data)]
        self.settings = {f"{e}_q{q}": (e, q) for e in args.encoders for q in args.qualities}
        self.comps = {name: [dataclasses.replace(self.pipe.decode(ENCODERS[e](img, q)), original=pil_to_tensor(img))
                             for img in images] for name, (e, q) in self.settings.items()}
        self.base = {name: base_stats(comps) for name, comps in self.comps.items()}
        self.fields = ["step", *(f"{n}_{k}" for n in self.settings for k in ("first_db", "last_db", "swd_ratio")),
                       "last_swd_ratio", "eval_seconds"]

    def _network(self, ema: dict | None) -> None:
        """The JPEG model's network: the shipped one, or one built for ``ema`` (with the file
        conditioning when its weights have it) carrying them."""
        if ema is None:
            self.pipe.dirac[CODEC] = self.shipped
            return
        cond = ema.get("file_cond.0.weight")
        config = dataclasses.replace(self.shipped.net.config, file_cond=cond.shape[1] if cond is not None else 0)
        net = ResidualUNet(config).eval()
        net.load_state_dict(ema)
        net = net.to(self.pipe.device, self.pipe.net_dtype, memory_format=torch.channels_last)   # as the pipeline's
        self.pipe.dirac[CODEC] = dataclasses.replace(self.shipped, net=net)

    def measure(self, ema: dict | None) -> dict:
        t0 = time.perf_counter()
        self._network(ema)
        row, ratios = {}, []
        for name, comps in self.comps.items():
            base_psnr, base_swd = self.base[name]
            got = run_steps(self.pipe, comps, 20)
            ratio = swd([c.original for c in comps], got.final).mean / base_swd.mean
            ratios.append(ratio)
            row |= {f"{name}_first_db": f"{got.first - base_psnr:.3f}", f"{name}_last_db": f"{got.last - base_psnr:.3f}",
                    f"{name}_swd_ratio": f"{ratio:.4f}"}
        return row | {"last_swd_ratio": f"{sum(ratios) / len(ratios):.4f}",
                      "eval_seconds": f"{time.perf_counter() - t0:.0f}"}

    def plot(self, rows: list[dict], path: Path, title: str) -> None:
        plot_series(rows, path, title, {name: f"{name}_" for name in self.settings})


def main(argv: list[str] | None = None) -> int:
    args, train = parse_args(argv, __doc__, more_flags)
    args.codec = CODEC
    return drive(args, train, WriterCurve(args), "JPEG writers on the held-out images, 20 steps")


if __name__ == "__main__":
    sys.exit(main())
