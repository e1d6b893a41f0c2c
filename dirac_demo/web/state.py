"""The state of one run on the page, kept in ``gr.State`` and changed only through its methods.

A :class:`RunRecord` holds every frame of one run (base reconstruction, then each DDIM step), so
moving the step slider afterwards only looks a frame up: it never runs the network again. On the
sender's side it also holds the same-bytes files (:mod:`dirac_demo.same_bytes`, :class:`SameBytes`), each
measured like the steps. Its protect mask (:class:`~.paint.Protection`) composes the frames shown.
Nothing here imports gradio or loads a model.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import __version__
from ..codecs import CODECS, Encoded
from ..images import pil_to_tensor, tensor_to_uint8
from ..pipeline import Compressed, Frame
from ..quality import LiveSWD, bits_per_pixel, psnr
from ..same_bytes import SameBytesFile
from .crop import centre_on, side_by_side
from .files import RunFiles
from .paint import Protection, digest, paint_layer


def finite(v: float | None) -> float | None:
    """``v``, or None where it is missing or infinite (JSON has no infinity)."""
    return v if v is not None and math.isfinite(v) else None


@dataclass
class StopFlag:
    """One per page session: the Stop button sets it, the running stream reads it between steps."""

    requested: bool = False

    def request(self) -> None:
        self.requested = True

    def clear(self) -> None:
        self.requested = False


@dataclass
class SameBytes:
    """A standard codec's file of the original at no more bytes than the run's, measured like a step."""

    codec: str                        # its key in dirac_demo.same_bytes.CODECS
    name: str                         # its name there, as the page shows it
    quality: int                      # Pillow quality 0..100
    nbytes: int
    frame: np.ndarray                 # the decoded file, (H, W, 3) uint8
    psnr: float
    swd: float


def _suffix(enc: Encoded) -> str:
    """The received file's own extension for its download: a plain file keeps its kind, the first
    of its codec's plain-file endings ('jpg'); anything else is a 'drc'."""
    return CODECS[enc.codec].plain_files[0].lstrip(".") if enc.file is not None else "drc"


