import json
import shutil
import warnings

import pytest

from dirac_demo.errors import WeightsError
from dirac_demo.diffusion.unet import UNetConfig
from dirac_demo.weights import ASSETS, load_codec, load_dirac, resolve


def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_dirac(tmp_path / "nothing")
    with pytest.raises(WeightsError, match="not found"):
        load_codec(tmp_path / "nothing")


def test_mismatched_weights_are_a_clear_error(tiny_assets, tmp_path):
    for ext in (".safetensors", ".json"):
        shutil.copy(tiny_assets / f"dirac_jpeg{ext}", tmp_path / f"d{ext}")
    meta = json.loads((tmp_path / "d.json").read_text())
    meta["config"] = UNetConfig(channels=[8, 24], blocks=[1, 1], emb_dim=16, groups=4).to_dict()
    (tmp_path / "d.json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="do not match"):
        load_dirac(tmp_path / "d")
    meta["kind"] = "neural_codec"
    (tmp_path / "d.json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="not a 'dirac'"):
        load_dirac(tmp_path / "d")
    (tmp_path / "d.safetensors").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="cannot be read"):
        load_codec(tmp_path / "d")


def test_thresholds_loaded(tiny_assets):
    m = load_dirac(tiny_assets / "dirac_neural")
    assert m.thresholds == {0.0004: 0.05, 0.0016: 0.1, 0.016: 0.2}
    assert load_dirac(tiny_assets / "dirac_jpeg").thresholds == {5.0: 0.3, 10.0: 0.25, 50.0: 0.1}   # by QF


def test_hub_offline_falls_back_to_shipped_files(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = resolve("dirac_jpeg", hub_repo="someone/dirac-demo")
    assert path == ASSETS / "dirac_jpeg"
    assert any("Hub" in str(w.message) for w in caught)


def test_hub_download_used_when_available(monkeypatch, tiny_assets):
    calls = []

    def fake_download(repo, filename):
        calls.append((repo, filename))
        return str(tiny_assets / filename)

    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setenv("DIRAC_HUB_REPO", "someone/dirac-demo")
    path = resolve("dirac_jpeg")
    assert path == tiny_assets / "dirac_jpeg"
    assert calls == [("someone/dirac-demo", "dirac_jpeg.safetensors"), ("someone/dirac-demo", "dirac_jpeg.json")]
    assert load_dirac(path).net is not None


def test_fp16_export_keeps_the_likelihood_bound(tmp_path):
    """fp16 flushes CompressAI's 1e-9 likelihood bound to 0, and log(0) made training from shipped
    weights go to inf/NaN: parameters are stored in fp16, buffers in their own dtype, and loading
    keeps the constructor's constants even from files written before that."""
    import torch
    from safetensors.torch import load_file, save_file

    from dirac_demo.codecs.neural import CodecConfig, NeuralCodec
    from dirac_demo.weights import export_codec, load_codec

    export_codec(NeuralCodec(CodecConfig(N=8, M=8)), tmp_path / "c", {})
    stored = load_file(str(tmp_path / "c.safetensors"))
    assert stored["g_a.0.weight"].dtype == torch.float16
    assert stored["entropy_bottleneck.likelihood_lower_bound.bound"].item() == pytest.approx(1e-9)
    old = {k: (v.half() if v.is_floating_point() else v) for k, v in stored.items()}   # the old format
    assert old["gaussian_conditional.likelihood_lower_bound.bound"].item() == 0.0
    save_file(old, str(tmp_path / "c.safetensors"))
    codec = load_codec(tmp_path / "c")
    for name in ("entropy_bottleneck", "gaussian_conditional"):
        assert getattr(codec, name).likelihood_lower_bound.bound.item() == pytest.approx(1e-9)
    x = torch.rand(1, 3, 64, 64) * 40 - 20                 # far out of range: likelihoods underflow
    out = codec(x, 0.0004)
    assert all(torch.isfinite(torch.log(l)).all() for l in out["likelihoods"].values())


def test_sampler_spacing_export_load_and_reset(tiny_assets, tmp_path, capsys):
    from dirac_demo import __version__
    from dirac_demo.diffusion.schedule import Spacing
    from dirac_demo.train import export
    shutil.copytree(tiny_assets, tmp_path / "a")
    prefix = tmp_path / "a" / "dirac_jpeg"
    assert load_dirac(prefix).spacing == Spacing()                 # no "sampler" entry: the paper's
    before = json.loads(prefix.with_suffix(".json").read_text())
    assert export.main(["sampler", "--out", str(prefix), "--start-scale", "1.5", "--power", "2",
                        "--chosen-on", "held-out crops"]) == 0
    assert "power 2" in capsys.readouterr().out
    meta = json.loads(prefix.with_suffix(".json").read_text())
    assert meta["sampler"] == {"start_scale": 1.5, "power": 2.0, "chosen_on": "held-out crops"}
    assert meta["dirac_demo_version"] == __version__                       # the tool that wrote it
    kept = {k: v for k, v in meta.items() if k not in ("sampler", "dirac_demo_version")}
    assert kept == before                                                  # nothing else touched
    m = load_dirac(prefix)
    assert m.spacing == Spacing(1.5, 2.0) and m.thresholds == {5.0: 0.3, 10.0: 0.25, 50.0: 0.1}
    assert export.main(["sampler", "--out", str(prefix)]) == 0             # 1 and 1: back to the paper's
    assert "sampler" not in json.loads(prefix.with_suffix(".json").read_text())
    with pytest.raises(SystemExit):
        export.main(["sampler", "--out", str(prefix), "--power", "0.5"])
    with pytest.raises(SystemExit):
        export.main(["sampler", "--out", str(tmp_path / "a" / "codec")])    # not a DIRAC model


@pytest.mark.parametrize("entry", [{"power": 9}, {"start_scale": "x"}, [1, 2]])
def test_bad_sampler_entry_is_a_clear_error(tiny_assets, tmp_path, entry):
    shutil.copytree(tiny_assets, tmp_path / "a")
    js = tmp_path / "a" / "dirac_neural.json"
    js.write_text(json.dumps(dict(json.loads(js.read_text()), sampler=entry)))
    with pytest.raises(WeightsError, match="sampler"):
        load_dirac(tmp_path / "a" / "dirac_neural")
