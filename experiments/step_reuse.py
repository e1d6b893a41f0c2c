"""Can a DDIM step reuse the deep features of an earlier step, saving time without moving the images?

Command: python experiments/step_reuse.py --data DIR --rounds 30 --timings TIMES.json --only-fast
         --stop-at-failure [--codecs jpeg:10 jpeg:30 avif:30 neural:0.0016] [--depth 3 2 1 down]
         [--every 2 3 4 5] [--where all late] [--time-size 768x512]
Answer:  No schedule qualifies. At 768x512 a full step is 142.1 GFLOP and 383 ms; a step reusing
         levels >= 2 / >= 1 / the down path is 99.5 / 41.9 / 64.6 GFLOP and 286 / 154 / 200 ms
         (reusing only the deepest level saves nothing measurable). Only levels >= 1 on all
         steps (N = 2..5: 1.43-1.92x) and the down path every 3rd-5th step (1.45-1.62x) save
         25 %; on the 9 held-out images each leaves the exact path at step 5-13 at JPEG QF 10
         and 30, AVIF 30 and neural 0.0016 (|dPSNR| > 0.1 dB or SWD > 3 % off). Levels >= 2
         every third step stays within both over all 20 steps at JPEG QF 10 but saves 16 %.

DeepCache-style feature reuse (Ma et al. 2023), training-free, on the shipped networks. A full
step runs the whole U-Net and keeps its features; on a reusing step the network recomputes only
the shallow part and takes the rest from the last full step. Depth ``L`` (1 to the deepest level)
reuses level L and every deeper one: the upsampled tensor that enters level L−1's up block is taken
from the cache, so the step computes the stem, the down blocks above L, and the up blocks of
levels below L. Depth ``down`` reuses the whole down path (its output and every skip) and
recomputes only the up path, with the step's own timestep embedding. ``every`` N: after each
full step, N−1 reusing steps. ``all`` reuses from step 2; ``late`` only in the second half of
the traversal (the first half is the exact path).

Every variant is compared with the exact path (the network's own forward, which this script's
forward reproduces bit for bit, checked on one image against ``DiracPipeline.frames``)
on the held-out training images (every 40th file, never Kodak), seed 0, the model's spacing and
threshold, the pipeline's precision (bf16 on a CPU with bf16 support). Per step: the mean PSNR
over the images and the set SWD (``dirac_demo.swd``, 4096 patches) against the originals. A
variant qualifies when every step's mean PSNR stays within 0.1 dB and its SWD within 3 % of the
exact path's, and its 20 steps take at least 25 % less time. FLOPs are the convolutions' and
linear layers' (torch's FlopCounterMode, 2 per multiply-add) at the timing size. The wall time
is one image at the timing size (a centre crop of a held-out image through JPEG QF 10; every
shipped model has the same architecture, so it holds for all four codecs): the sum over the
run's steps of the fastest of ``--rounds`` interleaved steps of each kind (full, or reusing at a depth),
the background training paused by the caller.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's dirac_demo, installed or not
from dirac_demo.diffusion.sampler import Step, ddim_sample, ddim_update, late_start_noise  # noqa: E402
from dirac_demo.diffusion.unet import ResidualUNet, timestep_embedding  # noqa: E402
from dirac_demo.images import from_signed, pad_to_multiple, to_signed  # noqa: E402
from dirac_demo.pipeline import NUM_RESPACED, Compressed, DiracPipeline  # noqa: E402
from dirac_demo.quality import psnr  # noqa: E402
from dirac_demo.swd import SlicedWasserstein, num_levels  # noqa: E402
from dirac_demo.train.data import heldout_images  # noqa: E402

DOWN = "down"          # the depth that reuses the whole down path
PSNR_BOUND, SWD_BOUND, TIME_BOUND = 0.1, 3.0, 25.0


# ---- the network, run from its own submodules with a feature cache ----------------------------
@dataclass
class FeatureCache:
    """What the last full step computed: the up path's input at each level, the down path's output and skips."""

    up: dict[int, torch.Tensor] = field(default_factory=dict)
    bottom: torch.Tensor | None = None
    skips: list[torch.Tensor] = field(default_factory=list)

    def copy(self) -> "FeatureCache":
        """A snapshot (the tensors are shared: no step writes into a cached tensor)."""
        return FeatureCache(dict(self.up), self.bottom, list(self.skips))


def cached_forward(net: ResidualUNet, r_t: torch.Tensor, t: torch.Tensor, x_base: torch.Tensor,
                   cache: FeatureCache | None = None, reuse: int | str | None = None) -> torch.Tensor:
    """``net.forward`` step by step. ``reuse`` None: the full network (recorded into ``cache`` if
    given); depth L: levels L and deeper come from ``cache``; ``DOWN``: the whole down path does."""
    if t.dim() == 0:
        t = t.expand(r_t.shape[0])
    emb = net.time_mlp(timestep_embedding(t, net.config.emb_dim).to(r_t.dtype))
    if reuse == DOWN:
        h, skips = cache.bottom, list(cache.skips)
    else:
        h, skips = _down(net, r_t, x_base, emb, len(net.down_blocks) if reuse is None else reuse)
        if cache is not None and reuse is None:
            cache.bottom, cache.skips = h, list(skips)
    return _up(net, h, skips, emb, cache if reuse is None else None, cache, reuse)


def _down(net: ResidualUNet, r_t: torch.Tensor, x_base: torch.Tensor, emb: torch.Tensor,
          levels: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The stem and the down path through ``levels`` levels: the last level's output and the skips."""
    h = net.stem(F.pixel_unshuffle(torch.cat([r_t, x_base], dim=1), net.config.unshuffle))
    skips = []
    for i in range(levels):
        for block in net.down_blocks[i]:
            h = block(h, emb)
        if i < len(net.downs):
            skips.append(h)
            if i + 1 < levels:
                h = net.downs[i](h)
    return h, skips


