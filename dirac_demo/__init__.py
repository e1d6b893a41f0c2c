"""dirac-demo: DIRAC, diffusion-based residual augmentation of base image codecs (Ghouse et al.)."""
from .errors import BitstreamError, DiracError, InputError, WeightsError
from .pipeline import Compressed, DiracPipeline, Finished, StepResult


def load_pipeline(assets: str | None = None, hub_repo: str | None = None, **kwargs) -> DiracPipeline:
    """The pipeline with every shipped (or Hub) model that exists."""
    return DiracPipeline.from_pretrained(assets, hub_repo, **kwargs)


__all__ = ["DiracPipeline", "load_pipeline", "Compressed", "StepResult", "Finished",
           "DiracError", "InputError", "BitstreamError", "WeightsError"]
__version__ = "0.1.0"
