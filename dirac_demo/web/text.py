"""Every sentence the page shows a visitor, and its status line, assembled here and nowhere else.

Labels put plain words first and the paper's terms in the info line. The status line of a run is
:func:`status`: the compression's summary, then what the run is doing, then the comparison files.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from ..codecs import CODECS, BaseCodec, Encoded, RateRange
from ..codecs.refine import DEFAULT_ITERS as UI_REFINE_ITERS
from ..errors import NoModelError
from ..protect import DEFAULT_FEATHER, coverage
from ..same_bytes import CODECS as SAME_BYTES_CODECS
from .settings import DEFAULT_CODEC, DEFAULT_STEPS, PageSettings, weight_from_slider

if TYPE_CHECKING:
    from ..pipeline import DiracPipeline
    from ..window import Window
    from .state import RunRecord, SameBytes
    from .windows import WindowPick

SAME_BYTES_NAMES = " and ".join(name for name, _ in SAME_BYTES_CODECS.values())   # the comparison formats
PLAIN_FILES = " or ".join(c.label for c in CODECS.values() if c.plain_files)    # the plain files a receiver takes

# ---- the page's prose -------------------------------------------------------------------
HEADER = ("# DIRAC: diffusion-based residual enhancement for image codecs\n"
          "A base codec sends real bytes; a residual diffusion model then adds detail step by step "
          "on the receiver (Ghouse et al., *A Residual Diffusion Model for High Perceptual Quality "
          "Codec Augmentation*). Stop early for fidelity, late for realism.\n\n"
          "Running on **{device}** · {models} · dirac-demo {version}")
RECEIVER_INTRO = ("Upload a `.drc` bitstream made by this page or by `python -m dirac_demo compress`, or any "
                  f"{PLAIN_FILES} file: its own bytes are its bitstream. "
                  "The receiver has only the bitstream, **no original, so no PSNR** can be shown: judge "
                  "the steps by eye against the base reconstruction.")
EXAMPLES_LABEL = ("Examples: four Kodak PhotoCD images and a real-world JPEG (all free for use); a click shows a "
                  "run at the default settings")
RESULTS_PLACEHOLDER = "Results appear here as soon as the image is compressed."
TRAVERSAL_NOTE = ("### Distortion–perception traversal\nEarly steps keep fidelity (PSNR); later steps add "
                  "detail. Every frame of the run is kept, so the slider shows any step instantly.")
PLANE_NOTE = ("Each point is one frame: higher is closer to the original pixel by pixel (PSNR), further left "
              "is more realistic texture (SWD). The first steps give the highest PSNR; later steps lower the SWD "
              f"while PSNR falls slightly, by design. {SAME_BYTES_NAMES}: files of at most the same bytes.")
PAINT_NOTE = ("### Keep regions faithful\nPaint over faces, text or logos: painted pixels come from step 1 "
              f"(closest to the original), the rest from the chosen step, blended over {DEFAULT_FEATHER} pixels. "
              "The before/after slider, the crop and the PNG download show the result; no step runs again.")

# ---- the controls' labels -------------------------------------------------------------------
THRESHOLD_LABEL = "Keep the added detail within its usual range"
THRESHOLD_INFO = ("rate-dependent thresholding (paper, Sec. 3.3): the predicted residual is clipped at θ, "
                  "the 95th percentile of training residuals at this rate")
REFINE_LABEL = "Encode slower for a smaller file"
REFINE_INFO = (f"encoder-side latent refinement: {UI_REFINE_ITERS} iterations of SGA (stochastic Gumbel "
               "annealing) on this image's latents; same decoder; ~30 s for 768×512 on 2 CPU cores")
RECEIVER_FILE = f"Bitstream (.drc), {PLAIN_FILES} file"
STEPS_LABEL = "Enhancement steps"
STEPS_INFO = ("DIRAC's late-start DDIM steps, ending at t = 0 and spaced as the model's card says; "
              "0 = the base codec only")

# ---- what a run is waiting for, and the uploads it misses ------------------------------------
COMPRESSING, DECODING = "Compressing…", "Decoding…"
NO_IMAGE = "Upload an image first, or pick an example."
NO_BITSTREAM = "Upload a .drc bitstream file first."
NO_PLAIN_FILE = f"Upload a {PLAIN_FILES} file first."
API_NO_IMAGE, API_NO_BITSTREAM = "No image was given.", "No bitstream file was given."


def refining(iters: int) -> str:
    return f"Refining the encoding for a smaller file ({iters} iterations)…"


def failed(exc: Exception) -> str:
    """The status line of a refused or failed run."""
    return f"⚠️ **{exc}**"


def warning(note: str | None) -> str:
    return f"⚠️ {note}" if note else ""


def lines(*parts: str) -> str:
    """Status text: its non-empty parts as paragraphs."""
    return "\n\n".join(p for p in parts if p)


def db(v: float | None) -> str:
    return "∞ dB" if v is not None and math.isinf(v) else f"{v:.2f} dB"


def downscale_label(max_pixels: int) -> str:
    """The sender tab's downscale box (its refusal of a too-large upload names it)."""
    return f"Downscale images over {max_pixels / 2**20:.3g} MP"


