"""Train the residual diffusion model: ``python -m dirac_demo.train.dirac --data DIR --base jpeg``.

Loss of eq. (1) with w_t = 1 on residuals r0 = x − x̃ (in [−1, 1] units), predict_xstart.
x̃ comes from JPEG at a random quality factor, from AVIF at a random quality, or from the
neural codec at a random λ_rate (eq. 11). Timesteps are drawn mostly from the range the late-start sampler visits
(t < ``--focus-t``, 20 of 100 respaced steps), the rest uniformly over 0..999 so full
100-step sampling stays usable.

``--snr-gamma G`` replaces w_t = 1 by Min-SNR-γ weighting (Hang et al. 2023): for an x0
prediction, w_t = min(SNR_t, G) with SNR_t = ᾱ_t / (1 − ᾱ_t), normalised to mean 1 over the t
distribution. It moves weight from high t towards the low-noise steps where fine texture is
kept or removed. The logged ``loss`` stays the unweighted x0 MSE so runs compare.

``--accum K`` makes each optimiser step see K·``--batch`` crops, run through the network
``--batch`` at a time with their gradients summed: the step a K-times larger batch would take
(the same crops, timesteps and noise, up to float rounding), in the memory of the small one.
It lets a CPU or a small GPU take the large-batch steps that fine texture needs.

``--file-cond`` (JPEG) trains a network that also reads each crop's JPEG file: its tables'
scales and its chroma subsampling (:mod:`dirac_demo.diffusion.file_condition`), embedded and
added to the timestep embedding. From ``--init`` weights without it, the new layers start at
zero, so training starts from the same function. ``--train-only file_cond`` (or
``file_cond,time_mlp``) trains those parts alone and keeps the rest frozen.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..codecs.neural import sample_lmbda
from ..diffusion.file_condition import FILE_COND_DIM
from ..diffusion.schedule import Schedule
from ..diffusion.unet import ResidualUNet, UNetConfig
from ..machine import hardware
from .runner import (FiniteGuard, Process, Progress, Run, add_lr_arguments, add_run_arguments, crop_samplers,
                     crop_stream, load_checkpoint, mse_psnr, new_adam, rank_seed, resume, start_process,
                     unwrap, use_bf16)
from ..codecs import CODECS
from .data import JPEG_WRITERS, PAIRS, JpegPairs, to_tensor

LOG_FIELDS = ["step", "loss", "loss_focus", "seconds", "val_gain_db", "val_gain_last_db", "val_swd_ratio", "lr"]
PLOT_COLUMNS = ["loss", "loss_focus", "val_gain_db", "val_swd_ratio"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m dirac_demo.train.dirac", description=__doc__)
    p.add_argument("--data", required=True, help="folder of training images (never Kodak)")
    p.add_argument("--base", choices=list(CODECS), default=next(iter(CODECS)), help="the base codec x̃ comes from")
    p.add_argument("--codec-weights", default=None,
                   help="the base codec's own weights, where it has any (prefix; default assets/<its weights>)")
    p.add_argument("--out", default="runs/dirac_jpeg", help="run folder: checkpoint, log.csv, loss.png")
    p.add_argument("--init", default=None, help="start from these DIRAC weights (prefix or .pt)")
    p.add_argument("--steps", type=int, default=100000, help="stop after this many total steps")
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--batch", type=int, default=8, help="crops per forward pass (per process)")
    p.add_argument("--accum", type=int, default=1,
                   help="forward passes whose gradients make one optimiser step (batch × accum crops)")
    add_lr_arguments(p)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--focus-t", type=int, default=200, help="upper end of the focused t range")
    p.add_argument("--focus-p", type=float, default=0.8, help="share of t drawn below --focus-t")
    p.add_argument("--snr-gamma", type=float, default=None,
                   help="Min-SNR-γ loss weighting, w_t = min(SNR_t, γ) (default: w_t = 1, eq. 1)")
    p.add_argument("--qf-min", type=int, default=5, help="lowest JPEG quality factor (AVIF: quality)")
    p.add_argument("--qf-max", type=int, default=50, help="highest JPEG quality factor (AVIF: quality)")
    p.add_argument("--jpeg-writers", nargs="+", default=["pillow"], choices=JPEG_WRITERS,
                   help="JPEG writers drawn from per crop (default: Pillow's alone; see train.data.jpeg_bytes)")
    p.add_argument("--file-cond", action="store_true",
                   help="condition the network on each JPEG file's table scales and chroma subsampling "
                        "(--base jpeg; layers --init weights lack start at zero)")
    p.add_argument("--train-only", default=None, metavar="PARTS",
                   help="train only these top-level parts of the network, comma-separated (e.g. file_cond or "
                        "file_cond,time_mlp); the rest stays frozen")
    p.add_argument("--channels", default="64,128,192,256")
    p.add_argument("--blocks", default="1,2,2,2")
    p.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                   help="bfloat16 autocast (auto: on for CUDA, and for CPUs with AMX/AVX512-BF16)")
    add_run_arguments(p, "crops and JPEG pairs")
    args = p.parse_args(argv)
    if args.accum < 1:
        p.error("--accum must be at least 1")
    if args.file_cond and PAIRS.get(args.base) is not JpegPairs:
        p.error(f"--file-cond reads JPEG files: it needs --base {JpegPairs.codec}")
    if args.base not in PAIRS and not CODECS[args.base].weights:
        p.error(f"{args.base} has no training pairs: give it a pair maker in train.data.PAIRS")
    if args.train_only is not None:
        args.train_only = [part.strip() for part in args.train_only.split(",") if part.strip()]
        if not args.train_only:
            p.error("--train-only needs at least one part of the network")
    return args


def sample_t(rng: np.random.Generator, n: int, focus_t: int, focus_p: float, T: int) -> np.ndarray:
    focus = rng.random(n) < focus_p
    return np.where(focus, rng.integers(0, focus_t, n), rng.integers(0, T, n))


def snr_weights(abar: np.ndarray, gamma: float | None, focus_t: int, focus_p: float) -> np.ndarray:
    """Per-timestep loss weights: 1 everywhere without ``gamma``; else min(SNR_t, γ), scaled so
    their mean under :func:`sample_t`'s distribution is 1 (the loss keeps its magnitude)."""
    if gamma is None:
        return np.ones_like(abar)
    if not gamma > 0:
        raise ValueError(f"--snr-gamma must be positive, got {gamma}")
    w = np.minimum(abar / (1.0 - abar), gamma)
    mean = focus_p * w[:focus_t].mean() + (1.0 - focus_p) * w.mean()
    return w / mean


