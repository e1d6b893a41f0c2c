"""The neural base codec: exact round trips, latent scaling, weights ids, the post-filter."""
import numpy as np
import pytest
import torch
from PIL import Image

from dirac_demo import codecs
from dirac_demo.codecs.neural import sample_lmbda
from dirac_demo.errors import BitstreamError, InputError
from dirac_demo.images import pil_to_tensor

from conftest import tiny_codec


@pytest.mark.parametrize("size", [(67, 45), (64, 64), (130, 70)])
def test_neural_roundtrip_exact_and_any_size(size):
    codec = tiny_codec()
    torch.manual_seed(3)
    x = torch.rand(1, 3, size[1], size[0])
    enc = codec.compress(x, 0.0016)
    data = codecs.pack(enc)
    a = codec.decompress(codecs.parse(data))["x_hat"]
    b = codec.decompress(codecs.parse(data))["x_hat"]
    assert a.shape == x.shape
    assert torch.equal(a, b)
    # the entropy-coded path equals hard quantisation without coding
    assert torch.allclose(a, codec.reconstruct(x, 0.0016), atol=1e-5)


def test_latent_scale_is_16bit_and_monotone():
    codec = tiny_codec()
    qs = [codec.scale_q(sample_lmbda(u)) for u in np.linspace(0, 1, 8)]
    assert all(1 <= q <= 65535 for q in qs)
    assert qs == sorted(qs, reverse=True)   # larger λ: coarser quantisation (smaller s)
    assert qs[0] > qs[-1]


def test_lambda_range_enforced():
    codec = tiny_codec()
    with pytest.raises(InputError):
        codec.compress(torch.rand(1, 3, 64, 64), 0.5)


def test_sample_lmbda_eq11():
    assert sample_lmbda(0.0) == pytest.approx(0.0004)
    assert sample_lmbda(1.0) == pytest.approx(0.016)
    assert sample_lmbda(0.5) == pytest.approx((0.0004 * 0.016) ** 0.5)


def test_neural_truncated_payload_is_bitstream_error():
    codec = tiny_codec()
    enc = codec.compress(torch.rand(1, 3, 64, 64), 0.0004)
    enc.chunks = [enc.chunks[0]]
    with pytest.raises(BitstreamError):
        codec.decompress(enc)


def test_file_from_other_codec_weights_is_refused(tmp_path):
    """Decoding with weights other than the encoder's would give a wrong image silently: refuse it."""
    from dirac_demo.weights import export_codec, load_codec
    codec = tiny_codec()
    export_codec(codec, tmp_path / "c", {})
    codec = load_codec(tmp_path / "c")        # (exports round parameters to fp16, so its own id)
    assert load_codec(tmp_path / "c").weights_id() == codec.weights_id() != 0   # stable across loads
    enc = codecs.parse(codecs.pack(codec.compress(torch.rand(1, 3, 64, 64), 0.0016)))
    assert enc.weights_id == codec.weights_id()
    other = tiny_codec(seed=1)
    with pytest.raises(BitstreamError, match="other neural-codec weights"):
        other.decompress(enc)
    enc.weights_id = 0                  # a version-1 file records no id: decoded as before, unchecked
    assert other.decompress(enc)["x_hat"].shape == (1, 3, 64, 64)


def test_weights_id_fingerprints_the_decoder_only():
    """The id names what decoding needs: another encoder keeps it, any decoder-side change moves it."""
    codec = tiny_codec()
    ref = codec.weights_id()
    with torch.no_grad():
        codec.g_a[0].weight.add_(0.01)
        codec.beta.add_(0.01)
        assert codec.weights_id() == ref
    for name in ("g_s.0.weight", "h_s.0.bias", "entropy_bottleneck.quantiles"):
        other = tiny_codec()
        with torch.no_grad():
            dict(other.named_parameters())[name].add_(0.01)
        assert other.weights_id() != ref, name


