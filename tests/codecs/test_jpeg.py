"""The JPEG base codec: Pillow's bytes, its quality range, corrupt payloads."""
import io
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from dirac_demo import codecs
from dirac_demo.codecs.jpeg import JpegCodec, estimate_quality, ijg_tables
from dirac_demo.errors import BitstreamError, InputError
from dirac_demo.images import pil_to_tensor


def test_jpeg_matches_pillow(photo):
    x = pil_to_tensor(photo)
    for q in (5, 10, 50, 95):
        enc = JpegCodec().compress(x, q)
        buf = io.BytesIO()
        photo.save(buf, format="JPEG", quality=q)
        assert enc.chunks[0] == buf.getvalue()
        dec = JpegCodec().decompress(codecs.parse(codecs.pack(enc)))["x_hat"]
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


def _tables(img: Image.Image, **save) -> dict:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **save)
    return Image.open(buf).quantization


@pytest.mark.parametrize("mode,subsampling", [("RGB", 2), ("RGB", 0), ("RGB", 1), ("L", -1)])
def test_quality_estimate_is_exact_for_ijg_tables(photo, mode, subsampling):
    """Files written with the IJG tables (Pillow, libjpeg): every quality factor 1–100 exactly."""
    img = photo.convert(mode)
    extra = {} if subsampling < 0 else {"subsampling": subsampling}
    for q in range(1, 101):
        assert estimate_quality(_tables(img, quality=q, **extra)) == (q, True), q


@pytest.mark.skipif(shutil.which("cjpeg") is None, reason="cjpeg (Debian libjpeg-turbo-progs) is not installed")
def test_quality_estimate_is_exact_for_cjpeg_files(photo, tmp_path):
    """libjpeg-turbo's cjpeg keeps 16-bit table entries below quality 25 unless -baseline."""
    src = tmp_path / "in.ppm"
    photo.crop((0, 0, 64, 64)).save(src)
    for q in range(1, 101):
        data = subprocess.run(["cjpeg", "-quality", str(q), str(src)], capture_output=True, check=True).stdout
        assert estimate_quality(Image.open(io.BytesIO(data)).quantization) == (q, True), q


def test_quality_estimate_for_other_tables_is_the_nearest_scale(photo):
    ref = ijg_tables()[30]
    scaled = {i: [max(1, round(v * 1.04)) for v in t] for i, t in enumerate(ref)}   # not an IJG table
    assert estimate_quality(_tables(photo, qtables=scaled)) in {(29, False), (30, False)}
    flat = {0: [12] * 64, 1: [12] * 64}
    q, exact = estimate_quality(_tables(photo, qtables=flat))
    assert not exact and 1 <= q <= 100
    assert estimate_quality(_tables(photo, qtables={0: [1] * 64, 1: [1] * 64}))[0] == 100


def test_quality_estimate_refuses_a_file_without_tables():
    with pytest.raises(BitstreamError):
        estimate_quality({})
