"""Widening the codec's latent: the same reconstructions and rates, then trainable new channels."""
import numpy as np
import pytest
import torch
from PIL import Image

from dirac_demo import export, train_codec
from dirac_demo.base_codec import CodecConfig, NeuralCodec
from dirac_demo.weights import load_codec
from dirac_demo.widen import widen_codec


def _trained_like(seed=0) -> NeuralCodec:
    """A small codec with non-trivial weights everywhere (a fresh one has zero biases)."""
    torch.manual_seed(seed)
    codec = NeuralCodec(CodecConfig(N=16, M=24))
    with torch.no_grad():
        for name, p in codec.named_parameters():
            if name.endswith("bias") and name.startswith(("g_", "h_")):
                p.normal_(0, 0.1)
    return codec.eval()


def test_widened_codec_computes_what_the_old_one_computes():
    old = _trained_like()
    new = widen_codec(old, 40).eval()
    assert new.config == CodecConfig(N=16, M=40)
    old.update(force=True)
    new.update(force=True)
    x = torch.rand(1, 3, 64, 128)
    with torch.no_grad():
        for lmbda in (0.0004, 0.016):
            a, b = old(x, lmbda), new(x, lmbda)
            # equal up to float summation order (a wider convolution blocks its sums differently)
            assert torch.allclose(a["x_hat"], b["x_hat"], atol=1e-6)
            ya, yb = a["likelihoods"]["y"], b["likelihoods"]["y"]
            assert torch.allclose(ya, yb[:, :24], atol=1e-6)
            assert float(-torch.log2(yb[:, 24:]).sum()) < 0.01 * float(-torch.log2(ya).sum()) + 0.5
            assert torch.equal(a["likelihoods"]["z"], b["likelihoods"]["z"])
            ea, eb = old.compress(x, lmbda), new.compress(x, lmbda)
            assert torch.allclose(old.decompress(ea), new.decompress(eb), atol=1e-6)
            assert len(eb.chunks[0]) <= len(ea.chunks[0]) + 8 and eb.chunks[1] == ea.chunks[1]


def test_widened_channels_receive_gradients():
    """Both sides of a new channel at zero would never move: one is seeded small and random.

    (The new channels' scales get no gradient yet: at the scale's lower bound with every latent
    at its mean, a smaller scale is always cheaper; they move once g_a's new outputs do.)"""
    new = widen_codec(_trained_like(), 40).train()
    x = torch.rand(2, 3, 64, 64)
    out = new(x, 0.0016)
    mse = torch.mean((out["x_hat"] - x) ** 2)
    bits = sum(-torch.log2(v).sum() for v in out["likelihoods"].values())
    (mse + 0.0016 * bits / x[0, 0].numel()).backward()
    assert new.g_a[6].weight.grad[24:].abs().sum() > 0          # the encoder's new outputs
    assert new.h_s[4].weight.grad[64:].abs().sum() > 0          # the new channels' means
    assert new.h_s[4].weight.grad[:, 36:].abs().sum() > 0       # the new hidden units' outputs


def test_widen_refuses_to_narrow():
    with pytest.raises(ValueError, match="narrow"):
        widen_codec(_trained_like(), 16)


