"""The page's adapter without a server: its streams of keyed updates, the run records they hold,
the examples, painted protection, and the API handlers called directly.

Tiny random models (conftest) stand in for the trained ones.
"""
from __future__ import annotations

import io
import re

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from dirac_demo import DiracPipeline, Frame, RunSettings, with_metrics
from dirac_demo.codecs import CODECS
from dirac_demo.codecs.refine import DEFAULT_ITERS as UI_REFINE_ITERS
from dirac_demo.images import pil_to_tensor, tensor_to_uint8
from dirac_demo.quality import LiveSWD, psnr
from dirac_demo.same_bytes import decode, same_bytes
from dirac_demo.web import adapter, painting, text
from dirac_demo.web.adapter import DiracDemo
from dirac_demo.web.crop import CROP_SIZE, GAP
from dirac_demo.web.paint import editor_mask
from dirac_demo.web.panel import Panel
from dirac_demo.web.plane import BASE_POINT, CHOSEN_POINT, PLANE_COLORS, STEPS_POINTS, plane_data
from dirac_demo.web.settings import DEFAULT_WEIGHT, PageSettings, ReceiverSettings, View, weight_from_slider
from dirac_demo.web.state import StopFlag, cleanup_record
from dirac_demo.web.updates import canvas
from uploads import bomb_png

VIEW = View("original", 50, 50, 1)     # reference, crop x %, crop y %, zoom
BASE_VIEW = View("base", 50, 50, 1)
skip = gr.skip()                       # a handler's "nothing changes"


def stream(demo: DiracDemo, image, codec="jpeg", qf=10, steps=4, previous=None, stop=None, refine=False,
           downscale=False):
    """The Run button's stream of keyed updates (seed 0, thresholding on): the emptied panel first."""
    image = str(image) if image is not None else None
    page = PageSettings(codec, qf, DEFAULT_WEIGHT, steps, 0, True, downscale, refine)
    return demo.send(image, page, previous, stop or StopFlag(), VIEW)


def send(demo: DiracDemo, image, **kwargs) -> list[dict]:
    return list(stream(demo, image, **kwargs))


def receive(demo: DiracDemo, path, steps: int, view: View = BASE_VIEW) -> list[dict]:
    """The Receiver tab's stream for the file at ``path`` (seed 0, thresholding on)."""
    return list(demo.receive(str(path), ReceiverSettings(steps, 0, True), None, StopFlag(), view))


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def plane(update: dict) -> dict[str, list[str]]:
    """The points of a plot update by kind: {'steps': ['base (step 0)', 'step 1', ...], ...}."""
    df = update["plot"]["value"]
    return {kind: list(df[df["point"] == kind]["frame"]) for kind in dict.fromkeys(df["point"])}


def reference_frames(pipe, image, steps, seed=0) -> list[np.ndarray]:
    """Base and every step straight from the pipeline, as 8-bit arrays."""
    events = pipe.run(str(image), RunSettings("jpeg", 10, steps, seed=seed))
    return [tensor_to_uint8(e.image) for e in events if isinstance(e, Frame)]


def test_send_streams_base_then_each_step(pipe, photo_path, tmp_path):
    updates = send(DiracDemo(pipe, str(tmp_path)), photo_path, steps=4)
    assert len(updates) == 1 + 1 + 4 + 1 + 1     # emptied panel, compressed, 4 steps, finished, same bytes
    start, first, *steps, last, same = updates
    assert start["status"] == "Compressing…" and start["record"] is None and start["base"] is None
    assert {"base", "current", "record", "drc"} <= first.keys()
    assert [u["step"]["value"] for u in steps] == [1, 2, 3, 4]
    assert all("Step" in u["status"] and "PSNR" in u["status"] and "SWD" in u["status"] for u in steps)
    assert last["step"]["interactive"] is True and last["step"]["value"] == 4
    assert "Done: 4 DIRAC steps" in last["status"] and "Done: 4 DIRAC steps" in same["status"]
    assert all("WebP and AVIF files of at most" in u["status"] for u in (first, *steps, last))   # pending
    record = first["record"]
    assert record.bitstream_path.read_bytes() == pipe.compress(str(photo_path), "jpeg", 10).bitstream


