"""Which cheap SWD setting can the page show after every step and still rank the steps like the full one?

Command: python experiments/live_realism.py --data DIR [--qf 10] [--configs 1024x4x32 512x4x32 2048x4x32]
Answer:  1024 patches per level and 4 × 32 directions, the page's setting (``quality.LiveSWD``).
         On the 9 held-out images at JPEG QF 10 (base and steps 1, 5, 10, 20 of each), its
         Spearman correlation with the full 4096-patch SWD is 0.91 per image (mean; lowest 0.60),
         0.93 over all 45 frames pooled and 1.00 between the per-step means (live 70.4 / 71.7 /
         71.1 / 69.3 / 63.4, full 48.5 / 49.8 / 48.8 / 46.5 / 38.7); 84 of 90 pairs of frames of
         one image are ordered alike. It costs 33 ms per call at 768×512 against 0.82 s for a
         DIRAC step (4.0 %; one thread on a CPU shared with another job); the full SWD costs
         330 ms. 512 patches cost 2.3 % but order the step means worse (0.70); 2048 patches rank
         best (0.96 per image, 0.985 pooled) at 7.9 % of a step.

For each held-out training image (every 40th file of DIR, never Kodak) at JPEG QF ``--qf``: the
base and DIRAC's steps 1, 5, 10 and 20 (of 20, the shipped model at its own spacing, seed 0), each
measured against its original by the full SWD (4096 patches, 4 × 128 directions, one image) and by
each cheap setting PATCHESxREPEATSxDIRS of the same :class:`dirac_demo.swd.SlicedWasserstein`
through :class:`dirac_demo.quality.LiveSWD` (the original's projections computed once, every frame
sampled at the same positions). Prints, per setting: the Spearman rank correlation with the full
SWD over each image's five frames (mean and lowest), over all frames pooled, and between the
per-step means; how often a pair of frames of one image is ordered alike; and the cost per call
beside the cost of a DIRAC step, on the held-out images and on a 768×512 crop.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from itertools import combinations, islice
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's dirac_demo, installed or not
from dirac_demo.eval.heldout import compress_heldout  # noqa: E402
from dirac_demo.quality import LiveSWD  # noqa: E402

AT = (0, 1, 5, 10, 20)
FULL = (4096, 4, 128)


def parse_config(text: str) -> tuple[int, int, int]:
    """'1024x4x32' -> (1024, 4, 32): patches per level, direction repeats, directions per repeat."""
    patches, repeats, dirs = (int(v) for v in text.lower().split("x"))
    return patches, repeats, dirs


def frames(pipe, comp, steps: int) -> tuple[list[torch.Tensor], list[float]]:
    """The base and the images after the steps in ``AT``; the seconds of every step."""
    kept, seconds = [comp.base], []
    for frame in islice(pipe.frames(comp, steps), 1, None):
        seconds.append(frame.seconds)
        if frame.k in AT:
            kept.append(frame.image)
    return kept, seconds


def timed(fn, *args) -> tuple[float, float]:
    t0 = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - t0


def concordance(a: list[float], b: list[float]) -> tuple[int, int]:
    """Pairs of frames ordered alike by ``a`` and ``b``, and all pairs."""
    pairs = list(combinations(range(len(a)), 2))
    return sum((a[i] - a[j]) * (b[i] - b[j]) > 0 for i, j in pairs), len(pairs)


def crop_768x512(comps) -> tuple:
    """The first held-out image that holds a 768×512 crop, cropped at its centre (base and original)."""
    for c in comps:
        h, w = c.original.shape[-2:]
        if h >= 512 and w >= 768:
            top, left = (h - 512) // 2, (w - 768) // 2
            return c, (..., slice(top, top + 512), slice(left, left + 768))
    return None, None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="the training folder (its held-out files are used)")
    p.add_argument("--qf", type=int, default=10)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--configs", nargs="+", default=["1024x4x32", "512x4x32", "2048x4x32", "1024x4x64"])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    configs = [parse_config(c) for c in args.configs]
    pipe, comps = compress_heldout(args.data, "jpeg", args.qf)
    full, live = [], {c: [] for c in configs}            # per image: one value per frame in AT
    cost = {c: [] for c in configs + [FULL]}
    step_s, ratio = [], {c: [] for c in configs}
    print(f"{len(comps)} held-out images, JPEG QF {args.qf}, {args.threads} thread(s); frames at steps {AT}")
    for comp in comps:
        kept, seconds = frames(pipe, comp, args.steps)
        step = float(np.median(seconds))
        step_s.append(step)
        meter = LiveSWD(comp.original, *FULL)
        meter(kept[0])                                   # the original's projections, once
        row = []
        for image in kept:
            value, s = timed(meter, image)
            row.append(value)
            cost[FULL].append(s)
        full.append(row)
        for c in configs:
            meter = LiveSWD(comp.original, *c)
            meter(kept[0])
            values = [timed(meter, image) for image in kept]
            live[c].append([v for v, _ in values])
            cost[c] += [s for _, s in values]
            ratio[c].append(float(np.median([s for _, s in values])) / step)
        h, w = comp.original.shape[-2:]
        print(f"  {w}x{h}: step {step:.2f} s; full SWD " + " ".join(f"{v:.1f}" for v in row), flush=True)
    print(f"full SWD {FULL[0]} patches, {FULL[1]}x{FULL[2]} directions: {1e3 * np.median(cost[FULL]):.0f} ms "
          f"per call; per-step means " + " ".join(f"{v:.1f}" for v in np.mean(full, axis=0)))
    print(f"{'setting':>10} {'rho/image':>9} {'lowest':>7} {'pooled':>7} {'means':>6} {'pairs':>8} "
          f"{'ms/call':>8} {'/step':>6}   per-step means")
    for c in configs:
        per_image = [spearmanr(a, b)[0] for a, b in zip(live[c], full)]
        pooled = spearmanr(np.ravel(live[c]), np.ravel(full))[0]
        means = spearmanr(np.mean(live[c], axis=0), np.mean(full, axis=0))[0]
        agree = [concordance(a, b) for a, b in zip(live[c], full)]
        pairs = f"{sum(a for a, _ in agree)}/{sum(n for _, n in agree)}"
        print(f"{'x'.join(map(str, c)):>10} {np.mean(per_image):>9.3f} {np.min(per_image):>7.3f} {pooled:>7.3f} "
              f"{means:>6.2f} {pairs:>8} {1e3 * np.median(cost[c]):>8.1f} {100 * np.median(ratio[c]):>5.1f}%   "
              + " ".join(f"{v:.1f}" for v in np.mean(live[c], axis=0)), flush=True)
    comp, crop = crop_768x512(comps)
    if comp is not None:
        original, base = comp.original[crop].contiguous(), comp.base[crop].contiguous()
        cropped = dataclasses.replace(comp, base=base, cond=None)
        steps = [f.seconds for f in islice(pipe.frames(cropped, args.steps), 5)][2:]
        print(f"768x512 crop: a DIRAC step {np.median(steps):.2f} s", end="")
        for c in configs:
            meter = LiveSWD(original, *c)
            meter(base)
            calls = [timed(meter, base)[1] for _ in range(5)]
            print(f"; {'x'.join(map(str, c))} {1e3 * np.median(calls):.0f} ms "
                  f"({100 * np.median(calls) / np.median(steps):.1f} %)", end="")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
