"""What the demo page needs besides gradio: run records kept in ``gr.State``, text, plot data, crops.

``app.py`` builds the page and wires it to these; nothing here imports gradio or loads a model.
A :class:`RunRecord` holds every frame of one run (base reconstruction, then each DDIM step), so
moving the step slider afterwards only looks a frame up: it never runs the network again. On the
sender's side it also holds the WebP and AVIF files of the same bytes (:class:`SameBytes`), each
measured like the steps, for the distortion–perception plane and the before/after slider. The
regions a visitor paints (:func:`editor_mask`) become its protect mask: the chosen step is then
shown composed with step 1 inside them, again from the kept frames.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, features

from .codecs.bitstream import LMBDA_MAX, LMBDA_MIN, QUALITY_CODECS
from .codecs.avif import AVIF_FILE
from .codecs.jpeg import JPEG_FILE, is_jpeg_file, read_jpeg_file
from .codecs.refine import DEFAULT_ITERS as UI_REFINE_ITERS
from . import __version__
from .errors import BitstreamError, DiracError, InputError, NoModelError
from .images import pil_to_tensor, png_bytes, tensor_to_uint8
from .pipeline import Compressed, DiracPipeline, StepResult
from .protect import DEFAULT_FEATHER, compose, coverage, file_mask, paint_mask
from .quality import LiveSWD, bits_per_pixel, psnr
from .references import CODECS as SAME_BYTES_CODECS, Reference

MAX_STEPS = 50                    # the page's cap on S: the paper needs at most 20 (Sec. 3.3)
DEFAULT_STEPS = 20
DEFAULT_QF = 10
DEFAULT_AVIF_QUALITY = 30
DEFAULT_LMBDA = 0.0016
# The neural codec's rate slider reads like the QF slider (right: more bytes, better quality): its
# value is −log10 λ_rate, since a larger λ_rate weighs the rate more and gives a smaller file.
NEURAL_RATE_MIN, NEURAL_RATE_MAX = round(-math.log10(LMBDA_MAX), 3), round(-math.log10(LMBDA_MIN), 3)
DEFAULT_NEURAL_RATE = round(-math.log10(DEFAULT_LMBDA), 3)
APP_MAX_PIXELS = 1_048_576        # 1 MP per image on the page; larger uploads are downscaled
MAX_BITSTREAM_BYTES = 16 << 20
MAX_SEED = 2**32 - 1
CROP_SIZE = 128                   # side of the 100% crop, in image pixels
GAP = 8                           # white gap between the panels of the crop view
# The distortion–perception plane's point kinds (its colour column), steps first
STEPS_POINTS, BASE_POINT, CHOSEN_POINT = "steps", "base", "chosen"
PLANE_COLORS = {STEPS_POINTS: "#4c78a8", BASE_POINT: "#222222", CHOSEN_POINT: "#e45756", "WebP": "#54a24b",
                "AVIF": "#7e57c2"}
PLANE_NOTE = ("Each point is one frame: higher is closer to the original pixel by pixel (PSNR), further left "
              "is more realistic texture (SWD). The first steps give the highest PSNR; later steps lower the SWD "
              "while PSNR falls slightly, by design. WebP and AVIF: files of at most the same bytes.")

# Visitor-facing labels: plain words first, the paper's terms in the info line.
QF_INFO = "1 = fewest bytes, 100 = best quality"
QUALITY_LABELS = {"jpeg": "JPEG quality factor", "avif": "AVIF quality"}   # the shared quality slider
AVIF_QUALITY_INFO = "0 = fewest bytes, 100 = best quality (libaom speed 8, 4:2:0)"
NEURAL_RATE_LABEL = "Neural codec rate"
NEURAL_RATE_INFO = ("left = fewest bytes, right = best quality; the value is −log₁₀ λ_rate, the codec's "
                    "weight on the rate in D + λ_rate·R (0.016 down to 0.0004)")
THRESHOLD_LABEL = "Keep the added detail within its usual range"
THRESHOLD_INFO = ("rate-dependent thresholding (paper, Sec. 3.3): the predicted residual is clipped at θ, "
                  "the 95th percentile of training residuals at this rate")
REFINE_LABEL = "Encode slower for a smaller file"
REFINE_INFO = (f"encoder-side latent refinement: {UI_REFINE_ITERS} iterations of SGA (stochastic Gumbel "
               "annealing) on this image's latents; same decoder; ~30 s for 768×512 on 2 CPU cores")
STEPS_LABEL = "Enhancement steps"
STEPS_INFO = ("DIRAC's late-start DDIM steps, ending at t = 0 and spaced as the model's card says; "
              "0 = the base codec only")
# Painted protection: the brush is magenta at half opacity, so the frame shows through the paint.
PAINT_COLOR, PAINT_OPACITY = "#ff00ff", 0.5
PAINT_NOTE = ("### Keep regions faithful\nPaint over faces, text or logos: painted pixels come from step 1 "
              f"(closest to the original), the rest from the chosen step, blended over {DEFAULT_FEATHER} pixels. "
              "The before/after slider, the crop and the PNG download show the result; no step runs again.")


def lmbda_from_slider(value: float) -> float:
    """λ_rate from the neural rate slider (−log10 λ_rate), to 3 significant digits and the codec's range."""
    return float(min(LMBDA_MAX, max(LMBDA_MIN, float(f"{10.0 ** -float(value):.3g}"))))