def _up(net: ResidualUNet, h: torch.Tensor, skips: list[torch.Tensor], emb: torch.Tensor,
        record: FeatureCache | None, cache: FeatureCache | None, reuse: int | str | None) -> torch.Tensor:
    """The up path from level ``h`` is at; a depth ``reuse`` starts at its cached input instead."""
    depth = len(net.down_blocks)
    for j, (up, block) in enumerate(zip(net.ups, net.up_blocks)):
        level = depth - 1 - j                  # the level h comes from; the block works one above
        if isinstance(reuse, int) and level > reuse:
            continue
        if isinstance(reuse, int) and level == reuse:
            h = cache.up[level]
        else:
            h = F.pixel_shuffle(up(h), 2)
            if record is not None:
                record.up[level] = h
        h = block(torch.cat([h, skips.pop()], dim=1), emb)
    h = net.out(F.silu(net.out_norm(h), inplace=not torch.is_grad_enabled()))
    return F.pixel_shuffle(h, net.config.unshuffle)


# ---- which steps reuse --------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """A reuse schedule: ``depth`` (None = the exact path), every ``every`` steps a full one,
    reusing from 0-based step ``start`` on (0 or 1: all steps after the first)."""

    depth: int | str | None = None
    every: int = 1
    start: int = 0

    @property
    def anchor(self) -> int:
        """The full step the reuse pattern counts from."""
        return max(self.start - 1, 0)

    def reuses(self, i: int) -> bool:
        """Whether 0-based step ``i`` takes its deep features from the cache."""
        return self.depth is not None and i > self.anchor and (i - self.anchor) % self.every != 0

    def name(self, steps: int) -> str:
        if self.depth is None:
            return "exact"
        where = "all" if self.start <= 1 else f"from {self.start + 1}/{steps}"
        depth = "down path" if self.depth == DOWN else f"levels>={self.depth}"
        return f"{depth}, N={self.every}, {where}"


def variants(depths: list, everies: list[int], wheres: list[str], steps: int) -> list[Variant]:
    """The grid: every depth × N × where (``late`` = from the middle step on)."""
    starts = {"all": 0, "late": steps // 2}
    return [Variant(d, n, starts[w]) for d in depths for w in wheres for n in everies]


# ---- the sampler, as DiracPipeline.frames runs it -------------------------------------------
@dataclass
class Resume:
    """An exact path's state before 0-based step ``index``: r_t and the features of step index−1."""

    index: int
    r: torch.Tensor
    cache: FeatureCache


