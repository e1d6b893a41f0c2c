"""What both trainers share: process setup, data streams, resumable checkpoints, the CSV loss
log and its plot, the learning-rate schedule and the training loop (:class:`Run`).

Works single-process, and multi-process through ``torchrun`` (NCCL on GPUs, gloo on CPUs).
Ctrl-C or SIGTERM saves a checkpoint before leaving.
"""
from __future__ import annotations

import csv
import json
import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import torch
import torch.distributed as dist

from .. import __version__
from ..machine import cpu_has_bf16
from .data import CropSampler, batch_stream, heldout_images

DEFAULT_LR = 2e-4


class Stopper:
    """Turns SIGINT/SIGTERM into a flag the training loop polls, so the loop can save first."""

    def __init__(self) -> None:
        self.stop = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(sig, self._handle)
            except ValueError:   # not in the main thread (e.g. under a test runner thread)
                pass

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        self.stop = True


def setup_distributed() -> tuple[int, int, torch.device]:
    """(rank, world_size, device); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def cleanup_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class Process(NamedTuple):
    """This process's place in a (possibly distributed) run."""

    rank: int
    world: int
    device: torch.device


def start_process(args) -> Process:
    """The process group, ``--threads``, backend tuning and the torch seed of this rank."""
    proc = Process(*setup_distributed())
    if args.threads:
        torch.set_num_threads(args.threads)
    tune_backend(proc.device)
    torch.manual_seed(args.seed + proc.rank)
    return proc


def rank_seed(args, rank: int, step: int = 0) -> int:
    """Seed of a rank's random draws (λ_rate, JPEG quality, timesteps; worker streams) from ``step`` on."""
    return args.seed + 1000 * rank + step


def crop_samplers(args, rank: int) -> tuple[CropSampler, CropSampler]:
    """(this rank's training crops, the held-out validation crops) of ``--data`` at ``--crop``."""
    val_files = set(heldout_images(args.data))
    return (CropSampler(args.data, args.crop, seed=args.seed + rank, exclude=val_files),
            CropSampler(args.data, args.crop, seed=12345, include=val_files))


def crop_stream(args, sampler: CropSampler, n: int, proc: Process, step: int, transform=None):
    """Batches of ``n`` from ``--workers`` background processes, or None to sample in-process."""
    if not args.workers:
        return None
    return batch_stream(sampler, n, args.workers, seed=rank_seed(args, proc.rank, step), transform=transform,
                        pin=proc.device.type == "cuda")


def new_adam(params, args) -> torch.optim.Adam:
    """Adam at ``--lr`` (default :data:`DEFAULT_LR`)."""
    return torch.optim.Adam(params, lr=args.lr if args.lr is not None else DEFAULT_LR)


def mse_psnr(mse: float | torch.Tensor) -> float:
    """PSNR in dB of a mean squared error on [0, 1] images (peak 1), without rounding to 8 bits:
    the validation figure of both trainers (:func:`dirac_demo.quality.psnr` rounds first)."""
    mse = float(mse)
    return float("inf") if mse == 0 else 10 * math.log10(1 / mse)


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomic save: write to a temporary file, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict | None:
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def use_bf16(flag: str, device: torch.device) -> bool:
    """``--bf16 auto|on|off``: auto means CUDA, or a CPU with bf16 units (AMX/AVX512-BF16)."""
    return flag == "on" or (flag == "auto" and (device.type == "cuda" or cpu_has_bf16()))


class CsvLog:
    """Appends rows of metrics to ``log.csv`` (created with a header on first write)."""

    def __init__(self, path: Path, fields: list[str], resume_step: int | None = None) -> None:
        self.path, self.fields = path, fields
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            with open(path, "w", newline="") as fh:
                csv.writer(fh).writerow(fields)
        else:
            self._upgrade_header()
            if resume_step is not None:
                self._drop_after(resume_step)
        self.t0 = time.time()

    def _upgrade_header(self) -> None:
        """A log written by a version with other columns is rewritten under ``fields`` (matched
        by name; columns this version no longer writes are kept at the end), so resumed rows
        never land under the wrong header."""
        with open(self.path, newline="") as fh:
            reader = csv.DictReader(fh)
            rows, header = list(reader), reader.fieldnames or []
        if header == self.fields or not header:
            return
        self.fields = self.fields + [h for h in header if h not in self.fields]
        with open(self.path, "w", newline="") as fh:
            w = csv.DictWriter(fh, self.fields, restval="")
            w.writeheader()
            w.writerows(rows)

    def _drop_after(self, step: int) -> None:
        """Rows past the checkpoint being resumed (a run killed between saves) are moved
        to ``log.dropped.csv``, so the log describes the weights that exist."""
        with open(self.path, newline="") as fh:
            rows = list(csv.reader(fh))
        keep = [r for r in rows[1:] if r and int(float(r[0])) <= step]
        gone = [r for r in rows[1:] if r and int(float(r[0])) > step]
        if not gone:
            return
        dropped = self.path.with_name("log.dropped.csv")
        new = not dropped.exists()
        with open(dropped, "a", newline="") as fh:
            if new:
                csv.writer(fh).writerow(rows[0])
            csv.writer(fh).writerows(gone)
        with open(self.path, "w", newline="") as fh:
            csv.writer(fh).writerows([rows[0]] + keep)

    def write(self, row: dict) -> None:
        with open(self.path, "a", newline="") as fh:
            csv.writer(fh).writerow([row.get(k, "") for k in self.fields])


