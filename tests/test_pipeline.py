import io
import pickle

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from dirac_demo import RunSettings, codecs, with_metrics
from dirac_demo.errors import BitstreamError, InputError, TooLargeError, WeightsError
from dirac_demo.images import pil_to_tensor
from dirac_demo.pipeline import Compressed, DiracPipeline, Frame
from dirac_demo.quality import LiveSWD


def _events(gen):
    return list(gen)


@pytest.mark.parametrize("codec,rate", [("jpeg", 10), ("neural", 0.0016)])
def test_event_order_and_count(pipe, photo, codec, rate):
    ev = _events(with_metrics(pipe.run(photo, RunSettings(codec=codec, rate=rate, steps=5, seed=0))))
    assert isinstance(ev[0], Compressed)
    assert [type(e) for e in ev[1:]] == [Frame] * 6          # the base is frame 0, then one per step
    assert [e.k for e in ev[1:]] == [0, 1, 2, 3, 4, 5] and all(e.total == 5 for e in ev[1:])
    assert [e.t for e in ev[1:]] == [None, 40, 30, 20, 10, 0]
    comp = ev[0]
    assert comp.bpp == pytest.approx(len(comp.bitstream) * 8 / (96 * 72))
    assert torch.equal(ev[1].image, comp.base) and all(e.psnr is not None for e in ev[1:])


def test_stop_early_and_zero_steps(pipe, photo):
    ev = _events(with_metrics(pipe.run(photo, RunSettings(codec="jpeg", rate=10, steps=6, stop=2))))
    assert [type(e) for e in ev] == [Compressed, Frame, Frame, Frame] and ev[-1].k == 2
    ev0 = _events(with_metrics(pipe.run(photo, RunSettings(codec="jpeg", rate=10, steps=0))))
    assert [type(e) for e in ev0] == [Compressed, Frame] and ev0[-1].k == 0
    assert torch.equal(ev0[-1].image, ev0[0].base)
    with pytest.raises(InputError):
        _events(with_metrics(pipe.run(photo, RunSettings(codec="jpeg", rate=10, steps=3, stop=4))))


def test_seeded_determinism(pipe, photo):
    a = _events(with_metrics(pipe.run(photo, RunSettings(codec="jpeg", rate=10, steps=3, seed=7))))[-1].image
    b = _events(with_metrics(pipe.run(photo, RunSettings(codec="jpeg", rate=10, steps=3, seed=7))))[-1].image
    c = _events(with_metrics(pipe.run(photo, RunSettings(codec="jpeg", rate=10, steps=3, seed=8))))[-1].image
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_stochastic_ddim_is_seeded_and_matches_on_the_receiver(pipe, photo):
    det = _events(with_metrics(pipe.run(photo, RunSettings(codec="jpeg", rate=10, steps=3, seed=7))))
    a = _events(with_metrics(pipe.run(photo, RunSettings(codec="jpeg", rate=10, steps=3, seed=7, eta=1.0))))
    b = _events(with_metrics(pipe.run_bitstream(a[0].bitstream, RunSettings(steps=3, seed=7, eta=1.0))))
    assert torch.equal(a[2].image, det[2].image)          # the first step sees no fresh noise yet
    assert not torch.equal(a[-1].image, det[-1].image)
    assert torch.equal(a[-1].image, b[-1].image)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(InputError, match="eta"):
            _events(with_metrics(pipe.run(photo, RunSettings(codec="jpeg", rate=10, steps=3, eta=bad))))


def test_receiver_side_has_no_psnr_and_matches_sender(pipe, photo):
    sent = _events(with_metrics(pipe.run(photo, RunSettings(codec="neural", rate=0.004, steps=3, seed=1))))
    got = _events(with_metrics(pipe.run_bitstream(sent[0].bitstream, RunSettings(steps=3, seed=1))))
    assert torch.equal(got[0].base, sent[0].base)       # exact decode of the file
    assert all(e.psnr is None for e in got[1:])
    assert torch.equal(got[-1].image, sent[-1].image)