class Denoiser:
    """``DiracPipeline._net`` with :func:`cached_forward`: pad, cast, run, crop; step ``i`` reuses
    as the variant says."""

    def __init__(self, pipe: DiracPipeline, net: ResidualUNet, xb: torch.Tensor, variant: Variant,
                 first: int = 0, cache: FeatureCache | None = None) -> None:
        self.pipe, self.net, self.variant, self.i = pipe, net, variant, first
        self.xp = pad_to_multiple(xb, net.multiple).to(pipe.net_dtype, memory_format=torch.channels_last)
        self.cache = cache or FeatureCache()

    def __call__(self, r: torch.Tensor, t: int) -> torch.Tensor:
        reuse = self.variant.depth if self.variant.reuses(self.i) else None
        self.i += 1
        return self.call(r, t, reuse)

    def call(self, r: torch.Tensor, t: int, reuse: int | str | None) -> torch.Tensor:
        """One network call, reusing at depth ``reuse`` (None: full, recorded into the cache)."""
        h, w = r.shape[-2:]
        rp = pad_to_multiple(r, self.net.multiple).to(self.pipe.net_dtype, memory_format=torch.channels_last)
        tt = torch.full((1,), t, device=r.device, dtype=torch.long)
        with torch.no_grad(), torch.autocast(self.pipe.device.type, dtype=self.pipe.amp_dtype or torch.float32,
                                             enabled=self.pipe.amp_dtype is not None):
            out = cached_forward(self.net, rp, tt, self.xp, self.cache, reuse)
        return out.float()[..., :h, :w]


def conditioning(comp: Compressed) -> torch.Tensor:
    """x̃ in [−1, 1]: the neural codec's image before its post-filter, else the base (as the pipeline)."""
    return to_signed(comp.cond if comp.cond is not None and comp.cond.shape == comp.base.shape else comp.base)


def trajectory(pipe: DiracPipeline, comp: Compressed, variant: Variant, steps: int = 20,
               resume: Resume | None = None) -> Iterator[tuple[Step, torch.Tensor, FeatureCache]]:
    """(Step, image, cache) per DDIM step: seed 0, the model's spacing and threshold; ``resume``
    starts from an exact path's state instead of the late-start noise."""
    model = pipe.dirac[comp.encoded.codec]
    if comp.base.shape[-2] * comp.base.shape[-1] > pipe.tile_above:
        raise SystemExit(f"{comp.encoded.width}x{comp.encoded.height} is tiled by the pipeline; this script runs whole images only.")
    ts = model.spacing.timesteps(steps, NUM_RESPACED, pipe.schedule.num_timesteps)
    gen = torch.Generator().manual_seed(0)
    xb = conditioning(comp).to(pipe.device)
    r = late_start_noise(xb.shape, int(ts[0]), pipe.schedule, gen, pipe.device)
    first, cache = (0, None) if resume is None else (resume.index, resume.cache.copy())
    if resume is not None:
        r, ts = resume.r, ts[resume.index:]
    denoise = Denoiser(pipe, model.net, xb, variant, first, cache)
    for step in ddim_sample(denoise, r, ts, pipe.schedule, clip=pipe.clip_for(comp.encoded), generator=gen):
        step.index += first
        yield step, from_signed(xb + step.r0_hat).clamp(0, 1).cpu(), denoise.cache


def check_against_pipeline(pipe: DiracPipeline, comp: Compressed, steps: int) -> None:
    """Stop unless the exact path here gives the pipeline's own frames, bit for bit."""
    ours = [img for _, img, _ in trajectory(pipe, comp, Variant(), steps)]
    theirs = [frame.image for frame in pipe.frames(comp, steps, seed=0)][1:]
    same = len(ours) == len(theirs) and all(torch.equal(a, b) for a, b in zip(ours, theirs))
    print(f"exact path against DiracPipeline.frames ({steps} steps, one image): "
          f"{'bit-identical' if same else 'DIFFERENT'}", flush=True)
    if not same:
        raise SystemExit("the exact path does not reproduce the pipeline; no comparison is valid")


# ---- quality: PSNR and SWD at every step ---------------------------------------------------------
@dataclass
class Curve:
    """Per 0-based step: the mean PSNR over the images and the set SWD against the originals."""

    psnr: list[float] = field(default_factory=list)
    swd: list[float] = field(default_factory=list)


def new_meter(comps: list[Compressed]) -> SlicedWasserstein:
    """``dirac_demo.swd.swd``'s accumulator with the originals added once (same levels and patches)."""
    side = min(min(c.original.shape[-2:]) for c in comps)
    meter = SlicedWasserstein(num_levels(side), min_side=side)
    for i, c in enumerate(comps):
        meter.add_reference(c.original, i)
    return meter


