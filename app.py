"""The DIRAC demo page: ``python app.py`` serves it on port 7860 (or ``GRADIO_SERVER_PORT``).

This file only builds ``gr.Blocks`` and wires its events to :class:`DiracDemo`, the one adapter
between the page and a :class:`dirac_demo.DiracPipeline`; models load in :func:`main`, never at
import. Weights come from ``DIRAC_ASSETS`` (default: the shipped ``assets/``) or the Hub repo
``DIRAC_HUB_REPO``.
"""
from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
from contextlib import closing
from dataclasses import dataclass, fields
from pathlib import Path

import gradio as gr
from PIL import Image

from dirac_demo import Compressed, DiracError, DiracPipeline, InputError, StepResult, __version__, load_pipeline
from dirac_demo.codecs import read as read_encoded
from dirac_demo.codecs.bitstream import QUALITY_CODECS
from dirac_demo.codecs.neural import MAX_REFINE
from dirac_demo.errors import TooLargeError
from dirac_demo.references import references
from dirac_demo.protect import read_mask
from dirac_demo.ui_state import (APP_MAX_PIXELS, AVIF_QUALITY_INFO, DEFAULT_AVIF_QUALITY, QUALITY_LABELS, DEFAULT_NEURAL_RATE, DEFAULT_QF, DEFAULT_STEPS, MAX_SEED,
                                   MAX_STEPS, NEURAL_RATE_INFO, NEURAL_RATE_LABEL, NEURAL_RATE_MAX,
                                   NEURAL_RATE_MIN, PAINT_COLOR, PAINT_NOTE, PAINT_OPACITY, PLANE_COLORS, PLANE_NOTE,
                                   QF_INFO, REFINE_INFO, REFINE_LABEL, STEPS_INFO, STEPS_LABEL, THRESHOLD_INFO,
                                   THRESHOLD_LABEL, UI_REFINE_ITERS, ExampleCache, RunRecord, StopFlag, api_rate,
                                   brush_radius, cleanup_record, default_settings_note, device_label,
                                   downscale_advice, downscale_label, editor_mask, file_stem, flag,
                                   has_threshold_table, jpeg_offer, lmbda_from_slider, lmbda_text,
                                   missing_model_note, models_markdown, read_bitstream, same_bytes_codecs,
                                   usable_steps, whole)

try:   # ZeroGPU on Hugging Face Spaces: the GPU is attached only inside spaces.GPU functions
    import spaces
except ImportError:
    spaces = None

EXAMPLES = Path(__file__).resolve().parent / "assets" / "examples"
THUMBNAIL = 160                                                  # the examples' thumbnails: longer side, px
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
LOG = logging.getLogger("dirac_demo.app")


# ZeroGPU runs a spaces.GPU function in a worker process and pickles its arguments, so the GPU
# functions take a key into this registry rather than the pipeline and its models.
_PIPELINES: dict[int, DiracPipeline] = {}


def _on_gpu(fn):
    return spaces.GPU(duration=120)(fn) if spaces is not None else fn


@_on_gpu
def gpu_send(key: int, image: str, codec: str, rate: float, steps: int, seed: int, threshold: bool,
             downscale: bool, refine: int, protect: str | None = None):
    """:meth:`DiracPipeline.run` on a registered pipeline, each step with its live SWD (on ZeroGPU:
    with the GPU attached); ``protect``: a mask image sent in the file."""
    yield from _PIPELINES[key].run(image, codec, rate, steps, seed=seed, threshold=threshold,
                                   downscale=downscale, refine=refine, with_swd=True, protect=protect)