def downscale_advice(max_pixels: int) -> str:
    """How a visitor gets an image over the limit accepted: the box, named as it reads."""
    return f"downscale it first, or tick '{downscale_label(max_pixels)}'"


def capital(words: str) -> str:
    """``words`` with a capital first letter, the rest unchanged."""
    return words[:1].upper() + words[1:]


def codec_name(codec: BaseCodec) -> str:
    """A codec as the page's codec choice names it: its label, capitalised."""
    return capital(codec.label)


def quality_info(rates: RateRange) -> str:
    return f"{rates.format(rates.low)} = fewest bytes, {rates.format(rates.high)} = best quality"


def weight_label(codec: BaseCodec) -> str:
    return f"{codec_name(codec)} rate"


def weight_info(rates: RateRange) -> str:
    return ("left = fewest bytes, right = best quality; the value is −log₁₀ λ_rate, the codec's weight on the rate "
            f"in D + λ_rate·R ({rates.format(rates.high)} down to {rates.format(rates.low)})")


def weight_text(codec: str, value: float) -> str:
    """The λ_rate that the weight slider's position stands for (nothing for a codec without one)."""
    rates = CODECS[codec].rates
    return f"λ_rate = **{weight_from_slider(value, rates):.5f}**" if rates.log else ""


def rate_label(codec: str, rate: float) -> str:
    """The rate as the codec's table row names and formats it, e.g. '<its rate label> 10'."""
    rates = CODECS[codec].rates
    return f"{rates.label} {rates.format(rate)}"


def api_rate_label() -> str:
    """The /enhance rate's label: each codec's rate and range."""
    spans = ", ".join(f"{c.rates.label} {c.rates.format(c.rates.low)}-{c.rates.format(c.rates.high)}"
                      for c in CODECS.values())
    return f"rate ({spans})"


def api_refine_label(refiners: str) -> str:
    return f"refine ({refiners}: encoder-side refinement iterations, 0 = none)"


# ---- the pipeline and its files -----------------------------------------------------------
def _loaded(steps: int | None) -> str:
    return f"loaded, {steps} training steps" if steps else "loaded"


def _weights_steps(pipe: DiracPipeline, name: str) -> int | None:
    """The training steps recorded with a codec's own weights (the meta of the network it runs)."""
    meta = getattr(getattr(pipe.codec(name), "net", None), "meta", None) or {}
    return meta.get("training", {}).get("steps")


def models_markdown(pipe: DiracPipeline) -> str:
    """One item per model: each codec's own weights, then DIRAC for each codec; loaded (with its
    training steps when known) or missing."""
    described = pipe.describe()
    rows = [f"{c.label}: {_loaded(_weights_steps(pipe, name)) if name in described['codecs'] else 'missing'}"
            for name, c in CODECS.items() if c.weights]
    for name in CODECS:
        model = described["models"].get(name)
        rows.append(f"DIRAC for {name}: {_loaded(model['steps']) if model is not None else 'missing'}")
    return " · ".join(rows)


def header(pipe: DiracPipeline, version: str) -> str:
    return HEADER.format(device=pipe.describe()["device"], models=models_markdown(pipe), version=version)


def missing_model_note(pipe: DiracPipeline, codec: str) -> str | None:
    """Why ``codec`` cannot run DIRAC steps here, or None when it can."""
    if codec not in pipe.codec_names():
        return f"No {CODECS[codec].label} weights are loaded in this deployment: use {CODECS[DEFAULT_CODEC].label}."
    if not pipe.has_model(codec):
        return str(NoModelError(codec, "the base codec runs alone (steps are disabled)"))
    return None


def file_note(enc: Encoded, nbytes: int, window: Window | None = None) -> str:
    """For a plain file read as a bitstream: what its codec reads from it (a ``.drc``: nothing),
    and the window of it enhanced, if not all of it."""
    note = CODECS[enc.codec].describe(enc, nbytes) if enc.file is not None else ""
    if window is None:
        return note
    part = (f"the {window.width}×{window.height} window at x {window.x}, y {window.y} of its {enc.width}×{enc.height} "
            "pixels, enhanced at 100 % from the file's own decoded pixels (not downscaled)")
    return f"{note}: {part}" if note else part


