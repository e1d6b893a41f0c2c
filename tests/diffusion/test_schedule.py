import numpy as np
import pytest

from dirac_demo.diffusion.schedule import Schedule, Spacing, late_start_timesteps, linear_betas, space_timesteps


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


def test_paper_spacing_is_the_uniform_late_start():
    for s in range(0, 101):
        assert list(Spacing().timesteps(s)) == list(late_start_timesteps(s))
    assert Spacing().is_paper and Spacing.from_meta(None) == Spacing() == Spacing.from_meta({})


def test_power_spacing_starts_later_and_is_dense_near_zero():
    sp = Spacing(1.5, 2.0)
    ts = sp.timesteps(20)
    assert ts[0] == 285 and ts[-1] == 0 and len(set(ts.tolist())) == 20
    assert list(ts[-5:]) == [13, 7, 3, 1, 0]       # round(285·(k/19)²) for k = 4 … 0
    gaps = -np.diff(ts)
    assert (gaps > 0).all() and (np.diff(gaps) <= 1).all()   # strides shrink towards t = 0
    for s in range(0, 101):                       # any S: distinct, descending, ends at 0, starts capped
        ts = sp.timesteps(s)
        assert len(ts) == s and (s == 0 or ts[-1] == 0) and (np.diff(ts) < 0).all()
        assert s < 2 or ts[0] == min(999, round(1.5 * 10 * (s - 1)))
    assert Spacing(1.0, 3.0).timesteps(20)[0] == 190
    assert Spacing.from_meta({"start_scale": 1.5, "power": 2}) == sp
    assert sp.to_dict() == {"start_scale": 1.5, "power": 2.0}


@pytest.mark.parametrize("scale,power", [(0.0, 1.0), (-1.0, 2.0), (11.0, 1.0), (1.0, 0.5), (1.0, 5.0)])
def test_bad_spacing_is_refused(scale, power):
    with pytest.raises(ValueError):
        Spacing(scale, power)


def test_spacing_without_room_is_refused():
    with pytest.raises(ValueError):
        Spacing(0.05, 1.0).timesteps(50)     # t_start = 24 < 49 distinct steps
    with pytest.raises(ValueError):
        Spacing(1.5, 2.0).timesteps(101)
