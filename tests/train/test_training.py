"""Training commands: a few steps on tiny generated data, resume, Ctrl-C, export, torchrun/gloo."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dirac_demo import __version__
from dirac_demo.codecs import CODECS
from dirac_demo.train import export, thresholds, codec as train_codec, dirac as train_dirac
from dirac_demo.weights import load_codec, load_dirac
from training_data import TINY, gradient_images


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return gradient_images(tmp_path_factory.mktemp("data"), 160, 200)


def _rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_train_dirac_jpeg_resume_and_export(data_dir, tmp_path):
    out = tmp_path / "run"
    args = ["--data", str(data_dir), "--out", str(out), "--crop", "32", "--batch", "2", "--bf16", "off",
            "--save-every", "2", "--val-every", "2", *TINY]
    assert train_dirac.main(args + ["--steps", "3", "--lr", "3e-5", "--jpeg-writers", "pillow", "444"]) == 0
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ck["step"] == 3 and ck["opt"]["param_groups"][0]["lr"] == 3e-5
    assert train_dirac.main(args + ["--steps", "4"]) == 0          # resumes at step 3, keeps its lr
    assert torch.load(out / "checkpoint.pt", weights_only=False)["opt"]["param_groups"][0]["lr"] == 3e-5
    assert train_dirac.main(args + ["--steps", "5", "--lr", "1e-4"]) == 0   # an explicit --lr overrides
    assert torch.load(out / "checkpoint.pt", weights_only=False)["opt"]["param_groups"][0]["lr"] == 1e-4
    rows = _rows(out / "log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    assert [r["val_swd_ratio"] != "" for r in rows] == [False, True, False, True, False]
    assert all(float(r["val_swd_ratio"]) > 0 for r in rows if r["val_swd_ratio"])
    assert (out / "loss.png").stat().st_size > 0
    assert export.main(["dirac", "--ckpt", str(out / "checkpoint.pt"), "--out", str(tmp_path / "dj")]) == 0
    model = load_dirac(tmp_path / "dj")
    assert model.meta["training"]["steps"] == 5
    # the exported EMA weights equal the checkpoint's (up to fp16)
    ema = torch.load(out / "checkpoint.pt", weights_only=False)["ema"]
    for k, v in model.net.state_dict().items():
        assert torch.allclose(v, ema[k].half().float())


def test_snr_weights_shift_weight_to_low_noise_and_keep_mean_one():
    from dirac_demo.diffusion.schedule import Schedule
    abar = Schedule().alphas_cumprod
    assert np.array_equal(train_dirac.snr_weights(abar, None, 200, 0.8), np.ones(1000))
    w = train_dirac.snr_weights(abar, 20.0, 200, 0.8)
    assert 0.8 * w[:200].mean() + 0.2 * w.mean() == pytest.approx(1.0)
    assert np.all(np.diff(w) <= 1e-12) and w[0] == w[50] and w[190] < w[100] < w[0]
    snr = abar / (1 - abar)
    assert w[150] / w[0] == pytest.approx(snr[150] / 20.0)
    with pytest.raises(ValueError):
        train_dirac.snr_weights(abar, 0.0, 200, 0.8)


def test_snr_gamma_changes_the_update_and_is_recorded(data_dir, tmp_path):
    """A γ so small that every weight is equal trains exactly as w_t = 1; γ = 20 does not."""
    def run(name, extra):
        out = tmp_path / name
        assert train_dirac.main(["--data", str(data_dir), "--out", str(out), "--crop", "32", "--batch", "4",
                                 "--bf16", "off", "--steps", "2", "--val-every", "100", "--threads", "1",
                                 *TINY, *extra]) == 0
        return torch.load(out / "checkpoint.pt", weights_only=False)
    plain, flat, snr = run("plain", []), run("flat", ["--snr-gamma", "1e-9"]), run("snr", ["--snr-gamma", "20"])
    assert snr["meta"]["snr_gamma"] == 20.0 and plain["meta"]["snr_gamma"] is None
    assert all(torch.allclose(plain["model"][k], flat["model"][k], atol=1e-7) for k in plain["model"])
    assert not all(torch.allclose(plain["model"][k], snr["model"][k], atol=1e-7) for k in plain["model"])


def test_validate_measures_gain_and_realism():
    """A network that adds nothing gains 0 dB at SWD 1× the base's; one that predicts the true
    residual gains a lot and brings SWD far below 1×."""
    from dirac_demo.diffusion.schedule import Schedule
    import contextlib
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 48, 48, generator=g)
    xb = (torch.nn.functional.avg_pool2d(x, 4).repeat_interleave(4, -1).repeat_interleave(4, -2) * 255).round() / 255
    nothing = lambda r_t, t, xbs: torch.zeros_like(r_t)  # noqa: E731
    oracle = lambda r_t, t, xbs: (x * 2 - 1) - xbs  # noqa: E731
    g1, g20, ratio = train_dirac.validate(nothing, (x, xb), Schedule(), contextlib.nullcontext)
    assert g1 == pytest.approx(0.0, abs=1e-6) and g20 == pytest.approx(0.0, abs=1e-6)
    assert ratio == pytest.approx(1.0)
    g1, g20, ratio = train_dirac.validate(oracle, (x, xb), Schedule(), contextlib.nullcontext)
    assert g1 > 20 and g20 > 20 and ratio < 0.5   # SWD of an image set against itself is not 0 (patch sampling)


def test_log_written_by_an_older_version_is_upgraded(tmp_path):
    """Resuming a run whose log.csv has other columns rewrites it under the new header, keeping
    old values under their own names, so new rows never land under the wrong column."""
    from dirac_demo.train.runner import CsvLog
    path = tmp_path / "log.csv"
    path.write_text("step,loss,val_gain_db,lr,old_col\n1,0.5,1.0,1e-4,x\n2,0.4,,1e-4,y\n3,0.3,,1e-4,z\n")
    log = CsvLog(path, ["step", "loss", "val_gain_db", "val_swd_ratio", "lr"], resume_step=2)
    log.write({"step": 3, "loss": "0.2", "val_swd_ratio": "0.7", "lr": "1e-5"})
    rows = _rows(path)
    assert list(rows[0]) == ["step", "loss", "val_gain_db", "val_swd_ratio", "lr", "old_col"]
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["val_gain_db"] == "1.0" and rows[0]["old_col"] == "x" and rows[0]["val_swd_ratio"] == ""
    assert rows[2] == {"step": "3", "loss": "0.2", "val_gain_db": "", "val_swd_ratio": "0.7", "lr": "1e-5",
                       "old_col": ""}
    assert _rows(tmp_path / "log.dropped.csv")[0]["old_col"] == "z"


def test_train_codec_then_neural_dirac_and_thresholds(data_dir, tmp_path):
    run = tmp_path / "codec"
    assert train_codec.main(["--data", str(data_dir), "--out", str(run), "--crop", "64", "--batch", "2",
                             "--N", "8", "--M", "8", "--steps", "3", "--val-every", "3"]) == 0
    rows = _rows(run / "log.csv")
    assert len(rows) == 3 and rows[-1]["val_psnr_mid"] != ""
    lmbdas = [float(r["lmbda"]) for r in rows]
    assert all(0.0004 <= l <= 0.016 for l in lmbdas)
    assert json.loads((run / "meta.json").read_text())["dirac_demo_version"] == __version__
    assert export.main(["codec", "--ckpt", str(run / "checkpoint.pt"), "--out", str(tmp_path / "codec")]) == 0
    codec = load_codec(tmp_path / "codec")
    assert codec.meta["dirac_demo_version"] == __version__ and codec.meta["training"]["steps"] == 3
    table_path = tmp_path / "th.json"
    assert thresholds.main(["--data", str(data_dir), "--base", "neural", "--codec", str(tmp_path / "codec"), "--out", str(table_path),
                            "--crops", "4", "--crop", "64", "--num", "5"]) == 0
    assert json.loads(table_path.read_text())["dirac_demo_version"] == __version__
    table = thresholds.read_table(table_path)
    assert len(table) == 5 and min(table) == pytest.approx(0.0004, rel=1e-4)
    assert all(0 < v <= 2 for v in table.values())
    # θ is the 95% coverage point of |x − x̃| (in [−1, 1] units) at each λ
    crops = torch.rand(4, 3, 64, 64)
    small = thresholds.threshold_table(codec, crops, num=3)
    for lmbda, theta in small.items():
        r = ((crops - codec.reconstruct(crops, lmbda)) * 2).abs()
        assert (r <= theta).float().mean().item() == pytest.approx(0.95, abs=0.01)
    out = tmp_path / "dn"
    assert train_dirac.main(["--data", str(data_dir), "--base", "neural", "--codec-weights", str(tmp_path / "codec"),
                             "--out", str(out), "--crop", "64", "--batch", "2", "--steps", "2", "--bf16", "off",
                             "--val-every", "100", *TINY]) == 0
    assert export.main(["dirac", "--ckpt", str(out / "checkpoint.pt"), "--out", str(tmp_path / "dirac_neural"),
                        "--thresholds", str(table_path)]) == 0
    assert load_dirac(tmp_path / "dirac_neural").thresholds.keys() == table.keys()
    # a new codec without retraining codec+DIRAC: only the table in the JSON changes
    weights = (tmp_path / "dirac_neural.safetensors").read_bytes()
    (tmp_path / "t2.json").write_text(json.dumps({"0.001": 0.25, "0.01": 0.5}))
    assert export.main(["table", "--thresholds", str(tmp_path / "t2.json"), "--out", str(tmp_path / "dirac_neural")]) == 0
    assert load_dirac(tmp_path / "dirac_neural").thresholds == {0.001: 0.25, 0.01: 0.5}
    assert load_dirac(tmp_path / "dirac_neural").meta["dirac_demo_version"] == __version__
    assert (tmp_path / "dirac_neural.safetensors").read_bytes() == weights
    with pytest.raises(SystemExit):   # not a DIRAC model: a usage error, nothing written
        export.main(["table", "--thresholds", str(tmp_path / "t2.json"), "--out", str(tmp_path / "codec")])


def test_jpeg_threshold_table_by_quality_factor(data_dir, tmp_path):
    """JPEG's table (A.4 with the quality factor as the rate): every QF, the 95% point of |x − x̃|."""
    table_path = tmp_path / "tj.json"
    assert thresholds.main(["--data", str(data_dir), "--base", "jpeg", "--out", str(table_path),
                            "--crops", "3", "--crop", "64"]) == 0
    table = thresholds.read_table(table_path)
    assert sorted(table) == [float(q) for q in range(1, 101)]
    assert table[5.0] > table[50.0] > table[95.0] > 0          # residuals shrink as the quality rises
    crops = torch.rand(3, 3, 64, 64)
    for q, theta in thresholds.quality_threshold_table(CODECS["jpeg"], crops, [10, 40]).items():
        r = ((crops - thresholds.jpeg_roundtrip(crops, q)) * 2).abs()
        assert (r <= theta).float().mean().item() == pytest.approx(0.95, abs=0.01)
    with pytest.raises(SystemExit):
        thresholds.main(["--data", str(data_dir), "--base", "jpeg", "--out", str(table_path), "--coverage", "0"])


