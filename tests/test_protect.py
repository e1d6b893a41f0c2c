"""Per-region realism: exact composition, the mask's reading rules, its .drc section and the CLI."""
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from dirac_demo.cli import main
from dirac_demo import RunSettings, codecs, with_metrics
from dirac_demo.codecs import bitstream
from dirac_demo.errors import BitstreamError, InputError
from dirac_demo.images import pil_to_tensor
from dirac_demo.protect import (DEFAULT_FEATHER, blend_weights, compose, file_mask, pack_mask, read_mask,
                                unpack_mask)


def run(*args):
    return main([str(a) for a in args])


def portrait_mask(width: int = 768, height: int = 512) -> np.ndarray:
    """A face and shoulders, as a sender would paint them."""
    img = Image.new("L", (width, height))
    draw = ImageDraw.Draw(img)
    draw.ellipse((300, 60, 470, 290), fill=255)
    draw.rounded_rectangle((220, 300, 550, 512), radius=60, fill=255)
    return np.asarray(img) >= 128


def test_composition_is_exact_away_from_the_band_on_a_real_decode(pipe, photo_path):
    frames = [e.image for e in with_metrics(pipe.run(str(photo_path), RunSettings(codec="jpeg", rate=10, steps=4))) if getattr(e, "k", 0)]
    fidelity, realism = frames[0], frames[-1]
    h, w = fidelity.shape[-2:]
    mask = np.zeros((h, w), bool)
    mask[16:56, 20:70] = True
    out = compose(fidelity, realism, mask, feather=4)
    inside = np.zeros_like(mask)
    inside[20:52, 24:66] = True                      # the mask less the 4-pixel band
    outside = np.ones_like(mask)
    outside[12:60, 16:74] = False                    # the rest less the band
    out, fidelity, realism = out[0], fidelity[0], realism[0]
    assert torch.equal(out[:, inside], fidelity[:, inside])
    assert torch.equal(out[:, outside], realism[:, outside])
    band = ~inside & ~outside
    differs = (out != fidelity).any(0).numpy() & (out != realism).any(0).numpy()
    assert differs[band].mean() > 0.5 and not differs[inside | outside].any()


def test_blend_weights_ramp_across_the_edge_and_feather_is_checked():
    mask = np.zeros((40, 40), bool)
    mask[:, 20:] = True
    w = blend_weights(mask, 3)[0, 0]
    assert w[0, :17].eq(0).all() and w[0, 23:].eq(1).all()
    assert torch.all(w[0, 16:24].diff() > 0)         # a strictly rising ramp across the band
    assert torch.equal(blend_weights(mask, 0)[0, 0], torch.from_numpy(mask).float())
    with pytest.raises(InputError):
        blend_weights(mask, -1)


def test_mask_reading_rules(tmp_path):
    layer = Image.new("RGBA", (64, 48), (0, 0, 0, 0))         # a painted layer: opaque strokes
    ImageDraw.Draw(layer).rectangle((10, 10, 29, 19), fill=(255, 0, 0, 255))
    layer.save(tmp_path / "layer.png")
    m = read_mask(tmp_path / "layer.png", 64, 48)
    assert m.sum() == 20 * 10 and m[10, 10] and not m[0, 0]
    grey = Image.new("L", (32, 24))
    ImageDraw.Draw(grey).rectangle((0, 0, 15, 23), fill=200)
    grey.save(tmp_path / "grey.png")
    half = read_mask(tmp_path / "grey.png", 64, 48)           # resized ×2, nearest neighbour
    assert half[:, :32].all() and not half[:, 32:].any()
    with pytest.raises(InputError):
        read_mask(tmp_path / "missing.png", 64, 48)


def test_mask_section_is_small_and_round_trips_to_its_blocks():
    mask = portrait_mask()
    data = pack_mask(mask)
    assert len(data) < 512
    back = unpack_mask(data, 768, 512)
    assert back.shape == mask.shape and back[mask].all()      # every protected pixel stays protected
    assert back.mean() < mask.mean() * 1.15                  # and the blocks add little around it
    with pytest.raises(BitstreamError):
        unpack_mask(data, 800, 512)
    with pytest.raises(BitstreamError):
        unpack_mask(data[:6] + b"junk", 768, 512)


def test_a_file_without_a_mask_is_version_2_and_one_with_it_version_3(pipe, photo_path, photo, tmp_path):
    plain = pipe.compress(str(photo_path), "jpeg", 20)
    assert plain.bitstream[4] == 2 and codecs.parse(plain.bitstream).mask == b""
    mask_path = tmp_path / "mask.png"
    Image.fromarray((portrait_mask(*photo.size) * 255).astype(np.uint8)).save(mask_path)
    masked = pipe.compress(str(photo_path), "jpeg", 20, protect=str(mask_path))
    assert masked.bitstream[4] == 3 and masked.nbytes == plain.nbytes + 2 + len(masked.encoded.mask)
    assert torch.equal(masked.base, plain.base)
    enc = codecs.parse(masked.bitstream)
    assert enc.mask == masked.encoded.mask and file_mask(enc) is not None


def test_a_reader_of_versions_1_and_2_refuses_a_masked_file(pipe, photo_path, tmp_path, monkeypatch):
    mask = tmp_path / "m.png"
    Image.new("L", (96, 72), 255).save(mask)
    data = pipe.compress(str(photo_path), "jpeg", 20, protect=str(mask)).bitstream
    monkeypatch.setattr(bitstream, "READABLE_VERSIONS", (1, 2))
    with pytest.raises(BitstreamError, match="Unsupported bitstream version 3"):
        codecs.parse(data)


def test_cli_protects_by_the_files_mask_or_the_receivers(tiny_assets, photo_path, photo, tmp_path, capsys):
    mask = tmp_path / "mask.png"
    paint = Image.new("L", photo.size)
    ImageDraw.Draw(paint).rectangle((8, 8, 47, 39), fill=255)
    paint.save(mask)
    plain, masked = tmp_path / "plain.drc", tmp_path / "masked.drc"
    assert run("--assets", tiny_assets, "compress", photo_path, "-o", plain, "--qf", "10") == 0
    assert run("--assets", tiny_assets, "compress", photo_path, "-o", masked, "--qf", "10", "--protect", mask) == 0
    assert run("info", masked) == 0 and "protect mask" in capsys.readouterr().out
    out = {}
    for name, args in {"plain": (plain,), "file": (masked,), "ignored": (masked, "--ignore-mask"),
                       "given": (plain, "--protect", mask), "step1": (plain, "--stop", "1")}.items():
        png = tmp_path / f"{name}.png"
        assert run("--assets", tiny_assets, "decompress", *args, "-o", png, "--steps", "3") == 0
        out[name] = np.asarray(Image.open(png))
    assert np.array_equal(out["ignored"], out["plain"])             # the mask changes nothing else
    assert np.array_equal(out["file"], out["given"])                 # its blocks cover the same pixels here
    inside = (slice(8 + DEFAULT_FEATHER, 40 - DEFAULT_FEATHER), slice(8 + DEFAULT_FEATHER, 48 - DEFAULT_FEATHER))
    assert np.array_equal(out["file"][inside], out["step1"][inside])
    assert np.array_equal(out["file"][60:, 60:], out["plain"][60:, 60:])
    assert run("--assets", tiny_assets, "decompress", masked, "-o", tmp_path / "x.png", "--steps", "3",
               "--protect-step", "4") == 2
    assert "--protect-step must be in 0..3" in capsys.readouterr().err
