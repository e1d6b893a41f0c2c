"""The AVIF base codec: libavif's bytes at fixed settings, its container id, plain .avif files."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from dirac_demo import RunSettings, codecs
from dirac_demo.codecs import avif
from dirac_demo.codecs.avif import AvifCodec
from dirac_demo.errors import BitstreamError, InputError
from dirac_demo.images import pil_to_tensor


def test_avif_payload_is_the_encoders_file_and_decodes_like_pillow(photo):
    enc = AvifCodec().compress(pil_to_tensor(photo), 30)
    buf = io.BytesIO()
    photo.save(buf, format="AVIF", quality=30, speed=8, subsampling="4:2:0", range="full", max_threads=1)
    assert enc.chunks == [buf.getvalue()] and enc.quality == 30 and enc.rate == 30.0
    data = codecs.pack(enc)
    assert data[5] == 3 and data[12] == 30                  # codec id 3, quality byte
    dec = AvifCodec().decompress(codecs.parse(data))["x_hat"]
    ref = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), np.float32) / 255
    assert np.array_equal(dec[0].permute(1, 2, 0).numpy(), ref)


def test_avif_quality_range(photo):
    x = pil_to_tensor(photo)
    lo, hi = AvifCodec().compress(x, 0), AvifCodec().compress(x, 100)
    assert len(lo.chunks[0]) < len(hi.chunks[0])
    assert codecs.parse(codecs.pack(lo)).quality == 0
    for bad in (-1, 101):
        with pytest.raises(InputError):
            AvifCodec().compress(x, bad)
    lo.quality = 101
    with pytest.raises(BitstreamError):
        codecs.pack(lo)


def test_avif_header_quality_out_of_range_is_refused(photo):
    data = bytearray(codecs.pack(AvifCodec().compress(pil_to_tensor(photo), 40)))
    data[12] = 101
    body = bytes(data[:-4])
    import struct, zlib
    with pytest.raises(BitstreamError, match="AVIF parameters"):
        codecs.parse(body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF))


def test_avif_corrupt_or_foreign_payload_is_bitstream_error(photo):
    enc = AvifCodec().compress(pil_to_tensor(photo), 40)
    for payload in (enc.chunks[0][: len(enc.chunks[0]) // 2], b"not an avif", b""):
        enc.chunks = [payload]
        with pytest.raises(BitstreamError):
            AvifCodec().decompress(enc)
    buf = io.BytesIO()
    photo.save(buf, format="PNG")
    enc.chunks = [buf.getvalue()]
    with pytest.raises(BitstreamError, match="another file format"):
        AvifCodec().decompress(enc)


def test_avif_through_the_pipeline_and_a_plain_file(pipe, photo):
    comp = pipe.compress(photo, "avif", 35)
    assert comp.encoded.codec == "avif" and comp.nbytes == len(comp.encoded.chunks[0]) + 22
    plain = comp.encoded.chunks[0]
    assert AvifCodec().is_file(plain) and not AvifCodec().is_file(comp.bitstream)
    got = pipe.decode(plain)                                 # a bare .avif is a bitstream
    assert got.encoded.codec == "avif" and torch.equal(got.base, comp.base)
    steps = lambda data: [e.image for e in pipe.run_bitstream(data, RunSettings(steps=3)) if getattr(e, "k", 0)]  # noqa: E731
    assert all(torch.equal(a, b) for a, b in zip(steps(plain), steps(comp.bitstream)))
    assert codecs.read(plain).quality == 35


def test_truncated_plain_avif_file_is_one_clear_error(photo):
    data = avif.encode(photo, 40)
    for cut in (len(data) // 2, 40, 13):
        with pytest.raises(BitstreamError):
            codecs.read(data[:cut])