def test_jpeg_roundtrip_is_the_receivers_jpeg():
    """The training pairs' JPEG (uint8 batches, a quality per crop) and the threshold table's (tensors,
    one quality) are one function, and give the pixels the JPEG base codec decodes."""
    from dirac_demo.codecs.jpeg import JpegCodec
    from dirac_demo.train.data import jpeg_roundtrip, to_tensor
    crops = np.random.default_rng(0).integers(0, 256, (3, 24, 40, 3), dtype=np.uint8)
    jpeg = JpegCodec()
    for q in (5, 50):
        receiver = torch.cat([jpeg.decompress(jpeg.compress(x[None], q))["x_hat"] for x in to_tensor(crops)])
        assert torch.equal(to_tensor(jpeg_roundtrip(crops, [q] * 3)), receiver)
        assert torch.equal(thresholds.jpeg_roundtrip(to_tensor(crops), q), receiver)
    mixed = jpeg_roundtrip(crops, [5, 50, 95])
    assert np.array_equal(mixed[1], jpeg_roundtrip(crops[1:2], [50])[0]) and not np.array_equal(mixed[0], mixed[2])


def test_avif_pairs_and_table_are_the_receivers_avif(data_dir, tmp_path):
    """AVIF training pairs, the AVIF threshold table and the AVIF base codec give the same pixels;
    a few training steps run on AVIF pairs and record the base codec."""
    from dirac_demo.codecs.avif import AvifCodec
    from dirac_demo.train.data import AvifPairs, avif_roundtrip, to_tensor
    crops = np.random.default_rng(0).integers(0, 256, (2, 32, 48, 3), dtype=np.uint8)
    codec = AvifCodec()
    receiver = torch.cat([codec.decompress(codec.compress(x[None], 30))["x_hat"] for x in to_tensor(crops)])
    assert torch.equal(to_tensor(avif_roundtrip(crops, [30, 30])), receiver)
    assert torch.equal(thresholds.avif_roundtrip(to_tensor(crops), 30), receiver)
    x, xb = AvifPairs(10, 80)(crops, np.random.default_rng(1))
    assert x.shape == xb.shape == (2, 3, 32, 48) and not torch.equal(x, xb)
    with pytest.raises(ValueError):
        AvifPairs(50, 101)
    table = thresholds.quality_threshold_table(CODECS["avif"], to_tensor(crops), [10, 90])
    assert table[10.0] > table[90.0] > 0
    out = tmp_path / "run"
    assert train_dirac.main(["--data", str(data_dir), "--out", str(out), "--base", "avif", "--qf-min", "20",
                             "--qf-max", "60", "--crop", "32", "--batch", "2", "--bf16", "off", "--steps", "2",
                             "--save-every", "2", "--val-every", "2", *TINY]) == 0
    meta = torch.load(out / "checkpoint.pt", weights_only=False)["meta"]
    assert meta["base"] == "avif" and meta["qf_range"] == [20, 60]