def test_live_swd_per_step_with_the_original_and_none_without(pipe, photo):
    ev = _events(with_metrics(pipe.run(photo, RunSettings(codec="jpeg", rate=10, steps=3, seed=0)), swd=True))
    comp, frames = ev[0], ev[1:5]
    meter = LiveSWD(comp.original)               # the same setting, against the same original
    assert [e.swd for e in frames] == [meter(e.image) for e in frames]
    assert len({e.swd for e in frames}) == 4 and all(e.swd > 0 for e in frames)
    plain = _events(with_metrics(pipe.run(photo, RunSettings(codec="jpeg", rate=10, steps=3, seed=0))))                 # off by default
    assert all(e.swd is None for e in plain[1:])
    assert torch.equal(plain[-1].image, ev[-1].image)                              # measuring changes nothing
    got = _events(with_metrics(pipe.run_bitstream(comp.bitstream, RunSettings(steps=3, seed=0))))            # the receiver: no original
    assert all(e.swd is None for e in got[1:])
    again = _events(with_metrics([comp, *pipe.frames(comp, steps=3)], swd=True))   # any stream of a header and frames
    assert [e.swd for e in again[1:]] == [e.swd for e in frames]

def test_rate_dependent_thresholding(pipe, photo, monkeypatch):
    seen = []
    import dirac_demo.pipeline as pl
    real = pl.ddim_sample

    def spy(denoise, r, ts, schedule, clip, **kwargs):
        seen.append(clip)
        return real(denoise, r, ts, schedule, clip, **kwargs)

    monkeypatch.setattr(pl, "ddim_sample", spy)
    _events(with_metrics(pipe.run(photo, RunSettings(codec="neural", rate=0.0005, steps=1))))
    _events(with_metrics(pipe.run(photo, RunSettings(codec="neural", rate=0.012, steps=1))))
    _events(with_metrics(pipe.run(photo, RunSettings(codec="neural", rate=0.012, steps=1, threshold=False))))
    _events(with_metrics(pipe.run(photo, RunSettings(codec="jpeg", rate=10, steps=1))))
    _events(with_metrics(pipe.run(photo, RunSettings(codec="jpeg", rate=30, steps=1))))            # nearest in log space: QF 50
    _events(with_metrics(pipe.run(photo, RunSettings(codec="jpeg", rate=90, steps=1, threshold=False))))
    assert seen == [0.05, 0.2, 1.0, 0.25, 0.1, 1.0]


def test_tiling_blends_to_the_untiled_result(tiny_assets, monkeypatch):
    """With a local network, overlapping tiles blend back to exactly the whole-image output."""
    tiled = DiracPipeline.from_pretrained(str(tiny_assets), device="cpu", precision="fp32", tile=32,
                                          tile_overlap=8, tile_above=0)
    calls = []

    def local_net(net, r, t, xb, fcond=None):
        calls.append(r.shape[-2:])
        return 0.1 * xb + 0.01 * r * t

    monkeypatch.setattr(tiled, "call_net", local_net)
    r, xb = torch.randn(1, 3, 90, 110), torch.rand(1, 3, 90, 110)
    out = tiled._denoise(None, r, 5, xb)
    assert torch.allclose(out, 0.1 * xb + 0.05 * r, atol=1e-6)
    assert len(calls) > 4 and all(tuple(c) == (32, 32) for c in calls)