class PairMaker:
    """Makes (x, x̃) training pairs in [0, 1] for one base codec."""

    def __init__(self, args: argparse.Namespace, rng: np.random.Generator, device: torch.device) -> None:
        self.args, self.rng, self.device = args, rng, device
        self.codec, self.transform = None, None
        if args.base in PAIRS:            # a codec with plain files: its own encoder makes x̃ per crop
            extra = (tuple(args.jpeg_writers), args.file_cond) if PAIRS[args.base] is JpegPairs else ()
            self.transform = PAIRS[args.base](args.qf_min, args.qf_max, *extra)
        else:                             # a learned codec: its trained network reconstructs x̃
            from ..weights import ASSETS, load_codec
            weights = args.codec_weights or str(ASSETS / CODECS[args.base].weights)
            self.codec = load_codec(weights).eval().to(device)

    def __call__(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """uint8 crops (or, from a worker stream, their tensors / JPEG or AVIF pairs) -> (x, x̃, the
        files' conditioning vectors with ``--file-cond``, else None) on the device."""
        if isinstance(batch, (tuple, list)):            # a worker already made the pair
            return self._on_device(batch)
        if self.codec is None:
            return self._on_device(self.transform(batch, self.rng))
        x = (to_tensor(batch) if isinstance(batch, np.ndarray) else batch).to(self.device, non_blocking=True)
        lmbda = sample_lmbda(float(self.rng.random()))
        with torch.no_grad():
            return x, self.codec.reconstruct(x, lmbda, post=False), None   # DIRAC reads g_s's output

    def _on_device(self, items) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        x, xb, *cond = (t.to(self.device, non_blocking=True) for t in items)
        return x, xb, cond[0] if cond else None


@torch.no_grad()
def validate(model: torch.nn.Module, pairs: tuple[torch.Tensor, ...], schedule: Schedule,
             autocast) -> tuple[float, float, float]:
    """On held-out crops, 20 late-start steps: the PSNR gain (dB) over the base after the first
    and the last step, and the last step's SWD as a share of the base's (the realism target;
    lower is better; small crops put it closer to 1 than whole images do). ``pairs``: (x, x̃)
    or, for a file-conditioned model, (x, x̃, the files' conditioning vectors)."""
    from ..diffusion.sampler import ddim_sample, late_start_noise
    from ..swd import SlicedWasserstein, num_levels
    from ..diffusion.schedule import late_start_timesteps
    x, xb, *cond = pairs
    cond = tuple(c for c in cond if c is not None)       # passed on only when there is one
    xbs = xb * 2 - 1
    ts = late_start_timesteps(20)
    gen = torch.Generator().manual_seed(0)
    r = late_start_noise(x.shape, int(ts[0]), schedule, gen, device=x.device)

    def denoise(r_t, t):
        with autocast():
            return model(r_t, torch.full((x.shape[0],), t, device=x.device), xbs, *cond).float()

    def psnr(a, b):
        return mse_psnr(F.mse_loss(a.clamp(0, 1), b))

    base = psnr(xb, x)
    gains, last = [], xb
    for step in ddim_sample(denoise, r, ts, schedule, clip=1.0):
        if step.index in (0, len(ts) - 1):
            last = ((xbs + step.r0_hat + 1) / 2).clamp(0, 1)
            gains.append(psnr(last, x) - base)
    side = min(x.shape[-2:])
    acc = SlicedWasserstein(num_levels(side), min_side=side)   # the originals' patches once, two sets
    for i, (a, b, c) in enumerate(zip(x.float().cpu(), xb.float().cpu(), last.float().cpu())):
        acc.add_reference(a, i)
        acc.add("base", b, i)
        acc.add("last", c, i)
    return gains[0], gains[-1], acc.distance("last").mean / acc.distance("base").mean


def build_model(args: argparse.Namespace, ckpt: dict | None,
                device: torch.device) -> tuple[UNetConfig, ResidualUNet, dict]:
    """The network on ``device`` (channels-last): the checkpoint's configuration or ``--channels``,
    ``--blocks`` and ``--file-cond``, with the ``--init`` weights and all but the ``--train-only``
    parts frozen; and the ``--init`` model's training facts ({} without)."""
    cfg = UNetConfig(channels=[int(c) for c in args.channels.split(",")],
                     blocks=[int(b) for b in args.blocks.split(",")],
                     file_cond=FILE_COND_DIM if args.file_cond else 0)
    if ckpt is not None:
        cfg = UNetConfig(**ckpt["config"])
        if bool(cfg.file_cond) != args.file_cond:
            raise SystemExit(f"the checkpoint in {args.out} was trained {'with' if cfg.file_cond else 'without'} "
                             "--file-cond: resume it the same way")
    model = ResidualUNet(cfg).to(device, memory_format=torch.channels_last)
    init_meta = {}
    if ckpt is None and args.init:
        from ..weights import load_dirac
        init = load_dirac(args.init)
        load_init(model, init.net.state_dict(), args.init)
        init_meta = init.meta.get("training", init.meta)
    if args.train_only:
        if ckpt is None and not args.init:
            raise SystemExit("--train-only fine-tunes part of a trained network: give --init (or resume)")
        freeze_all_but(model, args.train_only)
    return cfg, model, init_meta


def load_init(model: ResidualUNet, state: dict, where: str) -> None:
    """``--init`` weights into ``model``: every tensor they hold; only the file-conditioning layers
    may be missing (an unconditioned model continued with ``--file-cond``), keeping their zero start."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise SystemExit(f"--init {where} is file-conditioned: add --file-cond" if
                         any(k.startswith("file_cond.") for k in unexpected) else
                         f"--init {where} does not match the network: unexpected {unexpected[:3]}")
    if any(not k.startswith("file_cond.") for k in missing):
        raise SystemExit(f"--init {where} does not match the network: missing {missing[:3]}")


def freeze_all_but(model: ResidualUNet, parts: list[str]) -> None:
    """``--train-only``: gradients for the named top-level modules of ``model`` only."""
    names = [name for name, _ in model.named_children()]
    unknown = [part for part in parts if part not in names]
    if unknown:
        raise SystemExit(f"--train-only: no part {unknown[0]!r} in this network; its parts are {', '.join(names)}")
    for name, module in model.named_children():
        module.requires_grad_(name in parts)


def started_from(args: argparse.Namespace, init_meta: dict, ckpt: dict | None) -> dict | None:
    """Where a fine-tune started (the run's "init" fact): an ``--init`` model of another base codec;
    kept when a fine-tune is continued from its weights or resumed from its checkpoint."""
    if ckpt is not None:
        return ckpt.get("meta", {}).get("init")
    if init_meta and init_meta.get("base") != args.base:
        return {"from": str(args.init), "base": init_meta.get("base"), "steps": init_meta.get("steps")}
    return init_meta.get("init")


class DiracTrainer:
    """One process's diffusion training: the network and its EMA, the optimiser, the (x, x̃) pairs,
    the timestep draws and their loss weights."""

    def __init__(self, args: argparse.Namespace, proc: Process, ckpt: dict | None) -> None:
        self.args, self.device, self.world = args, proc.device, proc.world
        self.rng = np.random.default_rng(rank_seed(args, proc.rank))
        self.bf16 = use_bf16(args.bf16, proc.device)
        self.sampler, val_sampler = crop_samplers(args, proc.rank)
        self.pairs = PairMaker(args, self.rng, proc.device)
        self.val_pairs = self.pairs(val_sampler.batch(16))
        self.cfg, self.model, init_meta = build_model(args, ckpt, proc.device)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.opt = new_adam([q for q in self.model.parameters() if q.requires_grad], args)
        # continuing the same model counts on from its steps; another base codec starts a fine-tune at 0
        same = bool(init_meta) and init_meta.get("base") == args.base
        self.progress = Progress.of_facts(init_meta) if same else Progress()
        if ckpt is not None:
            self.model.load_state_dict(ckpt["model"])
            self.ema.load_state_dict(ckpt["ema"])
            self.progress, self.rng = resume(ckpt, self.opt, args, proc.rank, self.sampler)
            self.pairs.rng = self.rng
        self.ddp = self.model if proc.world == 1 else torch.nn.parallel.DistributedDataParallel(self.model)
        self.schedule = Schedule()
        self.abar = torch.tensor(self.schedule.alphas_cumprod, dtype=torch.float32)
        self.weights = torch.tensor(snr_weights(self.schedule.alphas_cumprod, args.snr_gamma, args.focus_t,
                                                args.focus_p), dtype=torch.float32)
        self.meta = {"base": args.base, "qf_range": [args.qf_min, args.qf_max], "jpeg_writers": args.jpeg_writers,
                     "crop": args.crop, "batch": args.batch * args.accum * proc.world, "lr": self.opt.param_groups[0]["lr"],
                     "focus_t": args.focus_t, "focus_p": args.focus_p, "snr_gamma": args.snr_gamma,
                     "hardware": hardware(proc.device)}
        if args.train_only:
            self.meta["train_only"] = args.train_only
        if (init := started_from(args, init_meta, ckpt)) is not None:
            self.meta["init"] = init
        self.guard, self.loss = FiniteGuard(), None
        self.stream = None    # worker processes' batches, once started (:func:`crop_stream`)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def step(self, step: int) -> dict | None:
        """One optimiser step on ``--batch`` × ``--accum`` noised residuals, then the EMA update."""
        args, n = self.args, self.args.batch * self.args.accum     # crops per optimiser step (per process)
        x, xb, cond = self.pairs(next(self.stream) if self.stream is not None else self.sampler.batch(n))
        r0 = (x - xb) * 2.0          # residual in [−1, 1] units
        xbs = (xb * 2.0 - 1.0).contiguous(memory_format=torch.channels_last)
        t = torch.from_numpy(sample_t(self.rng, n, args.focus_t, args.focus_p, self.schedule.num_timesteps))
        a = self.abar[t].to(self.device)[:, None, None, None]
        noise = torch.randn_like(r0)
        r_t = (a.sqrt() * r0 + (1 - a).sqrt() * noise).contiguous(memory_format=torch.channels_last)
        err = self.backward(r0, xbs, r_t, t, step, cond)
        if err is None:
            return None
        self.loss = err.mean()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        with torch.no_grad():
            for pe, pm in zip(self.ema.parameters(), unwrap(self.model).parameters()):
                pe.lerp_(pm, 1 - args.ema)
        row = {"loss": f"{self.loss.item():.6f}"}
        focus = t < args.focus_t
        if focus.any():
            row["loss_focus"] = f"{err[focus.to(self.device)].mean().item():.6f}"
        return row

    def backward(self, r0: torch.Tensor, xbs: torch.Tensor, r_t: torch.Tensor, t: torch.Tensor,
                 step: int, cond: torch.Tensor | None = None) -> torch.Tensor | None:
        """Gradients of the w_t-weighted x0 loss (eq. 1), summed over ``--accum`` passes of ``--batch``
        crops (``cond``: their files' vectors with ``--file-cond``); the per-crop x0 errors, or None
        when a pass's loss is not finite (step skipped)."""
        args, n = self.args, self.args.batch * self.args.accum
        w = self.weights[t].to(self.device)               # all ones without --snr-gamma
        self.opt.zero_grad(set_to_none=True)
        errs = []
        for k in range(args.accum):
            part = slice(k * args.batch, (k + 1) * args.batch)     # a view: keeps channels_last
            last_part = k == args.accum - 1      # DDP all-reduces the summed gradients once
            with (contextlib.nullcontext() if last_part or self.world == 1 else self.ddp.no_sync()):
                with self.autocast():
                    extra = () if cond is None else (cond[part],)
                    pred = self.ddp(r_t[part], t[part].to(self.device), xbs[part], *extra)
                err = (pred.float() - r0[part]).pow(2).mean(dim=(1, 2, 3))
                objective = (w[part] * err).sum() / n
                if not self.guard.ok(objective, step):
                    return None
                objective.backward()
            errs.append(err.detach())
        return torch.cat(errs)

    def validation(self, step: int) -> dict:
        g1, g20, ratio = validate(self.ema, self.val_pairs, self.schedule, self.autocast)
        print(f"step {step} loss {self.loss.item():.5f} val gain first {g1:+.3f} dB last {g20:+.3f} dB,"
              f" last-step SWD {ratio:.3f}x the base's", flush=True)
        return {"val_gain_db": f"{g1:.3f}", "val_gain_last_db": f"{g20:.3f}", "val_swd_ratio": f"{ratio:.4f}"}

    def state(self, step: int) -> dict:
        return {"model": unwrap(self.model).state_dict(), "ema": self.ema.state_dict(), "opt": self.opt.state_dict(),
                "step": step, "config": self.cfg.to_dict(), "meta": self.meta}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    proc = start_process(args)
    ckpt = load_checkpoint(Path(args.out) / "checkpoint.pt")
    trainer = DiracTrainer(args, proc, ckpt)
    run = Run(args, proc, trainer, LOG_FIELDS, PLOT_COLUMNS, trainer.meta["hardware"], fresh=ckpt is None)
    # workers start after Run, so they inherit its Ctrl-C handler
    trainer.stream = crop_stream(args, trainer.sampler, args.batch * args.accum, proc, run.start,
                                 transform=trainer.pairs.transform)
    return run.loop()


if __name__ == "__main__":
    sys.exit(main())