def test_jpeg_writers_write_what_a_receiver_reads_as_such():
    """Each writer of the mixed training set: the receiver's reading of its file (subsampling,
    whether the quality factor is exact) is that writer's."""
    from dirac_demo.codecs import read
    from dirac_demo.train.data import JPEG_WRITERS, JpegPairs, jpeg_bytes
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    rng = np.random.default_rng(0)
    seen = {}
    for writer in JPEG_WRITERS:
        enc = read(jpeg_bytes(img, 30, writer, rng))
        facts = enc.file
        seen[writer] = (facts.subsampling, facts.quality_read == "exact", enc.quality == 30)
    assert seen == {"pillow": ("4:2:0", True, True), "444": ("4:4:4", True, True), "422": ("4:2:2", True, True),
                    "mozjpeg-tables": ("4:2:0", False, False), "double": ("4:2:0", True, True)}
    with pytest.raises(ValueError):
        JpegPairs(5, 90, ("pillow", "gif"))
    crops = np.asarray(img)[None].repeat(6, 0)
    x, xb = JpegPairs(5, 90, JPEG_WRITERS)(crops, np.random.default_rng(2))
    assert x.shape == xb.shape == (6, 3, 48, 64) and not torch.equal(x, xb)


def test_threshold_files_with_and_without_the_version_read_alike(tmp_path):
    (tmp_path / "old.json").write_text(json.dumps({"0.0004": 0.05, "0.016": 0.2}))
    (tmp_path / "new.json").write_text(json.dumps({"dirac_demo_version": __version__, "0.0004": 0.05, "0.016": 0.2}))
    assert thresholds.read_table(tmp_path / "old.json") == thresholds.read_table(tmp_path / "new.json") \
        == {0.0004: 0.05, 0.016: 0.2}


