"""Does per-region realism keep step 1 inside the mask and the last step outside, with no seam?

Command: python experiments/protect_regions.py --data DIR [--qf 10 --steps 20] [--figure PNG]
Answer:  Yes: away from the 8-px band every pixel is its frame's, bit for bit, and the band adds
         no edge. JPEG QF 10, 20 steps, 4 images with faces or text (masks 2.0–16.8 % of the
         image). Inside the mask the composed image's PSNR is step 1's on every image (mean
         28.26 dB; the last step's 26.41) and no pixel differs from step 1; outside it is the last
         step's (28.92 dB; step 1 30.53), no pixel differs, and so is its fine detail (0.93 of the
         original's; step 1 0.84). Whole-image SWD: last step 41.7, composed 42.4, step 1 52.5. In
         the band the composed image departs from step 1 by up to 22–46 levels and from the last
         step by up to 21–33, yet adds at most a 2-level one-pixel step to the frames' own; a hard
         mask (feather 0) adds 11–27. The printed table:

         image                mask |     PSNR in C/1/L  C-1 |    PSNR out C/L/1   detail C/L/1 |      SWD L/C/1 | band C-1  C-L step hard
         grace_hopper        16.8% | 26.68/26.68/24.96    0 | 28.57/28.57/29.70 0.87/0.87/0.85 | 50.6/52.9/58.7 |       30   31    2   27
         set14_barbara        7.0% | 26.26/26.26/24.24    0 | 25.47/25.47/27.20 0.90/0.90/0.79 | 32.7/32.4/44.2 |       46   33    2   25
         wikiphotos_038       9.2% | 33.96/33.96/31.55    0 | 32.46/32.46/34.56 1.03/1.03/0.88 | 35.4/36.3/52.2 |       22   21    1   13
         wikiphotos_021       2.0% | 26.15/26.15/24.87    0 | 29.19/29.19/30.66 0.91/0.91/0.84 | 48.0/48.1/55.1 |       25   31    2   11
         mean                 8.7% | 28.26/28.26/26.41      | 28.92/28.92/30.53 0.93/0.93/0.84 | 41.7/42.4/52.5

         C = composed, 1 = step 1, L = step 20; PSNR in dB against the original over the region;
         C-1 and the band columns in 8-bit levels. One image's SWD is noisy: barbara's composed
         image reads 0.3 below its last step.

Each image is compressed with JPEG at QF ``--qf`` and enhanced by DIRAC (the shipped model, its own
spacing, seed 0); a mask drawn around its faces and text (ellipses and rectangles given below as
fractions of the image size) goes through :func:`dirac_demo.protect.read_mask`, and
:func:`dirac_demo.protect.compose` takes step 1 inside it and the last step outside, blended over
``DEFAULT_FEATHER`` pixels on each side of the edge. Per image, against the original:

* inside the mask away from the band (blend weight exactly 1): PSNR of the composed image, of
  step 1 and of the last step there, and the largest difference between composed and step 1;
* outside it away from the band (weight 0): the same PSNRs, and *detail*, the RMS of the finest
  Laplacian-pyramid level (the SWD's finest-level patches, 8-bit scale) over the region divided
  by the original's there: 1 is as much fine texture as the original, a smoothed frame is below;
* the whole image: SWD (4096 patches, 4 × 128 directions, this one image) of the last step, the
  composed image and step 1;
* the seam, over the band (0 < weight < 1): the largest per-pixel difference of the composed
  image against each neighbour frame (step 1, last step), and the largest one-pixel step that
  the blend adds to the larger of the two frames' own steps there (8-bit levels), beside the same
  for a hard mask (feather 0).

The training-folder images show faces and text; the held-out split (every 40th file) has none, so
these were seen in training. That does not matter here: composition is a pure function of frames
the network has already produced, and what is measured is the composition (which frame each
pixel comes from, and how the band blends them), not how good the frames are. The fourth image,
``assets/examples/grace_hopper.jpg`` (a public-domain portrait the page ships as an example), is
neither training data nor Kodak. ``--figure`` saves a 100 % crop across the face mask's edge on it:
last step | composed | step 1.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # this checkout's dirac_demo, installed or not
from dirac_demo import DiracPipeline  # noqa: E402
from dirac_demo.images import quantize_8bit, tensor_to_pil  # noqa: E402
from dirac_demo.pipeline import Compressed, RunSettings  # noqa: E402
from dirac_demo.protect import DEFAULT_FEATHER, blend_weights, compose, read_mask  # noqa: E402
from dirac_demo.swd import laplacian_pyramid, swd  # noqa: E402

# Per image: (PIL.ImageDraw shape, (left, top, right, bottom) as fractions of width and height).
# None as the folder: the repository's assets/examples/.
IMAGES = {
    "grace_hopper.jpg": (None, [("ellipse", (0.28, 0.17, 0.72, 0.60)),        # face and glasses
                                ("rectangle", (0.14, 0.78, 0.34, 0.87))]),    # name tag
    "set14_barbara.png": ("data", [("ellipse", (0.56, 0.10, 0.80, 0.47))]),   # face in a scarf
    "wikiphotos_038.png": ("data", [("ellipse", (0.43, 0.12, 0.58, 0.38)),    # face
                                    ("rectangle", (0.34, 0.50, 0.59, 0.74))]),  # jersey number 42
    "wikiphotos_021.png": ("data", [("rectangle", (0.68, 0.43, 0.82, 0.57))]),  # "NASA", "United States"
}
FIGURE_IMAGE = "grace_hopper.jpg"
CROP = 256
# The crop's centre, as fractions: the left edge of the face ellipse at its widest.
FIGURE_CENTRE = (0.28, 0.385)


def draw_mask(shapes, width: int, height: int) -> Image.Image:
    """A white-on-black mask image of the shapes."""
    img = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(img)
    for kind, (left, top, right, bottom) in shapes:
        getattr(draw, kind)([left * width, top * height, right * width, bottom * height], fill=255)
    return img


def region_psnr(a: torch.Tensor, b: torch.Tensor, region: torch.Tensor) -> float:
    """PSNR in dB over the pixels of ``region`` ((H, W) bool), 8-bit-rounded RGB like quality.psnr."""
    diff = (quantize_8bit(a.float()) - quantize_8bit(b.float()))[0][:, region]
    mse = float(diff.pow(2).mean())
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def fine_level(x: torch.Tensor) -> torch.Tensor:
    """The finest Laplacian-pyramid level of an image on the 8-bit scale, (3, H, W)."""
    return laplacian_pyramid(quantize_8bit(x.float()).mul(255.0), 2)[0][0]


def detail(x: torch.Tensor, original: torch.Tensor, region: torch.Tensor) -> float:
    """RMS of the finest level over ``region``, relative to the original's."""
    return float(fine_level(x)[:, region].pow(2).mean().sqrt() / fine_level(original)[:, region].pow(2).mean().sqrt())


