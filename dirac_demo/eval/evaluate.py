"""Evaluate base codecs and DIRAC on an image folder: ``python -m dirac_demo.eval.evaluate``.

Examples (the paper's claims, §5.1–5.3)::

    python -m dirac_demo.eval.evaluate --data DIR --codec jpeg --qf 5 10 20 40 --steps 20 --json jpeg.json
    python -m dirac_demo.eval.evaluate --data DIR --codec neural --lmbda 0.0004 0.0016 0.006 0.016 \\
        --threshold-compare --json neural.json
    python -m dirac_demo.eval.evaluate --data DIR --codec jpeg --qf 10 --spacing-compare --json spacing.json
    python -m dirac_demo.eval.evaluate --data DIR --codec webp --quality 10 30 50 70 90 --json webp.json
    python -m dirac_demo.eval.evaluate --data DIR --codec avif --quality 25 30 40 50 60 70 85 --steps 0 --json avif.json
    python -m dirac_demo.eval.evaluate --data DIR --codec avif --quality 25 40 60 --json avif_dirac.json

Every rate point compresses each image to real bytes, decodes the base reconstruction and runs
the residual DDIM sampler exactly as :meth:`DiracPipeline.enhance` does, recording metrics for the
base and for the reported steps (first and last by default), and the curvature of the sampling
trajectory at every step (§5.3, Fig. 7 left). PSNR, MS-SSIM and LPIPS are means over images;
SWD, FID/256 and KID/256 are distances between the set of originals and the set of
reconstructions. WebP is a base-only baseline at Pillow qualities, encoded with the settings
of :mod:`dirac_demo.same_bytes` (the page's same-bytes comparison). AVIF is a base codec
(:mod:`dirac_demo.codecs.avif`): ``--steps 0`` gives AVIF alone, steps need the AVIF+DIRAC model.

JSON schema (``"schema": "dirac_demo.evaluate/1"``)::

    {
      "schema", "dirac_demo_version", "command" (argv), "created" (UTC ISO time), "data" (folder),
      "images" (file names), "device", "device_name", "precision", "threads", "torch", "seed",
      "models": {"codec" | "dirac_jpeg" | "dirac_neural" | "dirac_avif": the weights' JSON facts (training steps…)},
      "swd_config": {levels, resolutions, nhood, patches_per_image, dir_repeats, dirs_per_repeat, seed},
      "swd_floor": {"swd", "swd_levels"}   # originals vs an independent resampling of themselves
      "unavailable": {"lpips" | "fid" | "kid": reason or null},
      "points": [{
        "codec": a name of the codec table (dirac_demo.codecs.CODECS) or "webp", "rate": its rate,
        "rate_param": "qf" | "lmbda" | "quality",
        "variant": "main" | "full_steps" (S = 100, claim 2) | "no_threshold" (claim 3)
                   | "paper_spacing" (the paper's uniform late start instead of the model's own),
        "num_steps": S, "eta": DDIM η (0: deterministic), "threshold": bool,
        "spacing": {"start_scale", "power"} of the late-start steps (null for WebP),
        "clip": θ used to clip r̂0 (1.0 = plain [−1, 1]),
        "bpp": mean bits per pixel of the real .drc file (WebP: the .webp file),
        "bpp_payload": the same without the .drc container (the JPEG or AVIF file / the rANS strings),
        "seconds_compress", "seconds_per_step", "seconds_first_step": means over images,
        "base": METRICS, "steps": [METRICS of each reported step, in order],
        "curvature": [{"step", "t", "angle_deg", "angle_deg_std"}]   # from step 2 on, mean over images
      }]
    }
    METRICS = {"step" (0 = base), "t" (timestep or null), "psnr" (dB, RGB, 8-bit), "ms_ssim" (or null
               below 161 px), "swd" (×10³, mean of levels), "swd_levels", "lpips", "fid", "kid",
               "kid_std"; a null metric comes with "<name>_unavailable": reason}

``--plots DIR`` draws the figures (:mod:`dirac_demo.eval.plots`), ``--report OUT.md`` the Markdown
tables (:mod:`dirac_demo.eval.report`), which also merge several JSON files.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..codecs import CODECS, by_rate_flag
from ..codecs.refine import MAX_REFINE
from ..diffusion.sampler import update_angle
from ..diffusion.schedule import PAPER_SPACING, Spacing
from ..errors import DiracError, InputError, NoModelError, WeightsError
from ..images import MAX_PIXELS, read_rgb_within, pil_to_tensor
from ..pipeline import NUM_RESPACED, Compressed, DiracPipeline, check_eta
from ..quality import bits_per_pixel
from ..same_bytes import CODECS as BASELINE_CODECS, QUALITIES, roundtrip
from ..train.data import list_images
from . import metrics as M
from ..machine import machine_facts
from .pipeline_args import add_pipeline_arguments, load_pipeline, set_threads
from ..swd import DEFAULT_PATCHES, SlicedWasserstein, num_levels

SCHEMA = "dirac_demo.evaluate/1"
BASELINES = {"webp": [5, 10, 20, 30, 50, 70, 90]}   # standard codecs evaluated alone, with their default rates
BASELINE_FLAG = "quality"                            # their rate flag (Pillow's quality)


def rate_param(codec: str) -> str:
    """The rate's flag and JSON name of ``codec``: a base codec's own (qf, quality, lmbda), or a baseline's."""
    return CODECS[codec].rates.flag if codec in CODECS else BASELINE_FLAG