def test_mse_psnr_and_estimated_bpp_closed_forms():
    from dirac_demo.train.runner import mse_psnr
    assert mse_psnr(0.01) == pytest.approx(20.0) and mse_psnr(torch.tensor(1e-4)) == pytest.approx(40.0)
    assert mse_psnr(0.0) == float("inf")
    x = torch.zeros(2, 3, 16, 32)                     # likelihood 1/2 per symbol: one bit each
    likelihoods = [torch.full((2, 8, 4, 8), 0.5), torch.full((2, 4, 1, 2), 0.5)]
    assert train_codec.estimated_bpp(likelihoods, x).item() == pytest.approx((8 * 4 * 8 + 4 * 1 * 2) / (16 * 32))


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env


def test_ctrl_c_saves_a_checkpoint(data_dir, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "dirac_demo.train.dirac", "--data", str(data_dir), "--out", str(out), "--crop", "32",
           "--batch", "2", "--bf16", "off", "--save-every", "100000", "--val-every", "100000", "--threads", "1", *TINY]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log = out / "log.csv"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(_rows(log)) < 2):
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ck["step"] >= 2


def test_torchrun_gloo_two_processes(data_dir, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "dirac_demo.train.dirac", "--data", str(data_dir), "--out", str(out), "--crop", "32",
           "--batch", "2", "--bf16", "off", "--steps", "3", "--val-every", "100", "--threads", "1", *TINY]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ck["step"] == 3 and ck["meta"]["batch"] == 4      # global batch = 2 processes x 2
    assert len(_rows(out / "log.csv")) == 3                    # only rank 0 logs