def levels(x: torch.Tensor) -> torch.Tensor:
    return quantize_8bit(x.float())[0].mul(255.0)


def added_step(composed: torch.Tensor, a: torch.Tensor, b: torch.Tensor, band: torch.Tensor) -> float:
    """The largest one-pixel step (8-bit levels, any channel, across or down) in ``composed`` beyond
    the larger of the two frames' steps at the same place, over pairs of pixels that touch ``band``."""
    c, a, b = levels(composed), levels(a), levels(b)
    worst = 0.0
    for dim in (1, 2):
        n = c.shape[dim] - 1
        step = [x.diff(dim=dim).abs() for x in (c, a, b)]
        extra = step[0] - torch.maximum(step[1], step[2])
        near = band.narrow(dim - 1, 0, n) | band.narrow(dim - 1, 1, n)
        worst = max(worst, float(extra[:, near].max()) if near.any() else 0.0)
    return worst


def largest_diff(a: torch.Tensor, b: torch.Tensor, region: torch.Tensor) -> float:
    """The largest difference (8-bit levels, any channel) between two images over ``region``."""
    return float((levels(a) - levels(b)).abs()[:, region].max()) if region.any() else 0.0


def run_image(pipe, path: Path, shapes, qf: int, steps: int):
    """Original, step 1, the last step and the mask of one image."""
    first = last = original = None
    for ev in pipe.run(str(path), RunSettings(codec="jpeg", rate=qf, steps=steps)):
        if isinstance(ev, Compressed):
            original = ev.original
        elif ev.k:
            if ev.k == 1:
                first = ev.image
            last = ev.image
    h, w = original.shape[-2:]
    mask = read_mask(draw_mask(shapes, w, h), w, h)
    return original, first, last, mask


