import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dirac_demo.cli import main


def run(*args):
    return main([str(a) for a in args])


@pytest.mark.parametrize("codec_args", [["--codec", "jpeg", "--qf", "10"], ["--codec", "neural", "--lmbda", "0.002"],
                                        ["--codec", "avif", "--quality", "30"]])
def test_compress_decompress_roundtrip(tiny_assets, photo_path, tmp_path, codec_args, capsys):
    drc, png = tmp_path / "a.drc", tmp_path / "a.png"
    assert run("--assets", tiny_assets, "compress", photo_path, "-o", drc, *codec_args) == 0
    out = capsys.readouterr().out
    nbytes = drc.stat().st_size
    assert f"{nbytes} bytes" in out and f"{nbytes * 8 / (96 * 72):.4f} bpp" in out
    assert run("--assets", tiny_assets, "decompress", drc, "-o", png, "--steps", "3", "--stop", "2") == 0
    assert Image.open(png).size == (96, 72) and Image.open(png).format == "PNG"
    assert run("--assets", tiny_assets, "decompress", drc, "-o", png, "--steps", "0") == 0
    assert run("info", drc) == 0


def test_seed_changes_output(tiny_assets, photo_path, tmp_path):
    drc = tmp_path / "a.drc"
    run("--assets", tiny_assets, "compress", photo_path, "-o", drc, "--qf", "10")
    outs = []
    for seed, eta in ((1, 0), (1, 0), (2, 0), (1, 1), (1, 1)):
        png = tmp_path / f"s{len(outs)}.png"
        run("--assets", tiny_assets, "decompress", drc, "-o", png, "--steps", "2", "--seed", seed, "--eta", eta)
        outs.append(np.asarray(Image.open(png)))
    assert np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[0], outs[2])
    assert np.array_equal(outs[3], outs[4]) and not np.array_equal(outs[0], outs[3])


def _bad_cases(tmp_path, photo_path, tiny_assets):
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    drc = tmp_path / "good.drc"
    run("--assets", tiny_assets, "compress", photo_path, "-o", drc, "--qf", "30")
    trunc = tmp_path / "trunc.drc"
    trunc.write_bytes(drc.read_bytes()[:-10])
    empty = tmp_path / "empty.drc"
    empty.write_bytes(b"")
    out = tmp_path / "o.png"
    return [
        ["compress", txt, "-o", tmp_path / "x.drc"],
        ["compress", tmp_path / "missing.png", "-o", tmp_path / "x.drc"],
        ["compress", photo_path, "-o", tmp_path / "x.drc", "--qf", "0"],
        ["compress", photo_path, "-o", tmp_path / "x.drc", "--codec", "neural", "--lmbda", "0.5"],
        ["compress", photo_path, "-o", tmp_path / "x.drc", "--codec", "jpeg", "--lmbda", "0.001"],
        ["decompress", trunc, "-o", out],
        ["decompress", empty, "-o", out],
        ["decompress", txt, "-o", out],
        ["decompress", drc, "-o", out, "--steps", "101"],
        ["decompress", drc, "-o", out, "--steps", "3", "--stop", "5"],
        ["decompress", drc, "-o", out, "--steps", "2", "--eta", "2"],
        ["info", trunc],
    ]


def test_bad_input_exits_2_with_one_line(tiny_assets, photo_path, tmp_path, capsys):
    for case in _bad_cases(tmp_path, photo_path, tiny_assets):
        capsys.readouterr()
        assert run("--assets", tiny_assets, *case) == 2, case
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, (case, err)


def test_subprocess_bad_file_no_traceback(tmp_path):
    bad = tmp_path / "bad.drc"
    bad.write_bytes(b"DRAC\x01\x02garbage")
    proc = subprocess.run([sys.executable, "-m", "dirac_demo", "decompress", str(bad), "-o", str(tmp_path / "o.png")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")


def test_unknown_codec_argument_exits_2(tmp_path, photo_path):
    with pytest.raises(SystemExit) as info:
        run("compress", photo_path, "-o", tmp_path / "x.drc", "--codec", "webp")
    assert info.value.code == 2


def test_info_and_decompress_take_a_plain_jpeg_file(tiny_assets, photo, tmp_path, capsys):
    jpg = tmp_path / "photo.bin"                        # detected by its marker, whatever the name
    photo.save(jpg, format="JPEG", quality=35, progressive=True, subsampling=0)
    assert run("info", jpg) == 0
    out = capsys.readouterr().out
    assert "96x72" in out and "4:4:4" in out and "progressive" in out and "quality 35" in out
    assert "estimated" not in out
    photo.save(jpg, format="JPEG", qtables={0: [13] * 64, 1: [17] * 64})
    assert run("info", jpg) == 0 and "estimated quality" in capsys.readouterr().out
    png = tmp_path / "o.png"
    assert run("--assets", tiny_assets, "decompress", jpg, "-o", png, "--steps", "2") == 0
    assert Image.open(png).size == (96, 72)
    capsys.readouterr()
    jpg.write_bytes(jpg.read_bytes()[:400])             # truncated: one line, status 2
    assert run("--assets", tiny_assets, "decompress", jpg, "-o", png, "--steps", "1") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err


def test_avif_rate_flags_and_a_plain_avif_file(tiny_assets, photo, photo_path, tmp_path, capsys):
    drc = tmp_path / "a.drc"
    assert run("--assets", tiny_assets, "compress", photo_path, "-o", drc, "--codec", "avif") == 0
    assert "avif rate 50" in capsys.readouterr().out                 # the default quality
    for wrong in (["--qf", "30"], ["--lmbda", "0.002"]):
        assert run("--assets", tiny_assets, "compress", photo_path, "-o", drc, "--codec", "avif", *wrong) == 2
        assert "avif takes --quality" in capsys.readouterr().err
    assert run("--assets", tiny_assets, "compress", photo_path, "-o", drc, "--quality", "30") == 2
    assert "--quality is for avif" in capsys.readouterr().err
    plain = tmp_path / "photo.img"                                   # detected by its ftyp box
    photo.save(plain, format="AVIF", quality=30, speed=8, subsampling="4:2:0", max_threads=1)
    assert run("info", plain) == 0
    out = capsys.readouterr().out
    assert out.startswith("AVIF file 96x72") and "quality 30" in out
    png = tmp_path / "o.png"
    assert run("--assets", tiny_assets, "decompress", plain, "-o", png, "--steps", "2") == 0
    assert Image.open(png).size == (96, 72)
    plain.write_bytes(plain.read_bytes()[:300])
    capsys.readouterr()
    assert run("--assets", tiny_assets, "decompress", plain, "-o", png, "--steps", "1") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")


def test_an_image_over_the_limit_is_refused_or_downscaled(tiny_assets, tmp_path, capsys):
    big = tmp_path / "big.png"
    Image.new("RGB", (2100, 2100), (90, 120, 150)).save(big)          # 4.4 MP, over the 4.2 MP limit
    drc = tmp_path / "big.drc"
    assert run("--assets", tiny_assets, "compress", big, "-o", drc) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("error: The image is 2100x2100 (4.4 MP), over the 4.2 MP limit; "
                           "downscale it first, or pass --downscale.")
    assert run("--assets", tiny_assets, "compress", big, "-o", drc, "--downscale") == 0
    assert "2048x2048 (downscaled from 2100x2100)" in capsys.readouterr().out
