"""Speed benchmark of the receiver: ``python -m dirac_demo.eval.benchmark [--sizes 256x256 768x512 1024x1024]``.

For each size (W×H): the latency of one DIRAC step through :meth:`DiracPipeline.enhance` (mean and
standard deviation over ``--repeats`` steps after a warm-up step), the page's live SWD of each of
those steps (:class:`dirac_demo.quality.LiveSWD`, timed on the same step images, its mean and share
of a step: the per-step metric overhead the page adds), the network's GFLOPs per step as
executed (tiles included; ``torch.utils.flop_counter``), the time to the first enhanced frame
(compress + decode + first step, warm and cold) and the peak memory. The same run measures this
machine's fp32 matmul throughput (the median over 30 ``--matmul``² products, half before and half
after the steps, each timed alone after two warm-up products), so a step's cost can be stated in
machine-independent units: effective GFLOP = seconds per step × matmul GFLOP/s (the speed target
is ≤ 80 at 768×512). ``--clients 1 4 16`` also measures several visitors at once: that many
threads share the one pipeline, as the page's queue runs concurrent visitors, and each makes
``--client-runs`` full runs (base + 20 steps at ``--client-size``); the table gives images per
second over all of them and the median seconds a run takes. ``--per-mp 2048x1536`` times the
full-resolution photo path (``dirac-demo enhance``: decode, then tile by tile, :mod:`dirac_demo.large`)
to step 1 and to step 20, in seconds per megapixel. Prints a table; ``--json`` writes::

    {"schema": "dirac_demo.benchmark/1", "dirac_demo_version", "device", "device_name", "precision",
     "threads", "torch", "codec", "params", "matmul": {"n", "gflops", "dtype", "gflops_min", "gflops_max", "products"},
     "results": [{"width", "height", "ms_per_step", "ms_per_step_std", "swd_ms", "swd_share",
                  "gflops_per_step", "effective_gflop", "first_frame_s", "first_frame_cold_s", "peak_mem_mib"}],
     "clients": [{"clients", "width", "height", "steps", "images", "images_per_s", "median_run_s"}],
     "per_megapixel": {"width", "height", "tiles", "steps", "first_step_s", "all_steps_s",
                       "first_step_s_per_mp", "all_steps_s_per_mp"}}
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from .. import __version__
from ..errors import DiracError, InputError, NoModelError
from ..images import LARGE_PIXELS, to_signed
from ..large import default_plan, enhance_tiles
from ..codecs import CODECS
from ..pipeline import DiracPipeline, Frame, RunSettings
from ..quality import LiveSWD
from ..machine import machine_facts
from .pipeline_args import add_pipeline_arguments, load_pipeline, set_threads

SCHEMA = "dirac_demo.benchmark/1"


def parse_size(text: str) -> tuple[int, int]:
    """'768x512' -> (768, 512); '256' -> (256, 256)."""
    try:
        parts = [int(v) for v in text.lower().replace("×", "x").split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 16:
        raise InputError(f"A size is WIDTHxHEIGHT with sides of at least 16 pixels, got {text!r}.")
    return parts[0], parts[1]


def synthetic_image(width: int, height: int, seed: int = 0) -> Image.Image:
    """A deterministic test picture: smooth gradients plus texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([128 + 100 * np.sin(xx / 37.0), 128 + 100 * np.cos(yy / 23.0), (xx + yy) % 256], -1)
    img += rng.normal(0, 12, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_samples(n: int = 2048, repeats: int = 15, device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float32) -> list[float]:
    """Matrix-multiply throughput of this machine in ``dtype`` (fp32 by default), GFLOP/s (2n³ per
    product), one per product.

    Two warm-up products first: the first products of a process run well below the machine's speed.
    """
    device = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    for _ in range(2):
        torch.mm(a, b)
    _sync(device)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        out.append(2.0 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    return out


def step_gflops(pipe: DiracPipeline, codec: str, base: torch.Tensor) -> float:
    """FLOPs of one network evaluation as the pipeline runs it (tiled when large), in GFLOP."""
    xb = to_signed(base).to(pipe.device)
    with FlopCounterMode(display=False) as counter:
        pipe._denoise(pipe.dirac[codec].net, torch.zeros_like(xb), 100, xb)
    return counter.get_total_flops() / 1e9


def _first_frame(pipe: DiracPipeline, img: Image.Image, codec: str) -> float:
    t0 = time.perf_counter()
    for ev in pipe.run(img, demo_settings(pipe, codec, stop=1)):
        if isinstance(ev, Frame) and ev.k == 1:
            break
    _sync(pipe.device)
    return time.perf_counter() - t0


def step_and_swd_seconds(pipe: DiracPipeline, comp, repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of each of ``repeats`` DIRAC steps after a warm-up step, and of the live SWD of each
    step's image against the original (the original's side computed once beforehand, as in a run)."""
    meter = LiveSWD(comp.original)
    meter(comp.base)
    secs, swd_secs = [], []
    for frame in pipe.frames(comp, steps=repeats + 1):
        if frame.k:
            t0 = time.perf_counter()
            meter(frame.image)
            swd_secs.append(time.perf_counter() - t0)
            secs.append(frame.seconds)
    return secs[1:], swd_secs[1:]      # the first step is the warm-up


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # kB on Linux


def bench_size(pipe: DiracPipeline, codec: str, width: int, height: int, repeats: int) -> dict:
    """All measurements at one image size."""
    if pipe.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(pipe.device)
    img = synthetic_image(width, height)
    cold = _first_frame(pipe, img, codec)
    warm = _first_frame(pipe, img, codec)
    comp = pipe.compress(img, codec, pipe.codec(codec).rates.demo)
    secs, swd_secs = step_and_swd_seconds(pipe, comp, repeats)
    return {"width": width, "height": height, "ms_per_step": 1e3 * float(np.mean(secs)),
            "ms_per_step_std": 1e3 * float(np.std(secs)), "swd_ms": 1e3 * float(np.mean(swd_secs)),
            "swd_share": float(np.mean(swd_secs) / np.mean(secs)),
            "gflops_per_step": step_gflops(pipe, codec, comp.base),
            "first_frame_s": warm, "first_frame_cold_s": cold, "peak_mem_mib": _peak_mib(pipe.device)}


def full_run_seconds(pipe: DiracPipeline, img: Image.Image, codec: str, steps: int = 20, seed: int = 0) -> float:
    """Wall time of one full run, the base plus ``steps`` steps, as a visitor waits for it."""
    t0 = time.perf_counter()
    events = list(pipe.run(img, demo_settings(pipe, codec, steps=steps, seed=seed)))
    _sync(pipe.device)
    if not (isinstance(events[-1], Frame) and events[-1].k == steps):
        raise RuntimeError(f"a run ended before its step {steps}")
    return time.perf_counter() - t0


def demo_settings(pipe: DiracPipeline, codec: str, **kw) -> RunSettings:
    """A run of ``codec`` at the rate the page starts at (its table row's ``demo`` rate)."""
    return RunSettings(codec=codec, rate=pipe.codec(codec).rates.demo, **kw)


def clients_throughput(pipe: DiracPipeline, codec: str, clients: int, width: int, height: int,
                       runs: int = 2, steps: int = 20) -> dict:
    """Images per second when ``clients`` visitors run at once: as many threads share ``pipe`` and
    make ``clients × runs`` full runs (base + ``steps`` steps) between them, ``runs`` per seed."""
    img = synthetic_image(width, height)
    full_run_seconds(pipe, img, codec, steps)                    # warm-up
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        walls = list(pool.map(lambda k: full_run_seconds(pipe, img, codec, steps, seed=k // runs),
                              range(clients * runs)))
    total = time.perf_counter() - t0
    return {"clients": clients, "width": width, "height": height, "steps": steps, "images": len(walls),
            "images_per_s": len(walls) / total, "median_run_s": float(np.median(walls))}


def clients_table(rows: list[dict]) -> str:
    """The concurrent-visitors measurement as a plain-text table."""
    lines = [f"{'clients':>7} {'size':>11} {'runs':>5} {'images/s':>9} {'median run s':>13}"]
    lines += [f"{r['clients']:>7} {r['width']:>5}x{r['height']:<5} {r['images']:>5} {r['images_per_s']:>9.2f} "
              f"{r['median_run_s']:>13.2f}" for r in rows]
    return "\n".join(lines)


def per_megapixel(pipe: DiracPipeline, codec: str, width: int, height: int, steps: int = 20) -> dict:
    """Seconds per megapixel of the photo path (decode the file, then tile by tile) to step 1 and
    to step ``steps``, on a synthetic picture coded at the codec's demo rate."""
    data = pipe.compress(synthetic_image(width, height), codec, pipe.codec(codec).rates.demo).bitstream
    seconds = {}
    for stop in (1, steps):
        t0 = time.perf_counter()
        enhance_tiles(pipe, pipe.decode(data, max_pixels=LARGE_PIXELS), stop, steps)
        _sync(pipe.device)
        seconds[stop] = time.perf_counter() - t0
    mp = width * height / 1e6
    return {"width": width, "height": height, "tiles": default_plan(pipe, height, width).count, "steps": steps,
            "first_step_s": seconds[1], "all_steps_s": seconds[steps], "first_step_s_per_mp": seconds[1] / mp,
            "all_steps_s_per_mp": seconds[steps] / mp}


def per_megapixel_line(r: dict) -> str:
    """The photo path's speed in one line."""
    return (f"enhance {r['width']}x{r['height']} ({r['tiles']} tiles): step 1 {r['first_step_s']:.1f} s "
            f"({r['first_step_s_per_mp']:.1f} s/MP), all {r['steps']} steps {r['all_steps_s']:.1f} s "
            f"({r['all_steps_s_per_mp']:.1f} s/MP)")


def run(pipe: DiracPipeline, codec: str, sizes: list[tuple[int, int]], repeats: int, matmul_n: int) -> dict:
    """The benchmark document."""
    samples = matmul_samples(matmul_n, device=pipe.device)
    results = [bench_size(pipe, codec, w, h, repeats) for w, h in sizes]
    samples += matmul_samples(matmul_n, device=pipe.device)     # before and after: drift shows up
    gflops = float(np.median(samples))
    for r in results:
        r["effective_gflop"] = r["ms_per_step"] / 1e3 * gflops
    return {"schema": SCHEMA, "dirac_demo_version": __version__, **machine_facts(pipe.device, pipe.precision),
            "codec": codec, "params": sum(p.numel() for p in pipe.dirac[codec].net.parameters()),
            "matmul": {"n": matmul_n, "gflops": gflops, "dtype": "float32",
                       "gflops_min": float(np.min(samples)), "gflops_max": float(np.max(samples)),
                       "products": len(samples)}, "results": results}


def table(doc: dict) -> str:
    """The benchmark as a plain-text table."""
    lines = [f"device {doc['device']} ({doc['device_name']}), {doc['precision']}, {doc['threads']} threads, "
             f"DIRAC-{doc['codec']} {doc['params'] / 1e6:.1f} M params; "
             f"fp32 matmul {doc['matmul']['n']}²: {doc['matmul']['gflops']:.1f} GFLOP/s",
             f"{'size':>11} {'ms/step':>16} {'SWD ms (share)':>15} {'GFLOP/step':>11} {'eff. GFLOP':>11} "
             f"{'1st frame s':>12} {'cold s':>8} {'peak MiB':>9}"]
    for r in doc["results"]:
        swd = f"{r['swd_ms']:.1f} ({100 * r['swd_share']:.1f} %)" if "swd_ms" in r else "-"
        lines.append(f"{r['width']:>5}x{r['height']:<5} {r['ms_per_step']:>9.1f} ± {r['ms_per_step_std']:<5.1f}"
                     f"{swd:>15} {r['gflops_per_step']:>11.1f} {r['effective_gflop']:>11.1f} "
                     f"{r['first_frame_s']:>12.3f} {r['first_frame_cold_s']:>8.3f} {r['peak_mem_mib']:>9.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dirac_demo.eval.benchmark", description=__doc__.splitlines()[0])
    add_pipeline_arguments(p)
    p.add_argument("--codec", choices=list(CODECS), default=next(iter(CODECS)), help="which base codec's DIRAC model")
    p.add_argument("--sizes", nargs="+", default=["256x256", "768x512", "1024x1024"], help="WIDTHxHEIGHT")
    p.add_argument("--repeats", type=int, default=5, help="timed steps per size (after one warm-up)")
    p.add_argument("--matmul", type=int, default=2048, help="side of the reference matmul")
    p.add_argument("--clients", type=int, nargs="*", default=[],
                   help="also measure this many visitors at once (e.g. 1 4 16): images per second")
    p.add_argument("--client-size", default="768x512", help="WIDTHxHEIGHT of the concurrent visitors' image")
    p.add_argument("--client-runs", type=int, default=2, help="full runs (base + 20 steps) each visitor makes")
    p.add_argument("--per-mp", default=None, metavar="WxH",
                   help="also time the full-resolution photo path at this size to step 1 and step 20 (s/MP)")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    set_threads(args)
    try:
        sizes = [parse_size(s) for s in args.sizes]
        pipe = load_pipeline(args)
        codec = args.codec
        if not pipe.has_model(codec) or codec not in pipe.codec_names():
            raise NoModelError(codec, "give --assets a folder that holds it"
                               + (" and the codec's own weights" if pipe.codec(codec).weights else ""))
        client_size = parse_size(args.client_size)
        if any(n < 1 for n in args.clients) or args.client_runs < 1:
            raise InputError("--clients and --client-runs take positive counts")
        doc = run(pipe, codec, sizes, min(99, max(1, args.repeats)), args.matmul)
        if args.clients:
            doc["clients"] = [clients_throughput(pipe, codec, n, *client_size, runs=args.client_runs)
                              for n in args.clients]
        if args.per_mp:
            doc["per_megapixel"] = per_megapixel(pipe, codec, *parse_size(args.per_mp))
    except DiracError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(doc))
    if args.clients:
        print(clients_table(doc["clients"]))
    if args.per_mp:
        print(per_megapixel_line(doc["per_megapixel"]))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
