"""Painted protection: an image editor's layers as a protect mask, and a run's stored frames
composed with it (painted regions at step 1, the rest at the chosen step) without running a step."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dirac_demo import Frame
from dirac_demo.protect import DEFAULT_FEATHER, paint_mask
from dirac_demo.web import text
from dirac_demo.web.files import RunFiles
from dirac_demo.web.paint import PAINT_OPACITY, Protection, brush_radius, editor_mask, paint_layer
from dirac_demo.web.state import RunRecord

W, H = 48, 40


def box(top: int, left: int, bottom: int, right: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[top:bottom, left:right] = True
    return mask


def record_of(tmp_path, steps: int = 3, mask: np.ndarray | None = None) -> RunRecord:
    """A finished run of random frames: the base and ``steps`` steps, each unlike the others
    (``mask``: the protect mask its file carried)."""
    rng = torch.Generator().manual_seed(0)
    record = RunRecord("jpeg", 10, W, H, 500, steps, RunFiles(tmp_path), "photo", protection=Protection(W, H, mask))
    for k in range(steps + 1):
        record.add(Frame(k, steps, None, torch.rand(1, 3, H, W, generator=rng), 0.0))
    record.finish()
    return record


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_every_painted_pixel_counts_whatever_the_brush_opacity():
    half = np.zeros((H, W, 4), np.uint8)
    half[5:10, 5:20] = (255, 0, 255, 127)                     # a half-transparent stroke
    faint = np.zeros((H, W, 4), np.uint8)
    faint[30, 40] = (0, 0, 0, 1)                              # the edge of an antialiased stroke
    assert np.array_equal(paint_mask([half, faint], W, H), box(5, 5, 10, 20) | box(30, 40, 31, 41))
    assert not paint_mask([], W, H).any()


def test_a_layer_of_another_size_is_resized_and_one_without_transparency_covers_everything():
    double = np.zeros((2 * H, 2 * W, 4), np.uint8)
    double[20:40, 10:30] = 255
    assert np.array_equal(paint_mask([Image.fromarray(double, "RGBA")], W, H), box(10, 5, 20, 15))
    assert paint_mask([np.zeros((H, W, 3), np.uint8)], W, H).all()


def test_the_editors_value_gives_the_mask_its_paint_shows():
    mask = box(8, 12, 20, 30)
    layer = paint_layer(mask)
    assert layer.shape == (H, W, 4) and set(np.unique(layer[..., 3])) == {0, round(PAINT_OPACITY * 255)}
    value = {"background": np.zeros((H, W, 4), np.uint8), "layers": [layer], "composite": None}
    assert np.array_equal(editor_mask(value, W, H), mask)
    assert not editor_mask(None, W, H).any() and not editor_mask({"layers": None}, W, H).any()


def test_painted_regions_keep_step_1_and_the_rest_shows_the_chosen_step(tmp_path):
    record = record_of(tmp_path)
    mask = box(10, 10, 30, 34)
    record.paint(mask)
    shown = record.shown(3)
    k = DEFAULT_FEATHER
    assert np.array_equal(shown[10 + k:30 - k, 10 + k:34 - k], record.frames[1][10 + k:30 - k, 10 + k:34 - k])
    band = box(10 - k, 10 - k, 30 + k, 34 + k)
    assert np.array_equal(shown[~band], record.frames[3][~band])          # untouched beyond the feather
    assert np.array_equal(record.shown(1), record.frames[1]) and np.array_equal(record.shown(0), record.frames[0])
    composed = record.frame_file(3)
    assert "_protected_" in composed.name and np.array_equal(pixels(composed), shown)
    plain = record.frame_file(3, composed=False)
    assert "_protected_" not in plain.name and np.array_equal(pixels(plain), record.frames[3])


def test_a_new_mask_composes_new_files_and_the_crop_follows(tmp_path):
    record = record_of(tmp_path)
    assert not record.paint(None) and record.paint(box(0, 0, 10, 10)) and not record.paint(box(0, 0, 10, 10))
    first, first_crop = record.frame_file(3), record.crop_file(3, 50, 50, 1)
    record.paint(box(25, 30, 40, 48))
    second, second_crop = record.frame_file(3), record.crop_file(3, 50, 50, 1)
    assert first != second and first_crop != second_crop
    assert np.array_equal(pixels(second), record.shown(3))
    assert np.array_equal(pixels(second_crop)[:, -W:], record.shown(3))   # the step's panel is composed


def test_the_toggle_and_clearing_show_the_step_as_it_is(tmp_path):
    record = record_of(tmp_path, mask=box(0, 0, 20, 20))  # a mask that came in the file
    assert record.protection.mask() is record.protect and "_protected_" in record.frame_file(3).name
    assert record.apply_paint(False) and not record.apply_paint(False)
    assert record.protection.mask() is None and np.array_equal(pixels(record.frame_file(3)), record.frames[3])
    assert record.apply_paint(True)
    assert record.paint(None) and not record.paint(None)  # cleared: the file's mask goes too, once
    assert record.protection.mask() is None and np.array_equal(record.shown(3), record.frames[3])
    assert record.paint_editor()["layers"] == []


def test_the_files_mask_is_the_editors_first_paint_over_the_last_step(tmp_path):
    assert record_of(tmp_path).paint_editor()["layers"] == []
    (tmp_path / "masked").mkdir()
    record = record_of(tmp_path / "masked", mask=box(16, 8, 32, 40))
    value = record.paint_editor()
    assert np.array_equal(pixels(value["background"]), record.frames[3])   # the step itself, not composed
    assert np.array_equal(editor_mask({"layers": [Image.open(value["layers"][0])]}, W, H), record.protect)


def test_the_line_says_what_the_chosen_step_shows(tmp_path):
    record = record_of(tmp_path)
    assert text.paint_line(record, 3) == "Nothing painted: every pixel shows step 3."
    record.paint(box(0, 0, 20, 24))                       # a quarter of the image
    assert text.paint_line(record, 3) == "25.0% of the image is painted and keeps step 1; the rest shows step 3."
    assert "step 1 is shown everywhere" in text.paint_line(record, 1)
    record.apply_paint(False)
    assert text.paint_line(record, 3).startswith("Protection off: 25.0% of the image is painted")
    (tmp_path / "short").mkdir()
    short = record_of(tmp_path / "short", steps=1)
    assert not short.paintable and text.paint_line(short, 1).startswith("Painting needs a run of at least 2 steps")


@pytest.mark.parametrize("size, radius", [((96, 72), 3), ((768, 512), 13), ((1024, 1024), 26)])
def test_the_brush_starts_at_a_fortieth_of_the_shorter_side(size, radius):
    assert brush_radius(*size) == radius
