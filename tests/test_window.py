"""Full-resolution windows of a file over the pixel limit: their geometry, the pipeline and the CLI."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from dirac_demo import DiracPipeline
from dirac_demo.errors import InputError, TooLargeError
from dirac_demo.pipeline import Frame, RunSettings
from dirac_demo.window import GRID, Window, centred, window_size


def test_parse_prints_back_and_refuses_anything_but_four_whole_numbers():
    w = Window.parse(" 32, 16,64 ,48")
    assert w == Window(32, 16, 64, 48) and str(w) == "32,16,64,48" and w.label == "x32_y16_64x48"
    for bad in ("1,2,3", "a,b,c,d", "1,2,3,-4", "1.5,2,3,4", ""):
        with pytest.raises(InputError, match="four whole numbers"):
            Window.parse(bad)


@pytest.mark.parametrize("size, limit", [((4032, 3024), 1 << 20), ((8000, 600), 1 << 20), ((600, 8000), 1 << 20),
                                         ((1000, 1010), 1 << 20), ((1500, 999), 1 << 20), ((4000, 3000), 500_000)])
def test_the_window_fills_the_limit_inside_the_image_on_the_grid(size, limit):
    width, height = size
    w, h = window_size(width, height, limit)
    assert w * h <= limit and w <= width and h <= height
    assert w * h > limit * 0.9 or (w, h) == (width, height) or min(w, h) == min(width, height)
    assert (w % GRID == 0 or w == width) and (h % GRID == 0 or h == height)
    for cx, cy in ((None, None), (0, 0), (width, height), (width * 0.3, height * 0.8)):
        win = centred(width, height, limit, cx, cy)
        win.check(width, height, limit)
        assert win.x % GRID == 0 and win.y % GRID == 0


def test_a_click_centres_the_window_where_it_can():
    win = centred(4032, 3024, 1 << 20, 1000, 2000)
    assert (win.width, win.height) == (1024, 1024)
    assert abs(win.x + 512 - 1000) < GRID and abs(win.y + 512 - 2000) < GRID
    assert centred(4032, 3024, 1 << 20, 4000, 3000) == Window(3008, 2000, 1024, 1024)   # moved inside


def test_check_refuses_a_window_outside_the_image_or_over_the_limit():
    with pytest.raises(InputError, match="not inside the 100x80 image"):
        Window(64, 0, 48, 16).check(100, 80, 10_000)
    with pytest.raises(InputError, match="over the"):
        Window(0, 0, 100, 80).check(100, 80, 4_000)


def _jpeg(size=(200, 120), quality=30, orientation=1) -> bytes:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:size[1], 0:size[0]]
    img = np.clip(np.stack([xx * 1.2, yy * 2.0, (xx + yy) * 0.7], -1) + rng.normal(0, 10, (*size[::-1], 3)), 0, 255)
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(img.astype(np.uint8)).save(buf, "JPEG", quality=quality, exif=exif.tobytes())
    return buf.getvalue()


@pytest.fixture(scope="module")
def small_pipe(tiny_assets):
    """The tiny models with a 64x64 pixel limit: a 200x120 JPEG is a 'large' file."""
    return DiracPipeline.from_pretrained(str(tiny_assets), device="cpu", precision="fp32", max_pixels=64 * 64)


def test_a_file_over_the_limit_asks_for_a_window(small_pipe):
    with pytest.raises(TooLargeError, match="200x120 .* over the 0.0 MP limit; choose a window"):
        small_pipe.decode(_jpeg())


def test_a_window_is_the_whole_decode_cut_at_100_percent(small_pipe, pipe):
    data, win = _jpeg(), Window(48, 32, 64, 48)
    whole = pipe.decode(data)
    part = small_pipe.decode(data, window=win)
    assert part.window == win and part.size == (64, 48) and part.encoded.width == 200
    assert torch.equal(part.base, whole.base[..., 32:80, 48:112])
    assert part.bpp == whole.bpp                     # the file's rate, not the window's


def test_a_window_of_an_upright_turned_file_is_taken_as_displayed(small_pipe, pipe):
    data = _jpeg(orientation=6)                      # stored 200x120, shown 120x200
    whole = pipe.decode(data)
    assert whole.size == (120, 200)
    part = small_pipe.decode(data, window=Window(16, 128, 64, 64))
    assert torch.equal(part.base, whole.base[..., 128:192, 16:80])


def test_the_window_runs_like_any_image_and_is_checked(small_pipe):
    data = _jpeg()
    events = list(small_pipe.run_bitstream(data, RunSettings(steps=2, window=Window(0, 0, 64, 64))))
    frames = [e for e in events if isinstance(e, Frame)]
    assert [f.k for f in frames] == [0, 1, 2] and all(f.image.shape[-2:] == (64, 64) for f in frames)
    with pytest.raises(InputError, match="over the"):
        small_pipe.decode(data, window=Window(0, 0, 128, 64))
    with pytest.raises(InputError, match="not inside"):
        small_pipe.decode(data, window=Window(160, 0, 64, 64))


def test_the_files_protect_mask_is_cut_to_the_window(pipe, photo_path):
    mask = np.zeros((72, 96), bool)
    mask[:, :48] = True                                   # the left half is protected
    comp = pipe.compress(photo_path, "jpeg", 30, protect=Image.fromarray(mask))
    assert comp.encoded.mask
    cut = pipe.decode(comp.bitstream, window=Window(32, 16, 32, 32)).protect_mask()
    assert cut.shape == (32, 32) and cut[:, :16].all() and not cut[:, 16:].any()


def test_decompress_takes_a_window_and_refuses_a_bad_one(tiny_assets, tmp_path, capsys):
    from dirac_demo.cli import main
    src = tmp_path / "big.jpg"
    src.write_bytes(_jpeg())
    out = tmp_path / "out.png"
    env = ["--assets", str(tiny_assets)]
    assert main([*env, "decompress", str(src), "-o", str(out), "--steps", "1", "--window", "32,16,64,48"]) == 0
    assert Image.open(out).size == (64, 48)
    assert "window 32,16,64,48 at full size" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main([*env, "decompress", str(src), "-o", str(out), "--window", "1,2,3"])
    assert exit_.value.code == 2
    assert main([*env, "decompress", str(src), "-o", str(out), "--window", "180,0,64,48"]) == 2
    assert "not inside the 200x120 image" in capsys.readouterr().err

