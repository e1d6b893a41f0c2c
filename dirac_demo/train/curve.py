"""A training run measured as it goes: the learning curve of a DIRAC model on held-out images.

:func:`drive` runs the trainer (``python -m dirac_demo.train.dirac`` with the arguments after
``--``) as a child process that checkpoints every ``--every`` steps. At each new checkpoint the
child is paused (SIGSTOP: one heavy job at a time), the checkpoint is kept as
``RUN/checkpoint_STEP.pt`` (so the best point can be exported), a caller's measurement of its
EMA weights becomes a row of ``RUN/curve.csv`` (and ``RUN/curve.png``), and the child resumes.
The first row is the starting weights'. The run stops at ``--max-more`` steps past its start, or
once the row's ``last_swd_ratio`` (the last step's SWD as a multiple of the base codec's) falls
by less than ``--min-fall`` per 1 000 steps (a plateau or a rise); ``--no-stop`` keeps it going.
A file ``RUN/PAUSE`` pauses the trainer while it exists; the same command resumes a run and its
curve. The measurements are the experiments' (``experiments/realism_curve.py``,
``experiments/writers_curve.py``): an object with ``pipe``, ``fields``, ``measure(ema)`` and
``plot(rows, path, title)``.
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Protocol

import torch

ROOT = Path(__file__).resolve().parents[2]


class Measurement(Protocol):
    pipe: object                  # the DiracPipeline whose model is measured
    fields: list[str]             # the CSV columns: "step", ..., "last_swd_ratio", ...

    def measure(self, ema: dict | None) -> dict:
        """One row (all fields but "step") for the EMA weights ``ema`` (None: the starting weights)."""

    def plot(self, rows: list[dict], path: Path, title: str) -> None:
        """The curve so far as a figure at ``path``."""


def parse_args(argv: list[str] | None, description: str,
               more: Callable[[argparse.ArgumentParser], None] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """The driver's flags and the trainer's (after ``--``); ``more(parser)`` adds a measurement's own."""
    argv = list(sys.argv[1:] if argv is None else argv)
    train = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=description.splitlines()[0])
    p.add_argument("--data", required=True, help="the training folder (its held-out files are measured)")
    p.add_argument("--run", required=True, help="the run folder: checkpoints, log.csv, curve.csv, curve.png")
    p.add_argument("--init", required=True, help="the shipped model the run starts from (prefix)")
    p.add_argument("--every", type=int, default=500, help="steps between checkpoints and curve points")
    p.add_argument("--max-more", type=int, default=12000, help="stop this many steps past the start")
    p.add_argument("--min-fall", type=float, default=0.01,
                   help="stop when the last step's SWD ratio falls by less than this per 1000 steps")
    p.add_argument("--no-stop", action="store_true", help="ignore the plateau rule")
    p.add_argument("--threads", type=int, default=2)
    if more is not None:
        more(p)
    return p.parse_args(own), train


def read_rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open())) if path.exists() else []


def append(path: Path, row: dict, fields: list[str]) -> None:
    """Add ``row`` to the CSV at ``path`` (its header first when new) and print it."""
    new = not path.exists()
    with path.open("a", newline="") as fh:
        w = csv.DictWriter(fh, fields)
        if new:
            w.writeheader()
        w.writerow(row)
    print(" ".join(f"{k} {row[k]}" for k in fields), flush=True)


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


def plot_series(rows: list[dict], path: Path, title: str, series: dict[str, str]) -> None:
    """Three panels (first step ΔPSNR, last step ΔPSNR, last step SWD × base) with one line per
    name of ``series`` (name -> column prefix, "" for the plain columns)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = [int(r["step"]) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, label in zip(axes, ["first_db", "last_db", "swd_ratio"],
                              ["first step ΔPSNR (dB)", "last step ΔPSNR (dB)", "last step SWD × base"]):
        for name, prefix in series.items():
            column = f"{prefix}{key}" if prefix or key != "swd_ratio" else "last_swd_ratio"
            ax.plot(steps, [float(r[column]) for r in rows], "o-", label=name, ms=3)
        ax.set_xlabel("training step")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    if len(series) > 1:
        axes[-1].legend(fontsize=7)
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


def drive(args: argparse.Namespace, train: list[str], curve: Measurement, title: str) -> int:
    """Run the trainer as a child, adding ``curve.measure(ema)`` as a row of ``RUN/curve.csv`` at each
    new checkpoint, until the step budget is spent or the SWD ratio flattens."""
    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    csv_path = run / "curve.csv"
    rows = read_rows(csv_path)
    if not rows:
        start = int(curve.pipe.dirac[args.codec].meta.get("training", {}).get("steps", 0))
        append(csv_path, {"step": start, **curve.measure(None)}, curve.fields)
        rows = read_rows(csv_path)
    start, seen = int(rows[0]["step"]), int(rows[-1]["step"])
    child = start_trainer(args, train)
    try:
        _follow(args, child, curve, rows, title, start, seen)
    except KeyboardInterrupt:
        child.send_signal(signal.SIGCONT)
        child.send_signal(signal.SIGTERM)
        child.wait()
    return 0


def _follow(args, child: subprocess.Popen, curve: Measurement, rows: list[dict], title: str, start: int,
            seen: int) -> None:
    """Watch the child: pause it for ``RUN/PAUSE``, measure each new checkpoint, stop it at the end."""
    run, stamp = Path(args.run), 0.0
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
                shutil.copyfile(ckpt, run / f"checkpoint_{seen}.pt")
                append(run / "curve.csv", {"step": seen, **curve.measure(got[1])}, curve.fields)
                rows = read_rows(run / "curve.csv")
                curve.plot(rows, run / "curve.png", f"{title} ({run.name})")
        finally:
            child.send_signal(signal.SIGCONT)
        if seen >= start + args.max_more or (not args.no_stop and plateaued(rows, args.min_fall)):
            spent = seen >= start + args.max_more
            print(f"stopping at step {seen}: " + ("the step budget is spent" if spent else "the curve has flattened"),
                  flush=True)
            child.send_signal(signal.SIGTERM)
            child.wait()
