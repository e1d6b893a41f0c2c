"""The codec table: a codec added by one registration is seen by the command line, the pipeline,
the ``.drc`` container and the page's API, with no other edit."""
import numpy as np
import pytest
import torch

from dirac_demo import RunSettings, codecs, with_metrics
from dirac_demo.cli import main
from dirac_demo.codecs.base import Encoded, QualityCodec, RateRange
from dirac_demo.errors import BitstreamError, NoModelError
from dirac_demo.pipeline import DiracPipeline


class PosterCodec(QualityCodec):
    """A toy codec: each 8-bit value keeps its top ``rate`` bits; the payload is the raw bytes."""

    name, codec_id, label = "poster", 250, "Poster"
    description = "posterisation to 1-8 bits a channel (a test codec)"
    rates = RateRange(1, 8, 4, "bits", "poster bit depth", demo=3)

    def compress(self, x: torch.Tensor, rate: float, **opts) -> Encoded:
        bits = self.check_rate(rate)
        v = (x[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy() >> (8 - bits)
        h, w = x.shape[-2:]
        return Encoded(codec=self.name, width=w, height=h, chunks=[v.tobytes()], quality=bits)

    def decompress(self, enc: Encoded) -> dict[str, torch.Tensor]:
        data = self.one_chunk(enc)
        if len(data) != 3 * enc.width * enc.height:
            raise BitstreamError("The poster payload's size does not match the header.")
        v = np.frombuffer(data, np.uint8).reshape(3, enc.height, enc.width).astype(np.float32)
        levels = 2 ** enc.quality - 1
        return {"x_hat": torch.from_numpy(v / levels)[None]}


@pytest.fixture
def poster():
    codec = codecs.register(PosterCodec())
    yield codec
    codecs.unregister(codec.name)


def test_a_registered_codec_runs_through_the_pipeline_and_the_container(poster, photo):
    pipe = DiracPipeline(device="cpu", precision="fp32")
    assert "poster" in pipe.codec_names() and not pipe.has_model("poster")
    events = list(with_metrics(pipe.run(photo, RunSettings(codec="poster", rate=3, steps=0))))
    comp, base = events
    assert codecs.parse(comp.bitstream).quality == 3 and comp.encoded.rate == 3.0
    assert base.k == 0 and 18 < base.psnr < 30                 # 3 bits: coarse but the image
    assert torch.equal(pipe.decode(comp.bitstream).base, comp.base)
    with pytest.raises(NoModelError):
        list(pipe.run(photo, RunSettings(codec="poster", rate=3, steps=2)))
    with pytest.raises(Exception, match="1..8"):
        pipe.compress(photo, "poster", 9)


def test_a_registered_codec_is_on_the_command_line(poster, photo_path, tmp_path, capsys):
    drc, png = tmp_path / "p.drc", tmp_path / "p.png"
    assert main(["compress", str(photo_path), "-o", str(drc), "--codec", "poster", "--bits", "2"]) == 0
    assert main(["info", str(drc)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("poster 96x72 quality 2, ")
    assert main(["decompress", str(drc), "-o", str(png), "--steps", "0"]) == 0
    assert main(["compress", str(photo_path), "-o", str(drc), "--codec", "poster", "--qf", "10"]) == 2
    assert "--qf is for jpeg; poster takes --bits" in capsys.readouterr().err


def test_unregistered_ids_are_refused_and_names_are_unique(poster, photo):
    data = codecs.pack(PosterCodec().compress(torch.rand(1, 3, 8, 8), 4))
    codecs.unregister("poster")
    with pytest.raises(BitstreamError, match="Unknown codec id 250"):
        codecs.parse(data)
    codecs.register(poster)
    with pytest.raises(ValueError, match="registered already"):
        codecs.register(PosterCodec())
