"""Does one 9-minute GPU run at batch 16 x 256² bring a DIRAC model the realism CPU runs could not?

Command: python experiments/gpu_realism.py --base jpeg --data DIR --out OUT    # file-conditioned JPEG+DIRAC
         python experiments/gpu_realism.py --base avif --data DIR --out OUT    # AVIF+DIRAC
         python experiments/gpu_realism.py --pack DEST --data ../shared/data/train   # the data a GPU machine reads
Answer:  not measured: no GPU has run it. On 2 CPU cores a smoke run (--more 3 --batch 2 --crop 64)
         trains, validates, checkpoints and exports both recipes.

The two recipes (docs/findings/jpeg-encoders.md, docs/findings/realism.md, docs/training.md):

- ``jpeg``: from the shipped ``assets/dirac_jpeg``, a file-conditioned network (``--file-cond``:
  each crop's JPEG tables and subsampling, :mod:`dirac_demo.diffusion.file_condition`; its layers
  start at zero, so step 0 is the shipped model) on JPEG written per crop by Pillow (twice as
  often), 4:4:4, 4:2:2, mozjpeg's tables or twice, at a quality log-uniform in 5–90.
- ``avif``: from the shipped ``assets/dirac_avif``, on AVIF at a quality uniform in 10–80 with the
  AVIF codec's own encoder, made by worker processes on the machine's CPU cores.

Both: batch 16 × 256², Adam from a fresh state with 100 warm-up steps, 1e-4 decaying linearly to
1e-5 at ``--more`` steps past the shipped count, EMA 0.999, pairs from ``--workers`` processes,
validation every 500 steps, a checkpoint every 500. None of the JPEG writers calls ``cjpeg``
(mozjpeg's tables are written through Pillow), so the GPU machine needs no libjpeg-turbo-progs;
``experiments/jpeg_encoders.py``, which evaluates the result on the CPU, does.

The trainer (``python -m dirac_demo.train.dirac``) runs as a child process, its output in
``OUT/train.log``. Whatever its progress, it is sent SIGTERM (it saves and leaves) ``--grace``
seconds before the ``--minutes`` cap and killed 20 s before it, so the whole command ends under
the cap. ``OUT/run/`` then holds ``checkpoint.pt`` (model, EMA, Adam: about 120 MB), ``log.csv``,
``loss.png`` and ``meta.json``; ``OUT/dirac_jpeg`` (or ``dirac_avif``) ``.safetensors`` + ``.json``
are the EMA weights in fp16 (15 MB) with the shipped model's threshold table (a statistic of the
data, not of the network) and sampler spacing copied in, ready for evaluation on the CPU.

``--pack DEST`` writes the training folder as JPEG copies (quality 92, no chroma subsampling, the
same stems, so the same held-out files), 47.9 MiB instead of 188 MB, for a GPU machine to read.
"""
from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECIPES = {
    "jpeg": ["--base", "jpeg", "--init", "assets/dirac_jpeg", "--file-cond", "--qf-min", "5", "--qf-max", "90",
             "--jpeg-writers", "pillow", "pillow", "444", "422", "mozjpeg-tables", "double"],
    "avif": ["--base", "avif", "--init", "assets/dirac_avif", "--qf-min", "10", "--qf-max", "80"],
}
NEEDED = ["torch", "numpy", "PIL", "compressai", "pytorch_msssim", "safetensors", "matplotlib"]
DATA_DEFAULTS = [ROOT / "runs" / "gpu_data", ROOT / "shared" / "data" / "train", ROOT.parent / "shared" / "data" / "train"]
KILL_MARGIN = 20.0          # seconds before the cap at which a trainer still running is killed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", choices=sorted(RECIPES), help="which recipe to train")
    p.add_argument("--out", help="output folder: the run, its log and the exported weights")
    p.add_argument("--data", default=None,
                   help="training images (default: the first of runs/gpu_data, shared/data/train, ../shared/data/train)")
    p.add_argument("--pack", default=None, metavar="DEST", help="write --data as JPEG copies to DEST and stop")
    p.add_argument("--minutes", type=float, default=9.0, help="wall-clock cap of the whole command")
    p.add_argument("--grace", type=float, default=45.0, help="seconds before the cap at which training stops")
    p.add_argument("--more", type=int, default=None,
                   help="steps past the shipped model's count at which the learning rate reaches 1e-5 "
                        "(default: 7000 for jpeg, 6000 for avif)")
    p.add_argument("--batch", type=int, default=16, help="crops per step")
    p.add_argument("--crop", type=int, default=256, help="crop side in pixels")
    p.add_argument("--workers", type=int, default=max(1, min(14, (os.cpu_count() or 2) - 2)),
                   help="processes making the pairs (default: the CPU count less two, at most 14)")
    p.add_argument("--every", type=int, default=500, help="steps between validations and checkpoints")
    args = p.parse_args(argv)
    if args.pack is None and (args.base is None or args.out is None):
        p.error("give --base and --out (or --pack DEST)")
    return args


def find_data(given: str | None) -> Path:
    """The training folder: ``--data``, else the first default that exists; one line and exit if none."""
    candidates = [Path(given)] if given else DATA_DEFAULTS
    for path in candidates:
        if path.is_dir():
            return path
    sys.exit(f"no training data: none of {', '.join(str(c) for c in candidates)} is a folder "
             "(--pack makes one, see docs/training.md)")