def test_file_with_the_older_all_parameter_id_still_decodes():
    """Files written before the id named the decoder only carry a fingerprint of every parameter."""
    codec, other = tiny_codec(), tiny_codec(seed=1)
    enc = codec.compress(torch.rand(1, 3, 64, 64), 0.0016)
    today = codec.decompress(enc)["x_hat"]
    enc.weights_id = codec.legacy_weights_id()
    assert enc.weights_id != codec.weights_id()
    assert torch.equal(codec.decompress(enc)["x_hat"], today)
    with pytest.raises(BitstreamError, match="other neural-codec weights"):
        other.decompress(enc)


def test_bf16_training_forward_keeps_entropy_model_in_fp32():
    """bf16 autocast covers only g_a/g_s: rate terms stay fp32 and match the fp32 pass closely."""
    codec = tiny_codec()
    torch.manual_seed(5)
    x = torch.rand(2, 3, 64, 64)
    ref = codec(x, 0.0016)
    out = codec(x, 0.0016, bf16=True)
    assert out["x_hat"].dtype == torch.float32
    for key in ("y", "z"):
        assert out["likelihoods"][key].dtype == torch.float32
    assert torch.isfinite(out["x_hat"]).all()
    assert (out["x_hat"] - ref["x_hat"]).abs().max() < 0.05
    bits = lambda o: sum(torch.log2(v).sum() for v in o["likelihoods"].values())  # noqa: E731
    assert abs(bits(out).item() / bits(ref).item() - 1) < 0.05
    # and it trains: gradients reach the analysis transform
    (out["x_hat"].square().mean() - bits(out) * 1e-6).backward()
    assert codec.g_a[0].weight.grad is not None and torch.isfinite(codec.g_a[0].weight.grad).all()


@pytest.mark.parametrize("lmbda", [0.0004, 0.0016])
def test_neural_file_decodes_with_other_conv_kernels(lmbda):
    """A file written on one machine must decode on another. Here the other machine is the same
    CPU with oneDNN off: different conv kernels, different float32 rounding. With h_s in float32
    a scale next to a CDF-index threshold flips and the rANS decoder derails (it did for
    the full kodim05); the float64 hyper-synthesis keeps the indexes identical."""
    from dirac_demo.weights import ASSETS, load_codec

    codec = load_codec(ASSETS / "codec")
    x = pil_to_tensor(Image.open(ASSETS / "examples" / "kodim05.png").convert("RGB"))
    enc = codec.compress(x, lmbda)
    with torch.backends.mkldnn.flags(enabled=True):
        a = codec.decompress(enc)["x_hat"]
    with torch.backends.mkldnn.flags(enabled=False):
        b = codec.decompress(enc)["x_hat"]
    assert torch.allclose(a, b, atol=1e-4)
    assert 10 * torch.log10(1 / ((a - x) ** 2).mean()) > 24


def test_post_filter_starts_as_identity_and_reads_lambda():
    """A new post-filter changes nothing (zero tail); any size works; once trained its output
    depends on λ_rate, which the receiver reads from the file."""
    from dirac_demo.codecs.post_filter import PostFilter
    torch.manual_seed(0)
    f = PostFilter(8, blocks=2, down=2)
    for h, w in ((31, 17), (64, 64), (1, 1)):
        x = torch.rand(2, 3, h, w)
        assert torch.equal(f(x, 0.0016), x)
    torch.nn.init.normal_(f.tail.weight, std=0.1)
    x = torch.rand(1, 3, 33, 20)
    a, b = f(x, 0.0004), f(x, 0.016)
    assert a.shape == x.shape and not torch.allclose(a, b)
    assert torch.allclose(f(x.expand(2, -1, -1, -1), torch.tensor([0.0004, 0.016])),
                          torch.cat([a, b]), atol=1e-6)                      # one λ per image in a batch
    with pytest.raises(ValueError):
        PostFilter(0)