def test_large_image_runs_tiled(tiny_assets):
    tiled = DiracPipeline.from_pretrained(str(tiny_assets), device="cpu", precision="fp32", tile=64,
                                          tile_overlap=16, tile_above=0)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (150, 230, 3), dtype=np.uint8))
    ev = _events(with_metrics(tiled.run(img, RunSettings(codec="jpeg", rate=30, steps=2))))
    assert ev[-1].image.shape == (1, 3, 150, 230) and torch.isfinite(ev[-1].image).all()


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "CMYK", "I;16", "LA", "1"])
def test_input_modes(pipe, photo, mode):
    if mode == "I;16":
        arr = (np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
        img = Image.fromarray(arr, "I;16")
    else:
        img = photo.convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    comp = pipe.compress(_encode(img, fmt), "jpeg", 50)
    x = comp.original
    assert comp.base.shape == (1, 3, 72, 96) and x.shape == (1, 3, 72, 96)
    if mode == "I;16":   # 16-bit scaled to 8 bits, not clipped to white
        assert 0.05 < x.mean().item() < 0.95


def test_exif_orientation(pipe, photo):
    exif = Image.Exif()
    exif[0x0112] = 6     # rotate 90° clockwise on display
    comp = pipe.compress(_encode(photo, "JPEG", exif=exif, quality=95), "jpeg", 50)
    assert comp.original.shape == (1, 3, 96, 72)


def test_bad_inputs(pipe, photo):
    with pytest.raises(InputError):
        pipe.compress(b"", "jpeg", 10)
    with pytest.raises(InputError):
        pipe.compress(b"GIF89a garbage", "jpeg", 10)
    with pytest.raises(InputError):
        pipe.compress(_encode(photo, "PNG")[:200], "jpeg", 10)
    with pytest.raises(InputError):
        pipe.compress(photo, "webp", 10)
    with pytest.raises(InputError):
        pipe.compress(photo.resize((8, 8)), "jpeg", 10)
    frames = [photo, photo.rotate(90)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(InputError, match="Animated"):
        pipe.compress(gif.getvalue(), "jpeg", 10)


def test_huge_image_error_or_explicit_downscale(tiny_assets):
    small_limit = DiracPipeline.from_pretrained(str(tiny_assets), device="cpu", precision="fp32",
                                                max_pixels=64 * 64)
    img = Image.new("RGB", (200, 100), (10, 20, 30))
    with pytest.raises(TooLargeError, match="200x100 .* over the 0.0 MP limit; downscale it first") as refusal:
        small_limit.compress(img, "jpeg", 10)
    assert str(pickle.loads(pickle.dumps(refusal.value))) == str(refusal.value)   # crosses processes (ZeroGPU)
    assert str(refusal.value.advise("or else")).endswith("; or else.")
    comp = small_limit.compress(img, "jpeg", 10, downscale=True)
    assert comp.original.shape[-1] * comp.original.shape[-2] <= 64 * 64
    assert comp.source_size == (200, 100) and (comp.encoded.width, comp.encoded.height) == (90, 45)
    assert small_limit.compress(img.resize((60, 30)), "jpeg", 10, downscale=True).source_size is None


def test_decompression_bomb_header(pipe):
    # a PNG header claiming 20000 x 20000 pixels, without the data
    import struct
    import zlib
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    with pytest.raises(InputError):
        pipe.compress(png, "jpeg", 10)


def test_missing_model_is_clear(photo):
    bare = DiracPipeline(device="cpu")
    ev = _events(with_metrics(bare.run(photo, RunSettings(codec="jpeg", rate=10, steps=0))))   # the base codec alone works
    assert isinstance(ev[-1], Frame) and ev[-1].k == 0
    with pytest.raises(WeightsError, match="No trained DIRAC model"):
        _events(with_metrics(bare.run(photo, RunSettings(codec="jpeg", rate=10, steps=2))))
    with pytest.raises(WeightsError, match="neural codec"):
        bare.compress(photo, "neural", 0.001)


def test_bitstream_declaring_huge_image(pipe):
    enc = codecs.Encoded(codec="neural", width=60000, height=60000, chunks=[b"a", b"b"],
                            lmbda=0.0016, scale_q=1024)
    with pytest.raises(BitstreamError, match="limit"):
        pipe.decode(codecs.pack(enc))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_full_decode(pipe, photo, data):
    """Mutated bitstreams through the whole receiver: a valid image or a BitstreamError, nothing else."""
    codec = data.draw(st.sampled_from(["jpeg", "neural"]))
    good = pipe.compress(photo, codec, 10 if codec == "jpeg" else 0.002).bitstream
    body = bytearray(good[:-4])
    for _ in range(data.draw(st.integers(1, 3))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    import struct
    import zlib
    mutated = bytes(body) + struct.pack(">I", zlib.crc32(bytes(body)) & 0xFFFFFFFF)
    try:
        comp = pipe.decode(mutated)
    except BitstreamError:
        return
    assert comp.base.shape[-2:] == (comp.encoded.height, comp.encoded.width)
    assert torch.isfinite(comp.base).all()


def test_cpu_bf16_runs_the_network_in_bf16_and_matches_fp32(tiny_assets, photo):
    """precision='bf16' on CPU casts the network's weights (no autocast); results stay close to fp32."""
    ref = DiracPipeline.from_pretrained(str(tiny_assets), device="cpu", precision="fp32")
    bf = DiracPipeline.from_pretrained(str(tiny_assets), device="cpu", precision="bf16")
    assert bf.cast_net and not ref.cast_net
    assert next(bf.dirac["jpeg"].net.parameters()).dtype == torch.bfloat16
    assert next(ref.dirac["jpeg"].net.parameters()).dtype == torch.float32
    a = _events(with_metrics(ref.run(photo, RunSettings(codec="jpeg", rate=10, steps=4, seed=0))))
    b = _events(with_metrics(bf.run(photo, RunSettings(codec="jpeg", rate=10, steps=4, seed=0))))
    assert b[-1].image.dtype == torch.float32
    for ea, eb in zip(a[1:5], b[1:5]):
        assert abs(ea.psnr - eb.psnr) < 0.1
    assert (a[-1].image - b[-1].image).abs().max() < 0.03


def test_model_spacing_sets_the_sampled_timesteps(tiny_assets, tmp_path, photo):
    """A model JSON's "sampler" entry moves the late-start steps; the paper's stays the default."""
    import shutil

    from dirac_demo.train import export
    from dirac_demo.diffusion.schedule import Spacing
    shutil.copytree(tiny_assets, tmp_path / "a")
    assert export.main(["sampler", "--out", str(tmp_path / "a" / "dirac_jpeg"), "--start-scale", "1.5",
                        "--power", "2"]) == 0
    own = DiracPipeline.from_pretrained(str(tmp_path / "a"), device="cpu", precision="fp32")
    paper = DiracPipeline.from_pretrained(str(tiny_assets), device="cpu", precision="fp32")

    def ts(p, codec):
        rate = 10 if codec == "jpeg" else 0.004
        return [e.t for e in with_metrics(p.run(photo, RunSettings(codec=codec, rate=rate, steps=20))) if isinstance(e, Frame) and e.k]

    assert ts(own, "jpeg") == list(Spacing(1.5, 2.0).timesteps(20)) and ts(own, "jpeg")[0] == 285
    assert ts(paper, "jpeg") == list(range(190, -1, -10))
    assert ts(own, "neural") == list(range(190, -1, -10))              # only the JPEG model changed
    comp = own.compress(photo, "jpeg", 10)
    walk = lambda sp: [f.t for f in own.frames(comp, 5, spacing=sp)][1:]  # noqa: E731
    assert walk(None) == [60, 34, 15, 4, 0] and walk(Spacing()) == [40, 30, 20, 10, 0]
    # receiver side uses the same model spacing, so sender and receiver agree bit for bit
    sent = _events(with_metrics(own.run(photo, RunSettings(codec="jpeg", rate=10, steps=4, seed=3))))
    got = _events(with_metrics(own.run_bitstream(sent[0].bitstream, RunSettings(steps=4, seed=3))))
    assert torch.equal(got[-1].image, sent[-1].image)


def test_neural_post_filter_shows_the_filtered_base_and_conditions_dirac_before_it(tiny_assets, tmp_path, photo):
    """With a post-filter, the base shown is the filtered image while DIRAC starts from g_s's
    output (what codec+DIRAC was trained on), on the sender's and on the receiver's side alike."""
    import shutil

    from dirac_demo.codecs.neural import CodecConfig, NeuralCodec
    from dirac_demo.weights import export_codec, load_codec
    shutil.copytree(tiny_assets, tmp_path / "a")
    plain = load_codec(tiny_assets / "codec")
    filtered = NeuralCodec(CodecConfig(**{**plain.config.to_dict(), "post_channels": 4, "post_blocks": 1}))
    filtered.load_state_dict(plain.state_dict(), strict=False)
    torch.manual_seed(0)
    torch.nn.init.normal_(filtered.post.tail.weight, std=0.05)
    export_codec(filtered, tmp_path / "a" / "codec", {"note": "tiny random test fixture"})
    with_pf = DiracPipeline.from_pretrained(str(tmp_path / "a"), device="cpu", precision="fp32")
    without = DiracPipeline.from_pretrained(str(tiny_assets), device="cpu", precision="fp32")
    sent = _events(with_metrics(with_pf.run(photo, RunSettings(codec="neural", rate=0.0016, steps=3, seed=1))))
    ref = _events(with_metrics(without.run(photo, RunSettings(codec="neural", rate=0.0016, steps=3, seed=1))))
    assert sent[0].bitstream[:6] == ref[0].bitstream[:6] and not torch.equal(sent[0].base, ref[0].base)
    assert torch.equal(sent[0].cond, ref[0].base)                                # g_s's output
    for a, b in zip(sent[2:], ref[2:]):                                          # DIRAC from the same start
        assert torch.allclose(a.image, b.image, atol=1e-6)
    got = _events(with_metrics(with_pf.run_bitstream(sent[0].bitstream, RunSettings(steps=3, seed=1))))
    assert torch.equal(got[0].base, sent[0].base) and torch.equal(got[-1].image, sent[-1].image)


# ---- a plain JPEG file is a bitstream ------------------------------------------------------
def test_plain_jpeg_decodes_exactly_as_the_drc_holding_it(pipe, photo):
    from dirac_demo.codecs import Encoded
    data = _encode(photo, "JPEG", quality=23)
    plain = _events(with_metrics(pipe.run_bitstream(data, RunSettings(steps=3, seed=4))))
    drc = codecs.pack(Encoded(codec="jpeg", width=96, height=72, chunks=[data], quality=23))
    wrapped = _events(with_metrics(pipe.run_bitstream(drc, RunSettings(steps=3, seed=4))))
    assert plain[0].encoded.quality == 23 and plain[0].nbytes == len(data)      # bpp from the file itself
    assert plain[0].encoded.file.quality_read == "exact"
    for a, b in zip(plain[:-1], wrapped[:-1]):
        x, y = (a.base, b.base) if isinstance(a, Compressed) else (a.image, b.image)
        assert torch.equal(x, y)


@pytest.mark.parametrize("mode,save", [("L", {}), ("RGB", {"progressive": True, "subsampling": 0}),
                                       ("RGB", {"subsampling": 1}), ("CMYK", {})])
def test_plain_jpeg_modes_and_scans(pipe, photo, mode, save):
    data = _encode(photo.convert(mode), "JPEG", quality=40, **save)
    ev = _events(with_metrics(pipe.run_bitstream(data, RunSettings(steps=1))))
    assert ev[0].base.shape == (1, 3, 72, 96) and ev[0].encoded.quality == 40


def test_plain_jpeg_exif_orientation_is_applied(pipe, photo):
    exif = Image.Exif()
    exif[0x0112] = 6                                   # rotate 90° clockwise on display
    data = _encode(photo, "JPEG", quality=60, exif=exif)
    comp = pipe.decode(data)
    shown = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    assert (comp.encoded.width, comp.encoded.height) == (72, 96) == shown.size
    assert torch.equal(comp.base, pil_to_tensor(shown.convert("RGB")))


def test_truncated_or_foreign_jpeg_is_one_bitstream_error(pipe, photo):
    data = _encode(photo, "JPEG", quality=60)
    with pytest.raises(BitstreamError):
        pipe.decode(data[: len(data) // 2])
    with pytest.raises(BitstreamError):
        pipe.decode(b"\xff\xd8\xff" + b"\0" * 40)
