"""The handlers of a finished run's own controls: the paint editor and a click on the latest step.

They change a run only through its record's methods and never run the pipeline; the view then
composes the stored frames (:meth:`DiracDemo.view`). Each paint handler returns the paint revision,
one up when what the page shows changed (its change event shows the step again), else Gradio's
skip(): so the events an editor fires when a run empties or fills it update nothing while a run
streams.
"""
from __future__ import annotations

import gradio as gr

from .paint import editor_mask
from .state import RunRecord


def _done(record) -> bool:
    """Whether ``record`` is a finished run whose files are still there (paint acts on those only)."""
    return isinstance(record, RunRecord) and record.done


def _bumped(rev, changed: bool):
    """The paint revision after a paint event: one up when the mask changed, else Gradio's skip()."""
    return int(rev or 0) + 1 if changed else gr.skip()


def paint(record, value, rev):
    """The editor's strokes: its layers become the protect mask."""
    if not _done(record) or not isinstance(value, dict) or value.get("background") is None:
        return gr.skip()                        # nothing to paint on: no finished run
    return _bumped(rev, record.paint(editor_mask(value, record.width, record.height)))


def toggle(record, on, rev):
    """'Apply painted protection': the chosen step with or without the mask."""
    return _bumped(rev, record.apply_paint(bool(on))) if _done(record) else gr.skip()


def clear(record, rev):
    """'Clear painted regions': no mask (nor the file's); the canvas then empties the editor."""
    return _bumped(rev, record.paint(None)) if _done(record) else gr.skip()


def pick_crop(record, evt: gr.SelectData) -> tuple:
    """A click on the current image centres the full-resolution crop there."""
    if not isinstance(record, RunRecord):
        return gr.skip(), gr.skip()
    return record.crop_center(*evt.index[:2])
