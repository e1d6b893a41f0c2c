"""The DIRAC demo page: ``python app.py`` serves it on port 7860 (or ``GRADIO_SERVER_PORT``).

This file only lays out ``gr.Blocks`` and wires its events to :class:`~dirac_demo.web.adapter.DiracDemo`,
the one adapter between the page and a :class:`dirac_demo.DiracPipeline`; models load in :func:`main`,
never at import. Handlers receive the components' values positionally and build the settings
dataclasses of :mod:`dirac_demo.web.settings` here, at the edge. Weights come from ``DIRAC_ASSETS``
(default: the shipped ``assets/``) or the Hub repo ``DIRAC_HUB_REPO``.
"""
from __future__ import annotations

import os
import threading
from dataclasses import fields
from pathlib import Path

import gradio as gr

from dirac_demo import DiracPipeline, __version__, load_pipeline
from dirac_demo.codecs import CODECS
from dirac_demo.web import painting, text
from dirac_demo.web.adapter import DiracDemo
from dirac_demo.web.api import MAX_REFINE, refining_codecs
from dirac_demo.web.controls import codec_choices, quality_slider, weight_slider
from dirac_demo.web.panel import Panel
from dirac_demo.web.plane import PLANE_COLORS
from dirac_demo.web.settings import (APP_MAX_PIXELS, DEFAULT_CODEC, DEFAULT_QUALITY, DEFAULT_STEPS, MAX_SEED,
                                     MAX_STEPS, PageSettings, ReceiverSettings, View)
from dirac_demo.web.state import StopFlag, cleanup_record
from dirac_demo.web.updates import brush

EXAMPLES = Path(__file__).resolve().parent / "assets" / "examples"
# Brings the result column into view when a run starts (the phone's single column puts it below).
SCROLL_TO_RESULTS = """() => document.querySelector('#%s-results')?.scrollIntoView({block: 'start'})"""
QUEUE_SIZE = int(os.environ.get("DIRAC_QUEUE_SIZE", "16"))       # waiting visitors before "queue full"
CONCURRENCY = int(os.environ.get("DIRAC_CONCURRENCY", "2"))     # runs on the model at once
CSS = """
.crop-view .image-container > button { overflow-x: auto !important; justify-content: safe center !important; }
.crop-view .image-frame { flex: none !important; }
.crop-view img { object-fit: none !important; max-width: none !important; max-height: none !important;
                 width: auto !important; height: auto !important; image-rendering: pixelated; }
.plane-plot { max-width: 760px; }
.paint-editor button[aria-label="Clear canvas"] { display: none !important; }
"""


def _edge(method, settings_type: type):
    """``method`` as Gradio calls it: the values (first, *settings, previous record, stop flag, *view)
    become (first, settings_type(*settings), previous record, stop flag, View(*view))."""
    n = len(fields(settings_type))

    def handler(first, *values):
        previous, stop, *view = values[n:]
        return method(first, settings_type(*values[:n]), previous, stop, View(*view))
    return handler


