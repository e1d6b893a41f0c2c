"""The CUDA path with the shipped weights: fp16 autocast and channels_last for the network, the
codecs on the CPU. Marked ``cuda`` and skipped where no GPU is; ``python -m
dirac_demo.eval.gpu_check`` runs them with the CUDA benchmark and prints one table.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from dirac_demo import Compressed, DiracPipeline, Frame
from dirac_demo.eval.benchmark import synthetic_image

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(),
                                 reason="needs a CUDA GPU (python -m dirac_demo.eval.gpu_check runs these there)")]

EXAMPLE = Path(__file__).resolve().parents[1] / "assets" / "examples" / "kodim23.png"


@pytest.fixture(scope="module")
def gpu() -> DiracPipeline:
    return DiracPipeline.from_pretrained(device="cuda")


@pytest.fixture(scope="module")
def cpu() -> DiracPipeline:
    return DiracPipeline.from_pretrained(device="cpu", precision="fp32")


def _events(pipe: DiracPipeline, codec: str, rate: float, steps: int = 20) -> list:
    return list(with_metrics(pipe.run(str(EXAMPLE), RunSettings(codec=codec, rate=rate, steps=steps, seed=0)), ms_ssim=False))


@pytest.mark.parametrize("codec, rate", [("jpeg", 10), ("neural", 0.0016)])
def test_same_events_and_psnr_within_0_05_db_of_the_cpu(gpu, cpu, codec, rate):
    on_gpu, on_cpu = _events(gpu, codec, rate), _events(cpu, codec, rate)
    assert [type(e) for e in on_gpu] == [type(e) for e in on_cpu]
    assert [Compressed] + [Frame] * 21 == [type(e) for e in on_gpu]
    assert on_gpu[0].bitstream == on_cpu[0].bitstream       # the codecs run on the CPU either way
    for g, c in zip(on_gpu[1:], on_cpu[1:]):
        assert abs(g.psnr - c.psnr) < 0.05, (g.k, g.psnr, c.psnr)


@pytest.mark.parametrize("codec, rate", [("jpeg", 20), ("neural", 0.006)])
def test_a_file_written_on_either_device_decodes_alike_on_the_other(gpu, cpu, codec, rate):
    for writer, reader in ((gpu, cpu), (cpu, gpu)):
        sent = writer.compress(str(EXAMPLE), codec, rate)
        assert torch.equal(reader.decode(sent.bitstream).base, sent.base)


def test_four_megapixels_in_bounded_gpu_memory(gpu):
    torch.cuda.reset_peak_memory_stats()
    img = synthetic_image(2048, 2048)
    events = list(with_metrics(gpu.run(img, RunSettings(codec="jpeg", rate=10, steps=20)), ms_ssim=False))
    peak = torch.cuda.max_memory_allocated() / 2 ** 30
    print(f"4 MP, 20 steps: peak GPU memory {peak:.2f} GiB")
    assert events[-1].k == 20 and events[-1].image.shape[-2:] == (2048, 2048)
    assert peak < 16, f"{peak:.1f} GiB"


def test_the_apps_enhance_streams_on_cuda(gpu, tmp_path):
    from gradio_client import Client, handle_file
    from app_server import serve
    Image.open(EXAMPLE).save(tmp_path / "in.png")
    with serve(gpu, str(tmp_path / "work")) as url:
        job = Client(url, verbose=False).submit(image=handle_file(str(tmp_path / "in.png")), codec="jpeg",
                                                rate=10, steps=5, seed=0, api_name="/enhance")
        job.result(timeout=300)
        infos = [info for _, info, _ in job.outputs()]
    assert [i["step"] for i in infos] == [0, 1, 2, 3, 4, 5]
    assert infos[-1]["device"].startswith("GPU")
