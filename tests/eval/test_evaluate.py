import json

import numpy as np
import pytest
import torch
from PIL import Image

from dirac_demo import RunSettings, __version__
from dirac_demo.eval import benchmark, metrics, plots, report
from dirac_demo.eval.evaluate import list_images, main, report_steps
from dirac_demo.images import from_signed, to_signed
from dirac_demo.images import pil_to_tensor
from dirac_demo.quality import bits_per_pixel
from dirac_demo.same_bytes import encode_avif, roundtrip
from dirac_demo.diffusion.sampler import update_angle
from dirac_demo.weights import export_codec, export_dirac

from conftest import tiny_codec, tiny_net

FAST = ["--swd-patches", "32", "--quiet", "--precision", "fp32", "--device", "cpu"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three small deterministic images, one of another size and one a JPEG."""
    root = tmp_path_factory.mktemp("data")
    for i, (w, h) in enumerate([(96, 72), (80, 64), (96, 72)]):
        rng = np.random.default_rng(i)
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([xx * 2.5 + 20 * i, yy * 3.0, (xx + yy) * 1.5], -1) + rng.normal(0, 12, (h, w, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"im{i}.{'jpg' if i == 2 else 'png'}")
    (root / "notes.txt").write_text("not an image")
    return root


def _run(tmp_path, name, *args):
    out = tmp_path / f"{name}.json"
    assert main([*map(str, args), "--json", str(out), *FAST]) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("codec,rate,threshold", [("jpeg", 10, True), ("neural", 0.004, True),
                                                  ("neural", 0.004, False)])
def test_frames_carry_the_samplers_steps(pipe, photo, codec, rate, threshold):
    comp = pipe.compress(photo, codec, rate)
    run = [e for e in pipe.run(photo, RunSettings(codec=codec, rate=rate, steps=4, seed=3, threshold=threshold))]
    got = list(pipe.frames(comp, 4, seed=3, threshold=threshold))[1:]
    assert len(got) == 4 and all(torch.equal(a.image, b.image) for a, b in zip(run[2:], got))
    # each image is x̃ + r̂0(t_k), with r̂0 inside the clipping bound
    clip = pipe.clip_for(comp.encoded, threshold)
    for f in got:
        assert f.step.r0_hat.abs().max().item() <= clip + 1e-6
        assert torch.allclose(f.image, from_signed(to_signed(comp.base) + f.step.r0_hat).clamp(0, 1))
    assert [f.t for f in got] == [30, 20, 10, 0] and all(f.seconds > 0 for f in got)
    assert 0.0 <= update_angle(got[0].step, got[1].step) <= 180.0


def test_report_steps():
    assert report_steps(20) == [1, 20]
    assert report_steps(20, every=5) == [1, 5, 10, 15, 20]
    assert report_steps(4, every=1) == [1, 2, 3, 4]
    assert report_steps(10, explicit=[3, 0, 11]) == [1, 3, 10]
    assert report_steps(0) == []


def test_list_images_and_webp(data):
    files = list_images(data, limit=2)
    assert [f.name for f in files] == ["im0.png", "im1.png"] and len(list_images(data)) == 3
    img = Image.open(files[0]).convert("RGB")
    lo, x_lo = roundtrip("webp", img, 5)
    hi, x_hi = roundtrip("webp", img, 95)
    assert lo[:4] == b"RIFF" and len(lo) < len(hi) and x_lo.shape == (1, 3, 72, 96)
    x = pil_to_tensor(img)
    assert metrics.psnr(x_hi, x) > metrics.psnr(x_lo, x)


def test_evaluate_jpeg_records_every_metric(data, tiny_assets, tmp_path, pipe):
    doc = _run(tmp_path, "jpeg", "--data", data, "--assets", tiny_assets, "--codec", "jpeg",
               "--qf", 10, 40, "--steps", 3, "--all-steps", "--seed", 1)
    assert doc["schema"] == "dirac_demo.evaluate/1" and doc["images"] == ["im0.png", "im1.png", "im2.jpg"]
    assert doc["dirac_demo_version"] == __version__
    assert doc["swd_config"]["levels"] == 3 and doc["swd_config"]["patches_per_image"] == 32
    assert [p["rate"] for p in doc["points"]] == [10, 40] and doc["device"] == "cpu"
    p = doc["points"][0]
    assert [s["step"] for s in p["steps"]] == [1, 2, 3] and [s["t"] for s in p["steps"]] == [20, 10, 0]
    assert [c["step"] for c in p["curvature"]] == [2, 3]
    for block in [p["base"], *p["steps"]]:
        assert set(block) >= {"psnr", "ms_ssim", "swd", "swd_levels", "lpips", "fid", "kid"}
        assert block["swd"] > 0 and len(block["swd_levels"]) == 3
        assert block["ms_ssim"] is None and block["ms_ssim_unavailable"]   # images under 161 px
        for name in ("lpips", "fid", "kid"):
            assert block[name] is not None or block[f"{name}_unavailable"]
    # bpp from the real .drc files and PSNR as mean over images, recomputed independently
    files = list_images(data)
    comps = [pipe.compress(f, "jpeg", 10) for f in files]
    assert p["bpp"] == pytest.approx(np.mean([c.bpp for c in comps]))
    assert p["bpp_payload"] < p["bpp"]
    assert p["base"]["psnr"] == pytest.approx(np.mean([metrics.psnr(c.base, c.original) for c in comps]))
    assert doc["points"][1]["bpp"] > p["bpp"] and doc["points"][1]["base"]["psnr"] > p["base"]["psnr"]
    # deterministic for a seed
    again = _run(tmp_path, "again", "--data", data, "--assets", tiny_assets, "--codec", "jpeg",
                 "--qf", 10, "--steps", 3, "--seed", 1, "--no-lpips", "--no-fid")
    q = again["points"][0]
    assert q["steps"][-1]["swd"] == p["steps"][-1]["swd"] and q["steps"][-1]["psnr"] == p["steps"][-1]["psnr"]
    assert q["base"]["lpips_unavailable"] == "disabled with --no-lpips"


def test_evaluate_neural_comparisons_plots_and_report(data, tiny_assets, tmp_path):
    doc = _run(tmp_path, "neural", "--data", data, "--assets", tiny_assets, "--codec", "neural",
               "--lmbda", 0.002, 0.008, "--steps", 2, "--threshold-compare", "--full-steps-compare",
               "--step-every", 50, "--limit", 2, "--plots", tmp_path / "figs", "--report", tmp_path / "r.md")
    variants = [(p["rate"], p["variant"], p["num_steps"], p["threshold"]) for p in doc["points"]]
    assert variants == [(r, v, n, t) for r in (0.002, 0.008) for v, n, t in
                        (("main", 2, True), ("full_steps", 100, True), ("no_threshold", 2, False))]
    full = doc["points"][1]
    assert [s["step"] for s in full["steps"]] == [1, 50, 100] and len(full["curvature"]) == 99
    assert doc["points"][0]["clip"] == pytest.approx(0.1) and doc["points"][2]["clip"] == 1.0
    webp = _run(tmp_path, "webp", "--data", data, "--codec", "webp", "--quality", 5, 30, 90, "--limit", 2)
    assert all(p["steps"] == [] and p["num_steps"] == 0 and p["bpp"] > 0 for p in webp["points"])
    figs = plots.render_all([doc, webp], tmp_path / "figs2")
    names = {f.name for f in figs}
    assert {"rate_distortion.png", "rate_perception.png", "traversal_neural.png"} <= names
    assert all(f.read_bytes()[:4] == b"\x89PNG" for f in figs)
    assert (tmp_path / "figs" / "traversal_neural.png").exists()
    text = report.render([doc, webp])
    for title in ("Claim 1", "Claim 2", "Claim 3", "Claim 4", "BD-rate"):
        assert title in text
    assert "Neural+DIRAC-1" in text and "WebP" in text
    assert (tmp_path / "r.md").read_text().startswith("### Setup")
    # files written before the version field read alike
    old = [{k: v for k, v in d.items() if k != "dirac_demo_version"} for d in (doc, webp)]
    assert report.render(old) == text and plots.curves(old, "psnr") == plots.curves([doc, webp], "psnr")
    # merging: a main point evaluated on more images wins the curves and claim 1; claim 2 pairs
    # S = 20 with S = 100 from the same document only
    bigger = json.loads(json.dumps(doc))
    bigger["images"].append("extra.png")
    bigger["points"] = [dict(p, bpp=p["bpp"] + 1.0) for p in bigger["points"] if p["variant"] == "main"]
    merged = plots.points([doc, bigger])
    assert len(merged) == 2 and all(p["_doc"] == 1 and p["_images"] == 3 for p in merged)
    # on the same images, a point with DIRAC steps wins over a base-only one listed before it
    base_only = json.loads(json.dumps(doc))
    base_only["points"] = [dict(p, steps=[], num_steps=0) for p in base_only["points"] if p["variant"] == "main"]
    tied = plots.points([base_only, doc])
    assert len(tied) == 2 and all(p["_doc"] == 1 and p["steps"] for p in tied)
    claim1 = report.claim1(merged)
    assert claim1.count("| Neural | lmbda 0.002 |") == 1 and "| 3 |" in claim1
    pairs = report._pairs(plots.points([doc, bigger], None), "full_steps")
    assert len(pairs) == 2 and all(a["_doc"] == b["_doc"] == 0 for a, b in pairs)
    assert report.main(["--from", str(tmp_path / "neural.json"), "--out", str(tmp_path / "r2.md")]) == 0


def test_evaluate_avif_beside_webp(data, tmp_path):
    """AVIF alone (--steps 0) beside the WebP baseline: real files, its own curve, rows after WebP's,
    a BD-rate row."""
    avif = _run(tmp_path, "avif", "--data", data, "--codec", "avif", "--quality", 10, 30, 50, 70, "--limit", 2,
                "--steps", 0, "--no-lpips", "--no-fid")
    webp = _run(tmp_path, "webp", "--data", data, "--codec", "webp", "--quality", 5, 30, 60, 90, "--limit", 2,
                "--no-lpips", "--no-fid")
    pts = avif["points"]
    assert [(p["codec"], p["rate"], p["rate_param"]) for p in pts] == [("avif", q, "quality") for q in (10, 30, 50, 70)]
    assert all(p["steps"] == [] and p["num_steps"] == 0 for p in pts)
    # the payload is the real .avif file, recomputed independently; the .drc adds its header;
    # more quality, more bytes and PSNR
    images = [Image.open(f).convert("RGB") for f in list_images(data, limit=2)]
    assert pts[1]["bpp_payload"] == pytest.approx(
        np.mean([bits_per_pixel(len(encode_avif(im, 30)), im.width, im.height) for im in images]))
    header = 22        # magic, version, codec, size, parameters (1 byte), chunk count and length, CRC
    assert pts[1]["bpp"] - pts[1]["bpp_payload"] == pytest.approx(
        np.mean([bits_per_pixel(header, im.width, im.height) for im in images]))
    assert all(a["bpp"] < b["bpp"] and a["base"]["psnr"] < b["base"]["psnr"] for a, b in zip(pts, pts[1:]))
    # listed last, AVIF (a base codec of the table) still comes before the WebP baseline
    text = report.render([webp, avif])
    claim1 = text.split("### Claim 1")[1].split("###")[0]
    assert claim1.index("| AVIF | quality 10 |") < claim1.index("| WebP | quality 5 |")
    assert "| AVIF | WebP |" in text.split("### BD-rate")[1]
    assert list(plots.curves([webp, avif], "swd")) == [("avif", "base"), ("webp", "base")]
    assert "rate_perception.png" in {f.name for f in plots.render_all([avif, webp], tmp_path / "figs")}


@pytest.mark.parametrize("args", [["--codec", "jpeg", "--lmbda", "0.01"],
                                  ["--codec", "jpeg", "--threshold-compare", "--no-threshold"],
                                  ["--codec", "webp", "--full-steps-compare"],
                                  ["--codec", "webp", "--threshold-compare"],
                                  ["--codec", "avif", "--quality", "101"],
                                  ["--codec", "avif", "--qf", "10"],
                                  ["--codec", "jpeg", "--quality", "10"],
                                  ["--codec", "jpeg", "--steps", "101"],
                                  ["--codec", "jpeg", "--refine", "5"],
                                  ["--codec", "neural", "--refine", "-1"],
                                  ["--codec", "neural", "--refine", "5", "--threshold-compare"]])
def test_evaluate_rejects_bad_arguments(data, tiny_assets, args, capsys):
    assert main(["--data", str(data), "--assets", str(tiny_assets), *args, "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_evaluate_missing_data_and_weights(tmp_path, data, capsys):
    assert main(["--data", str(tmp_path / "nothing"), "--quiet"]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["--data", str(data), "--assets", str(tmp_path / "empty"), "--codec", "neural", "--quiet"]) == 2
    assert "neural codec" in capsys.readouterr().err
    assets = tmp_path / "no_table"   # a neural DIRAC model without θ(λ): on/off cannot differ
    export_codec(tiny_codec(), assets / "codec", {"note": "fixture"})
    export_dirac(tiny_net(2), assets / "dirac_neural", {"note": "fixture"})
    assert main(["--data", str(data), "--assets", str(assets), "--codec", "neural", "--threshold-compare",
                 "--quiet"]) == 2
    assert "threshold table" in capsys.readouterr().err
    assets = tmp_path / "codec_only"
    export_codec(tiny_codec(), assets / "codec", {"note": "fixture"})
    assert main(["--data", str(data), "--assets", str(assets), "--codec", "neural", "--quiet"]) == 2
    assert capsys.readouterr().err == "error: No trained DIRAC model for the neural codec is loaded: use --steps 0.\n"


def test_benchmark_smoke(tiny_assets, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert benchmark.main(["--assets", str(tiny_assets), "--sizes", "48x32", "64", "--repeats", "2",
                           "--matmul", "128", "--threads", "1", "--precision", "fp32", "--device", "cpu",
                           "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == "dirac_demo.benchmark/1" and doc["codec"] == "jpeg" and doc["matmul"]["gflops"] > 0
    assert doc["dirac_demo_version"] == __version__ and doc["device"] == "cpu" and doc["threads"] == 1
    assert [(r["width"], r["height"]) for r in doc["results"]] == [(48, 32), (64, 64)]
    small, big = doc["results"]
    assert 0 < small["gflops_per_step"] < big["gflops_per_step"]
    assert small["effective_gflop"] == pytest.approx(small["ms_per_step"] / 1e3 * doc["matmul"]["gflops"])
    assert all(r["first_frame_s"] > 0 and r["peak_mem_mib"] > 0 for r in doc["results"])
    assert all(r["swd_ms"] > 0 and r["swd_share"] == pytest.approx(r["swd_ms"] / r["ms_per_step"])
               for r in doc["results"])
    out = capsys.readouterr().out
    assert "GFLOP/step" in out and f"{small['swd_ms']:.1f} ({100 * small['swd_share']:.1f} %)" in out
    assert "Speed" in report.render([doc])
    with pytest.raises(Exception):
        benchmark.parse_size("12x")


def test_benchmark_counts_every_concurrent_visitors_runs(tiny_assets, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert benchmark.main(["--assets", str(tiny_assets), "--sizes", "32", "--repeats", "1", "--matmul", "64",
                           "--threads", "1", "--precision", "fp32", "--device", "cpu", "--clients", "1", "3",
                           "--client-size", "40x24", "--client-runs", "2", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["clients"]
    assert [(r["clients"], r["images"], r["width"], r["height"]) for r in rows] == [(1, 2, 40, 24), (3, 6, 40, 24)]
    assert all(r["images_per_s"] > 0 and r["median_run_s"] > 0 and r["steps"] == 20 for r in rows)
    assert "images/s" in capsys.readouterr().out
    assert benchmark.main(["--assets", str(tiny_assets), "--sizes", "32", "--clients", "0", "--device", "cpu"]) == 2


def _point(codec, rate, base, steps):
    return {"codec": codec, "rate": rate, "rate_param": "qf" if codec == "jpeg" else "lmbda", "variant": "main",
            "num_steps": steps[-1][0], "bpp": 0.3, "base": {"psnr": base[0], "swd": base[1]}, "curvature": [],
            "steps": [{"step": k, "psnr": p, "swd": s} for k, p, s in steps]}


def test_report_targets_from_synthetic_documents():
    ev = {"schema": "dirac_demo.evaluate/1", "images": ["a.png"] * 24, "swd_floor": {"swd": 6.0},
          "points": [_point("jpeg", 10.0, (26.0, 20.0), [(1, 27.2, 25.0), (10, 26.0, 14.0), (20, 25.5, 11.0)]),
                     _point("neural", 0.0016, (29.0, 17.0), [(1, 28.85, 20.0), (10, 28.0, 11.5), (20, 27.9, 12.0)])]}
    bench = {"schema": "dirac_demo.benchmark/1", "precision": "bf16", "threads": 2, "matmul": {"gflops": 250.0},
             "results": [{"width": 768, "height": 512, "ms_per_step": 300.0, "gflops_per_step": 142.0,
                          "effective_gflop": 75.0}]}
    rows = {line.split(" | ")[0].lstrip("| "): line for line in report.targets([ev, bench]).splitlines()[2:]}
    status = {k: v.rstrip(" |").rsplit(" | ", 1)[1] for k, v in rows.items()}
    assert status == {
        "JPEG+DIRAC QF 10, first step: PSNR ≥ JPEG + 1.0 dB": "met",
        "JPEG+DIRAC QF 10, last step: PSNR ≥ JPEG − 1.0 dB": "met",
        "JPEG+DIRAC QF 10, last step: SWD ≤ 0.6 × base's": "met",
        "neural+DIRAC λ 0.0016, first step: PSNR ≥ base − 0.1 dB": "not met",
        "neural+DIRAC λ 0.0016, last step: SWD ≤ 0.7 × base's": "not met",
        "speed, 768×512: s/step × fp32 matmul GFLOP/s ≤ 80 (≈ 0.5 s/step)": "met",
        "smooth traversal: PSNR and SWD fall (close to) monotonically over the steps": "not met",
    }
    jpeg_swd = rows["JPEG+DIRAC QF 10, last step: SWD ≤ 0.6 × base's"]
    assert "**0.55×**" in jpeg_swd and "above the floor (6.00): 0.36×" in jpeg_swd
    assert "PSNR falls from step 1 on at 2 of 2 rate points; SWD at 1 of 2" in rows[
        "smooth traversal: PSNR and SWD fall (close to) monotonically over the steps"]
    # a rise within 2 % counts as close to monotone, and the table says how large it was
    ev["points"][1]["steps"][2]["swd"] = 11.6
    ev["points"][1]["steps"][1]["swd"] = 11.4
    smooth = [line for line in report.targets([ev]).splitlines() if line.startswith("| smooth")][0]
    assert smooth.endswith("| met |") and "largest SWD rise +1.8 % (Neural lmbda 0.0016, step 10→20)" in smooth
    assert report.targets([]) is None


def test_evaluate_refined_points(data, tiny_assets, tmp_path):
    doc = _run(tmp_path, "refined", "--data", data, "--assets", tiny_assets, "--codec", "neural",
               "--lmbda", 0.0016, "--steps", 0, "--refine", 3, "--no-lpips", "--no-fid")
    p = doc["points"][0]
    assert p["variant"] == "refined" and p["refine"] == 3 and p["steps"] == [] and p["bpp"] > 0


def test_refined_encoder_is_its_own_curve_and_target_row():
    """evaluate --refine points (variant "refined") form a separate curve with its own BD-rate row."""
    def base_point(codec, rate, bpp, psnr, variant="main"):
        return {"codec": codec, "rate": rate, "rate_param": "lmbda", "variant": variant, "num_steps": 0,
                "refine": 60 if variant == "refined" else 0, "bpp": bpp, "base": {"psnr": psnr, "swd": 10.0},
                "steps": [], "curvature": []}
    bpps = [0.2, 0.4, 0.6, 0.8]
    webp = {"schema": "dirac_demo.evaluate/1", "images": ["a.png"] * 24,
            "points": [base_point("webp", q, b, 26 + 10 * b) for q, b in zip([5, 20, 50, 70], bpps)]}
    plain = {"schema": "dirac_demo.evaluate/1", "images": ["a.png"] * 24,   # 5 % more bytes than WebP
             "points": [base_point("neural", r, b * 1.05, 26 + 10 * b) for r, b in zip([4, 3, 2, 1], bpps)]}
    refined = {"schema": "dirac_demo.evaluate/1", "images": ["a.png"] * 24,   # 5 % fewer
               "points": [base_point("neural", r, b * 0.95, 26 + 10 * b, "refined")
                          for r, b in zip([4, 3, 2, 1], bpps)]}
    series = plots.curves([webp, plain, refined], "psnr")
    assert series[("neural", "base")]["bpp"] == pytest.approx([b * 1.05 for b in bpps])
    assert series[("neural", "refined")]["label"] == "Neural, refined encoder (60 it.)"
    rows = [r for r in report.targets([webp, plain, refined]).splitlines() if "BD-rate" in r]
    assert len(rows) == 2
    assert "**+5.0 %**" in rows[0] and rows[0].endswith("| not met |")
    assert rows[1].startswith("| neural codec, refined encoder (60 it.): BD-rate")
    assert "**-5.0 %**" in rows[1] and rows[1].endswith("| met |")
    assert "Neural, refined encoder (60 it.)" in report.bd_table([webp, plain, refined])


def test_evaluate_spacing_compare(data, tiny_assets, tmp_path, capsys):
    """--spacing-compare runs the paper's uniform late start beside the model's own spacing."""
    import shutil

    from dirac_demo.train import export
    assets = tmp_path / "a"
    shutil.copytree(tiny_assets, assets)
    assert export.main(["sampler", "--out", str(assets / "dirac_jpeg"), "--start-scale", "1.5", "--power", "2"]) == 0
    doc = _run(tmp_path, "sp", "--data", data, "--assets", assets, "--codec", "jpeg", "--qf", 10, "--steps", 5,
               "--spacing-compare", "--limit", 2)
    own, paper = doc["points"]
    assert (own["variant"], paper["variant"]) == ("main", "paper_spacing")
    assert own["spacing"] == {"start_scale": 1.5, "power": 2.0}
    assert paper["spacing"] == {"start_scale": 1.0, "power": 1.0}
    assert [s["t"] for s in own["steps"]] == [60, 0] and [s["t"] for s in paper["steps"]] == [40, 0]
    assert own["steps"][0]["psnr"] != paper["steps"][0]["psnr"]
    assert own["base"]["psnr"] == paper["base"]["psnr"]
    text = report.render([doc])
    assert "Late-start spacing" in text and "×1.5 start, power 2" in text and "60 / 40" in text
    # the shipped-style fixture samples with the paper's spacing: the comparison would be identical
    assert main(["--data", str(data), "--assets", str(tiny_assets), "--codec", "jpeg", "--spacing-compare",
                 "--quiet"]) == 2
    assert "paper's spacing" in capsys.readouterr().err
    assert main(["--data", str(data), "--codec", "webp", "--spacing-compare", "--quiet"]) == 2
