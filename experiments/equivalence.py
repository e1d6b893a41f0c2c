"""Do two checkouts give the same bytes and the same images?

Command: python experiments/equivalence.py --out A.json   (in each checkout), then
         python experiments/equivalence.py --compare A.json B.json
Answer:  the layout of the package can change without changing what it computes: the same
         weights and inputs give byte-identical .drc files, identical base reconstructions and
         identical frames at every DDIM step, through the pipeline and through the CLI.

Only the public API (``dirac_demo.DiracPipeline``, its events, and ``python -m dirac_demo``)
is used, so the script runs unchanged on any version of the package.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CASES = [("kodim05.png", "jpeg", 10), ("kodim23.png", "jpeg", 30), ("kodim23.png", "avif", 30),
         ("kodim05.png", "neural", 0.0016), ("kodim19.png", "neural", 0.006)]
RATE_FLAGS = {"jpeg": "--qf", "avif": "--quality", "neural": "--lmbda"}
STEPS = 4


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def frame_digest(image) -> str:
    """sha256 of a (1, 3, H, W) tensor in [0, 1] as 8-bit RGB."""
    arr = (image[0].permute(1, 2, 0).clamp(0, 1).mul(255).round().byte().numpy())
    return digest(np.ascontiguousarray(arr).tobytes())


def crop(name: str, workdir: Path) -> Path:
    """A 256 x 192 crop of a shipped example (small enough to run in seconds)."""
    path = workdir / name
    Image.open(ROOT / "assets" / "examples" / name).convert("RGB").crop((64, 64, 320, 256)).save(path)
    return path


def pipeline_record(image: Path, codec: str, rate: float, precision: str) -> dict:
    sys.path.insert(0, str(ROOT))
    from dirac_demo import DiracPipeline
    pipe = DiracPipeline.from_pretrained(precision=precision, device="cpu")
    rec = {"frames": [], "psnr": []}
    for ev in events(pipe, image, codec, rate):
        kind = type(ev).__name__
        if kind == "Compressed":
            rec["drc"] = digest(ev.bitstream)
            rec["nbytes"] = ev.nbytes
        if kind in ("StepResult", "Frame") or (kind == "Compressed" and hasattr(ev, "psnr")):
            img = ev.base if kind == "Compressed" else ev.image     # the base: the header, or frame 0
            rec["frames"].append(frame_digest(img))
            rec["psnr"].append(round(float(ev.psnr), 6))
    return rec


def events(pipe, image: Path, codec: str, rate: float):
    """The run's events through whichever public API the checkout has: ``run(image, settings)``
    with a :class:`RunSettings` and the metrics wrapper, or the older keyword form."""
    import dirac_demo
    if hasattr(dirac_demo, "RunSettings"):
        settings = dirac_demo.RunSettings(codec=codec, rate=rate, steps=STEPS, seed=0)
        return dirac_demo.with_metrics(pipe.run(str(image), settings))
    return pipe.run(str(image), codec, rate, steps=STEPS, seed=0)


def cli_record(image: Path, codec: str, rate: float, workdir: Path) -> dict:
    drc, png = workdir / "cli.drc", workdir / "cli.png"
    flag = [RATE_FLAGS[codec], str(rate)]
    run = lambda *a: subprocess.run([sys.executable, "-m", "dirac_demo", *a], cwd=ROOT,  # noqa: E731
                                    check=True, capture_output=True, text=True)
    run("compress", str(image), "-o", str(drc), "--codec", codec, *flag)
    info = run("info", str(drc)).stdout.strip()
    run("decompress", str(drc), "-o", str(png), "--steps", str(STEPS))
    arr = np.asarray(Image.open(png).convert("RGB"))
    return {"drc": digest(drc.read_bytes()), "png": digest(np.ascontiguousarray(arr).tobytes()), "info": info}


def record() -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, codec, rate in CASES:
            image = crop(name, work)
            key = f"{name} {codec} {rate}"
            out[key] = {"fp32": pipeline_record(image, codec, rate, "fp32"),
                        "cli": cli_record(image, codec, rate, work)}
            print(key, out[key]["fp32"]["drc"], out[key]["fp32"]["nbytes"], "bytes", flush=True)
    return out


def compare(a_path: str, b_path: str) -> int:
    a, b = json.loads(Path(a_path).read_text()), json.loads(Path(b_path).read_text())
    bad = 0
    print(f"{'case':34s} {'drc':>5s} {'frames':>7s} {'cli drc':>8s} {'cli png':>8s} {'info':>5s}")
    for key in a:
        x, y = a[key], b.get(key)
        if y is None:
            print(f"{key:34s} missing in {b_path}")
            bad += 1
            continue
        same = [x["fp32"]["drc"] == y["fp32"]["drc"], x["fp32"]["frames"] == y["fp32"]["frames"],
                x["cli"]["drc"] == y["cli"]["drc"], x["cli"]["png"] == y["cli"]["png"],
                x["cli"]["info"] == y["cli"]["info"]]
        bad += not all(same)
        frames = f"{len(x['fp32']['frames'])}/{len(x['fp32']['frames'])}" if same[1] else "DIFF"
        cells = ["same" if s else "DIFF" for s in same]
        print(f"{key:34s} {cells[0]:>5s} {frames:>7s} {cells[2]:>8s} {cells[3]:>8s} {cells[4]:>5s}")
    print("identical" if not bad else f"{bad} case(s) differ")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="write this checkout's record here")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), help="compare two records")
    args = p.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    Path(args.out).write_text(json.dumps(record(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
