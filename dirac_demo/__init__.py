"""dirac-demo: DIRAC, diffusion-based residual augmentation of base image codecs (Ghouse et al.).

The flow, one module or folder per stage: an image (:mod:`.images`) goes through a base codec to
real bytes (:mod:`.codecs`), then through the residual diffusion sampler one step at a time
(:mod:`.diffusion`); :mod:`.pipeline` runs that flow as a stream of events (a header, then one
frame per output), each frame measured by :func:`.quality.with_metrics`, for the page (``app.py``
with :mod:`.web`), the command line (:mod:`.cli`) and the evaluation (:mod:`.eval`).
"""
__version__ = "0.2.0"

from .errors import BitstreamError, DiracError, InputError, NoModelError, WeightsError  # noqa: E402
from .pipeline import Compressed, DiracPipeline, Event, Frame, RunSettings  # noqa: E402
from .quality import with_metrics  # noqa: E402


def load_pipeline(assets: str | None = None, hub_repo: str | None = None, **kwargs) -> DiracPipeline:
    """The pipeline with every shipped (or Hub) model that exists."""
    return DiracPipeline.from_pretrained(assets, hub_repo, **kwargs)


__all__ = ["DiracPipeline", "load_pipeline", "RunSettings", "Event", "Compressed", "Frame", "with_metrics",
           "DiracError", "InputError", "BitstreamError", "WeightsError", "NoModelError", "__version__"]