def lmbda_text(value: float) -> str:
    """The λ_rate that the neural rate slider's position stands for."""
    return f"λ_rate = **{lmbda_from_slider(value):.5f}**"


def brush_radius(width: int, height: int) -> int:
    """The paint brush's starting radius for an image: a fortieth of its shorter side, at least 3 px."""
    return max(3, round(min(width, height) / 40))


def editor_mask(value, width: int, height: int) -> np.ndarray:
    """The protect mask painted in an image editor's value ({'background', 'layers', 'composite'}):
    the pixels its layers cover (:func:`dirac_demo.protect.paint_mask`); nothing for no value."""
    layers = value.get("layers") if isinstance(value, dict) else None
    return paint_mask(layers or [], width, height)


def paint_layer(mask: np.ndarray) -> np.ndarray:
    """A mask drawn as the editor's paint: an RGBA layer in the brush's colour and opacity."""
    red, green, blue = (int(PAINT_COLOR[i:i + 2], 16) for i in (1, 3, 5))
    layer = np.zeros((*mask.shape, 4), np.uint8)
    layer[mask] = (red, green, blue, round(PAINT_OPACITY * 255))
    return layer


def downscale_label(max_pixels: int) -> str:
    """The sender tab's downscale box (its refusal of a too-large upload names it)."""
    return f"Downscale images over {max_pixels / 2**20:.3g} MP"


def downscale_advice(max_pixels: int) -> str:
    """How a visitor gets an image over the limit accepted: the box, named as it reads."""
    return f"downscale it first, or tick '{downscale_label(max_pixels)}'"


def file_note(enc) -> str:
    """For a plain JPEG or AVIF file read as a bitstream: its form, and where its quality comes from."""
    avif = enc.extra.get(AVIF_FILE)
    if avif:
        return "plain AVIF file; quality " + ("read from its AV1 quantiser" if avif["quality_exact"] else
                                             "estimated: the nearest quantiser this encoder writes")
    facts = enc.extra.get(JPEG_FILE)
    if not facts:
        return ""
    where = ("quality read from its IJG tables" if facts["quality_exact"] else
             "quality estimated: its tables are not IJG's, so the nearest by scale")
    return f"plain JPEG file ({facts['subsampling']}, {facts['scan']}); {where}"


def _extension(enc) -> str:
    """The received file's own extension for its download: a plain JPEG or AVIF file keeps its kind."""
    return "jpg" if JPEG_FILE in enc.extra else "avif" if AVIF_FILE in enc.extra else "drc"


def jpeg_offer(path: str | None) -> str | None:
    """For an upload that is a plain JPEG file: what enhancing it as it is means, else None."""
    try:
        head = read_bitstream(path)
        if not is_jpeg_file(head):
            return None
        enc = read_jpeg_file(head)
    except (OSError, DiracError):
        return None
    facts = enc.extra[JPEG_FILE]
    quality = f"quality {enc.rate:g}" + ("" if facts["quality_exact"] else " (estimated)")
    return (f"This upload is a JPEG file: {enc.width}×{enc.height}, {len(head):,} bytes, {facts['subsampling']}, "
            f"{quality}. DIRAC can enhance **the file as it is**, its own bytes the bitstream. Nothing is "
            "re-compressed, so there is no original to measure PSNR against: judge the steps by eye "
            "against the file's own decode.")


