"""The page's one handle on the pipeline: :class:`DiracDemo`, whose public methods are the handlers.

A run's events become a :class:`RunRecord` in one loop (:meth:`DiracDemo._records`); the page's
stream, the API's stream and the examples' cache each follow that record.
"""
from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import gradio as gr
from PIL import features

from ..codecs import read as read_encoded
from ..errors import DiracError, TooLargeError
from ..pipeline import Compressed, DiracPipeline, RunSettings
from ..same_bytes import CODECS as SAME_BYTES_CODECS, same_bytes
from . import api, text, updates
from .examples import Examples
from .files import file_stem, read_bitstream
from .runs import register, run_receive, run_send
from .settings import DEFAULT_CODEC, DEFAULT_QUALITY, DEFAULT_STEPS, PageSettings, ReceiverSettings, View
from .state import RunRecord, StopFlag, cleanup_record
from .windows import WindowPick

LOG = logging.getLogger("dirac_demo.app")


class DiracDemo:
    """The page's one handle on the pipeline: each public method is an event handler."""

    def __init__(self, pipe: DiracPipeline, workdir: str | None = None, examples: str | Path | None = None) -> None:
        self.pipe, self.key = pipe, register(pipe)
        self.device = pipe.describe()["device"]
        if workdir is None:   # download files, one folder per run, removed with the session's state
            workdir = tempfile.mkdtemp(prefix="dirac-demo-")
            atexit.register(shutil.rmtree, workdir, ignore_errors=True)
        self.workroot = workdir
        self._windows = Path(workdir) / "windows"    # the overviews of large uploads, with their window drawn
        self.examples = Examples(examples, workdir)

    # ---- the sender tab ----------------------------------------------------------------
    def send(self, image, page: PageSettings, previous, stop: StopFlag, shown: View) -> Iterator[dict]:
        """Run button: compress, then stream every DDIM step to the page until done or stopped."""
        _reset(previous, stop)
        try:
            image = api.upload(image, text.NO_IMAGE)
            settings = api.page_run(self.pipe, page)
            # the previous run's outputs go at once; say why the page waits for the encoder
            waiting = text.refining(settings.refine) if settings.refine else text.COMPRESSING
            yield updates.cleared(waiting, updates.SENDER_REFERENCES, shown.reference)
            yield from self._stream(run_send(self.key, image, settings), settings, file_stem(image), stop, shown)
        except TooLargeError as exc:
            yield updates.failed(exc.advise(text.downscale_advice(self.pipe.max_pixels)), updates.SENDER_REFERENCES,
                                 shown.reference)
        except DiracError as exc:
            yield updates.failed(exc, updates.SENDER_REFERENCES, shown.reference)

    def offer_file(self, image) -> tuple:
        """An upload that is a plain file a codec reads: show what enhancing it as it is means,
        and its button; over the page's limit, the overview to choose its window on."""
        try:
            data = read_bitstream(api.optional(image))
            enc = read_encoded(data)
        except (OSError, DiracError):
            return updates.offer(None, 0)
        if enc.file is None:
            return updates.offer(None, 0)
        pick = _window_pick(data, enc, self.pipe)
        return updates.offer(enc, len(data), pick, pick.save(self._windows) if pick else None)

    def move_window(self, pick, evt: gr.SelectData) -> tuple:
        """A click on the overview: the window centred there."""
        if not isinstance(pick, WindowPick) or not evt.index:
            return gr.update(), pick
        pick = pick.at(*evt.index[:2])
        return updates.window_picture(pick, pick.save(self._windows)), pick

    def enhance_file(self, image, given: ReceiverSettings, previous, stop: StopFlag, shown: View):
        """Sender tab, for a plain-file upload: enhance the file (or its window) as it is."""
        yield from self.receive(image, given, previous, stop, shown, missing=text.NO_PLAIN_FILE)

    def pick_example(self, index, page: PageSettings, previous, stop: StopFlag, shown: View) -> tuple[str, dict]:
        """A click on an example: its image in the input and, once cached, its finished run at the
        default settings (a live run stays on the run button)."""
        served = self.examples.served(index)
        record = self.examples.run(served.name)
        if record is None:
            return str(served), {"status": text.example_pending(served.name)}
        _reset(previous, stop)
        shown = shown.comparing(record.reference_or_default(shown.reference))
        return str(served), updates.example(record, page, shown, self.device, self._missing(record))

    # ---- the receiver tab --------------------------------------------------------------
    def receive(self, path, given: ReceiverSettings, previous, stop: StopFlag, shown: View,
                missing: str = text.NO_BITSTREAM) -> Iterator[dict]:
        """Receiver tab: decode an uploaded bitstream and stream its enhancement."""
        _reset(previous, stop)
        try:
            path = api.upload(path, missing)
            data = read_bitstream(path)
            settings = api.receive_run(self.pipe, read_encoded(data).codec, given, strict=False)
            yield updates.cleared(text.DECODING, updates.RECEIVER_REFERENCES, shown.reference)
            yield from self._stream(run_receive(self.key, data, settings), settings, _stem(path, settings), stop, shown)
        except TooLargeError as exc:
            yield updates.failed(exc.advise(text.WINDOW_ADVICE), updates.RECEIVER_REFERENCES, shown.reference)
        except DiracError as exc:
            yield updates.failed(exc, updates.RECEIVER_REFERENCES, shown.reference)

    # ---- after a run -------------------------------------------------------------------
    def view(self, record, k, shown: View) -> dict:
        """Step slider and crop controls: show frame k from the record; nothing is recomputed."""
        if not isinstance(record, RunRecord) or not record.files.exists():
            return {}
        return updates.view(record, min(int(k), record.steps_run), shown, self.device)

    def codec_controls(self, codec, weight=None) -> tuple:
        """Show the rate control of the chosen codec; disable steps where it has no DIRAC model."""
        return updates.codec_controls(self.pipe, codec, weight)

    # ---- the API -----------------------------------------------------------------------
    def enhance(self, image, codec=DEFAULT_CODEC, rate=DEFAULT_QUALITY, steps=DEFAULT_STEPS, seed=0,
                threshold=True, refine=0, protect=None):
        """Compress ``image`` and enhance it: one (PNG, metrics, bitstream) update per step, base first.

        ``refine``: encoder-side latent refinement iterations, for a codec that refines (0: none).
        ``protect``: a mask image sent in the file; its regions stay at step 1 in the frames.
        """
        try:
            image = api.upload(image, text.API_NO_IMAGE)
            settings = api.enhance_run(self.pipe, codec, rate, steps, seed, threshold, refine, protect)
            yield from self._api_stream(run_send(self.key, image, settings), settings, file_stem(image))
        except DiracError as exc:
            raise _refused("/enhance", exc) from exc

    def decode(self, bitstream, steps=DEFAULT_STEPS, seed=0, threshold=True, protect=None, window=""):
        """Receiver side of the API: decode a file and enhance it, one update per step. ``protect``: a mask
        image whose regions stay at step 1, instead of the file's; ``window``: "x,y,width,height", the
        full-resolution part enhanced of a file over the pixel limit (JPEG and AVIF up to 64 MP)."""
        try:
            bitstream = api.upload(bitstream, text.API_NO_BITSTREAM)
            data = read_bitstream(bitstream)
            settings = api.receive_run(self.pipe, read_encoded(data).codec,
                                       ReceiverSettings(steps, seed, threshold, window), strict=True)
            yield from self._api_stream(run_receive(self.key, data, settings), settings, _stem(bitstream, settings),
                                        api.optional(protect))
        except TooLargeError as exc:
            raise _refused("/decode", exc.advise(text.API_WINDOW_ADVICE)) from exc
        except DiracError as exc:
            raise _refused("/decode", exc) from exc

    # ---- the examples ------------------------------------------------------------------
    def cache_examples(self) -> None:
        """Run every example at the page's default settings and keep the finished run (same-bytes
        files included), so that picking one shows it at once."""
        if not self.pipe.has_model(PageSettings().codec):
            return
        root = Path(self.workroot) / "examples"
        root.mkdir(parents=True, exist_ok=True)
        for path in self.examples.paths:
            try:
                settings = api.page_run(self.pipe, PageSettings())
                with closing(self._records(run_send(self.key, str(path), settings), settings, file_stem(str(path)),
                                           root)) as records:
                    record = list(records)[-1]
                record.finish()
                _measure_same_bytes(record)
                record.write_first_files()
                self.examples.keep(path.name, record)
            except DiracError:
                LOG.exception("example %s could not be cached", path.name)

    # ---- events to records -------------------------------------------------------------
    def _records(self, events, settings: RunSettings, stem: str, root, protect: str | None = None):
        """The only loop over a run's events: the header starts a record, each frame (the base, then
        each step) adds to it; yields the record after each frame (``protect``: a mask image in
        place of the file's)."""
        record = None
        with closing(events):
            for ev in events:
                if isinstance(ev, Compressed):
                    mask = ev.protect_mask(protect) if protect else None
                    note = text.file_note(ev.encoded, ev.nbytes, ev.window)
                    record = RunRecord.start(ev, settings.steps, stem, root, note, mask)
                else:
                    record.add(ev)
                    yield record

    def _stream(self, events, settings: RunSettings, stem: str, stop: StopFlag, shown: View):
        """Page updates from a run; the Stop button is honoured between steps. On the sender's
        side, the same-bytes files follow the last step, in an update that repeats the finished
        view: Gradio streams each update as a diff from the one before, and its browser client
        applies a diff in place to the objects it handed to the page with that one, so an output
        left out of the last update could be emptied before the page had drawn it."""
        record = None
        with closing(self._records(events, settings, stem, self.workroot)) as records:
            for record in records:
                if record.steps_run == 0:
                    shown = shown.comparing(record.reference_or_default(shown.reference))
                    yield updates.started(record, shown.reference)
                else:
                    yield updates.progress(record, self.device)
                if stop.requested:
                    break
        record.finish()
        yield self._finished(record, shown)
        if record.original is not None:   # made afresh: Gradio takes the value out of an update it sends
            _measure_same_bytes(record)
            yield {**self._finished(record, shown), **updates.compared(record, self.device, self._missing(record))}

    def _api_stream(self, events, settings: RunSettings, stem: str, protect: str | None = None):
        """The API's updates from a run: (PNG, metrics, bitstream) per frame; no files are kept."""
        record = None
        try:
            with closing(self._records(events, settings, stem, self.workroot, protect)) as records:
                for record in records:
                    k = record.steps_run
                    yield record.frame_file(k), record.info(k, self.device), str(record.bitstream_path)
        finally:
            cleanup_record(record)

    def _finished(self, record: RunRecord, shown: View) -> dict:
        return updates.finished(record, shown, self.device, self._missing(record))

    def _missing(self, record: RunRecord) -> str | None:
        """Why a run had no steps to run: its codec's missing model."""
        return text.missing_model_note(self.pipe, record.codec) if record.total == 0 else None


