"""``dirac-demo enhance``: colour profiles and EXIF carried over, orientation made upright once,
batches that skip what is done, list what failed, and never write over an input (tiny models)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from dirac_demo.cli import main
from dirac_demo.eval.phone import DATE_ORIGINAL, EXIF_IFD, camera_exif, display_p3_icc
from dirac_demo.images import read_meta, reset_orientation
from dirac_demo.photos import EnhanceOptions, compose_rows, enhance_batch, find_inputs
from dirac_demo.protect import compose

P3 = display_p3_icc()


def picture(width: int = 96, height: int = 64, seed: int = 0) -> Image.Image:
    """A picture whose halves differ, so that turning it shows."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([xx * 2.0, yy * 3.0, 60 + 120 * (xx < width // 3)], -1) + rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def photo_file(path: Path, img: Image.Image, fmt: str = "JPEG", orientation: int = 1, quality: int = 40) -> Path:
    img.save(path, fmt, quality=quality, icc_profile=P3, exif=camera_exif(orientation=orientation))
    return path


def enhance(tiny_assets, *args) -> int:
    return main(["--assets", str(tiny_assets), "enhance", *map(str, args)])


def test_the_profile_is_display_p3_for_littlecms():
    profile = ImageCms.ImageCmsProfile(io.BytesIO(P3))
    assert ImageCms.getProfileDescription(profile).strip() == "Display P3"
    to_srgb = ImageCms.buildTransform(profile, ImageCms.createProfile("sRGB"), "RGB", "RGB")
    p3_green = ImageCms.applyTransform(Image.new("RGB", (1, 1), (40, 200, 40)), to_srgb).getpixel((0, 0))
    assert p3_green[1] > 200 and p3_green[0] < 40       # P3 green is greener than sRGB's


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "avif"])
def test_profile_byte_for_byte_and_exif_in_every_format(tiny_assets, tmp_path, fmt):
    src = photo_file(tmp_path / "IMG_0001.jpg", picture())
    assert enhance(tiny_assets, src, "-o", tmp_path / "out", "--format", fmt, "--steps", "2", "--step", "1") == 0
    out = next((tmp_path / "out").iterdir())
    img = Image.open(out)
    assert out.name.startswith("IMG_0001.step1of2.") and img.size == (96, 64)
    assert img.info.get("icc_profile") == P3
    exif = img.getexif()
    assert (exif.get(0x010F), exif.get(0x0110)) == ("Apple", "iPhone 15 Pro")
    assert exif.get_ifd(EXIF_IFD).get(DATE_ORIGINAL) == "2024:06:01 12:34:56"
    assert exif.get(0x0112, 1) == 1          # AVIF writes orientation as its irot box: none there


@pytest.mark.parametrize("fmt", ["JPEG", "AVIF"])
def test_orientation_6_comes_out_upright_and_tagged_1(tiny_assets, tmp_path, fmt):
    """Stored turned a quarter, tagged 6: the output is upright with orientation 1, so a viewer
    does not turn it again. (JPEG decodes upright already; AVIF decodes as stored.)"""
    upright = picture(96, 64)
    stored = upright.transpose(Image.Transpose.ROTATE_90)          # what a phone held sideways stores
    src = tmp_path / f"turned.{fmt.lower()}"
    stored.save(src, fmt, quality=95, exif=camera_exif(orientation=6))
    assert read_meta(src.read_bytes()).orientation == 6
    out = tmp_path / "out"
    assert enhance(tiny_assets, src, "-o", out, "--steps", "2", "--step", "0") == 0
    base = Image.open(out / "turned.step0of2.png")
    assert base.size == (96, 64) and base.getexif().get(0x0112) == 1
    assert np.abs(np.asarray(base, float) - np.asarray(upright, float)).mean() < 6   # upright, not turned twice
    assert enhance(tiny_assets, src, "-o", out, "--steps", "2", "--step", "2") == 0
    assert Image.open(out / "turned.step2of2.png").size == (96, 64)


