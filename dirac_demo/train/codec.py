"""Train the multi-rate neural codec: ``python -m dirac_demo.train.codec --data DIR``.

Rate–distortion loss D + λ_rate·R (D: MSE on [0, 1] RGB, R: bits per pixel) with λ_rate
drawn log-uniformly in [0.0004, 0.016] per batch (eq. 11); the latent-scaling parameters
α_s, β_s (eq. 10) are learnt jointly. CompressAI's auxiliary loss trains the entropy
bottleneck's quantiles with its own optimiser; ``update()`` runs at export.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..codecs.neural import CodecConfig, NeuralCodec, sample_lmbda
from .data import CropSampler, batch_stream, heldout_images, to_tensor
from .common import (CsvLog, FiniteGuard, LinearDecay, RunDir, Stopper, add_lr_arguments,
                           checkpoint_segments, hardware, load_checkpoint, prior_segments, setup_distributed,
                           tune_backend, unwrap, use_bf16)

DEFAULT_LR = 2e-4
LOG_FIELDS = ["step", "lmbda", "loss", "mse", "bpp", "aux", "seconds",
              "val_psnr_lo", "val_bpp_lo", "val_psnr_mid", "val_bpp_mid", "val_psnr_hi", "val_bpp_hi", "lr"]
VAL_LMBDAS = {"lo": 0.016, "mid": 0.0016, "hi": 0.0004}   # low, middle and high rate


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m dirac_demo.train.codec", description=__doc__)
    p.add_argument("--data", required=True, help="folder of training images (never Kodak)")
    p.add_argument("--out", default="runs/codec")
    p.add_argument("--init", default=None, help="start from these codec weights (prefix), e.g. assets/codec")
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--crop", type=int, default=192, help="crop size, a multiple of 64")
    p.add_argument("--batch", type=int, default=4)
    add_lr_arguments(p)
    p.add_argument("--aux-lr", type=float, default=1e-3)
    p.add_argument("--train", choices=["all", "encoder", "post"], default="all",
                   help="encoder: train only the sender's side (g_a, h_a, the latent-scale law) against the "
                        "frozen decoder and entropy models, so files made before still decode; post: train only "
                        "the decoder's post-filter (added to an --init codec without one; everything else frozen, "
                        "so the bitstreams do not change). Both start from --init weights")
    p.add_argument("--post-channels", type=int, default=48,
                   help="--train post on a codec without a post-filter: its width (dirac_demo.codecs.post_filter)")
    p.add_argument("--post-blocks", type=int, default=4, help="... and its number of residual blocks")
    p.add_argument("--N", type=int, default=None, help="transform channels (default 96; with --init: its own)")
    p.add_argument("--M", type=int, default=None, help="latent channels (default 128; with --init: its own)")
    p.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                   help="bf16 autocast for the analysis/synthesis transforms (auto: CUDA or a CPU with bf16 units)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--workers", type=int, default=0,
                   help="background processes making crops (0: in-process, step-seeded; use several on a GPU)")
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def bits_per_pixel(likelihoods, x: torch.Tensor) -> torch.Tensor:
    """−log2 of the likelihood tensors, summed, per pixel of the batch ``x``."""
    n, _, h, w = x.shape
    return sum(torch.log(l).sum() for l in likelihoods) / (-math.log(2) * n * h * w)


def rd_terms(out: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(MSE on [0, 1], bits per pixel) of a forward pass."""
    return F.mse_loss(out["x_hat"], x), bits_per_pixel(out["likelihoods"].values(), x)


