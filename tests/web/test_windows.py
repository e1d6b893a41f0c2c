"""A file over the page's pixel limit, enhanced as it is: a full-resolution window chosen on its overview."""
from __future__ import annotations

import io
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from dirac_demo import DiracPipeline
from dirac_demo.images import tensor_to_uint8
from dirac_demo.web.adapter import DiracDemo
from dirac_demo.web.settings import ReceiverSettings, View
from dirac_demo.web.state import StopFlag
from dirac_demo.web.windows import WindowPick
from dirac_demo.window import Window

VIEW = View("base", 50, 50, 1)


@pytest.fixture
def large_jpeg(tmp_path):
    """A 200x120 JPEG at quality 30: over a 64x64 page limit."""
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:120, 0:200]
    img = np.clip(np.stack([xx * 1.2, yy * 2.0, (xx + yy) * 0.7], -1) + rng.normal(0, 10, (120, 200, 3)), 0, 255)
    path = tmp_path / "IMG 0001.jpg"
    Image.fromarray(img.astype(np.uint8)).save(path, quality=30)
    return path


@pytest.fixture
def demo(pipe, tmp_path):
    small = DiracPipeline(pipe.codecs, pipe.dirac, device="cpu", precision="fp32", max_pixels=64 * 64)
    return DiracDemo(small, str(tmp_path))


def test_a_large_upload_shows_its_overview_with_the_centre_window(demo, large_jpeg):
    note, button, picture, pick = demo.offer_file({"path": str(large_jpeg)})
    assert isinstance(pick, WindowPick) and pick.window == Window(64, 16, 64, 64) and pick.size == (200, 120)
    assert picture["visible"] and "Window 64×64 at x 64, y 16 of 200×120" in picture["label"]
    assert "full-resolution" in note["value"] and "window" in button["value"]
    shown = np.asarray(Image.open(picture["value"]))
    assert shown.shape[:2] == pick.overview.shape[:2]
    inside, outside = shown[60, 100].astype(int), shown[60, 10].astype(int)   # the window is lit, the rest dimmed
    assert inside.sum() > outside.sum()


def test_a_click_moves_the_window_and_the_run_enhances_it_at_100_percent(demo, pipe, large_jpeg):
    *_, pick = demo.offer_file(str(large_jpeg))
    picture, moved = demo.move_window(pick, SimpleNamespace(index=[10, 110]))
    assert moved.window == Window(0, 48, 64, 64) and "x 0, y 48" in picture["label"]
    updates = list(demo.enhance_file(str(large_jpeg), ReceiverSettings(1, 0, True, moved), None, StopFlag(), VIEW))
    record = updates[1]["record"]
    assert (record.width, record.height) == (64, 64) and record.file_size == (200, 120)
    assert record.bpp == pytest.approx(8 * large_jpeg.stat().st_size / (200 * 120))   # the file's rate
    whole = tensor_to_uint8(pipe.decode(large_jpeg.read_bytes()).base)
    assert np.array_equal(record.frames[0], whole[48:112, 0:64])                       # its own pixels, 100 %
    assert record.steps_run == 1 and record.frame_file(1).name.startswith("IMG_0001_x0_y48_64x64_step01")
    assert "the 64×64 window at x 0, y 48 of its 200×120 pixels, enhanced at 100 %" in updates[-1]["status"]


def test_without_a_window_the_page_and_the_api_say_how_to_choose_one(demo, large_jpeg):
    status = list(demo.receive(str(large_jpeg), ReceiverSettings(1, 0, True), None, StopFlag(), VIEW))[-1]["status"]
    assert "over the 0.0 MP limit; upload it in the first tab" in status
    with pytest.raises(gr.Error, match="pass window=x,y,width,height"):
        list(demo.decode(str(large_jpeg), 1))


def test_the_api_takes_a_window_and_checks_it(demo, large_jpeg):
    outputs = list(demo.decode(str(large_jpeg), 1, window="16,32,64,48"))
    png, info, _ = outputs[-1]
    assert (info["width"], info["height"], info["step"]) == (64, 48, 1) and "x16_y32_64x48" in str(png)
    for bad, reason in (("16,32,64", "four whole numbers"), ("160,32,64,48", "not inside"),
                        ("0,0,100,100", "over the")):
        with pytest.raises(gr.Error, match=reason):
            list(demo.decode(str(large_jpeg), 1, window=bad))


def test_a_small_or_unreadable_upload_has_no_window(demo, tmp_path, photo):
    small = tmp_path / "small.jpg"
    photo.crop((0, 0, 48, 48)).save(small, quality=50)
    assert demo.offer_file(str(small))[3] is None
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(io.BytesIO(small.read_bytes()).getvalue()[:200])
    assert demo.offer_file(str(broken))[3] is None
