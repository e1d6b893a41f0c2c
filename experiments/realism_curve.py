"""Does CPU training still move a DIRAC model's realism, measured on whole held-out images?

Command: python experiments/realism_curve.py --data ../shared/data/train --run runs/avif_cpu \
             --codec avif --rate 30 --init assets/dirac_avif -- \
             --crop 128 --batch 8 --qf-min 10 --qf-max 80 --lr 5e-5 --lr-end 1e-5 --warmup 100 --steps 14469
Answer:  see docs/findings/realism.md ("AVIF+DIRAC continued on the CPU"): the curve, one row
         every ``--every`` steps, is ``RUN/curve.csv`` and ``RUN/curve.png``.

The trainer (``python -m dirac_demo.train.dirac``, the arguments after ``--``) runs as a child
process and checkpoints every ``--every`` steps. At each checkpoint the child is paused
(SIGSTOP: one heavy job at a time), its EMA weights are sampled on the held-out images (every
40th training file) through the base codec at ``--rate``, 20 steps, seed 0, with the shipped
model's thresholds and spacing, and the child resumes. Each row holds the first and the last
step's mean PSNR gain over the base codec and the last step's SWD as a multiple of the base's.
The run stops at ``--max-more`` steps past its start, or once the last step's SWD falls by less
than ``--min-fall`` per 1 000 steps (a plateau or a rise); ``--no-stop`` keeps it going.

A file ``RUN/PAUSE`` pauses the trainer while it exists (for timing other work); running the
command again resumes the run and its curve.
"""
from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dirac_demo.eval.heldout import compress_heldout, base_stats, run_steps  # noqa: E402
from dirac_demo.swd import swd  # noqa: E402

FIELDS = ["step", "first_db", "last_db", "last_swd_ratio", "eval_seconds"]


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    train = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="the training folder (its held-out files are measured)")
    p.add_argument("--run", required=True, help="the run folder: checkpoint, log.csv, curve.csv, curve.png")
    p.add_argument("--codec", default="avif", help="the base codec the model is trained for")
    p.add_argument("--rate", type=float, default=30, help="the base codec's rate on the held-out images")
    p.add_argument("--init", required=True, help="the shipped model the run starts from (prefix)")
    p.add_argument("--every", type=int, default=500, help="steps between checkpoints and curve points")
    p.add_argument("--max-more", type=int, default=12000, help="stop this many steps past the start")
    p.add_argument("--min-fall", type=float, default=0.01,
                   help="stop when the last step's SWD ratio falls by less than this per 1000 steps")
    p.add_argument("--no-stop", action="store_true", help="ignore the plateau rule")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args(own), train


class Curve:
    """The held-out measurement: the base codec's images once, then any weights of the model."""

    def __init__(self, args: argparse.Namespace) -> None:
        torch.set_num_threads(args.threads)
        self.codec = args.codec
        self.pipe, self.comps = compress_heldout(args.data, args.codec, args.rate)
        self.base_psnr, self.base_swd = base_stats(self.comps)

    def measure(self, ema: dict | None) -> dict:
        """One curve row for the EMA weights ``ema`` (None: the shipped weights)."""
        t0 = time.perf_counter()
        net = self.pipe.dirac[self.codec].net
        if ema is not None:
            net.load_state_dict(ema)
        row = run_steps(self.pipe, self.comps, 20)
        ratio = swd([c.original for c in self.comps], row.final).mean / self.base_swd.mean
        return {"first_db": f"{row.first - self.base_psnr:.3f}", "last_db": f"{row.last - self.base_psnr:.3f}",
                "last_swd_ratio": f"{ratio:.4f}", "eval_seconds": f"{time.perf_counter() - t0:.0f}"}


def read_rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open())) if path.exists() else []


def append(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a", newline="") as fh:
        w = csv.DictWriter(fh, FIELDS)
        if new:
            w.writeheader()
        w.writerow(row)
    print(" ".join(f"{k} {row[k]}" for k in FIELDS), flush=True)


def plateaued(rows: list[dict], min_fall: float) -> bool:
    """True once the last 1000 steps lowered the SWD ratio by less than ``min_fall``."""
    if len(rows) < 2:
        return False
    last = rows[-1]
    back = [r for r in rows if int(r["step"]) <= int(last["step"]) - 1000]
    if not back:
        return False
    ref = back[-1]
    span = (int(last["step"]) - int(ref["step"])) / 1000
    return (float(ref["last_swd_ratio"]) - float(last["last_swd_ratio"])) / span < min_fall


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = [int(r["step"]) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, key, label in zip(axes, ["first_db", "last_db", "last_swd_ratio"],
                              ["first step ΔPSNR (dB)", "last step ΔPSNR (dB)", "last step SWD × base"]):
        ax.plot(steps, [float(r[key]) for r in rows], "o-")
        ax.set_xlabel("training step")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def start_trainer(args: argparse.Namespace, train: list[str]) -> subprocess.Popen:
    ckpt = Path(args.run) / "checkpoint.pt"
    cmd = [sys.executable, "-m", "dirac_demo.train.dirac", "--data", args.data, "--base", args.codec,
           "--out", args.run, "--save-every", str(args.every), "--val-every", str(args.every),
           "--threads", str(args.threads), *train]
    if not ckpt.exists():
        cmd += ["--init", args.init]
    log = open(Path(args.run) / "train.out", "a")
    print("trainer:", " ".join(cmd), flush=True)
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def checkpoint_step(path: Path) -> tuple[int, dict] | None:
    if not path.exists():
        return None
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    return ckpt["step"], ckpt["ema"]


def main(argv: list[str] | None = None) -> int:
    args, train = parse_args(argv)
    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    csv_path, title = run / "curve.csv", f"{args.codec} {args.rate:g}, held-out images, 20 steps"
    curve = Curve(args)
    rows = read_rows(csv_path)
    if not rows:
        start = int(curve.pipe.dirac[args.codec].meta.get("training", {}).get("steps", 0))
        append(csv_path, {"step": start, **curve.measure(None)})
        rows = read_rows(csv_path)
    start, seen = int(rows[0]["step"]), int(rows[-1]["step"])
    child, stamp = start_trainer(args, train), 0.0
    try:
        while child.poll() is None:
            time.sleep(15)
            if (run / "PAUSE").exists():
                child.send_signal(signal.SIGSTOP)
                while (run / "PAUSE").exists():
                    time.sleep(5)
                child.send_signal(signal.SIGCONT)
            ckpt = run / "checkpoint.pt"
            if not ckpt.exists() or os.path.getmtime(ckpt) == stamp:
                continue
            stamp = os.path.getmtime(ckpt)
            child.send_signal(signal.SIGSTOP)
            try:
                got = checkpoint_step(ckpt)
                if got is not None and got[0] >= seen + args.every:
                    seen = got[0]
                    append(csv_path, {"step": seen, **curve.measure(got[1])})
                    rows = read_rows(csv_path)
                    plot(rows, run / "curve.png", title)
            finally:
                child.send_signal(signal.SIGCONT)
            if seen >= start + args.max_more or (not args.no_stop and plateaued(rows, args.min_fall)):
                print(f"stopping at step {seen}: "
                      + ("the step budget is spent" if seen >= start + args.max_more else "the curve has flattened"),
                      flush=True)
                child.send_signal(signal.SIGTERM)
                child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGCONT)
        child.send_signal(signal.SIGTERM)
        child.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
