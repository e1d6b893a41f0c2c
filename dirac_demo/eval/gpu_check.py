"""One check of the CUDA path: ``python -m dirac_demo.eval.gpu_check`` from a checkout.

Runs the ``cuda``-marked tests (``tests/test_cuda.py``: the same events and PSNR within 0.05 dB
of the CPU's fp32 run, ``.drc`` files alike across devices, 4 MP in bounded memory, the app's
``/enhance`` streaming on CUDA), then the benchmark on the GPU at 768×512 and 2048×1536 with the
base plus 20 steps timed, then 1, 4 and 16 visitors at once at 768×512 (images per second, as
``benchmark --clients`` measures them), and prints the tables. The share of the fp16 peak is the
network's GFLOP per step over the seconds per step, against this GPU's own fp16 matmul rate.
Without CUDA it prints "no CUDA" and exits with status 2.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from ..codecs import CODECS
from ..pipeline import DiracPipeline
from .benchmark import (bench_size, clients_table, clients_throughput, full_run_seconds, matmul_samples,
                        synthetic_image)

ROOT = Path(__file__).resolve().parents[2]
SIZES = ((768, 512), (2048, 1536))
CLIENTS = (1, 4, 16)
CODEC = next(iter(CODECS))    # the codec table's first row (JPEG) is the one measured


def run_tests() -> int:
    """The cuda-marked tests' exit status (pytest's), or 4 when this is not a checkout."""
    tests = ROOT / "tests" / "test_cuda.py"
    if not tests.exists():
        print(f"no tests at {tests}: run this from a checkout", file=sys.stderr)
        return 4
    return subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "-s", "-p", "no:warnings",
                           str(tests)], cwd=ROOT).returncode


def warm_full_run_seconds(pipe: DiracPipeline, width: int, height: int) -> float:
    """Wall time of the base plus 20 steps, after a first run that pays for kernel selection."""
    img = synthetic_image(width, height)
    full_run_seconds(pipe, img, CODEC)
    return full_run_seconds(pipe, img, CODEC)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dirac_demo.eval.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--skip-tests", action="store_true", help="the benchmark table only")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA: this check needs a CUDA GPU; the cuda-marked tests skip on this machine")
        return 2
    status = 0 if args.skip_tests else run_tests()
    pipe = DiracPipeline.from_pretrained(device="cuda")
    peak = float(np.median(matmul_samples(8192, 10, "cuda", torch.float16)))
    print(f"\n{torch.cuda.get_device_name()}, {pipe.precision}; fp16 matmul 8192²: {peak / 1e3:.0f} TFLOP/s")
    print(f"{'size':>11} {'ms/step':>8} {'1st frame s':>12} {'base+20 s':>10} {'peak MiB':>9} {'fp16 peak':>10}")
    for w, h in SIZES:
        r = bench_size(pipe, CODEC, w, h, repeats=10)
        share = r["gflops_per_step"] / (r["ms_per_step"] / 1e3) / peak
        print(f"{w:>5}x{h:<5} {r['ms_per_step']:>8.1f} {r['first_frame_s']:>12.3f} "
              f"{warm_full_run_seconds(pipe, w, h):>10.2f} {r['peak_mem_mib']:>9.0f} {100 * share:>9.1f}%")
    print(clients_table([clients_throughput(pipe, CODEC, n, *SIZES[0]) for n in CLIENTS]))
    print(f"cuda tests: {'passed' if status == 0 else f'FAILED (pytest status {status})'}")
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
