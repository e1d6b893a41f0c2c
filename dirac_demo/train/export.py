"""Export training checkpoints to shippable weights: ``python -m dirac_demo.train.export codec|dirac``.

``codec``: fp16 safetensors with entropy-coder tables rebuilt (``update()``) from the fp16 weights.
``dirac``: the EMA weights of a diffusion checkpoint, plus the threshold table if given.
``table``: replace the threshold table of an exported DIRAC model (``--out``) by ``--thresholds``,
weights untouched: what a new codec needs when codec+DIRAC is not retrained.
``sampler``: set the late-start spacing an exported DIRAC model samples with (``--start-scale``,
``--power``; see :class:`dirac_demo.diffusion.schedule.Spacing`), weights untouched; 1 and 1 is the paper's.
Training facts (steps, wall-clock, hardware) are copied into the JSON for the model card, beside
the ``dirac_demo_version`` that wrote it.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

from .. import __version__
from ..codecs.neural import CodecConfig, NeuralCodec
from ..diffusion.schedule import Spacing
from ..diffusion.unet import ResidualUNet, UNetConfig
from ..weights import export_codec, export_dirac
from .thresholds import read_table, table_json


def _facts(ckpt: dict) -> dict:
    """The JSON's facts: the version that exported it, and the training facts (steps, total
    wall-clock, and every hardware the steps ran on)."""
    meta = dict(ckpt.get("meta", {}))
    hw = [seg["hardware"] for seg in meta.get("segments", [])]
    hw = list(dict.fromkeys(hw)) or [meta.get("hardware", f"{platform.machine()} CPU")]
    return {"dirac_demo_version": __version__,
            "training": {**meta, "steps": ckpt["step"], "wall_hours": round(ckpt.get("wall_seconds", 0) / 3600, 2),
                         "hardware": " + ".join(hw)}}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dirac_demo.train.export", description=__doc__)
    p.add_argument("kind", choices=["codec", "dirac", "table", "sampler"])
    p.add_argument("--ckpt", help="training checkpoint.pt (codec, dirac)")
    p.add_argument("--out", required=True, help="output prefix, e.g. assets/dirac_jpeg")
    p.add_argument("--thresholds", default=None,
                   help="threshold table JSON {rate: theta} from python -m dirac_demo.train.thresholds (dirac, table)")
    p.add_argument("--start-scale", type=float, default=1.0, help="sampler: t_start over the paper's")
    p.add_argument("--power", type=float, default=1.0, help="sampler: spacing exponent (2: DDIM's quad)")
    p.add_argument("--chosen-on", default=None, help="sampler: where the spacing was chosen, for the card")
    return p


def edit_dirac_json(p: argparse.ArgumentParser, args: argparse.Namespace, table: dict | None) -> None:
    """``table`` and ``sampler``: rewrite one entry of an exported DIRAC model's JSON, weights untouched."""
    js = Path(args.out).with_suffix(".json")
    meta = json.loads(js.read_text()) if js.exists() else {}
    if meta.get("kind") != "dirac":
        p.error(f"{js} is not an exported DIRAC model")
    if args.kind == "table":
        if table is None:
            p.error("table needs --thresholds")
        meta["thresholds"] = table_json(table)
        done = f"the threshold table ({len(table)} rates)"
    else:
        try:
            spacing = Spacing(args.start_scale, args.power)
        except ValueError as exc:
            p.error(str(exc))
        meta.pop("sampler", None)
        if not spacing.is_paper:
            meta["sampler"] = {**spacing.to_dict(), **({"chosen_on": args.chosen_on} if args.chosen_on else {})}
        done = f"the sampler spacing ({spacing.describe()})"
    meta["dirac_demo_version"] = __version__
    js.write_text(json.dumps(meta, indent=2))
    print(f"wrote {done} into {js}")


def export_checkpoint(args: argparse.Namespace, table: dict | None) -> None:
    """``codec`` and ``dirac``: a training checkpoint's weights (the EMA's for DIRAC) and facts."""
    ckpt = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    if args.kind == "codec":
        codec = NeuralCodec(CodecConfig(**ckpt["config"]))
        codec.load_state_dict(ckpt["model"])
        export_codec(codec, args.out, _facts(ckpt))
    else:
        net = ResidualUNet(UNetConfig(**ckpt["config"]))
        net.load_state_dict(ckpt["ema"])
        export_dirac(net, args.out, _facts(ckpt), table)
    print(f"wrote {args.out}.safetensors and {args.out}.json (step {ckpt['step']})")


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    table = read_table(args.thresholds) if args.thresholds else None
    if args.kind in ("table", "sampler"):
        edit_dirac_json(p, args, table)
    elif not args.ckpt:
        p.error(f"{args.kind} needs --ckpt")
    else:
        export_checkpoint(args, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
