"""Image I/O and tensor helpers: validated loading, a file's colour profile and EXIF, PIL <-> tensor,
padding and cropping."""
from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError, TooLargeError

MIN_SIDE = 16
MAX_PIXELS = 4_194_304          # 4 megapixels (2048 x 2048): bounded time and memory
BOMB_PIXELS = 25_000_000        # never decode pixel data of images claiming more than this
LARGE_PIXELS = 64_000_000       # the photo path (tile by tile, bounded memory): 48 and 50 MP phone photos
ORIENTATION = 0x0112            # the EXIF orientation tag

ImageLike = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]


def _open(src: ImageLike) -> Image.Image:
    if isinstance(src, Image.Image):
        return src
    if isinstance(src, np.ndarray):
        arr = src
        if arr.dtype != np.uint8:
            if arr.dtype.kind == "f":
                arr = np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
            else:
                arr = np.clip(arr, 0, 255).astype(np.uint8)
        try:
            return Image.fromarray(arr)
        except (TypeError, ValueError) as exc:
            raise InputError(f"Cannot read an image from an array of shape {arr.shape}.") from exc
    data = src
    if isinstance(src, (str, os.PathLike)):
        try:
            with open(src, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise InputError(f"Cannot read file {os.fspath(src)!r}: {exc.strerror}.") from exc
    if not data:
        raise InputError("The file is empty, not an image.")
    try:
        img = Image.open(io.BytesIO(data))      # reads the header only
        w, h = img.size
        if w * h > BOMB_PIXELS:
            raise InputError(f"The image is {w}x{h} pixels, far over the {MAX_PIXELS / 1e6:.1f} MP limit.")
        img.load()
    except Image.DecompressionBombError as exc:
        raise InputError("The image is too large to decode safely (decompression bomb guard).") from exc
    except UnidentifiedImageError as exc:
        raise InputError("The file is not an image Pillow can read.") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"The image is corrupt or truncated ({exc}).") from exc
    return img


def open_stored(src: ImageLike) -> Image.Image:
    """An image opened with the size guards, in its own mode (no conversion, no orientation)."""
    return _open(src)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I") and arr.max() > 255 else 255.0
        return Image.fromarray(np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)).convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")   # L, 1, CMYK, YCbCr, LAB, HSV


def read_rgb_within(src: ImageLike, max_pixels: int = MAX_PIXELS, downscale: bool = False) -> Image.Image:
    """Open, validate and normalise an image to 8-bit RGB with EXIF orientation applied.

    Alpha is composited on white; 16-bit images are scaled to 8 bits. Images over
    ``max_pixels`` raise :class:`TooLargeError` unless ``downscale`` asks for a resize.
    """
    return fit_pixels(read_rgb(src), max_pixels, downscale)


def read_rgb(src: ImageLike) -> Image.Image:
    """:func:`read_rgb_within` at the image's own size (up to the decompression-bomb guard)."""
    img = _open(src)
    if getattr(img, "n_frames", 1) > 1:
        raise InputError("Animated images are not supported: upload a still image.")
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a malformed EXIF block must not lose the image
        pass
    w, h = img.size
    if w == 0 or h == 0:
        raise InputError("The image has zero size.")
    if min(w, h) < MIN_SIDE:
        raise InputError(f"The image is {w}x{h}; each side must be at least {MIN_SIDE} pixels.")
    return _to_rgb(img)


def fit_pixels(img: Image.Image, max_pixels: int, downscale: bool) -> Image.Image:
    """``img`` if it has at most ``max_pixels``; else downscaled to fit (when ``downscale``) or refused."""
    w, h = img.size
    if w * h > max_pixels:
        if not downscale:
            raise TooLargeError(w, h, max_pixels)
        scale = (max_pixels / (w * h)) ** 0.5
        img = img.resize((max(MIN_SIDE, int(w * scale)), max(MIN_SIDE, int(h * scale))),
                         Image.Resampling.LANCZOS)
    if max(img.size) > 65535:
        raise InputError("Each side must be below 65536 pixels.")
    return img


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """8-bit RGB PIL image -> float32 tensor (1, 3, H, W) in [0, 1] (one 8-bit copy on the way)."""
    arr = np.array(img.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def tensor_to_uint8(x: torch.Tensor) -> np.ndarray:
    """Tensor (1, 3, H, W) or (3, H, W) in [0, 1] -> uint8 array (H, W, 3), rounded."""
    if x.dim() == 4:
        x = x[0]
    x = x.detach().float().clamp(0, 1).mul(255.0).round().to(torch.uint8)
    return x.permute(1, 2, 0).cpu().numpy()


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """Tensor in [0, 1] -> 8-bit RGB PIL image."""
    return Image.fromarray(tensor_to_uint8(x), "RGB")


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """Round a [0, 1] tensor to the 8-bit grid, as any saved image would be."""
    return x.clamp(0, 1).mul(255.0).round().div(255.0)


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [−1, 1]."""
    return x * 2.0 - 1.0


def from_signed(x: torch.Tensor) -> torch.Tensor:
    """[−1, 1] -> [0, 1]."""
    return (x + 1.0) * 0.5


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad the bottom and right so H and W are multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="replicate")


def crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop back to the original ``height`` x ``width`` (top-left)."""
    return x[..., :height, :width]


def png_bytes(img: Image.Image) -> bytes:
    """Lossless PNG encoding of an image."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@dataclass(frozen=True)
class PhotoMeta:
    """What an image file says about its pixels besides the pixels: its ICC colour profile and its
    EXIF block, both byte for byte as stored, and its EXIF orientation (1 when it has none)."""

    icc: bytes | None = None
    exif: bytes | None = None
    orientation: int = 1

    def upright_exif(self) -> bytes | None:
        """The EXIF block for pixels already turned upright: orientation 1, every other byte kept."""
        return reset_orientation(self.exif) if self.exif else None


def read_meta(data: bytes) -> PhotoMeta:
    """The ICC profile, EXIF block and orientation of an image file's bytes (a JPEG, AVIF, PNG,
    WebP...); a file Pillow cannot open (a ``.drc``) has none. Reads the headers only."""
    try:
        img = Image.open(io.BytesIO(data))
        icc, exif = img.info.get("icc_profile") or None, img.info.get("exif") or None
        orientation = int(img.getexif().get(ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - no metadata is the answer for anything Pillow cannot parse
        return PhotoMeta()
    return PhotoMeta(icc, exif, orientation if 1 <= orientation <= 8 else 1)


def reset_orientation(exif: bytes) -> bytes | None:
    """``exif`` (a TIFF block, with or without the ``Exif\\0\\0`` prefix) with the orientation
    entry of its first directory set to 1 in place; unchanged when it has none, None when the
    block cannot be walked (carrying it could turn the image twice)."""
    head = 6 if exif.startswith(b"Exif\0\0") else 0
    order = {b"II": "<", b"MM": ">"}.get(exif[head:head + 2])
    if order is None:
        return None
    try:
        (ifd,) = struct.unpack_from(order + "I", exif, head + 4)
        (count,) = struct.unpack_from(order + "H", exif, head + ifd)
        for i in range(count):
            at = head + ifd + 2 + 12 * i
            tag, kind, n = struct.unpack_from(order + "HHI", exif, at)
            if tag == ORIENTATION and kind == 3 and n == 1:      # one SHORT, stored in the entry
                out = bytearray(exif)
                struct.pack_into(order + "H", out, at + 8, 1)
                return bytes(out)
    except struct.error:
        return None
    return exif
