"""The held-out split the sampler sweeps use: every 40th training file, which training never sees."""
from __future__ import annotations

from dirac_demo.train.data import heldout_images
from dirac_demo.eval.metrics import psnr
from dirac_demo.diffusion.schedule import Spacing
from dirac_demo.eval.swd import swd
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


def base_stats(comps, originals):
    """The base codec's mean PSNR and its SWD against the originals: every sweep's reference row."""
    return sum(psnr(c.base, x) for c, x in zip(comps, originals)) / len(comps), \
        swd(originals, [c.base for c in comps])


def run_steps(pipe, comps, originals, steps: int = 20, keep: tuple[int, ...] = (), **trajectory_kw):
    """Sample every held-out image: mean PSNR after the first and the last step, the images after
    each step in ``keep`` (``{step: [image, ...]}``) and after the last, for SWD against ``originals``."""
    first, last, final = [], [], []
    kept: dict[int, list] = {k: [] for k in keep}
    for c, x in zip(comps, originals):
        for k, (_, image, _) in enumerate(pipe.trajectory(c.base, c.encoded, steps, 0, True, **trajectory_kw)):
            if k == 0:
                first.append(psnr(image, x))
            if k + 1 in kept:
                kept[k + 1].append(image)
        last.append(psnr(image, x))
        final.append(image)
    n = len(comps)
    return sum(first) / n, sum(last) / n, kept, final


def parse_spacing(text: str) -> Spacing:
    """``SCALE:POWER`` on the command line, e.g. ``1:1`` (the paper's late start) or ``2:2``."""
    scale, power = text.split(":")
    return Spacing(float(scale), float(power))