@_on_gpu
def gpu_receive(key: int, data: bytes, steps: int, seed: int, threshold: bool):
    """:meth:`DiracPipeline.run_bitstream` on a registered pipeline (on ZeroGPU: with the GPU attached)."""
    yield from _PIPELINES[key].run_bitstream(data, steps, seed=seed, threshold=threshold)


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
        paint editor, which :meth:`DiracDemo.paint_canvas` sets on its own."""
        skipped = {"zoom", "stop", "paint", "paint_clear", "paint_rev"}
        return [getattr(self, f.name) for f in fields(self)
                if f.name not in skipped and getattr(self, f.name) is not None]

    def canvas(self, app: DiracDemo) -> dict:
        """The arguments of the event that sets the paint editor after a run (or empties it)."""
        return dict(fn=self.bind(app.paint_canvas), inputs=self.record, outputs=self.paint,
                    api_visibility="private", show_progress="hidden")

    @property
    def view_inputs(self) -> list:
        return [self.record, self.step, self.reference, self.crop_x, self.crop_y, self.zoom]

    def _map(self, update: dict):
        """``update``'s keys as this panel's components; Gradio's skip() for nothing to change (as
        Gradio reads an empty dict as one output value)."""
        return {getattr(self, k): v for k, v in update.items() if getattr(self, k) is not None} or gr.skip()

    def bind(self, method):
        """Handler returning ``method``'s keyed update mapped onto this panel's components."""
        return lambda *args: self._map(method(*args))

    def bind_stream(self, method):
        """Generator handler streaming ``method``'s keyed updates onto this panel's components."""
        def handler(*args):
            for update in method(*args):
                yield self._map(update)
        return handler


class DiracDemo:
    """The page's one handle on the pipeline: each public method is an event handler."""

    def __init__(self, pipe: DiracPipeline, workdir: str | None = None) -> None:
        self.pipe, self.key = pipe, id(pipe)
        _PIPELINES[self.key] = pipe
        self.device = device_label(pipe)
        if workdir is None:   # download files, one folder per run, removed with the session's state
            workdir = tempfile.mkdtemp(prefix="dirac-demo-")
            atexit.register(shutil.rmtree, workdir, ignore_errors=True)
        self.workroot = workdir
        self.examples = sorted(EXAMPLES.glob("*.png")) + sorted(EXAMPLES.glob("*.jpg"))
        self.cache = ExampleCache([p.name for p in self.examples])

    # ---- the examples -------------------------------------------------------------------
    def thumbnails(self) -> list[tuple[str, str]]:
        """Small JPEG thumbnails of the examples in the work folder, with their captions."""
        folder = Path(self.workroot) / "thumbnails"
        folder.mkdir(parents=True, exist_ok=True)
        shown = []
        for path in self.examples:
            thumb = folder / f"{path.stem}.jpg"
            with Image.open(path) as im:
                im = im.convert("RGB")
                im.thumbnail((THUMBNAIL, THUMBNAIL))
                im.save(thumb, quality=85)
            shown.append((str(thumb), path.stem))
        return shown

    def cache_examples(self) -> None:
        """Run every example at the page's default settings and keep the finished run (WebP and AVIF
        files included), so that picking one shows it at once."""
        if "jpeg" not in self.pipe.dirac:
            return
        root = Path(self.workroot) / "examples"
        root.mkdir(parents=True, exist_ok=True)
        for path in self.examples:
            try:
                events, steps = self._send_events(str(path), "jpeg", DEFAULT_QF, DEFAULT_STEPS, 0, True, True, 0,
                                                  True)
                record = None
                with closing(events):
                    for ev in events:
                        if isinstance(ev, Compressed):
                            record = RunRecord.start(ev, steps, file_stem(str(path)), root)
                        elif isinstance(ev, StepResult):
                            record.add(ev)
                self._measure_same_bytes(record)
                for k in (0, record.steps_run):      # the files a click shows first
                    record.frame_file(k)
                record.save("original", record.original)
                self.cache.put(path.name, record)
            except DiracError:
                LOG.exception("example %s could not be cached", path.name)

    def pick_example(self, index, codec, qf, steps, seed, threshold, previous, stop: StopFlag, *view):
        """A click on an example: its image in the input and, once cached, its finished run at the
        default settings (a live run stays on the run button)."""
        path = self.examples[int(index)]
        record = self.cache.get(path.name, self.workroot)
        served = Path(self.workroot) / "inputs" / path.name   # in the work folder: Gradio serves files from there
        if not served.exists():   # staged, so two first clicks at once never serve a half-copied file
            served.parent.mkdir(parents=True, exist_ok=True)
            staging = served.with_name(f".{served.name}.{threading.get_ident()}")
            shutil.copyfile(path, staging)
            os.replace(staging, served)
        if record is None:
            return str(served), {"status": f"Loaded {path.name}. Its finished run at the default settings is being "
                                         "prepared; press **Compress and enhance** to run it now."}
        cleanup_record(previous)
        stop.clear()
        view = (record.reference_or_default(view[0]), *view[1:])
        update = {**self._started(record, view[0]), **self._finished(record, view), **self._same_bytes_shown(record)}
        update["current"] = record.frame_file(record.steps_run)
        update["reference"] = gr.update(choices=record.reference_choices(), value=view[0])
        update["status"] = _lines(default_settings_note(codec, qf, steps, seed, threshold), update["status"])
        return str(served), update

    # ---- page events ------------------------------------------------------------------
    def send(self, image, codec, qf, neural_rate, steps, seed, threshold, downscale, refine, previous,
             stop: StopFlag, *view):
        """Run button: compress, then stream every DDIM step to the page until done or stopped."""
        cleanup_record(previous)
        stop.clear()
        try:
            image = _upload(image, "Upload an image first, or pick an example.")
            rate = api_rate(codec, qf) if codec != "neural" else lmbda_from_slider(neural_rate)
            refine = UI_REFINE_ITERS if refine and codec == "neural" else 0
            events, steps = self._send_events(image, codec, rate, steps, seed, threshold, downscale, refine,
                                              False)
            # the previous run's outputs go at once; say why the page waits for the encoder
            yield self._cleared(f"Refining the encoding for a smaller file ({refine} iterations)…" if refine
                                else "Compressing…", _SENDER_REFERENCES, view[0])
            yield from self._stream(events, steps, file_stem(image), stop, view)
        except TooLargeError as exc:
            yield self._failed(exc.advise(downscale_advice(self.pipe.max_pixels)), _SENDER_REFERENCES, view[0])
        except DiracError as exc:
            yield self._failed(exc, _SENDER_REFERENCES, view[0])

    def receive(self, path, steps, seed, threshold, previous, stop: StopFlag, *view,
                missing: str = "Upload a .drc bitstream file first."):
        """Receiver tab: decode an uploaded bitstream and stream its enhancement."""
        cleanup_record(previous)
        stop.clear()
        try:
            path = _upload(path, missing)
            events, steps = self._receive_events(path, steps, seed, threshold, strict=False)
            yield self._cleared("Decoding…", ["base"], view[0])
            yield from self._stream(events, steps, file_stem(path), stop, view)
        except DiracError as exc:
            yield self._failed(exc, ["base"], view[0])

    def enhance_file(self, image, *rest):
        """Sender tab, for a JPEG upload: enhance the file as it is (its bytes are the bitstream)."""
        yield from self.receive(image, *rest, missing="Upload a JPEG file first.")

    def offer_file(self, image) -> tuple:
        """An upload that is a JPEG file: show what enhancing it as it is means, and its button."""
        text = jpeg_offer(_optional(image))
        return gr.update(value=text or "", visible=bool(text)), gr.update(visible=bool(text))

    def view(self, record, k, reference, cx, cy, zoom) -> dict:
        """Step slider and crop controls: show frame k from the record; nothing is recomputed."""
        if not isinstance(record, RunRecord) or not record.workdir.exists():
            return {}
        k = min(int(k), record.steps_run)
        shot = record.same_bytes.get(reference)
        line = record.step_line(k, self.device) + (f"  \nCompared with {shot.facts()}" if shot else "")
        return {"step_md": line, "compare": record.pair(k, reference), "plot": _plot(record, k),
                "crop": record.crop_file(k, cx, cy, zoom), "paint_md": record.paint_line(k),
                "png": gr.update(value=str(record.frame_file(k)), interactive=True)}

    # ---- painted protection: the mask changes, then :meth:`view` composes stored frames -------
    # Each returns the paint revision, one up when what the page shows changed (its change event
    # runs view), else skip(): so the events an editor fires when a run empties or fills it
    # update nothing while a run streams.
    @staticmethod
    def paint(record, value, rev):
        """The editor's strokes: its layers become the protect mask."""
        if not _done(record) or not isinstance(value, dict) or value.get("background") is None:
            return gr.skip()                        # nothing to paint on: no finished run
        return _bumped(rev, record.paint(editor_mask(value, record.width, record.height)))

    @staticmethod
    def paint_toggle(record, on, rev):
        """'Apply painted protection': the chosen step with or without the mask."""
        if not _done(record) or record.paint_on == bool(on):
            return gr.skip()
        record.paint_on = bool(on)
        return _bumped(rev, True)

    @staticmethod
    def paint_clear(record, rev):
        """'Clear painted regions': no mask (nor the file's); :meth:`paint_canvas` then empties the editor."""
        return _bumped(rev, record.paint(None)) if _done(record) else gr.skip()

    @staticmethod
    def paint_canvas(record) -> dict:
        """The editor once a run has ended: its last step under the mask in effect, with a brush
        sized to the image; empty without a finished run (as a run starts, or after a failure)."""
        if not _done(record):
            return {"paint": None}
        return {"paint": gr.update(value=record.paint_editor(),
                                   brush=_brush(brush_radius(record.width, record.height)))}

    def pick_crop(self, record, evt: gr.SelectData) -> tuple:
        """A click on the current image centres the full-resolution crop there."""
        if not isinstance(record, RunRecord):
            return gr.skip(), gr.skip()
        return record.crop_center(*evt.index[:2])

    def codec_controls(self, codec) -> tuple:
        """Show the rate control of the chosen codec; disable steps where it has no DIRAC model."""
        note = missing_model_note(self.pipe, codec)
        steps = (gr.update(value=0, interactive=False) if codec not in self.pipe.dirac
                 else gr.update(value=DEFAULT_STEPS, interactive=True))
        neural = gr.update(visible=codec == "neural")
        quality = (gr.update(visible=False) if codec == "neural" else
                   gr.update(visible=True, label=QUALITY_LABELS[codec], minimum=QUALITY_CODECS[codec].start,
                             value=DEFAULT_AVIF_QUALITY if codec == "avif" else DEFAULT_QF,
                             info=AVIF_QUALITY_INFO if codec == "avif" else QF_INFO))
        return (quality, neural, neural, gr.update(visible=has_threshold_table(self.pipe, codec)),
                neural, steps, gr.update(value=f"⚠️ {note}" if note else "", visible=bool(note)))

    # ---- API --------------------------------------------------------------------------
    def enhance(self, image, codec="jpeg", rate=DEFAULT_QF, steps=DEFAULT_STEPS, seed=0, threshold=True,
                refine=0, protect=None):
        """Compress ``image`` and enhance it: one (PNG, metrics, bitstream) update per step, base first.

        ``refine``: the neural codec's encoder-side latent refinement iterations (0: none).
        ``protect``: a mask image sent in the file; its regions stay at step 1 in the frames.
        """
        try:
            image = _upload(image, "No image was given.")
            refine = whole(refine, "refine", MAX_REFINE)
            if refine and codec != "neural":
                raise InputError("refine is for the neural codec only.")
            events, steps = self._send_events(image, codec, api_rate(codec, rate), steps, seed, threshold,
                                              False, refine, True, _optional(protect))
            yield from self._api_stream(events, steps, file_stem(image))
        except DiracError as exc:
            raise _refused("/enhance", exc) from exc

    def decode(self, bitstream, steps=DEFAULT_STEPS, seed=0, threshold=True, protect=None):
        """Receiver side of the API: decode a .drc file and enhance it, one update per step.

        ``protect``: a mask image whose regions stay at step 1, instead of any mask in the file.
        """
        try:
            bitstream = _upload(bitstream, "No bitstream file was given.")
            events, steps = self._receive_events(bitstream, steps, seed, threshold, strict=True)
            yield from self._api_stream(events, steps, file_stem(bitstream), _optional(protect))
        except DiracError as exc:
            raise _refused("/decode", exc) from exc

    # ---- pipeline events ---------------------------------------------------------------
    def _send_events(self, image, codec, rate, steps, seed, threshold, downscale, refine, strict: bool,
                     protect: str | None = None):
        """Checked arguments, then the sender's events (``strict``: no silent steps=0 for a missing model)."""
        steps = usable_steps(self.pipe, codec, steps, strict)
        seed = whole(seed, "seed", MAX_SEED)
        return gpu_send(self.key, image, codec, rate, steps, seed, flag(threshold, "threshold"), bool(downscale),
                        int(refine), protect), steps

    def _receive_events(self, path, steps, seed, threshold, strict: bool):
        """Checked arguments, then the receiver's events for the bitstream file at ``path``."""
        data = read_bitstream(path)
        steps = usable_steps(self.pipe, read_encoded(data).codec, steps, strict)
        seed = whole(seed, "seed", MAX_SEED)
        return gpu_receive(self.key, data, steps, seed, flag(threshold, "threshold")), steps

    # ---- streaming --------------------------------------------------------------------
    def _stream(self, events, steps, stem, stop: StopFlag, view):
        """Page updates from pipeline events; the Stop button is honoured between steps. On the
        sender's side, the WebP and AVIF files of the same bytes follow the last step, in an update
        that repeats the finished view: Gradio streams each update as a diff from the one before, and
        its browser client applies a diff in place to the objects it handed to the page with that one,
        so an output left out of the last update could be emptied before the page had drawn it."""
        record = None
        with closing(events):
            for ev in events:
                if isinstance(ev, Compressed):
                    record = RunRecord.start(ev, steps, stem, self.workroot)
                    view = (record.reference_or_default(view[0]), *view[1:])
                    yield self._started(record, view[0])
                elif isinstance(ev, StepResult):
                    record.add(ev)
                    yield self._progress(record)
                if stop.requested and record is not None:
                    break
        yield self._finished(record, view)
        if record.original is not None:   # made afresh: Gradio takes the value out of an update it sends
            yield {**self._finished(record, view), **self._same_bytes(record)}

    def _api_stream(self, events, steps, stem, protect: str | None = None):
        record = None
        try:
            for ev in events:
                if isinstance(ev, Compressed):
                    record = RunRecord.start(ev, steps, stem, self.workroot)
                    if protect is not None:
                        record.protect = read_mask(protect, record.width, record.height)
                elif isinstance(ev, StepResult):
                    record.add(ev)
                else:
                    continue
                k = record.steps_run
                yield record.frame_file(k), record.info(k, self.device), str(record.bitstream_path)
        finally:
            cleanup_record(record)

    def _started(self, record: RunRecord, reference: str) -> dict:
        base = record.frame_file(0)
        running = "Running DIRAC… " if record.total else ""
        return {"record": record, "base": base, "current": base,
                "status": _lines(record.summary(), running + record.same_bytes_pending()),
                "plot": _plot(record, 0), "step": gr.update(maximum=max(record.total, 1), value=0, interactive=False),
                "reference": gr.update(choices=record.reference_choices(), value=reference),
                "drc": gr.update(value=str(record.bitstream_path), interactive=True,
                                 label=f"Download bitstream (.{record.suffix})")}

    def _progress(self, record: RunRecord) -> dict:
        k = record.steps_run
        return {"record": record, "current": record.frame_file(k), "plot": _plot(record, k),
                "status": _lines(record.summary(), record.step_line(k, self.device), record.same_bytes_pending()),
                "step": gr.update(value=k)}

    def _done(self, record: RunRecord) -> str:
        k = record.steps_run
        if k < record.total:
            return f"Stopped after {k} of {record.total} steps; move the step slider to see each one."
        note = missing_model_note(self.pipe, record.codec) if record.total == 0 else None
        return f"Done: {k} DIRAC steps; move the step slider to see every one." if k else note or "Done."

    def _finished(self, record: RunRecord, view) -> dict:
        k = record.steps_run
        making = (f"Making WebP and AVIF files of at most {record.nbytes:,} bytes for comparison…"
                  if record.original is not None else "")
        record.finished = True
        return {"status": _lines(record.summary(), self._done(record), making),
                "step": gr.update(maximum=max(k, 1), value=k, interactive=k > 0), "paint_on": record.paint_on,
                **self.view(record, k, *view)}

    def _same_bytes(self, record: RunRecord) -> dict:
        """The WebP and AVIF files of at most the run's bytes, as points in the plane and references
        for the before/after slider."""
        self._measure_same_bytes(record)
        return self._same_bytes_shown(record)

    @staticmethod
    def _measure_same_bytes(record: RunRecord) -> None:
        codecs, left_out = same_bytes_codecs()
        record.same_bytes_notes += left_out
        record.add_same_bytes(references(record.original_tensor(), record.nbytes, codecs) if codecs else [])

    def _same_bytes_shown(self, record: RunRecord) -> dict:
        return {"status": _lines(record.summary(), self._done(record), record.same_bytes_line()),
                "plot": _plot(record, record.steps_run), "reference": gr.update(choices=record.reference_choices())}

    def _failed(self, exc: DiracError, choices: list[str], reference: str) -> dict:
        gr.Warning(str(exc))
        return self._cleared(f"⚠️ **{exc}**", choices, reference)

    @staticmethod
    def _cleared(status: str, choices: list[str], reference: str) -> dict:
        """``status`` over an emptied panel: a new run deletes the previous run's files, so nothing
        on the page may still point at them (the reference radio keeps only ``choices``)."""
        off = gr.update(value=None, interactive=False)
        return {"record": None, "status": status, "base": None, "current": None, "plot": None,
                "step": gr.update(value=0, interactive=False), "step_md": "", "compare": None, "crop": None,
                "reference": gr.update(choices=choices, value=reference if reference in choices else choices[0]),
                "png": off, "drc": off, "paint_md": "", "paint_on": True}