def _measure_same_bytes(record: RunRecord) -> None:
    """Make and measure the same-bytes files (at most the run's bytes) of the codecs this server's
    Pillow can write; a line for each it cannot."""
    usable = tuple(c for c in SAME_BYTES_CODECS if features.check(c))
    left_out = [text.same_bytes_unwritable(SAME_BYTES_CODECS[c][0]) for c in SAME_BYTES_CODECS if c not in usable]
    record.add_same_bytes(same_bytes(record.original_tensor(), record.nbytes, usable) if usable else [], left_out)


def _window_pick(data: bytes, enc, pipe: DiracPipeline) -> WindowPick | None:
    """The overview and centre window of a plain file over the page's limit that is still decoded
    whole here; None for any other file, or one whose overview Pillow cannot make."""
    if not pipe.max_pixels < enc.width * enc.height <= pipe.largest(enc):
        return None
    try:
        return WindowPick.of_file(data, enc, pipe.max_pixels)
    except Exception as exc:  # noqa: BLE001 - without an overview the file is offered as it is
        LOG.warning("no overview of an upload: %s", exc)
        return None


def _stem(path: str, settings: RunSettings) -> str:
    """The download files' stem: the upload's name, and the window's place when it is one."""
    return file_stem(path) + (f"_{settings.window.label}" if settings.window is not None else "")


def _reset(previous, stop: StopFlag) -> None:
    """A new run or example: the previous run's files go, and the Stop button is armed again."""
    cleanup_record(previous)
    stop.clear()


def _refused(endpoint: str, exc: DiracError) -> gr.Error:
    """A user's error in an API call: its sentence for the client, one log line here, no traceback."""
    LOG.warning("%s refused: %s", endpoint, exc)
    return gr.Error(str(exc), print_exception=False)