def test_init_from_exported_weights_continues_the_count(data_dir, tmp_path):
    run = tmp_path / "codec"
    common = ["--data", str(data_dir), "--crop", "64", "--batch", "2", "--N", "8", "--M", "8", "--val-every", "100"]
    assert train_codec.main([*common, "--out", str(run), "--steps", "2"]) == 0
    export.main(["codec", "--ckpt", str(run / "checkpoint.pt"), "--out", str(tmp_path / "c")])
    assert train_codec.main([*common, "--out", str(tmp_path / "again"), "--init", str(tmp_path / "c"),
                             "--steps", "3"]) == 0
    assert torch.load(tmp_path / "again" / "checkpoint.pt", weights_only=False)["step"] == 3
    dj = tmp_path / "dj"
    args = ["--data", str(data_dir), "--crop", "32", "--batch", "2", "--bf16", "off", "--val-every", "100", *TINY]
    assert train_dirac.main([*args, "--out", str(dj), "--steps", "2"]) == 0
    export.main(["dirac", "--ckpt", str(dj / "checkpoint.pt"), "--out", str(tmp_path / "d")])
    # same base: the count goes on; another base: a fine-tune from 0 that records where it started
    assert train_dirac.main([*args, "--out", str(tmp_path / "dj2"), "--init", str(tmp_path / "d"), "--steps", "3"]) == 0
    assert torch.load(tmp_path / "dj2" / "checkpoint.pt", weights_only=False)["step"] == 3
    assert train_dirac.main([*args, "--out", str(tmp_path / "dn"), "--init", str(tmp_path / "d"), "--steps", "1",
                             "--base", "neural", "--codec-weights", str(tmp_path / "c")]) == 0
    ck = torch.load(tmp_path / "dn" / "checkpoint.pt", weights_only=False)
    assert ck["step"] == 1 and ck["meta"]["init"]["steps"] == 2 and ck["meta"]["init"]["base"] == "jpeg"


def test_csv_log_resume_moves_rows_past_the_checkpoint_aside(tmp_path):
    """A run killed between saves resumes from its last checkpoint; its log must not keep
    (and later duplicate) the steps whose weights were lost."""
    from dirac_demo.train.runner import CsvLog

    path = tmp_path / "log.csv"
    log = CsvLog(path, ["step", "loss"])
    for s in range(1, 8):
        log.write({"step": s, "loss": 1.0 / s})
    CsvLog(path, ["step", "loss"], resume_step=5)
    with open(path) as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == [1, 2, 3, 4, 5]
    with open(tmp_path / "log.dropped.csv") as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == [6, 7]
    CsvLog(path, ["step", "loss"], resume_step=5)     # nothing past 5: unchanged, nothing added
    with open(tmp_path / "log.dropped.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 2


def test_worker_processes_feed_both_trainers(data_dir, tmp_path):
    """--workers N: crops (and JPEG pairs) come from DataLoader processes; the lr decays to --lr-end."""
    common = ["--data", str(data_dir), "--batch", "2", "--val-every", "100", "--workers", "1"]
    assert train_dirac.main([*common, "--out", str(tmp_path / "dj"), "--crop", "32", "--bf16", "off",
                             "--steps", "3", "--lr", "1e-4", "--lr-end", "1e-5", *TINY]) == 0
    rows = _rows(tmp_path / "dj" / "log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert [float(r["lr"]) for r in rows] == pytest.approx([1e-4, 7e-5, 4e-5])
    assert train_codec.main([*common, "--out", str(tmp_path / "c"), "--crop", "64", "--N", "8", "--M", "8",
                             "--steps", "2"]) == 0
    assert all(np.isfinite(float(r["bpp"])) for r in _rows(tmp_path / "c" / "log.csv"))


def test_linear_decay_reaches_the_end_value_and_stays():
    from dirac_demo.train.runner import LinearDecay

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    decay = LinearDecay(opt, start_step=10, total=20, end=0.5)
    seen = []
    for step in (10, 15, 20, 30):
        decay(step)
        seen.append(opt.param_groups[0]["lr"])
    assert seen == pytest.approx([1.0, 0.75, 0.5, 0.5])
    LinearDecay(opt, 0, 10, None)(5)                       # no --lr-end: untouched
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)


def test_a_resumed_run_goes_on_along_the_same_decay_line():
    from dirac_demo.train.runner import LinearDecay

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    first = LinearDecay(opt, start_step=0, total=20, end=0.0)
    first(8)
    saved = first.anchor
    opt.param_groups[0]["lr"] = 1.0                        # the resumed command sets --lr again
    resumed = LinearDecay(opt, start_step=8, total=20, end=0.0, resumed=saved)
    resumed(10)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)  # on the line from step 0, not from step 8
    opt.param_groups[0]["lr"] = 1.0
    changed = LinearDecay(opt, start_step=8, total=40, end=0.0, resumed=saved)  # new --steps: a new line
    changed(8)
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0)


