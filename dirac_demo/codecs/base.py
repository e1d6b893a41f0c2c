"""What every base codec is: one row of the codec table (:data:`dirac_demo.codecs.CODECS`).

A codec has a name, its ``.drc`` id, a label and a one-line description, a rate range with its
default, ``compress(x, rate, **opts)`` to real bytes (an :class:`Encoded`) and ``decompress(enc)``
to CompressAI's dict (``{"x_hat": image}``, plus ``"x_cond"``, the image DIRAC is conditioned on,
where a codec has one). Codecs whose payload is a standard file also read such plain files.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import BitstreamError, InputError


@dataclass(frozen=True)
class RateRange:
    """A codec's rate parameter: its range, default, command-line flag and label."""

    low: float
    high: float
    default: float
    flag: str                 # the command-line flag without dashes: qf, quality, lmbda
    label: str                # e.g. "JPEG quality factor"
    integer: bool = True      # qualities are integers; λ is not
    log: bool = False         # sliders and sweeps move in log space
    demo: float | None = None  # where the page starts and the benchmark runs (a low rate, where DIRAC shows)

    def check(self, rate: float, what: str) -> float:
        """``rate`` if it lies in the range (an integer where the codec needs one), else InputError."""
        ok = self.low * (1 - 1e-3 * (not self.integer)) <= rate <= self.high * (1 + 1e-3 * (not self.integer))
        if not ok or (self.integer and rate != int(rate)) or math.isnan(rate):
            low, high = (int(self.low), int(self.high)) if self.integer else (self.low, self.high)
            raise InputError(f"{what} must be in {low}..{high}, got {rate:g}.")
        return int(rate) if self.integer else float(rate)

    def format(self, rate: float) -> str:
        """The rate as people read it: '30' or '0.0016'."""
        return f"{int(round(rate))}" if self.integer else f"{rate:.5g}"


@dataclass
class FileFacts:
    """What a plain file read as a bitstream says about itself (none for a ``.drc``)."""

    kind: str                          # "JPEG" or "AVIF": the file's format
    quality_read: str = "exact"        # "exact", "estimated" (nearest) or "unknown" (not readable)
    subsampling: str | None = None     # JPEG: "4:2:0", "4:4:4", ..., "grayscale"
    scan: str | None = None            # JPEG: "baseline" or "progressive"
    mode: str | None = None            # Pillow's mode of the file


@dataclass
class Encoded:
    """A compressed image: everything a receiver needs, and nothing else."""

    codec: str
    width: int
    height: int
    chunks: list[bytes]
    quality: int = 0          # JPEG quality factor, or AVIF quality
    lmbda: float = 0.0        # neural λ_rate (the receiver's post-filter and DIRAC thresholds read it)
    scale_q: int = 0          # neural latent scale, round(s * 1024)
    weights_id: int = 0       # neural: fingerprint of the codec weights that made it (0: unknown)
    mask: bytes = b""         # the sender's protect mask (dirac_demo.protect.pack_mask), or none
    file: FileFacts | None = field(default=None, compare=False)   # a plain file's own facts

    @property
    def rate(self) -> float:
        """The rate parameter: λ_rate where the codec has one, else the quality."""
        return float(self.lmbda) if self.lmbda else float(self.quality)


class BaseCodec:
    """The protocol of a base codec; subclasses set the class attributes and the two transforms."""

    name: str = ""
    codec_id: int = 0             # the ``.drc`` header's codec byte
    label: str = ""               # what a person calls it: "JPEG"
    plot_label: str = ""          # its name in result tables and figures (default: the label)
    color: str = "tab:green"      # its colour in figures
    description: str = ""         # one line for help texts and the page
    rates: RateRange
    model: str = ""               # the DIRAC weights trained for it (assets/<model>.*)
    weights: str | None = None    # the codec's own weights (assets/<weights>.*), if it has any
    sweep: tuple[float, ...] = ()    # the rates an evaluation sweeps by default
    plain_files: tuple[str, ...] = ()   # the name endings of its plain files (read as bitstreams)
    refines: bool = False         # takes ``refine`` (encoder-side latent refinement) in compress

    def bind(self, net: torch.nn.Module) -> "BaseCodec":
        """This codec running the trained network ``net`` loaded from its ``weights``."""
        raise NotImplementedError(f"{self.label} has no weights to bind.")

    def compress(self, x: torch.Tensor, rate: float, **opts) -> Encoded:
        raise NotImplementedError

    def decompress(self, enc: Encoded) -> dict[str, torch.Tensor]:
        """``{"x_hat": (1, 3, H, W) in [0, 1]}`` (and ``"x_cond"`` where the codec conditions DIRAC on
        another image), as displayed: a plain file's EXIF orientation is applied."""
        raise NotImplementedError

    # ---- the .drc parameter block -------------------------------------------------------
    def params(self, enc: Encoded) -> bytes:
        """The codec's parameters as the ``.drc`` header carries them."""
        raise NotImplementedError

    def read_params(self, enc: Encoded, params: bytes, version: int) -> None:
        """Set ``enc``'s parameter fields from a ``.drc`` block; BitstreamError when malformed."""
        raise NotImplementedError

    # ---- plain files --------------------------------------------------------------------
    def is_file(self, data: bytes) -> bool:
        """Whether ``data`` is a plain file of this codec's format (by its signature)."""
        return False

    def read_file(self, data: bytes) -> Encoded:
        raise BitstreamError(f"{self.label} has no plain file format.")

    def describe(self, enc: Encoded, nbytes: int) -> str:
        """One line about a file of ``nbytes`` bytes of this codec: size, rate, what was read from it."""
        return f"{self.name} {enc.width}x{enc.height} quality {self.rates.format(enc.rate)}, {file_size(enc, nbytes)}"


def file_size(enc: Encoded, nbytes: int) -> str:
    """'N bytes, B bpp' of a file of ``nbytes`` holding ``enc``."""
    return f"{nbytes} bytes, {nbytes * 8.0 / (enc.width * enc.height):.4f} bpp"


class QualityCodec(BaseCodec):
    """A codec whose rate is an integer quality carried as one byte, with a standard file as payload."""

    def params(self, enc: Encoded) -> bytes:
        if not self.rates.low <= enc.quality <= self.rates.high:
            raise BitstreamError(f"Bad {self.name} quality {enc.quality}.")
        return bytes([enc.quality])

    def read_params(self, enc: Encoded, params: bytes, version: int) -> None:
        if len(params) != 1 or not self.rates.low <= params[0] <= self.rates.high:
            raise BitstreamError(f"Bad {self.label} parameters in the bitstream.")
        enc.quality = params[0]

    def check_rate(self, rate: float) -> int:
        return self.rates.check(rate, self.rates.label[0].upper() + self.rates.label[1:])

    def one_chunk(self, enc: Encoded) -> bytes:
        """The payload of a one-file codec; BitstreamError for any other chunk count."""
        if len(enc.chunks) != 1:
            raise BitstreamError(f"A {self.label} bitstream must hold exactly one payload chunk.")
        return enc.chunks[0]
