"""The served page: its /enhance and /decode API over HTTP, errors, concurrency and memory.

Tiny random models (conftest) stand in for the trained ones; the app is served in-process on a
free 127.0.0.1 port and closed at the end. The adapter behind it is tested without a server in
tests/web/.
"""
from __future__ import annotations

import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import app
from app_server import serve
from dirac_demo import Frame, RunSettings, with_metrics
from dirac_demo.images import tensor_to_uint8
from dirac_demo.quality import psnr
from uploads import bomb_png


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def reference_frames(pipe, image, steps, seed=0) -> list[np.ndarray]:
    """Base and every step straight from the pipeline, as 8-bit arrays."""
    events = pipe.run(str(image), RunSettings("jpeg", 10, steps, seed=seed))
    return [tensor_to_uint8(e.image) for e in events if isinstance(e, Frame)]


@pytest.fixture(scope="module")
def server(pipe, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("app-work")
    with serve(pipe, str(workdir)) as url:
        yield url, workdir


@pytest.fixture(scope="module")
def client(server):
    return Client(server[0], verbose=False)


def test_api_signature(client):
    api = client.view_api(print_info=False, return_format="dict")
    params = api["named_endpoints"]["/enhance"]["parameters"]
    names = [p["parameter_name"] for p in params]
    assert names == ["image", "codec", "rate", "steps", "seed", "threshold", "refine", "protect"]
    assert [p["parameter_has_default"] for p in params] == [False] + [True] * (len(params) - 1)
    decode = [p["parameter_name"] for p in api["named_endpoints"]["/decode"]["parameters"]]
    assert decode == ["bitstream", "steps", "seed", "threshold", "protect", "window"]


def test_api_enhance_takes_every_parameter_the_readme_documents(client, pipe, photo_path, tmp_path):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    item = re.search(r"^- `/enhance`:(.*?)^- ", readme, re.S | re.M).group(1)          # the list item, all lines
    documented = re.findall(r"`(\w+)`", re.sub(r"\([^()]*\)", "", item))              # names, not notes
    mask = tmp_path / "mask.png"
    Image.new("L", (96, 72), 255).save(mask)
    given = dict(image=handle_file(str(photo_path)), codec="neural", rate=0.002, steps=1, seed=3,
                 threshold=False, refine=2, protect=handle_file(str(mask)))
    assert documented == list(given)
    job = client.submit(**given, api_name="/enhance")
    job.result(timeout=120)
    outputs = job.outputs()
    assert [info["step"] for _, info, _ in outputs] == [0, 1] and outputs[0][1]["codec"] == "neural"
    with open(outputs[-1][2], "rb") as fh:
        assert fh.read() == pipe.compress(str(photo_path), "neural", 0.002, refine=2, protect=str(mask)).bitstream


def test_api_user_error_is_one_log_line_not_a_traceback(client, tmp_path, caplog, capfd):
    txt = tmp_path / "notes.txt"
    txt.write_text("not a picture")
    with caplog.at_level(logging.INFO, logger="dirac_demo.app"):
        with pytest.raises(AppError, match="not an image Pillow can read"):
            client.predict(image=handle_file(str(txt)), steps=1, api_name="/enhance")
    lines = [r.getMessage() for r in caplog.records if r.name == "dirac_demo.app"]
    assert lines == ["/enhance refused: The file is not an image Pillow can read."]
    assert "Traceback" not in capfd.readouterr().err


def test_api_enhance_streams_one_update_per_step(client, pipe, photo_path):
    job = client.submit(image=handle_file(str(photo_path)), codec="jpeg", rate=10, steps=3, seed=0,
                        api_name="/enhance")
    job.result(timeout=120)
    outputs = job.outputs()
    assert [info["step"] for _, info, _ in outputs] == [0, 1, 2, 3]
    expected = reference_frames(pipe, photo_path, 3)
    for (image, info, drc), frame in zip(outputs, expected):
        assert np.array_equal(pixels(image), frame) and image.endswith(".png")
    first = outputs[0][1]
    sent = pipe.compress(str(photo_path), "jpeg", 10)
    assert first["bytes"] == sent.nbytes and abs(first["psnr"] - psnr(sent.base, sent.original)) < 1e-6
    _, *frames = with_metrics(pipe.run(str(photo_path), RunSettings("jpeg", 10, 3)), swd=True)
    assert [info["swd"] for _, info, _ in outputs] == pytest.approx([f.swd for f in frames])
    with open(outputs[-1][2], "rb") as fh:
        assert fh.read() == sent.bitstream


def test_api_neural_bitstream_decodes_to_the_same_image(client, photo_path):
    sent = client.submit(image=handle_file(str(photo_path)), codec="neural", rate=0.002, steps=2, seed=7,
                         api_name="/enhance")
    sent.result(timeout=120)
    s_img, s_info, drc = sent.outputs()[-1]
    assert s_info["codec"] == "neural" and s_info["step"] == 2 and s_info["psnr"] is not None
    got = client.submit(bitstream=handle_file(drc), steps=2, seed=7, api_name="/decode")
    got.result(timeout=120)
    r_img, r_info, _ = got.outputs()[-1]
    assert r_info["psnr"] is None and r_info["swd"] is None and r_info["step"] == 2
    assert s_info["swd"] > 0
    assert np.array_equal(pixels(r_img), pixels(s_img))


def test_api_bad_uploads_are_clear_errors_and_server_keeps_serving(client, photo_path, tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("not a picture")
    with pytest.raises(AppError, match="not an image Pillow can read"):
        client.predict(image=handle_file(str(txt)), steps=1, api_name="/enhance")
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png())
    with pytest.raises(AppError, match="too large to decode safely|far over"):
        client.predict(image=handle_file(str(bomb)), steps=1, api_name="/enhance")
    with pytest.raises(AppError, match="Not a dirac-demo bitstream"):
        client.predict(bitstream=handle_file(str(txt)), steps=1, api_name="/decode")
    with pytest.raises(AppError, match="JPEG quality factor must be a whole number in 1..100, got 0"):
        client.predict(image=handle_file(str(photo_path)), rate=0, steps=0, api_name="/enhance")
    with pytest.raises(AppError, match="threshold must be true or false, got 'maybe'"):
        client.predict(image=handle_file(str(photo_path)), steps=0, threshold="maybe", api_name="/enhance")
    jpg = tmp_path / "photo.jpg"
    Image.open(photo_path).save(jpg, quality=50)
    with pytest.raises(AppError, match="threshold must be true or false"):
        client.predict(bitstream=handle_file(str(jpg)), steps=0, threshold="maybe", api_name="/decode")
    with pytest.raises(AppError, match="steps must be a whole number in 0..50"):   # the page's cap on S
        client.predict(image=handle_file(str(photo_path)), steps=app.MAX_STEPS + 1, api_name="/enhance")
    with pytest.raises(AppError, match="seed must be a whole number"):
        client.predict(image=handle_file(str(photo_path)), steps=1, seed=1.5, api_name="/enhance")
    _, info, _ = client.predict(image=handle_file(str(photo_path)), steps=1, api_name="/enhance")
    assert info["step"] == 1


def test_concurrent_clients_finish_and_memory_stays_bounded(server, photo_path):
    url, workdir = server
    rss = psutil.Process(os.getpid()).memory_info

    def one(seed: int) -> list[int]:
        job = Client(url, verbose=False).submit(image=handle_file(str(photo_path)), steps=3, seed=seed,
                                                api_name="/enhance")
        job.result(timeout=180)
        return [info["step"] for _, info, _ in job.outputs()]

    def batch(n: int = 3) -> None:
        with ThreadPoolExecutor(n) as pool:
            assert list(pool.map(one, range(n))) == [[0, 1, 2, 3]] * n
    batch()
    before = rss().rss
    batch()
    batch()
    assert rss().rss - before < 150 * 2**20
    assert not list(workdir.glob("run-*"))    # API runs leave no download files behind
