"""The held-out split the sampler sweeps use: every 40th training file, which training never sees."""
from __future__ import annotations

from dirac_demo.data import heldout_images
from dirac_demo.pipeline import DiracPipeline


def compress_heldout(data: str, codec: str, rate: float):
    """The shipped pipeline, the held-out originals and their base-codec :class:`Compressed` events."""
    pipe = DiracPipeline.from_pretrained()
    originals, comps = [], []
    for f in heldout_images(data):
        comp, x = pipe.compress(str(f), codec, rate, with_ms_ssim=False)
        originals.append(x)
        comps.append(comp)
    return pipe, originals, comps
