import numpy as np
import pytest

from dirac_demo.schedule import Schedule, late_start_timesteps, linear_betas, space_timesteps


def test_linear_betas_endpoints_and_spacing():
    b = linear_betas()
    assert b.dtype == np.float64 and len(b) == 1000
    assert b[0] == pytest.approx(1e-4) and b[-1] == pytest.approx(0.02)
    # eq. (9): β_t = (T − t)/(T − 1)·β_1 + (t − 1)/(T − 1)·β_T
    t = np.arange(1, 1001)
    assert np.allclose(b, (1000 - t) / 999 * 1e-4 + (t - 1) / 999 * 0.02)


def test_alphas_cumprod_closed_form():
    s = Schedule()
    b = linear_betas()
    for t in (0, 10, 190, 500, 999):
        assert s.abar(t) == pytest.approx(np.prod(1 - b[: t + 1]), rel=1e-12)
    assert s.abar(-1) == 1.0
    # log ᾱ_t ≈ −Σβ for small β: ᾱ_190 ≈ 0.68
    assert s.abar(190) == pytest.approx(0.6829, abs=2e-3)


def test_respaced_timesteps_ddim100():
    ts = space_timesteps(1000, 100)
    assert list(ts) == list(range(0, 1000, 10))


def test_late_start_runs_last_s_steps():
    assert list(late_start_timesteps(20)) == list(range(190, -1, -10))
    assert list(late_start_timesteps(100))[0] == 990
    assert len(late_start_timesteps(0)) == 0
    with pytest.raises(ValueError):
        late_start_timesteps(101)


def test_late_start_sigma():
    s = Schedule()
    assert s.sigma(190) == pytest.approx(np.sqrt(1 - s.abar(190)))