# ---- page -------------------------------------------------------------------------------
def _results(kind: str) -> Panel:
    """The output area shared by both tabs: live view, plot, then the step explorer."""
    sender = kind == "send"
    record = gr.State(None, time_to_live=3600, delete_callback=cleanup_record)
    stop = gr.State(StopFlag())
    status = gr.Markdown(text.RESULTS_PLACEHOLDER, elem_id=f"{kind}-status")
    with gr.Row():   # the streaming step large enough to see a step change, the base beside it for reference
        current = gr.Image(label="Latest DIRAC step (click to place the crop)", format="png", interactive=False,
                           height=460, scale=3, min_width=320, elem_id=f"{kind}-current")
        base = gr.Image(label="Base reconstruction (step 0)", format="png", interactive=False, height=220,
                        scale=1, min_width=160, elem_id=f"{kind}-base")
    plot = gr.ScatterPlot(x="swd", y="psnr", color="point", x_title="SWD (lower: more realistic texture)",
                          y_title="PSNR (dB)", color_title="", y_axis_format=".2~f", color_map=PLANE_COLORS,
                          title="Distortion–perception plane", caption=text.PLANE_NOTE,
                          tooltip=["frame", "psnr", "swd"],
                          visible=sender, elem_id=f"{kind}-plane", elem_classes="plane-plot")
    gr.Markdown(text.TRAVERSAL_NOTE)
    step = gr.Slider(0, DEFAULT_STEPS, value=0, step=1, label="Show step (0 = base)", interactive=False,
                     elem_id=f"{kind}-step")
    step_md = gr.Markdown(elem_id=f"{kind}-step-md")
    compare = gr.ImageSlider(label="Before / after: drag the handle", format="png", interactive=False,
                             max_height=520, elem_id=f"{kind}-compare")
    with gr.Row():
        with gr.Column():
            reference = gr.Radio(["original", "base"] if sender else ["base"], value="original" if sender
                                 else "base", label="Compare the step with", elem_id=f"{kind}-reference")
            zoom = gr.Radio([("1×", 1), ("2×", 2), ("3×", 3)], value=2, label="Crop zoom (pixel copies)")
        with gr.Column():
            crop_x = gr.Slider(0, 100, value=50, step=1, label="Crop position x (%)")
            crop_y = gr.Slider(0, 100, value=50, step=1, label="Crop position y (%)")
    crop = gr.Image(label="Full-resolution crop: " + ("original | base | step" if sender else "base | step"),
                    format="png", interactive=False, elem_id=f"{kind}-crop", elem_classes="crop-view")
    paint, paint_md, paint_on, paint_clear = _paint_controls(kind)
    paint_rev = gr.State(0)
    with gr.Row():
        drc = (gr.DownloadButton("Download bitstream (.drc)", interactive=False, elem_id=f"{kind}-drc")
               if sender else None)
        png = gr.DownloadButton("Download PNG at this step", interactive=False, elem_id=f"{kind}-png")
    return Panel(record, status, base, current, plot, step, step_md, reference, compare, crop_x, crop_y,
                 zoom, crop, png, stop, drc, paint, paint_md, paint_on, paint_clear, paint_rev)


def _paint_controls(kind: str) -> tuple:
    """The brush over the last step, its line, the protection toggle and the clear button."""
    gr.Markdown(text.PAINT_NOTE)
    # Always editable: as an event's output, Gradio 6.31's read-only ImageEditor fails in the browser
    # ("reading 'get_data'"). Without a finished run there is nothing to paint on and its events do nothing.
    paint = gr.ImageEditor(label="Paint over the last step", type="pil", image_mode="RGBA", format="png",
                           sources=(), transforms=(), layers=False, brush=brush(), eraser=gr.Eraser(), buttons=[],
                           height="min(520px, 85vw)", interactive=True, elem_id=f"{kind}-paint",
                           elem_classes="paint-editor")
    paint_md = gr.Markdown(elem_id=f"{kind}-paint-md")
    with gr.Row():
        paint_on = gr.Checkbox(True, label="Apply painted protection", elem_id=f"{kind}-paint-on")
        paint_clear = gr.Button("Clear painted regions", size="sm", elem_id=f"{kind}-paint-clear")
    return paint, paint_md, paint_on, paint_clear


