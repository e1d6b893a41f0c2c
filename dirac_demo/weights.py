"""Find, load, verify and export weights: ``assets/`` by default, the Hugging Face Hub on request.

Each model is a pair of files sharing a prefix: ``NAME.safetensors`` (tensors, fp16 allowed)
and ``NAME.json`` (kind, architecture, training facts, and for DIRAC the threshold table).
A missing or mismatched file raises :class:`WeightsError`; nothing is ever left random.
"""
from __future__ import annotations

import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .codecs.neural import CodecConfig, NeuralCodec
from .diffusion.schedule import Spacing
from .diffusion.unet import ResidualUNet, UNetConfig
from .errors import WeightsError


def _shipped_assets() -> Path:
    """The shipped weights: a checkout's ``assets/``, else where ``pip install .`` puts them."""
    checkout = Path(__file__).resolve().parent.parent / "assets"
    installed = Path(sys.prefix) / "share" / "dirac-demo" / "assets"
    return installed if not checkout.is_dir() and installed.is_dir() else checkout


ASSETS = _shipped_assets()
HUB_ENV = "DIRAC_HUB_REPO"


@dataclass
class DiracModel:
    """A trained residual diffusion network with its threshold table θ(λ), its sampler spacing
    (the JSON's ``"sampler"`` entry; the paper's uniform late start when absent) and metadata."""

    net: ResidualUNet
    thresholds: dict[float, float] | None = None
    meta: dict = field(default_factory=dict)
    spacing: Spacing = field(default_factory=Spacing)


def _prefix(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".safetensors", ".json") else p


def resolve(name: str, assets: str | os.PathLike | None = None, hub_repo: str | None = None) -> Path:
    """Local prefix of model ``name``: from the Hub when a repo id is given, else ``assets/``.

    Hub failures (offline, missing repo) fall back to the shipped files with a warning.
    """
    local = Path(assets) if assets else ASSETS
    hub_repo = hub_repo or os.environ.get(HUB_ENV)
    if hub_repo:
        try:
            from huggingface_hub import hf_hub_download
            st = hf_hub_download(hub_repo, f"{name}.safetensors")
            hf_hub_download(hub_repo, f"{name}.json")
            return _prefix(st)
        except Exception as exc:  # noqa: BLE001 - any Hub failure means: use the shipped files
            warnings.warn(f"Could not fetch {name} from the Hub repo {hub_repo!r} ({type(exc).__name__}); "
                          f"using the files in {local}.", stacklevel=2)
    return local / name


def _read(prefix: Path, kind: str) -> tuple[dict, dict]:
    st, js = prefix.with_suffix(".safetensors"), prefix.with_suffix(".json")
    if not st.exists() or not js.exists():
        raise WeightsError(f"Weights {prefix.name!r} not found (expected {st} and {js}); "
                           "train them (see README) or give a Hub repo id.")
    try:
        meta = json.loads(js.read_text())
        tensors = load_file(str(st))
    except Exception as exc:  # noqa: BLE001
        raise WeightsError(f"Weights {st} cannot be read ({type(exc).__name__}).") from exc
    if meta.get("kind") != kind:
        raise WeightsError(f"{js} holds a {meta.get('kind')!r} model, not a {kind!r} model.")
    return meta, tensors


# Constructor constants stored as buffers. fp16 flushes them to zero (1e-9, 3.6e-12), and a zero
# likelihood bound lets log(0) = -inf into the rate term: loading always keeps the module's own.
_CONSTANTS = ("likelihood_lower_bound.bound", ".pedestal")


def _load_into(module: torch.nn.Module, tensors: dict, where: Path) -> None:
    own = module.state_dict()
    tensors = {k: own[k] if k.endswith(_CONSTANTS) and k in own
               else v.to(own[k].dtype) if k in own and own[k].is_floating_point() else v
               for k, v in tensors.items()}
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise WeightsError(f"Weights in {where} do not match the model ({first}).") from exc