def test_train_codec_widens_its_init_and_records_it(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (160, 200, 3), dtype=np.uint8)).save(data / f"i{i}.png")
    common = ["--data", str(data), "--crop", "64", "--batch", "2", "--val-every", "100", "--bf16", "off"]
    assert train_codec.main([*common, "--out", str(tmp_path / "a"), "--N", "8", "--M", "8", "--steps", "2"]) == 0
    export.main(["codec", "--ckpt", str(tmp_path / "a" / "checkpoint.pt"), "--out", str(tmp_path / "c")])
    for bad in (["--M", "4"], ["--N", "16", "--M", "12"], ["--M", "12", "--train", "encoder"],
                ["--new-channels", "live"]):
        with pytest.raises(SystemExit):
            train_codec.main([*common, "--out", str(tmp_path / "bad"), "--init", str(tmp_path / "c"),
                              "--steps", "3", *bad])
    assert train_codec.main([*common, "--out", str(tmp_path / "w"), "--init", str(tmp_path / "c"),
                             "--M", "12", "--new-channel-ramp", "4", "--steps", "3"]) == 0
    ck = torch.load(tmp_path / "w" / "checkpoint.pt", weights_only=False)
    assert ck["config"] == {"N": 8, "M": 12, "post_channels": 0, "post_blocks": 4, "post_down": 2} and ck["step"] == 3
    assert ck["meta"]["segments"][-1]["hardware"].endswith("latent widened M 8 -> 12")
    assert ck["meta"]["widened"] == {"from_M": 8, "at_step": 2, "ramp": 4, "new_channels": "silent"}
    # a resume keeps the ramp where the widening started it (not at the resumed step)
    assert train_codec.main([*common, "--out", str(tmp_path / "w"), "--steps", "4"]) == 0
    ck = torch.load(tmp_path / "w" / "checkpoint.pt", weights_only=False)
    assert ck["step"] == 4 and ck["meta"]["widened"] == {"from_M": 8, "at_step": 2, "ramp": 4, "new_channels": "silent"}
    export.main(["codec", "--ckpt", str(tmp_path / "w" / "checkpoint.pt"), "--out", str(tmp_path / "cw")])
    wide = load_codec(tmp_path / "cw")
    x = torch.rand(1, 3, 64, 64)
    assert wide.decompress(wide.compress(x, 0.0016)).shape == x.shape
    assert train_codec.main([*common, "--out", str(tmp_path / "live"), "--init", str(tmp_path / "c"),
                             "--M", "12", "--new-channels", "live", "--steps", "3"]) == 0
    ck = torch.load(tmp_path / "live" / "checkpoint.pt", weights_only=False)
    assert ck["meta"]["widened"]["new_channels"] == "live"
    assert ck["meta"]["segments"][-1]["hardware"].endswith("M 8 -> 12 (live new channels)")


def test_live_new_channels_keep_the_reconstructions_and_open():
    """Live: random analysis weights at LIVE_STD on the probe, read by zero synthesis weights."""
    from dirac_demo.widen import LIVE_STD
    old = _trained_like()
    probe = torch.rand(4, 3, 64, 64)
    new = widen_codec(old, 40, probe=probe).eval()
    with torch.no_grad():
        assert float(new.g_a(probe)[:, 24:].std()) == pytest.approx(LIVE_STD, rel=1e-4)
        x = torch.rand(1, 3, 64, 128)
        a, b = old(x, 0.0004), new(x, 0.0004)
        assert torch.allclose(a["x_hat"], b["x_hat"], atol=1e-6)
        assert torch.equal(a["likelihoods"]["z"], b["likelihoods"]["z"])
        assert torch.allclose(a["likelihoods"]["y"], b["likelihoods"]["y"][:, :24], atol=1e-6)
        new_bits = float(-torch.log2(b["likelihoods"]["y"][:, 24:]).sum())
        assert new_bits > 0.05 * float(-torch.log2(a["likelihoods"]["y"]).sum())   # they cost bits now
    new.train()
    out = new(probe, 0.0004)
    (torch.mean((out["x_hat"] - probe) ** 2)).backward()
    assert new.g_s[0].weight.grad[24:].abs().sum() > 0         # the decoder starts reading them


def test_new_channels_rate_is_ramped_into_the_loss():
    widened = {"from_M": 24, "at_step": 100, "ramp": 50}
    assert [train_codec.new_channel_weight(widened, s) for s in (100, 125, 150, 400)] == [0.0, 0.5, 1.0, 1.0]
    assert train_codec.new_channel_weight(None, 0) == 1.0
    assert train_codec.new_channel_weight(dict(widened, ramp=0), 100) == 1.0
    new = widen_codec(_trained_like(), 40).train()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        out = new(x, 0.0016)
    _, bpp = train_codec.rd_terms(out, x)
    y_bits = -torch.log2(out["likelihoods"]["y"])
    assert float(train_codec.new_channel_bpp(out, x, 24)) == pytest.approx(float(y_bits[:, 24:].sum()) / 64 ** 2)
    assert float(train_codec.new_channel_bpp(out, x, 0)) < float(bpp)        # z's bits are not in it