def default_rates(codec: str) -> list[float]:
    return list(CODECS[codec].sweep) if codec in CODECS else BASELINES[codec]


# ---- inputs -------------------------------------------------------------------------------
@dataclass
class PointSpec:
    """One rate point to evaluate: codec, rate, which variant of the sampler."""

    codec: str
    rate: float
    variant: str = "main"
    steps: int = 20
    threshold: bool = True
    eta: float = 0.0
    refine: int = 0       # neural: encoder-side latent refinement iterations (variant "refined")
    spacing: Spacing | None = None   # None: the model's own (variant "paper_spacing": the paper's)


def report_steps(steps: int, every: int | None = None, explicit: list[int] | None = None) -> list[int]:
    """Steps to record metrics at: always the first and the last, every ``every``-th, and ``explicit``."""
    if steps == 0:
        return []
    chosen = {1, steps} | {k for k in (explicit or []) if 1 <= k <= steps}
    if every:
        chosen |= set(range(every, steps + 1, every))
    return sorted(chosen)


# ---- metric accumulation ------------------------------------------------------------------
@dataclass
class _Set:
    """Per-image values of one reconstruction set (the base, or one step)."""

    step: int
    t: int | None
    psnr: list[float] = field(default_factory=list)
    ms_ssim: list[float] = field(default_factory=list)
    lpips: list[float] = field(default_factory=list)
    feats: list[torch.Tensor] = field(default_factory=list)