def same_bytes_codecs() -> tuple[tuple[str, ...], list[str]]:
    """The same-bytes codecs (WebP, AVIF) this server's Pillow can write, and a line for each it cannot."""
    usable = tuple(c for c in SAME_BYTES_CODECS if features.check(c))
    return usable, [f"{SAME_BYTES_CODECS[c][0]}: this server's Pillow cannot write it, so it is left out."
                    for c in SAME_BYTES_CODECS if c not in usable]


def rate_label(codec: str, rate: float) -> str:
    """'JPEG quality factor 10', 'AVIF quality 30' or 'neural codec λ_rate 0.0016'."""
    if codec in QUALITY_LABELS:
        return f"{QUALITY_LABELS[codec]} {int(round(rate))}"
    return f"neural codec λ_rate {rate:.5g}"


def device_label(pipe: DiracPipeline) -> str:
    """Where the diffusion network runs, e.g. 'GPU (NVIDIA H100, fp16)' or 'CPU (fp32)'."""
    if pipe.device.type == "cuda":
        return f"GPU ({torch.cuda.get_device_name(pipe.device)}, {pipe.precision})"
    return f"{pipe.device.type.upper()} ({pipe.precision})"


def missing_model_note(pipe: DiracPipeline, codec: str) -> str | None:
    """Why ``codec`` cannot run DIRAC steps here, or None when it can."""
    if codec == "neural" and not pipe.available()["neural_codec"]:
        return "No neural codec weights are loaded in this deployment: use JPEG."
    if codec not in pipe.dirac:
        return str(NoModelError(codec, "the base codec runs alone (steps are disabled)"))
    return None


def has_threshold_table(pipe: DiracPipeline, codec: str) -> bool:
    """Whether ``codec``'s DIRAC model has a rate-dependent threshold table (so the box matters)."""
    model = pipe.dirac.get(codec)
    return bool(model is not None and model.thresholds)


def whole(value, name: str, high: int, low: int = 0) -> int:
    """A control's value as an integer in low..high, or a one-line :class:`InputError`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a whole number, got {value!r}.") from None
    if not (number.is_integer() and low <= number <= high):
        raise InputError(f"{name} must be a whole number in {low}..{high}, got {value!r}.")
    return int(number)


def flag(value, name: str) -> bool:
    """A yes/no value: true or false (a JSON boolean or its text), else a one-line :class:`InputError`."""
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in ("true", "false"):
        raise InputError(f"{name} must be true or false, got {value!r}.")
    return text == "true"


def api_rate(codec: str, rate) -> float:
    """The rate as given: a whole JPEG quality factor (1..100) or AVIF quality (0..100), or the
    neural codec's λ_rate."""
    if codec in QUALITY_CODECS:
        span = QUALITY_CODECS[codec]
        return whole(rate, f"The {QUALITY_LABELS[codec]}", span.stop - 1, low=span.start)
    try:
        return float(rate)
    except (TypeError, ValueError):
        raise InputError(f"rate must be the neural codec's λ_rate, a number; got {rate!r}.") from None


def usable_steps(pipe: DiracPipeline, codec: str, steps, strict: bool) -> int:
    """S checked against the page's cap; 0 when the codec has no DIRAC model (an error if ``strict``)."""
    steps = whole(steps, "steps", MAX_STEPS)
    if steps and codec not in pipe.dirac:
        if strict:
            raise NoModelError(codec, "use steps=0")
        return 0
    return steps


def models_markdown(pipe: DiracPipeline) -> str:
    """One line per model: loaded (with its training steps when known) or missing."""
    def facts(meta: dict) -> str:
        steps = (meta or {}).get("training", {}).get("steps")
        return f"loaded, {steps} training steps" if steps else "loaded"
    codec = pipe.neural
    rows = [f"neural codec: {facts(getattr(codec, 'meta', {})) if codec is not None else 'missing'}"]
    for name in ("jpeg", "avif", "neural"):
        model = pipe.dirac.get(name)
        rows.append(f"DIRAC for {name}: {facts(model.meta) if model is not None else 'missing'}")
    return " · ".join(rows)