def test_live_swd_is_measured_per_step_on_the_sender_only(pipe, photo_path, tmp_path):
    demo = DiracDemo(pipe, str(tmp_path))
    updates = send(demo, photo_path, steps=3)
    record = updates[1]["record"]
    header, *frames = with_metrics(pipe.run(str(photo_path), RunSettings("jpeg", 10, 3)), swd=True)
    assert record.swd == [f.swd for f in frames] and None not in record.swd
    meter = LiveSWD(header.original)
    assert record.swd[2] == meter(frames[2].image)
    assert f"SWD {record.swd[2]:.1f} ({record.swd[2] - record.swd[0]:+.1f} vs base)" in text.step_line(record, 2)
    assert f"SWD {record.swd[0]:.1f}" in updates[1]["status"]
    drc = tmp_path / "sent.drc"
    drc.write_bytes(record.bitstream_path.read_bytes())
    got = receive(demo, drc, 2)
    assert set(got[1]["record"].swd) == {None} and "SWD" not in got[-1]["step_md"]


def test_plane_grows_one_point_per_step_with_base_and_chosen_step_marked(pipe, photo_path, tmp_path):
    demo = DiracDemo(pipe, str(tmp_path))
    start, first, *steps, last, same = send(demo, photo_path, steps=4)
    assert start["plot"] is None
    for k, u in enumerate([first, *steps]):
        points = plane(u)
        assert points[STEPS_POINTS] == ["base (step 0)"] + [f"step {j}" for j in range(1, k + 1)]
        assert points[BASE_POINT] == ["base (step 0)"]
        assert points[CHOSEN_POINT] == [f"step {k}" if k else "base (step 0)"]   # the newest, as the slider
        assert u["plot"]["x_lim"] is None and u["plot"]["y_lim"] is None          # the axes follow the data
    record = first["record"]
    df = last["plot"]["value"]
    steps_only = df[df["point"] == STEPS_POINTS]
    assert list(steps_only["psnr"]) == [round(p, 2) for p in record.psnr]
    assert list(steps_only["swd"]) == [round(v, 2) for v in record.swd]
    assert plane(demo.view(record, 2, VIEW))[CHOSEN_POINT] == ["step 2"]   # the slider moves it
    webp, avif = (record.same_bytes[c] for c in ("webp", "avif"))
    assert plane(same)["WebP"] == [text.same_bytes_label(webp)]                          # bytes in the tooltip
    assert plane(same)["AVIF"] == [text.same_bytes_label(avif)]
    assert set(plane(same)) <= set(PLANE_COLORS)                                 # every kind has a colour
    (x0, x1), (y0, y1) = same["plot"]["x_lim"], same["plot"]["y_lim"]                    # set once, at the end
    points = same["plot"]["value"]
    assert x0 < points["swd"].min() <= points["swd"].max() < x1
    assert y0 < points["psnr"].min() <= points["psnr"].max() < y1
    assert demo.view(record, 1, View("webp", 50, 50, 1))["plot"]["x_lim"] == [x0, x1]          # and kept


def test_same_bytes_files_are_never_larger_and_offered_as_references(pipe, photo, photo_path, tmp_path):
    demo = DiracDemo(pipe, str(tmp_path))
    updates = send(demo, photo_path, steps=2)
    record, same = updates[1]["record"], updates[-1]
    assert updates[1]["reference"]["choices"] == [("original", "original"), ("base", "base")]
    assert set(record.same_bytes) == {"webp", "avif"}
    original = pil_to_tensor(photo)
    for codec, shot in record.same_bytes.items():
        assert shot.nbytes <= record.nbytes and f"{shot.nbytes:,} bytes" in text.same_bytes_label(shot)
        (ref,) = same_bytes(original, record.nbytes, (codec,))      # the largest quality that fits
        assert (shot.quality, shot.nbytes) == (ref.quality, ref.nbytes)
        assert np.array_equal(shot.frame, tensor_to_uint8(decode(ref.data)))
        assert shot.psnr == psnr(ref.image, original) and shot.swd == LiveSWD(original)(ref.image)
        assert text.same_bytes_facts(shot) in same["status"]
    labels = [label for label, _ in same["reference"]["choices"]]
    assert same["reference"]["choices"][2:] == [(text.same_bytes_label(record.same_bytes[c]), c)
                                                for c in ("webp", "avif")]
    assert labels[:2] == ["original", "base"]
    for codec in ("webp", "avif"):
        shown = demo.view(record, 2, View(codec, 50, 50, 1))
        ref, frame = (pixels(p) for p in shown["compare"])
        assert np.array_equal(ref, record.same_bytes[codec].frame) and np.array_equal(frame, record.frames[2])
        assert f"Compared with {text.same_bytes_facts(record.same_bytes[codec])}" in shown["step_md"]


