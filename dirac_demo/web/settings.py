"""What a visitor asks for: the page's limits and defaults, and the settings of a run and a view.

Handlers receive the page's component values positionally (that is how Gradio calls them); they
build one of these dataclasses at the edge and pass it on, so no function below ``app.py`` takes a
chain of positional values. A checked run is the pipeline's own :class:`~dirac_demo.RunSettings`.

The codecs, their rates and defaults come from the codec table (:data:`dirac_demo.codecs.CODECS`).
A codec's rate is set on one of two sliders: the quality slider (a rate on a linear scale, where
more is better) or the weight slider, for a rate on a log scale, which is a rate–distortion
weight λ (more weight on the rate: fewer bytes). The weight slider reads like the quality slider
(right: more bytes, better quality), so its value is −log10 λ.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..codecs import CODECS, RateRange

MAX_STEPS = 50                    # the page's cap on S: the paper needs at most 20 (Sec. 3.3)
DEFAULT_STEPS = 20
APP_MAX_PIXELS = 1_048_576        # 1 MP per image on the page; larger uploads are downscaled
MAX_BITSTREAM_BYTES = 16 << 20
MAX_SEED = 2**32 - 1
DEFAULT_CODEC = next(iter(CODECS))   # the table's first row: the page's and the API's codec


def start_rate(rates: RateRange) -> float:
    """Where the page starts a codec's rate: its demo rate (a low rate, where DIRAC shows), else its default."""
    return rates.demo if rates.demo is not None else rates.default


def weight_position(lmbda: float) -> float:
    """The weight slider's position for λ: −log10 λ, to 3 decimals."""
    return round(-math.log10(lmbda), 3)


def weight_span(rates: RateRange) -> tuple[float, float]:
    """The weight slider's (left, right) ends for a codec: its largest λ, then its smallest."""
    return weight_position(rates.high), weight_position(rates.low)


def weight_from_slider(value: float, rates: RateRange) -> float:
    """λ from the weight slider's position (−log10 λ), to 3 significant digits, within the codec's range."""
    return float(min(rates.high, max(rates.low, float(f"{10.0 ** -float(value):.3g}"))))


_WEIGHTED = [c.rates for c in CODECS.values() if c.rates.log]
DEFAULT_QUALITY = start_rate(CODECS[DEFAULT_CODEC].rates)
DEFAULT_WEIGHT = weight_position(start_rate(_WEIGHTED[0])) if _WEIGHTED else 0.0   # where the weight slider starts


@dataclass(frozen=True)
class PageSettings:
    """The sender tab's controls as the page hands them over, not yet checked."""

    codec: str = DEFAULT_CODEC
    quality: float = DEFAULT_QUALITY            # the quality slider
    weight: float = DEFAULT_WEIGHT              # the weight slider, −log10 λ
    steps: int = DEFAULT_STEPS
    seed: int = 0
    threshold: bool = True
    downscale: bool = True
    refine: bool = False                        # the "encode slower" box

    def is_default(self) -> bool:
        """Whether a run with these settings is the examples' cached run (codec, rate, steps, seed, θ)."""
        try:
            mine = (self.codec, int(self.quality), int(self.steps), int(self.seed), bool(self.threshold))
        except (TypeError, ValueError):
            return False
        default = PageSettings()
        return mine == (default.codec, default.quality, default.steps, default.seed, default.threshold)


@dataclass(frozen=True)
class ReceiverSettings:
    """The receiver's controls (and the sender's, for a file enhanced as it is), not yet checked."""

    steps: int = DEFAULT_STEPS
    seed: int = 0
    threshold: bool = True
    window: object = None      # a file over the pixel limit: "x,y,width,height" (the API) or the page's WindowPick


@dataclass(frozen=True)
class View:
    """How a finished frame is looked at: the comparison, the crop's place (percent) and zoom."""

    reference: str = "original"
    crop_x: float = 50
    crop_y: float = 50
    zoom: int = 2

    def comparing(self, reference: str) -> View:
        """This view compared with ``reference`` instead."""
        return replace(self, reference=reference)

