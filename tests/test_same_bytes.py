import pytest
import torch

from dirac_demo.eval.metrics import psnr
from dirac_demo.images import pil_to_tensor
from dirac_demo.same_bytes import (CODECS, decode, encode_avif, encode_webp, largest_fitting, same_bytes,
                                   roundtrip)


def test_largest_fitting_against_closed_forms():
    calls = []

    def linear(q):   # 10 q bytes: the largest q with 10 q <= budget is budget // 10
        calls.append(q)
        return 10 * q
    for budget in (0, 9, 255, 999, 1000, 5000):
        calls.clear()
        assert largest_fitting(linear, budget) == min(budget // 10, 100)
        assert len(calls) <= 7   # bisection over 101 qualities
    assert largest_fitting(lambda q: q // 10, 3) == 39                 # plateaus: the last of the run
    assert largest_fitting(lambda q: 100 + q, 99) is None              # even the lowest is over
    assert largest_fitting(lambda q: q, 7, lo=5, hi=6) == 6


@pytest.mark.parametrize("codec", ["webp", "avif"])
def test_reference_is_the_largest_quality_within_the_budget(photo, codec):
    x = pil_to_tensor(photo)
    encode = CODECS[codec][1]
    for budget in (len(encode(photo, 20)) + 1, len(encode(photo, 60)), len(encode(photo, 90)) - 1):
        (ref,) = same_bytes(x, budget, (codec,))
        assert ref.codec == codec and ref.budget == budget and ref.reason is None
        assert ref.nbytes == len(ref.data) <= budget
        assert ref.data == encode(photo, ref.quality)                 # the file of the quality it names
        assert ref.quality == 100 or len(encode(photo, ref.quality + 1)) > budget
        assert ref.image.shape == x.shape and torch.equal(ref.image, decode(ref.data))
        assert psnr(ref.image, x) > 20.0


def test_same_bytes_of_both_codecs_and_budget_extremes(photo):
    x = pil_to_tensor(photo)
    webp, avif = same_bytes(x, 10**7)
    assert (webp.name, avif.name) == ("WebP", "AVIF") and webp.quality == avif.quality == 100
    assert webp.data[:4] == b"RIFF" and webp.data[8:12] == b"WEBP" and avif.data[4:12] == b"ftypavif"
    for ref in same_bytes(x, 40):   # far below any file's headers
        assert ref.quality is None and ref.image is None and ref.data == b"" and ref.nbytes == 0
        assert ref.reason == (f"{ref.name} at its lowest quality is {len(CODECS[ref.codec][1](photo, 0)):,} "
                              "bytes, over the budget of 40 bytes.")


def test_roundtrip_and_bad_arguments(photo):
    x = pil_to_tensor(photo)
    lo, x_lo = roundtrip("avif", photo, 5)
    hi, x_hi = roundtrip("avif", photo, 95)
    assert lo == encode_avif(photo, 5) and len(lo) < len(hi) and x_lo.shape == x.shape
    assert psnr(x_hi, x) > psnr(x_lo, x)
    assert roundtrip("webp", photo, 50)[0] == encode_webp(photo, 50)
    with pytest.raises(ValueError):
        encode_webp(photo, 101)
    with pytest.raises(ValueError):
        same_bytes(x[0], 1000)
    with pytest.raises(ValueError):
        same_bytes(x, 0)
