"""The JPEG base codec: Pillow's bytes, its quality range, corrupt payloads."""
import io

import numpy as np
import pytest
from PIL import Image

from dirac_demo.codecs import bitstream
from dirac_demo.codecs.jpeg import JpegCodec
from dirac_demo.errors import BitstreamError, InputError
from dirac_demo.images import pil_to_tensor


def test_jpeg_matches_pillow(photo):
    x = pil_to_tensor(photo)
    for q in (5, 10, 50, 95):
        enc = JpegCodec().compress(x, q)
        buf = io.BytesIO()
        photo.save(buf, format="JPEG", quality=q)
        assert enc.chunks[0] == buf.getvalue()
        dec = JpegCodec().decompress(bitstream.parse(bitstream.pack(enc)))
        ref = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32) / 255
        assert np.array_equal(dec[0].permute(1, 2, 0).numpy(), ref)


def test_jpeg_rejects_bad_quality(photo):
    with pytest.raises(InputError):
        JpegCodec().compress(pil_to_tensor(photo), 0)
    with pytest.raises(InputError):
        JpegCodec().compress(pil_to_tensor(photo), 101)


def test_jpeg_corrupt_payload_is_bitstream_error(photo):
    enc = JpegCodec().compress(pil_to_tensor(photo), 20)
    enc.chunks = [enc.chunks[0][: len(enc.chunks[0]) // 3]]
    with pytest.raises(BitstreamError):
        JpegCodec().decompress(enc)
    enc.chunks = [b"not a jpeg at all"]
    with pytest.raises(BitstreamError):
        JpegCodec().decompress(enc)