def test_a_codec_without_a_file_in_the_budget_is_left_out_in_one_line(pipe, photo_path, tmp_path, monkeypatch):
    monkeypatch.setattr(adapter, "same_bytes", lambda original, nbytes, codecs: same_bytes(original, 40, codecs))
    same = send(DiracDemo(pipe, str(tmp_path)), photo_path, steps=1)[-1]
    assert [v for _, v in same["reference"]["choices"]] == ["original", "base"]
    assert "At the same bytes" not in same["status"]
    for name in ("WebP", "AVIF"):
        assert f"{name} at its lowest quality is" in same["status"] and "over the budget of 40 bytes" in same["status"]
    assert set(plane(same)) == {STEPS_POINTS, BASE_POINT, CHOSEN_POINT}
    monkeypatch.setattr(adapter.features, "check", lambda codec: codec != "avif")   # a Pillow without AVIF
    monkeypatch.setattr(adapter, "same_bytes", same_bytes)
    same = send(DiracDemo(pipe, str(tmp_path)), photo_path, steps=1)[-1]
    assert [v for _, v in same["reference"]["choices"]] == ["original", "base", "webp"]
    assert "AVIF: this server's Pillow cannot write it, so it is left out." in same["status"]


def test_step_slider_shows_stored_frames_without_recomputing(pipe, photo_path, tmp_path, monkeypatch):
    demo = DiracDemo(pipe, str(tmp_path))
    record = send(demo, photo_path, steps=3)[1]["record"]
    expected = reference_frames(pipe, photo_path, 3)
    monkeypatch.setattr(pipe, "frames", lambda *a, **k: pytest.fail("the slider must not rerun DIRAC"))
    monkeypatch.setattr(pipe, "compress", lambda *a, **k: pytest.fail("the slider must not recompress"))
    for k in (0, 2, 3):
        shown = demo.view(record, k, View("base", 0, 0, 1))
        ref, frame = (pixels(p) for p in shown["compare"])
        assert np.array_equal(frame, expected[k]) and np.array_equal(ref, expected[0])   # lossless PNG
        assert np.array_equal(pixels(shown["png"]["value"]), expected[k])
        assert np.array_equal(pixels(shown["crop"]), record.crop(k, 0, 0, 1))
        assert shown["step_md"].startswith(f"Step {k} of 3")
    assert np.array_equal(pixels(demo.view(record, 1, View("original", 0, 0, 1))["compare"][0]), record.original)


def test_stop_ends_the_run_between_steps(pipe, photo_path, tmp_path):
    demo, stop = DiracDemo(pipe, str(tmp_path)), StopFlag()
    run = stream(demo, photo_path, steps=6, stop=stop)
    updates = [next(run), next(run), next(run), next(run)]    # emptied panel, compressed, step 1, step 2
    stop.request()
    last = next(run)
    assert "Stopped after 2 of 6 steps" in last["status"]
    assert last["step"]["maximum"] == 2 and last["step"]["interactive"] is True
    assert last["step_md"].startswith("Step 2 of 6") and updates[1]["record"].steps_run == 2
    assert "Stopped after 2 of 6 steps" in next(run)["status"]     # then the same-bytes files
    with pytest.raises(StopIteration):
        next(run)
    assert "Done: 2 DIRAC steps" in send(demo, photo_path, steps=2, stop=stop)[-1]["status"]   # cleared


def test_crop_is_full_resolution_and_click_centres_it(pipe, tmp_path):
    big = Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 400, 3), dtype=np.uint8))
    path = tmp_path / "big.png"
    big.save(path)
    record = send(DiracDemo(pipe, str(tmp_path)), path, steps=1)[1]["record"]
    crop = record.crop(1, 0, 0, 1)
    assert crop.shape == (CROP_SIZE, 3 * CROP_SIZE + 2 * GAP, 3)
    assert np.array_equal(crop[:, :CROP_SIZE], np.asarray(big)[:CROP_SIZE, :CROP_SIZE])   # 1:1 pixels
    assert record.crop(1, 100, 100, 2).shape == (2 * CROP_SIZE, 6 * CROP_SIZE + 2 * GAP, 3)
    assert record.crop_center(400 - CROP_SIZE / 2, CROP_SIZE / 2) == (100.0, 0.0)
    assert record.crop_center(200, 150) == (50.0, 50.0)


