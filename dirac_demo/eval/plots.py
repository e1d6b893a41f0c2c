"""Figures from evaluation JSON files: ``python -m dirac_demo.eval.plots --from a.json b.json --out DIR``.

* ``rate_distortion.png`` (PSNR vs bpp) and ``rate_perception.png`` (SWD vs bpp): each base codec,
  and with DIRAC after the first and the last step (analogues of the paper's Figs. 3 and 6);
* ``traversal_<codec>.png``: curvature, PSNR and SWD against the sampling step (Fig. 7), with the
  S = 100 and no-thresholding variants when they were evaluated.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..codecs import CODECS  # noqa: E402
from ..pipeline import NUM_RESPACED  # noqa: E402
from ..same_bytes import CODECS as BASELINES  # noqa: E402

# every base codec of the table, then the same-bytes baselines that are no base codec, in table order
CODEC_LABEL = {**{n: c.plot_label or c.label for n, c in CODECS.items()},
               **{n: label for n, (label, _) in BASELINES.items() if n not in CODECS}}
CODEC_COLOR = {**{n: c.color for n, c in CODECS.items()}, **{n: "tab:gray" for n in BASELINES if n not in CODECS}}
VARIANT_STYLE = {"main": "-", "full_steps": "--", "no_threshold": ":", "refined": "-.", "paper_spacing": (0, (1, 3))}


def load(paths: list[str | Path]) -> list[dict]:
    """Read evaluation (or benchmark) JSON files."""
    return [json.loads(Path(p).read_text()) for p in paths]


def points(docs: list[dict], variant: str | None = "main") -> list[dict]:
    """Rate points of the evaluation documents (copies tagged with "_doc" and "_images").

    Points are grouped by codec in the order of :data:`CODEC_LABEL`, each codec's in the order of
    the documents. With a ``variant``, a (codec, rate) evaluated in several documents appears once:
    from the document with the most images, then with the most recorded DIRAC steps (a base-only
    run beside a full one), then the first.
    """
    out = []
    for n, doc in enumerate(docs):
        if doc.get("schema", "").startswith("dirac_demo.evaluate/"):
            out += [dict(p, _doc=n, _images=len(doc["images"])) for p in doc["points"]
                    if variant is None or p["variant"] == variant]
    order = list(CODEC_LABEL)
    out.sort(key=lambda p: order.index(p["codec"]))   # stable: documents' order within a codec
    if variant is None:
        return out
    best: dict[tuple, dict] = {}
    for p in out:
        key = (p["codec"], p["rate"])
        if key not in best or (p["_images"], len(p["steps"])) > (best[key]["_images"], len(best[key]["steps"])):
            best[key] = p
    return [p for p in out if best[(p["codec"], p["rate"])] is p]


def curves(docs: list[dict], metric: str) -> dict[tuple[str, str], dict]:
    """{(codec, role): {"label", "bpp", "values"}} with role "base", "first" or "last" (DIRAC step),
    or "refined" (the base codec with encoder-side latent refinement)."""
    series: dict[tuple[str, str], dict] = {}
    for p in points(docs) + points(docs, "refined"):
        name = CODEC_LABEL[p["codec"]]
        if p["variant"] == "refined":   # the base codec with a refined encoder (evaluate --refine)
            entries = [("refined", f"{name}, refined encoder ({p.get('refine')} it.)", p["base"])]
        else:
            entries = [("base", name, p["base"])]
        if p["steps"] and p["variant"] == "main":
            first, last = p["steps"][0], p["steps"][-1]
            entries += [("first", f"{name}+DIRAC-{first['step']}", first),
                        ("last", f"{name}+DIRAC-{last['step']}", last)]
        for role, label, m in entries:
            if m.get(metric) is not None:
                s = series.setdefault((p["codec"], role), {"label": label, "pts": []})
                s["pts"].append((p["bpp"], m[metric]))
    for s in series.values():
        s["bpp"], s["values"] = (list(v) for v in zip(*sorted(s.pop("pts"))))
    return series


def _save(fig, out: Path) -> Path:
    fig.tight_layout()
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


ROLE_STYLE = {"base": ("-", "o"), "first": ("--", "s"), "last": (":", "^"), "refined": ("-.", "D")}


def rate_plot(docs: list[dict], metric: str, ylabel: str, out: Path, floor: float | None = None) -> Path | None:
    """One rate–metric figure; None when no point has the metric."""
    series = curves(docs, metric)
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for (codec, role), c in series.items():
        ls, marker = ROLE_STYLE[role]
        ax.plot(c["bpp"], c["values"], label=c["label"], color=CODEC_COLOR[codec], ls=ls, marker=marker)
    if floor is not None:
        ax.axhline(floor, color="0.6", lw=0.8, ls="-.", label="SWD sampling floor")
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out)


def _abs_step(p: dict, k: int) -> int:
    """Step k of an S-step late-start run on the common axis of 100 steps (late start ends at 100)."""
    return NUM_RESPACED - p["num_steps"] + k


def traversal_plot(docs: list[dict], codec: str, out: Path) -> Path | None:
    """Fig. 7: curvature, PSNR and SWD against the sampling step for every rate point of a codec."""
    best: dict[tuple, dict] = {}   # one curve per (rate, variant): most images, then most steps
    rank = lambda p: (p["_images"], len(p["steps"]))  # noqa: E731
    for p in points(docs, None):
        key = (p["rate"], p["variant"])
        if p["codec"] == codec and p["num_steps"] and (key not in best or rank(p) > rank(best[key])):
            best[key] = p
    pts = list(best.values())
    if not pts:
        return None
    rates = sorted({p["rate"] for p in pts})
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for p in pts:
        color = cmap(rates.index(p["rate"]) / max(1, len(rates) - 1))
        style = dict(color=color, ls=VARIANT_STYLE.get(p["variant"], "-"))
        label = f"{p['rate_param']}={p['rate']:g} S={p['num_steps']}" + (
            " no θ" if p["variant"] == "no_threshold" else " paper spacing" if p["variant"] == "paper_spacing" else "")
        curv = p["curvature"]
        if curv:
            axes[0].plot([_abs_step(p, c["step"]) for c in curv], [c["angle_deg"] for c in curv],
                         label=label, **style)
        xs = [_abs_step(p, 0)] + [_abs_step(p, s["step"]) for s in p["steps"]]
        for ax, metric in ((axes[1], "psnr"), (axes[2], "swd")):
            ys = [p["base"][metric]] + [s[metric] for s in p["steps"]]
            ax.plot(xs, ys, marker="." if len(xs) < 30 else None, label=label, **style)
    for ax, title in zip(axes, ("curvature: angle between updates (°)", "PSNR (dB)", "SWD ×10³")):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"sampling step (of {NUM_RESPACED}; the base is plotted at the start)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6)
    fig.suptitle(f"{CODEC_LABEL[codec]} + DIRAC: sampling trajectory", fontsize=10)
    return _save(fig, out)


def render_all(docs: list[dict], outdir: str | Path) -> list[Path]:
    """Write every figure the documents support into ``outdir``; returns the files written."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    floors = [d["swd_floor"]["swd"] for d in docs if "swd_floor" in d]
    written = [rate_plot(docs, "psnr", "PSNR (dB, RGB)", out / "rate_distortion.png"),
               rate_plot(docs, "ms_ssim", "MS-SSIM", out / "rate_msssim.png"),
               rate_plot(docs, "swd", "SWD ×10³ (lower is more realistic)", out / "rate_perception.png",
                         max(floors) if floors else None),
               rate_plot(docs, "lpips", "LPIPS (AlexNet)", out / "rate_lpips.png"),
               rate_plot(docs, "fid", "FID/256", out / "rate_fid.png")]
    for codec in CODECS:
        written.append(traversal_plot(docs, codec, out / f"traversal_{codec}.png"))
    return [p for p in written if p is not None]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dirac_demo.eval.plots", description=__doc__.splitlines()[0])
    p.add_argument("--from", dest="sources", nargs="+", required=True, help="evaluation JSON files")
    p.add_argument("--out", required=True, help="output folder")
    args = p.parse_args(argv)
    for path in render_all(load(args.sources), args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
