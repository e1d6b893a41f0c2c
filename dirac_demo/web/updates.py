"""What the page shows of a run: the keyed updates of a result panel, built from a :class:`RunRecord`.

Keys name the panel's components (:class:`~.panel.Panel`); the adapter yields these dicts and
the panel maps them onto its components. Nothing here changes a record.
"""
from __future__ import annotations

import gradio as gr

from ..codecs import CODECS
from ..pipeline import DiracPipeline
from . import text
from .controls import quality_slider, weight_slider
from .paint import PAINT_COLOR, PAINT_OPACITY, brush_radius
from .plane import plane_data, plane_limits
from .settings import DEFAULT_STEPS, PageSettings, View
from .state import RunRecord

SENDER_REFERENCES = ["original", "base"]     # what a sender's run compares with before it has files
RECEIVER_REFERENCES = ["base"]


def brush(radius: int | str = "auto") -> gr.Brush:
    """The paint brush: one colour, half transparent, so the frame shows through."""
    return gr.Brush(default_size=radius, colors=[(PAINT_COLOR, PAINT_OPACITY)], color_mode="fixed")


def plot(record: RunRecord, chosen: int):
    """The distortion–perception plane's update: its points, the chosen step marked. While steps
    stream only the data changes and the axes follow it (new limits make the browser rebuild the
    chart asynchronously, losing updates that arrive meanwhile). Once the same-bytes files are in,
    the limits are set to hold every point: the rebuild also gives their kinds a colour, which a
    data update alone does not."""
    x_lim, y_lim = plane_limits(record)
    return gr.update(value=plane_data(record, chosen), x_lim=x_lim, y_lim=y_lim, visible=record.original is not None)


def view(record: RunRecord, k: int, shown: View, device: str) -> dict:
    """Frame k of a finished run, as the step slider, the comparison and the crop show it."""
    line = text.step_line(record, k, device) + text.compared_with(record, shown.reference)
    return {"step_md": line, "compare": record.pair(k, shown.reference), "plot": plot(record, k),
            "crop": record.crop_file(k, shown.crop_x, shown.crop_y, shown.zoom), "paint_md": text.paint_line(record, k),
            "png": gr.update(value=str(record.frame_file(k)), interactive=True)}


def started(record: RunRecord, reference: str) -> dict:
    """The base reconstruction, the bitstream to download, and the slider's range."""
    base = record.frame_file(0)
    return {"record": record, "base": base, "current": base, "status": text.status(record, "started"),
            "plot": plot(record, 0), "step": gr.update(maximum=max(record.total, 1), value=0, interactive=False),
            "reference": gr.update(choices=text.reference_choices(record), value=reference),
            "drc": gr.update(value=str(record.bitstream_path), interactive=True,
                             label=f"Download bitstream (.{record.suffix})")}


def progress(record: RunRecord, device: str) -> dict:
    """The newest step."""
    k = record.steps_run
    return {"record": record, "current": record.frame_file(k), "plot": plot(record, k),
            "status": text.status(record, "step", device), "step": gr.update(value=k)}


def finished(record: RunRecord, shown: View, device: str, missing: str | None) -> dict:
    """The last step, the slider free to move, and the view of the last step."""
    k = record.steps_run
    return {"status": text.status(record, "finished", device, missing),
            "step": gr.update(maximum=max(k, 1), value=k, interactive=k > 0), "paint_on": record.protection.on,
            **view(record, k, shown, device)}


def compared(record: RunRecord, device: str, missing: str | None) -> dict:
    """The same-bytes files (at most the run's bytes), as points in the plane and references for the
    before/after slider."""
    return {"status": text.status(record, "compared", device, missing), "plot": plot(record, record.steps_run),
            "reference": gr.update(choices=text.reference_choices(record))}


def example(record: RunRecord, page: PageSettings, shown: View, device: str, missing: str | None) -> dict:
    """A cached example's finished run, shown at once: as a run's start, end and comparison in one."""
    return {**started(record, shown.reference), **finished(record, shown, device, missing),
            **compared(record, device, missing), "current": record.frame_file(record.steps_run),
            "reference": gr.update(choices=text.reference_choices(record), value=shown.reference),
            "status": text.example_status(record, page, missing)}


def cleared(status: str, choices: list[str], reference: str) -> dict:
    """``status`` over an emptied panel: a new run deletes the previous run's files, so nothing
    on the page may still point at them (the reference radio keeps only ``choices``)."""
    off = gr.update(value=None, interactive=False)
    return {"record": None, "status": status, "base": None, "current": None, "plot": None,
            "step": gr.update(value=0, interactive=False), "step_md": "", "compare": None, "crop": None,
            "reference": gr.update(choices=choices, value=reference if reference in choices else choices[0]),
            "png": off, "drc": off, "paint_md": "", "paint_on": True}


def failed(exc: Exception, choices: list[str], reference: str) -> dict:
    """A refused run: its sentence as a toast and in the emptied panel's status line."""
    gr.Warning(str(exc))
    return cleared(text.failed(exc), choices, reference)


def canvas(record) -> dict:
    """The paint editor once a run has ended: its last step under the mask drawn, with a brush sized
    to the image; empty without a finished run (as a run starts, or after a failure)."""
    if not (isinstance(record, RunRecord) and record.done):
        return {"paint": None}
    return {"paint": gr.update(value=record.paint_editor(), brush=brush(brush_radius(record.width, record.height)))}


def codec_controls(pipe: DiracPipeline, codec: str, weight: float | None = None) -> tuple:
    """For the chosen codec: its rate slider shown (the quality slider relabelled, or the weight
    slider at ``weight`` and its λ line), the thresholding box where its model has a table,
    refinement where the codec refines, and steps disabled with a note where it has no DIRAC model."""
    note = text.missing_model_note(pipe, codec)
    steps = (gr.update(value=DEFAULT_STEPS, interactive=True) if pipe.has_model(codec)
             else gr.update(value=0, interactive=False))
    weights = weight_slider(codec, weight)
    return (gr.update(**quality_slider(codec)), gr.update(**weights),
            gr.update(value=text.weight_text(codec, weights["value"]), visible=weights["visible"]),
            gr.update(visible=bool(pipe.thresholds(codec))), gr.update(visible=CODECS[codec].refines), steps,
            gr.update(value=text.warning(note), visible=bool(note)))


def offer(enc, nbytes: int, pick=None, picture=None) -> tuple:
    """For an upload that is a plain file a codec reads (``enc``, else None): the note about
    enhancing it as it is, the button that does, and for a file over the page's limit the
    overview to choose its window on (``picture``: the overview's file) with the choice (``pick``)."""
    if enc is None:
        return (gr.update(value="", visible=False), gr.update(visible=False), gr.update(value=None, visible=False),
                None)
    return (gr.update(value=text.file_offer(enc, nbytes, pick), visible=True),
            gr.update(value=text.as_is_button(enc, pick), visible=True), window_picture(pick, picture), pick)


def window_picture(pick, picture) -> dict:
    """The overview with its window drawn (hidden without a window to choose)."""
    if pick is None:
        return gr.update(value=None, visible=False)
    return gr.update(value=str(picture), label=text.window_label(pick), visible=True)
