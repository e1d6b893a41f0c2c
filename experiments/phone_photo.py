"""How long does `dirac-demo enhance` take on a 12 MP phone JPEG, in how much memory, and what does it gain?

Command: python experiments/phone_photo.py --data DIR [--size 4032x3024] [--stops 1 20]
             [--memory-size 8064x6048] [--json OUT]
Answer:  it runs at full size in under 2 GB, keeps the profile and EXIF, and gains +1.65 dB at step 1.
         On an idle 2-core CPU (Intel Xeon, bf16) step 1 of the 4032×3024 file (cjpeg QF 30,
         853 kB) took 13.2 s (19.0 s with start-up) at a peak RSS of 1.25 GB: 31.75 dB against the
         mosaic before JPEG where the JPEG has 30.09. Step 20 took 127.3 s (1.30 GB): 30.46 dB.
         Every output PNG had the Display P3 profile byte for byte and the EXIF camera and date,
         orientation 1. At 8064×6048 (48 MP) step 1 took 43.6 s and peaked at 1.98 GB. Tiled
         against untiled (128 px, overlap 32, 384×288): the tile-outer blend is 1.03 grey levels
         off on average at step 20, the step-outer one 1.02 (0.75 both at step 1), so running each
         tile to the end costs nothing at the seams.

The source is what a phone writes, built from the held-out training images (every 40th file of
DIR, never Kodak): a mosaic of 504×504 crops at their own resolution (8×6 cells make 4032×3024;
the 9 images repeat, mirrored on alternate passes), written by libjpeg-turbo's ``cjpeg -quality 30
-sample 2x2`` (4:2:0) with the Display P3 profile of :mod:`dirac_demo.eval.phone` (``-icc``) and
an EXIF block (camera, date taken, orientation 1) put in after the start-of-image marker. Each
``--stops`` K runs ``python -m dirac_demo enhance SRC --step K`` in a child process under
``/usr/bin/time`` (wall seconds with the start-up and model loading, peak RSS; the file's own
seconds, decode to PNG written, are the ones ``enhance`` prints). The output PNG is checked for the profile (byte for
byte) and the EXIF fields, and its PSNR against the mosaic before JPEG is set beside the JPEG's
own. ``--memory-size`` repeats step 1 on a larger mosaic (48 MP by default) for peak memory alone.

The seam rows compare, on a 384×288 crop of the first held-out image at QF 20 with 128-pixel tiles
overlapping by 32, the tile-outer schedule (``dirac_demo.large``) and the step-outer one
(``dirac_demo.diffusion.tiles``, one blend per step) with one untiled run, all from the same noise.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # this checkout's dirac_demo, installed or not
from dirac_demo.diffusion.sampler import ddim_sample  # noqa: E402
from dirac_demo.diffusion.tiles import tiled  # noqa: E402
from dirac_demo.eval.benchmark import parse_size  # noqa: E402
from dirac_demo.eval.phone import DATE_ORIGINAL, EXIF_IFD, MAKE, MODEL, camera_exif, display_p3_icc, with_exif  # noqa
from dirac_demo.images import ORIENTATION, from_signed, tensor_to_uint8, to_signed  # noqa: E402
from dirac_demo.large import block_noise, enhance_tiles, plan_tiles  # noqa: E402
from dirac_demo.pipeline import NUM_RESPACED, DiracPipeline  # noqa: E402
from dirac_demo.train.data import heldout_images  # noqa: E402

CELL = 504


def mosaic(files: list[Path], width: int, height: int) -> Image.Image:
    """``width`` × ``height`` of ``CELL``-pixel crops of ``files`` in turn, mirrored on alternate passes."""
    out = Image.new("RGB", (width, height))
    images = [Image.open(f).convert("RGB") for f in files]
    for n, (y, x) in enumerate((y, x) for y in range(0, height, CELL) for x in range(0, width, CELL)):
        img = images[n % len(images)]
        left, top = (img.width - CELL) // 2, (img.height - CELL) // 2
        crop = img.crop((max(left, 0), max(top, 0), max(left, 0) + CELL, max(top, 0) + CELL))
        out.paste(ImageOps.mirror(crop) if (n // len(images)) % 2 else crop, (x, y))
    return out


def phone_jpeg(img: Image.Image, icc: bytes, quality: int = 30) -> bytes:
    """``cjpeg -quality Q -sample 2x2 -icc P3`` of ``img``, with a camera's EXIF block."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p3.icc").write_bytes(icc)
        ppm = io.BytesIO()
        img.save(ppm, format="PPM")
        jpeg = subprocess.run(["cjpeg", "-quality", str(quality), "-sample", "2x2", "-icc", str(Path(tmp) / "p3.icc")],
                              input=ppm.getvalue(), capture_output=True, check=True).stdout
    return with_exif(jpeg, camera_exif())


