import torch

from dirac_demo.diffusion.unet import ResidualUNet, UNetConfig


def test_inference_path_equals_the_training_path():
    # The batch-of-one no-grad path folds FiLM into GroupNorm and works in place; it must
    # compute the same function as the plain path used for training (and leave inputs intact).
    torch.manual_seed(0)
    net = ResidualUNet(UNetConfig(channels=[16, 32], blocks=[1, 2], emb_dim=32, groups=4)).eval()
    for p in net.parameters():                      # zero-initialised layers would hide differences
        p.data.normal_(0, 0.2)
    r, xb = torch.randn(1, 3, 32, 48), torch.rand(1, 3, 32, 48) * 2 - 1
    r_copy, xb_copy = r.clone(), xb.clone()
    t = torch.tensor([137])
    with torch.enable_grad():
        plain = net(r, t, xb)
    with torch.no_grad():
        fast = net(r, t, xb)
    assert plain.requires_grad and not fast.requires_grad
    assert torch.allclose(fast, plain, rtol=1e-4, atol=1e-4)
    assert torch.equal(r, r_copy) and torch.equal(xb, xb_copy)
    with torch.no_grad():                           # batches of two take the plain path
        pair = net(torch.cat([r, r]), torch.tensor([137, 137]), torch.cat([xb, xb]))
    assert torch.allclose(pair[:1], plain, rtol=1e-4, atol=1e-4)
