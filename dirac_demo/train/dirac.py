"""Train the residual diffusion model: ``python -m dirac_demo.train.dirac --data DIR --base jpeg``.

Loss of eq. (1) with w_t = 1 on residuals r0 = x − x̃ (in [−1, 1] units), predict_xstart.
x̃ comes from JPEG at a random quality factor or from the neural codec at a random λ_rate
(eq. 11). Timesteps are drawn mostly from the range the late-start sampler visits
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
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..codecs.neural import sample_lmbda
from .data import CropSampler, JpegPairs, batch_stream, heldout_images, to_tensor
from ..diffusion.schedule import Schedule
from .common import (CsvLog, FiniteGuard, LinearDecay, RunDir, Stopper, add_lr_arguments,
                           checkpoint_segments, hardware, load_checkpoint, prior_segments, setup_distributed,
                           tune_backend, unwrap, use_bf16)
from ..diffusion.unet import ResidualUNet, UNetConfig

DEFAULT_LR = 2e-4
LOG_FIELDS = ["step", "loss", "loss_focus", "seconds", "val_gain_db", "val_gain_last_db", "val_swd_ratio", "lr"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m dirac_demo.train.dirac", description=__doc__)
    p.add_argument("--data", required=True, help="folder of training images (never Kodak)")
    p.add_argument("--base", choices=["jpeg", "neural"], default="jpeg")
    p.add_argument("--codec-weights", default="assets/codec", help="neural codec weights (prefix)")
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
    p.add_argument("--qf-min", type=int, default=5)
    p.add_argument("--qf-max", type=int, default=50)
    p.add_argument("--channels", default="64,128,192,256")
    p.add_argument("--blocks", default="1,2,2,2")
    p.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                   help="bfloat16 autocast (auto: on for CUDA, and for CPUs with AMX/AVX512-BF16)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave default)")
    p.add_argument("--workers", type=int, default=0,
                   help="background processes making crops and JPEG pairs (0: in-process; use several on a GPU)")
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.accum < 1:
        p.error("--accum must be at least 1")
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
        self.codec = None
        self.jpeg = JpegPairs(args.qf_min, args.qf_max)
        if args.base == "neural":
            from ..weights import load_codec
            self.codec = load_codec(args.codec_weights).eval().to(device)

    def __call__(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 crops (or, from a worker stream, their tensors / JPEG pairs) -> (x, x̃) on the device."""
        if isinstance(batch, (tuple, list)):            # a worker already made the JPEG pair
            return batch[0].to(self.device, non_blocking=True), batch[1].to(self.device, non_blocking=True)
        if self.codec is None:
            x, xb = self.jpeg(batch, self.rng)
            return x.to(self.device), xb.to(self.device)
        x = (to_tensor(batch) if isinstance(batch, np.ndarray) else batch).to(self.device, non_blocking=True)
        lmbda = sample_lmbda(float(self.rng.random()))
        with torch.no_grad():
            return x, self.codec.reconstruct(x, lmbda, post=False)   # DIRAC reads g_s's output