def test_bad_uploads_give_one_message_and_no_exception(pipe, photo, tmp_path):
    demo = DiracDemo(pipe, str(tmp_path))
    png = io.BytesIO()
    photo.save(png, format="PNG")
    gif = io.BytesIO()
    photo.save(gif, format="GIF", save_all=True, append_images=[photo.rotate(90)])
    cases = {"notes.txt": (b"hello", "not an image"), "empty.png": (b"", "empty"),
             "cut.png": (png.getvalue()[:300], "corrupt"), "bomb.png": (bomb_png(), "too large|far over"),
             "anim.gif": (gif.getvalue(), "Animated")}
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.warns(UserWarning):   # gr.Warning outside a request is a Python warning
            updates = send(demo, tmp_path / name)
        status = updates[-1]["status"]
        assert status.startswith("⚠️") and re.search(message, status) and updates[-1]["record"] is None, name
    with pytest.warns(UserWarning):
        assert send(demo, None)[0]["status"].startswith("⚠️ **Upload an image")


@pytest.mark.parametrize("mode", ["RGBA", "I;16", "CMYK"])
def test_unusual_modes_are_converted(pipe, photo, tmp_path, mode):
    img = Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257, "I;16") if mode == "I;16" \
        else photo.convert(mode)
    path = tmp_path / ("in.jpg" if mode == "CMYK" else "in.png")
    img.save(path)
    record = send(DiracDemo(pipe, str(tmp_path)), path, steps=1)[1]["record"]
    assert record.frames[0].shape == (72, 96, 3) and record.original.shape == (72, 96, 3)


def test_codec_without_dirac_model_runs_base_only(pipe, photo_path, tmp_path):
    jpeg_only = DiracPipeline(pipe.codecs, {"jpeg": pipe.dirac["jpeg"]}, device="cpu", precision="fp32")
    demo = DiracDemo(jpeg_only, str(tmp_path))
    _qf, _lam, _lam_md, _thr, refine, steps, note = demo.codec_controls("neural")
    assert steps["interactive"] is False and steps["value"] == 0 and note["visible"] is True
    assert refine["visible"] is True and demo.codec_controls("jpeg")[4]["visible"] is False
    assert demo.codec_controls("jpeg")[5]["interactive"] is True
    # the thresholding box shows where the codec's model has a table: JPEG's (by QF) here, no neural model
    assert _thr["visible"] is False and demo.codec_controls("jpeg")[3]["visible"] is True
    assert DiracDemo(pipe, str(tmp_path)).codec_controls("neural")[3]["visible"] is True
    updates = send(demo, photo_path, codec="neural", steps=20)
    assert updates[1]["record"].total == 0 and updates[1]["record"].steps_run == 0
    assert "No trained DIRAC model for the neural codec" in updates[-1]["status"]
    with pytest.raises(gr.Error, match="use steps=0"):
        list(demo.enhance(str(photo_path), "neural", 0.002, 5))


def test_refine_checkbox_sends_a_refined_neural_file(pipe, photo_path, tmp_path):
    """The checkbox sends the neural codec's refined encoding (an ordinary file); JPEG ignores it."""
    demo = DiracDemo(pipe, str(tmp_path))
    updates = send(demo, photo_path, codec="neural", steps=1, refine=True)
    refining = f"Refining the encoding for a smaller file ({UI_REFINE_ITERS} iterations)…"
    assert updates[0]["status"] == refining and updates[0]["record"] is None
    refined = updates[1]["record"]
    lmbda = weight_from_slider(DEFAULT_WEIGHT, CODECS["neural"].rates)
    plain = pipe.compress(str(photo_path), "neural", lmbda)
    expect = pipe.compress(str(photo_path), "neural", lmbda, refine=UI_REFINE_ITERS)
    assert refined.bitstream_path.read_bytes() == expect.bitstream != plain.bitstream
    jpeg = send(demo, photo_path, codec="jpeg", steps=1, refine=True)[1]["record"]
    assert jpeg.bitstream_path.read_bytes() == pipe.compress(str(photo_path), "jpeg", 10).bitstream
    with pytest.raises(gr.Error, match="neural codec only"):
        list(demo.enhance(str(photo_path), "jpeg", 10, 1, refine=5))
    with pytest.raises(gr.Error, match="refine must be a whole number"):
        list(demo.enhance(str(photo_path), "neural", 0.002, 1, refine=-3))


