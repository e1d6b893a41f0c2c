"""The files the page serves and reads: a run's PNG frames and bitstream, and the uploads.

The page shows files rather than arrays: Gradio writes arrays to its cache under their content
hash without a staging file, so two sessions showing the same frame at once could serve each other
a half-written file; files are copied into its cache atomically. Every file here is written under a
temporary name and renamed into place for the same reason.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import BitstreamError, InputError
from ..images import png_bytes
from .settings import MAX_BITSTREAM_BYTES


def file_stem(source: str | None, fallback: str = "image") -> str:
    """A safe download-file stem from an upload's name."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(source).stem)[:40].strip("_") if source else ""
    return stem or fallback


def read_bitstream(path: str | None) -> bytes:
    """The bytes of an uploaded bitstream file, with the page's size limit."""
    if not path:
        raise InputError("Upload a .drc bitstream file first.")
    p = Path(path)
    if p.stat().st_size > MAX_BITSTREAM_BYTES:
        raise BitstreamError(f"The file is over the {MAX_BITSTREAM_BYTES >> 20} MB limit for a bitstream.")
    return p.read_bytes()


def replace_into(path: Path, write) -> None:
    """Write ``path`` through a staging file in its folder (``write(fh)``), then rename it into place."""
    fd, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as fh:
        write(fh)
    os.replace(staging, path)


class RunFiles:
    """One run's folder: its PNG files, each written once, and its bitstream for download."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)

    @classmethod
    def create(cls, root: str | Path) -> RunFiles:
        """A new, empty folder under ``root``."""
        return cls(Path(tempfile.mkdtemp(prefix="run-", dir=root)))

    def png(self, name: str) -> Path:
        return self.workdir / f"{name}.png"

    def save(self, name: str, image: np.ndarray) -> Path:
        """``image`` (RGB or RGBA, uint8) as ``workdir/name.png``, written once."""
        path = self.png(name)
        if not path.exists():
            mode = "RGBA" if image.shape[-1] == 4 else "RGB"
            replace_into(path, lambda fh: fh.write(png_bytes(Image.fromarray(image, mode))))
        return path

    def exists(self) -> bool:
        """Whether the folder is still there (a session's end or a new run deletes it)."""
        return self.workdir.exists()

    def copy(self, root: str | Path) -> RunFiles:
        """A new folder under ``root`` holding copies of the files written so far."""
        twin = RunFiles.create(root)
        for f in self.workdir.iterdir():
            if f.is_file() and not f.name.startswith("."):
                shutil.copyfile(f, twin.workdir / f.name)
        return twin

    def cleanup(self) -> None:
        """Delete the folder and its files."""
        shutil.rmtree(self.workdir, ignore_errors=True)