class Evaluator:
    """Holds the pipeline, the images, the optional metric networks and the reference statistics."""

    def __init__(self, pipe: DiracPipeline | None, files: list[Path], seed: int = 0,
                 swd_patches: int = DEFAULT_PATCHES, use_lpips: bool = True, use_fid: bool = True,
                 device: str | torch.device = "cpu") -> None:
        self.pipe, self.seed = pipe, seed
        self.names = [p.name for p in files]
        self.images = [read_rgb_within(p, pipe.max_pixels if pipe is not None else MAX_PIXELS) for p in files]
        self.originals = [pil_to_tensor(im) for im in self.images]
        min_side = min(min(x.shape[-2:]) for x in self.originals)
        self.swd = SlicedWasserstein(num_levels(min_side), swd_patches, seed=seed, min_side=min_side)
        self.lpips, self.unavailable = None, {}
        self.inception = None
        if use_lpips:
            self.lpips, self.unavailable["lpips"] = M.load_lpips(device)
        else:
            self.unavailable["lpips"] = "disabled with --no-lpips"
        if use_fid:
            self.inception, reason = M.load_inception(device)
        else:
            reason = "disabled with --no-fid"
        if self.inception is not None and M.half_overlapping_crops(self.originals[0]).shape[0] == 0:
            self.inception, reason = None, "images smaller than 256 px give no 256×256 crops"
        self.unavailable["fid"] = self.unavailable["kid"] = reason
        self._reference()

    def _reference(self) -> None:
        self.ref_feats = []
        for i, x in enumerate(self.originals):
            self.swd.add_reference(x, i)
            self.swd.add("floor", x, i)
            if self.inception is not None:
                self.ref_feats.append(M.inception_features(self.inception, M.half_overlapping_crops(x)))
        self.floor = self.swd.distance("floor")
        self.swd.drop("floor")

    def _record(self, s: _Set, key, image: torch.Tensor, i: int) -> None:
        x = self.originals[i]
        s.psnr.append(M.psnr(image, x))
        m = M.ms_ssim(image, x)
        if m is not None:
            s.ms_ssim.append(m)
        if self.lpips is not None:
            s.lpips.append(M.lpips_distance(self.lpips, image, x))
        if self.inception is not None:
            s.feats.append(M.inception_features(self.inception, M.half_overlapping_crops(image)))
        self.swd.add(key, image, i)

    def _summary(self, s: _Set, key) -> dict:
        out = {"step": s.step, "t": s.t, "psnr": float(np.mean(s.psnr)),
               "ms_ssim": float(np.mean(s.ms_ssim)) if len(s.ms_ssim) == len(s.psnr) else None}
        if out["ms_ssim"] is None:
            out["ms_ssim_unavailable"] = "MS-SSIM needs images larger than 160 px a side"
        d = self.swd.distance(key)
        self.swd.drop(key)
        out["swd"], out["swd_levels"] = d.mean, d.levels
        out["lpips"] = float(np.mean(s.lpips)) if s.lpips else None
        fid = kid = kid_std = None
        if s.feats:
            real, fake = torch.cat(self.ref_feats), torch.cat(s.feats)
            fid = M.frechet_distance(real, fake)
            kid, kid_std = M.kernel_inception_distance(real, fake, seed=self.seed)
        out.update(fid=fid, kid=kid, kid_std=kid_std)
        for name in ("lpips", "fid", "kid"):
            if out[name] is None:
                out[f"{name}_unavailable"] = self.unavailable.get(name) or "not computed"
        return out

    def _compress(self, spec: PointSpec, i: int):
        """Image ``i`` through the base codec: its header (None for a baseline), base image, bpp of
        the file and of its payload, and the seconds it took."""
        img = self.images[i]
        t0 = time.perf_counter()
        if spec.codec in BASELINES:
            data, base = roundtrip(spec.codec, img, int(spec.rate))
            bpp = bits_per_pixel(len(data), img.width, img.height)
            return None, base, bpp, bpp, time.perf_counter() - t0
        comp = self.pipe.compress(img, spec.codec, spec.rate, refine=spec.refine)
        payload = sum(len(c) for c in comp.encoded.chunks)
        return comp, comp.base, comp.bpp, bits_per_pixel(payload, img.width, img.height), comp.seconds

    def _enhance(self, spec: PointSpec, comp: Compressed, i: int, index: int,
                 sets: dict[int, _Set], trace: dict) -> None:
        """The run's frames for image ``i``: metrics at the reported steps, angles and times at all."""
        prev = None
        for frame in self.pipe.frames(comp, spec.steps, None, self.seed, spec.threshold, spec.eta, spec.spacing):
            k = frame.k
            if k == 0:
                continue
            trace["t"][k] = frame.t
            trace["seconds"].setdefault(k, []).append(frame.seconds)
            if prev is not None:   # curvature at step k: angle between the updates of k − 1 and k
                trace["angles"].setdefault(k, []).append(update_angle(prev, frame.step))
            prev = frame.step
            if k in sets:
                self._record(sets[k], (index, k), frame.image, i)

    def point(self, spec: PointSpec, index: int, steps_to_report: list[int], bar=None) -> dict:
        """Evaluate one rate point over all images; returns its JSON record."""
        base_set, sets = _Set(0, None), {k: _Set(k, None) for k in steps_to_report}
        trace: dict = {"t": {}, "seconds": {}, "angles": {}}
        bpp, bpp_payload, t_comp, clip = [], [], [], None
        for i in range(len(self.images)):
            comp, base, b, bp, secs = self._compress(spec, i)
            bpp.append(b), bpp_payload.append(bp), t_comp.append(secs)
            self._record(base_set, (index, 0), base, i)
            if spec.steps:
                clip = self.pipe.clip_for(comp.encoded, spec.threshold)
                self._enhance(spec, comp, i, index, sets, trace)
            if bar is not None:
                bar.update(1)
        for k, s in sets.items():
            s.t = trace["t"].get(k)
        seconds = [v for vs in trace["seconds"].values() for v in vs]
        return {"codec": spec.codec, "rate": spec.rate, "rate_param": rate_param(spec.codec),
                "variant": spec.variant, "num_steps": spec.steps, "eta": spec.eta, "refine": spec.refine,
                "threshold": spec.threshold if spec.codec not in BASELINES else None, "clip": clip,
                "spacing": None if spec.codec in BASELINES else
                (spec.spacing or self.pipe.spacing_for(spec.codec)).to_dict(),
                "bpp": float(np.mean(bpp)), "bpp_payload": float(np.mean(bpp_payload)),
                "seconds_compress": float(np.mean(t_comp)),
                "seconds_per_step": float(np.mean(seconds)) if seconds else None,
                "seconds_first_step": float(np.mean(trace["seconds"][1])) if seconds else None,
                "base": self._summary(base_set, (index, 0)),
                "steps": [self._summary(sets[k], (index, k)) for k in steps_to_report],
                "curvature": [{"step": k, "t": trace["t"][k], "angle_deg": float(np.mean(v)),
                               "angle_deg_std": float(np.std(v))} for k, v in sorted(trace["angles"].items())]}

    def run(self, specs: list[PointSpec], every: int | None = None, explicit: list[int] | None = None,
            quiet: bool = False) -> list[dict]:
        """Evaluate every point, with a progress bar over (point, image) on stderr."""
        from tqdm import tqdm
        points = []
        with tqdm(total=len(specs) * len(self.images), unit="img", file=sys.stderr, disable=quiet,
                  dynamic_ncols=True) as bar:
            for n, spec in enumerate(specs):
                bar.set_description(f"{spec.codec} {rate_param(spec.codec)}={spec.rate:g} {spec.variant}")
                points.append(self.point(spec, n, report_steps(spec.steps, every, explicit), bar))
        return points


