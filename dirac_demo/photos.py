"""Photo files enhanced in a batch: what ``dirac-demo enhance FILES/GLOBS/FOLDERS -o DIR`` does.

Each input (a JPEG, AVIF or ``.drc`` file) is decoded at its full size, up to
:data:`~.images.LARGE_PIXELS`, and enhanced tile by tile to step K (:mod:`.large`); the result is
upright and carries the input's ICC profile byte for byte (the pixels are never converted, so
the profile still describes them) and its EXIF block with the orientation set to 1. Other
images are refused with one line: DIRAC repairs a codec's artefacts, so they are compressed first
(``dirac-demo compress``).

Outputs go to their own folder as ``NAME.stepK.png`` (``.jpg``, ``.webp``, ``.avif``) and never
replace an input. An output that exists already is skipped, so a batch that was interrupted
resumes where it stopped (outputs are written under a temporary name and renamed when whole). A
file that fails is listed with its reason and the others go on.
"""
from __future__ import annotations

import glob
import io
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from . import codecs
from .codecs import CODECS
from .errors import DiracError, InputError
from .images import PhotoMeta, read_meta
from .large import default_plan, enhance_tiles, plan_tiles
from .pipeline import DiracPipeline, check_run
from .protect import MAX_FEATHER, DEFAULT_FEATHER, blend_weights, file_mask, read_mask

# --format -> (Pillow's format name, the file name ending)
FORMATS = {pillow.lower(): (pillow, ending) for pillow, ending in
           (("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp"), ("AVIF", ".avif"))}