def test_warmup_ramps_a_fresh_optimiser_onto_the_decay_line():
    from dirac_demo.train.runner import LinearDecay

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    decay = LinearDecay(opt, start_step=10, total=20, end=0.0, warmup=4)
    seen = []
    for step in (10, 11, 13, 14, 15, 20):
        decay(step)
        seen.append(opt.param_groups[0]["lr"])
    # steps 10-13 ramp 1/4 .. 4/4 of the line (1.0, 0.9, ..., 0.7), then the line alone
    assert seen == pytest.approx([0.25, 0.45, 0.7, 0.6, 0.5, 0.0])
    opt.param_groups[0]["lr"] = 2.0
    warm = LinearDecay(opt, 0, 10, None, warmup=2)          # warm-up without --lr-end: up to the set rate
    warm(0)
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0)
    warm(5)
    assert opt.param_groups[0]["lr"] == pytest.approx(2.0)


def test_warmup_applies_to_a_fresh_start_not_a_resumed_run_in_both_trainers(tmp_path, data_dir):
    from dirac_demo.train import codec as train_codec

    args = ["--data", str(data_dir), "--out", str(tmp_path / "c"), "--crop", "64", "--N", "8", "--M", "8",
            "--batch", "2", "--val-every", "100", "--lr", "1e-4", "--warmup", "4"]
    assert train_codec.main([*args, "--steps", "2"]) == 0
    assert train_codec.main([*args, "--steps", "3"]) == 0    # resumes with its Adam state: no second ramp
    lrs = [float(r["lr"]) for r in _rows(tmp_path / "c" / "log.csv")]
    assert lrs == pytest.approx([2.5e-5, 5e-5, 1e-4])
    from dirac_demo.train import dirac as train_dirac                        # the diffusion trainer takes the same flag
    assert train_dirac.main(["--data", str(data_dir), "--out", str(tmp_path / "d"), "--crop", "32", "--batch", "2",
                             "--bf16", "off", "--val-every", "100", "--lr", "1e-4", "--warmup", "2",
                             "--steps", "3", *TINY]) == 0
    assert [float(r["lr"]) for r in _rows(tmp_path / "d" / "log.csv")] == pytest.approx([5e-5, 1e-4, 1e-4])


def test_finite_guard_skips_bad_steps_then_stops():
    from dirac_demo.train.runner import FiniteGuard

    guard = FiniteGuard(patience=3)
    assert guard.ok(torch.tensor(1.0), 0)
    assert not guard.ok(torch.tensor(float("nan")), 1)
    assert not guard.ok(torch.tensor(float("inf")), 1)
    assert guard.ok(torch.tensor(0.5), 1) and guard.skipped == 2
    for _ in range(2):
        guard.ok(torch.tensor(float("nan")), 2)
    with pytest.raises(SystemExit, match="3 non-finite losses in a row"):
        guard.ok(torch.tensor(float("nan")), 2)


