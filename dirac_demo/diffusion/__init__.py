"""The residual diffusion model: noise schedule and late-start spacing, the conditional U-Net, and
the DDIM sampler (a generator yielding one step at a time)."""