def _wire_panel(app: DiracDemo, p: Panel) -> None:
    """Step slider, comparison and crop controls, click-to-crop and the paint controls of one tab."""
    view = p.bind(lambda record, k, *shown: app.view(record, k, View(*shown)))
    inputs = [p.record, p.step, *p.view_inputs]
    triggers = [p.step.input, p.reference.input, p.crop_x.input, p.crop_y.input, p.zoom.input, p.paint_rev.change]
    gr.on(triggers, view, inputs=inputs, outputs=p.outputs, api_visibility="private",
          trigger_mode="always_last", show_progress="hidden", concurrency_limit=4, concurrency_id="view")
    p.current.select(painting.pick_crop, inputs=p.record, outputs=[p.crop_x, p.crop_y],
                     api_visibility="private", show_progress="hidden").then(
        view, inputs=inputs, outputs=p.outputs, api_visibility="private", show_progress="hidden")
    quiet = dict(outputs=p.paint_rev, api_visibility="private", trigger_mode="always_last", show_progress="hidden",
                 concurrency_limit=4, concurrency_id="view")
    p.paint.input(painting.paint, inputs=[p.record, p.paint, p.paint_rev], **quiet)
    p.paint_on.input(painting.toggle, inputs=[p.record, p.paint_on, p.paint_rev], **quiet)
    p.paint_clear.click(painting.clear, inputs=[p.record, p.paint_rev], **quiet).then(**p.canvas())


def _steps_slider(value: int, **kwargs) -> gr.Slider:
    return gr.Slider(0, MAX_STEPS, value=value, step=1, label=text.STEPS_LABEL, info=text.STEPS_INFO, **kwargs)


def _threshold_box(**kwargs) -> gr.Checkbox:
    return gr.Checkbox(True, label=text.THRESHOLD_LABEL, info=text.THRESHOLD_INFO, **kwargs)


def _codec_controls(pipe: DiracPipeline) -> dict:
    """Codec, its rate slider (a quality, or a weight λ over −log10 λ), thresholding, refinement, steps."""
    first = DEFAULT_CODEC
    with gr.Group():
        codec = gr.Radio(codec_choices(), value=first, label="Base codec", elem_id="send-codec")
        quality = gr.Slider(**quality_slider(first))
        weights = weight_slider(first)
        weight = gr.Slider(**weights)
        weight_md = gr.Markdown(text.weight_text(first, weights["value"]), visible=weights["visible"], padding=True)
        threshold = _threshold_box(visible=bool(pipe.thresholds(first)))
        refine = gr.Checkbox(False, visible=CODECS[first].refines, elem_id="send-refine", label=text.REFINE_LABEL,
                             info=text.REFINE_INFO)
    first_note = text.missing_model_note(pipe, first)
    note = gr.Markdown(text.warning(first_note), visible=bool(first_note))
    steps = _steps_slider(DEFAULT_STEPS if pipe.has_model(first) else 0, interactive=pipe.has_model(first),
                          elem_id="send-steps")
    weight.change(text.weight_text, inputs=[codec, weight], outputs=weight_md, queue=False, api_visibility="private",
                  show_progress="hidden")
    return dict(codec=codec, quality=quality, weight=weight, weight_md=weight_md, threshold=threshold,
                refine=refine, note=note, steps=steps)