def enhance_child(src: Path, out: Path, stop: int) -> dict:
    """``python -m dirac_demo enhance SRC --step K`` in a child process: wall seconds, peak RSS."""
    stats = out / f"time_{stop}.txt"
    cmd = ["/usr/bin/time", "-o", str(stats), "-f", "%e %M", sys.executable, "-m", "dirac_demo", "enhance", str(src),
           "-o", str(out), "--step", str(stop), "--steps", "20", "--overwrite"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode:
        raise SystemExit(f"enhance failed: {done.stderr.strip()}")
    wall, kib = stats.read_text().split()[-2:]
    line = done.stdout.strip().splitlines()[0]
    print(line)
    return {"stop": stop, "seconds": float(wall), "enhance_seconds": float(line.rsplit(", ", 1)[1].split()[0]),
            "peak_rss_mib": int(kib) / 1024, "output": str(out / f"{src.stem}.step{stop}.png")}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 10 * np.log10(255.0 ** 2 / mse)


def check_output(row: dict, original: np.ndarray, icc: bytes) -> dict:
    """PSNR against the mosaic before JPEG, and the profile and EXIF fields of the output."""
    img = Image.open(row["output"])
    exif = img.getexif()
    return row | {"psnr": psnr(np.asarray(img.convert("RGB")), original),
                  "icc_same": img.info.get("icc_profile") == icc,
                  "exif": {"make": exif.get(MAKE), "model": exif.get(MODEL), "orientation": exif.get(ORIENTATION),
                           "date": exif.get_ifd(EXIF_IFD).get(DATE_ORIGINAL)}}


def seam_rows(pipe: DiracPipeline, image: Path) -> list[dict]:
    """Tile-outer and step-outer tiling (128 px, overlap 32) against one untiled run, steps 1 and 20."""
    src = Image.open(image).convert("RGB").crop((0, 0, 384, 288))
    buf = io.BytesIO()
    src.save(buf, "JPEG", quality=20)
    comp = pipe.decode(buf.getvalue())
    model = pipe.dirac[comp.encoded.codec]
    ts = [int(t) for t in model.spacing.timesteps(20, NUM_RESPACED, pipe.schedule.num_timesteps)]
    xb = to_signed(comp.base)

    def step_outer(stop: int, tiles: bool) -> np.ndarray:
        net = model.net
        whole = lambda r, t: pipe._net(net, r, t, xb)  # noqa: E731
        blend = lambda r, t: tiled(lambda rs, xs: pipe._net(net, rs, t, xs), r, xb, 128, 32)  # noqa: E731
        r = block_noise(0, 0, 0, 288, 384) * pipe.schedule.sigma(ts[0])
        sampler = ddim_sample(blend if tiles else whole, r, ts, pipe.schedule, clip=pipe.clip_for(comp.encoded))
        with torch.no_grad():
            for _ in range(stop):
                step = next(sampler)
        return tensor_to_uint8(from_signed(xb + step.r0_hat).clamp(0, 1))

    rows = []
    for stop in (1, 20):
        whole = enhance_tiles(pipe, comp, stop, plan=plan_tiles(288, 384, 384))[stop]
        for name, out in (("tile-outer", enhance_tiles(pipe, comp, stop, plan=plan_tiles(288, 384, 128, 32))[stop]),
                          ("step-outer", step_outer(stop, True))):
            diff = np.abs(out.astype(int) - whole.astype(int))
            rows.append({"schedule": name, "stop": stop, "mean_levels": float(diff.mean()),
                         "max_levels": int(diff.max()), "psnr_to_untiled": psnr(out, whole)})
        assert np.array_equal(step_outer(stop, False), whole)       # the same noise, the same untiled run
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="the training folder (its held-out files are used)")
    p.add_argument("--size", default="4032x3024")
    p.add_argument("--stops", type=int, nargs="+", default=[1, 20], help="steps K to run enhance to")
    p.add_argument("--memory-size", default="8064x6048",
                   help="a larger mosaic run to step 1 for peak memory ('' skips it)")
    p.add_argument("--no-seams", action="store_true", help="skip the seam rows")
    p.add_argument("--out", default="runs/phone_photo", help="where the source and outputs go")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    files, icc, out = heldout_images(args.data), display_p3_icc(), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"machine": os.uname().nodename, "cores": os.cpu_count(), "runs": []}
    for size, stops in [(args.size, args.stops)] + ([(args.memory_size, [1])] if args.memory_size else []):
        w, h = parse_size(size)
        img = mosaic(files, w, h)
        src = out / f"phone_{w}x{h}.jpg"
        src.write_bytes(phone_jpeg(img, icc))
        original = np.asarray(img)
        jpeg_psnr = psnr(np.asarray(Image.open(src).convert("RGB")), original)
        for stop in stops:
            row = check_output(enhance_child(src, out, stop), original, icc) | {"size": [w, h], "jpeg_psnr": jpeg_psnr,
                                                                                "jpeg_bytes": src.stat().st_size}
            doc["runs"].append(row)
            print(json.dumps(row))
    if not args.no_seams:
        doc["seams"] = seam_rows(DiracPipeline.from_pretrained(device="cpu"), files[0])
        for row in doc["seams"]:
            print(json.dumps(row))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
