"""The SWD of dirac_demo.swd: Karras's pyramid, patches, normalisation and streaming sets."""
import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F

from dirac_demo import swd as S

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


def test_pyramid_steps_match_karras_filters_for_odd_sizes():
    """pyr_down and the cropped pyr_up against scipy's mirror-border convolutions of the 5×5 kernel."""
    x = np.random.default_rng(1).integers(0, 256, (1, 3, 45, 71)).astype(np.float32)
    down = scipy.ndimage.convolve(x, _G[None, None], mode="mirror")[:, :, ::2, ::2]
    np.testing.assert_allclose(S.pyr_down(torch.from_numpy(x)).numpy(), down, atol=1e-3)
    zeros = np.zeros((1, 3, 46, 72), np.float32)
    zeros[:, :, ::2, ::2] = down
    up = scipy.ndimage.convolve(zeros, _G[None, None] * 4.0, mode="mirror")[:, :, :45, :71]
    np.testing.assert_allclose(S.pyr_up(torch.from_numpy(down), (45, 71)).numpy(), up, atol=1e-3)


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