def crop_figure(first: torch.Tensor, composed: torch.Tensor, last: torch.Tensor, out: Path) -> None:
    """Three 100 % crops side by side, last step | composed | step 1, labelled above."""
    h, w = first.shape[-2:]
    cx, cy = int(FIGURE_CENTRE[0] * w), int(FIGURE_CENTRE[1] * h)
    left, top = min(max(cx - CROP // 2, 0), w - CROP), min(max(cy - CROP // 2, 0), h - CROP)
    gap, label = 6, 18
    sheet = Image.new("RGB", (3 * CROP + 2 * gap, CROP + label), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (name, x) in enumerate((("last step", last), ("composed", composed), ("step 1", first))):
        tile = tensor_to_pil(x).crop((left, top, left + CROP, top + CROP))
        sheet.paste(tile, (i * (CROP + gap), label))
        draw.text((i * (CROP + gap) + 4, 3), name, fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="the training folder (its face and text images are used)")
    p.add_argument("--qf", type=int, default=10)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--figure", type=Path, default=None, help="save the 100 %% crop across the face mask's edge here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe = DiracPipeline.from_pretrained()
    k = DEFAULT_FEATHER
    print(f"JPEG QF {args.qf}, {args.steps} steps; composed = step 1 inside the mask, step {args.steps} outside, "
          f"feather {k} px. PSNR in dB against the original; C = composed, 1 = step 1, L = last step")
    print(f"{'image':<19} {'mask':>5} | {'PSNR in C/1/L':>17} {'C-1':>4} | {'PSNR out C/L/1':>17} "
          f"{'detail C/L/1':>14} | {'SWD L/C/1':>14} | {'band C-1':>8} {'C-L':>4} {'step':>4} {'hard':>4}")
    rows = []
    for name, (folder, shapes) in IMAGES.items():
        path = (ROOT / "assets" / "examples" if folder is None else Path(args.data)) / name
        original, first, last, mask = run_image(pipe, path, shapes, args.qf, args.steps)
        composed = compose(first, last, mask, k)
        weight = blend_weights(mask, k)[0, 0]
        inside, outside, band = weight == 1, weight == 0, (weight > 0) & (weight < 1)
        hard = compose(first, last, mask, 0)
        row = dict(
            cover=float(mask.mean()),
            inside=[region_psnr(x, original, inside) for x in (composed, first, last)],
            inside_diff=largest_diff(composed, first, inside),
            outside=[region_psnr(x, original, outside) for x in (composed, last, first)],
            outside_diff=largest_diff(composed, last, outside),
            detail=[detail(x, original, outside) for x in (composed, last, first)],
            swd=[swd([original], [x]).mean for x in (last, composed, first)],
            band=[largest_diff(composed, first, band), largest_diff(composed, last, band),
                  added_step(composed, first, last, band), added_step(hard, first, last, band)],
        )
        assert row["outside_diff"] == 0.0, f"{name}: the composed image departs from the last step outside"
        rows.append(row)
        print(f"{Path(name).stem[:19]:<19} {100 * row['cover']:>4.1f}% | "
              + "/".join(f"{v:.2f}" for v in row["inside"]) + f" {row['inside_diff']:>4.0f} | "
              + "/".join(f"{v:.2f}" for v in row["outside"]) + " "
              + "/".join(f"{v:.2f}" for v in row["detail"]) + " | "
              + "/".join(f"{v:.1f}" for v in row["swd"]) + " | "
              + f"{row['band'][0]:>8.0f} {row['band'][1]:>4.0f} {row['band'][2]:>4.0f} {row['band'][3]:>4.0f}",
              flush=True)
        if args.figure is not None and name == FIGURE_IMAGE:
            crop_figure(first, composed, last, args.figure)
    mean = lambda key, i: float(np.mean([r[key][i] for r in rows]))   # noqa: E731
    print(f"{'mean':<19} {100 * np.mean([r['cover'] for r in rows]):>4.1f}% | "
          + "/".join(f"{mean('inside', i):.2f}" for i in range(3)) + "      | "
          + "/".join(f"{mean('outside', i):.2f}" for i in range(3)) + " "
          + "/".join(f"{mean('detail', i):.2f}" for i in range(3)) + " | "
          + "/".join(f"{mean('swd', i):.1f}" for i in range(3)))
    if args.figure is not None:
        print(f"crop across the face mask's edge on {FIGURE_IMAGE} (last step | composed | step 1): {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
