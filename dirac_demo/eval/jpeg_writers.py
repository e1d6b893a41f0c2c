"""JPEG files as other encoders write them: the writers the held-out JPEG experiments read back.

- ``pillow``: Pillow's defaults (libjpeg-turbo, IJG tables, 4:2:0, baseline), what JPEG+DIRAC was
  trained on; ``pillow-422``: the same with 4:2:2;
- ``cjpeg-444``: libjpeg-turbo's ``cjpeg -sample 1x1`` (no chroma subsampling);
- ``cjpeg-420-prog``: ``cjpeg -sample 2x2 -progressive``;
- ``cjpeg-moz-tables``: ``cjpeg -qtables`` with mozjpeg's default tables (its table set 3, by
  N. Robidoux, for both luma and chroma), scaled by ``-quality``, 4:2:0, baseline: tables that
  are not IJG's, so the quality factor is an estimate (mozjpeg's trellis quantisation is not
  reproduced).

``cjpeg`` is Debian's ``libjpeg-turbo-progs``. Training writes its mixes with Pillow alone
(:data:`dirac_demo.train.data.JPEG_WRITERS`); these are the files it is measured on.
"""
from __future__ import annotations

import io
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

from ..train.data import MOZJPEG_TABLE


def pillow(img: Image.Image, quality: int, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, **kw)
    return buf.getvalue()


def cjpeg(img: Image.Image, quality: int, *flags: str) -> bytes:
    """``cjpeg -quality Q FLAGS`` on ``img`` (a PPM on its stdin); "-qtables" gets mozjpeg's tables."""
    ppm = io.BytesIO()
    img.save(ppm, format="PPM")
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "tables.txt"
        if "-qtables" in flags:
            table.write_text((" ".join(map(str, MOZJPEG_TABLE)) + "\n") * 2)
        args = [a for f in flags for a in ((f, str(table)) if f == "-qtables" else (f,))]
        return subprocess.run(["cjpeg", "-quality", str(quality), *args], input=ppm.getvalue(),
                              capture_output=True, check=True).stdout


ENCODERS = {
    "pillow": lambda img, q: pillow(img, q),
    "pillow-422": lambda img, q: pillow(img, q, subsampling=1),
    "cjpeg-444": lambda img, q: cjpeg(img, q, "-sample", "1x1"),
    "cjpeg-420-prog": lambda img, q: cjpeg(img, q, "-sample", "2x2", "-progressive"),
    "cjpeg-moz-tables": lambda img, q: cjpeg(img, q, "-sample", "2x2", "-baseline", "-qtables"),
}
