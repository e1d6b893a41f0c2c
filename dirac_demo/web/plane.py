"""The distortion–perception plane: one point per frame of a run, x = live SWD, y = PSNR."""
from __future__ import annotations

import pandas as pd

from ..same_bytes import CODECS as SAME_BYTES_CODECS
from . import text
from .state import RunRecord, finite

# The plane's point kinds (its colour column): the steps first, then each same-bytes codec by name
STEPS_POINTS, BASE_POINT, CHOSEN_POINT = "steps", "base", "chosen"
_SAME_BYTES_COLORS = ["#54a24b", "#7e57c2", "#f58518", "#b279a2"]
PLANE_COLORS = {STEPS_POINTS: "#4c78a8", BASE_POINT: "#222222", CHOSEN_POINT: "#e45756",
                **{name: color for (name, _), color in zip(SAME_BYTES_CODECS.values(), _SAME_BYTES_COLORS)}}


def plane_data(record: RunRecord, chosen: int) -> pd.DataFrame:
    """One row per point of the plane: x = live SWD, y = PSNR, ``point`` its kind (the colour),
    ``frame`` what it is (the tooltip: the step, or the codec with its quality and bytes). The steps
    come first (the base as their step 0, so every kind the stream shows exists from its first
    update), then the base, the chosen step and the same-bytes files; empty without an original."""
    def row(k: int, kind: str) -> tuple | None:
        if finite(record.psnr[k]) is None or record.swd[k] is None:
            return None
        return round(record.swd[k], 2), round(record.psnr[k], 2), kind, text.frame_name(k)
    rows = [row(k, STEPS_POINTS) for k in range(len(record.frames))]
    rows += [row(0, BASE_POINT), row(min(int(chosen), record.steps_run), CHOSEN_POINT)]
    rows += [(round(sb.swd, 2), round(sb.psnr, 2), sb.name, text.same_bytes_label(sb))
             for sb in record.same_bytes.values()]
    return pd.DataFrame([r for r in rows if r is not None], columns=["swd", "psnr", "point", "frame"])


def plane_limits(record: RunRecord) -> tuple[list[float] | None, list[float] | None]:
    """The plane's (x, y) limits once the same-bytes files are in: every point, padded by 5 % of
    its span; (None, None) before, so the axes follow the points as the steps stream."""
    df = plane_data(record, 0)
    if not record.same_bytes_done or df.empty:
        return None, None

    def padded(values, least: float) -> list[float]:
        low, high = float(values.min()), float(values.max())
        pad = max(high - low, least) * 0.05
        return [round(low - pad, 2), round(high + pad, 2)]
    return padded(df["swd"], 1.0), padded(df["psnr"], 0.5)
