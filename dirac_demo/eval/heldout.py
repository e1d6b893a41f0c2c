"""The held-out images the sampler experiments measure on, and the loop that samples them.

The split is every 40th training file (:func:`dirac_demo.train.data.heldout_images`), which
training never sees; sampler settings are chosen on it, never on Kodak. The sweeps in
``experiments/`` (η, late-start spacing, ε scaling) compress these images once
(:func:`compress_heldout`), take the base codec as the reference row (:func:`base_stats`), then
sample every image once per setting (:func:`run_steps`).
"""
from __future__ import annotations

import argparse
from typing import Callable, Iterable, NamedTuple

import torch

from ..diffusion.schedule import Spacing
from ..codecs import CODECS
from ..pipeline import Compressed, DiracPipeline, Frame
from ..quality import psnr
from ..train.data import heldout_images
from ..swd import SWDResult, swd

# DiracPipeline.frames' contract: (header, steps, **kw) -> Frame 0, 1, ..., steps
Frames = Callable[..., Iterable[Frame]]


class SweepRow(NamedTuple):
    """One sampler setting over the held-out images."""

    first: float                            # mean PSNR after the first step
    last: float                             # mean PSNR after the last step
    kept: dict[int, list[torch.Tensor]]     # the images after each step asked for in ``keep``
    final: list[torch.Tensor]               # the images after the last step


def compress_heldout(data: str, codec: str, rate: float) -> tuple[DiracPipeline, list[Compressed]]:
    """The shipped pipeline and the held-out images of the training folder ``data`` through the
    base codec at ``rate``, originals included."""
    pipe = DiracPipeline.from_pretrained()
    return pipe, [pipe.compress(str(f), codec, rate) for f in heldout_images(data)]


def base_stats(comps: list[Compressed]) -> tuple[float, SWDResult]:
    """The base codec's mean PSNR and its SWD against the originals: every sweep's reference row."""
    originals = [c.original for c in comps]
    return sum(psnr(c.base, x) for c, x in zip(comps, originals)) / len(comps), \
        swd(originals, [c.base for c in comps])


def add_sweep_arguments(p: argparse.ArgumentParser, threads: int = 2) -> None:
    """The flags every held-out sweep shares: the training folder, the base codec and its rate."""
    p.add_argument("--data", required=True, help="the training folder (its held-out files are used)")
    p.add_argument("--codec", default=next(iter(CODECS)), choices=list(CODECS))
    p.add_argument("--rate", type=float, default=10.0,
                   help="the codec's rate: " + ", ".join(c.rates.label for c in CODECS.values()))
    p.add_argument("--threads", type=int, default=threads)


def open_sweep(args: argparse.Namespace) -> tuple[DiracPipeline, list[Compressed], float, SWDResult]:
    """Compress the held-out images as ``args`` say and print the reference row: the pipeline, the
    :class:`Compressed` events, and the base codec's mean PSNR and SWD."""
    torch.set_num_threads(args.threads)
    pipe, comps = compress_heldout(args.data, args.codec, args.rate)
    base_psnr, base_swd = base_stats(comps)
    print(f"{len(comps)} held-out images, {args.codec} {args.rate:g}: base PSNR {base_psnr:.2f}, "
          f"SWD {base_swd.mean:.2f} (levels {' / '.join(f'{v:.1f}' for v in base_swd.levels)})")
    return pipe, comps, base_psnr, base_swd


def run_steps(pipe: DiracPipeline, comps: list[Compressed], steps: int = 20, keep: tuple[int, ...] = (),
              frames: Frames | None = None, **frames_kw) -> SweepRow:
    """Sample every held-out image with ``frames`` (default ``pipe.frames``, seed 0, thresholding
    on unless ``threshold=False`` is passed), keyword arguments passed on."""
    sample = frames or pipe.frames
    first, last, final = [], [], []
    kept: dict[int, list[torch.Tensor]] = {k: [] for k in keep}
    for c in comps:
        for frame in sample(c, steps, **frames_kw):
            if frame.k == 1:
                first.append(psnr(frame.image, c.original))
            if frame.k in kept:
                kept[frame.k].append(frame.image)
        last.append(psnr(frame.image, c.original))
        final.append(frame.image)
    return SweepRow(sum(first) / len(comps), sum(last) / len(comps), kept, final)


def parse_spacing(text: str) -> Spacing:
    """``SCALE:POWER`` on the command line, e.g. ``1:1`` (the paper's late start) or ``2:2``."""
    try:
        scale, power = text.split(":")
        return Spacing(float(scale), float(power))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"spacing is SCALE:POWER, e.g. 2:2 ({exc})") from None

