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
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..codecs.neural import CodecConfig, NeuralCodec, sample_lmbda
from ..machine import hardware
from .runner import (FiniteGuard, Process, Progress, Run, add_lr_arguments, add_run_arguments, crop_samplers,
                     crop_stream, load_checkpoint, mse_psnr, new_adam, rank_seed, resume, start_process,
                     unwrap, use_bf16)
from .data import to_tensor

LOG_FIELDS = ["step", "lmbda", "loss", "mse", "bpp", "aux", "seconds",
              "val_psnr_lo", "val_bpp_lo", "val_psnr_mid", "val_bpp_mid", "val_psnr_hi", "val_bpp_hi", "lr"]
PLOT_COLUMNS = ["loss", "val_psnr_mid", "val_bpp_mid"]
VAL_LMBDAS = {"lo": 0.016, "mid": 0.0016, "hi": 0.0004}   # low, middle and high rate
PART_LABEL = {"all": "", "encoder": ", encoder only", "post": ", post-filter only"}   # --train, in the history


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
    add_run_arguments(p, "crops")
    return p.parse_args(argv)


def estimated_bpp(likelihoods, x: torch.Tensor) -> torch.Tensor:
    """The rate estimate of training: −log2 of the likelihood tensors, summed, per pixel of the
    batch ``x`` (the real files' rate is :func:`dirac_demo.quality.bits_per_pixel`)."""
    n, _, h, w = x.shape
    return sum(torch.log(l).sum() for l in likelihoods) / (-math.log(2) * n * h * w)


