import math

import pytest
import torch

from dirac_demo.diffusion.sampler import (ddim_sample, ddim_sigma, ddim_update, late_start_noise, nearest_threshold,
                                update_angle)
from dirac_demo.diffusion.schedule import Schedule, late_start_timesteps


def test_oracle_network_recovers_r0_exactly():
    torch.manual_seed(0)
    s = Schedule()
    r0 = torch.randn(1, 3, 16, 16, dtype=torch.float64) * 0.1
    ts = late_start_timesteps(20)
    r = late_start_noise(r0.shape, int(ts[0]), s, torch.Generator().manual_seed(1)).double()
    steps = list(ddim_sample(lambda r_t, t: r0, r, ts, s, clip=None))
    assert len(steps) == 20
    assert all(torch.equal(st.r0_hat, r0.float()) or torch.allclose(st.r0_hat, r0) for st in steps)
    # the final DDIM update lands on r0 (ᾱ_prev = 1)
    last = steps[-1]
    out = ddim_update(last.r_t, last.r0_hat, s.abar(last.t), 1.0)
    assert torch.allclose(out, r0, atol=1e-12)


def test_ddim_update_matches_closed_form():
    s = Schedule()
    r0 = torch.full((4,), 0.2, dtype=torch.float64)
    eps = torch.tensor([1.0, -1.0, 0.5, 0.0], dtype=torch.float64)
    a_t, a_p = s.abar(190), s.abar(180)
    r_t = math.sqrt(a_t) * r0 + math.sqrt(1 - a_t) * eps
    expected = math.sqrt(a_p) * r0 + math.sqrt(1 - a_p) * eps
    assert torch.allclose(ddim_update(r_t, r0, a_t, a_p), expected, atol=1e-12)


def test_eta_one_is_the_ddpm_posterior_std():
    s = Schedule()
    t = 150
    beta_t = 1.0 - s.abar(t) / s.abar(t - 1)
    posterior_var = (1.0 - s.abar(t - 1)) / (1.0 - s.abar(t)) * beta_t
    assert ddim_sigma(s.abar(t), s.abar(t - 1), 1.0) ** 2 == pytest.approx(posterior_var, rel=1e-9)
    assert ddim_sigma(s.abar(t), s.abar(t - 10), 0.0) == 0.0
    assert ddim_sigma(s.abar(t), 1.0, 1.0) == 0.0          # the clean end adds no noise


def test_stochastic_step_keeps_the_forward_marginal():
    # With the true r0, r_t ~ q(r_t | r0) must map to r_prev ~ q(r_prev | r0) for any eta.
    s = Schedule()
    g = torch.Generator().manual_seed(0)
    r0 = torch.full((200_000,), 0.3, dtype=torch.float64)
    a_t, a_p = s.abar(190), s.abar(180)
    r_t = math.sqrt(a_t) * r0 + math.sqrt(1 - a_t) * torch.randn(r0.shape, generator=g, dtype=torch.float64)
    for eta in (0.5, 1.0):
        z = torch.randn(r0.shape, generator=g, dtype=torch.float64)
        out = ddim_update(r_t, r0, a_t, a_p, eta, z)
        assert out.mean().item() == pytest.approx(math.sqrt(a_p) * 0.3, abs=3e-3)
        assert out.std().item() == pytest.approx(math.sqrt(1 - a_p), rel=1e-2)
    with pytest.raises(ValueError, match="needs noise"):
        ddim_update(r_t, r0, a_t, a_p, 0.5)


def test_stochastic_sampling_is_seeded_and_eta_zero_is_unchanged():
    s = Schedule()
    ts = late_start_timesteps(5)
    net = lambda r, t: 0.5 * r  # noqa: E731
    r = late_start_noise((1, 3, 8, 8), int(ts[0]), s, torch.Generator().manual_seed(3))

    def final(eta, seed):
        steps = list(ddim_sample(net, r, ts, s, eta=eta, generator=torch.Generator().manual_seed(seed)))
        return steps[-1].r0_hat

    assert torch.equal(final(0.0, 1), final(0.0, 2))
    assert torch.equal(final(0.0, 1), list(ddim_sample(net, r, ts, s))[-1].r0_hat)
    assert torch.equal(final(1.0, 1), final(1.0, 1))
    assert not torch.equal(final(1.0, 1), final(1.0, 2))
    assert not torch.equal(final(1.0, 1), final(0.0, 1))
    with pytest.raises(ValueError, match="eta"):
        next(ddim_sample(net, r, ts, s, eta=1.5))


def test_late_start_noise_scale_and_seed():
    s = Schedule()
    n = late_start_noise((1, 3, 256, 256), 190, s, torch.Generator().manual_seed(0))
    assert n.std().item() == pytest.approx(s.sigma(190), rel=0.01)
    n2 = late_start_noise((1, 3, 256, 256), 190, s, torch.Generator().manual_seed(0))
    assert torch.equal(n, n2)


def test_clipping_bounds_r0_hat():
    s = Schedule()
    big = torch.full((1, 3, 8, 8), 5.0)
    steps = list(ddim_sample(lambda r, t: big, torch.zeros(1, 3, 8, 8), late_start_timesteps(3), s, clip=0.1))
    assert all(st.r0_hat.abs().max().item() == pytest.approx(0.1) for st in steps)


def test_nearest_threshold_in_log_space():
    table = {0.0004: 0.15, 0.0016: 0.1, 0.016: 0.07}
    assert nearest_threshold(table, 0.0004) == 0.15
    assert nearest_threshold(table, 0.0009) == 0.1     # log-nearer to 0.0016 than to 0.0004
    assert nearest_threshold(table, 0.0007) == 0.15
    assert nearest_threshold(table, 0.02) == 0.07
    assert nearest_threshold(None, 0.001) is None
    quality = {0.0: 0.28, 1.0: 0.27, 50.0: 0.12}        # AVIF's table starts at quality 0
    assert nearest_threshold(quality, 0.0) == 0.28 and nearest_threshold(quality, 40.0) == 0.12


def test_update_angle_straight_line_is_zero():
    from dirac_demo.diffusion.sampler import Step
    a = Step(0, 10, torch.zeros(10), torch.ones(10))
    b = Step(1, 0, torch.full((10,), 0.5), torch.ones(10))
    assert update_angle(a, b) == pytest.approx(0.0, abs=1e-5)
    c = Step(1, 0, torch.zeros(10), -torch.ones(10))
    assert update_angle(a, c) == pytest.approx(180.0)
