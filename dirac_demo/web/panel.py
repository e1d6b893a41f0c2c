"""The result components of one tab, and the mapping of the adapter's keyed updates onto them."""
from __future__ import annotations

from dataclasses import dataclass, fields

import gradio as gr

from .updates import canvas


@dataclass
class Panel:
    """The result components of one tab, addressed by the adapter's output keys."""

    record: gr.State
    status: gr.Markdown
    base: gr.Image
    current: gr.Image
    plot: gr.ScatterPlot
    step: gr.Slider
    step_md: gr.Markdown
    reference: gr.Radio
    compare: gr.ImageSlider
    crop_x: gr.Slider
    crop_y: gr.Slider
    zoom: gr.Radio
    crop: gr.Image
    png: gr.DownloadButton
    stop: gr.State
    drc: gr.DownloadButton | None = None
    paint: gr.ImageEditor | None = None
    paint_md: gr.Markdown | None = None
    paint_on: gr.Checkbox | None = None
    paint_clear: gr.Button | None = None
    paint_rev: gr.State | None = None   # one up each time the protect mask changes: shows the step again

    @property
    def outputs(self) -> list:
        """What a run or a view updates (the reference radio too: its choices follow the run); not the
        paint editor, which :meth:`canvas` sets on its own."""
        skipped = {"zoom", "stop", "paint", "paint_clear", "paint_rev"}
        return [getattr(self, f.name) for f in fields(self)
                if f.name not in skipped and getattr(self, f.name) is not None]

    @property
    def view_inputs(self) -> list:
        """The view's components after the record and the step: reference, crop x and y, zoom."""
        return [self.reference, self.crop_x, self.crop_y, self.zoom]

    def canvas(self) -> dict:
        """The arguments of the event that sets the paint editor after a run (or empties it)."""
        return dict(fn=self.bind(canvas), inputs=self.record, outputs=self.paint, api_visibility="private",
                    show_progress="hidden")

    def map(self, update: dict):
        """``update``'s keys as this panel's components; Gradio's skip() for nothing to change (as
        Gradio reads an empty dict as one output value)."""
        return {getattr(self, k): v for k, v in update.items() if getattr(self, k) is not None} or gr.skip()

    def bind(self, method):
        """Handler returning ``method``'s keyed update mapped onto this panel's components."""
        return lambda *args: self.map(method(*args))

    def bind_stream(self, method):
        """Generator handler streaming ``method``'s keyed updates onto this panel's components."""
        def handler(*args):
            for update in method(*args):
                yield self.map(update)
        return handler