_SENDER_REFERENCES = ["original", "base"]


def _lines(*parts: str) -> str:
    """The status text: its non-empty parts as paragraphs."""
    return "\n\n".join(p for p in parts if p)


def _done(record) -> bool:
    """Whether ``record`` is a finished run whose files are still there (paint acts on those only)."""
    return isinstance(record, RunRecord) and record.finished and record.workdir.exists()


def _bumped(rev, changed: bool):
    """The paint revision after a paint event: one up when the mask changed, else Gradio's skip()."""
    return int(rev or 0) + 1 if changed else gr.skip()


def _brush(radius: int | str = "auto") -> gr.Brush:
    """The paint brush: one colour, half transparent, so the frame shows through."""
    return gr.Brush(default_size=radius, colors=[(PAINT_COLOR, PAINT_OPACITY)], color_mode="fixed")


def _plot(record: RunRecord, chosen: int):
    """The distortion–perception plane's update: its points, the chosen step marked. While steps
    stream only the data changes and the axes follow it (new limits make the browser rebuild the
    chart asynchronously, losing updates that arrive meanwhile). Once the WebP and AVIF files are in,
    the limits are set to hold every point: the rebuild also gives their kinds a colour, which a
    data update alone does not."""
    x_lim, y_lim = record.plane_limits()
    return gr.update(value=record.plane_data(chosen), x_lim=x_lim, y_lim=y_lim, visible=record.original is not None)