def file_offer(enc: Encoded, nbytes: int, pick: WindowPick | None = None) -> str:
    """For an upload that is a plain file a codec reads: what enhancing it as it is means (and,
    over the page's limit, the window it takes)."""
    facts = enc.file
    quality = {"exact": f"quality {enc.rate:g}", "estimated": f"quality {enc.rate:g} (estimated)"}.get(
        facts.quality_read, "quality unknown")
    form = f"{facts.subsampling}, " if facts.subsampling else ""
    line = (f"This upload is a {facts.kind} file: {enc.width}×{enc.height}, {nbytes:,} bytes, {form}{quality}. "
            "DIRAC can enhance **the file as it is**, its own bytes the bitstream. Nothing is re-compressed, so "
            "there is no original to measure PSNR against: judge the steps by eye against the file's own decode.")
    if pick is None:
        return line
    return line + (f" At {enc.width * enc.height / 1e6:.1f} MP it is over this page's {pick.limit / 2**20:.3g} MP, "
                   "and downscaling it would remove the blocking and ringing DIRAC repairs: a **full-resolution "
                   f"window** of {pick.window.width}×{pick.window.height} pixels is enhanced at 100 %, from the file's "
                   "own decoded pixels. Click the photo below to move the window; it starts at the centre.")


def as_is_button(enc: Encoded, pick: WindowPick | None = None) -> str:
    if pick is None:
        return f"Enhance this {enc.file.kind} as it is"
    return f"Enhance this window of the {enc.file.kind} at 100 %"


def window_label(pick: WindowPick) -> str:
    """The overview's label: where the window is."""
    w = pick.window
    return (f"Window {w.width}×{w.height} at x {w.x}, y {w.y} of {pick.size[0]}×{pick.size[1]} "
            "(click to move it)")


WINDOW_ADVICE = "upload it in the first tab and enhance it as it is: you choose a full-resolution window of it there"
API_WINDOW_LABEL = ("window (x,y,width,height: a full-resolution part of a JPEG or AVIF file over the pixel limit; "
                    "empty for the whole file)")
API_WINDOW_ADVICE = "pass window=x,y,width,height to enhance a full-resolution window of it"


def default_settings_note(settings: PageSettings) -> str:
    """The status line of a precomputed example run: its settings, and whether the page's differ."""
    default = PageSettings()
    line = (f"Precomputed run of this example at the default settings ({rate_label(default.codec, default.quality)}, "
            f"{DEFAULT_STEPS} steps, seed 0, thresholding on).")
    differ = " Your settings differ: press **Compress and enhance** to run them."
    return line if settings.is_default() else line + differ


def example_status(record: RunRecord, page: PageSettings, missing: str | None) -> str:
    """The status line of a cached example's run: its settings, then the run's line once compared."""
    return lines(default_settings_note(page), status(record, "compared", missing=missing))


def example_pending(name: str) -> str:
    return (f"Loaded {name}. Its finished run at the default settings is being prepared; press **Compress and "
            "enhance** to run it now.")


# ---- one run's lines ------------------------------------------------------------------------
def summary(record: RunRecord) -> str:
    """The compression in one line: codec, size (and any downscale), bytes, bpp, base quality."""
    line = (f"**{rate_label(record.codec, record.rate)}** · {record.width}×{record.height} · "
            f"{record.nbytes:,} bytes · {record.bpp:.4f} bits per pixel (bpp)")
    if record.source_size:
        line += (" · downscaled from {}×{} to {}×{}: PSNR and SWD are measured against the downscaled image"
                 .format(*record.source_size, record.width, record.height))
    line += f" · {record.note}" if record.note else ""
    if record.protect is not None:
        line += (f" · the file's protect mask keeps {coverage(record.protect):.0%} of the image at step "
                 f"{record.protection.step} (faces, text) and the rest at the chosen step")
    if record.psnr[0] is None:
        return line + " · the file is all there is: no original, so no PSNR or SWD"
    return line + f" · base PSNR {db(record.psnr[0])}" + _ssim(record, 0) + _swd(record, 0)


def _ssim(record: RunRecord, k: int) -> str:
    return f", MS-SSIM {record.ms_ssim[k]:.4f}" if record.ms_ssim[k] is not None else ""


def _swd(record: RunRecord, k: int) -> str:
    return f", SWD {record.swd[k]:.1f}" if record.swd[k] is not None else ""


def step_line(record: RunRecord, k: int, device: str = "") -> str:
    """Metrics of frame k, e.g. 'Step 7 of 20 · PSNR 27.05 dB (−0.31 dB vs base), SWD 63.2 (−7.1 vs
    base) · 0.84 s per step'."""
    if k == 0:
        head = f"Step 0 of {record.total}: the base reconstruction"
        tail = f" · decoded in {record.seconds[0]:.2f} s"
    else:
        head = f"Step {k} of {record.total}"
        tail = f" · {record.seconds[k]:.2f} s per step" + (f" on {device}" if device else "")
    psnr, swd = record.psnr, record.swd
    if psnr[k] is None:
        return head + tail
    delta = psnr[k] - psnr[0] if k and math.isfinite(psnr[k] - psnr[0]) else None
    vs = f" ({delta:+.2f} dB vs base)" if delta is not None else ""
    swd_part = ""
    if swd[k] is not None:
        swd_part = f", SWD {swd[k]:.1f}" + (f" ({swd[k] - swd[0]:+.1f} vs base)" if k and swd[0] is not None else "")
    return head + f" · PSNR {db(psnr[k])}{vs}" + _ssim(record, k) + swd_part + tail