def measure(pipe: DiracPipeline, comps: list[Compressed], meter: SlicedWasserstein, variant: Variant,
            steps: int, exact: Curve | None = None, resumes: list[Resume] | None = None,
            keep: int | None = None, stop: bool = False) -> tuple[Curve, list[Resume]]:
    """Run every image in lockstep; a resumed run copies the exact curve up to its first step.
    ``keep``: also return each image's state before that 0-based step (for later resumes).
    ``stop``: end at the first step outside the PSNR or SWD bound of ``exact``."""
    curve, states, held = Curve(), [], [None] * len(comps)
    first = resumes[0].index if resumes else 0
    curve.psnr, curve.swd = (exact.psnr[:first], exact.swd[:first]) if first else ([], [])
    runs = [trajectory(pipe, c, variant, steps, resumes[i] if resumes else None) for i, c in enumerate(comps)]
    for frames in zip(*runs):
        for i, ((step, image, cache), c) in enumerate(zip(frames, comps)):
            meter.add("frame", image, i)
            if keep is not None and step.index == keep - 1:
                held[i] = cache.copy()
            if keep is not None and step.index == keep:
                states.append(Resume(keep, step.r_t, held[i]))
        curve.psnr.append(sum(psnr(img, c.original) for (_, img, _), c in zip(frames, comps)) / len(comps))
        curve.swd.append(meter.distance("frame").mean)
        if stop and outside(curve, exact, len(curve.psnr) - 1):
            break
    return curve, states


def outside(curve: Curve, exact: Curve, k: int) -> bool:
    """Whether step ``k`` of ``curve`` leaves the PSNR or SWD bound around the exact path."""
    return abs(curve.psnr[k] - exact.psnr[k]) > PSNR_BOUND or \
        abs(curve.swd[k] - exact.swd[k]) / exact.swd[k] * 100 > SWD_BOUND


# ---- cost: FLOPs and wall time --------------------------------------------------------------------
def step_flops(net: ResidualUNet, height: int, width: int, reuse: int | str | None) -> int:
    """FLOPs of one step at ``height`` × ``width`` (counted on the meta device, nothing computed)."""
    meta = copy.deepcopy(net).to("meta")
    shape = (1, 3, height, width)
    dtype = next(net.parameters()).dtype
    r, x = (pad_to_multiple(torch.zeros(shape, device="meta", dtype=dtype), net.multiple) for _ in range(2))
    cache = FeatureCache()
    with torch.no_grad():
        cached_forward(meta, r, torch.tensor([1], device="meta"), x, cache)
        with FlopCounterMode(display=False) as counter:
            cached_forward(meta, r, torch.tensor([1], device="meta"), x, cache, reuse)
    return counter.get_total_flops()


def run_flops(flops: dict, variant: Variant, steps: int) -> float:
    """Mean FLOPs per step over the run."""
    return sum(flops[variant.depth if variant.reuses(i) else None] for i in range(steps)) / steps


def timed(pipe: DiracPipeline, comp: Compressed, variant: Variant, steps: int) -> float:
    """Seconds for the whole run (network calls and updates)."""
    t0 = time.perf_counter()
    for _ in trajectory(pipe, comp, variant, steps):
        pass
    return time.perf_counter() - t0


def call_seconds(pipe: DiracPipeline, comp: Compressed, depths: list, rounds: int) -> dict:
    """Per kind of step (None: full; else the reuse depth): the fastest of ``rounds`` steps (the
    network call, the DDIM update and the image) at the traversal's middle timestep, the kinds
    interleaved within each round."""
    model = pipe.dirac[comp.encoded.codec]
    xb = conditioning(comp).to(pipe.device)
    ts = model.spacing.timesteps(20, NUM_RESPACED, pipe.schedule.num_timesteps)
    t, t_prev = int(ts[10]), int(ts[11])
    r = late_start_noise(xb.shape, t, pipe.schedule, torch.Generator().manual_seed(0), pipe.device)
    den, best = Denoiser(pipe, model.net, xb, Variant()), {}
    for _ in range(rounds):
        for d in [None, *depths]:
            t0 = time.perf_counter()
            r0 = den.call(r, t, d).clamp(-1, 1)
            ddim_update(r, r0, pipe.schedule.abar(t), pipe.schedule.abar(t_prev))
            from_signed(xb + r0).clamp(0, 1).cpu()
            best[d] = min(best.get(d, float("inf")), time.perf_counter() - t0)
    return best


