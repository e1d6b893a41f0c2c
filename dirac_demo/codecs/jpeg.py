"""The JPEG base codec: libjpeg through Pillow, quality factor 1–100; the payload is the JPEG file."""
from __future__ import annotations

import io

import torch
from PIL import Image

from ..errors import BitstreamError, InputError
from ..images import pil_to_tensor, tensor_to_pil
from .bitstream import Encoded


class JpegCodec:
    """JPEG via Pillow; the payload is exactly Pillow's JPEG file."""

    name = "jpeg"

    def compress(self, x: torch.Tensor, quality: int) -> Encoded:
        """Encode a (1, 3, H, W) tensor in [0, 1] at quality factor ``quality``."""
        quality = int(quality)
        if not 1 <= quality <= 100:
            raise InputError(f"JPEG quality factor must be in 1..100, got {quality}.")
        buf = io.BytesIO()
        tensor_to_pil(x).save(buf, format="JPEG", quality=quality)
        h, w = x.shape[-2:]
        return Encoded(codec="jpeg", width=w, height=h, chunks=[buf.getvalue()], quality=quality)

    def decompress(self, enc: Encoded) -> torch.Tensor:
        """Decode to a (1, 3, H, W) tensor in [0, 1]; a bad payload raises BitstreamError."""
        if len(enc.chunks) != 1:
            raise BitstreamError("A JPEG bitstream must hold exactly one payload chunk.")
        try:
            img = Image.open(io.BytesIO(enc.chunks[0]))
            if img.format != "JPEG":
                raise BitstreamError("The JPEG payload is not a JPEG file.")
            img.load()
        except BitstreamError:
            raise
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types on corrupt data
            raise BitstreamError(f"The JPEG payload is corrupt ({type(exc).__name__}).") from exc
        if img.size != (enc.width, enc.height):
            raise BitstreamError("The JPEG payload's size does not match the header.")
        return pil_to_tensor(img.convert("RGB"))