# ---- command line -------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dirac_demo.eval.evaluate",
                                description="Rate–distortion–perception evaluation of base codecs and DIRAC.")
    p.add_argument("--data", required=True, help="folder of test images (e.g. Kodak)")
    p.add_argument("--codec", choices=[*CODECS, *BASELINES], default=next(iter(CODECS)))
    for flag, (kind, whose) in _rate_flags().items():
        p.add_argument(f"--{flag}", type=kind, nargs="+", help=f"rates of {whose} (default: each codec's sweep)")
    p.add_argument("--steps", type=int, default=20, help="late-start DDIM steps S, at most 100 (0: base only)")
    p.add_argument("--all-steps", action="store_true", help="record metrics after every step")
    p.add_argument("--step-every", type=int, default=None, help="record metrics every K steps")
    p.add_argument("--report-steps", type=int, nargs="+", default=None, help="also record these steps")
    p.add_argument("--full-steps-compare", action="store_true", help="also run S = 100 (claim 2)")
    p.add_argument("--threshold-compare", action="store_true",
                   help="also run without rate-dependent thresholding (claim 3)")
    p.add_argument("--no-threshold", action="store_true", help="disable rate-dependent thresholding")
    p.add_argument("--spacing-compare", action="store_true",
                   help="also run the paper's uniform late-start spacing (where the model has its own)")
    p.add_argument("--eta", type=float, default=0.0,
                   help="DDIM stochasticity in [0, 1] (0: the paper's deterministic sampler)")
    p.add_argument("--refine", type=int, default=0,
                   help="neural: encoder-side latent refinement (SGA) iterations; points get the "
                        "variant 'refined' (default 0: the amortised encoder)")
    p.add_argument("--seed", type=int, default=0, help="sampler noise, SWD patches and directions")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    add_pipeline_arguments(p)
    p.add_argument("--swd-patches", type=int, default=DEFAULT_PATCHES,
                   help=f"7×7 patches per image and level (default {DEFAULT_PATCHES})")
    p.add_argument("--no-lpips", action="store_true")
    p.add_argument("--no-fid", action="store_true", help="skip FID/256 and KID/256")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--plots", default=None, help="write PNG figures into this folder")
    p.add_argument("--report", default=None, help="write Markdown tables here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _rate_flags() -> dict[str, tuple[type, str]]:
    """Each rate flag with its type and the codecs that read it (from the codec table, plus the baselines')."""
    flags = {flag: (int if group[0].rates.integer else float, [c.name for c in group])
             for flag, group in by_rate_flag().items()}
    flags.setdefault(BASELINE_FLAG, (int, []))[1].extend(BASELINES)
    return {flag: (kind, "the " + " and ".join(names) + " codec" + "s" * (len(names) > 1))
            for flag, (kind, names) in flags.items()}


def _specs(args) -> list[PointSpec]:
    own = rate_param(args.codec)
    for flag, (_, whose) in _rate_flags().items():
        if getattr(args, flag) and flag != own:
            raise InputError(f"--{flag} is for {whose}, not {args.codec}.")
    rates = getattr(args, own) or default_rates(args.codec)
    if args.codec in BASELINES and any(r not in QUALITIES for r in rates):
        raise InputError(f"--quality must be in 0..100, got {' '.join(map(str, rates))}.")
    if args.codec in CODECS:
        r = CODECS[args.codec].rates
        for rate in rates:
            r.check(rate, f"--{own}")
    if args.codec in BASELINES:
        if args.full_steps_compare or args.threshold_compare or args.spacing_compare:
            raise InputError(f"{BASELINE_CODECS[args.codec][0]} is a base-only baseline: no DIRAC comparisons.")
        return [PointSpec(args.codec, float(r), steps=0, threshold=False) for r in rates]
    if args.threshold_compare and args.no_threshold:
        raise InputError("--threshold-compare needs thresholding on (drop --no-threshold).")
    if not 0 <= args.steps <= NUM_RESPACED:
        raise InputError(f"--steps must be in 0..{NUM_RESPACED}, got {args.steps}.")
    check_eta(args.eta)
    if args.refine and not CODECS[args.codec].refines:
        raise InputError(f"--refine is for a learned codec; {args.codec} has no latents.")
    if not 0 <= args.refine <= MAX_REFINE:
        raise InputError(f"--refine must be in 0..{MAX_REFINE}, got {args.refine}.")
    if args.refine and (args.full_steps_compare or args.threshold_compare or args.spacing_compare):
        raise InputError("--refine makes its own variant; run the comparisons without it.")
    specs, th, eta = [], not args.no_threshold, args.eta
    main = "refined" if args.refine else "main"
    for r in rates:
        specs.append(PointSpec(args.codec, float(r), main, args.steps, th, eta, args.refine))
        if args.full_steps_compare and args.steps != NUM_RESPACED:
            specs.append(PointSpec(args.codec, float(r), "full_steps", NUM_RESPACED, th, eta))
        if args.threshold_compare:
            specs.append(PointSpec(args.codec, float(r), "no_threshold", args.steps, False, eta))
        if args.spacing_compare:
            specs.append(PointSpec(args.codec, float(r), "paper_spacing", args.steps, th, eta,
                                   spacing=PAPER_SPACING))
    return specs


def _check_models(pipe: DiracPipeline, specs: list[PointSpec]) -> None:
    codec = specs[0].codec
    if codec not in pipe.codec_names():
        raise WeightsError(f"The {codec} codec has no trained weights (assets/{CODECS[codec].weights}).")
    if any(s.steps for s in specs) and not pipe.has_model(codec):
        raise NoModelError(codec, "use --steps 0")
    if any(s.variant == "no_threshold" for s in specs) and not pipe.thresholds(codec):
        raise WeightsError(f"The {codec} DIRAC model has no threshold table, so thresholding on and "
                           "off would be identical; make one with python -m dirac_demo.train.thresholds and "
                           "python -m dirac_demo.train.export table.")
    if any(s.variant == "paper_spacing" for s in specs) and pipe.spacing_for(codec).is_paper:
        raise WeightsError(f"The {codec} DIRAC model already samples with the paper's spacing, so the "
                           "comparison would be identical; set one with python -m dirac_demo.train.export sampler.")


def _models_meta(pipe: DiracPipeline | None) -> dict:
    if pipe is None:
        return {}
    out = {}
    for codec in pipe.codecs.values():
        if codec.weights and getattr(codec, "net", None) is not None:
            out[codec.weights] = {k: v for k, v in getattr(codec.net, "meta", {}).items() if k != "kind"}
    for name, model in pipe.dirac.items():
        out[pipe.codec(name).model] = {k: v for k, v in model.meta.items() if k != "kind"}
    return out


def evaluate(args, argv: list[str]) -> dict:
    """Run the evaluation described by parsed ``args``; returns the JSON document."""
    specs = _specs(args)
    files = list_images(args.data, args.limit)
    pipe = None
    if args.codec not in BASELINES:
        pipe = load_pipeline(args)
        _check_models(pipe, specs)
    device = pipe.device if pipe is not None else torch.device(args.device or "cpu")
    ev = Evaluator(pipe, files, args.seed, args.swd_patches, not args.no_lpips, not args.no_fid, device)
    every = 1 if args.all_steps else args.step_every
    points = ev.run(specs, every, args.report_steps, args.quiet)
    return {"schema": SCHEMA, "dirac_demo_version": __version__,
            "command": ["python", "-m", "dirac_demo.eval.evaluate", *argv],
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "data": str(args.data), "images": ev.names,
            **machine_facts(device, pipe.precision if pipe is not None else None), "seed": args.seed,
            "models": _models_meta(pipe), "swd_config": ev.swd.config(),
            "swd_floor": {"swd": ev.floor.mean, "swd_levels": ev.floor.levels},
            "unavailable": ev.unavailable, "points": points}


def _finite(obj):
    """JSON-safe copy: non-finite floats (PSNR of an exact copy is +inf) become null."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    set_threads(args)
    try:
        doc = evaluate(args, argv)
    except DiracError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(_finite(doc), indent=1, allow_nan=False))
    if args.plots:
        from .plots import render_all
        for path in render_all([doc], args.plots):
            print(f"wrote {path}", file=sys.stderr)
    from .report import render
    text = render([doc])
    if args.report:
        Path(args.report).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