def load_codec(path: str | os.PathLike) -> NeuralCodec:
    """Load the multi-rate neural codec from ``PREFIX.safetensors`` + ``PREFIX.json``."""
    prefix = _prefix(path)
    meta, tensors = _read(prefix, "neural_codec")
    codec = NeuralCodec(CodecConfig(**meta["config"]))
    _load_into(codec, tensors, prefix)
    codec.meta = meta
    return codec.eval()


def load_dirac(path: str | os.PathLike) -> DiracModel:
    """Load a DIRAC residual network (and its threshold table) from a prefix or a training checkpoint."""
    p = Path(path)
    if p.suffix == ".pt":
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
        net = ResidualUNet(UNetConfig(**ckpt["config"]))
        net.load_state_dict(ckpt["ema"])
        return DiracModel(net.eval(), None, dict(ckpt.get("meta", {}), step=ckpt["step"]))
    prefix = _prefix(p)
    meta, tensors = _read(prefix, "dirac")
    net = ResidualUNet(UNetConfig(**meta["config"]))
    _load_into(net, tensors, prefix)
    table = meta.get("thresholds")
    thresholds = {float(k): float(v) for k, v in table.items()} if table else None
    try:
        spacing = Spacing.from_meta(meta.get("sampler"))
    except (AttributeError, TypeError, ValueError) as exc:
        raise WeightsError(f"{prefix.with_suffix('.json')}: bad \"sampler\" entry ({exc}).") from exc
    return DiracModel(net.eval(), thresholds, meta, spacing)


def _half_floats(module: torch.nn.Module) -> dict:
    """State dict with the parameters in fp16; buffers (bounds, tables: a few KB) keep their dtype."""
    params = {name for name, _ in module.named_parameters()}
    return {k: (v.half() if k in params and v.is_floating_point() else v).contiguous()
            for k, v in module.state_dict().items()}


def export_codec(codec: NeuralCodec, prefix: str | os.PathLike, meta: dict) -> None:
    """Write the codec as fp16 safetensors; entropy tables rebuilt from the fp16 weights."""
    prefix = _prefix(prefix)
    state = _half_floats(codec)
    ref = NeuralCodec(codec.config)
    _load_into(ref, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, prefix)
    ref.update(force=True)
    state = _half_floats(ref)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(prefix.with_suffix(".safetensors")))
    prefix.with_suffix(".json").write_text(json.dumps(
        {"kind": "neural_codec", "config": codec.config.to_dict(), **meta}, indent=2))


def export_dirac(net: ResidualUNet, prefix: str | os.PathLike, meta: dict,
                 thresholds: dict[float, float] | None = None) -> None:
    """Write a DIRAC network as fp16 safetensors plus its JSON (config, thresholds, facts)."""
    prefix = _prefix(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    save_file(_half_floats(net), str(prefix.with_suffix(".safetensors")))
    table = {f"{k:.6g}": round(float(v), 6) for k, v in sorted(thresholds.items())} if thresholds else None
    prefix.with_suffix(".json").write_text(json.dumps(
        {"kind": "dirac", "config": net.config.to_dict(), "thresholds": table, **meta}, indent=2))


def load_models(codecs: dict, assets: str | os.PathLike | None = None,
                hub_repo: str | None = None) -> tuple[dict, dict[str, DiracModel]]:
    """Each codec of ``codecs`` bound to its own weights where it has them, and the DIRAC model of
    every codec whose weights exist; weights that are not found leave that part absent."""
    found, models = {}, {}
    for name, codec in codecs.items():
        net = _optional(lambda: load_codec(resolve(codec.weights, assets, hub_repo))) if codec.weights else None
        found[name] = codec.bind(net) if net is not None else codec
        model = _optional(lambda: load_dirac(resolve(codec.model, assets, hub_repo))) if codec.model else None
        if model is not None:
            models[name] = model
    return found, models


def _optional(load):
    """``load()``, or None when its weights are not found (other weight errors propagate)."""
    try:
        return load()
    except WeightsError as exc:
        if "not found" not in str(exc):
            raise
        return None
