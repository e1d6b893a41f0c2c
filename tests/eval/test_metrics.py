import numpy as np
import pytest
import torch

from dirac_demo import swd as S
from dirac_demo.eval import metrics as M


# ---- SWD ----------------------------------------------------------------------------------
def test_metrics_re_exports_the_swd():
    assert M.swd is S.swd and M.SlicedWasserstein is S.SlicedWasserstein


# ---- FID / KID / LPIPS --------------------------------------------------------------------
@pytest.mark.parametrize("h,w,count", [(512, 768, 8), (256, 256, 1), (383, 383, 1), (384, 384, 2),
                                       (200, 300, 0), (768, 512, 8)])
def test_half_overlapping_crops_count(h, w, count):
    crops = M.half_overlapping_crops(torch.rand(1, 3, h, w))
    assert crops.shape == (count, 3, 256, 256)


def test_half_overlapping_crops_content():
    x = torch.rand(2, 3, 512, 768)
    crops = M.half_overlapping_crops(x)
    assert crops.shape[0] == 16
    assert torch.equal(crops[0], x[0, :, :256, :256])
    assert torch.equal(crops[1], x[0, :, :256, 256:512])      # row-major grid, image 0 first
    assert torch.equal(crops[12], x[0, :, 128:384, 128:384])  # then the shifted grid


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(400, 5))
    assert abs(M.frechet_distance(f, f)) < 1e-6
    assert M.frechet_distance(f, f + 2.0) == pytest.approx(5 * 4.0, rel=1e-6)
    # scaling the centred features by 2: Tr(Σ) + 4 Tr(Σ) − 2·2 Tr(Σ) = Tr(Σ)
    c = f - f.mean(0)
    assert M.frechet_distance(c, 2 * c) == pytest.approx(np.trace(np.cov(c, rowvar=False)), rel=1e-5)


def test_kid_near_zero_for_same_distribution_and_positive_for_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    same, _ = M.kernel_inception_distance(a, b, subsets=20, subset_size=100)
    shifted, std = M.kernel_inception_distance(a, b + 1.0, subsets=20, subset_size=100)
    assert abs(same) < 0.05 * shifted and shifted > 0 and std >= 0


def test_weight_metrics_unavailable_without_cached_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model, why = M.load_lpips()
    assert model is None and "alexnet-owt-7be5be79.pth" in why and "not found" in why
    model, why = M.load_inception()
    assert model is None and why


def test_lpips_loads_cached_alexnet_without_download(tmp_path, monkeypatch):
    """The real loading path, on a random AlexNet written where torchvision caches its weights."""
    tv = pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    M.hub_checkpoint(M.ALEXNET_FILE).parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(tv.models.alexnet(weights=None).state_dict(), M.hub_checkpoint(M.ALEXNET_FILE))
    model, why = M.load_lpips()
    assert why is None
    x = torch.rand(1, 3, 64, 64)
    assert M.lpips_distance(model, x, x) == pytest.approx(0.0, abs=1e-6)
    assert M.lpips_distance(model, x, torch.rand(1, 3, 64, 64)) > 0


def test_inception_features_from_cached_weights(tmp_path, monkeypatch):
    """pytorch-fid's Inception built from a random state dict in the hub cache (no download)."""
    inc = pytest.importorskip("pytorch_fid.inception", reason="pytorch-fid is not installed")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    net = inc._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b, net.Mixed_5c = inc.FIDInceptionA(192, 32), inc.FIDInceptionA(256, 64)
    net.Mixed_5d = inc.FIDInceptionA(288, 64)
    net.Mixed_6b = inc.FIDInceptionC(768, 128)
    net.Mixed_6c, net.Mixed_6d = inc.FIDInceptionC(768, 160), inc.FIDInceptionC(768, 160)
    net.Mixed_6e = inc.FIDInceptionC(768, 192)
    net.Mixed_7b, net.Mixed_7c = inc.FIDInceptionE_1(1280), inc.FIDInceptionE_2(2048)
    M.hub_checkpoint(M.INCEPTION_FILE).parent.mkdir(parents=True)
    torch.save(net.state_dict(), M.hub_checkpoint(M.INCEPTION_FILE))
    model, why = M.load_inception()
    assert why is None
    feats = M.inception_features(model, torch.rand(2, 3, 96, 96))
    assert feats.shape == (2, 2048) and feats.dtype == torch.float64


def test_lpips_with_real_weights_if_cached():
    model, why = M.load_lpips()
    if model is None:
        pytest.skip(f"real LPIPS weights absent: {why}")
    x = torch.rand(1, 3, 64, 64)
    assert M.lpips_distance(model, x, x) < 1e-6 < M.lpips_distance(model, x, 1 - x)


# ---- Bjøntegaard ----------------------------------------------------------------------------
def test_bd_rate_closed_forms():
    rate, psnr = [0.1, 0.2, 0.4, 0.8], [28.0, 30.5, 33.0, 35.2]
    assert M.bd_rate(rate, psnr, rate, psnr) == pytest.approx(0.0, abs=1e-9)
    assert M.bd_rate(rate, psnr, [r / 2 for r in rate], psnr) == pytest.approx(-50.0, abs=1e-9)
    assert M.bd_rate(rate, psnr, [r * 2 for r in rate], psnr) == pytest.approx(100.0, abs=1e-9)
    # the order of the points does not matter
    assert M.bd_rate(rate[::-1], psnr[::-1], [r / 2 for r in rate], psnr) == pytest.approx(-50.0, abs=1e-9)


def test_bd_psnr_and_partial_overlap():
    rate, psnr = [0.1, 0.2, 0.4, 0.8], [28.0, 30.5, 33.0, 35.2]
    assert M.bd_psnr(rate, psnr, rate, [p + 1 for p in psnr]) == pytest.approx(1.0, abs=1e-9)
    # only the overlapping PSNR interval counts: on a log-linear curve (which PCHIP reproduces
    # exactly) a sub-range of the anchor's points gives 0 and a half-rate sub-range −50%
    psnr = [28.0, 30.0, 32.0, 34.0, 36.0]
    rate = [0.1 * 2 ** ((p - 28.0) / 3.0) for p in psnr]
    assert M.bd_rate(rate, psnr, rate[1:4], psnr[1:4]) == pytest.approx(0.0, abs=1e-9)
    assert M.bd_rate(rate, psnr, [r / 2 for r in rate[2:]], psnr[2:]) == pytest.approx(-50.0, abs=1e-9)
    with pytest.raises(ValueError):
        M.bd_rate(rate, psnr, rate, [p + 20 for p in psnr])
    with pytest.raises(ValueError):
        M.bd_rate([0.1], [30.0], rate, psnr)
