"""The arguments of a run, checked: the page's controls and the ``/enhance`` and ``/decode`` calls.

Each check raises :class:`~dirac_demo.errors.InputError` (or ``NoModelError``) with one sentence
naming the argument, what it must be and what was given; the page shows it in the status line and
the API returns it to the client. The page is lenient where the API is strict: a codec without a
DIRAC model runs its base alone on the page (steps = 0), while ``/enhance`` refuses it.
"""
from __future__ import annotations

from .. import codecs
from ..codecs import CODECS
from ..codecs.refine import DEFAULT_ITERS as UI_REFINE_ITERS, MAX_REFINE
from ..errors import InputError, NoModelError
from ..pipeline import DiracPipeline, RunSettings
from ..window import Window
from .settings import MAX_SEED, MAX_STEPS, PageSettings, ReceiverSettings, weight_from_slider
from .windows import WindowPick


def whole(value, name: str, high: int, low: int = 0) -> int:
    """A value as an integer in low..high, or a one-line :class:`InputError`."""
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


def rate(codec: str, value) -> float:
    """The rate as given, in the codec's terms: a whole quality within its range, or a number (a
    λ, which the codec checks against its range)."""
    rates = codecs.get(codec).rates
    if rates.integer:
        return whole(value, f"The {rates.label}", int(rates.high), low=int(rates.low))
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"rate must be the {rates.label}, a number; got {value!r}.") from None


def steps(pipe: DiracPipeline, codec: str, value, strict: bool) -> int:
    """S checked against the page's cap; 0 when the codec has no DIRAC model (an error if ``strict``)."""
    count = whole(value, "steps", MAX_STEPS)
    if count and not pipe.has_model(codec):
        if strict:
            raise NoModelError(codec, "use steps=0")
        return 0
    return count


def optional(payload) -> str | None:
    """The local path of an optional upload (a path, or Gradio's file payload), or None."""
    path = payload.get("path") if isinstance(payload, dict) else payload
    return str(path) if path else None


def upload(payload, missing: str) -> str:
    """The local path of an upload, or InputError(``missing``). File events run with
    ``preprocess=False``: Gradio still moves the upload into its cache and checks the path, but
    leaves decoding to dirac_demo.images (gr.Image would open it with Pillow first, so a text file
    or a decompression bomb would fail inside Gradio instead of giving our one-line message)."""
    path = optional(payload)
    if path is None:
        raise InputError(missing)
    return path


def page_rate(page: PageSettings) -> float:
    """The rate the sender tab sets: the weight slider's λ for a codec whose rate is a weight, else
    the quality slider's value, checked."""
    rates = codecs.get(page.codec).rates
    return weight_from_slider(page.weight, rates) if rates.log else rate(page.codec, page.quality)


def page_run(pipe: DiracPipeline, page: PageSettings) -> RunSettings:
    """The sender tab's run: the rate from the codec's slider, the box's refinement where the codec refines."""
    return RunSettings(page.codec, page_rate(page), steps(pipe, page.codec, page.steps, strict=False),
                       seed=whole(page.seed, "seed", MAX_SEED), threshold=flag(page.threshold, "threshold"),
                       downscale=bool(page.downscale),
                       refine=UI_REFINE_ITERS if page.refine and CODECS[page.codec].refines else 0)


def enhance_run(pipe: DiracPipeline, codec, rate_value, steps_value, seed, threshold, refine,
                protect) -> RunSettings:
    """An ``/enhance`` call's run; ``refine``: encoder-side refinement iterations (codecs that refine only)."""
    refine = whole(refine, "refine", MAX_REFINE)
    if refine and not codecs.get(codec).refines:
        raise InputError(f"refine is for {refining_codecs()} only.")
    return RunSettings(codec, rate(codec, rate_value), steps(pipe, codec, steps_value, strict=True),
                       seed=whole(seed, "seed", MAX_SEED), threshold=flag(threshold, "threshold"), refine=refine,
                       protect=optional(protect))


def receive_run(pipe: DiracPipeline, codec: str, given: ReceiverSettings, strict: bool) -> RunSettings:
    """The run of a received file of ``codec`` (``strict``: refuse steps without a model, as /decode does)."""
    return RunSettings(codec, steps=steps(pipe, codec, given.steps, strict), seed=whole(given.seed, "seed", MAX_SEED),
                       threshold=flag(given.threshold, "threshold"), window=window(given.window))


def window(value) -> Window | None:
    """The full-resolution window asked for: the page's :class:`WindowPick`, the API's text
    "x,y,width,height", or None for the whole file (nothing, or empty text)."""
    if isinstance(value, WindowPick):
        return value.window
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return Window.parse(value)


def refining_codecs() -> str:
    """The codecs that take encoder-side refinement, as a sentence names them: 'the <label>'."""
    return " and ".join(f"the {c.label}" for c in CODECS.values() if c.refines)
