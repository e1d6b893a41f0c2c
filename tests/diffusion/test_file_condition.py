"""The file-conditioning vector of a JPEG file, and the network option that reads it."""
import io
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from dirac_demo.diffusion.file_condition import FILE_COND_DIM, jpeg_condition
from dirac_demo.diffusion.unet import ResidualUNet, UNetConfig
from dirac_demo.errors import BitstreamError
from dirac_demo.weights import load_dirac

SMALL = UNetConfig(channels=[16, 32], blocks=[1, 2], emb_dim=32, groups=4)


def _jpeg(quality: int | None, subsampling: int = 2, mode: str = "RGB", **kw) -> bytes:
    """A small noise image as a JPEG file (``quality`` None: the tables given as ``qtables``)."""
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)).convert(mode)
    if quality is not None:
        kw["quality"] = quality
    if mode != "L":
        kw["subsampling"] = subsampling
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **kw)
    return buf.getvalue()


def test_ijg_tables_read_as_their_log_scale():
    """Annex K at quality 50 reads 0; unclamped IJG tables read ln(scale / 100), luma and chroma."""
    assert torch.equal(jpeg_condition(_jpeg(50))[:2], torch.zeros(2))
    for q in (25, 40, 75, 90):
        scale = 5000 / q if q < 50 else 200 - 2 * q
        assert jpeg_condition(_jpeg(q))[:2].tolist() == pytest.approx([math.log(scale / 100)] * 2, abs=0.03)
    luma = [float(jpeg_condition(_jpeg(q))[0]) for q in (1, 5, 10, 20, 30, 50, 70, 90, 100)]
    assert luma == sorted(luma, reverse=True) and len(set(luma)) == len(luma)   # coarser tables, larger


def test_subsampling_and_grayscale_are_one_hot():
    for subsampling, slot in ((0, 2), (1, 3), (2, 4)):
        vec = jpeg_condition(_jpeg(30, subsampling))
        assert vec.shape == (FILE_COND_DIM,) and vec.dtype == torch.float32
        assert vec[2:].tolist() == [float(i == slot) for i in range(2, 6)]
    gray = jpeg_condition(_jpeg(30, mode="L"))
    assert gray[1:].tolist() == [0, 0, 0, 0, 1] and gray[0] == jpeg_condition(_jpeg(30))[0]


def test_other_writers_tables_read_by_level():
    """Custom tables (flat ones, mozjpeg's) read as their level against Annex K; only the header is
    read, so two files with the same tables and layout read alike whatever their pixels."""
    from dirac_demo.train.data import MOZJPEG_TABLE
    flat = jpeg_condition(_jpeg(None, qtables=[[16] * 64, [32] * 64]))
    double = jpeg_condition(_jpeg(None, qtables=[[32] * 64, [64] * 64]))
    assert (double[:2] - flat[:2]).tolist() == pytest.approx([math.log(2)] * 2, abs=1e-6)
    moz = jpeg_condition(_jpeg(None, qtables=[list(MOZJPEG_TABLE)] * 2))
    assert -0.5 < float(moz[0]) < 0.5 and moz[4] == 1
    buf = io.BytesIO()
    Image.new("RGB", (24, 40), "white").save(buf, format="JPEG", quality=30)
    assert torch.equal(jpeg_condition(buf.getvalue()), jpeg_condition(_jpeg(30)))


def test_not_a_jpeg_is_one_clear_error():
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    for data in (b"", b"\xff\xd8\xff\xe0 truncated", png.getvalue()):
        with pytest.raises(BitstreamError):
            jpeg_condition(data)


def test_unconditioned_config_keeps_its_json_and_its_weights():
    """The shipped JSON has no file_cond key: it loads as file_cond 0 and writes back without one."""
    model = load_dirac("assets/dirac_jpeg")
    assert model.net.config.file_cond == 0 and model.net.file_cond is None
    assert "file_cond" not in model.net.config.to_dict()
    assert replace(model.net.config, file_cond=6).to_dict()["file_cond"] == 6
    assert not any(k.startswith("file_cond") for k in model.net.state_dict())


# The shipped dirac_jpeg on a fixed input (seed 0; r_t, x̃ of 1x3x32x32; t = 120), fp32: these
# values were computed by the network before it had a file-conditioning option
SHIPPED_OUTPUT = {"sum": -9.004627227783203, "abs_sum": 632.1958618164062,
                  "first": [-0.46148011088371277, -0.20694388449192047, -0.04823252558708191]}


