"""The arguments of a run as the page and the API check them: one sentence per refusal."""
from __future__ import annotations

import pytest

from dirac_demo import DiracPipeline, InputError, NoModelError, RunSettings
from dirac_demo.codecs import CODECS, BaseCodec, RateRange, register, unregister
from dirac_demo.web import api, controls, text
from dirac_demo.web.settings import DEFAULT_WEIGHT, PageSettings, ReceiverSettings, weight_from_slider, weight_span


def test_flags_are_booleans_or_their_text():
    assert [api.flag(v, "threshold") for v in (True, False, "true", " False")] == [True, False, True, False]
    for bad in ("maybe", 1, None):
        with pytest.raises(InputError, match=f"threshold must be true or false, got {bad!r}"):
            api.flag(bad, "threshold")


def test_whole_numbers_and_rates_name_their_range():
    assert api.whole("7", "seed", 10) == 7 and api.whole(7.0, "seed", 10) == 7
    for bad in (1.5, -1, 11, "x"):
        with pytest.raises(InputError, match="seed must be a whole number"):
            api.whole(bad, "seed", 10)
    assert api.rate("jpeg", 10) == 10 and api.rate("avif", 0) == 0 and api.rate("neural", "0.002") == 0.002
    with pytest.raises(InputError, match="JPEG quality factor must be a whole number in 1..100, got 0"):
        api.rate("jpeg", 0)
    with pytest.raises(InputError, match="AVIF quality must be a whole number in 0..100, got 101"):
        api.rate("avif", 101)
    with pytest.raises(InputError, match="rate must be the neural λ_rate, a number; got 'x'"):
        api.rate("neural", "x")
    with pytest.raises(InputError, match="Unknown codec 'png'"):
        api.rate("png", 10)


def test_the_weight_slider_reads_like_the_quality_slider():
    """Right is more bytes on both: the weight slider's right end is the codec's smallest λ_rate."""
    rates = CODECS["neural"].rates
    left, right = weight_span(rates)
    assert weight_from_slider(left, rates) == 0.016 and weight_from_slider(right, rates) == 0.0004
    assert weight_from_slider(DEFAULT_WEIGHT, rates) == 0.0016


def test_the_page_runs_the_base_alone_where_the_api_refuses(pipe):
    jpeg_only = DiracPipeline(pipe.codecs, {"jpeg": pipe.dirac["jpeg"]}, device="cpu", precision="fp32")
    page = api.page_run(jpeg_only, PageSettings("neural", refine=True))
    assert page == RunSettings("neural", 0.0016, 0, downscale=True, refine=api.UI_REFINE_ITERS)
    assert api.page_run(jpeg_only, PageSettings("jpeg", refine=True)).refine == 0     # refinement: neural only
    with pytest.raises(NoModelError, match="use steps=0"):
        api.enhance_run(jpeg_only, "neural", 0.002, 5, 0, True, 0, None)
    with pytest.raises(InputError, match="refine is for the neural codec only"):
        api.enhance_run(jpeg_only, "jpeg", 10, 0, 0, True, 5, None)
    assert api.receive_run(jpeg_only, "neural", ReceiverSettings(5), strict=False).steps == 0
    with pytest.raises(InputError, match="steps must be a whole number in 0..50"):
        api.receive_run(jpeg_only, "jpeg", ReceiverSettings(51), strict=False)


class ToyCodec(BaseCodec):
    """A codec the page has never heard of: one table row, nothing else."""

    name, codec_id, label = "toy", 250, "toy codec"
    rates = RateRange(2, 9, 7, "level", "toy level", demo=3)


class ToyWeightCodec(BaseCodec):
    name, codec_id, label = "toyweight", 251, "weighted toy"
    rates = RateRange(0.01, 1.0, 0.1, "w", "toy λ", integer=False, log=True)


@pytest.fixture
def toys():
    for toy in (ToyCodec(), ToyWeightCodec()):
        register(toy)
    yield
    for name in ("toy", "toyweight"):
        unregister(name)


def test_a_registered_codec_is_on_the_page_and_checked_by_the_api_without_other_edits(toys):
    assert ("Toy codec", "toy") in controls.codec_choices() and ("Weighted toy", "toyweight") in controls.codec_choices()
    assert controls.quality_slider("toy") == dict(visible=True, minimum=2, maximum=9, value=3, step=1,
                                                  label="Toy level", info="2 = fewest bytes, 9 = best quality")
    weight = controls.weight_slider("toyweight", current=5.0)
    assert weight["visible"] and (weight["minimum"], weight["maximum"], weight["value"]) == (0.0, 2.0, 2.0)
    assert weight["label"] == "Weighted toy rate" and "(1 down to 0.01)" in weight["info"]
    assert not controls.weight_slider("toy")["visible"] and not controls.quality_slider("toyweight")["visible"]
    assert api.rate("toy", "4") == 4 and text.rate_label("toy", 4) == "toy level 4"
    with pytest.raises(InputError, match="The toy level must be a whole number in 2..9, got 10"):
        api.rate("toy", 10)
    assert api.page_rate(PageSettings("toyweight", weight=1.0)) == 0.1