DEFAULT_QUALITY = {"JPEG": 95, "WEBP": 95, "AVIF": 90}     # by Pillow's format name
OUTPUT_NAME = re.compile(r"\.step\d+(of\d+)?$")      # the stem ending of this module's outputs
MASK_ENDINGS = (".png", ".webp", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg")

@dataclass
class EnhanceOptions:
    """How every file of a batch is enhanced and written."""

    stop: int = 1                 # K: the step written (1: the fidelity end; S: the realism end)
    steps: int = 20               # S: the late-start steps K is one of
    seed: int = 0
    threshold: bool = True
    fmt: str = "png"              # a key of FORMATS
    quality: int | None = None    # JPEG/WebP/AVIF quality (None: DEFAULT_QUALITY)
    protect: str | None = None    # a mask image for every file, or a folder of masks named like the inputs
    protect_step: int = 1
    feather: int = DEFAULT_FEATHER
    ignore_mask: bool = False     # ignore the protect mask a .drc carries
    overwrite: bool = False       # rewrite outputs that exist (never an input)
    tile: int | None = None       # tile side in pixels (None: the pipeline's default plan)

    def check(self) -> None:
        """InputError for settings no file can run with."""
        check_run(self.steps, self.stop, 0.0)
        if self.fmt not in FORMATS:
            raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {self.fmt!r}.")
        if self.quality is not None and (self.fmt == "png" or not 0 <= self.quality <= 100):
            raise InputError("--quality is for jpeg, webp and avif output, in 0..100.")
        if self.protect is not None and not Path(self.protect).exists():
            raise InputError(f"The protect mask {self.protect!r} does not exist.")
        if self.protect is not None and not 0 <= self.protect_step <= self.stop:
            raise InputError(f"--protect-step must be in 0..{self.stop} (the step written).")
        if not 0 <= self.feather <= MAX_FEATHER:
            raise InputError(f"--feather must be in 0..{MAX_FEATHER} pixels.")
        if self.tile is not None and self.tile < 128:
            raise InputError("--tile must be at least 128 pixels.")

    def output_name(self, src: Path) -> str:
        """``NAME.stepK.ext`` (``NAME.stepKofS.ext`` when S is not 20)."""
        of = f"of{self.steps}" if self.steps != 20 else ""
        return f"{src.stem}.step{self.stop}{of}{FORMATS[self.fmt][1]}"


@dataclass
class BatchReport:
    """What a batch did: outputs written (input, output), inputs skipped, failures (input, reason)."""

    written: list[tuple[Path, Path]] = field(default_factory=list)
    skipped: list[tuple[Path, Path]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def readable_endings() -> tuple[str, ...]:
    """The name endings a folder or glob contributes: ``.drc`` and every codec's plain files."""
    return (".drc", *(e for c in CODECS.values() for e in c.plain_files))


def find_inputs(items: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """The files named by ``items`` (files, globs, folders; a folder's files not descended into),
    each once, and the items that name nothing. Folders and globs give the files with a
    :func:`readable_endings` ending that are not outputs of a batch (``NAME.stepK``)."""
    found: dict[Path, None] = {}
    missing = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            hits = sorted(p for p in path.iterdir() if p.is_file())
        elif path.is_file():
            found.setdefault(path, None)
            continue
        else:
            hits = sorted(Path(p) for p in glob.glob(item) if Path(p).is_file())
        hits = [p for p in hits if p.suffix.lower() in readable_endings() and not OUTPUT_NAME.search(p.stem)]
        if not hits:
            missing.append((item, "no such file" if not glob.has_magic(item) and not path.is_dir()
                            else "no JPEG, AVIF or .drc files there"))
        for p in hits:
            found.setdefault(p, None)
    return list(found), missing


def enhance_batch(pipe: DiracPipeline, items: list[str], outdir: str | os.PathLike, options: EnhanceOptions,
                  log: Callable[[str], None] = print, progress: bool = True) -> BatchReport:
    """Enhance every file ``items`` name into ``outdir``; ``log`` gets one line per file."""
    options.check()
    out = Path(outdir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Cannot make the output folder {os.fspath(out)!r}: {exc.strerror}.") from exc
    inputs, missing = find_inputs(items)
    report = BatchReport(failed=list(missing))
    sources = {p.resolve() for p in inputs}
    claimed: dict[Path, Path] = {}                   # output -> the input it is for
    for src in inputs:
        dst = out / options.output_name(src)
        if dst.resolve() in sources or dst.resolve() in claimed:
            why = ("its output would replace an input" if dst.resolve() in sources
                   else f"{claimed[dst.resolve()]}'s output has the same name")
            report.failed.append((str(src), f"{why} ({dst}); choose another -o folder"))
            continue
        claimed[dst.resolve()] = src
        if dst.exists() and not options.overwrite:
            report.skipped.append((src, dst))
            log(f"{src}: skipped, {dst} exists")
            continue
        try:
            log(enhance_file(pipe, src, dst, options, progress))
            report.written.append((src, dst))
        except (DiracError, OSError, MemoryError) as exc:
            report.failed.append((str(src), _reason(exc)))
    return report


def _reason(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "out of memory (try a smaller --tile)"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}"
    return str(exc)


def enhance_file(pipe: DiracPipeline, src: Path, dst: Path, options: EnhanceOptions, progress: bool = True) -> str:
    """Enhance one file into ``dst`` (written whole or not at all); returns a line about it."""
    t0 = time.perf_counter()
    data = src.read_bytes()
    meta = read_meta(data)
    pixels, tiles, masked = enhanced_pixels(pipe, data, src, options, progress)
    image = Image.fromarray(pixels, "RGB")          # codecs decode as displayed: upright
    del pixels
    _write_whole(dst, encode(image, options.fmt, options.quality, meta))
    kept = ", ICC profile" * bool(_rgb_icc(meta)) + ", EXIF" * bool(meta.upright_exif())
    protected = f", protected regions at step {options.protect_step}" if masked else ""
    return (f"{src} -> {dst}: {image.width}x{image.height}, step {options.stop} of {options.steps}, "
            f"{tiles} tile{'s' * (tiles != 1)}{protected}{kept}, {time.perf_counter() - t0:.1f} s")


def enhanced_pixels(pipe: DiracPipeline, data: bytes, src: Path, options: EnhanceOptions,
                    progress: bool = True) -> tuple[np.ndarray, int, bool]:
    """A file's step K as decoded (H, W, 3) uint8 pixels, protected regions composed in; the
    tiles it took and whether a mask applied. The decoded base is freed on return."""
    comp = pipe.decode(_checked(data), max_pixels=pipe.largest(codecs.read(data)))
    mask = _mask(options, src, comp.encoded) if options.protect_step < options.stop else None
    height, width = comp.base.shape[-2:]
    plan = plan_tiles(height, width, options.tile) if options.tile else default_plan(pipe, height, width)
    keep = {options.protect_step} if mask is not None else set()
    with _bar(progress, plan.count * options.stop, f"{src.name} ({plan.count} tiles x {options.stop} steps)") as bar:
        frames = enhance_tiles(pipe, comp, options.stop, options.steps, options.seed, options.threshold, keep, plan,
                               on_step=bar.update)
    if mask is None:
        return frames[options.stop], plan.count, False
    return compose_rows(frames[options.protect_step], frames[options.stop], mask, options.feather), plan.count, True


def _checked(data: bytes) -> bytes:
    """``data`` if it is a ``.drc`` or a codec's plain file; one line naming the way out otherwise."""
    if any(c.is_file(data) for c in CODECS.values()):
        return data
    try:
        codecs.parse(data)
    except DiracError:
        if _is_image(data):
            raise InputError("not a JPEG, AVIF or .drc file: DIRAC repairs a codec's artefacts, so compress "
                             "other images first (dirac-demo compress)") from None
        raise
    return data


def _is_image(data: bytes) -> bool:
    try:
        Image.open(io.BytesIO(data))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not an image Pillow knows"
        return False


def _mask(options: EnhanceOptions, src: Path, enc) -> np.ndarray | None:
    """The protect mask of one file: ``--protect``'s (a file, or the folder's mask named like the
    input), else the one a ``.drc`` carries unless ignored, else None."""
    path = Path(options.protect) if options.protect else None
    if path is not None and path.is_dir():
        path = next((p for p in sorted(path.iterdir()) if p.stem == src.stem and p.suffix.lower() in MASK_ENDINGS),
                    None)
    if path is not None:
        return read_mask(path, enc.width, enc.height)
    return None if options.ignore_mask else file_mask(enc)


def compose_rows(fidelity: np.ndarray, realism: np.ndarray, mask: np.ndarray, feather: int,
                 band: int = 1024) -> np.ndarray:
    """:func:`.protect.compose` of two 8-bit frames, ``band`` rows at a time: each band's weights
    read ``feather`` rows of mask beyond it, so they are the whole image's."""
    out = np.empty_like(realism)
    height = mask.shape[0]
    for y0 in range(0, height, band):
        y1 = min(height, y0 + band)
        a, b = max(0, y0 - feather), min(height, y1 + feather)
        w = blend_weights(mask[a:b], feather)[0, 0, y0 - a:y1 - a].numpy()[..., None]
        out[y0:y1] = np.round(w * fidelity[y0:y1] + (1 - w) * realism[y0:y1]).astype(np.uint8)
    return out


def _rgb_icc(meta: PhotoMeta) -> bytes | None:
    """The input's ICC profile where it describes RGB (a CMYK or grey file's profile does not fit
    the RGB pixels it decodes to, so it is not carried)."""
    return meta.icc if meta.icc and meta.icc[16:20] == b"RGB " else None


def encode(image: Image.Image, fmt: str, quality: int | None, meta: PhotoMeta) -> bytes:
    """``image`` as a ``fmt`` file (:data:`FORMATS`) carrying ``meta``'s RGB profile and upright EXIF."""
    name = FORMATS[fmt][0]
    opts: dict = {}
    if name != "PNG":
        opts["quality"] = DEFAULT_QUALITY[name] if quality is None else quality
    if name in ("JPEG", "AVIF"):
        opts["subsampling"] = "4:4:4"
    if _rgb_icc(meta):
        opts["icc_profile"] = _rgb_icc(meta)
    if meta.upright_exif():
        opts["exif"] = meta.upright_exif()
    buf = io.BytesIO()
    image.save(buf, name, **opts)
    return buf.getvalue()


def _write_whole(dst: Path, data: bytes) -> None:
    """Write under a temporary name, then rename: ``dst`` exists only once it is whole."""
    part = dst.with_name(f".{dst.name}.part")
    part.write_bytes(data)
    os.replace(part, dst)


def _bar(enabled: bool, total: int, desc: str):
    """A tqdm bar on stderr over ``total`` tile steps (hidden when stderr is not a terminal)."""
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="tile-step", file=sys.stderr, leave=False,
                disable=None if enabled else True, dynamic_ncols=True)
