"""The page's example images: their thumbnails, the copies the page serves, and their finished runs
at the default settings, made once at start so that a click shows one at once."""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from PIL import Image

from .state import RunRecord

THUMBNAIL = 160                   # the examples' thumbnails: longer side, px


class Examples:
    """The page's example images: their thumbnails, the copies the page serves, and their finished
    runs at the default settings (a visitor gets a copy of a run, whose files their session may
    delete)."""

    def __init__(self, folder: str | Path | None, workroot: str | Path) -> None:
        """The PNG and .jpg files in ``folder`` (none without one), served from ``workroot``."""
        found = Path(folder) if folder else None
        self.paths = sorted(found.glob("*.png")) + sorted(found.glob("*.jpg")) if found else []
        self.workroot = Path(workroot)
        self._runs: dict[str, RunRecord] = {}
        self._lock = threading.Lock()

    def thumbnails(self) -> list[tuple[str, str]]:
        """Small thumbnails of the examples (.jpg files in the work folder), with their captions."""
        folder = self.workroot / "thumbnails"
        folder.mkdir(parents=True, exist_ok=True)
        shown = []
        for path in self.paths:
            thumb = folder / f"{path.stem}.jpg"
            with Image.open(path) as im:
                im = im.convert("RGB")
                im.thumbnail((THUMBNAIL, THUMBNAIL))
                im.save(thumb, quality=85)
            shown.append((str(thumb), path.stem))
        return shown

    def served(self, index: int) -> Path:
        """Example ``index`` copied into the work folder (Gradio serves files from there), once:
        staged, so two first clicks at once never serve a half-copied file."""
        path = self.paths[int(index)]
        served = self.workroot / "inputs" / path.name
        if not served.exists():
            served.parent.mkdir(parents=True, exist_ok=True)
            staging = served.with_name(f".{served.name}.{threading.get_ident()}")
            shutil.copyfile(path, staging)
            os.replace(staging, served)
        return served

    def keep(self, name: str, record: RunRecord) -> None:
        """Keep ``record`` as the finished run of the example ``name``."""
        with self._lock:
            self._runs[name] = record

    def run(self, name: str) -> RunRecord | None:
        """A copy of ``name``'s run with its own files, or None while it is not cached."""
        with self._lock:
            record = self._runs.get(name)
        return record.copy(self.workroot) if record is not None else None

    def __contains__(self, name: str) -> bool:
        with self._lock:
            return name in self._runs
