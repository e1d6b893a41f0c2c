"""``pip install .`` gives the package, its console script and the shipped weights.

The wheel is built from a copy of the checkout (no network, no build isolation) and read back:
the runtime's subpackages, the ``dirac-demo`` entry point, the version from one place, and the
weights installed as data where :mod:`dirac_demo.weights` looks for them.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import dirac_demo
from dirac_demo import cli

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~; \[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    pytest.importorskip("setuptools")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    for name in ("dirac_demo", "assets"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "examples",
                                                                             "training_logs"))
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (path,) = out.glob("dirac_demo-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_holds_the_runtime_training_and_evaluation(wheel):
    names = set(wheel.namelist())
    for module in ("cli", "pipeline", "quality", "weights", "codecs/bitstream", "codecs/jpeg", "codecs/neural",
                   "diffusion/sampler", "diffusion/unet", "train/dirac", "train/codec", "eval/evaluate"):
        assert f"dirac_demo/{module}.py" in names, module


def test_wheel_version_and_console_script(wheel):
    meta = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    assert f"Version: {dirac_demo.__version__}\n" in wheel.read(meta).decode()
    entry = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
    assert re.search(r"^dirac-demo = dirac_demo\.cli:main$", wheel.read(entry).decode(), re.M)


def test_wheel_installs_the_shipped_weights_where_weights_looks(wheel):
    data = {Path(n).name for n in wheel.namelist() if "/data/share/dirac-demo/assets/" in n}
    shipped = {p.name for p in (ROOT / "assets").glob("*") if p.suffix in (".json", ".safetensors")}
    assert data == shipped and {"dirac_jpeg.safetensors", "codec.json"} <= data


def test_pyproject_dependencies_match_requirements_txt():
    """The Space installs requirements.txt, pip install . reads pyproject: the same packages."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    txt = {_name(line) for line in lines if line.strip() and not line.startswith("#")}
    assert {_name(d) for d in PYPROJECT["project"]["dependencies"]} == txt
    dev = (ROOT / "requirements-dev.txt").read_text().splitlines()
    dev_txt = {_name(line) for line in dev if line.strip() and not line.startswith(("#", "-r"))}
    assert {_name(d) for d in PYPROJECT["project"]["optional-dependencies"]["dev"]} == dev_txt


def test_version_lives_in_one_place():
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dirac_demo.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", dirac_demo.__version__)


def test_cli_reports_the_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"dirac-demo {dirac_demo.__version__}"
