"""The experiments in ``experiments/``: each states its question, command and answer, and starts.

One subprocess runs every script's ``--help`` as ``__main__`` (one interpreter, so torch and
compressai load once); the docstrings are read without importing anything. The ε-scaled sampler
of ``eps_scale_sweep.py`` is checked against the pipeline's own on the tiny fixture models.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dirac_demo.eval.heldout import run_steps
from dirac_demo.images import pil_to_tensor

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "experiments").glob("*.py"))
NAMES = [p.stem for p in SCRIPTS]

# Runs each script as ``python experiments/<name>.py --help`` would, and reports the exit codes.
HELP_ALL = """
import contextlib, io, json, runpy, sys
codes = {}
for path in sys.argv[1:]:
    sys.argv = [path, "--help"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(path, run_name="__main__")
        codes[path] = ["no exit", out.getvalue()]
    except SystemExit as exc:
        codes[path] = [exc.code or 0, out.getvalue()]
    except BaseException as exc:
        codes[path] = [repr(exc), out.getvalue()]
print(json.dumps(codes))
"""


@pytest.fixture(scope="module")
def help_runs() -> dict:
    done = subprocess.run([sys.executable, "-c", HELP_ALL, *map(str, SCRIPTS)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_there_are_experiments():
    assert {"eps_scale_sweep", "eta_sweep", "spacing_sweep"} <= set(NAMES)


@pytest.mark.parametrize("path", SCRIPTS, ids=NAMES)
def test_help_exits_cleanly(help_runs, path):
    code, out = help_runs[str(path)]
    assert code == 0, f"{path.name} --help: {code}"
    assert out.startswith("usage:"), out


@pytest.mark.parametrize("path", SCRIPTS, ids=NAMES)
def test_opens_with_question_command_and_answer(path):
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc, f"{path.name} has no module docstring"
    lines = doc.splitlines()
    assert lines[0].endswith("?"), f"{path.name}: the first line should be its question"
    command = next((line for line in lines if line.startswith("Command:")), "")
    assert f"python experiments/{path.name}" in command, f"{path.name}: no 'Command: python experiments/{path.name} ...'"
    assert "\nAnswer:" in doc, f"{path.name}: no 'Answer:'"
    answer = doc.split("\nAnswer:", 1)[1].split("\n\n", 1)[0]     # up to the next blank line
    assert len(answer.split()) >= 5, f"{path.name}: its 'Answer:' is empty"


@pytest.mark.parametrize("path", SCRIPTS, ids=NAMES)
def test_imports_no_sibling_script(path):
    tree = ast.parse(path.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert not imported & set(NAMES), f"{path.name} imports another script by bare name"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("codec, rate", [("jpeg", 10), ("neural", 0.0016)])
def test_eps_scaling_with_k_zero_is_the_pipelines_sampler(pipe, photo, codec, rate):
    eps = _load("eps_scale_sweep")
    comps = [pipe.compress(photo, codec, rate)]
    plain = run_steps(pipe, comps, 5, keep=(1, 3))
    same = run_steps(pipe, comps, 5, keep=(1, 3), frames=eps.eps_scaled(pipe, 0.0, 0.0))
    scaled = run_steps(pipe, comps, 5, keep=(1, 3), frames=eps.eps_scaled(pipe, 0.05, 0.0))
    for k in (1, 3):
        assert torch.equal(same.kept[k][0], plain.kept[k][0])
    assert torch.equal(same.final[0], plain.final[0]) and same.last == plain.last
    # ε scaling changes only the re-noising: the first step is the same, the later ones are not
    assert torch.equal(scaled.kept[1][0], plain.kept[1][0])
    assert not torch.equal(scaled.final[0], plain.final[0])


def test_jpeg_encoders_reads_each_writers_file_as_a_receiver_does(pipe, photo):
    enc = _load("jpeg_encoders")
    originals = [(photo, pil_to_tensor(photo))]
    expect = {"pillow": ("4:2:0", True), "pillow-422": ("4:2:2", True)}
    if shutil.which("cjpeg"):
        expect |= {"cjpeg-444": ("4:4:4", True), "cjpeg-420-prog": ("4:2:0", True),
                   "cjpeg-moz-tables": ("4:2:0", False)}
    for name, (subsampling, exact) in expect.items():
        row = enc.measure(pipe, originals, enc.ENCODERS[name], 20, 2)
        assert (row["subsampling"], row["exact"]) == (subsampling, exact), name
        assert (row["estimated_qf"] == 20) == exact and row["bpp"] > 0
        first, last, ratio = enc.targets(20)
        assert row["meets_targets"] == (row["gain_first"] >= first and row["gain_last"] >= last
                                        and row["swd_ratio"] <= ratio)