@torch.no_grad()
def validate(model: torch.nn.Module, pairs: tuple[torch.Tensor, torch.Tensor], schedule: Schedule,
             autocast) -> tuple[float, float, float]:
    """On held-out crops, 20 late-start steps: the PSNR gain (dB) over the base after the first
    and the last step, and the last step's SWD as a share of the base's (the realism target;
    lower is better; small crops put it closer to 1 than whole images do)."""
    from ..diffusion.sampler import ddim_sample, late_start_noise
    from ..eval.swd import SlicedWasserstein, num_levels
    from ..diffusion.schedule import late_start_timesteps
    x, xb = pairs
    xbs = xb * 2 - 1
    ts = late_start_timesteps(20)
    gen = torch.Generator().manual_seed(0)
    r = late_start_noise(x.shape, int(ts[0]), schedule, gen, device=x.device)

    def denoise(r_t, t):
        with autocast():
            return model(r_t, torch.full((x.shape[0],), t, device=x.device), xbs).float()

    def psnr(a, b):
        return float(10 * torch.log10(1.0 / F.mse_loss(a.clamp(0, 1), b)))

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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rank, world, device = setup_distributed()
    if args.threads:
        torch.set_num_threads(args.threads)
    tune_backend(device)
    torch.manual_seed(args.seed + rank)
    rng = np.random.default_rng(args.seed + 1000 * rank)
    bf16 = use_bf16(args.bf16, device)
    autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)  # noqa: E731

    val_files = heldout_images(args.data)
    sampler = CropSampler(args.data, args.crop, seed=args.seed + rank, exclude=set(val_files))
    val_sampler = CropSampler(args.data, args.crop, seed=12345, include=set(val_files))
    make_pair = PairMaker(args, rng, device)
    val_pairs = make_pair(val_sampler.batch(16))

    cfg = UNetConfig(channels=[int(c) for c in args.channels.split(",")],
                     blocks=[int(b) for b in args.blocks.split(",")])
    out = Path(args.out)
    ckpt = load_checkpoint(out / "checkpoint.pt")
    if ckpt is not None:
        cfg = UNetConfig(**ckpt["config"])
    model = ResidualUNet(cfg).to(device, memory_format=torch.channels_last)
    init_meta = {}
    if ckpt is None and args.init:
        from ..weights import load_dirac
        init = load_dirac(args.init)
        model.load_state_dict(init.net.state_dict())
        init_meta = init.meta.get("training", init.meta)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr if args.lr is not None else DEFAULT_LR)
    # continuing the same model counts on from its steps; another base codec starts a fine-tune at 0
    same = bool(init_meta) and init_meta.get("base") == args.base
    step = int(init_meta.get("steps", 0)) if same else 0
    init_seconds = 3600.0 * float(init_meta.get("wall_hours", 0.0)) if same else 0.0
    history = prior_segments(init_meta) if same else []
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        ema.load_state_dict(ckpt["ema"])
        opt.load_state_dict(ckpt["opt"])
        if args.lr is not None:                 # an explicit --lr overrides the checkpoint's
            for g in opt.param_groups:
                g["lr"] = args.lr
        step = ckpt["step"]
        history = checkpoint_segments(ckpt)
        rng = np.random.default_rng(args.seed + 1000 * rank + step)
        make_pair.rng = rng
        sampler.rng = np.random.default_rng(args.seed + rank + step)
    ddp = model
    if world > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(model)
    schedule = Schedule()
    abar = torch.tensor(schedule.alphas_cumprod, dtype=torch.float32)
    weights = torch.tensor(snr_weights(schedule.alphas_cumprod, args.snr_gamma, args.focus_t, args.focus_p),
                           dtype=torch.float32)
    log = CsvLog(out / "log.csv", LOG_FIELDS, resume_step=step) if rank == 0 else None
    stopper, guard = Stopper(), FiniteGuard()
    meta = {"base": args.base, "qf_range": [args.qf_min, args.qf_max], "crop": args.crop,
            "batch": args.batch * args.accum * world, "lr": opt.param_groups[0]["lr"], "focus_t": args.focus_t,
            "focus_p": args.focus_p, "snr_gamma": args.snr_gamma, "hardware": hardware(device)}
    decay = LinearDecay(opt, step, args.steps, args.lr_end, 0 if ckpt else args.warmup)
    stream = None
    if args.workers:
        stream = batch_stream(sampler, args.batch * args.accum, args.workers, seed=args.seed + 1000 * rank + step,
                              transform=make_pair.jpeg if args.base == "jpeg" else None,
                              pin=device.type == "cuda")
    if init_meta and init_meta.get("base") != args.base:
        meta["init"] = {"from": str(args.init), "base": init_meta.get("base"), "steps": init_meta.get("steps")}
    elif same and "init" in init_meta:          # continuing a fine-tune keeps where it started
        meta["init"] = init_meta["init"]
    if ckpt is not None and "init" in ckpt.get("meta", {}):
        meta["init"] = ckpt["meta"]["init"]

    run = RunDir(out, rank, ckpt.get("wall_seconds", 0.0) if ckpt else init_seconds, ["loss", "loss_focus", "val_gain_db", "val_swd_ratio"],
                  history, meta["hardware"], step)

    def state() -> dict:
        return {"model": unwrap(model).state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                "step": step, "config": cfg.to_dict(), "meta": meta}

    n = args.batch * args.accum              # crops per optimiser step (per process)
    while step < args.steps and not stopper.stop:
        t0 = time.time()
        x, xb = make_pair(next(stream) if stream is not None else sampler.batch(n))
        decay(step)
        r0 = (x - xb) * 2.0          # residual in [−1, 1] units
        xbs = (xb * 2.0 - 1.0).contiguous(memory_format=torch.channels_last)
        t = torch.from_numpy(sample_t(rng, n, args.focus_t, args.focus_p, schedule.num_timesteps))
        a = abar[t].to(device)[:, None, None, None]
        noise = torch.randn_like(r0)
        r_t = (a.sqrt() * r0 + (1 - a).sqrt() * noise).contiguous(memory_format=torch.channels_last)
        w = weights[t].to(device)               # all ones without --snr-gamma
        opt.zero_grad(set_to_none=True)
        errs, ok = [], True
        for k in range(args.accum):
            part = slice(k * args.batch, (k + 1) * args.batch)     # a view: keeps channels_last
            last_part = k == args.accum - 1      # DDP all-reduces the summed gradients once
            with (contextlib.nullcontext() if last_part or world == 1 else ddp.no_sync()):
                with autocast():
                    pred = ddp(r_t[part], t[part].to(device), xbs[part])
                err = (pred.float() - r0[part]).pow(2).mean(dim=(1, 2, 3))
                objective = (w[part] * err).sum() / n
                if not guard.ok(objective, step):
                    ok = False
                    break
                objective.backward()
            errs.append(err.detach())
        if not ok:
            continue
        err = torch.cat(errs)
        loss = err.mean()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), unwrap(model).parameters()):
                pe.lerp_(pm, 1 - args.ema)
        step += 1
        if log is not None:
            row = {"step": step, "loss": f"{loss.item():.6f}", "seconds": f"{time.time() - t0:.3f}",
                   "lr": f"{opt.param_groups[0]['lr']:.3g}"}
            focus = t < args.focus_t
            if focus.any():
                row["loss_focus"] = f"{err[focus.to(device)].mean().item():.6f}"
            if step % args.val_every == 0:
                g1, g20, ratio = validate(ema, val_pairs, schedule, autocast)
                row["val_gain_db"], row["val_gain_last_db"] = f"{g1:.3f}", f"{g20:.3f}"
                row["val_swd_ratio"] = f"{ratio:.4f}"
                print(f"step {step} loss {loss.item():.5f} val gain first {g1:+.3f} dB last {g20:+.3f} dB,"
                      f" last-step SWD {ratio:.3f}x the base's", flush=True)
            log.write(row)
        if step % args.save_every == 0:
            run.save(state())
    return run.finish(state(), meta)


if __name__ == "__main__":
    sys.exit(main())