def test_receiver_has_no_psnr(pipe, photo_path, tmp_path):
    drc = tmp_path / "sent.drc"
    drc.write_bytes(pipe.compress(str(photo_path), "jpeg", 20).bitstream)
    updates = receive(DiracDemo(pipe, str(tmp_path)), drc, 3)
    record = updates[1]["record"]
    assert record.steps_run == 3 and record.original is None and set(record.psnr) == {None}
    assert "no original, so no PSNR" in updates[1]["status"] and "PSNR" not in updates[-1]["step_md"]
    assert plane_data(record, 3).empty and record.crop(3, 50, 50, 1).shape[1] == 2 * 96 + GAP
    assert updates[-1]["plot"]["visible"] is False and not record.same_bytes and len(updates) == 1 + 1 + 3 + 1
    assert text.reference_choices(record) == [("base", "base")] and "WebP" not in updates[-1]["status"]


def test_receiver_and_decode_api_take_a_plain_jpeg(pipe, photo, tmp_path):
    jpg = tmp_path / "camera.jpg"
    photo.save(jpg, format="JPEG", quality=20)
    demo = DiracDemo(pipe, str(tmp_path))
    updates = receive(demo, jpg, 2)
    record = updates[1]["record"]
    assert record.steps_run == 2 and record.rate == 20 and record.nbytes == jpg.stat().st_size
    assert f"JPEG file 96x72, {jpg.stat().st_size} bytes" in updates[-1]["status"]          # what the codec reads
    assert "4:2:0, baseline, quality 20" in updates[-1]["status"]
    other = tmp_path / "editor.jpg"
    photo.save(other, format="JPEG", qtables={0: [13] * 64, 1: [17] * 64})
    status = receive(demo, other, 0)[-1]["status"]
    assert "estimated quality" in status and "not the IJG tables" in status
    api = list(demo.decode(str(jpg), 2, 0, True))
    assert [info["step"] for _, info, _ in api] == [0, 1, 2] and api[0][1]["rate"] == 20
    assert api[0][2].endswith("camera_jpeg.jpg")     # the received file keeps its type, not a .drc name
    assert record.bitstream_path.read_bytes() == jpg.read_bytes()


def test_avif_base_codec_on_the_page_and_the_api(pipe, photo, photo_path, tmp_path):
    """AVIF shares the quality slider (relabelled, 0..100), runs its model's steps, and the receiver
    and /decode take a plain .avif file."""
    demo = DiracDemo(pipe, str(tmp_path))
    quality, neural, *_ = demo.codec_controls("avif")
    assert quality["label"] == "AVIF quality" and quality["minimum"] == 0 and quality["value"] == 30
    assert neural["visible"] is False and demo.codec_controls("jpeg")[0]["label"] == "JPEG quality factor"
    record = send(demo, photo_path, codec="avif", qf=30, steps=2)[1]["record"]
    assert record.codec == "avif" and record.rate == 30 and record.steps_run == 2
    assert record.bitstream_path.read_bytes()[5] == 3                      # .drc codec id 3
    plain = tmp_path / "shot.avif"
    plain.write_bytes(pipe.compress(photo, "avif", 30).encoded.chunks[0])
    updates = receive(demo, plain, 2)
    assert updates[1]["record"].rate == 30 and "AVIF file 96x72" in updates[-1]["status"]
    api = list(demo.decode(str(plain), 1, 0, True))
    assert api[0][1]["rate"] == 30 and api[0][2].endswith(".avif")
    api = list(demo.enhance(str(photo_path), "avif", 0, 1))
    assert [info["step"] for _, info, _ in api] == [0, 1]
    with pytest.raises(gr.Error, match="AVIF quality"):
        list(demo.enhance(str(photo_path), "avif", 101, 1))


def test_sender_offers_to_enhance_a_jpeg_upload_as_it_is(pipe, photo, photo_path, tmp_path):
    jpg = tmp_path / "phone.jpg"
    photo.save(jpg, format="JPEG", quality=30, subsampling=0)
    demo = DiracDemo(pipe, str(tmp_path))
    note, button, picture, pick = demo.offer_file({"path": str(jpg)})
    assert button["visible"] and "quality 30" in note["value"] and "4:4:4" in note["value"]
    assert not picture["visible"] and pick is None                    # within the limit: no window to choose
    assert note["value"].startswith("This upload is a JPEG file") and button["value"] == "Enhance this JPEG as it is"
    assert not any(u["visible"] for u in demo.offer_file(str(photo_path))[:3])     # a PNG: no offer
    assert not any(u["visible"] for u in demo.offer_file(None)[:3])
    updates = list(demo.enhance_file(str(jpg), ReceiverSettings(2, 0, True), None, StopFlag(), VIEW))
    record = updates[1]["record"]
    assert record.nbytes == jpg.stat().st_size and record.rate == 30 and set(record.psnr) == {None}
    assert record.bitstream_path.read_bytes() == jpg.read_bytes()     # not re-compressed
    assert updates[1]["drc"]["label"] == "Download bitstream (.jpg)"
    assert "no original, so no PSNR" in updates[-1]["status"] and record.steps_run == 2
    assert updates[0]["reference"]["choices"] == ["base"] and updates[1]["reference"]["value"] == "base"
    assert not any("WebP" in u["status"] for u in updates) and updates[-1]["plot"]["visible"] is False
    missing = list(demo.enhance_file(None, ReceiverSettings(2, 0, True), None, StopFlag(), VIEW))
    assert text.NO_PLAIN_FILE in missing[-1]["status"] and "JPEG" in text.NO_PLAIN_FILE