@dataclass
class RunRecord:
    """Every frame and metric of one run; ``frames[0]`` is the base, ``frames[k]`` DDIM step k."""

    codec: str
    rate: float
    width: int
    height: int
    nbytes: int
    total: int
    files: RunFiles
    stem: str
    original: np.ndarray | None = None
    note: str = ""                    # what the received file is, when it is not a .drc
    suffix: str = "drc"               # the bitstream's file type: "drc", or a plain file's ending
    source_size: tuple[int, int] | None = None   # the upload's (width, height) when it was downscaled
    file_size: tuple[int, int] | None = None     # the file's (width, height) when the run is a window of it
    frames: list[np.ndarray] = field(default_factory=list)
    psnr: list[float | None] = field(default_factory=list)
    ms_ssim: list[float | None] = field(default_factory=list)
    swd: list[float | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    same_bytes: dict[str, SameBytes] = field(default_factory=dict)   # by codec, once measured
    same_bytes_notes: list[str] = field(default_factory=list)        # why a codec has no file
    same_bytes_done: bool = False                                     # the files were made (or left out)
    protection: Protection | None = None
    finished: bool = False            # the run has ended (done or stopped): the page may paint on it

    def __post_init__(self) -> None:
        if self.protection is None:
            self.protection = Protection(self.width, self.height)

    @classmethod
    def start(cls, comp: Compressed, total: int, stem: str, root: str | Path, note: str = "",
              protect: np.ndarray | None = None) -> RunRecord:
        """A record of the run whose header is ``comp`` (the original kept when it has one), its
        bitstream written for download; ``protect`` replaces the file's mask (the API's)."""
        enc, (width, height) = comp.encoded, comp.size
        original = tensor_to_uint8(comp.original) if comp.original is not None else None
        mask = Protection(width, height, comp.protect_mask() if protect is None else protect)
        rec = cls(enc.codec, enc.rate, width, height, comp.nbytes, total, RunFiles.create(root), stem, original, note,
                  _suffix(enc), comp.source_size, (enc.width, enc.height) if comp.window else None, protection=mask)
        rec.bitstream_path.write_bytes(comp.bitstream)
        return rec

    def add(self, frame: Frame) -> None:
        """Keep one frame's reconstruction and metrics (the base first, then each DDIM step)."""
        self.frames.append(tensor_to_uint8(frame.image))
        self.psnr.append(frame.psnr)
        self.ms_ssim.append(frame.ms_ssim)
        self.swd.append(frame.swd)
        self.seconds.append(frame.seconds)

    def add_same_bytes(self, files: list[SameBytesFile], left_out: Iterable[str] = ()) -> None:
        """Keep the same-bytes files made for this run's byte count, each with its PSNR and live
        SWD against the original; a codec without a file keeps its reason (as do ``left_out``)."""
        self.same_bytes_notes += list(left_out)
        original = self.original_tensor()
        meter = LiveSWD(original)
        for f in files:
            if f.image is None:
                self.same_bytes_notes.append(f.reason)
                continue
            self.same_bytes[f.codec] = SameBytes(f.codec, f.name, f.quality, f.nbytes, tensor_to_uint8(f.image),
                                                 psnr(f.image, original), meter(f.image))
        self.same_bytes_done = True

    def finish(self) -> None:
        """The run has ended (done or stopped): its frames are all there, the page may paint on it."""
        self.finished = True

    @property
    def done(self) -> bool:
        """Whether the run has ended and its files are still there (paint acts on those only)."""
        return self.finished and self.files.exists()

    @property
    def steps_run(self) -> int:
        return len(self.frames) - 1

    @property
    def bpp(self) -> float:
        return bits_per_pixel(self.nbytes, *(self.file_size or (self.width, self.height)))

    @property
    def workdir(self) -> Path:
        return self.files.workdir

    @property
    def bitstream_path(self) -> Path:
        return self.workdir / f"{self.stem}_{self.codec}.{self.suffix}"

    @property
    def protect(self) -> np.ndarray | None:
        """The mask the file carried (or the API was given), whatever is painted since."""
        return self.protection.from_file

    def original_tensor(self) -> torch.Tensor:
        """The original as a (1, 3, H, W) tensor in [0, 1] (sender side only)."""
        return pil_to_tensor(Image.fromarray(self.original))

    # ---- what a frame is compared with -----------------------------------------------------
    def references(self) -> list[str]:
        """What the step can be compared with: the original (sender side), the base, and the
        same-bytes files once made."""
        original = ["original"] if self.original is not None else []
        return original + ["base"] + list(self.same_bytes)

    def reference_or_default(self, reference: str) -> str:
        """``reference`` when this run offers it, else the original (or, without one, the base)."""
        values = self.references()
        return reference if reference in values else values[0]

    def pair(self, k: int, reference: str) -> tuple[Path, Path]:
        """PNG files (reference, frame k) for the before/after slider: the original, the base or a
        same-bytes file; what this run does not have falls back to the base."""
        if reference == "original" and self.original is not None:
            return self.files.save("original", self.original), self.frame_file(k)
        if reference in self.same_bytes:
            return self.files.save(f"same_bytes_{reference}", self.same_bytes[reference].frame), self.frame_file(k)
        return self.frame_file(0), self.frame_file(k)

    # ---- frames as shown -------------------------------------------------------------------
    def shown(self, k: int) -> np.ndarray:
        """Frame k as the page shows it: composed with the protect mask in effect, else itself."""
        return self.protection.apply(self.frames, k)

    def frame_file(self, k: int, composed: bool = True) -> Path:
        """Frame k as shown (``composed=False``: as the step made it), as a lossless PNG file (for
        display and download), named after its mask."""
        tag = self.protection.tag(k) if composed else ""
        name = f"{self.stem}_step{k:02d}{tag}"
        written = self.files.png(name)            # shown once: a composed frame is not composed again
        return written if written.exists() else self.files.save(name, self.shown(k) if tag else self.frames[k])

    def write_first_files(self) -> None:
        """Write the files a finished run shows first: the original, the base and the last step."""
        self.pair(self.steps_run, "original")
        self.frame_file(0)

    def crop(self, k: int, cx: float, cy: float, zoom: int = 1) -> np.ndarray:
        """Side-by-side 100% crops [original |] base | step k around (cx, cy) in percent, enlarged ×zoom."""
        panels = [self.original] if self.original is not None else []
        return side_by_side(panels + [self.frames[0], self.shown(k)], cx, cy, zoom)

    def crop_file(self, k: int, cx: float, cy: float, zoom: int = 1) -> Path:
        """:meth:`crop` as a PNG file, named after what it shows (frame k as composed)."""
        name = f"crop_{k}{self.protection.tag(k)}_{cx:g}_{cy:g}_{zoom}"
        return self.files.save(name, self.crop(k, cx, cy, int(zoom)))

    def crop_center(self, x: float, y: float) -> tuple[float, float]:
        """Crop position in percent that centres the crop on pixel (x, y) of the image."""
        return centre_on(self.width, self.height, x, y)

    # ---- painted protection ----------------------------------------------------------------
    def paint(self, mask: np.ndarray | None) -> bool:
        """Take ``mask`` as the page's protect mask, in place of the file's (None: nothing
        protected); whether that changes what is painted."""
        return self.protection.paint(mask)

    def apply_paint(self, on: bool) -> bool:
        """The 'Apply painted protection' toggle; whether that changes what is shown."""
        return self.protection.switch(on)

    @property
    def paintable(self) -> bool:
        """Whether painting changes anything: the run has a step after the protected one."""
        return self.steps_run > self.protection.step

    def paint_editor(self) -> dict:
        """The paint editor's value: the last step as the step made it, under the mask drawn
        (painted, else the file's) as paint."""
        mask = self.protection.drawn()
        layers = [] if mask is None or not mask.any() else [
            str(self.files.save(f"paint_{digest(mask)}", paint_layer(mask)))]
        return {"background": str(self.frame_file(self.steps_run, composed=False)), "layers": layers,
                "composite": None}

    # ---- the API, copies, cleanup ----------------------------------------------------------
    def info(self, k: int, device: str = "") -> dict:
        """Frame k's facts as JSON for the API."""
        return {"step": k, "total": self.total, "codec": self.codec, "rate": self.rate,
                "width": self.width, "height": self.height, "bytes": self.nbytes, "bpp": self.bpp,
                "psnr": finite(self.psnr[k]), "ms_ssim": self.ms_ssim[k], "swd": self.swd[k],
                "seconds": self.seconds[k], "device": device, "dirac_demo_version": __version__}

    def copy(self, root: str | Path) -> RunRecord:
        """This record with its own folder under ``root`` holding copies of the files written so far;
        the frames are shared (a kept frame never changes), so deleting the copy's files leaves
        this record's intact."""
        return replace(self, files=self.files.copy(root), frames=list(self.frames), psnr=list(self.psnr),
                       ms_ssim=list(self.ms_ssim), swd=list(self.swd), seconds=list(self.seconds),
                       same_bytes=dict(self.same_bytes), same_bytes_notes=list(self.same_bytes_notes),
                       protection=self.protection.copy())

    def cleanup(self) -> None:
        """Delete the files written for download."""
        self.files.cleanup()


def cleanup_record(record: RunRecord | None) -> None:
    """``gr.State`` delete callback: drop a finished session's download files."""
    if isinstance(record, RunRecord):
        record.cleanup()