def timings(pipe: DiracPipeline, comp: Compressed, grid: list[Variant], steps: int,
            rounds: int = 10) -> dict[Variant, float]:
    """Seconds per run: the sum over its steps of the fastest step of each kind (interleaved).
    The machine's two cores are shared with other jobs, whose load makes whole runs vary
    several-fold; the fastest of many short steps stands for the unloaded machine."""
    timed(pipe, comp, Variant(), 2)                      # warm-up: the backend's kernels for these shapes
    calls = call_seconds(pipe, comp, sorted({v.depth for v in grid}, key=str), rounds)
    print("  fastest step: " + ", ".join(f"{'full' if d is None else d} {s * 1e3:.0f} ms" for d, s in calls.items()))
    return {v: sum(calls[v.depth if v.reuses(i) else None] for i in range(steps)) for v in [Variant(), *grid]}


# ---- the run -------------------------------------------------------------------------------------
def saving(seconds: dict, v: Variant) -> float:
    """Per cent of the exact path's wall time that ``v`` saves."""
    return (1 - seconds[v] / seconds[Variant()]) * 100


def table(codec: str, rate: float, grid: list[Variant], curves: dict, flops: dict, seconds: dict,
          steps: int) -> None:
    """One row per variant against the exact path; a variant without a curve was not measured
    for quality because its time saving already rules it out."""
    exact, t0 = curves[Variant()], seconds[Variant()]
    print(f"\n{codec} {rate:g}: exact path {flops[None] / 1e9:.1f} GFLOP/step, {t0:.2f} s per {steps} steps; "
          f"PSNR step 1 {exact.psnr[0]:.2f} -> step {steps} {exact.psnr[-1]:.2f} dB, "
          f"SWD {exact.swd[0]:.2f} -> {exact.swd[-1]:.2f}")
    print(f"{'variant':<30} {'GFLOP/step':>10} {f's/{steps} steps':>12} {'speed-up':>8} "
          f"{'max|dPSNR|':>10} {'max dSWD %':>10} qualifies")
    for v in grid:
        cost = f"{v.name(steps):<30} {run_flops(flops, v, steps) / 1e9:>10.1f} {seconds[v]:>12.2f} {t0 / seconds[v]:>7.2f}x"
        if v not in curves:
            print(f"{cost} {'-':>10} {'-':>10} no (time)", flush=True)
            continue
        dp = max(abs(a - b) for a, b in zip(curves[v].psnr, exact.psnr))
        ds = max(abs(a - b) / b * 100 for a, b in zip(curves[v].swd, exact.swd))
        ok = dp <= PSNR_BOUND and ds <= SWD_BOUND and saving(seconds, v) >= TIME_BOUND
        k = len(curves[v].psnr)
        verdict = "yes" if ok else "no" if k == steps else f"no (stopped at step {k})"
        print(f"{cost} {dp:>10.3f} {ds:>10.2f} {verdict}", flush=True)


def quality(pipe: DiracPipeline, comps: list[Compressed], grid: list[Variant], steps: int,
            stop: bool = False) -> dict:
    """Every variant's curve, the exact path's included; late variants resume from the exact path.
    ``stop``: a variant's run ends at its first step outside the bounds."""
    meter = new_meter(comps)
    late = sorted({v.start for v in grid if v.start > 1})
    keep = late[0] if len(late) == 1 else None
    exact, resumes = measure(pipe, comps, meter, Variant(), steps, keep=keep)
    curves = {Variant(): exact}
    for v in grid:
        t0 = time.perf_counter()
        resumed = resumes if keep is not None and v.start == keep else None
        curves[v], _ = measure(pipe, comps, meter, v, steps, exact, resumed, stop=stop)
        k = len(curves[v].psnr)
        print(f"  {v.name(steps)}: step {k} PSNR {curves[v].psnr[-1]:.2f} (exact {exact.psnr[k - 1]:.2f}), "
              f"SWD {curves[v].swd[-1]:.2f} (exact {exact.swd[k - 1]:.2f}) "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return curves


def parse_codec(text: str) -> tuple[str, float]:
    """``jpeg:10`` -> ("jpeg", 10.0)."""
    try:
        codec, rate = text.split(":")
        return codec, float(rate)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a codec is NAME:RATE, e.g. jpeg:10, got {text!r}") from None


def parse_depth(text: str) -> int | str:
    """A level number (reuse it and everything deeper) or ``down`` (the whole down path)."""
    if text == DOWN:
        return DOWN
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"a depth is a level >= 1 or {DOWN!r}, got {text!r}")


