"""experiments/step_reuse.py: its cached forward is the network's own with reuse off, and the
steps its schedule names are the ones that reuse (tiny random fixture models, not trained)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from dirac_demo.diffusion.unet import ResidualUNet, UNetConfig

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def reuse():
    spec = importlib.util.spec_from_file_location("experiments_step_reuse", ROOT / "experiments" / "step_reuse.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module        # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def three_level_net() -> ResidualUNet:
    torch.manual_seed(0)
    net = ResidualUNet(UNetConfig(channels=[8, 16, 24], blocks=[1, 2, 1], emb_dim=16, groups=4))
    with torch.no_grad():   # conv2 and the output conv start at zero; give them weights
        for name, p in net.named_parameters():
            if name.endswith("conv2.weight") or name == "out.weight":
                p.normal_(0, 0.05)
    return net.eval()


def inputs(seed: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    r, x = (torch.randn(1, 3, 32, 48, generator=g).to(dtype, memory_format=torch.channels_last) for _ in range(2))
    return r, x


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_reuse_off_is_the_networks_forward_bit_for_bit(reuse, dtype):
    net = three_level_net().to(dtype, memory_format=torch.channels_last)
    r, x = inputs(0, dtype)
    t = torch.tensor([37])
    with torch.no_grad():
        assert torch.equal(reuse.cached_forward(net, r, t, x, reuse.FeatureCache()), net(r, t, x))
        assert torch.equal(reuse.cached_forward(net, r, t, x), net(r, t, x))


@pytest.mark.parametrize("depth", [1, 2, "down"])
def test_reuse_takes_the_cached_features(reuse, depth):
    net = three_level_net()
    r, x = inputs(0)
    r2, _ = inputs(1)
    t = torch.tensor([37])
    with torch.no_grad():
        cache = reuse.FeatureCache()
        full = reuse.cached_forward(net, r, t, x, cache)
        # features cached from the same input give the full output; from another input, not
        assert torch.equal(reuse.cached_forward(net, r, t, x, cache, depth), full)
        stale = reuse.cached_forward(net, r2, t, x, cache, depth)
        assert not torch.equal(stale, net(r2, t, x))


def test_schedule_names_the_reusing_steps(reuse):
    every_two = reuse.Variant(depth=1, every=2, start=0)
    assert [every_two.reuses(i) for i in range(6)] == [False, True, False, True, False, True]
    late = reuse.Variant(depth=2, every=3, start=3)
    assert [late.reuses(i) for i in range(8)] == [False, False, False, True, True, False, True, True]
    assert not any(reuse.Variant().reuses(i) for i in range(8))


@pytest.mark.parametrize("variant", [dict(depth=1, every=2, start=0), dict(depth="down", every=3, start=2)])
def test_trajectory_reuses_on_the_scheduled_steps(reuse, pipe, photo, monkeypatch, variant):
    v = reuse.Variant(**variant)
    comp = pipe.compress(photo, "jpeg", 10)
    seen = []
    forward = reuse.cached_forward
    monkeypatch.setattr(reuse, "cached_forward", lambda *a: seen.append(a[5]) or forward(*a))
    list(reuse.trajectory(pipe, comp, v, steps=6))
    assert seen == [v.depth if v.reuses(i) else None for i in range(6)]
    assert seen.count(None) < 6


def test_exact_path_is_the_pipelines_trajectory(reuse, pipe, photo):
    comp = pipe.compress(photo, "neural", 0.0016)
    ours = [img for _, img, _ in reuse.trajectory(pipe, comp, reuse.Variant(), steps=5)]
    theirs = [frame.image for frame in pipe.frames(comp, 5, seed=0)][1:]
    assert len(ours) == 5 and all(torch.equal(a, b) for a, b in zip(ours, theirs))


def test_resumed_run_continues_the_exact_path(reuse, pipe, photo):
    comp = pipe.compress(photo, "jpeg", 10)
    frames = [(step, cache.copy()) for step, _, cache in reuse.trajectory(pipe, comp, reuse.Variant(), steps=6)]
    late = reuse.Variant(depth=1, every=2, start=3)
    resume = reuse.Resume(3, frames[3][0].r_t, frames[2][1])
    resumed = [img for _, img, _ in reuse.trajectory(pipe, comp, late, 6, resume)]
    whole = [img for _, img, _ in reuse.trajectory(pipe, comp, late, 6)]
    assert len(resumed) == 3 and all(torch.equal(a, b) for a, b in zip(resumed, whole[3:]))
