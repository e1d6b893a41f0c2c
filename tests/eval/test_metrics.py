import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F

from dirac_demo.eval import metrics as M
from dirac_demo.eval import swd as S

# ---- SWD ----------------------------------------------------------------------------------
_G = np.float32([[1, 4, 6, 4, 1], [4, 16, 24, 16, 4], [6, 24, 36, 24, 6],
                 [4, 16, 24, 16, 4], [1, 4, 6, 4, 1]]) / 256.0


def _karras_pyramid(x: np.ndarray, levels: int) -> list[np.ndarray]:
    """The reference: progressive_growing_of_gans' scipy pyr_down / pyr_up / Laplacian pyramid."""
    def down(m):
        return scipy.ndimage.convolve(m, _G[None, None], mode="mirror")[:, :, ::2, ::2]

    def up(m):
        r = np.zeros((m.shape[0], m.shape[1], m.shape[2] * 2, m.shape[3] * 2), m.dtype)
        r[:, :, ::2, ::2] = m
        return scipy.ndimage.convolve(r, _G[None, None] * 4.0, mode="mirror")
    pyr = [np.array(x, dtype=np.float32)]
    for _ in range(1, levels):
        pyr.append(down(pyr[-1]))
        pyr[-2] -= up(pyr[-1])
    return pyr


def _textures(n: int, seed: int, size=(48, 64)) -> list[torch.Tensor]:
    """Smooth random fields with sharp-edged rectangles: a small set of structured images."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = F.interpolate(torch.rand(1, 3, size[0] // 8, size[1] // 8, generator=g), size=size,
                          mode="bilinear", align_corners=False)
        for _ in range(12):
            y0, x0 = (int(v) for v in torch.randint(0, size[0] - 8, (2,), generator=g))
            hh, ww = (int(v) for v in torch.randint(3, 16, (2,), generator=g))
            x[..., y0:y0 + hh, x0:x0 + ww] = torch.rand(1, 3, 1, 1, generator=g)
        out.append(x)
    return out


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = int(3 * sigma) + 1
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma ** 2))
    k = (k / k.sum())
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)


def test_pyramid_matches_karras_reference():
    x = np.random.default_rng(0).integers(0, 256, (1, 3, 64, 96)).astype(np.float32)
    ours = S.laplacian_pyramid(torch.from_numpy(x), 3)
    ref = _karras_pyramid(x, 3)
    assert [tuple(p.shape) for p in ours] == [(1, 3, 64, 96), (1, 3, 32, 48), (1, 3, 16, 24)]
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a.numpy(), b, atol=1e-3)


def test_pyramid_is_invertible_for_odd_sizes():
    x = torch.rand(1, 3, 45, 71) * 255
    pyr = S.laplacian_pyramid(x, 3)
    rec = pyr[-1]
    for lev in pyr[-2::-1]:
        rec = S.pyr_up(rec, lev.shape[-2:]) + lev
    assert torch.allclose(rec, x, atol=1e-3)


def test_num_levels():
    assert S.num_levels(512) == 6 and S.num_levels(16) == 1 and S.num_levels(15) == 0
    assert S.num_levels(48) == 2


def test_patches_are_7x7_neighbourhoods():
    level = torch.arange(3 * 20 * 30, dtype=torch.float32).view(3, 20, 30)
    g = torch.Generator().manual_seed(0)
    p = S.sample_patches(level, 50, g)
    assert p.shape == (50, 3, 7, 7)
    for patch in p[:5]:
        y, x = divmod(int(patch[0, 3, 3]), 30)          # the centre pixel's position
        assert 3 <= y <= 16 and 3 <= x <= 26
        assert torch.equal(patch, level[:, y - 3:y + 4, x - 3:x + 4])


def test_swd_of_a_set_with_itself_is_small_and_grows_with_blur_and_noise():
    imgs = _textures(4, 0)
    kw = dict(patches_per_image=256)
    same = S.swd(imgs, imgs, **kw).mean      # > 0 only from sampling the originals twice
    blur = [S.swd(imgs, [_blur(x, s) for x in imgs], **kw).mean for s in (1.0, 2.0, 4.0)]
    g = torch.Generator().manual_seed(1)
    noise = [S.swd(imgs, [(x + a * torch.randn(x.shape, generator=g)).clamp(0, 1) for x in imgs], **kw).mean
             for a in (0.05, 0.1, 0.2)]
    assert 0 < same < 0.7 * min(blur[0], noise[0])
    assert blur == sorted(blur) and noise == sorted(noise)


def test_swd_is_deterministic_per_seed_and_reports_levels():
    a, b = _textures(3, 0), _textures(3, 5)
    r1 = S.swd(a, b, patches_per_image=64, seed=3)
    r2 = S.swd(a, b, patches_per_image=64, seed=3)
    r3 = S.swd(a, b, patches_per_image=64, seed=4)
    assert r1.levels == r2.levels and r1.levels != r3.levels
    assert len(r1.levels) == 2 and r1.resolutions == [48, 24]
    assert r1.mean == pytest.approx(np.mean(r1.levels))
    assert M.swd is S.swd   # re-exported by metrics


def test_swd_invariant_to_global_affine_intensity():
    """Per-channel normalisation (Karras): a global gain and offset leaves SWD at its sampling floor."""
    imgs = _textures(3, 0)
    floor = S.swd(imgs, imgs, patches_per_image=128).mean
    affine = S.swd(imgs, [0.1 + 0.5 * x for x in imgs], patches_per_image=128).mean
    assert affine == pytest.approx(floor, rel=0.05)


def test_streaming_sets_share_positions_and_check_membership():
    imgs = _textures(2, 0)
    acc = S.SlicedWasserstein(levels=2, patches_per_image=32)
    for i, x in enumerate(imgs):
        acc.add_reference(x, i)
        acc.add("a", x, i)
        acc.add("b", x, i)
    assert acc.distance("a").levels == acc.distance("b").levels
    acc.add("c", imgs[0], 0)
    with pytest.raises(ValueError):
        acc.distance("c")
    acc.drop("a")
    assert "a" not in acc.keys()
    with pytest.raises(ValueError):
        S.image_descriptors(torch.rand(1, 3, 20, 20), 2, 8, torch.Generator())


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
