"""Image <-> real bytes: the base-codec table, the ``.drc`` container, and each codec in its own
module (JPEG, AVIF, the neural codec with its post-filter and encoder-side refinement).

:data:`CODECS` is the one table of base codecs; the pipeline, the command line, the page, the
evaluation, the benchmark and training all loop over it. Adding a codec is one module (a
:class:`~.base.BaseCodec`) and one :func:`register` line here.
"""
from __future__ import annotations

from . import bitstream
from .avif import AvifCodec
from .base import BaseCodec, Encoded, FileFacts, RateRange
from .jpeg import JpegCodec
from .neural import NeuralBase
from ..errors import BitstreamError, InputError

CODECS: dict[str, BaseCodec] = {}


def register(codec: BaseCodec) -> BaseCodec:
    """Add ``codec`` to the table (its name and ``.drc`` id must be new); returns it."""
    if codec.name in CODECS or any(c.codec_id == codec.codec_id for c in CODECS.values()):
        raise ValueError(f"A codec named {codec.name!r} or with id {codec.codec_id} is registered already.")
    CODECS[codec.name] = codec
    return codec


def unregister(name: str) -> None:
    """Remove a codec from the table (a test's toy codec)."""
    CODECS.pop(name, None)


for _codec in (JpegCodec(), AvifCodec(), NeuralBase()):
    register(_codec)


def get(name: str) -> BaseCodec:
    """The codec called ``name``; InputError naming the choices otherwise."""
    if name not in CODECS:
        raise InputError(f"Unknown codec {name!r}: use {', '.join(repr(n) for n in CODECS)}.")
    return CODECS[name]


def by_id(codec_id: int) -> BaseCodec:
    return next(c for c in CODECS.values() if c.codec_id == codec_id)


def by_rate_flag() -> dict[str, list[BaseCodec]]:
    """The codecs grouped by their rate's command-line flag, in table order (codecs may share one)."""
    groups: dict[str, list[BaseCodec]] = {}
    for codec in CODECS.values():
        groups.setdefault(codec.rates.flag, []).append(codec)
    return groups


def pack(enc: Encoded) -> bytes:
    """``enc`` as a ``.drc`` file."""
    if enc.codec not in CODECS:
        raise BitstreamError(f"Unknown codec {enc.codec!r}.")
    codec = CODECS[enc.codec]
    return bitstream.pack(bitstream.Container(codec.codec_id, enc.width, enc.height, codec.params(enc),
                                              list(enc.chunks), enc.mask))


def parse(data: bytes) -> Encoded:
    """A ``.drc`` file's :class:`Encoded`; BitstreamError on any mismatch."""
    c = bitstream.parse(data, {codec.codec_id for codec in CODECS.values()})
    codec = by_id(c.codec_id)
    enc = Encoded(codec=codec.name, width=c.width, height=c.height, chunks=c.chunks, mask=c.mask)
    codec.read_params(enc, c.params, c.version)
    return enc


def read(data: bytes) -> Encoded:
    """What a receiver was given: a ``.drc`` container, or a plain file of a codec's format (its
    bytes are that codec's payload, exactly as inside a ``.drc``)."""
    for codec in CODECS.values():
        if codec.is_file(data):
            return codec.read_file(data)
    return parse(data)


__all__ = ["CODECS", "BaseCodec", "Encoded", "FileFacts", "RateRange", "register", "unregister", "get",
           "by_id", "by_rate_flag", "pack", "parse", "read"]