def file_stem(source: str | None, fallback: str = "image") -> str:
    """A safe download-file stem from an upload's name."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(source).stem)[:40].strip("_") if source else ""
    return stem or fallback


def read_bitstream(path: str | None) -> bytes:
    """The bytes of an uploaded bitstream file, with the page's size limit."""
    if not path:
        raise InputError("Upload a .drc bitstream file first.")
    p = Path(path)
    if p.stat().st_size > MAX_BITSTREAM_BYTES:
        raise BitstreamError(f"The file is over the {MAX_BITSTREAM_BYTES >> 20} MB limit for a bitstream.")
    return p.read_bytes()


@dataclass
class StopFlag:
    """One per page session: the Stop button sets it, the running stream reads it between steps."""

    requested: bool = False

    def request(self) -> None:
        self.requested = True

    def clear(self) -> None:
        self.requested = False


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _digest(mask: np.ndarray) -> str:
    """A short name for a mask's pixels, for the files composed with it."""
    return hashlib.blake2b(np.packbits(mask).tobytes() + str(mask.shape).encode(), digest_size=6).hexdigest()


def _db(v: float | None) -> str:
    return "∞ dB" if v is not None and math.isinf(v) else f"{v:.2f} dB"


@dataclass
class SameBytes:
    """A standard codec's file of the original at no more bytes than the run's, measured like a step."""

    codec: str                        # "webp" | "avif"
    name: str                         # "WebP" | "AVIF"
    quality: int                      # Pillow quality 0..100
    nbytes: int
    frame: np.ndarray                 # the decoded file, (H, W, 3) uint8
    psnr: float
    swd: float

    @property
    def label(self) -> str:
        """'WebP quality 37, 2,301 bytes'."""
        return f"{self.name} quality {self.quality}, {self.nbytes:,} bytes"

    def facts(self) -> str:
        """'WebP quality 37, 2,301 bytes: PSNR 27.10 dB, SWD 61.2'."""
        return f"{self.label}: PSNR {_db(self.psnr)}, SWD {self.swd:.1f}"