def _refused(endpoint: str, exc: DiracError) -> gr.Error:
    """A user's error in an API call: its sentence for the client, one log line here, no traceback."""
    LOG.warning("%s refused: %s", endpoint, exc)
    return gr.Error(str(exc), print_exception=False)


def _optional(payload) -> str | None:
    """The local path of an optional upload, or None."""
    path = payload.get("path") if isinstance(payload, dict) else payload
    return str(path) if path else None


def _upload(payload, missing: str) -> str:
    """The local path of an upload. File events run with ``preprocess=False``: Gradio still moves
    the upload into its cache and checks the path, but leaves decoding to dirac_demo.images.load_image
    (gr.Image would open it with Pillow first, so a text file or a decompression bomb would fail
    inside Gradio instead of giving our one-line message)."""
    path = _optional(payload)
    if path is None:
        raise InputError(missing)
    return path


# ---- page -------------------------------------------------------------------------------
def _results(kind: str) -> Panel:
    """The output area shared by both tabs: live view, plot, then the step explorer."""
    sender = kind == "send"
    record = gr.State(None, time_to_live=3600, delete_callback=cleanup_record)
    stop = gr.State(StopFlag())
    status = gr.Markdown("Results appear here as soon as the image is compressed.", elem_id=f"{kind}-status")
    with gr.Row():   # the streaming step large enough to see a step change, the base beside it for reference
        current = gr.Image(label="Latest DIRAC step (click to place the crop)", format="png", interactive=False,
                           height=460, scale=3, min_width=320, elem_id=f"{kind}-current")
        base = gr.Image(label="Base reconstruction (step 0)", format="png", interactive=False, height=220,
                        scale=1, min_width=160, elem_id=f"{kind}-base")
    plot = gr.ScatterPlot(x="swd", y="psnr", color="point", x_title="SWD (lower: more realistic texture)",
                          y_title="PSNR (dB)", color_title="", y_axis_format=".2~f", color_map=PLANE_COLORS,
                          title="Distortion–perception plane", caption=PLANE_NOTE, tooltip=["frame", "psnr", "swd"],
                          visible=sender, elem_id=f"{kind}-plane", elem_classes="plane-plot")
    gr.Markdown("### Distortion–perception traversal\nEarly steps keep fidelity (PSNR); later steps add "
                "detail. Every frame of the run is kept, so the slider shows any step instantly.")
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
    gr.Markdown(PAINT_NOTE)
    # Always editable: as an event's output, Gradio 6.31's read-only ImageEditor fails in the browser
    # ("reading 'get_data'"). Without a finished run there is nothing to paint on and its events do nothing.
    paint = gr.ImageEditor(label="Paint over the last step", type="pil", image_mode="RGBA", format="png",
                           sources=(), transforms=(), layers=False, brush=_brush(), eraser=gr.Eraser(), buttons=[],
                           height="min(520px, 85vw)", interactive=True, elem_id=f"{kind}-paint",
                           elem_classes="paint-editor")
    paint_md = gr.Markdown(elem_id=f"{kind}-paint-md")
    with gr.Row():
        paint_on = gr.Checkbox(True, label="Apply painted protection", elem_id=f"{kind}-paint-on")
        paint_clear = gr.Button("Clear painted regions", size="sm", elem_id=f"{kind}-paint-clear")
    return paint, paint_md, paint_on, paint_clear


