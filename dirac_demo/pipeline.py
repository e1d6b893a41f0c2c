"""The DIRAC pipeline: base codec -> real bytes -> base reconstruction -> residual DDIM steps.

:class:`DiracPipeline` owns device, dtype and models. :meth:`DiracPipeline.run` is a generator of
events: one :class:`Compressed` header (the real bytes, the base reconstruction and the
original), then one :class:`Frame` per output, the base reconstruction as frame 0 and DDIM step k
as frame k. :meth:`DiracPipeline.run_bitstream` does the receiver's side from a file, with the
same events. Metrics are not the pipeline's job: :func:`dirac_demo.quality.with_metrics` wraps
any event stream and fills each frame's PSNR, MS-SSIM and live SWD against the original. The
page, the command line, the evaluation and the benchmark consume these events.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator, Union

import torch

from . import codecs
from .codecs import CODECS, BaseCodec, Encoded
from .diffusion.file_condition import jpeg_condition
from .diffusion.sampler import Step, ddim_sample, late_start_noise, nearest_threshold
from .diffusion.schedule import Schedule, Spacing
from .errors import BitstreamError, InputError, NoModelError, TooLargeError
from .images import (LARGE_PIXELS, MAX_PIXELS, ImageLike, fit_pixels, from_signed, pad_to_multiple, pil_to_tensor,
                     read_rgb, to_signed)
from .machine import cpu_has_bf16, device_label
from .protect import file_mask, pack_mask, read_mask
from .quality import bits_per_pixel
from .diffusion.tiles import tiled
from .weights import DiracModel, load_models
from .window import Window

NUM_RESPACED = 100


@dataclass
class RunSettings:
    """What one run does: the base codec and its rate (None: the codec's default), S steps and
    where to stop (K, default S), the seed, rate-dependent thresholding, DDIM η, the neural
    codec's encoder-side refinement, downscaling of a too-large input, a protect mask
    (:mod:`.protect`) that travels in the file, and on the receiver's side the full-resolution
    :class:`~.window.Window` of a file over the pixel limit to enhance."""

    codec: str = field(default_factory=lambda: next(iter(CODECS)))
    rate: float | None = None
    steps: int = 20
    stop: int | None = None
    seed: int = 0
    threshold: bool = True
    eta: float = 0.0
    refine: int = 0
    downscale: bool = False
    protect: ImageLike | None = None
    window: Window | None = None

    def last_step(self) -> int:
        """K after checking S, K and η (:func:`check_run`)."""
        return check_run(self.steps, self.stop, self.eta)


@dataclass
class Compressed:
    """The header of a run: the real bitstream, the base reconstruction and, on the sender's side,
    the original it was made from."""

    bitstream: bytes
    encoded: Encoded
    base: torch.Tensor            # (1, 3, H, W) in [0, 1]
    seconds: float
    original: torch.Tensor | None = None   # the sender's input as coded (after any downscale)
    source_size: tuple[int, int] | None = None   # (width, height) of an input downscaled to fit; else None
    cond: torch.Tensor | None = None      # the image DIRAC is conditioned on, where the codec has one
    window: Window | None = None          # the part of the file decoded at full size (base, cond), if not all

    @property
    def nbytes(self) -> int:
        return len(self.bitstream)

    @property
    def start(self) -> torch.Tensor:
        """The image DIRAC is conditioned on: ``cond`` where the codec has one of the base's shape, else the base."""
        return self.cond if self.cond is not None and self.cond.shape == self.base.shape else self.base

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the base: the file's, or its window's."""
        return self.base.shape[-1], self.base.shape[-2]

    def protect_mask(self, src: ImageLike | None = None):
        """The protect mask over the base, (H, W) bool, or None: the mask image ``src`` (read at the
        file's size), else the file's own; for a window, its part of the mask."""
        enc = self.encoded
        mask = read_mask(src, enc.width, enc.height) if src is not None else file_mask(enc)
        return self.window.crop(mask) if mask is not None and self.window is not None else mask

    @property
    def bpp(self) -> float:
        """Bits per pixel from the real file size."""
        return bits_per_pixel(self.nbytes, self.encoded.width, self.encoded.height)


@dataclass
class Frame:
    """One output of a run: the base reconstruction (k = 0) or x̃ + r̂0(t_k) after DDIM step k of
    ``total``; metrics stay None until :func:`~dirac_demo.quality.with_metrics` fills them."""

    k: int
    total: int
    t: int | None                 # the step's timestep (None for the base)
    image: torch.Tensor           # (1, 3, H, W) in [0, 1], on the CPU
    seconds: float                # the decode (k = 0) or the network call and the update
    psnr: float | None = None
    ms_ssim: float | None = None
    swd: float | None = None      # live SWD against the original
    step: Step | None = None      # the sampler's step (r_t and r̂0), for measures of the trajectory


Event = Union[Compressed, Frame]


class DiracPipeline:
    """Base codecs plus residual diffusion models, on one device."""

    def __init__(self, codecs_: dict[str, BaseCodec] | None = None, dirac: dict[str, DiracModel] | None = None,
                 device: str | torch.device | None = None, precision: str = "auto", tile: int = 544,
                 tile_overlap: int = 32, tile_above: int = 1_572_864, max_pixels: int = MAX_PIXELS) -> None:
        """``codecs_``: the base codecs by name (default: the table's rows as registered; a codec with
        weights runs once :meth:`from_pretrained` binds them); ``dirac``: the DIRAC models by codec."""
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if precision == "auto":
            precision = "fp16" if self.device.type == "cuda" else ("bf16" if cpu_has_bf16() else "fp32")
        self.precision = precision
        amp_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        # On CPU, bf16 runs with bf16 weights and activations throughout instead of autocast:
        # autocast keeps GroupNorm, SiLU and the residual stream in fp32, and that memory
        # traffic is a third of a step. fp16 (CUDA) stays under autocast, which guards overflow.
        self.cast_net = amp_dtype is torch.bfloat16 and self.device.type == "cpu"
        self.net_dtype = torch.bfloat16 if self.cast_net else torch.float32
        self.amp_dtype = None if self.cast_net else amp_dtype
        self.codecs = dict(CODECS) if codecs_ is None else dict(codecs_)
        self.dirac = {}
        for name, model in (dirac or {}).items():
            model.net = model.net.eval().to(self.device, self.net_dtype, memory_format=torch.channels_last)
            self.dirac[name] = model
        self.schedule = Schedule()
        self.tile, self.tile_overlap, self.max_pixels = tile, tile_overlap, max_pixels
        self.tile_above = tile_above    # whole images up to 1.5 MP; overlapping tiles above (memory)

    @classmethod
    def from_pretrained(cls, assets: str | None = None, hub_repo: str | None = None, **kwargs) -> "DiracPipeline":
        """Every codec of the table with its weights, and every DIRAC model that exists in
        ``assets/`` (or the Hub repo); missing weights leave that part absent."""
        return cls(*load_models(CODECS, assets, hub_repo), **kwargs)

    # ---- what this pipeline holds ---------------------------------------------------------
    def codec(self, name: str) -> BaseCodec:
        """The base codec ``name``; InputError for a name that is not in the table."""
        if name not in self.codecs:
            raise InputError(f"Unknown codec {name!r}: use {', '.join(repr(n) for n in self.codecs)}.")
        return self.codecs[name]

    def codec_names(self) -> list[str]:
        """The codecs that can encode here: all but those whose weights are missing."""
        return [n for n, c in self.codecs.items() if not c.weights or getattr(c, "net", None) is not None]

    def has_model(self, codec: str) -> bool:
        """Whether a trained DIRAC model for ``codec`` is loaded."""
        return codec in self.dirac

    def thresholds(self, codec: str) -> dict[float, float] | None:
        """The DIRAC model's threshold table θ(rate) for ``codec`` (None without a model or table)."""
        model = self.dirac.get(codec)
        return model.thresholds if model is not None else None

    def describe(self) -> dict:
        """Where the network runs and what is loaded: device label, precision, codecs, models."""
        return {"device": device_label(self.device, self.precision), "precision": self.precision,
                "codecs": self.codec_names(),
                "models": {n: {"thresholds": bool(m.thresholds), "spacing": m.spacing.to_dict(),
                               "steps": m.meta.get("training", {}).get("steps")} for n, m in self.dirac.items()},
                "max_pixels": self.max_pixels}

    # ---- the base codec -----------------------------------------------------------------
    def compress(self, image: ImageLike, codec: str, rate: float | None = None, downscale: bool = False,
                 refine: int = 0, callback=None, protect: ImageLike | None = None) -> Compressed:
        """Encode an image: the :class:`Compressed` header, holding the original it was made from.

        ``rate``: the codec's rate (None: its default). ``downscale``: shrink an image over
        ``max_pixels`` to fit (the header's ``source_size`` keeps its size) instead of refusing
        it. ``refine``: encoder-side latent refinement iterations (the neural codec, :mod:`.refine`);
        ``callback(i, n)`` reports them. ``protect``: a mask image (:func:`.protect.read_mask`)
        whose regions the receiver keeps at a fidelity step; it travels in the file
        (:func:`.protect.pack_mask`) and its bytes count in the rate.
        """
        t0 = time.perf_counter()
        c = self.codec(codec)
        if refine and not c.refines:
            raise InputError(f"Latent refinement is for a learned codec; {c.label} has no latents.")
        source = read_rgb(image)
        fitted = fit_pixels(source, self.max_pixels, downscale)
        x = pil_to_tensor(fitted)
        enc = c.compress(x, c.rates.default if rate is None else rate, refine=refine, callback=callback)
        if protect is not None:
            enc.mask = pack_mask(read_mask(protect, enc.width, enc.height))
        data = codecs.pack(enc)
        out = c.decompress(codecs.parse(data))
        return Compressed(data, enc, out["x_hat"], time.perf_counter() - t0, original=x,
                          source_size=source.size if fitted.size != source.size else None, cond=out.get("x_cond"))

    def decode(self, data: bytes, max_pixels: int | None = None, window: Window | None = None) -> Compressed:
        """Receiver side: decode a ``.drc`` bitstream, or a plain file of a codec's format, to its base;
        files over ``max_pixels`` (default: this pipeline's limit) are refused before decoding
        (:class:`~.errors.TooLargeError` where a window of the file could be decoded).
        With a ``window`` of at most ``max_pixels``, the file is decoded at its full size (up to
        :meth:`largest`) and the base is that window of it, at 100 %."""
        t0 = time.perf_counter()
        enc = codecs.read(data)
        check_size(enc, max_pixels or self.max_pixels, self.largest(enc), window)
        out = self.codec(enc.codec).decompress(enc)
        base, cond = (_cut(out.get(key), window) for key in ("x_hat", "x_cond"))
        return Compressed(bytes(data), enc, base, time.perf_counter() - t0, cond=cond, window=window)

    def largest(self, enc: Encoded) -> int:
        """The largest image of ``enc``'s codec decoded here at full size: :data:`~.images.LARGE_PIXELS`
        for a codec a library decodes (JPEG, AVIF), this pipeline's limit for one decoded by a network."""
        return self.max_pixels if self.codec(enc.codec).weights else LARGE_PIXELS

    # ---- the residual sampler -------------------------------------------------------------
    def clip_for(self, enc: Encoded, threshold: bool = True) -> float:
        """The bound on r̂0: with thresholding on (A.4), θ at the file's rate from the model's
        table (λ_rate for the neural codec, the quality for JPEG and AVIF); else, or without a
        table, 1 (the plain image range)."""
        model = self.dirac.get(enc.codec)
        if threshold and model is not None:
            return nearest_threshold(model.thresholds, enc.rate) or 1.0
        return 1.0

    def spacing_for(self, codec: str) -> Spacing:
        """Where the late-start steps sit for ``codec``: its model's own spacing (JSON ``"sampler"``)."""
        model = self.dirac.get(codec)
        return model.spacing if model is not None else Spacing()

    def frames(self, comp: Compressed, steps: int = 20, stop: int | None = None, seed: int = 0,
               threshold: bool = True, eta: float = 0.0, spacing: Spacing | None = None) -> Iterator[Frame]:
        """The base as frame 0, then residual DDIM with late start from it: frame k after step k,
        up to ``stop`` (default ``steps``). ``eta`` = 0 is the paper's deterministic DDIM; ``eta`` > 0
        adds fresh seeded noise per step. ``spacing`` defaults to the model's own."""
        stop = check_run(steps, stop, eta)
        yield Frame(0, steps, None, comp.base, comp.seconds)
        if stop == 0:
            return
        model = self.dirac.get(comp.encoded.codec)
        if model is None:
            raise NoModelError(comp.encoded.codec)
        spacing = model.spacing if spacing is None else spacing
        ts = spacing.timesteps(steps, NUM_RESPACED, self.schedule.num_timesteps)
        gen = torch.Generator().manual_seed(int(seed))
        xb = to_signed(comp.start).to(self.device)
        r = late_start_noise(xb.shape, int(ts[0]), self.schedule, gen, self.device)
        fcond = self.file_condition(comp)
        denoise = lambda r_t, t: self._denoise(model.net, r_t, t, xb, fcond)  # noqa: E731
        sampler = ddim_sample(denoise, r, ts, self.schedule, clip=self.clip_for(comp.encoded, threshold),
                              eta=eta, generator=gen)
        for k in range(1, stop + 1):
            t0 = time.perf_counter()
            step = next(sampler)
            image = from_signed(xb + step.r0_hat).clamp(0, 1).cpu()   # .cpu() waits for the device
            yield Frame(k, steps, step.t, image, time.perf_counter() - t0, step=step)

    # ---- whole runs -----------------------------------------------------------------------
    def run(self, image: ImageLike, settings: RunSettings | None = None, callback=None) -> Iterator[Event]:
        """Sender and receiver in one: the :class:`Compressed` header, then frames 0..K.
        ``callback(i, n)`` reports the neural codec's latent refinement."""
        s = settings or RunSettings()
        s.last_step()
        comp = self.compress(image, s.codec, s.rate, s.downscale, s.refine, callback, s.protect)
        yield comp
        yield from self.frames(comp, s.steps, s.stop, s.seed, s.threshold, s.eta)

    def run_bitstream(self, data: bytes, settings: RunSettings | None = None) -> Iterator[Event]:
        """Receiver side only: the header of the decoded file, then frames 0..K (no original).
        The settings' codec, rate, refinement and mask are the sender's and are not read."""
        s = settings or RunSettings()
        s.last_step()
        comp = self.decode(data, window=s.window)
        yield comp
        yield from self.frames(comp, s.steps, s.stop, s.seed, s.threshold, s.eta)

    # ---- the network, whole or in tiles -------------------------------------------------------
    def file_condition(self, comp: Compressed) -> torch.Tensor | None:
        """The vector a file-conditioned DIRAC network reads from the base file's header
        (:mod:`.diffusion.file_condition`: a JPEG's quantisation tables and chroma subsampling);
        None for the networks that read none."""
        model = self.dirac.get(comp.encoded.codec)
        if model is None or not model.net.config.file_cond:
            return None
        return jpeg_condition(self.codec(comp.encoded.codec).one_chunk(comp.encoded)).to(self.device)

    @torch.no_grad()
    def _denoise(self, net, r: torch.Tensor, t: int, xb: torch.Tensor,
                 fcond: torch.Tensor | None = None) -> torch.Tensor:
        """r̂0 of the whole image up to ``tile_above`` pixels, else blended from overlapping tiles."""
        if r.shape[-2] * r.shape[-1] <= self.tile_above:
            return self.call_net(net, r, t, xb, fcond)
        return tiled(lambda rs, xs: self.call_net(net, rs, t, xs, fcond), r, xb, self.tile, self.tile_overlap)

    def call_net(self, net, r: torch.Tensor, t: int, xb: torch.Tensor, fcond: torch.Tensor | None = None) -> torch.Tensor:
        """One network call on a padded, channels-last copy (``fcond``: the file's vector, if it reads one)."""
        m = net.multiple
        h, w = r.shape[-2:]
        rp = pad_to_multiple(r, m).to(self.net_dtype, memory_format=torch.channels_last)
        xp = pad_to_multiple(xb, m).to(self.net_dtype, memory_format=torch.channels_last)
        tt, amp = torch.full((1,), t, device=r.device, dtype=torch.long), self.amp_dtype
        with torch.autocast(self.device.type, dtype=amp or torch.float32, enabled=amp is not None):
            out = net(rp, tt, xp) if fcond is None else net(rp, tt, xp, fcond)
        return out.float()[..., :h, :w]


def check_size(enc: Encoded, limit: int, largest: int, window: Window | None) -> None:
    """Refuse a file before decoding it: over ``limit`` pixels without a window (a
    :class:`~.errors.TooLargeError` when it is at most ``largest``, so that a window of it could be
    taken), over ``largest`` with one, or with a window outside it or over ``limit``."""
    pixels = enc.width * enc.height
    if window is None and limit < pixels <= largest:
        raise TooLargeError(enc.width, enc.height, limit, "choose a window of it to enhance at full size")
    if pixels > (limit if window is None else largest):
        raise BitstreamError(f"The bitstream declares a {enc.width}x{enc.height} image, over the "
                             f"{(limit if window is None else largest) / 1e6:.1f} MP limit of this decoder.")
    if window is not None:
        window.check(enc.width, enc.height, limit)


def _cut(x: torch.Tensor | None, window: Window | None) -> torch.Tensor | None:
    """``x`` (None stays None), or its ``window`` as a tensor of its own."""
    return x if x is None or window is None else window.crop(x).contiguous()


def check_run(steps: int, stop: int | None, eta: float) -> int:
    """Validate S, K and η; returns K (defaulting to S)."""
    stop = _check_steps(steps, stop)
    check_eta(eta)
    return stop


def _check_steps(steps: int, stop: int | None) -> int:
    """Validate S and K; returns K (defaulting to S)."""
    if not 0 <= steps <= NUM_RESPACED:
        raise InputError(f"steps must be in 0..{NUM_RESPACED}, got {steps}.")
    stop = steps if stop is None else stop
    if not 0 <= stop <= steps:
        raise InputError(f"stop must be in 0..{steps}, got {stop}.")
    return stop


def check_eta(eta: float) -> None:
    """DDIM η must lie in [0, 1] (NaN included in the refusal)."""
    if not 0.0 <= float(eta) <= 1.0:
        raise InputError(f"eta must be between 0 and 1, got {eta}.")
