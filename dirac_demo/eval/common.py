"""What the evaluation tools share: the pipeline's command-line flags and the machine facts of
their JSON documents."""
from __future__ import annotations

import argparse
import platform

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


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what the platform module knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts(device: torch.device, precision: str | None) -> dict:
    """Where a document was measured: device type and name, precision, CPU threads, torch version."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {"device": device.type, "device_name": name, "precision": precision,
            "threads": torch.get_num_threads(), "torch": torch.__version__}