@torch.no_grad()
def validate(codec: NeuralCodec, x: torch.Tensor) -> dict:
    """Held-out PSNR and estimated bpp (hard quantisation) at three rates."""
    codec.eval()
    row = {}
    for key, lmbda in VAL_LMBDAS.items():
        out = codec(x, lmbda)
        mse, bpp = rd_terms(out, x)
        row[f"val_psnr_{key}"] = f"{10 * math.log10(1 / mse.item()):.3f}"
        row[f"val_bpp_{key}"] = f"{bpp.item():.4f}"
    codec.train()
    return row


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.crop % NeuralCodec.multiple:
        raise SystemExit(f"--crop must be a multiple of {NeuralCodec.multiple}")
    rank, world, device = setup_distributed()
    if args.threads:
        torch.set_num_threads(args.threads)
    tune_backend(device)
    torch.manual_seed(args.seed + rank)
    rng = np.random.default_rng(args.seed + 1000 * rank)
    val_files = heldout_images(args.data)
    sampler = CropSampler(args.data, args.crop, seed=args.seed + rank, exclude=set(val_files))
    val_x = to_tensor(CropSampler(args.data, args.crop, seed=12345, include=set(val_files)).batch(8)).to(device)

    out = Path(args.out)
    ckpt = load_checkpoint(out / "checkpoint.pt")
    default = CodecConfig()
    cfg = CodecConfig(**ckpt["config"]) if ckpt else CodecConfig(args.N or default.N, args.M or default.M)
    step, init_seconds, history = 0, 0.0, []
    if ckpt is None and args.init:
        from ..weights import load_codec
        init = load_codec(args.init)
        facts = init.meta.get("training", {})
        step = int(facts.get("steps", 0))
        init_seconds = 3600.0 * float(facts.get("wall_hours", 0.0))
        history = prior_segments(facts)
        if args.N not in (None, init.config.N) or args.M not in (None, init.config.M):
            raise SystemExit(f"--init has N={init.config.N}, M={init.config.M}: --N and --M must match it")
        cfg = init.config
        if args.train == "post" and not cfg.post_channels:
            cfg = replace(cfg, post_channels=args.post_channels, post_blocks=args.post_blocks)
    codec = NeuralCodec(cfg).to(device)
    if ckpt is None and args.init:
        missing, unexpected = codec.load_state_dict(init.state_dict(), strict=False)
        if unexpected or not set(missing) <= codec.post_filter_parameter_names():
            raise SystemExit(f"--init weights do not match the codec: missing {missing}, unexpected {unexpected}")
    train_decoder = args.train == "all"     # else the decoder side (entropy models included) stays frozen
    if not train_decoder:
        if ckpt is None and not args.init:
            raise SystemExit(f"--train {args.train} fine-tunes part of a trained codec: give --init (or resume)")
        trained = (codec.encoder_parameter_names() if args.train == "encoder"
                   else codec.post_filter_parameter_names())
        for n, p in codec.named_parameters():
            p.requires_grad_(n in trained)
    main_params = [p for n, p in codec.named_parameters() if p.requires_grad and not n.endswith(".quantiles")]
    aux_params = [p for n, p in codec.named_parameters() if n.endswith(".quantiles")]
    opt = torch.optim.Adam(main_params, lr=args.lr if args.lr is not None else DEFAULT_LR)
    aux_opt = torch.optim.Adam(aux_params, lr=args.aux_lr)
    if ckpt:
        codec.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        aux_opt.load_state_dict(ckpt["aux_opt"])
        if args.lr is not None:                 # an explicit --lr overrides the checkpoint's
            for g in opt.param_groups:
                g["lr"] = args.lr
        step = ckpt["step"]
        history = checkpoint_segments(ckpt)
        rng = np.random.default_rng(args.seed + 1000 * rank + step)
        sampler.rng = np.random.default_rng(args.seed + rank + step)
    bf16 = use_bf16(args.bf16, device)
    ddp = codec
    if world > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(codec, find_unused_parameters=True)
    log = CsvLog(out / "log.csv", LOG_FIELDS, resume_step=step) if rank == 0 else None
    stopper, guard = Stopper(), FiniteGuard()
    meta = {"crop": args.crop, "batch": args.batch * world, "lr": opt.param_groups[0]["lr"], "bf16": bf16,
            "hardware": hardware(device), "trained": args.train}
    decay = LinearDecay(opt, step, args.steps, args.lr_end, 0 if ckpt else args.warmup)
    stream = (batch_stream(sampler, args.batch, args.workers, seed=args.seed + 1000 * rank + step,
                           pin=device.type == "cuda") if args.workers else None)

    segment_label = meta["hardware"] + {"all": "", "encoder": ", encoder only", "post": ", post-filter only"}[args.train]
    run = RunDir(out, rank, ckpt.get("wall_seconds", 0.0) if ckpt else init_seconds, ["loss", "val_psnr_mid", "val_bpp_mid"],
                  history, segment_label, step)

    def state() -> dict:
        return {"model": unwrap(codec).state_dict(), "opt": opt.state_dict(), "aux_opt": aux_opt.state_dict(),
                "step": step, "config": cfg.to_dict(), "meta": meta}

    while step < args.steps and not stopper.stop:
        t0 = time.time()
        x = (next(stream) if stream is not None else to_tensor(sampler.batch(args.batch))).to(device, non_blocking=True)
        decay(step)
        lmbda = sample_lmbda(float(rng.random()))
        res = ddp(x, lmbda, bf16=bf16)
        mse, bpp = rd_terms(res, x)
        loss = mse + lmbda * bpp
        if not guard.ok(loss, step):
            continue
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(main_params, 1.0)
        opt.step()
        aux = unwrap(codec).aux_loss()
        aux_opt.zero_grad(set_to_none=True)
        if train_decoder and torch.isfinite(aux):
            aux.backward()
            aux_opt.step()
        step += 1
        if log is not None:
            row = {"step": step, "lmbda": f"{lmbda:.6f}", "loss": f"{loss.item():.6g}", "mse": f"{mse.item():.6g}",
                   "bpp": f"{bpp.item():.4f}", "aux": f"{aux.item():.2f}", "seconds": f"{time.time() - t0:.3f}", "lr": f"{opt.param_groups[0]['lr']:.3g}"}
            if step % args.val_every == 0:
                row.update(validate(unwrap(codec), val_x))
                print(f"step {step} " + " ".join(f"{k}={v}" for k, v in row.items() if k.startswith("val")),
                      flush=True)
            log.write(row)
        if step % args.save_every == 0:
            run.save(state())
    return run.finish(state(), meta)


if __name__ == "__main__":
    sys.exit(main())