def _wire_panel(app: DiracDemo, p: Panel) -> None:
    """Step slider, comparison and crop controls, click-to-crop and the paint controls of one tab."""
    view = p.bind(app.view)
    triggers = [p.step.input, p.reference.input, p.crop_x.input, p.crop_y.input, p.zoom.input, p.paint_rev.change]
    gr.on(triggers, view, inputs=p.view_inputs, outputs=p.outputs, api_visibility="private",
          trigger_mode="always_last", show_progress="hidden", concurrency_limit=4, concurrency_id="view")
    p.current.select(app.pick_crop, inputs=p.record, outputs=[p.crop_x, p.crop_y],
                     api_visibility="private", show_progress="hidden").then(
        view, inputs=p.view_inputs, outputs=p.outputs, api_visibility="private", show_progress="hidden")
    quiet = dict(outputs=p.paint_rev, api_visibility="private", trigger_mode="always_last", show_progress="hidden",
                 concurrency_limit=4, concurrency_id="view")
    p.paint.input(app.paint, inputs=[p.record, p.paint, p.paint_rev], **quiet)
    p.paint_on.input(app.paint_toggle, inputs=[p.record, p.paint_on, p.paint_rev], **quiet)
    p.paint_clear.click(app.paint_clear, inputs=[p.record, p.paint_rev], **quiet).then(**p.canvas(app))