def test_new_run_and_expired_state_delete_download_files(pipe, photo_path, tmp_path):
    demo = DiracDemo(pipe, str(tmp_path))
    old = send(demo, photo_path, steps=1)[1]["record"]
    assert old.workdir.exists()
    new = send(demo, photo_path, steps=1, previous=old)[1]["record"]
    assert not old.workdir.exists() and new.workdir.exists()
    cleanup_record(new)
    assert not new.workdir.exists()


@pytest.fixture
def small_examples(photo, tmp_path):
    """Two small example files in place of the shipped ones, so a cache builds in seconds."""
    folder = tmp_path / "examples"
    folder.mkdir()
    photo.save(folder / "a.png")
    photo.save(folder / "b.jpg", quality=40)
    return folder


def test_an_example_shows_a_copy_of_its_cached_run(pipe, small_examples, tmp_path):
    demo = DiracDemo(pipe, str(tmp_path / "work"), small_examples)
    assert [t[-4:] for t, _ in demo.examples.thumbnails()] == [".jpg", ".jpg"]    # small JPEGs, made at start
    args = (PageSettings("jpeg", 10, DEFAULT_WEIGHT, 20, 0, True), None, StopFlag(), VIEW)
    path, early = demo.pick_example(0, *args)                  # not cached yet: the image only, and why
    assert path.endswith("a.png") and set(early) == {"status"} and "being prepared" in early["status"]
    demo.cache_examples()
    path, shown = demo.pick_example(0, *args)
    record = shown["record"]
    assert path.endswith("a.png") and record.steps_run == 20 and record.same_bytes_done
    assert "Precomputed run" in shown["status"] and "differ" not in shown["status"]
    assert shown["step_md"].startswith("Step 20 of 20") and shown["step"]["interactive"]
    cached = demo.examples._runs["a.png"]
    assert record is not cached and record.workdir != cached.workdir and record.frames is not cached.frames
    cleanup_record(record)                            # the visitor's session ends
    assert cached.bitstream_path.exists() and cached.frame_file(20).exists()
    again = demo.pick_example(0, PageSettings("jpeg", 30), None, StopFlag(), VIEW)[1]   # other settings
    assert "Your settings differ" in again["status"] and again["record"].bitstream_path.exists()


def test_a_failed_run_empties_what_the_previous_run_showed(pipe, photo_path, tmp_path):
    """A new run deletes the previous run's files, so no output on the page may still point at them."""
    demo = DiracDemo(pipe, str(tmp_path))
    old = send(demo, photo_path, steps=2)[1]["record"]
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning):
        failed = send(demo, tmp_path / "notes.txt", previous=old)[-1]
    assert failed["status"].startswith("⚠️") and failed["record"] is None and not old.workdir.exists()
    assert all(failed[k] is None for k in ("base", "current", "compare", "crop", "plot"))
    assert failed["step"]["value"] == 0 and failed["step"]["interactive"] is False and failed["step_md"] == ""
    assert all(failed[k]["value"] is None and failed[k]["interactive"] is False for k in ("png", "drc"))
    assert demo.view(old, 1, BASE_VIEW) == {}       # a slider moved afterwards: nothing, no error
    assert Panel(*[None] * 15).bind(demo.view)(old, 1, BASE_VIEW) == skip   # for Gradio


def test_a_downscaled_upload_is_named_in_the_status_line(pipe, photo_path, tmp_path):
    small = DiracPipeline(pipe.codecs, pipe.dirac, device="cpu", precision="fp32", max_pixels=64 * 64)
    demo = DiracDemo(small, str(tmp_path))
    updates = send(demo, photo_path, steps=1, downscale=True)
    record = updates[1]["record"]
    assert record.source_size == (96, 72) and record.width * record.height <= 64 * 64
    assert (f"downscaled from 96×72 to {record.width}×{record.height}: PSNR and SWD are measured against "
            "the downscaled image") in updates[-1]["status"]
    assert "downscaled" not in send(DiracDemo(pipe, str(tmp_path)), photo_path, steps=0)[-1]["status"]
    with pytest.warns(UserWarning):
        refused = send(demo, photo_path, steps=1)[-1]["status"]
    assert "over the 0.0 MP limit; downscale it first, or tick 'Downscale images over 0.00391 MP'" in refused