def frame_name(k: int) -> str:
    """A frame as the plane's tooltip names it."""
    return f"step {k}" if k else "base (step 0)"


def done_line(record: RunRecord, missing: str | None = None) -> str:
    """How the run ended: done, or stopped early (``missing``: why a run had no steps)."""
    k = record.steps_run
    if k < record.total:
        return f"Stopped after {k} of {record.total} steps; move the step slider to see each one."
    if k:
        return f"Done: {k} DIRAC steps; move the step slider to see every one."
    return (missing if record.total == 0 else None) or "Done."


# ---- the same bytes in the comparison formats ----------------------------------------------
def same_bytes_label(shot: SameBytes) -> str:
    """'<format> quality 37, 2,301 bytes'."""
    return f"{shot.name} quality {shot.quality}, {shot.nbytes:,} bytes"


def same_bytes_facts(shot: SameBytes) -> str:
    """'<format> quality 37, 2,301 bytes: PSNR 27.10 dB, SWD 61.2'."""
    return f"{same_bytes_label(shot)}: PSNR {db(shot.psnr)}, SWD {shot.swd:.1f}"


def same_bytes_unwritable(name: str) -> str:
    return f"{name}: this server's Pillow cannot write it, so it is left out."


def same_bytes_pending(record: RunRecord) -> str:
    """While the steps run: that the same-bytes files follow (sender side only)."""
    if record.original is None:
        return ""
    return (f"{SAME_BYTES_NAMES} files of at most {record.nbytes:,} bytes are made after the last step, "
            "for comparison.")


def same_bytes_making(record: RunRecord) -> str:
    if record.original is None:
        return ""
    return f"Making {SAME_BYTES_NAMES} files of at most {record.nbytes:,} bytes for comparison…"


def same_bytes_line(record: RunRecord) -> str:
    """The same-bytes files of this run, measured like the steps, and any format left out."""
    if not record.same_bytes and not record.same_bytes_notes:
        return ""
    shots = " · ".join(same_bytes_facts(sb) for sb in record.same_bytes.values())
    line = (f"At the same bytes: {shots} (points in the plane; compare under 'Compare the step with')."
            if record.same_bytes else "")
    return " ".join(filter(None, [line, *record.same_bytes_notes]))


def reference_choices(record: RunRecord) -> list[tuple[str, str]]:
    """(label, value) of each frame the step can be compared with."""
    return [(same_bytes_label(record.same_bytes[v]) if v in record.same_bytes else v, v)
            for v in record.references()]


def compared_with(record: RunRecord, reference: str) -> str:
    shot = record.same_bytes.get(reference)
    return f"  \nCompared with {same_bytes_facts(shot)}" if shot else ""


# ---- the status line ------------------------------------------------------------------------
Stage = Literal["started", "step", "finished", "compared"]


def status(record: RunRecord, stage: Stage, device: str = "", missing: str | None = None) -> str:
    """The status line of a run: its summary, then at ``stage`` "started" that DIRAC runs, at
    "step" the newest step's metrics, at "finished" how it ended and that the same-bytes files
    are being made, at "compared" how it ended and those files' figures."""
    if stage == "started":
        return lines(summary(record), ("Running DIRAC… " if record.total else "") + same_bytes_pending(record))
    if stage == "step":
        return lines(summary(record), step_line(record, record.steps_run, device), same_bytes_pending(record))
    last = same_bytes_making(record) if stage == "finished" else same_bytes_line(record)
    return lines(summary(record), done_line(record, missing), last)


# ---- painted protection -----------------------------------------------------------------------
def paint_line(record: RunRecord, k: int) -> str:
    """What step k shows of the painted regions, in one line."""
    step = record.protection.step
    if not record.paintable:
        return (f"Painting needs a run of at least {step + 1} steps: painted regions keep step {step}, "
                "the rest a later step.")
    mask = record.protection.drawn()
    if mask is None or not mask.any():
        return f"Nothing painted: every pixel shows step {k}."
    share = f"{coverage(mask):.1%} of the image is painted"
    if not record.protection.on:
        return f"Protection off: {share}, but every pixel shows step {k}."
    if k <= step:
        return f"{share}; step {k} is shown everywhere, as painted regions differ from step {step + 1} on."
    return f"{share} and keeps step {step}; the rest shows step {k}."