def _steps_slider(value: int, **kwargs) -> gr.Slider:
    return gr.Slider(0, MAX_STEPS, value=value, step=1, label=STEPS_LABEL, info=STEPS_INFO, **kwargs)


def _threshold_box(**kwargs) -> gr.Checkbox:
    return gr.Checkbox(True, label=THRESHOLD_LABEL, info=THRESHOLD_INFO, **kwargs)


def _codec_controls(pipe: DiracPipeline) -> dict:
    """Codec, its rate control (QF, or the neural rate slider over −log10 λ_rate), thresholding, steps."""
    with gr.Group():
        codec = gr.Radio([("JPEG", "jpeg"), ("AVIF", "avif"), ("Neural codec", "neural")], value="jpeg",
                         label="Base codec",
                         elem_id="send-codec")
        qf = gr.Slider(1, 100, value=DEFAULT_QF, step=1, label="JPEG quality factor", info=QF_INFO)
        neural_rate = gr.Slider(NEURAL_RATE_MIN, NEURAL_RATE_MAX, value=DEFAULT_NEURAL_RATE, step=0.001,
                                visible=False, label=NEURAL_RATE_LABEL, info=NEURAL_RATE_INFO)
        lmbda_md = gr.Markdown(lmbda_text(DEFAULT_NEURAL_RATE), visible=False, padding=True)
        threshold = _threshold_box(visible=has_threshold_table(pipe, "jpeg"))
        refine = gr.Checkbox(False, visible=False, elem_id="send-refine", label=REFINE_LABEL, info=REFINE_INFO)
    first_note = missing_model_note(pipe, "jpeg")
    note = gr.Markdown(f"⚠️ {first_note}" if first_note else "", visible=bool(first_note))
    steps = _steps_slider(DEFAULT_STEPS if "jpeg" in pipe.dirac else 0, interactive="jpeg" in pipe.dirac,
                          elem_id="send-steps")
    neural_rate.change(lmbda_text, inputs=neural_rate, outputs=lmbda_md, queue=False, api_visibility="private",
                       show_progress="hidden")
    return dict(codec=codec, qf=qf, neural_rate=neural_rate, lmbda_md=lmbda_md, threshold=threshold,
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
            as_is = gr.Button("Enhance this JPEG as it is", visible=False, elem_id="send-as-is")
            # thumbnails on the page; a click puts the full file in the input
            gallery = (gr.Dataset(components=[gr.Image(type="filepath", render=False)], type="index",
                                  samples=[[thumb] for thumb, _ in app.thumbnails()], elem_id="example-gallery",
                                  label="Examples: four Kodak PhotoCD images and a real-world JPEG (all free for "
                                        "use); a click shows a run at the default settings")
                       if app.examples else None)
            c = _codec_controls(app.pipe)
            with gr.Row():
                seed = gr.Number(0, precision=0, label="Seed", minimum=0, maximum=MAX_SEED)
                downscale = gr.Checkbox(True, label=downscale_label(app.pipe.max_pixels))
        with gr.Column(scale=2, elem_id="send-results"):
            panel = _results("send")
    image.change(app.offer_file, inputs=image, outputs=[offer, as_is], queue=False, api_visibility="private",
                 show_progress="hidden", preprocess=False)
    c["codec"].change(app.codec_controls, inputs=c["codec"], queue=False, api_visibility="private",
                      outputs=[c["qf"], c["neural_rate"], c["lmbda_md"], c["threshold"], c["refine"], c["steps"],
                               c["note"]])
    view = [panel.record, panel.stop, panel.reference, panel.crop_x, panel.crop_y, panel.zoom]
    if gallery is not None:
        def pick(*args):
            path, update = app.pick_example(*args)
            shown = panel._map(update)
            return {image: path, **(shown if isinstance(shown, dict) else {})}
        gallery.click(pick, inputs=[gallery, c["codec"], c["qf"], c["steps"], seed, c["threshold"], *view],
                       outputs=[image, *panel.outputs], api_visibility="private", show_progress="minimal",
                       concurrency_limit=4, concurrency_id="view").then(**panel.canvas(app))
    inputs = [image, c["codec"], c["qf"], c["neural_rate"], c["steps"], seed, c["threshold"], downscale,
              c["refine"], *view]
    return dict(kind="send", run=run, stop=stop, panel=panel, inputs=inputs, as_is=as_is,
                as_is_inputs=[image, c["steps"], seed, c["threshold"], *view])


def _receiver_tab() -> dict:
    gr.Markdown("Upload a `.drc` bitstream made by this page or by `python -m dirac_demo compress`, or any "
                "JPEG file: its own bytes are its bitstream. "
                "The receiver has only the bitstream, **no original, so no PSNR** can be shown: judge "
                "the steps by eye against the base reconstruction.")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            drc = gr.File(label="Bitstream (.drc), JPEG or AVIF file", type="filepath", elem_id="rx-file",
                          file_types=[".drc", ".jpg", ".jpeg", ".jfif", ".avif"])
            steps = _steps_slider(DEFAULT_STEPS)
            seed = gr.Number(0, precision=0, label="Seed", minimum=0, maximum=MAX_SEED)
            threshold = _threshold_box()
            with gr.Row():
                run = gr.Button("Decode and enhance", variant="primary", elem_id="rx-run")
                stop = gr.Button("Stop", variant="stop", elem_id="rx-stop")
        with gr.Column(scale=2, elem_id="rx-results"):
            panel = _results("rx")
    inputs = [drc, steps, seed, threshold, panel.record, panel.stop, panel.reference, panel.crop_x,
              panel.crop_y, panel.zoom]
    return dict(kind="rx", run=run, stop=stop, panel=panel, inputs=inputs)


def _run_events(app: DiracDemo, tab: dict, method) -> None:
    p = tab["panel"]
    run = dict(outputs=p.outputs, api_visibility="private", concurrency_id="dirac", concurrency_limit=CONCURRENCY,
               show_progress="minimal", preprocess=False)
    # first: the page runs a trigger's events in order, each after the previous one has finished
    tab["run"].click(None, js=SCROLL_TO_RESULTS % tab["kind"], queue=False, api_visibility="private")
    starts = [(tab["run"], method, tab["inputs"])]
    if "as_is" in tab:
        starts.append((tab["as_is"], app.enhance_file, tab["as_is_inputs"]))
    for button, handler, inputs in starts:   # the editor empties as the run starts, and shows its last step after
        button.click(lambda: None, outputs=p.paint, queue=False, api_visibility="private", show_progress="hidden")
        button.click(p.bind_stream(handler), inputs=inputs, **run).then(**p.canvas(app))
    # Not Gradio's `cancels`: the run itself ends between steps and shows what it has, so no
    # late update from a killed run can overwrite the page.
    tab["stop"].click(StopFlag.request, inputs=p.stop, api_visibility="private", queue=False)
    _wire_panel(app, p)


def _api(app: DiracDemo) -> None:
    """Hidden components behind the /enhance and /decode endpoints (see the API page)."""
    with gr.Row(visible=False):
        image = gr.Image(type="filepath", image_mode=None, label="image")
        codec = gr.Radio(["jpeg", "avif", "neural"], value="jpeg", label="codec")
        rate = gr.Number(DEFAULT_QF, label="rate (JPEG quality factor 1-100, AVIF quality 0-100, or neural λ_rate)")
        steps = gr.Number(DEFAULT_STEPS, precision=0, minimum=0, maximum=MAX_STEPS, label="steps")
        seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_SEED, label="seed")
        threshold = gr.Checkbox(True, label="threshold")
        refine = gr.Number(0, precision=0, minimum=0, maximum=MAX_REFINE,
                           label="refine (neural codec: encoder-side refinement iterations, 0 = none)")
        bitstream = gr.File(type="filepath", label="bitstream")
        protect = gr.File(type="filepath", label="protect (mask image: bright or opaque regions stay at step 1)")
        out = [gr.Image(format="png", label="image"), gr.JSON(label="metrics"), gr.File(label="bitstream")]
        enhance, decode = gr.Button(), gr.Button()
    api = dict(outputs=out, concurrency_id="dirac", concurrency_limit=CONCURRENCY, preprocess=False)
    enhance.click(app.enhance, inputs=[image, codec, rate, steps, seed, threshold, refine, protect],
                  api_name="enhance", **api)
    decode.click(app.decode, inputs=[bitstream, steps, seed, threshold, protect], api_name="decode", **api)