def plot_log(csv_path: Path, png_path: Path, columns: list[str], smooth: int = 50) -> None:
    """Plot smoothed columns of a training log against the step (matplotlib, headless)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    with open(csv_path) as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return
    steps = np.array([float(r["step"]) for r in rows])
    fig, axes = plt.subplots(1, len(columns), figsize=(5 * len(columns), 3.5), squeeze=False)
    for ax, col in zip(axes[0], columns):
        vals = np.array([float(r[col]) if r.get(col) not in (None, "") else np.nan for r in rows])
        keep = np.isfinite(vals)                 # validation columns are filled every N steps only
        x, vals = steps[keep], vals[keep]
        k = max(1, min(smooth, len(vals) // 5 or 1))
        ax.plot(x, vals, alpha=0.25 if k > 1 else 1.0, lw=0.6 if k > 1 else 1.5, marker="" if k > 1 else ".")
        if k > 1 and len(vals) >= k:
            ax.plot(x[k - 1:], np.convolve(vals, np.ones(k) / k, mode="valid"), lw=1.5)
        if col.startswith(("loss", "mse")) and len(vals) and vals.min() > 0:
            ax.set_yscale("log")             # a spike must not flatten the rest of the curve
        ax.set_xlabel("step")
        ax.set_title(col)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


class RunDir:
    """A run folder seen from rank 0: the checkpoint, the wall-clock it accumulates, the plot."""

    def __init__(self, out: Path, rank: int, prev_seconds: float, plot_columns: list[str],
                 segments: list[dict] | None = None, hw: str = "", start_step: int = 0) -> None:
        self.out, self.rank, self.prev_seconds, self.columns = out, rank, prev_seconds, plot_columns
        self.segments, self.hw, self.start_step = segments or [], hw, start_step
        self.t_start = time.time()

    def save(self, state: dict) -> None:
        """Checkpoint ``state`` (plus the total wall-clock and, in its meta, the hardware history)
        and redraw the loss plot; rank 0 only."""
        if self.rank != 0:
            return
        seconds = time.time() - self.t_start
        if "meta" in state:
            state["meta"]["segments"] = extend_segments(self.segments, self.hw, self.start_step, state["step"],
                                                        seconds)
        save_checkpoint(self.out / "checkpoint.pt", {**state, "wall_seconds": self.prev_seconds + seconds})
        plot_log(self.out / "log.csv", self.out / "loss.png", self.columns)

    def finish(self, state: dict, meta: dict) -> int:
        """Last checkpoint, ``meta.json``, and the process group torn down; the exit status."""
        self.save(state)
        if self.rank == 0:
            (self.out / "meta.json").write_text(json.dumps({"dirac_demo_version": __version__, **meta}, indent=2))
        cleanup_distributed()
        return 0


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def prior_segments(prior: dict) -> list[dict]:
    """Training history {hardware, from_step, to_step, hours} of the checkpoint or weights continued.

    Older weights without a history count as one segment of their own facts; {} gives [].
    """
    if prior.get("segments"):
        return [dict(seg) for seg in prior["segments"]]
    if prior.get("steps"):
        return [{"hardware": prior.get("hardware", "unknown"), "from_step": 1, "to_step": int(prior["steps"]),
                 "hours": round(float(prior.get("wall_hours", 0.0)), 3)}]
    return []


def checkpoint_segments(ckpt: dict) -> list[dict]:
    """The training history a resumed checkpoint carries (older checkpoints: one segment)."""
    return prior_segments({"steps": ckpt["step"], "wall_hours": ckpt.get("wall_seconds", 0.0) / 3600,
                           **ckpt.get("meta", {})})


def extend_segments(segments: list[dict], hw: str, start: int, step: int, seconds: float) -> list[dict]:
    """``segments`` plus this run (steps start+1..step on ``hw``), merged into the last when it
    ran on the same hardware and ended where this run began."""
    out = [dict(seg) for seg in segments]
    if step <= start:
        return out
    if out and out[-1]["hardware"] == hw and out[-1]["to_step"] == start:
        out[-1]["to_step"] = step
        out[-1]["hours"] = round(out[-1]["hours"] + seconds / 3600.0, 3)
    else:
        out.append({"hardware": hw, "from_step": start + 1, "to_step": step, "hours": round(seconds / 3600.0, 3)})
    return out


@dataclass
class Progress:
    """Where a run's count starts: the step, the wall-clock already spent, the hardware history."""

    step: int = 0
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)
    schedule: dict | None = None     # the learning-rate line the checkpoint was on (LinearDecay.anchor)

    @classmethod
    def of_facts(cls, facts: dict) -> Progress:
        """Continuing the count of exported weights, from their training facts."""
        return cls(int(facts.get("steps", 0)), 3600.0 * float(facts.get("wall_hours", 0.0)), prior_segments(facts))

    @classmethod
    def of_checkpoint(cls, ckpt: dict) -> Progress:
        return cls(ckpt["step"], ckpt.get("wall_seconds", 0.0), checkpoint_segments(ckpt), ckpt.get("schedule"))