def parse_size(text: str) -> tuple[int, int]:
    """``768x512`` -> (768, 512)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        return w, h
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size is WxH, e.g. 768x512, got {text!r}") from None


def timing_image(pipe: DiracPipeline, data: str, size: tuple[int, int]) -> Compressed:
    """A centre crop at ``size`` of the first held-out image at least that large, through JPEG QF 10."""
    from PIL import Image
    w, h = size
    for f in heldout_images(data):
        img = Image.open(f).convert("RGB")
        if img.size[0] >= w and img.size[1] >= h:
            left, top = (img.size[0] - w) // 2, (img.size[1] - h) // 2
            return pipe.compress(img.crop((left, top, left + w, top + h)), "jpeg", 10)
    raise SystemExit(f"no held-out image is at least {w}x{h}")


def wall_times(pipe: DiracPipeline, args: argparse.Namespace, grid: list[Variant]) -> dict[Variant, float]:
    """The wall times: read from ``args.timings`` when that file exists, else measured (and saved there)."""
    path = Path(args.timings) if args.timings else None
    if path is not None and path.exists():
        saved = json.loads(path.read_text())
        print(f"wall times read from {path} ({saved['note']})")
        return {v: saved["seconds"][v.name(args.steps)] for v in [Variant(), *grid]}
    seconds = timings(pipe, timing_image(pipe, args.data, args.time_size), grid, args.steps, args.rounds)
    if path is not None:
        note = f"{pipe.precision}, {torch.get_num_threads()} threads, {args.time_size[0]}x{args.time_size[1]}"
        path.write_text(json.dumps({"note": note, "seconds": {v.name(args.steps): s for v, s in seconds.items()}},
                                   indent=1))
    return seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="the training folder (its held-out files are used)")
    p.add_argument("--codecs", type=parse_codec, nargs="*",
                   default=[("jpeg", 10.0), ("jpeg", 30.0), ("avif", 30.0), ("neural", 0.0016)])
    p.add_argument("--depth", type=parse_depth, nargs="+", default=[3, 2, 1, DOWN])
    p.add_argument("--every", type=int, nargs="+", default=[2, 3, 4, 5])
    p.add_argument("--where", nargs="+", choices=["all", "late"], default=["all", "late"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--images", type=int, default=None, help="only the first N held-out images (quality)")
    p.add_argument("--time-size", type=parse_size, default=(768, 512), help="the timing image's WxH")
    p.add_argument("--timings", help="a JSON file of wall times: read if it exists, else measured and written")
    p.add_argument("--only-fast", action="store_true",
                   help=f"measure quality only for variants saving at least {TIME_BOUND:g} %% of the time")
    p.add_argument("--rounds", type=int, default=10, help="interleaved timing rounds (the fastest counts)")
    p.add_argument("--stop-at-failure", action="store_true",
                   help="end a variant's run at its first step outside the PSNR or SWD bound")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe = DiracPipeline.from_pretrained()
    grid = variants(args.depth, args.every, args.where, args.steps)
    net = pipe.dirac["jpeg"].net
    depth = len(net.down_blocks)
    if any(isinstance(d, int) and d >= depth for d in args.depth):
        raise SystemExit(f"the shipped network has levels 0..{depth - 1}: a depth is 1..{depth - 1} or {DOWN!r}")
    w, h = args.time_size
    flops = {d: step_flops(net, h, w, d) for d in [None, *args.depth]}
    print(f"{pipe.precision}, {torch.get_num_threads()} threads; GFLOP per step at {w}x{h}: "
          + ", ".join(f"{'exact' if d is None else d}: {f / 1e9:.1f}" for d, f in flops.items()), flush=True)
    seconds = wall_times(pipe, args, grid)
    measured = [v for v in grid if not args.only_fast or saving(seconds, v) >= TIME_BOUND]
    for codec, rate in args.codecs:
        comps = [pipe.compress(str(f), codec, rate) for f in heldout_images(args.data)[:args.images]]
        check_against_pipeline(pipe, comps[0], args.steps)
        print(f"{codec} {rate:g}: {len(comps)} held-out images", flush=True)
        table(codec, rate, grid, quality(pipe, comps, measured, args.steps, args.stop_at_failure), flops, seconds, args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
