"""The sender's codec controls as the codec table defines them: the codec choices, and the two rate
sliders (:mod:`.settings`) with each codec's range, start, label and info, as keyword arguments for
a ``gr.Slider`` or its update. Nothing here imports gradio."""
from __future__ import annotations

from ..codecs import CODECS, RateRange
from . import text
from .settings import start_rate, weight_position, weight_span

_NO_RATES = RateRange(0, 1, 0, "", "", integer=False)   # a slider no codec of the table uses


def codec_choices() -> list[tuple[str, str]]:
    """(label, name) of every codec of the table, in its order."""
    return [(text.codec_name(c), name) for name, c in CODECS.items()]


def _rates(codec: str, log: bool) -> tuple[RateRange, str]:
    """``codec``'s rates and label when its rate is on the slider kind asked for, else the table's
    first codec of that kind (the hidden slider keeps a valid range)."""
    if CODECS[codec].rates.log == log:
        return CODECS[codec].rates, codec
    name = next((n for n, c in CODECS.items() if c.rates.log == log), None)
    return (CODECS[name].rates, name) if name else (_NO_RATES, codec)


def quality_slider(codec: str) -> dict:
    """The quality slider for ``codec``: shown at the codec's start rate where its rate is a quality."""
    rates, _ = _rates(codec, log=False)
    return dict(visible=not CODECS[codec].rates.log, minimum=rates.low, maximum=rates.high, value=start_rate(rates),
                step=1 if rates.integer else (rates.high - rates.low) / 100, label=text.capital(rates.label),
                info=text.quality_info(rates))


def weight_slider(codec: str, current: float | None = None) -> dict:
    """The weight slider for ``codec``: shown where its rate is a weight λ, keeping ``current`` (the
    slider's position) when it lies in the codec's range."""
    rates, name = _rates(codec, log=True)
    left, right = weight_span(rates) if rates is not _NO_RATES else (0.0, 1.0)
    start = weight_position(start_rate(rates)) if rates is not _NO_RATES else 0.0
    value = start if current is None else min(right, max(left, float(current)))
    return dict(visible=CODECS[codec].rates.log, minimum=left, maximum=right, value=value, step=0.001,
                label=text.weight_label(CODECS[name]), info=text.weight_info(rates))
