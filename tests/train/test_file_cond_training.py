"""Training a file-conditioned JPEG+DIRAC network: the pairs' vectors, --file-cond, --train-only."""
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from dirac_demo.diffusion.file_condition import FILE_COND_DIM, jpeg_condition
from dirac_demo.train import dirac as train_dirac, export
from dirac_demo.train.data import JPEG_WRITERS, JpegPairs, jpeg_files, sample_jpeg_quality
from dirac_demo.weights import load_dirac
from training_data import TINY, gradient_images


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return gradient_images(tmp_path_factory.mktemp("data"), 96, 120)


@pytest.fixture(scope="module")
def plain_init(data_dir, tmp_path_factory):
    """An unconditioned tiny model, trained 2 steps and exported (what --init reads)."""
    root = tmp_path_factory.mktemp("plain")
    assert train_dirac.main(_args(data_dir, root / "run", 2)) == 0
    assert export.main(["dirac", "--ckpt", str(root / "run" / "checkpoint.pt"), "--out", str(root / "plain")]) == 0
    return root / "plain"


@pytest.fixture(scope="module")
def cond_init(data_dir, plain_init, tmp_path_factory):
    """The same model continued with --file-cond for no step and exported: file-conditioned weights."""
    root = tmp_path_factory.mktemp("cond")
    assert train_dirac.main(_args(data_dir, root / "run", 0, "--init", str(plain_init), "--file-cond")) == 0
    assert export.main(["dirac", "--ckpt", str(root / "run" / "checkpoint.pt"), "--out", str(root / "cond")]) == 0
    return root / "cond"


def _args(data_dir, out, steps: int, *extra: str) -> list[str]:
    return ["--data", str(data_dir), "--out", str(out), "--crop", "32", "--batch", "2", "--bf16", "off",
            "--save-every", "100", "--val-every", "100", "--steps", str(steps), *TINY, *extra]


def test_pairs_carry_the_vectors_of_their_own_files():
    """With ``condition`` the pairs gain the vectors of the very files decoded into x̃; the pixels
    are the same as without it, from the same draws."""
    crops = np.random.default_rng(1).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    x, xb, cond = JpegPairs(5, 90, JPEG_WRITERS, condition=True)(crops, np.random.default_rng(7))
    x0, xb0 = JpegPairs(5, 90, JPEG_WRITERS)(crops, np.random.default_rng(7))
    assert torch.equal(x, x0) and torch.equal(xb, xb0) and cond.shape == (5, FILE_COND_DIM)
    rng = np.random.default_rng(7)                       # the same draws, made by hand
    q = sample_jpeg_quality(rng, 5, 5, 90)
    writers = list(rng.choice(JPEG_WRITERS, 5))
    files = jpeg_files(crops, q, writers, rng)
    assert torch.equal(cond, torch.stack([jpeg_condition(f) for f in files]))
    for row, writer in zip(cond, writers):             # the subsampling each writer uses
        assert row[{"444": 2, "422": 3}.get(writer, 4)] == 1
    for f, decoded in zip(files, xb):
        assert torch.equal((decoded * 255).round().byte().permute(1, 2, 0),
                           torch.from_numpy(np.array(Image.open(io.BytesIO(f)).convert("RGB"))))


def test_file_cond_from_unconditioned_weights_starts_as_the_same_function(plain_init, cond_init):
    """--init of unconditioned weights with --file-cond copies them and leaves the new layers at zero:
    with no step taken, the conditioned EMA computes exactly what the --init model computes, and
    the exported JSON keeps file_cond."""
    init, cond = load_dirac(plain_init), load_dirac(cond_init)
    assert cond.meta["training"]["steps"] == init.meta["training"]["steps"]
    assert json.loads(cond_init.with_suffix(".json").read_text())["config"]["file_cond"] == FILE_COND_DIM
    r, xb = torch.randn(2, 3, 32, 32), torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(cond.net(r, torch.tensor([3, 90]), xb, torch.randn(2, FILE_COND_DIM)),
                           init.net(r, torch.tensor([3, 90]), xb))


def _changed(before: dict, after: dict) -> set[str]:
    return {k.split(".")[0] for k in before if not torch.equal(before[k].float(), after[k].float())}


@pytest.mark.parametrize("parts", ["file_cond", "file_cond,time_mlp"])
def test_train_only_moves_the_named_parts_alone(data_dir, plain_init, tmp_path, parts):
    """--train-only trains the named top-level parts; every other weight stays the --init's."""
    start = load_dirac(plain_init).meta["training"]["steps"]
    out = tmp_path / "only"
    argv = _args(data_dir, out, start + 3, "--init", str(plain_init), "--file-cond", "--train-only", parts,
                 "--lr", "1e-2")
    assert train_dirac.main(argv) == 0
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    plain = {k: v.float() for k, v in load_dirac(plain_init).net.state_dict().items()}
    fresh = train_dirac.ResidualUNet(train_dirac.UNetConfig(**ckpt["config"])).state_dict()
    before = {**{k: v for k, v in fresh.items() if k.startswith("file_cond.")}, **plain}
    # the file MLP's first layer starts random; compare against the run's own start instead
    for state in (ckpt["model"], ckpt["ema"]):
        moved = _changed({k: v for k, v in before.items() if not k.startswith("file_cond.0")}, state)
        assert moved == set(parts.split(","))
    assert ckpt["model"]["file_cond.2.weight"].abs().sum() > 0
    assert ckpt["meta"]["train_only"] == parts.split(",")


def test_worker_processes_make_conditioned_pairs(data_dir, plain_init, tmp_path):
    """The GPU recipe's path: pairs and their vectors from a worker process."""
    start = load_dirac(plain_init).meta["training"]["steps"]
    out = tmp_path / "workers"
    argv = _args(data_dir, out, start + 2, "--init", str(plain_init), "--file-cond", "--workers", "1",
                 "--jpeg-writers", *JPEG_WRITERS)
    assert train_dirac.main(argv) == 0
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == start + 2 and ckpt["model"]["file_cond.2.weight"].abs().sum() > 0


@pytest.mark.parametrize("extra, message", [
    (["--base", "avif", "--file-cond"], None),
    (["--file-cond", "--train-only", "file_cond"], "give --init"),
    (["--train-only", "file_cond", "--init", "PLAIN"], "no part 'file_cond'"),
    (["--init", "COND"], "add --file-cond"),
])
def test_mismatched_flags_stop_with_one_line(data_dir, plain_init, cond_init, tmp_path, extra, message, capsys):
    extra = [{"PLAIN": str(plain_init), "COND": str(cond_init)}.get(a, a) for a in extra]
    with pytest.raises(SystemExit) as stop:
        train_dirac.main(_args(data_dir, tmp_path / "run", 5, *extra))
    text = str(stop.value.code) if message else capsys.readouterr().err
    assert (message or "needs --base jpeg") in text