def test_shipped_weights_give_the_outputs_they_always_gave():
    net = load_dirac("assets/dirac_jpeg").net
    g = torch.Generator().manual_seed(0)
    r, xb = torch.randn(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    with torch.no_grad():
        out = net(r, torch.tensor([120]), xb)
    assert float(out.sum()) == pytest.approx(SHIPPED_OUTPUT["sum"], rel=1e-4, abs=1e-4)
    assert float(out.abs().sum()) == pytest.approx(SHIPPED_OUTPUT["abs_sum"], rel=1e-5)
    assert out.flatten()[:3].tolist() == pytest.approx(SHIPPED_OUTPUT["first"], abs=1e-5)


def test_conditioned_network_from_unconditioned_weights_is_the_same_function():
    """Loaded with dirac_jpeg's weights, the conditioned network's new layers start at zero: its
    outputs are bit-identical to dirac_jpeg's for any vector, batch of one or more, fp32 or bf16."""
    net = load_dirac("assets/dirac_jpeg").net
    cond_net = ResidualUNet(replace(net.config, file_cond=FILE_COND_DIM)).eval()
    missing, unexpected = cond_net.load_state_dict(net.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("file_cond.") for k in missing)
    g = torch.Generator().manual_seed(1)
    r, xb = torch.randn(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    t, cond = torch.tensor([30, 170]), torch.randn(2, FILE_COND_DIM, generator=g)
    with torch.no_grad():
        assert torch.equal(cond_net(r, t, xb, cond), net(r, t, xb))
        assert torch.equal(cond_net(r[:1], t[:1], xb[:1], cond[0]), net(r[:1], t[:1], xb[:1]))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(cond_net(r, t, xb, cond), net(r, t, xb))


def _trained_like(config: UNetConfig) -> ResidualUNet:
    torch.manual_seed(0)
    net = ResidualUNet(config).eval()
    for p in net.parameters():                      # zero-initialised layers would hide differences
        p.data.normal_(0, 0.2)
    return net


def test_the_vector_changes_the_output_per_image():
    net = _trained_like(replace(SMALL, file_cond=FILE_COND_DIM))
    g = torch.Generator().manual_seed(2)
    r, xb = torch.randn(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    t = torch.tensor([50, 50])
    a, b = jpeg_condition(_jpeg(10)), jpeg_condition(_jpeg(80, 0))
    with torch.no_grad():
        both = net(r, t, xb, torch.stack([a, b]))
        assert not torch.allclose(net(r, t, xb, a), net(r, t, xb, b))
        assert torch.allclose(both[:1], net(r[:1], t[:1], xb[:1], a), atol=1e-5)     # one vector per row
        assert torch.allclose(both[1:], net(r[1:], t[1:], xb[1:], b[None]), atol=1e-5)


def test_inference_path_equals_the_training_path_with_a_vector():
    net = _trained_like(replace(SMALL, file_cond=FILE_COND_DIM))
    r, xb = torch.randn(1, 3, 32, 48), torch.rand(1, 3, 32, 48) * 2 - 1
    cond = jpeg_condition(_jpeg(20, 1))
    with torch.enable_grad():
        plain = net(r, torch.tensor([137]), xb, cond)
    with torch.no_grad():
        fast = net(r, torch.tensor([137]), xb, cond)
    assert torch.allclose(fast, plain, rtol=1e-4, atol=1e-4)


def test_a_missing_or_unexpected_vector_is_refused():
    cond_net = ResidualUNet(replace(SMALL, file_cond=FILE_COND_DIM))
    plain_net = ResidualUNet(SMALL)
    r, xb, t = torch.zeros(2, 3, 16, 16), torch.zeros(2, 3, 16, 16), torch.tensor([5, 5])
    with pytest.raises(ValueError, match="file-conditioned"):
        cond_net(r, t, xb)
    with pytest.raises(ValueError, match="takes no file-conditioning"):
        plain_net(r, t, xb, torch.zeros(FILE_COND_DIM))
    for bad in (torch.zeros(FILE_COND_DIM + 1), torch.zeros(3, FILE_COND_DIM), torch.zeros(1, 2, FILE_COND_DIM)):
        with pytest.raises(ValueError, match="cond must have shape"):
            cond_net(r, t, xb, bad)


def test_a_drc_and_a_plain_jpeg_give_the_receiver_the_same_vector():
    """The vector needs no field of its own: a .drc keeps the JPEG file as its payload, and a plain
    JPEG file is that payload; a receiver reading either gets the sender's vector."""
    from dirac_demo.codecs import get, pack, read
    x = torch.rand(1, 3, 24, 40, generator=torch.Generator().manual_seed(3))
    enc = get("jpeg").compress(x, 15)
    sent = jpeg_condition(enc.chunks[0])
    assert sent[4] == 1 and sent[0] > 0.9                      # Pillow's 4:2:0, coarser than Annex K
    assert torch.equal(jpeg_condition(read(pack(enc)).chunks[0]), sent)
    assert torch.equal(jpeg_condition(read(enc.chunks[0]).chunks[0]), sent)


def test_the_pipeline_reads_the_files_vector_for_a_conditioned_model(pipe, photo, tmp_path):
    """A file-conditioned JPEG model runs in the pipeline (whole image and tile by tile), fed the
    vector of the file it enhances; the unconditioned models are fed none."""
    from dirac_demo import DiracPipeline
    from dirac_demo.large import enhance_tiles, plan_tiles
    from dirac_demo.weights import DiracModel
    jpeg = pipe.dirac["jpeg"]
    net = _trained_like(replace(jpeg.net.config, file_cond=FILE_COND_DIM))     # parameters that want grads
    for p in net.out.parameters():
        p.data.mul_(0.01)                           # keep the residual small, as a trained one is
    conditioned = DiracPipeline(pipe.codecs, {**pipe.dirac, "jpeg": DiracModel(net, jpeg.thresholds, jpeg.meta)},
                                device="cpu", precision="fp32")
    data = {q: io.BytesIO() for q in (15, 60)}
    for q, buf in data.items():
        photo.save(buf, format="JPEG", quality=q)
    comps = {q: conditioned.decode(buf.getvalue()) for q, buf in data.items()}
    assert torch.equal(conditioned.file_condition(comps[15]), jpeg_condition(data[15].getvalue()))
    assert pipe.file_condition(pipe.decode(data[15].getvalue())) is None
    swapped = {q: replace(comps[q], base=comps[15].base) for q in comps}    # same pixels, other header
    last = {q: list(conditioned.frames(c, 3))[-1].image for q, c in swapped.items()}
    assert not torch.equal(last[15], last[60])
    assert not last[15].requires_grad                 # sampling builds no autograd graph
    tiles = enhance_tiles(conditioned, swapped[60], 3, 3, plan=plan_tiles(72, 96, 64))
    whole = (last[60][0].permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(tiles[3].astype(float) - whole).mean() < 8