def rd_terms(out: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(MSE on [0, 1], estimated bits per pixel) of a forward pass."""
    return F.mse_loss(out["x_hat"], x), estimated_bpp(out["likelihoods"].values(), x)


@torch.no_grad()
def validate(codec: NeuralCodec, x: torch.Tensor) -> dict:
    """Held-out PSNR and estimated bpp (hard quantisation) at three rates."""
    codec.eval()
    row = {}
    for key, lmbda in VAL_LMBDAS.items():
        out = codec(x, lmbda)
        mse, bpp = rd_terms(out, x)
        row[f"val_psnr_{key}"] = f"{mse_psnr(mse):.3f}"
        row[f"val_bpp_{key}"] = f"{bpp.item():.4f}"
    codec.train()
    return row


def initial_config(args: argparse.Namespace, ckpt: dict | None) -> tuple[CodecConfig, NeuralCodec | None, Progress]:
    """What the codec is built from: the checkpoint's configuration, the ``--init`` codec's (a
    post-filter added for ``--train post``) or ``--N``/``--M``; the ``--init`` codec, and its count."""
    if ckpt:
        return CodecConfig(**ckpt["config"]), None, Progress()
    default = CodecConfig()
    if not args.init:
        return CodecConfig(args.N or default.N, args.M or default.M), None, Progress()
    from ..weights import load_codec
    init = load_codec(args.init)
    progress = Progress.of_facts(init.meta.get("training", {}))
    if args.N not in (None, init.config.N) or args.M not in (None, init.config.M):
        raise SystemExit(f"--init has N={init.config.N}, M={init.config.M}: --N and --M must match it")
    cfg = init.config
    if args.train == "post" and not cfg.post_channels:
        cfg = replace(cfg, post_channels=args.post_channels, post_blocks=args.post_blocks)
    return cfg, init, progress


def build_codec(args: argparse.Namespace, ckpt: dict | None,
                device: torch.device) -> tuple[CodecConfig, NeuralCodec, Progress]:
    """The codec on ``device`` with its ``--init`` weights, frozen but for the ``--train`` part."""
    cfg, init, progress = initial_config(args, ckpt)
    codec = NeuralCodec(cfg).to(device)
    if init is not None:
        missing, unexpected = codec.load_state_dict(init.state_dict(), strict=False)
        if unexpected or not set(missing) <= codec.post_filter_parameter_names():
            raise SystemExit(f"--init weights do not match the codec: missing {missing}, unexpected {unexpected}")
    if args.train != "all":     # the decoder side (entropy models included) stays frozen
        if ckpt is None and not args.init:
            raise SystemExit(f"--train {args.train} fine-tunes part of a trained codec: give --init (or resume)")
        trained = (codec.encoder_parameter_names() if args.train == "encoder"
                   else codec.post_filter_parameter_names())
        for n, p in codec.named_parameters():
            p.requires_grad_(n in trained)
    return cfg, codec, progress


class CodecTrainer:
    """One process's codec training: the codec, its two optimisers (the rate–distortion loss; the
    entropy bottleneck's quantiles), the crops and the λ_rate draws."""

    def __init__(self, args: argparse.Namespace, proc: Process, ckpt: dict | None) -> None:
        self.args, self.device = args, proc.device
        self.rng = np.random.default_rng(rank_seed(args, proc.rank))
        self.sampler, val_sampler = crop_samplers(args, proc.rank)
        self.val_x = to_tensor(val_sampler.batch(8)).to(proc.device)
        self.cfg, self.codec, self.progress = build_codec(args, ckpt, proc.device)
        named = list(self.codec.named_parameters())
        self.main_params = [p for n, p in named if p.requires_grad and not n.endswith(".quantiles")]
        self.opt = new_adam(self.main_params, args)
        self.aux_opt = torch.optim.Adam([p for n, p in named if n.endswith(".quantiles")], lr=args.aux_lr)
        if ckpt:
            self.codec.load_state_dict(ckpt["model"])
            self.aux_opt.load_state_dict(ckpt["aux_opt"])
            self.progress, self.rng = resume(ckpt, self.opt, args, proc.rank, self.sampler)
        self.bf16 = use_bf16(args.bf16, proc.device)
        self.ddp = self.codec
        if proc.world > 1:
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.codec, find_unused_parameters=True)
        self.meta = {"crop": args.crop, "batch": args.batch * proc.world, "lr": self.opt.param_groups[0]["lr"],
                     "bf16": self.bf16, "hardware": hardware(proc.device), "trained": args.train}
        self.guard = FiniteGuard()
        self.stream = None    # worker processes' batches, once started (:func:`crop_stream`)

    def step(self, step: int) -> dict | None:
        """One step of D + λ_rate·R at a random λ_rate (eq. 11), then one of the auxiliary loss."""
        args = self.args
        x = next(self.stream) if self.stream is not None else to_tensor(self.sampler.batch(args.batch))
        x = x.to(self.device, non_blocking=True)
        lmbda = sample_lmbda(float(self.rng.random()))
        mse, bpp = rd_terms(self.ddp(x, lmbda, bf16=self.bf16), x)
        loss = mse + lmbda * bpp
        if not self.guard.ok(loss, step):
            return None
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.main_params, 1.0)
        self.opt.step()
        aux = unwrap(self.codec).aux_loss()
        self.aux_opt.zero_grad(set_to_none=True)
        if args.train == "all" and torch.isfinite(aux):
            aux.backward()
            self.aux_opt.step()
        return {"lmbda": f"{lmbda:.6f}", "loss": f"{loss.item():.6g}", "mse": f"{mse.item():.6g}",
                "bpp": f"{bpp.item():.4f}", "aux": f"{aux.item():.2f}"}

    def validation(self, step: int) -> dict:
        row = validate(unwrap(self.codec), self.val_x)
        print(f"step {step} " + " ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        return row

    def state(self, step: int) -> dict:
        return {"model": unwrap(self.codec).state_dict(), "opt": self.opt.state_dict(),
                "aux_opt": self.aux_opt.state_dict(), "step": step, "config": self.cfg.to_dict(), "meta": self.meta}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.crop % NeuralCodec.multiple:
        raise SystemExit(f"--crop must be a multiple of {NeuralCodec.multiple}")
    proc = start_process(args)
    ckpt = load_checkpoint(Path(args.out) / "checkpoint.pt")
    trainer = CodecTrainer(args, proc, ckpt)
    run = Run(args, proc, trainer, LOG_FIELDS, PLOT_COLUMNS, trainer.meta["hardware"] + PART_LABEL[args.train],
              fresh=ckpt is None)
    # workers start after Run, so they inherit its Ctrl-C handler
    trainer.stream = crop_stream(args, trainer.sampler, args.batch, proc, run.start)
    return run.loop()


if __name__ == "__main__":
    sys.exit(main())
