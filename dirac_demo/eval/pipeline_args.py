"""The pipeline's command-line flags every evaluation tool shares, and the pipeline they load."""
from __future__ import annotations

import argparse
import torch

from ..pipeline import DiracPipeline


def add_pipeline_arguments(p: argparse.ArgumentParser) -> None:
    """``--assets``, ``--device``, ``--precision`` and ``--threads``: what :func:`load_pipeline` reads."""
    p.add_argument("--assets", default=None, help="weights folder (default: the shipped assets/)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def set_threads(args: argparse.Namespace) -> None:
    """Apply ``--threads`` (torch's own default when not given)."""
    if args.threads:
        torch.set_num_threads(args.threads)


def load_pipeline(args: argparse.Namespace) -> DiracPipeline:
    """The pipeline of ``--assets`` on ``--device`` at ``--precision``."""
    return DiracPipeline.from_pretrained(args.assets, device=args.device, precision=args.precision)