@dataclass
class RunRecord:
    """Every frame and metric of one run; ``frames[0]`` is the base, ``frames[k]`` DDIM step k."""

    codec: str
    rate: float
    width: int
    height: int
    nbytes: int
    total: int
    workdir: Path
    stem: str
    original: np.ndarray | None = None
    note: str = ""                    # what the received file is, when it is not a .drc
    suffix: str = "drc"               # the bitstream's file type: "drc", or "jpg" for a plain JPEG file
    source_size: tuple[int, int] | None = None   # the upload's (width, height) when it was downscaled
    frames: list[np.ndarray] = field(default_factory=list)
    psnr: list[float | None] = field(default_factory=list)
    ms_ssim: list[float | None] = field(default_factory=list)
    swd: list[float | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    same_bytes: dict[str, SameBytes] = field(default_factory=dict)   # by codec, once measured
    same_bytes_notes: list[str] = field(default_factory=list)        # why a codec has no file
    same_bytes_done: bool = False                                     # the files were made (or left out)
    protect: np.ndarray | None = None  # the file's protect mask: those pixels stay at step protect_step
    protect_step: int = 1
    painted: np.ndarray | None = None  # the mask painted on the page, in place of the file's once set
    paint_on: bool = True              # whether the page applies the protect mask (the toggle)
    finished: bool = False             # the run has ended (done or stopped): the page may paint on it

    @classmethod
    def start(cls, comp: Compressed, total: int, stem: str, root: str | Path) -> RunRecord:
        """A record holding the base reconstruction (and the original, when the event has one);
        the bitstream is written for download."""
        enc = comp.encoded
        workdir = Path(tempfile.mkdtemp(prefix="run-", dir=root))
        original = tensor_to_uint8(comp.original) if comp.original is not None else None
        rec = cls(enc.codec, enc.rate, enc.width, enc.height, comp.nbytes, total, workdir, stem, original,
                  file_note(enc), _extension(enc), comp.source_size)
        rec.protect = file_mask(enc)
        rec.frames.append(tensor_to_uint8(comp.base))
        rec.psnr.append(comp.psnr)
        rec.ms_ssim.append(comp.ms_ssim)
        rec.swd.append(comp.swd)
        rec.seconds.append(comp.seconds)
        rec.bitstream_path.write_bytes(comp.bitstream)
        return rec

    def add(self, ev: StepResult) -> None:
        """Keep the reconstruction and metrics of one DDIM step."""
        self.frames.append(tensor_to_uint8(ev.image))
        self.psnr.append(ev.psnr)
        self.ms_ssim.append(ev.ms_ssim)
        self.swd.append(ev.swd)
        self.seconds.append(ev.seconds)

    def add_same_bytes(self, refs: list[Reference]) -> None:
        """Keep the WebP and AVIF files made for this run's byte count, each with its PSNR and live
        SWD against the original; a codec without a file within the budget keeps its reason."""
        original = self.original_tensor()
        meter = LiveSWD(original)
        for ref in refs:
            if ref.image is None:
                self.same_bytes_notes.append(ref.reason)
                continue
            self.same_bytes[ref.codec] = SameBytes(ref.codec, ref.name, ref.quality, ref.nbytes,
                                                   tensor_to_uint8(ref.image), psnr(ref.image, original),
                                                   meter(ref.image))
        self.same_bytes_done = True

    @property
    def steps_run(self) -> int:
        return len(self.frames) - 1

    @property
    def bpp(self) -> float:
        return bits_per_pixel(self.nbytes, self.width, self.height)

    @property
    def bitstream_path(self) -> Path:
        return self.workdir / f"{self.stem}_{self.codec}.{self.suffix}"

    def summary(self) -> str:
        """The compression in one line: codec, size (and any downscale), bytes, bpp, base quality."""
        line = (f"**{rate_label(self.codec, self.rate)}** · {self.width}×{self.height} · "
                f"{self.nbytes:,} bytes · {self.bpp:.4f} bits per pixel (bpp)")
        if self.source_size:
            line += (" · downscaled from {}×{} to {}×{}: PSNR and SWD are measured against the downscaled image"
                     .format(*self.source_size, self.width, self.height))
        line += f" · {self.note}" if self.note else ""
        if self.protect is not None:
            line += (f" · the file's protect mask keeps {coverage(self.protect):.0%} of the image at step "
                     f"{self.protect_step} (faces, text) and the rest at the chosen step")
        if self.psnr[0] is None:
            return line + " · the file is all there is: no original, so no PSNR or SWD"
        return line + f" · base PSNR {_db(self.psnr[0])}" + self._ssim(0) + self._swd(0)

    def _ssim(self, k: int) -> str:
        return f", MS-SSIM {self.ms_ssim[k]:.4f}" if self.ms_ssim[k] is not None else ""

    def _swd(self, k: int) -> str:
        return f", SWD {self.swd[k]:.1f}" if self.swd[k] is not None else ""

    def step_line(self, k: int, device: str = "") -> str:
        """Metrics of frame k, e.g. 'Step 7 of 20 · PSNR 27.05 dB (−0.31 vs base), SWD 63.2 (−7.1 vs
        base) · 0.84 s per step'."""
        where = f" on {device}" if device else ""
        if k == 0:
            head = f"Step 0 of {self.total}: the base reconstruction"
            tail = f" · decoded in {self.seconds[0]:.2f} s"
        else:
            head = f"Step {k} of {self.total}"
            tail = f" · {self.seconds[k]:.2f} s per step{where}"
        if self.psnr[k] is None:
            return head + tail
        delta = self.psnr[k] - self.psnr[0] if k and math.isfinite(self.psnr[k] - self.psnr[0]) else None
        vs = f" ({delta:+.2f} dB vs base)" if delta is not None else ""
        swd = ""
        if self.swd[k] is not None:
            swd = f", SWD {self.swd[k]:.1f}" + (f" ({self.swd[k] - self.swd[0]:+.1f} vs base)"
                                                if k and self.swd[0] is not None else "")
        return head + f" · PSNR {_db(self.psnr[k])}{vs}" + self._ssim(k) + swd + tail

    # ---- the same bytes in WebP and AVIF ---------------------------------------------------------
    def same_bytes_pending(self) -> str:
        """While the steps run: that WebP and AVIF files of the same size follow (sender side only)."""
        if self.original is None:
            return ""
        return f"WebP and AVIF files of at most {self.nbytes:,} bytes are made after the last step, for comparison."

    def same_bytes_line(self) -> str:
        """The WebP and AVIF files of this run's bytes, measured like the steps, and any codec left out."""
        if not self.same_bytes and not self.same_bytes_notes:
            return ""
        shots = " · ".join(sb.facts() for sb in self.same_bytes.values())
        line = f"At the same bytes: {shots} (points in the plane; compare under 'Compare the step with')." \
            if shots else ""
        return " ".join(filter(None, [line, *self.same_bytes_notes]))

    def original_tensor(self) -> torch.Tensor:
        """The original as a (1, 3, H, W) tensor in [0, 1] (sender side only)."""
        return pil_to_tensor(Image.fromarray(self.original))

    # ---- the distortion–perception plane -------------------------------------------------------
    def plane_data(self, chosen: int) -> pd.DataFrame:
        """One row per point of the plane: x = live SWD, y = PSNR, ``point`` its kind (the colour),
        ``frame`` what it is (the tooltip: the step, or the codec with its quality and bytes). The
        steps come first (the base as their step 0, so every kind the stream shows exists from its
        first update), then the base, the chosen step and the WebP and AVIF files; empty without an
        original."""
        def row(k: int, kind: str) -> tuple | None:
            if _finite(self.psnr[k]) is None or self.swd[k] is None:
                return None
            return round(self.swd[k], 2), round(self.psnr[k], 2), kind, f"step {k}" if k else "base (step 0)"
        rows = [row(k, STEPS_POINTS) for k in range(len(self.frames))]
        rows += [row(0, BASE_POINT), row(min(int(chosen), self.steps_run), CHOSEN_POINT)]
        rows += [(round(sb.swd, 2), round(sb.psnr, 2), sb.name, sb.label) for sb in self.same_bytes.values()]
        return pd.DataFrame([r for r in rows if r is not None], columns=["swd", "psnr", "point", "frame"])

    def plane_limits(self) -> tuple[list[float] | None, list[float] | None]:
        """The plane's (x, y) limits once the WebP and AVIF files are in: every point, padded by 5 %
        of its span; (None, None) before, so the axes follow the points as the steps stream."""
        df = self.plane_data(0)
        if not self.same_bytes_done or df.empty:
            return None, None

        def padded(values, least: float) -> list[float]:
            low, high = float(values.min()), float(values.max())
            pad = max(high - low, least) * 0.05
            return [round(low - pad, 2), round(high + pad, 2)]
        return padded(df["swd"], 1.0), padded(df["psnr"], 0.5)

    # ---- the before/after slider ---------------------------------------------------------------
    def reference_choices(self) -> list[tuple[str, str]]:
        """(label, value) of each frame the step can be compared with: the original (sender side),
        the base, and the WebP and AVIF files once made."""
        choices = [("original", "original")] if self.original is not None else []
        return choices + [("base", "base")] + [(sb.label, sb.codec) for sb in self.same_bytes.values()]

    def reference_or_default(self, reference: str) -> str:
        """``reference`` when this run offers it, else the original (or, without one, the base)."""
        values = [v for _, v in self.reference_choices()]
        return reference if reference in values else values[0]

    def pair(self, k: int, reference: str) -> tuple[Path, Path]:
        """PNG files (reference, frame k) for the before/after slider: the original, the base or a
        same-bytes file; what this run does not have falls back to the base."""
        if reference == "original" and self.original is not None:
            return self.save("original", self.original), self.frame_file(k)
        if reference in self.same_bytes:
            return self.save(f"same_bytes_{reference}", self.same_bytes[reference].frame), self.frame_file(k)
        return self.frame_file(0), self.frame_file(k)

    def crop(self, k: int, cx: float, cy: float, zoom: int = 1) -> np.ndarray:
        """Side-by-side 100% crops [original |] base | step k around (cx, cy) in percent, enlarged ×zoom."""
        h, w = self.height, self.width
        ch, cw = min(CROP_SIZE, h), min(CROP_SIZE, w)
        top = int(round(float(cy) / 100.0 * (h - ch)))
        left = int(round(float(cx) / 100.0 * (w - cw)))
        panels = [self.original] if self.original is not None else []
        panels += [self.frames[0], self.shown(k)]
        z = max(1, int(zoom))
        cut = [p[top:top + ch, left:left + cw].repeat(z, axis=0).repeat(z, axis=1) for p in panels]
        gap = np.full((ch * z, GAP, 3), 255, np.uint8)
        return np.concatenate([x for c in cut for x in (c, gap)][:-1], axis=1)

    def crop_file(self, k: int, cx: float, cy: float, zoom: int = 1) -> Path:
        """:meth:`crop` as a PNG file, named after what it shows (frame k as composed)."""
        return self.save(f"crop_{k}{self._tag(k)}_{cx:g}_{cy:g}_{zoom}", self.crop(k, cx, cy, int(zoom)))

    def crop_center(self, x: float, y: float) -> tuple[float, float]:
        """Crop position in percent that centres the crop on pixel (x, y) of the image."""
        ch, cw = min(CROP_SIZE, self.height), min(CROP_SIZE, self.width)
        px = 0.0 if self.width == cw else (x - cw / 2) / (self.width - cw) * 100.0
        py = 0.0 if self.height == ch else (y - ch / 2) / (self.height - ch) * 100.0
        return float(np.clip(round(px), 0, 100)), float(np.clip(round(py), 0, 100))

    def shown(self, k: int) -> np.ndarray:
        """Frame k as the page shows it: with a protect mask in effect (:meth:`mask`), its protected
        pixels come from step ``protect_step`` (:func:`dirac_demo.protect.compose`); otherwise
        frame k itself."""
        mask = self.mask()
        if mask is None or k <= self.protect_step:
            return self.frames[k]
        as_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float()  # noqa: E731
        out = compose(as_tensor(self.frames[self.protect_step]), as_tensor(self.frames[k]), mask)
        return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()

    def frame_file(self, k: int, composed: bool = True) -> Path:
        """Frame k as shown (:meth:`shown`; ``composed=False``: as the step made it), as a lossless
        PNG file (for display and download), named after its mask."""
        tag = self._tag(k) if composed else ""
        name = f"{self.stem}_step{k:02d}{tag}"
        written = self._png(name)                 # shown once: a composed frame is not composed again
        return written if written.exists() else self.save(name, self.shown(k) if tag else self.frames[k])

    # ---- painted protection ----------------------------------------------------------------
    def mask(self) -> np.ndarray | None:
        """The protect mask the page applies: the painted one once set, else the file's; None when
        there is none, it is empty, or the page switched it off."""
        mask = self._drawn()
        return mask if self.paint_on and mask is not None and mask.any() else None

    def _drawn(self) -> np.ndarray | None:
        return self.protect if self.painted is None else self.painted

    def _tag(self, k: int) -> str:
        """'' for frame k as the step made it, '_protected_<the mask's digest>' when it is composed."""
        mask = self.mask()
        return f"_protected_{_digest(mask)}" if mask is not None and k > self.protect_step else ""

    def paint(self, mask: np.ndarray | None) -> bool:
        """Take ``mask`` as the page's protect mask, in place of the file's (None: nothing protected);
        whether that changes what is painted."""
        mask = np.zeros((self.height, self.width), bool) if mask is None else mask
        drawn = self._drawn()
        changed = bool(mask.any()) if drawn is None else not np.array_equal(drawn, mask)
        self.painted = mask
        return changed

    @property
    def paintable(self) -> bool:
        """Whether painting changes anything: the run has a step after the protected one."""
        return self.steps_run > self.protect_step

    def paint_editor(self) -> dict:
        """The paint editor's value: the last step as the step made it, under the mask in effect
        (painted, else the file's) drawn as paint (:func:`paint_layer`)."""
        mask = self._drawn()
        layers = [] if mask is None or not mask.any() else [
            str(self.save(f"paint_{_digest(mask)}", paint_layer(mask)))]
        return {"background": str(self.frame_file(self.steps_run, composed=False)), "layers": layers,
                "composite": None}

    def paint_line(self, k: int) -> str:
        """What step k shows of the painted regions, in one line."""
        if not self.paintable:
            return (f"Painting needs a run of at least {self.protect_step + 1} steps: painted regions keep "
                    f"step {self.protect_step}, the rest a later step.")
        mask = self._drawn()
        if mask is None or not mask.any():
            return f"Nothing painted: every pixel shows step {k}."
        share = f"{coverage(mask):.1%} of the image is painted"
        if not self.paint_on:
            return f"Protection off: {share}, but every pixel shows step {k}."
        if k <= self.protect_step:
            return (f"{share}; step {k} is shown everywhere, as painted regions differ from step "
                    f"{self.protect_step + 1} on.")
        return f"{share} and keeps step {self.protect_step}; the rest shows step {k}."

    def _png(self, name: str) -> Path:
        return self.workdir / f"{name}.png"

    def save(self, name: str, image: np.ndarray) -> Path:
        """``image`` as ``workdir/name.png``, written once.

        The page shows files rather than arrays: Gradio writes arrays to its cache under their
        content hash without a staging file, so two sessions showing the same frame at once can
        serve each other a half-written file; files are copied into its cache atomically.
        """
        path = self._png(name)
        if not path.exists():
            fd, staging = tempfile.mkstemp(dir=self.workdir, prefix=f".{name}.")
            with os.fdopen(fd, "wb") as fh:
                fh.write(png_bytes(Image.fromarray(image, "RGBA" if image.shape[-1] == 4 else "RGB")))
            os.replace(staging, path)
        return path

    def info(self, k: int, device: str = "") -> dict:
        """Frame k's facts as JSON for the API."""
        return {"step": k, "total": self.total, "codec": self.codec, "rate": self.rate,
                "width": self.width, "height": self.height, "bytes": self.nbytes, "bpp": self.bpp,
                "psnr": _finite(self.psnr[k]), "ms_ssim": self.ms_ssim[k], "swd": self.swd[k],
                "seconds": self.seconds[k], "device": device, "dirac_demo_version": __version__}

    def copy(self, root: str | Path) -> RunRecord:
        """This record with its own folder under ``root`` holding copies of the files written so far;
        the frames are shared (a kept frame never changes), so deleting the copy's files leaves
        this record's intact."""
        workdir = Path(tempfile.mkdtemp(prefix="run-", dir=root))
        for f in self.workdir.iterdir():
            if f.is_file() and not f.name.startswith("."):
                shutil.copyfile(f, workdir / f.name)
        return replace(self, workdir=workdir, frames=list(self.frames), psnr=list(self.psnr),
                       ms_ssim=list(self.ms_ssim), swd=list(self.swd), seconds=list(self.seconds),
                       same_bytes=dict(self.same_bytes), same_bytes_notes=list(self.same_bytes_notes))

    def cleanup(self) -> None:
        """Delete the files written for download."""
        shutil.rmtree(self.workdir, ignore_errors=True)


class ExampleCache:
    """Finished runs of the page's examples at its default settings, by file name, built once at
    start; a visitor gets a copy of a run (:meth:`RunRecord.copy`), whose files their session may
    delete."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)                  # the examples, in the page's order
        self._runs: dict[str, RunRecord] = {}
        self._lock = threading.Lock()

    def put(self, name: str, record: RunRecord) -> None:
        with self._lock:
            self._runs[name] = record

    def get(self, name: str, root: str | Path) -> RunRecord | None:
        """A copy of ``name``'s run with its files under ``root``, or None while it is not cached."""
        with self._lock:
            record = self._runs.get(name)
        return record.copy(root) if record is not None else None

    def __contains__(self, name: str) -> bool:
        with self._lock:
            return name in self._runs


def default_settings_note(codec: str, qf, steps, seed, threshold) -> str:
    """The status line of a precomputed example run: its settings, and whether the page's differ."""
    line = (f"Precomputed run of this example at the default settings (JPEG quality factor {DEFAULT_QF}, "
            f"{DEFAULT_STEPS} steps, seed 0, thresholding on).")
    try:
        same = (codec, int(qf), int(steps), int(seed), bool(threshold)) == ("jpeg", DEFAULT_QF, DEFAULT_STEPS, 0, True)
    except (TypeError, ValueError):
        same = False
    return line if same else line + " Your settings differ: press **Compress and enhance** to run them."


def cleanup_record(record: RunRecord | None) -> None:
    """``gr.State`` delete callback: drop a finished session's download files."""
    if isinstance(record, RunRecord):
        record.cleanup()
