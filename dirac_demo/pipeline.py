"""The DIRAC pipeline: base codec -> real bytes -> base reconstruction -> residual DDIM steps.

:class:`DiracPipeline` owns device, dtype and models. :meth:`DiracPipeline.run` is a
generator of events: one :class:`Compressed` (the real bytes, the base reconstruction and the
original), one :class:`StepResult` per DDIM step, then one :class:`Finished`. With the original
at hand and ``with_swd``, each event also carries the live SWD (:class:`.quality.LiveSWD`, a
realism figure: lower is more realistic) beside PSNR and MS-SSIM.
:meth:`DiracPipeline.run_bitstream` does the receiver's side from a file, with the same events.
The page, the CLI and the evaluation consume these events as they are.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator, Union

import torch

from . import codecs
from .codecs import bitstream
from .codecs.avif import AvifCodec
from .codecs.jpeg import JpegCodec
from .codecs.neural import PRE_FILTER, NeuralCodec
from .codecs.bitstream import Encoded
from .errors import BitstreamError, InputError, NoModelError, WeightsError
from .images import (MAX_PIXELS, ImageLike, fit_pixels, from_signed, pad_to_multiple, pil_to_tensor, read_image,
                     to_signed)
from .protect import pack_mask, read_mask
from .quality import LiveSWD, bits_per_pixel, ms_ssim, psnr
from .diffusion.sampler import Step, ddim_sample, late_start_noise, nearest_threshold
from .diffusion.schedule import Schedule, Spacing
from .weights import DiracModel, load_codec, load_dirac, resolve

NUM_RESPACED = 100


@dataclass
class Compressed:
    """The base codec's result: the real bitstream, the base reconstruction and, on the sender's
    side, the original it was made from."""

    bitstream: bytes
    encoded: Encoded
    base: torch.Tensor            # (1, 3, H, W) in [0, 1]
    psnr: float | None            # None on the receiver side (no original)
    ms_ssim: float | None
    seconds: float
    original: torch.Tensor | None = None   # the sender's input as coded (after any downscale)
    source_size: tuple[int, int] | None = None   # (width, height) of an input downscaled to fit; else None
    swd: float | None = None      # live SWD against the original (run(with_swd=True)); else None

    @property
    def nbytes(self) -> int:
        return len(self.bitstream)

    @property
    def bpp(self) -> float:
        """Bits per pixel from the real file size."""
        return bits_per_pixel(self.nbytes, self.encoded.width, self.encoded.height)


@dataclass
class StepResult:
    """The reconstruction x̃ + r̂0(t_k) after DDIM step ``index`` (1-based) of ``total``."""

    index: int
    total: int
    t: int
    image: torch.Tensor
    psnr: float | None
    ms_ssim: float | None
    seconds: float                # the network call and the update, not the metrics
    swd: float | None = None      # live SWD against the original, when asked for and known


@dataclass
class Finished:
    """End of a run: the last image and how many steps ran."""

    image: torch.Tensor
    psnr: float | None
    steps_run: int
    total: int


Event = Union[Compressed, StepResult, Finished]


def cpu_has_bf16() -> bool:
    """True on CPUs with AMX-BF16 or AVX512-BF16, where bf16 autocast pays off."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


