"""A standard image file carried as a payload (JPEG, AVIF), opened by Pillow."""
from __future__ import annotations

import io

from PIL import Image

from ..errors import BitstreamError


def open_payload(data: bytes, fmt: str) -> Image.Image:
    """The decoded image of a ``fmt`` file (Pillow's format name, e.g. "JPEG"); a file of another
    format, or a corrupt or truncated one, raises :class:`BitstreamError` with one sentence."""
    try:
        img = Image.open(io.BytesIO(data))
        if img.format != fmt:
            raise BitstreamError(f"The {fmt} payload holds another file format.")
        img.load()
    except BitstreamError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on corrupt data
        raise BitstreamError(f"The {fmt} payload is corrupt ({type(exc).__name__}).") from exc
    return img