def build_demo(pipe: DiracPipeline, workdir: str | None = None, example_cache: str | None = None) -> gr.Blocks:
    """The whole page over one pipeline, with its queue configured; launch it with :func:`launch`.

    ``workdir`` holds the per-run download files (default: a new temporary folder).
    ``example_cache``: when the examples' finished runs are made: "background" (a thread started
    here, so the server starts at once), "now" (before returning) or "off"; default "background",
    or "off" when the environment variable ``DIRAC_EXAMPLE_CACHE`` is 0.
    """
    app = DiracDemo(pipe, workdir)
    if example_cache is None:
        example_cache = "off" if os.environ.get("DIRAC_EXAMPLE_CACHE", "1") == "0" else "background"
    if example_cache == "now":
        app.cache_examples()
    elif example_cache == "background":
        threading.Thread(target=app.cache_examples, name="example-cache", daemon=True).start()
    with gr.Blocks(title="DIRAC: diffusion residual enhancement", delete_cache=(1800, 3600),
                   analytics_enabled=False) as demo:
        gr.Markdown("# DIRAC: diffusion-based residual enhancement for image codecs\n"
                    "A base codec sends real bytes; a residual diffusion model then adds detail step by step "
                    "on the receiver (Ghouse et al., *A Residual Diffusion Model for High Perceptual Quality "
                    "Codec Augmentation*). Stop early for fidelity, late for realism.\n\n"
                    f"Running on **{app.device}** · {models_markdown(pipe)} · dirac-demo {__version__}",
                    elem_id="header")
        with gr.Tab("Compress and enhance"):
            sender = _sender_tab(app)
        with gr.Tab("Receiver: decode a bitstream", elem_id="rx-tab"):
            receiver = _receiver_tab()
        _run_events(app, sender, app.send)
        _run_events(app, receiver, app.receive)
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