class DiracPipeline:
    """Base codecs plus residual diffusion models, on one device."""

    def __init__(self, neural_codec: NeuralCodec | None = None,
                 dirac: dict[str, DiracModel] | None = None, device: str | torch.device | None = None,
                 precision: str = "auto", tile: int = 544, tile_overlap: int = 32,
                 tile_above: int = 1_572_864, max_pixels: int = MAX_PIXELS) -> None:
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
        self.jpeg = JpegCodec()
        self.avif = AvifCodec()
        self.neural = neural_codec.eval().cpu() if neural_codec is not None else None   # codec: fp32, CPU
        self.dirac = {}
        for name, model in (dirac or {}).items():
            model.net = model.net.eval().to(self.device, self.net_dtype, memory_format=torch.channels_last)
            self.dirac[name] = model
        self.schedule = Schedule()
        self.tile, self.tile_overlap, self.max_pixels = tile, tile_overlap, max_pixels
        self.tile_above = tile_above    # whole images up to 1.5 MP; overlapping tiles above (memory)

    @classmethod
    def from_pretrained(cls, assets: str | None = None, hub_repo: str | None = None, **kwargs) -> "DiracPipeline":
        """Load every model that exists in ``assets/`` (or the Hub repo); missing ones stay absent."""
        models, codec = {}, None
        try:
            codec = load_codec(resolve("codec", assets, hub_repo))
        except WeightsError as exc:
            if "not found" not in str(exc):
                raise
        for base, name in (("jpeg", "dirac_jpeg"), ("neural", "dirac_neural"), ("avif", "dirac_avif")):
            try:
                models[base] = load_dirac(resolve(name, assets, hub_repo))
            except WeightsError as exc:
                if "not found" not in str(exc):
                    raise
        return cls(codec, models, **kwargs)

    # ---- helpers --------------------------------------------------------------------
    def available(self) -> dict[str, bool]:
        """Which parts are loaded: the neural codec and each DIRAC model."""
        return {"neural_codec": self.neural is not None, "dirac_jpeg": "jpeg" in self.dirac,
                "dirac_neural": "neural" in self.dirac, "dirac_avif": "avif" in self.dirac}

    def _codec(self, name: str):
        if name == "jpeg":
            return self.jpeg
        if name == "avif":
            return self.avif
        if name == "neural":
            if self.neural is None:
                raise WeightsError("The neural codec has no trained weights loaded.")
            return self.neural
        raise InputError(f"Unknown codec {name!r}: use 'jpeg', 'avif' or 'neural'.")

    def _metrics(self, img: torch.Tensor, original: torch.Tensor | None, with_ms_ssim: bool):
        if original is None:
            return None, None
        return psnr(img, original), (ms_ssim(img, original) if with_ms_ssim else None)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    @torch.no_grad()
    def _denoise(self, net, r: torch.Tensor, t: int, xb: torch.Tensor) -> torch.Tensor:
        h, w = r.shape[-2:]
        tile, ov = self.tile, self.tile_overlap
        if h * w <= self.tile_above:
            return self._net(net, r, t, xb)
        out = torch.zeros_like(r)
        wsum = torch.zeros((1, 1, h, w), device=r.device)
        ys, xs = _starts(h, tile, ov), _starts(w, tile, ov)
        for y in ys:
            for x in xs:
                sl = (..., slice(y, y + tile), slice(x, x + tile))
                pred = self._net(net, r[sl], t, xb[sl])
                wt = _ramp(pred.shape[-2], ov, r.device)[:, None] * _ramp(pred.shape[-1], ov, r.device)[None]
                out[sl] += pred * wt
                wsum[sl] += wt
        return out / wsum

    def _net(self, net, r: torch.Tensor, t: int, xb: torch.Tensor) -> torch.Tensor:
        m = net.multiple
        h, w = r.shape[-2:]
        rp = pad_to_multiple(r, m).to(self.net_dtype, memory_format=torch.channels_last)
        xp = pad_to_multiple(xb, m).to(self.net_dtype, memory_format=torch.channels_last)
        with self._autocast():
            out = net(rp, torch.full((1,), t, device=r.device, dtype=torch.long), xp)
        return out.float()[..., :h, :w]

    # ---- public API -----------------------------------------------------------------
    def compress(self, image: ImageLike, codec: str, rate: float, downscale: bool = False,
                 with_ms_ssim: bool = True, refine: int = 0, callback=None,
                 protect: ImageLike | None = None) -> Compressed:
        """Encode an image: the :class:`Compressed` event, holding the original it was made from.

        ``downscale``: shrink an image over ``max_pixels`` to fit (the event's ``source_size`` keeps
        its size) instead of refusing it. ``refine``: encoder-side latent refinement iterations for
        the neural codec (SGA, :mod:`.refine`); ``callback(i, n)`` reports them. ``protect``: a
        mask image (:func:`.protect.read_mask`) whose regions the receiver keeps at a fidelity
        step; it travels in the file (:func:`.protect.pack_mask`) and its bytes count in the rate.
        """
        t0 = time.perf_counter()
        if refine and codec != "neural":
            raise InputError("Latent refinement is for the neural codec only.")
        source = read_image(image)
        fitted = fit_pixels(source, self.max_pixels, downscale)
        x = pil_to_tensor(fitted)
        c = self._codec(codec)
        if codec in ("jpeg", "avif"):
            enc = c.compress(x, int(round(rate)))
        else:
            enc = c.compress(x, float(rate), refine=refine, callback=callback)
        if protect is not None:
            enc.mask = pack_mask(read_mask(protect, enc.width, enc.height))
        data = bitstream.pack(enc)
        received = bitstream.parse(data)
        base = c.decompress(received)
        enc.extra.update(received.extra)          # what the decoder left for DIRAC (its pre-filter image)
        p, m = self._metrics(base, x, with_ms_ssim)
        return Compressed(data, enc, base, p, m, time.perf_counter() - t0, original=x,
                          source_size=source.size if fitted.size != source.size else None)

    def decode(self, data: bytes) -> Compressed:
        """Receiver side: decode a ``.drc`` bitstream, or a plain JPEG or AVIF file, to its base reconstruction."""
        t0 = time.perf_counter()
        enc = codecs.read(data)
        if enc.width * enc.height > self.max_pixels:
            raise BitstreamError(f"The bitstream declares a {enc.width}x{enc.height} image, over the "
                                 f"{self.max_pixels / 1e6:.1f} MP limit of this decoder.")
        base = self._codec(enc.codec).decompress(enc)
        return Compressed(bytes(data), enc, base, None, None, time.perf_counter() - t0)

    def enhance(self, base: torch.Tensor, enc: Encoded, steps: int = 20, stop: int | None = None,
                seed: int = 0, threshold: bool = True, original: torch.Tensor | None = None,
                with_ms_ssim: bool = True, eta: float = 0.0,
                with_swd: bool = False) -> Iterator[StepResult | Finished]:
        """Residual DDIM with late start from ``base``: one :class:`StepResult` per step, then Finished.

        ``eta`` = 0 is the paper's deterministic DDIM; ``eta`` > 0 adds fresh seeded noise per step.
        ``with_swd``: each step's live SWD against ``original`` (when given).
        """
        stop = check_run(steps, stop, eta)
        meter = LiveSWD(original) if with_swd and original is not None else None
        yield from self._steps(base, enc, steps, stop, seed, threshold, original, with_ms_ssim, eta, meter)

    def _steps(self, base: torch.Tensor, enc: Encoded, steps: int, stop: int, seed: int, threshold: bool,
               original: torch.Tensor | None, with_ms_ssim: bool, eta: float,
               meter: LiveSWD | None = None) -> Iterator[StepResult | Finished]:
        """:meth:`enhance` with its arguments already checked; ``meter`` measures each step's SWD."""
        image = base
        last = psnr(base, original) if original is not None else None
        if stop > 0:
            for step, image, seconds in self.trajectory(base, enc, steps, seed, threshold, eta):
                p, m = self._metrics(image, original, with_ms_ssim)
                last = p
                yield StepResult(step.index + 1, steps, step.t, image, p, m, seconds,
                                 meter(image) if meter is not None else None)
                if step.index + 1 >= stop:
                    break
        yield Finished(image, last, stop, steps)

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

    def trajectory(self, base: torch.Tensor, enc: Encoded, steps: int = 20, seed: int = 0,
                   threshold: bool = True, eta: float = 0.0,
                   spacing: Spacing | None = None) -> Iterator[tuple[Step, torch.Tensor, float]]:
        """The sampler itself: ``(Step, image, seconds)`` per DDIM step, Step holding r_t and r̂0(t).

        ``spacing`` defaults to the model's own (:meth:`spacing_for`). ``seconds`` covers the
        network call and the update, not the caller's metrics.
        """
        model = self.dirac.get(enc.codec)
        if model is None:
            raise NoModelError(enc.codec)
        spacing = model.spacing if spacing is None else spacing
        ts = spacing.timesteps(steps, NUM_RESPACED, self.schedule.num_timesteps)
        gen = torch.Generator().manual_seed(int(seed))
        # the neural codec's post-filter: DIRAC starts from the image before it (NeuralCodec.decompress)
        cond = enc.extra.get(PRE_FILTER)
        xb = to_signed(base if cond is None or cond.shape != base.shape else cond).to(self.device)
        r = late_start_noise(xb.shape, int(ts[0]), self.schedule, gen, self.device)
        denoise = lambda r_t, t: self._denoise(model.net, r_t, t, xb)  # noqa: E731
        sampler = ddim_sample(denoise, r, ts, self.schedule, clip=self.clip_for(enc, threshold),
                              eta=eta, generator=gen)
        while True:
            t0 = time.perf_counter()
            step = next(sampler, None)
            if step is None:
                return
            image = from_signed(xb + step.r0_hat).clamp(0, 1).cpu()   # .cpu() waits for the device
            yield step, image, time.perf_counter() - t0

    def run(self, image: ImageLike, codec: str = "jpeg", rate: float = 10, steps: int = 20,
            stop: int | None = None, seed: int = 0, threshold: bool = True, downscale: bool = False,
            with_ms_ssim: bool = True, eta: float = 0.0, refine: int = 0, callback=None,
            with_swd: bool = False, protect: ImageLike | None = None) -> Iterator[Event]:
        """Sender and receiver in one: Compressed, then StepResult per step, then Finished.

        ``refine`` and ``callback`` go to :meth:`compress` (the neural codec's latent refinement),
        and so does ``protect`` (a mask sent in the file).
        ``with_swd``: the base and every step also get their live SWD against the original (the
        original's side is computed once per run).
        """
        stop = check_run(steps, stop, eta)
        comp = self.compress(image, codec, rate, downscale, with_ms_ssim, refine, callback, protect)
        meter = LiveSWD(comp.original) if with_swd else None
        if meter is not None:
            comp.swd = meter(comp.base)
        yield comp
        yield from self._steps(comp.base, comp.encoded, steps, stop, seed, threshold, comp.original,
                               with_ms_ssim, eta, meter)

    def run_bitstream(self, data: bytes, steps: int = 20, stop: int | None = None, seed: int = 0,
                      threshold: bool = True, eta: float = 0.0) -> Iterator[Event]:
        """Receiver side only: no original, so every PSNR field is None."""
        stop = check_run(steps, stop, eta)
        comp = self.decode(data)
        yield comp
        yield from self._steps(comp.base, comp.encoded, steps, stop, seed, threshold, None, True, eta)


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


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Fewest tile origins covering ``length`` with at least ``overlap`` between neighbours."""
    if length <= tile:
        return [0]
    n = -(-(length - overlap) // (tile - overlap))
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def _ramp(n: int, overlap: int, device) -> torch.Tensor:
    i = torch.arange(n, device=device, dtype=torch.float32)
    return torch.minimum(torch.ones_like(i), torch.minimum(i + 1, n - i) / max(1, overlap))
