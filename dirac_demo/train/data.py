"""Training data: a folder of images -> random crops with the paper's preprocessing (§4).

Each crop is taken from a random rescaling of its image by a factor in [0.5, 1.0], then
flipped horizontally with probability 0.5 (HiFiC's pipeline). Images are decoded once and
kept in memory as uint8, so a CPU spends its time on the networks, not on PNG decoding.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..codecs.avif import AvifCodec
from ..codecs.jpeg import JpegCodec, ijg_scale
from ..diffusion.file_condition import jpeg_condition
from ..errors import InputError
from ..images import read_rgb_within

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}


def list_images(folder: str | os.PathLike, limit: int | None = None) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name; the first ``limit`` when given."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"Data folder {str(root)!r} does not exist.")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise InputError(f"No images found in {str(root)!r}.")
    return files[:limit] if limit else files


def heldout_images(folder: str | os.PathLike) -> list[Path]:
    """The validation split of a training folder: every 40th image, which training never sees."""
    return list_images(folder)[::40]


class CropSampler:
    """Random training crops from an in-memory image set."""

    def __init__(self, folder: str | os.PathLike, crop: int, seed: int = 0,
                 min_scale: float = 0.5, max_scale: float = 1.0,
                 exclude: set | None = None, include: set | None = None) -> None:
        self.crop = crop
        self.min_scale, self.max_scale = min_scale, max_scale
        self.rng = np.random.default_rng(seed)
        self.images = []
        for path in list_images(folder):
            if (exclude and path in exclude) or (include is not None and path not in include):
                continue
            img = read_rgb_within(path, max_pixels=1 << 62)
            if min(img.size) * min_scale >= crop:
                self.images.append(np.asarray(img))
        if not self.images:
            raise InputError(f"No image in {str(folder)!r} is large enough for {crop}px crops.")

    def _one(self) -> np.ndarray:
        arr = self.images[self.rng.integers(len(self.images))]
        h, w = arr.shape[:2]
        lo = max(self.min_scale, self.crop / min(h, w))
        scale = self.rng.uniform(lo, max(lo, self.max_scale))
        size = min(min(h, w), int(math.ceil(self.crop / scale)))
        y = self.rng.integers(0, h - size + 1)
        x = self.rng.integers(0, w - size + 1)
        patch = arr[y:y + size, x:x + size]
        if size != self.crop:
            patch = np.asarray(Image.fromarray(patch).resize((self.crop, self.crop), Image.Resampling.BICUBIC))
        if self.rng.random() < 0.5:
            patch = patch[:, ::-1]
        return patch

    def batch(self, n: int) -> np.ndarray:
        """A uint8 batch of shape (n, crop, crop, 3)."""
        return np.stack([self._one() for _ in range(n)])


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    """uint8 (n, H, W, 3) -> float32 (n, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float().div(255.0)


# mozjpeg's default quantisation tables (its jcparam.c, table set 3 by N. Robidoux), natural
# order, the same for luma and chroma: the most common tables in the wild that are not IJG's
MOZJPEG_TABLE = (16, 16, 16, 18, 25, 37, 56, 85, 16, 17, 20, 27, 34, 40, 53, 75,
                 16, 20, 24, 31, 43, 62, 91, 135, 18, 27, 31, 40, 53, 74, 106, 156,
                 25, 34, 43, 53, 69, 94, 131, 189, 37, 40, 62, 74, 94, 124, 169, 238,
                 56, 53, 91, 106, 131, 169, 226, 311, 85, 75, 135, 156, 189, 238, 311, 418)
# JPEG writers a mixed training set draws from: Pillow's default (IJG tables, 4:2:0), other
# chroma subsampling, mozjpeg's tables, and a file compressed twice
JPEG_WRITERS = ("pillow", "444", "422", "mozjpeg-tables", "double")


def jpeg_bytes(img: Image.Image, quality: int, writer: str = "pillow",
               rng: np.random.Generator | None = None) -> bytes:
    """``img`` as a JPEG file at IJG quality ``quality``, written the way ``writer`` (one of
    :data:`JPEG_WRITERS`) would; "double" first writes it at a quality up to 25 above."""
    buf = io.BytesIO()
    if writer == "double":
        first = int(min(95, quality + (rng or np.random.default_rng()).integers(0, 26)))
        img = Image.open(io.BytesIO(jpeg_bytes(img, first))).convert("RGB")
        writer = "pillow"
    kw = {"444": {"quality": int(quality), "subsampling": 0}, "422": {"quality": int(quality), "subsampling": 1},
          "mozjpeg-tables": {"qtables": [list(ijg_scale(MOZJPEG_TABLE, quality))] * 2, "subsampling": 2}}
    img.save(buf, format="JPEG", **kw.get(writer, {"quality": int(quality)}))
    return buf.getvalue()


def jpeg_files(batch: np.ndarray, qualities, writers: list[str] | None = None,
               rng: np.random.Generator | None = None) -> list[bytes]:
    """Each uint8 crop as a JPEG file at its quality factor, written by its writer (default Pillow's)."""
    return [jpeg_bytes(Image.fromarray(img), int(q), writers[i] if writers else "pillow", rng)
            for i, (img, q) in enumerate(zip(batch, qualities))]


def decode_jpegs(files: list[bytes], like: np.ndarray) -> np.ndarray:
    """JPEG files decoded by Pillow to RGB, into an array shaped and typed like the crops ``like``."""
    out = np.empty_like(like)
    for i, data in enumerate(files):
        out[i] = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return out


def jpeg_roundtrip(batch: np.ndarray, qualities: np.ndarray, writers: list[str] | None = None,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """JPEG-compress each uint8 crop at its quality factor (with its writer, default Pillow's) and
    decode it (Pillow)."""
    return decode_jpegs(jpeg_files(batch, qualities, writers, rng), batch)


def sample_jpeg_quality(rng: np.random.Generator, n: int, qmin: int, qmax: int) -> np.ndarray:
    """Quality factors log-uniform over [qmin, qmax], rounded to the integer grid (B.4)."""
    u = rng.uniform(np.log(qmin), np.log(qmax + 1), size=n)
    return np.clip(np.floor(np.exp(u)), qmin, qmax).astype(int)


class JpegPairs:
    """Picklable batch transform for worker processes: uint8 crops -> (x, JPEG(x)) in [0, 1], and
    with ``condition`` the (n, k) file-conditioning vectors of the crops' JPEG files as a third item.

    ``writers``: the JPEG writers drawn from uniformly per crop (default: Pillow's alone).
    """

    codec = JpegCodec.name     # the base codec whose receiver's x̃ these pairs are

    def __init__(self, qmin: int, qmax: int, writers: tuple[str, ...] = ("pillow",), condition: bool = False) -> None:
        unknown = set(writers) - set(JPEG_WRITERS)
        if unknown:
            raise ValueError(f"unknown JPEG writers {sorted(unknown)}; choose from {JPEG_WRITERS}")
        self.qmin, self.qmax, self.writers, self.condition = qmin, qmax, tuple(writers), condition

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        q = sample_jpeg_quality(rng, len(batch), self.qmin, self.qmax)
        writers = None if self.writers == ("pillow",) else list(rng.choice(self.writers, len(batch)))
        files = jpeg_files(batch, q, writers, rng)
        pair = (to_tensor(batch), to_tensor(decode_jpegs(files, batch)))
        if not self.condition:
            return pair
        return (*pair, torch.stack([jpeg_condition(data) for data in files]))


def avif_roundtrip(batch: np.ndarray, qualities: np.ndarray) -> np.ndarray:
    """AVIF-compress each uint8 crop at its quality (the AVIF codec's fixed settings) and decode it."""
    from ..codecs import avif
    out = np.empty_like(batch)
    for i, (img, q) in enumerate(zip(batch, qualities)):
        out[i] = np.asarray(avif.decode(avif.encode(Image.fromarray(img), int(q))))
    return out


class AvifPairs:
    """Picklable batch transform: uint8 crops -> (x, AVIF(x)) in [0, 1], the quality drawn
    uniformly from ``qmin..qmax`` per crop."""

    codec = AvifCodec.name

    def __init__(self, qmin: int, qmax: int) -> None:
        if not 0 <= qmin <= qmax <= 100:
            raise ValueError(f"AVIF qualities must satisfy 0 <= min <= max <= 100, got {qmin}..{qmax}")
        self.qmin, self.qmax = qmin, qmax

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        q = rng.integers(self.qmin, self.qmax + 1, len(batch))
        return to_tensor(batch), to_tensor(avif_roundtrip(batch, q))


class _BatchStream(torch.utils.data.IterableDataset):
    """Endless batches of one sampler; each worker process reseeds its own copy."""

    def __init__(self, sampler: CropSampler, n: int, seed: int, transform) -> None:
        super().__init__()
        self.sampler, self.n, self.seed, self.transform = sampler, n, seed, transform

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid = info.id if info is not None else 0
        self.sampler.rng = np.random.default_rng([self.seed, wid])
        rng = np.random.default_rng([self.seed, wid, 1])
        while True:
            batch = self.sampler.batch(self.n)
            yield self.transform(batch, rng) if self.transform else to_tensor(batch)


def batch_stream(sampler: CropSampler, n: int, workers: int, seed: int, transform=None, pin: bool = False):
    """Batches made by ``workers`` background processes (``--workers``), so a GPU is not left
    waiting on Pillow. Yields what ``transform(uint8 batch, rng)`` returns, else float crops.
    With ``workers == 0`` the trainers keep their in-process, step-seeded sampling instead."""
    loader = torch.utils.data.DataLoader(
        _BatchStream(sampler, n, seed, transform), batch_size=None, num_workers=workers,
        pin_memory=pin, prefetch_factor=4, persistent_workers=True)
    return iter(loader)


PAIRS = {cls.codec: cls for cls in (JpegPairs, AvifPairs)}   # the pair makers of codecs with plain files