def preflight(base: str) -> str:
    """Stop with one line if a package the trainer imports is missing; the device the run will use."""
    for name in NEEDED:
        try:
            importlib.import_module(name)
        except ImportError:
            sys.exit(f"{name} is missing: install it from requirements.txt (docs/training.md lists the wheels)")
    if base == "avif":
        from PIL import features
        if not features.check("avif"):
            sys.exit("this Pillow cannot write AVIF: install Pillow >= 11.3 (requirements.txt)")
    import torch
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA: the CPU (a smoke run)"


def init_steps(base: str) -> int:
    """The shipped model's step count, where the run's count continues."""
    meta = json.loads((ROOT / RECIPES[base][3]).with_suffix(".json").read_text())
    return int(meta["training"]["steps"])


def trainer_command(args: argparse.Namespace, data: Path, run: Path) -> list[str]:
    more = args.more if args.more is not None else {"jpeg": 7000, "avif": 6000}[args.base]
    return [sys.executable, "-m", "dirac_demo.train.dirac", *RECIPES[args.base], "--data", str(data),
            "--out", str(run), "--crop", str(args.crop), "--batch", str(args.batch), "--workers", str(args.workers),
            "--lr", "1e-4", "--lr-end", "1e-5", "--warmup", "100", "--steps", str(init_steps(args.base) + more),
            "--save-every", str(args.every), "--val-every", str(args.every)]


def tee(stream, log: Path) -> threading.Thread:
    """Copy the child's output to ``log`` and to this process's stdout, line by line."""
    def copy():
        with open(log, "a") as fh:
            for line in stream:
                fh.write(line)
                fh.flush()
                print(line, end="", flush=True)
    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    return thread


def run_capped(cmd: list[str], log: Path, stop_at: float, kill_at: float) -> int:
    """Run the trainer; SIGTERM at ``stop_at``, SIGKILL at ``kill_at`` (monotonic seconds). Its exit code."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    print("trainer:", " ".join(cmd[1:]), flush=True)
    child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reader = tee(child.stdout, log)
    stopped = False
    while child.poll() is None:
        now = time.monotonic()
        if now >= kill_at:
            print("the trainer did not stop in time: killed (the last periodic checkpoint stands)", flush=True)
            child.kill()
            child.wait()
        elif now >= stop_at and not stopped:
            print("wall-clock cap: stopping the trainer (it saves a checkpoint)", flush=True)
            child.send_signal(signal.SIGTERM)
            stopped = True
        time.sleep(0.5)
    reader.join(timeout=5)
    return child.returncode


def export(base: str, run: Path, out: Path) -> None:
    """The run's EMA weights as ``OUT/dirac_BASE`` with the shipped table and spacing copied in."""
    from dirac_demo.train import export as exporter
    prefix = out / f"dirac_{base}"
    exporter.main(["dirac", "--ckpt", str(run / "checkpoint.pt"), "--out", str(prefix)])
    shipped = json.loads((ROOT / RECIPES[base][3]).with_suffix(".json").read_text())
    js = prefix.with_suffix(".json")
    meta = json.loads(js.read_text())
    meta["thresholds"] = shipped.get("thresholds")
    if "sampler" in shipped:
        meta["sampler"] = shipped["sampler"]
    js.write_text(json.dumps(meta, indent=2))


def summary(run: Path, start_step: int) -> None:
    """One line: the steps this run took, their median time, and its last validation row."""
    import csv
    import statistics
    with open(run / "log.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["step"]) > start_step]
    if not rows:
        print("no training step was taken")
        return
    val = [r for r in rows if r.get("val_swd_ratio")]
    last = (f"; last validation at step {val[-1]['step']}: first step {float(val[-1]['val_gain_db']):+.3f} dB, "
            f"last step {float(val[-1]['val_gain_last_db']):+.3f} dB, SWD {float(val[-1]['val_swd_ratio']):.3f}x"
            if val else "")
    ms = 1e3 * statistics.median(float(r["seconds"]) for r in rows)
    print(f"{len(rows)} steps ({rows[0]['step']}..{rows[-1]['step']}), median {ms:.0f} ms a step{last}", flush=True)


def train(args: argparse.Namespace, t0: float) -> int:
    data, out = find_data(args.data), Path(args.out)
    print(f"device: {preflight(args.base)}; data: {data}; workers: {args.workers}", flush=True)
    run = out / "run"
    run.mkdir(parents=True, exist_ok=True)
    cap = t0 + 60.0 * args.minutes
    code = run_capped(trainer_command(args, data, run), out / "train.log", cap - args.grace, cap - KILL_MARGIN)
    if not (run / "checkpoint.pt").exists():
        print(f"the trainer ended (exit {code}) before its first checkpoint; see {out / 'train.log'}")
        return 1
    export(args.base, run, out)
    summary(run, init_steps(args.base))
    print(f"done in {time.monotonic() - t0:.0f} s of the {60 * args.minutes:.0f} s cap", flush=True)
    return 0 if code in (0, -signal.SIGTERM) else code


def pack(data: Path, dest: Path) -> int:
    """``data`` as JPEG copies (quality 92, 4:4:4, the same stems) in ``dest``."""
    from dirac_demo.images import read_rgb_within
    from dirac_demo.train.data import list_images
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    for path in list_images(data):
        buf = io.BytesIO()
        read_rgb_within(path, max_pixels=1 << 62).save(buf, format="JPEG", quality=92, subsampling=0)
        (dest / f"{path.stem}.jpg").write_bytes(buf.getvalue())
        total += len(buf.getvalue())
    print(f"wrote {len(list_images(dest))} JPEG files, {total / 2**20:.1f} MiB, to {dest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    t0 = time.monotonic()
    args = parse_args(argv)
    if args.pack is not None:
        return pack(find_data(args.data), Path(args.pack))
    return train(args, t0)


if __name__ == "__main__":
    sys.exit(main())
