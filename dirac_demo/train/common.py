"""Shared training plumbing: distributed setup, resumable checkpoints, CSV loss log, plots.

Works single-process, and multi-process through ``torchrun`` (NCCL on GPUs, gloo on CPUs).
Ctrl-C or SIGTERM saves a checkpoint before leaving.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import time
from pathlib import Path

import torch
import torch.distributed as dist


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
    from ..pipeline import cpu_has_bf16
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
            (self.out / "meta.json").write_text(json.dumps(meta, indent=2))
        cleanup_distributed()
        return 0


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def hardware(device: torch.device) -> str:
    """What a run segment trains on, for the model card (the GPU's name, or the CPU and its cores)."""
    import os
    import platform
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} CPU, {os.cpu_count()} cores"


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
                   help="learning rate (default 2e-4; on resume, the checkpoint's unless given)")
    p.add_argument("--lr-end", type=float, default=None,
                   help="decay the learning rate linearly to this value at --steps (default: constant)")
    p.add_argument("--warmup", type=int, default=0,
                   help="ramp the learning rate up over this many steps when the optimiser starts fresh "
                        "(from --init or from scratch; a resumed run keeps its Adam state and skips it)")


class LinearDecay:
    """``--lr-end``: the learning rate falls linearly from its value when this run (re)starts
    to ``end`` at the last step ``total``; without ``end`` it is left alone.

    ``--warmup N``: over this run's first N steps the rate is also scaled by (k + 1) / N at its
    k-th step. A continuation from ``--init`` weights starts Adam from a fresh state, whose first
    updates move every parameter by about the full learning rate whatever its gradient; on our
    trained codec three such steps at 2e-5 cost 0.6 dB of held-out PSNR at λ 0.0004. Warm-up
    lets the moment estimates settle first. Only a fresh optimiser needs it: a resumed run
    passes 0."""

    def __init__(self, opt: torch.optim.Optimizer, start_step: int, total: int, end: float | None,
                 warmup: int = 0) -> None:
        self.opt, self.start, self.total, self.end, self.warmup = opt, start_step, total, end, warmup
        self.lr0 = opt.param_groups[0]["lr"]

    def __call__(self, step: int) -> None:
        lr = self.lr0
        if self.end is not None and self.total > self.start:
            lr += (self.end - self.lr0) * min(1.0, max(0.0, (step - self.start) / (self.total - self.start)))
        if self.warmup:
            lr *= min(1.0, (step - self.start + 1) / self.warmup)
        for g in self.opt.param_groups:
            g["lr"] = lr