def test_hardware_segments_merge_and_reach_the_exported_facts(data_dir, tmp_path):
    from dirac_demo.train.runner import extend_segments, prior_segments

    legacy = prior_segments({"steps": 100, "wall_hours": 2.0, "hardware": "old CPU"})
    assert legacy == [{"hardware": "old CPU", "from_step": 1, "to_step": 100, "hours": 2.0}]
    gpu = extend_segments(legacy, "GPU", 100, 150, 360.0)
    assert gpu[-1] == {"hardware": "GPU", "from_step": 101, "to_step": 150, "hours": 0.1}
    more = extend_segments(gpu, "GPU", 150, 160, 36.0)        # same hardware, contiguous: merged
    assert len(more) == 2 and more[-1]["to_step"] == 160 and more[-1]["hours"] == pytest.approx(0.11)
    assert extend_segments(gpu, "GPU", 150, 150, 5.0) == gpu   # no step taken: nothing added
    run = tmp_path / "dj"
    args = ["--data", str(data_dir), "--out", str(run), "--crop", "32", "--batch", "2", "--bf16", "off",
            "--val-every", "100", *TINY]
    assert train_dirac.main([*args, "--steps", "2"]) == 0
    assert train_dirac.main([*args, "--steps", "3"]) == 0         # a resume on the same machine merges
    export.main(["dirac", "--ckpt", str(run / "checkpoint.pt"), "--out", str(tmp_path / "d")])
    facts = load_dirac(tmp_path / "d").meta["training"]
    assert [(s["from_step"], s["to_step"]) for s in facts["segments"]] == [(1, 3)]
    assert facts["hardware"] == facts["segments"][0]["hardware"] and "CPU" in facts["hardware"]


def test_accum_takes_the_large_batch_step(data_dir, tmp_path):
    """--batch 2 --accum 2 sees the same crops, timesteps and noise as --batch 4 and takes the
    same optimiser steps (up to float rounding); the checkpoint records the effective batch."""
    def run(name, extra):
        out = tmp_path / name
        assert train_dirac.main(["--data", str(data_dir), "--out", str(out), "--crop", "32", "--bf16", "off",
                                 "--steps", "2", "--val-every", "100", "--threads", "1", *TINY, *extra]) == 0
        return torch.load(out / "checkpoint.pt", weights_only=False), _rows(out / "log.csv")
    (big, big_log), (acc, acc_log), (small, _) = (run("big", ["--batch", "4"]),
                                                   run("acc", ["--batch", "2", "--accum", "2"]),
                                                   run("small", ["--batch", "2"]))
    assert big["meta"]["batch"] == acc["meta"]["batch"] == 4 and small["meta"]["batch"] == 2
    assert all(torch.allclose(big["model"][k], acc["model"][k], atol=1e-6) for k in big["model"])
    assert not all(torch.allclose(big["model"][k], small["model"][k], atol=1e-6) for k in big["model"])
    for a, b in zip(big_log, acc_log):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-4)
    with pytest.raises(SystemExit):
        train_dirac.main(["--data", str(data_dir), "--out", str(tmp_path / "bad"), "--accum", "0"])


def _train_part(data_dir, tmp_path, part: str, *args: str):
    """A 2-step tiny codec, then ``--train part`` from it to step 6: (the codec, the result, its checkpoint).

    Checks on the way that the part needs --init and that the checkpoint records what trained."""
    common = ["--data", str(data_dir), "--crop", "64", "--batch", "2", "--N", "8", "--M", "8", "--val-every", "100"]
    with pytest.raises(SystemExit, match="--init"):
        train_codec.main([*common, "--out", str(tmp_path / "no_init"), "--train", part, "--steps", "1"])
    assert train_codec.main([*common, "--out", str(tmp_path / "full"), "--steps", "2"]) == 0
    export.main(["codec", "--ckpt", str(tmp_path / "full" / "checkpoint.pt"), "--out", str(tmp_path / "c")])
    assert train_codec.main([*common, "--out", str(tmp_path / part), "--init", str(tmp_path / "c"),
                             "--train", part, *args, "--steps", "6", "--lr", "1e-2"]) == 0
    ck = torch.load(tmp_path / part / "checkpoint.pt", weights_only=False)
    assert ck["step"] == 6 and ck["meta"]["trained"] == part
    export.main(["codec", "--ckpt", str(tmp_path / part / "checkpoint.pt"), "--out", str(tmp_path / "new")])
    return load_codec(tmp_path / "c"), load_codec(tmp_path / "new"), ck


