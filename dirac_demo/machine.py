"""The machine's facts, read in one place: the CPU's name and bf16 support, the label of the device
the network runs on, and the hardware a training run or a measurement names."""
from __future__ import annotations

import os
import platform

import torch


def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return fh.read()
    except OSError:
        return ""


def cpu_has_bf16() -> bool:
    """True on CPUs with AMX-BF16 or AVX512-BF16, where bf16 pays off."""
    flags = _cpuinfo()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what the platform module knows."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
    return platform.processor() or platform.machine()


def device_label(device: torch.device, precision: str) -> str:
    """Where the diffusion network runs, e.g. 'GPU (NVIDIA H100, fp16)' or 'CPU (fp32)'."""
    if device.type == "cuda":
        return f"GPU ({torch.cuda.get_device_name(device)}, {precision})"
    return f"{device.type.upper()} ({precision})"


def hardware(device: torch.device) -> str:
    """What a training run segment runs on, for the model card (the GPU's name, or the CPU and its cores)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} CPU, {os.cpu_count()} cores"


def machine_facts(device: torch.device, precision: str | None) -> dict:
    """Where a document was measured: device type and name, precision, CPU threads, torch version."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {"device": device.type, "device_name": name, "precision": precision,
            "threads": torch.get_num_threads(), "torch": torch.__version__}