def _sender_tab(app: DiracDemo) -> dict:
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            image = gr.Image(label="Input image", type="filepath", image_mode=None, format="png",
                             sources=["upload", "clipboard", "webcam"], height=280, elem_id="input-image")
            with gr.Row():
                run = gr.Button("Compress and enhance", variant="primary", elem_id="send-run")
                stop = gr.Button("Stop", variant="stop", elem_id="send-stop")
            offer = gr.Markdown(visible=False, elem_id="send-file-note")
            as_is = gr.Button("Enhance this file as it is", visible=False, elem_id="send-as-is")
            picker = gr.Image(label="Window", type="filepath", interactive=False, visible=False, height=320,
                              buttons=[], elem_id="window-picker")
            pick = gr.State(None)
            # thumbnails on the page; a click puts the full file in the input
            gallery = (gr.Dataset(components=[gr.Image(type="filepath", render=False)], type="index",
                                  samples=[[thumb] for thumb, _ in app.examples.thumbnails()],
                                  elem_id="example-gallery",
                                  label=text.EXAMPLES_LABEL)
                       if app.examples.paths else None)
            c = _codec_controls(app.pipe)
            with gr.Row():
                seed = gr.Number(0, precision=0, label="Seed", minimum=0, maximum=MAX_SEED)
                downscale = gr.Checkbox(True, label=text.downscale_label(app.pipe.max_pixels))
        with gr.Column(scale=2, elem_id="send-results"):
            panel = _results("send")
    image.change(app.offer_file, inputs=image, outputs=[offer, as_is, picker, pick], api_visibility="private",
                 show_progress="hidden", preprocess=False)
    picker.select(app.move_window, inputs=pick, outputs=[picker, pick], api_visibility="private",
                  show_progress="hidden")
    c["codec"].change(app.codec_controls, inputs=[c["codec"], c["weight"]], queue=False, api_visibility="private",
                      outputs=[c["quality"], c["weight"], c["weight_md"], c["threshold"], c["refine"], c["steps"],
                               c["note"]])
    controls = {**c, "seed": seed, "downscale": downscale, "window": pick}
    settings = [controls[f.name] for f in fields(PageSettings)]
    after = [panel.record, panel.stop, *panel.view_inputs]
    if gallery is not None:
        _wire_examples(app, gallery, image, [gallery, *settings, *after], panel)
    as_is_settings = [controls[f.name] for f in fields(ReceiverSettings)]
    starts = [(run, _edge(app.send, PageSettings), [image, *settings, *after]),
              (as_is, _edge(app.enhance_file, ReceiverSettings), [image, *as_is_settings, *after])]
    return dict(kind="send", stop=stop, panel=panel, starts=starts)


def _wire_examples(app: DiracDemo, gallery: gr.Dataset, image: gr.Image, inputs: list, panel: Panel) -> None:
    """A click on an example: its file in the input, its cached run in the panel, then the paint editor."""
    pick_example = _edge(app.pick_example, PageSettings)

    def pick(*values):
        path, update = pick_example(*values)
        shown = panel.map(update)
        return {image: path, **(shown if isinstance(shown, dict) else {})}
    gallery.click(pick, inputs=inputs, outputs=[image, *panel.outputs], api_visibility="private",
                  show_progress="minimal", concurrency_limit=4, concurrency_id="view").then(**panel.canvas())


def _receiver_tab(app: DiracDemo) -> dict:
    gr.Markdown(text.RECEIVER_INTRO)
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            drc = gr.File(label=text.RECEIVER_FILE, type="filepath", elem_id="rx-file",
                          file_types=[".drc", *(end for c in CODECS.values() for end in c.plain_files)])
            steps = _steps_slider(DEFAULT_STEPS)
            seed = gr.Number(0, precision=0, label="Seed", minimum=0, maximum=MAX_SEED)
            threshold = _threshold_box()
            with gr.Row():
                run = gr.Button("Decode and enhance", variant="primary", elem_id="rx-run")
                stop = gr.Button("Stop", variant="stop", elem_id="rx-stop")
        with gr.Column(scale=2, elem_id="rx-results"):
            panel = _results("rx")
    inputs = [drc, steps, seed, threshold, gr.State(None), panel.record, panel.stop, *panel.view_inputs]
    return dict(kind="rx", stop=stop, panel=panel, starts=[(run, _edge(app.receive, ReceiverSettings), inputs)])


def _run_events(app: DiracDemo, tab: dict) -> None:
    """The buttons that start a run in one tab (the first scrolls to the results) and its stop
    button, then its panel's controls."""
    p = tab["panel"]
    run = dict(outputs=p.outputs, api_visibility="private", concurrency_id="dirac", concurrency_limit=CONCURRENCY,
               show_progress="minimal", preprocess=False)
    # first: the page runs a trigger's events in order, each after the previous one has finished
    tab["starts"][0][0].click(None, js=SCROLL_TO_RESULTS % tab["kind"], queue=False, api_visibility="private")
    for button, handler, inputs in tab["starts"]:   # the editor empties as a run starts, shows its last step after
        button.click(lambda: None, outputs=p.paint, queue=False, api_visibility="private", show_progress="hidden")
        button.click(p.bind_stream(handler), inputs=inputs, **run).then(**p.canvas())
    # Not Gradio's `cancels`: the run itself ends between steps and shows what it has, so no
    # late update from a killed run can overwrite the page.
    tab["stop"].click(StopFlag.request, inputs=p.stop, api_visibility="private", queue=False)
    _wire_panel(app, p)