def test_encoder_only_training_keeps_the_decoder_and_its_files(data_dir, tmp_path):
    """--train encoder moves g_a, h_a and the scale law only: the decoder side stays bit-identical,
    so the weights id (a fingerprint of the decoder) is kept and files made before still decode."""
    from dirac_demo import codecs
    old, new, ck = _train_part(data_dir, tmp_path, "encoder")
    x = torch.rand(1, 3, 64, 64)
    old_file = codecs.parse(codecs.pack(old.compress(x, 0.0016)))
    assert ck["meta"]["segments"][-1]["hardware"].endswith("encoder only")
    encoder = old.encoder_parameter_names()
    assert {n.split(".")[0] for n in encoder} == {"g_a", "h_a", "log_alpha", "beta"}
    old_p, new_p = dict(old.named_parameters()), dict(new.named_parameters())
    assert all(torch.equal(old_p[n], new_p[n]) for n in old_p if n not in encoder)     # decoder untouched
    assert any(not torch.equal(old_p[n], new_p[n]) for n in encoder)                  # encoder trained
    assert new.weights_id() == old.weights_id()
    assert torch.equal(new.decompress(old_file)["x_hat"], old.decompress(old_file)["x_hat"])            # old files decode
    enc = new.compress(x, 0.0016)
    assert (enc.scale_q, enc.chunks) != (old_file.scale_q, old_file.chunks)             # a new encoder's file
    assert enc.weights_id == old_file.weights_id and old.decompress(enc)["x_hat"].shape == x.shape  # the old decoder reads it


def test_post_filter_training_adds_a_filter_and_keeps_the_bitstreams(data_dir, tmp_path):
    """--train post gives an --init codec a post-filter and trains only it: the files stay
    byte-identical, the decoder's output changes, and the new weights id rejects old files."""
    from dirac_demo import codecs
    from dirac_demo.errors import BitstreamError
    old, new, ck = _train_part(data_dir, tmp_path, "post", "--post-channels", "6", "--post-blocks", "1")
    assert old.post is None
    assert ck["config"]["post_channels"] == 6 and ck["config"]["post_blocks"] == 1
    assert ck["meta"]["segments"][-1]["hardware"].endswith("post-filter only")
    old_p, new_p = dict(old.named_parameters()), dict(new.named_parameters())
    assert all(torch.equal(old_p[n], new_p[n]) for n in old_p)                        # the codec is frozen
    assert any(p.abs().sum() > 0 for n, p in new_p.items() if n.startswith("post.tail"))  # the filter trained
    x = torch.rand(1, 3, 70, 50)
    old_file, new_file = old.compress(x, 0.0016), new.compress(x, 0.0016)
    assert new_file.chunks == old_file.chunks and new_file.weights_id != old_file.weights_id
    base = new.synthesis(*_latents(new, new_file), (70, 50))
    out = new.decompress(codecs.parse(codecs.pack(new_file)))["x_hat"]
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    assert not torch.equal(out, old.decompress(old_file)["x_hat"])                              # the filter acts
    assert torch.allclose(out, base.clamp(0, 1), atol=1e-6)
    assert torch.allclose(new.reconstruct(x, 0.0016), out, atol=1e-5)
    with pytest.raises(BitstreamError, match="other neural-codec weights"):
        new.decompress(old_file)


def _latents(codec, enc):
    """(ŷ, s, λ) of a neural file, decoded the way decompress does, for checking its last stage."""
    from dirac_demo.codecs.neural import SCALE_STEP
    shape = (-(-enc.height // 64), -(-enc.width // 64))
    z_hat = codec.entropy_bottleneck.decompress([enc.chunks[1]], shape)
    scales, means = codec.hyper_synthesis(z_hat)
    y_hat = codec.gaussian_conditional.decompress([enc.chunks[0]], codec.gaussian_conditional.build_indexes(scales),
                                                  means=means).float()
    return y_hat, enc.scale_q / SCALE_STEP, enc.lmbda
