"""How does JPEG+DIRAC do on JPEG files that other encoders wrote?

Command: python experiments/jpeg_encoders.py --data DIR
             [--encoders pillow cjpeg-444 cjpeg-420-prog cjpeg-moz-tables] [--qualities 10 20 30 50 75]
Answer:  the shipped model transfers, and its realism gain fades above quality 20 whoever wrote
         the file. At quality 10 every encoder's files gain 1.7-2.2 dB at the first step and end
         at 0.53-0.55x the JPEG's SWD (targets met). At 20 the first step gains 1.5-2.1 dB but
         the last step's SWD is 0.72-0.76x (target 0.7x); at 30-50, 0.81-0.96x (target 0.8x);
         4:4:4 files gain least (+0.93 dB at the first step at 50). cjpeg's progressive 4:2:0
         files decode to Pillow's pixels. The full table is in docs/findings/jpeg-encoders.md.

Each held-out image is written by each encoder at each quality, and the file is read back as a
receiver reads any plain JPEG (``dirac_demo.codecs.read``: quality factor from its tables, exact
for the IJG tables, estimated otherwise). Then 20 late-start steps, seed 0. Per encoder and
quality: the estimated quality factor, bits per pixel, the JPEG's own PSNR, the first and last
steps' PSNR gain over it, SWD (4096 patches) of the JPEG and of the last step against the
originals, and whether the row meets the targets:

- quality ≤ 20: first step ≥ +1.0 dB; last step ≥ −0.5 dB and SWD ≤ 0.7× the JPEG's;
- quality 21–50: first step ≥ +1.0 dB; last step ≥ −0.5 dB and SWD ≤ 0.8× the JPEG's;
- quality > 50: first step ≥ −0.1 dB.

The encoders are :mod:`dirac_demo.eval.jpeg_writers`' (Pillow, Pillow 4:2:2, cjpeg 4:4:4, cjpeg
progressive 4:2:0, cjpeg with mozjpeg's tables).

``cjpeg`` is Debian's ``libjpeg-turbo-progs``. DIR is the training folder; its held-out files
(every 40th) are used, never Kodak. ``--json OUT`` keeps the rows.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's dirac_demo, installed or not
from dirac_demo.eval.heldout import run_steps  # noqa: E402
from dirac_demo.swd import swd  # noqa: E402
from dirac_demo.images import read_rgb_within, pil_to_tensor  # noqa: E402
from dirac_demo.pipeline import DiracPipeline  # noqa: E402
from dirac_demo.quality import bits_per_pixel, psnr  # noqa: E402
from dirac_demo.eval.jpeg_writers import ENCODERS  # noqa: E402
from dirac_demo.train.data import heldout_images  # noqa: E402

def targets(quality: int) -> tuple[float, float | None, float | None]:
    """(least first-step gain, least last-step gain, largest last-step SWD ratio) at ``quality``."""
    if quality <= 20:
        return 1.0, -0.5, 0.7
    if quality <= 50:
        return 1.0, -0.5, 0.8
    return -0.1, None, None


def measure(pipe: DiracPipeline, originals: list, encode, quality: int, steps: int) -> dict:
    """One encoder at one quality over the held-out images: the row's numbers."""
    comps, nbytes, pixels, estimates = [], 0, 0, set()
    for img, x in originals:
        data = encode(img, quality)
        comp = dataclasses.replace(pipe.decode(data), original=x)
        comps.append(comp)
        nbytes += len(data)
        pixels += x.shape[-1] * x.shape[-2]
        facts = comp.encoded.file
        estimates.add((comp.encoded.quality, facts.quality_read == "exact", facts.subsampling, facts.scan))
    row = run_steps(pipe, comps, steps)
    xs = [x for _, x in originals]
    base = sum(psnr(c.base, c.original) for c in comps) / len(comps)
    swd_base, swd_last = swd(xs, [c.base for c in comps]).mean, swd(xs, row.final).mean
    (q_est, exact, sub, scan), = estimates if len(estimates) == 1 else (sorted(estimates)[0],)
    first_min, last_min, swd_max = targets(quality)
    ok = row.first - base >= first_min and (last_min is None or row.last - base >= last_min) \
        and (swd_max is None or swd_last <= swd_max * swd_base)
    return {"quality": quality, "estimated_qf": q_est, "exact": exact, "subsampling": sub, "scan": scan,
            "bpp": bits_per_pixel(nbytes, pixels, 1), "psnr_jpeg": base, "gain_first": row.first - base,
            "gain_last": row.last - base, "swd_jpeg": swd_base, "swd_last": swd_last,
            "swd_ratio": swd_last / swd_base, "meets_targets": ok}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="the training folder (its held-out files are used)")
    p.add_argument("--encoders", nargs="+", default=["pillow", "cjpeg-444", "cjpeg-420-prog", "cjpeg-moz-tables"],
                   choices=sorted(ENCODERS))
    p.add_argument("--qualities", type=int, nargs="+", default=[10, 20, 30, 50, 75])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--assets", default=None, help="a weights folder other than the shipped one")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None, help="also write the rows here")
    args = p.parse_args(argv)
    if any(e.startswith("cjpeg") for e in args.encoders) and shutil.which("cjpeg") is None:
        print("cjpeg is not installed (Debian: apt-get install libjpeg-turbo-progs)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    pipe = DiracPipeline.from_pretrained(args.assets)
    originals = [(img, pil_to_tensor(img)) for img in map(read_rgb_within, heldout_images(args.data))]
    print(f"{len(originals)} held-out images, {args.steps} steps, seed 0; "
          "Δ: PSNR gain over the JPEG's own decode; ×: last step's SWD over the JPEG's")
    rows = {}
    for name in args.encoders:
        print(f"\n{name}\n{'Q':>3} {'QF est':>7} {'sub':>5} {'bpp':>6} {'JPEG dB':>7} {'Δ first':>7} "
              f"{'Δ last':>7} {'SWD JPEG':>8} {'SWD last':>8} {'×':>5} {'targets':>7} {'s':>4}")
        rows[name] = []
        for q in args.qualities:
            t0 = time.time()
            r = measure(pipe, originals, ENCODERS[name], q, args.steps)
            rows[name].append(r)
            est = f"{r['estimated_qf']}{'' if r['exact'] else '~'}"
            print(f"{q:>3} {est:>7} {r['subsampling']:>5} {r['bpp']:>6.3f} {r['psnr_jpeg']:>7.2f} "
                  f"{r['gain_first']:>+7.2f} {r['gain_last']:>+7.2f} {r['swd_jpeg']:>8.2f} {r['swd_last']:>8.2f} "
                  f"{r['swd_ratio']:>5.2f} {'met' if r['meets_targets'] else 'missed':>7} {time.time() - t0:>4.0f}",
                  flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"assets": args.assets or "shipped", "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