def _api(app: DiracDemo) -> None:
    """Hidden components behind the /enhance and /decode endpoints (see the API page)."""
    with gr.Row(visible=False):
        image = gr.Image(type="filepath", image_mode=None, label="image")
        codec = gr.Radio(list(CODECS), value=DEFAULT_CODEC, label="codec")
        rate = gr.Number(DEFAULT_QUALITY, label=text.api_rate_label())
        steps = gr.Number(DEFAULT_STEPS, precision=0, minimum=0, maximum=MAX_STEPS, label="steps")
        seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_SEED, label="seed")
        threshold = gr.Checkbox(True, label="threshold")
        refine = gr.Number(0, precision=0, minimum=0, maximum=MAX_REFINE,
                           label=text.api_refine_label(refining_codecs()))
        bitstream = gr.File(type="filepath", label="bitstream")
        protect = gr.File(type="filepath", label="protect (mask image: bright or opaque regions stay at step 1)")
        window = gr.Textbox("", label=text.API_WINDOW_LABEL)
        out = [gr.Image(format="png", label="image"), gr.JSON(label="metrics"), gr.File(label="bitstream")]
        enhance, decode = gr.Button(), gr.Button()
    api = dict(outputs=out, concurrency_id="dirac", concurrency_limit=CONCURRENCY, preprocess=False)
    enhance.click(app.enhance, inputs=[image, codec, rate, steps, seed, threshold, refine, protect],
                  api_name="enhance", **api)
    decode.click(app.decode, inputs=[bitstream, steps, seed, threshold, protect, window], api_name="decode", **api)


def build_demo(pipe: DiracPipeline, workdir: str | None = None, example_cache: str | None = None) -> gr.Blocks:
    """The whole page over one pipeline, with its queue configured; launch it with :func:`launch`.

    ``workdir`` holds the per-run download files (default: a new temporary folder).
    ``example_cache``: when the examples' finished runs are made: "background" (a thread started
    here, so the server starts at once), "now" (before returning) or "off"; default "background",
    or "off" when the environment variable ``DIRAC_EXAMPLE_CACHE`` is 0.
    """
    app = DiracDemo(pipe, workdir, EXAMPLES)
    if example_cache is None:
        example_cache = "off" if os.environ.get("DIRAC_EXAMPLE_CACHE", "1") == "0" else "background"
    if example_cache == "now":
        app.cache_examples()
    elif example_cache == "background":
        threading.Thread(target=app.cache_examples, name="example-cache", daemon=True).start()
    with gr.Blocks(title="DIRAC: diffusion residual enhancement", delete_cache=(1800, 3600),
                   analytics_enabled=False) as demo:
        gr.Markdown(text.header(pipe, __version__), elem_id="header")
        with gr.Tab("Compress and enhance"):
            sender = _sender_tab(app)
        with gr.Tab("Receiver: decode a bitstream", elem_id="rx-tab"):
            receiver = _receiver_tab(app)
        _run_events(app, sender)
        _run_events(app, receiver)
        _api(app)
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)
    return demo


def launch(demo: gr.Blocks, **kwargs):
    """Start the server with the page's CSS and upload limit (kwargs go to ``Blocks.launch``)."""
    return demo.launch(css=CSS, max_file_size="25mb", **kwargs)


def main() -> None:
    """Load the shipped (or Hub) weights and serve the page."""
    pipe = load_pipeline(os.environ.get("DIRAC_ASSETS"), os.environ.get("DIRAC_HUB_REPO"),
                         max_pixels=int(os.environ.get("DIRAC_MAX_PIXELS", str(APP_MAX_PIXELS))))
    launch(build_demo(pipe))


if __name__ == "__main__":
    main()