def test_reset_orientation_changes_only_that_value():
    for exif in (camera_exif(orientation=6), Image.Exif().tobytes()):
        out = reset_orientation(exif)
        assert len(out) == len(exif) and sum(a != b for a, b in zip(out, exif)) <= 1
    turned = Image.Exif()
    turned.load(reset_orientation(camera_exif(orientation=8)))
    assert turned.get(0x0112) == 1 and turned.get(0x0110) == "iPhone 15 Pro"
    assert reset_orientation(b"Exif\x00\x00XX not tiff") is None


def test_folder_with_a_corrupt_file_then_a_rerun_skips_the_done(tiny_assets, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        photo_file(photos / f"p{i}.jpg", picture(seed=i))
    (photos / "broken.jpg").write_bytes((photos / "p0.jpg").read_bytes()[:300])
    (photos / "notes.txt").write_text("not a photo")
    out = tmp_path / "out"
    assert enhance(tiny_assets, photos, "-o", out, "--steps", "2", "--step", "1") == 1
    captured = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == [f"p{i}.step1of2.png" for i in range(4)]
    assert "4 written, 0 skipped (done already), 1 failed" in captured.out
    failed = [line for line in captured.err.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and failed[0].startswith(f"failed: {photos / 'broken.jpg'}: ") and "corrupt" in failed[0]
    stamps = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    assert enhance(tiny_assets, photos, "-o", out, "--steps", "2", "--step", "1") == 1
    assert "0 written, 4 skipped (done already), 1 failed" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == stamps


def test_outputs_never_replace_inputs(pipe, tmp_path):
    """Writing JPEGs into the inputs' own folder: a.jpg's output name is an input, so it fails."""
    a = photo_file(tmp_path / "a.jpg", picture(seed=1))
    clash = photo_file(tmp_path / "a.step1of2.jpg", picture(seed=2))
    before = clash.read_bytes()
    lines = []
    report = enhance_batch(pipe, [str(a), str(clash)], tmp_path, EnhanceOptions(stop=1, steps=2, fmt="jpeg"),
                           log=lines.append, progress=False)
    assert clash.read_bytes() == before
    assert report.failed == [(str(a), f"its output would replace an input ({clash}); choose another -o folder")]
    assert [d.name for _, d in report.written] == ["a.step1of2.step1of2.jpg"]
    other = tmp_path / "other"
    other.mkdir()
    photo_file(other / "a.jpg", picture(seed=3))
    report = enhance_batch(pipe, [str(a), str(other / "a.jpg")], tmp_path / "out", EnhanceOptions(stop=1, steps=2),
                           log=lines.append, progress=False)
    assert report.failed == [(str(other / "a.jpg"), f"{a}'s output has the same name "
                              f"({tmp_path / 'out' / 'a.step1of2.png'}); choose another -o folder")]
    # a folder read later leaves the outputs of a batch out of the inputs
    assert [p.name for p in find_inputs([str(tmp_path)])[0]] == ["a.jpg"]


def test_other_images_and_missing_files_are_listed(tiny_assets, tmp_path, capsys):
    png = tmp_path / "drawing.png"
    picture().save(png)
    assert enhance(tiny_assets, png, tmp_path / "nothing.jpg", str(tmp_path / "none" / "*.jpg"), "-o",
                   tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"failed: {png}: not a JPEG, AVIF or .drc file" in err
    assert f"failed: {tmp_path / 'nothing.jpg'}: no such file" in err
    assert "none/*.jpg: no JPEG, AVIF or .drc files there" in err


@pytest.mark.parametrize("bad", [["--step", "5", "--steps", "3"], ["--quality", "90"],
                                 ["--format", "jpeg", "--quality", "101"], ["--protect", "missing.png"],
                                 ["--tile", "16"]])
def test_usage_errors_exit_2(tiny_assets, tmp_path, bad, capsys):
    src = photo_file(tmp_path / "a.jpg", picture())
    assert enhance(tiny_assets, src, "-o", tmp_path / "out", *bad) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_drc_files_and_their_protect_mask(tiny_assets, tmp_path):
    """A .drc with a protect mask: inside it the output is step 1, outside step 3."""
    src = tmp_path / "p.png"
    picture(96, 64).save(src)
    mask = Image.new("L", (96, 64), 0)
    mask.paste(255, (0, 0, 40, 64))
    mask.save(tmp_path / "mask.png")
    drc = tmp_path / "p.drc"
    assert main(["--assets", str(tiny_assets), "compress", str(src), "-o", str(drc), "--qf", "20",
                 "--protect", str(tmp_path / "mask.png")]) == 0
    runs = {}
    for name, extra in (("masked", ["--step", "3"]), ("s1", ["--step", "1", "--ignore-mask"]),
                        ("s3", ["--step", "3", "--ignore-mask"])):
        out = tmp_path / name
        assert enhance(tiny_assets, drc, "-o", out, "--steps", "3", *extra) == 0
        runs[name] = np.asarray(Image.open(next(out.iterdir())), int)
    assert np.array_equal(runs["masked"][:, :30], runs["s1"][:, :30])      # inside, away from the band
    assert np.array_equal(runs["masked"][:, 50:], runs["s3"][:, 50:])      # outside, away from the band
    assert not np.array_equal(runs["s1"], runs["s3"])


def test_a_folder_of_masks_goes_by_name(pipe, tmp_path):
    for name in ("a", "b"):
        photo_file(tmp_path / f"{name}.jpg", picture(seed=len(name)))
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.new("L", (96, 64), 255).save(masks / "a.png")                   # a: all protected
    out = {}
    for label, protect in (("with", str(masks)), ("without", None)):
        enhance_batch(pipe, [str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")], tmp_path / label,
                      EnhanceOptions(stop=2, steps=2, protect=protect), log=lambda _: None, progress=False)
        out[label] = {n: np.asarray(Image.open(tmp_path / label / f"{n}.step2of2.png")) for n in ("a", "b")}
    enhance_batch(pipe, [str(tmp_path / "a.jpg")], tmp_path / "one", EnhanceOptions(stop=1, steps=2),
                  log=lambda _: None, progress=False)
    assert np.array_equal(out["with"]["a"], np.asarray(Image.open(tmp_path / "one" / "a.step1of2.png")))
    assert np.array_equal(out["with"]["b"], out["without"]["b"])


def test_composing_in_bands_is_the_whole_image_composition():
    rng = np.random.default_rng(0)
    fid, real = (rng.integers(0, 256, (70, 50, 3)).astype(np.uint8) for _ in range(2))
    mask = np.zeros((70, 50), bool)
    mask[10:45, 5:30] = True
    whole = compose(torch_of(fid), torch_of(real), mask, 6)
    banded = compose_rows(fid, real, mask, 6, band=9)
    assert np.abs(banded.astype(int) - np.round(whole.numpy()[0].transpose(1, 2, 0) * 255).astype(int)).max() <= 1


def torch_of(a: np.ndarray):
    import torch
    return torch.from_numpy(a.astype(np.float32) / 255.0).permute(2, 0, 1)[None]


def test_a_photo_over_the_decoders_limit_is_enhanced_at_full_size(tiny_assets, tmp_path, capsys):
    """4.4 MP: ``decompress`` refuses it (4.2 MP), ``enhance`` decodes and writes it at its own size
    (the base only, to stay fast: the tiles' steps are tested in test_large.py)."""
    src = tmp_path / "big.jpg"
    picture(2100, 2100).save(src, "JPEG", quality=30)
    assert main(["--assets", str(tiny_assets), "decompress", str(src), "-o", str(tmp_path / "d.png")]) == 2
    assert "4.2 MP limit" in capsys.readouterr().err
    assert enhance(tiny_assets, src, "-o", tmp_path / "out", "--steps", "2", "--step", "0") == 0
    assert "2100x2100, step 0 of 2, 25 tiles" in capsys.readouterr().out
    assert Image.open(tmp_path / "out" / "big.step0of2.png").size == (2100, 2100)