def resume(ckpt: dict, opt: torch.optim.Optimizer, args, rank: int,
           sampler: CropSampler) -> tuple[Progress, np.random.Generator]:
    """Continue a checkpoint: its optimiser state (an explicit ``--lr`` overrides its rate) and its
    count; the crop sampler and the returned generator of random draws restart at its step."""
    opt.load_state_dict(ckpt["opt"])
    if args.lr is not None:
        for g in opt.param_groups:
            g["lr"] = args.lr
    progress = Progress.of_checkpoint(ckpt)
    sampler.rng = np.random.default_rng(args.seed + rank + progress.step)
    return progress, np.random.default_rng(rank_seed(args, rank, progress.step))


def tune_backend(device: torch.device) -> None:
    """cuDNN autotuning and TF32 on CUDA (fixed crop sizes); nothing on CPU."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


class FiniteGuard:
    """Skips a training step whose loss is NaN or infinite; stops the run (without saving over
    the last good checkpoint) after ``patience`` of them in a row."""

    def __init__(self, patience: int = 20) -> None:
        self.patience, self.in_row, self.skipped = patience, 0, 0

    def ok(self, loss: torch.Tensor, step: int) -> bool:
        if bool(torch.isfinite(loss)):
            self.in_row = 0
            return True
        self.in_row += 1
        self.skipped += 1
        print(f"step {step + 1}: non-finite loss, step skipped ({self.skipped} so far)", flush=True)
        if self.in_row >= self.patience:
            raise SystemExit(f"{self.patience} non-finite losses in a row before step {step + 1}; stopped, "
                             "the last checkpoint is kept (lower --lr, or --bf16 off)")
        return False


def add_lr_arguments(p) -> None:
    """The learning-rate flags both trainers share; :class:`LinearDecay` applies them."""
    p.add_argument("--lr", type=float, default=None,
                   help=f"learning rate (default {DEFAULT_LR:g}; on resume, the checkpoint's unless given)")
    p.add_argument("--lr-end", type=float, default=None,
                   help="decay the learning rate linearly to this value at --steps (default: constant)")
    p.add_argument("--warmup", type=int, default=0,
                   help="ramp the learning rate up over this many steps when the optimiser starts fresh "
                        "(from --init or from scratch; a resumed run keeps its Adam state and skips it)")


def add_run_arguments(p, workers: str) -> None:
    """The flags of the run itself both trainers share; ``workers``: what the ``--workers`` processes make."""
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave default)")
    p.add_argument("--workers", type=int, default=0,
                   help=f"background processes making {workers} (0: in-process, step-seeded; use several on a GPU)")
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)


class LinearDecay:
    """``--lr-end``: the learning rate falls linearly from its value when the run starts to
    ``end`` at the last step ``total``; without ``end`` it is left alone. The line's start rides in
    each checkpoint (:attr:`anchor`), so a resumed run with the same ``--lr``, ``--lr-end`` and
    ``--steps`` goes on along the same line wherever it was interrupted; changing any of them
    starts a new line at the resumed step.

    ``--warmup N``: over this run's first N steps the rate is also scaled by (k + 1) / N at its
    k-th step. A continuation from ``--init`` weights starts Adam from a fresh state, whose first
    updates move every parameter by about the full learning rate whatever its gradient; on the
    trained codec three such steps at 2e-5 cost 0.6 dB of held-out PSNR at λ 0.0004. Warm-up
    lets the moment estimates settle first. Only a fresh optimiser needs it: a resumed run
    passes 0."""

    def __init__(self, opt: torch.optim.Optimizer, start_step: int, total: int, end: float | None,
                 warmup: int = 0, resumed: dict | None = None) -> None:
        self.opt, self.start, self.total, self.end, self.warmup = opt, start_step, total, end, warmup
        self.lr0 = opt.param_groups[0]["lr"]
        if resumed is not None and self._same_line(resumed):
            self.lr0, self.start = resumed["lr0"], resumed["start"]

    def _same_line(self, anchor: dict) -> bool:
        return (anchor.get("lr0") == self.lr0 and anchor.get("end") == self.end
                and anchor.get("total") == self.total and "start" in anchor)

    @property
    def anchor(self) -> dict:
        """The line this schedule follows, saved with each checkpoint."""
        return {"lr0": self.lr0, "start": self.start, "end": self.end, "total": self.total}

    def __call__(self, step: int) -> None:
        lr = self.lr0
        if self.end is not None and self.total > self.start:
            lr += (self.end - self.lr0) * min(1.0, max(0.0, (step - self.start) / (self.total - self.start)))
        if self.warmup:
            lr *= min(1.0, (step - self.start + 1) / self.warmup)
        for g in self.opt.param_groups:
            g["lr"] = lr


class Trainer(Protocol):
    """What :meth:`Run.loop` drives: one trainer per process."""

    opt: torch.optim.Optimizer       # the main optimiser (its rate is logged and scheduled)
    meta: dict                       # the run's facts, saved in the checkpoint and meta.json
    progress: Progress               # where the count starts

    def step(self, step: int) -> dict | None:
        """One optimiser step from ``step``: its log columns, or None when it was skipped."""

    def validation(self, step: int) -> dict:
        """The held-out columns of the log after ``step``."""

    def state(self, step: int) -> dict:
        """The checkpoint after ``step``."""


class Run:
    """A training run's bookkeeping: the CSV log (rank 0), Ctrl-C, the learning-rate schedule and
    the run folder, around the steps of a :class:`Trainer`."""

    def __init__(self, args, proc: Process, trainer: Trainer, fields: list[str], plot_columns: list[str],
                 label: str, fresh: bool) -> None:
        """``label``: the hardware of this run's segment; ``fresh``: the optimiser starts anew
        (``--warmup`` applies) rather than from a checkpoint."""
        out, start = Path(args.out), trainer.progress
        self.args, self.trainer, self.start = args, trainer, start.step
        self.log = CsvLog(out / "log.csv", fields, resume_step=start.step) if proc.rank == 0 else None
        self.stopper = Stopper()
        self.decay = LinearDecay(trainer.opt, start.step, args.steps, args.lr_end, args.warmup if fresh else 0,
                                 resumed=None if fresh else start.schedule)
        self.dir = RunDir(out, proc.rank, start.seconds, plot_columns, start.history, label, start.step)

    def loop(self) -> int:
        """Steps up to ``--steps`` (or Ctrl-C), logged, validated every ``--val-every`` and saved every
        ``--save-every`` steps; then the last checkpoint and meta.json. The exit status."""
        args, trainer, step = self.args, self.trainer, self.start
        while step < args.steps and not self.stopper.stop:
            t0 = time.time()
            self.decay(step)
            row = trainer.step(step)
            if row is None:
                continue
            step += 1
            if self.log is not None:
                row = {"step": step, **row, "seconds": f"{time.time() - t0:.3f}",
                       "lr": f"{trainer.opt.param_groups[0]['lr']:.3g}"}
                if step % args.val_every == 0:
                    row.update(trainer.validation(step))
                self.log.write(row)
            if step % args.save_every == 0:
                self.dir.save(self._state(step))
        return self.dir.finish(self._state(step), trainer.meta)

    def _state(self, step: int) -> dict:
        return {**self.trainer.state(step), "schedule": self.decay.anchor}
