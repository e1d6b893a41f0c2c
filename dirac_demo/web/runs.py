"""The page's runs of a pipeline: the sender's and the receiver's event streams.

On a ZeroGPU Space (where the ``spaces`` package is installed) each run is a ``spaces.GPU``
function: the GPU is attached only while it runs, in a worker process that receives its arguments
pickled, so the functions take a key into :data:`PIPELINES` rather than the pipeline and its
models. Elsewhere they are plain generators on whatever device the pipeline uses.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

from ..pipeline import DiracPipeline, Event, RunSettings
from ..quality import with_metrics

try:
    import spaces
except ImportError:
    spaces = None

PIPELINES: dict[int, DiracPipeline] = {}
GPU_SECONDS = 120                 # ZeroGPU's limit on one run


def register(pipe: DiracPipeline) -> int:
    """The key of ``pipe`` for :func:`run_send` and :func:`run_receive`."""
    PIPELINES[id(pipe)] = pipe
    return id(pipe)


def _attached(fn: Callable) -> Callable:
    """``fn`` with the GPU attached while it runs on ZeroGPU; ``fn`` itself elsewhere."""
    return spaces.GPU(duration=GPU_SECONDS)(fn) if spaces is not None else fn


@_attached
def run_send(key: int, image: str, settings: RunSettings) -> Iterator[Event]:
    """:meth:`DiracPipeline.run` of ``image``, each frame with its PSNR, MS-SSIM and live SWD against
    the original (``settings.protect``: a mask image sent in the file)."""
    yield from with_metrics(PIPELINES[key].run(image, settings), ms_ssim=True, swd=True)


@_attached
def run_receive(key: int, data: bytes, settings: RunSettings) -> Iterator[Event]:
    """:meth:`DiracPipeline.run_bitstream` of the bitstream ``data`` (no original: no metrics)."""
    yield from PIPELINES[key].run_bitstream(data, settings)
