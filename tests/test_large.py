"""The tile-outer schedule for large photos: noise that does not depend on the tiling, blending that
reassembles any tiling exactly, and a tiled run close to the untiled one (the shipped JPEG model;
the rest on tiny random models)."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from dirac_demo.errors import InputError
from dirac_demo.images import tensor_to_uint8
from dirac_demo.large import BandBlender, block_noise, default_plan, enhance_tiles, plan_tiles, ramp_weights


@pytest.fixture(scope="module")
def jpeg_comp(pipe):
    """A 160×120 picture as a JPEG at QF 20, decoded."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:120, 0:160]
    img = np.clip(np.stack([xx * 1.5, yy * 2.0, (xx + yy)], -1) + rng.normal(0, 10, (120, 160, 3)), 0, 255)
    buf = io.BytesIO()
    Image.fromarray(img.astype(np.uint8)).save(buf, "JPEG", quality=20)
    return pipe.decode(buf.getvalue())


def test_block_noise_is_the_same_whatever_region_asks():
    whole = block_noise(7, 0, 0, 200, 300)
    assert torch.equal(whole[..., 37:117, 51:141], block_noise(7, 37, 51, 80, 90))
    assert not torch.equal(whole, block_noise(8, 0, 0, 200, 300))
    assert abs(float(whole.std()) - 1.0) < 0.02 and abs(float(whole.mean())) < 0.02
    assert block_noise(-1, 0, 0, 8, 8).shape == (1, 3, 8, 8)     # any integer seed, as torch takes


@pytest.mark.parametrize("tile,overlap", [(48, 16), (64, 8), (100, 30), (500, 32)])
def test_blending_reassembles_any_tiling_exactly(tile, overlap):
    """Tiles that are slices of one image blend back into exactly that image."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (123, 177, 3)).astype(np.float32) / 255.0
    plan = plan_tiles(123, 177, tile, overlap)
    band = BandBlender(123, 177)
    for j, y in enumerate(plan.ys):
        for x in plan.xs:
            part = image[y:y + tile, x:x + tile]
            band.add(y, x, part, ramp_weights(*part.shape[:2], overlap))
        band.flush(plan.ys[j + 1] if j + 1 < len(plan.ys) else 123)
        assert len(band.acc) <= tile                    # the band never holds more than a tile's rows
    assert np.array_equal(band.out, np.round(image * 255).astype(np.uint8))


def test_plans_cover_the_image_with_the_overlap():
    plan = plan_tiles(3024, 4032, 544, 32)
    assert plan.count == 48 and plan.ys[0] == 0 and plan.ys[-1] + 544 == 3024 and plan.xs[-1] + 544 == 4032
    assert min(b - a for a, b in zip(plan.xs, plan.xs[1:])) <= 544 - 32
    assert plan_tiles(100, 80, 544).count == 1
    with pytest.raises(ValueError):
        plan_tiles(1000, 1000, 32, 32)


def test_small_images_run_whole(pipe):
    assert default_plan(pipe, 1000, 1500).count == 1 and default_plan(pipe, 3024, 4032).count > 1


@pytest.fixture(scope="module")
def shipped():
    """The shipped weights, in fp32 so the bound holds on any CPU."""
    from dirac_demo.pipeline import DiracPipeline
    pipe = DiracPipeline.from_pretrained(device="cpu", precision="fp32")
    if not pipe.has_model("jpeg"):
        pytest.skip("the shipped JPEG model is not in assets/")
    return pipe


def test_tiled_run_stays_close_to_the_untiled_one(shipped):
    """The seam bound, with the shipped JPEG model: a 192×144 crop of the public-domain portrait
    as a QF 20 JPEG, steps 1 and 2 of 20, in 96-pixel tiles overlapping by 32 (6 tiles, far
    smaller than the 544 the pipeline uses) against one untiled run: at most 1 grey level apart
    on average and 20 at worst (measured: 0.60 and 12)."""
    from dirac_demo.weights import ASSETS
    src = Image.open(ASSETS / "examples" / "grace_hopper.jpg").convert("RGB").crop((64, 64, 256, 208))
    buf = io.BytesIO()
    src.save(buf, "JPEG", quality=20)
    comp = shipped.decode(buf.getvalue())
    whole = enhance_tiles(shipped, comp, 2, keep=(1,), plan=plan_tiles(144, 192, 192))
    tiled = enhance_tiles(shipped, comp, 2, keep=(1,), plan=plan_tiles(144, 192, 96, 32))
    assert plan_tiles(144, 192, 96, 32).count == 6
    for k in (1, 2):
        diff = np.abs(whole[k].astype(int) - tiled[k].astype(int))
        assert diff.mean() <= 1.0 and diff.max() <= 20, (k, diff.mean(), diff.max())
        assert diff.max() > 0                        # the tiles did run on their own


def test_frames_kept_and_the_base(pipe, jpeg_comp):
    steps = []
    frames = enhance_tiles(pipe, jpeg_comp, 3, steps=3, keep=(0, 1), plan=plan_tiles(120, 160, 64, 16),
                           on_step=lambda: steps.append(1))
    assert sorted(frames) == [0, 1, 3] and len(steps) == plan_tiles(120, 160, 64, 16).count * 3
    assert np.array_equal(frames[0], tensor_to_uint8(jpeg_comp.base))
    assert not np.array_equal(frames[1], frames[3]) and frames[3].shape == (120, 160, 3)
    again = enhance_tiles(pipe, jpeg_comp, 1, steps=3, plan=plan_tiles(120, 160, 64, 16))
    assert np.array_equal(again[1], frames[1])          # stopping early gives the same step 1


def test_bad_steps_are_refused(pipe, jpeg_comp):
    with pytest.raises(InputError):
        enhance_tiles(pipe, jpeg_comp, 5, steps=3)


def test_benchmark_times_the_photo_path_per_megapixel(tiny_assets, tmp_path, capsys):
    from dirac_demo.eval import benchmark
    out = tmp_path / "bench.json"
    assert benchmark.main(["--assets", str(tiny_assets), "--sizes", "32", "--repeats", "1", "--matmul", "64",
                           "--device", "cpu", "--per-mp", "96x64", "--json", str(out)]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    r = json.loads(out.read_text())["per_megapixel"]
    assert (r["width"], r["height"], r["tiles"], r["steps"]) == (96, 64, 1, 20)
    assert 0 < r["first_step_s"] < r["all_steps_s"]
    assert abs(r["all_steps_s_per_mp"] - r["all_steps_s"] / (96 * 64 / 1e6)) < 1e-9
    assert line.startswith("enhance 96x64 (1 tiles): step 1 ")