def test_quality_factor_and_threshold_are_checked(pipe, photo_path, tmp_path):
    demo = DiracDemo(pipe, str(tmp_path))
    with pytest.warns(UserWarning):
        refused = send(demo, photo_path, qf=0)[-1]["status"]
    assert "quality factor must be a whole number in 1..100, got 0" in refused
    for bad in ("maybe", 1, None):
        with pytest.raises(gr.Error, match="threshold must be true or false"):
            list(demo.enhance(str(photo_path), "jpeg", 10, 0, 0, bad))


def _receive_masked(pipe, photo_path, photo, tmp_path):
    """The Receiver tab on a .drc whose protect mask covers the box (8, 8)–(48, 40): demo, updates."""
    mask = tmp_path / "mask.png"
    paint = Image.new("L", photo.size)
    paint.paste(255, (8, 8, 48, 40))
    paint.save(mask)
    drc = tmp_path / "masked.drc"
    drc.write_bytes(pipe.compress(str(photo_path), "jpeg", 10, protect=str(mask)).bitstream)
    demo = DiracDemo(pipe, str(tmp_path))
    return demo, receive(demo, drc, 3)


def test_receiver_applies_the_files_protect_mask(pipe, photo_path, photo, tmp_path):
    demo, updates = _receive_masked(pipe, photo_path, photo, tmp_path)
    record = next(u["record"] for u in updates if u.get("record"))
    assert record.protect is not None and "protect mask keeps" in updates[-1]["status"]
    shown = pixels(record.frame_file(3))
    inside, outside = (slice(16, 32), slice(16, 40)), (slice(56, 72), slice(60, 96))
    assert np.array_equal(shown[inside], record.frames[1][inside])       # protected: step 1
    assert np.array_equal(shown[outside], record.frames[3][outside])     # the rest: step 3
    assert not np.array_equal(record.frames[1][inside], record.frames[3][inside])
    last = [pixels(png) for png, _, _ in demo.decode(str(tmp_path / "masked.drc"), 3, 0, True)][-1]   # read before cleanup
    assert np.array_equal(last[inside], record.frames[1][inside])


def test_the_api_takes_a_protect_mask(pipe, photo_path, photo, tmp_path):
    mask = tmp_path / "mask.png"
    paint = Image.new("L", photo.size)
    paint.paste(255, (8, 8, 48, 40))
    paint.save(mask)
    demo = DiracDemo(pipe, str(tmp_path))
    inside, outside = (slice(16, 32), slice(16, 40)), (slice(56, 72), slice(60, 96))
    plain = [pixels(png) for png, _, _ in demo.enhance(str(photo_path), "jpeg", 10, 3, 0, True)]
    sent = []
    for png, _, drc in demo.enhance(str(photo_path), "jpeg", 10, 3, 0, True, 0, {"path": str(mask)}):
        sent.append(pixels(png))
        data = open(drc, "rb").read()
    assert data[4] == 3                                              # the mask travels in the file
    assert np.array_equal(sent[3][inside], plain[1][inside]) and np.array_equal(sent[3][outside], plain[3][outside])
    drc = tmp_path / "plain.drc"
    drc.write_bytes(pipe.compress(str(photo_path), "jpeg", 10).bitstream)
    got = [pixels(png) for png, _, _ in demo.decode(str(drc), 3, 0, True, str(mask))]
    assert np.array_equal(got[3][inside], plain[1][inside]) and np.array_equal(got[3][outside], plain[3][outside])
    with pytest.raises(Exception, match="not an image"):
        list(demo.decode(str(drc), 3, 0, True, str(drc)))


# ---- painted protection -------------------------------------------------------------------
def painted(record, mask: np.ndarray) -> dict:
    """The editor's value after a stroke that covers ``mask``, as Gradio passes it (type='pil')."""
    layer = np.zeros((*mask.shape, 4), np.uint8)
    layer[mask] = (255, 0, 255, 127)
    return {"background": Image.open(record.frame_file(record.steps_run, composed=False)),
            "layers": [Image.fromarray(layer, "RGBA")], "composite": None}


def test_painting_after_a_run_composes_the_chosen_step_without_running_it(pipe, photo_path, tmp_path, monkeypatch):
    demo = DiracDemo(pipe, str(tmp_path))
    updates = send(demo, photo_path, steps=3)
    record, done = updates[1]["record"], updates[-2]
    editor = canvas(record)["paint"]                  # the editor, set once the stream has ended
    assert editor["value"]["layers"] == [] and editor["brush"].default_size == 3
    assert np.array_equal(pixels(editor["value"]["background"]), record.frames[3])
    assert done["paint_md"] == "Nothing painted: every pixel shows step 3."
    monkeypatch.setattr(pipe, "frames", lambda *a, **k: pytest.fail("painting must not rerun DIRAC"))
    mask = np.zeros((72, 96), bool)
    mask[8:40, 8:48] = True
    assert painting.paint(record, painted(record, mask), 0) == 1      # a new mask: the view runs again
    assert painting.paint(record, painted(record, mask), 1) == skip   # the same paint again: nothing to show
    shown = demo.view(record, 3, VIEW)
    composed = pixels(shown["compare"][1])
    assert np.array_equal(composed[16:32, 16:40], record.frames[1][16:32, 16:40])      # painted: step 1
    assert np.array_equal(composed[56:, 60:], record.frames[3][56:, 60:])              # the rest: step 3
    assert np.array_equal(pixels(shown["png"]["value"]), composed) and "_protected_" in shown["png"]["value"]
    assert np.array_equal(pixels(shown["crop"])[:, -96:], composed)
    assert shown["paint_md"].startswith("18.5% of the image is painted and keeps step 1")
    assert painting.toggle(record, False, 1) == 2 and painting.toggle(record, False, 2) == skip
    off = demo.view(record, 3, VIEW)
    assert np.array_equal(pixels(off["compare"][1]), record.frames[3]) and off["paint_md"].startswith("Protection off")
    assert painting.toggle(record, True, 2) == 3 and painting.clear(record, 3) == 4
    cleared = demo.view(record, 3, VIEW)
    assert np.array_equal(pixels(cleared["compare"][1]), record.frames[3]) and cleared["paint_md"].startswith("Nothing")
    assert canvas(record)["paint"]["value"]["layers"] == []


def test_painting_without_a_finished_run_does_nothing(pipe, photo_path, tmp_path):
    demo = DiracDemo(pipe, str(tmp_path))
    blank = {"background": None, "layers": [], "composite": None}
    assert painting.paint(None, None, 0) == painting.paint(None, blank, 0) == skip
    assert painting.toggle(None, False, 0) == painting.clear(None, 0) == skip
    run = stream(demo, photo_path, steps=3)
    next(run)                                                    # the emptied panel
    record = next(run)["record"]                                 # compressed, no step yet
    assert painting.paint(record, painted(record, np.ones((72, 96), bool)), 0) == skip and record.protection.painted is None
    assert painting.clear(record, 0) == skip and canvas(record) == {"paint": None}


def test_a_new_run_and_a_failure_clear_the_paint(pipe, photo_path, tmp_path):
    demo = DiracDemo(pipe, str(tmp_path))
    old = send(demo, photo_path, steps=2)[1]["record"]
    assert painting.paint(old, painted(old, np.ones((72, 96), bool)), 0) == 1 and painting.toggle(old, False, 1) == 2
    first = next(stream(demo, photo_path, steps=2, previous=old))
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning):
        failed = send(demo, tmp_path / "notes.txt")[-1]
    for update in (first, failed):
        assert update["paint_md"] == "" and update["paint_on"] is True
    assert canvas(old) == canvas(None) == {"paint": None}   # the editor empties
    one_step = send(demo, photo_path, steps=1)[-2]           # nothing to paint: step 1 is the last
    assert "at least 2 steps" in one_step["paint_md"]


def test_the_files_protect_mask_is_the_receivers_first_paint(pipe, photo_path, photo, tmp_path):
    demo, updates = _receive_masked(pipe, photo_path, photo, tmp_path)
    record = updates[1]["record"]
    editor = canvas(record)["paint"]["value"]
    layer = editor_mask({"layers": editor["layers"]}, 96, 72)
    assert np.array_equal(layer, record.protect) and "keeps step 1" in updates[-1]["paint_md"]
    assert painting.clear(record, 0) == 1
    assert np.array_equal(pixels(demo.view(record, 3, BASE_VIEW)["compare"][1]), record.frames[3])
