"""Command line: ``dirac-demo compress|decompress|info`` (also ``python -m dirac_demo``).

Errors for users (bad images, corrupt bitstreams, bad parameters, missing weights) print one
line on stderr and exit with status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import DiracError, TooLargeError
from .protect import DEFAULT_FEATHER, compose, coverage, file_mask, read_mask

RATE_FLAGS = {"jpeg": ("qf", 75), "avif": ("quality", 50), "neural": ("lmbda", 0.0016)}   # flag, default


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dirac-demo",
                                description="DIRAC: base codec + residual diffusion enhancement.")
    p.add_argument("--version", action="version", version=f"dirac-demo {__version__}")
    p.add_argument("--assets", default=None, help="folder with weights (default: the shipped assets/)")
    p.add_argument("--hub-repo", default=None, help="Hugging Face Hub repo id with weights (or DIRAC_HUB_REPO)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compress", help="encode an image to a .drc bitstream (JPEG, AVIF or neural base codec)")
    c.add_argument("image")
    c.add_argument("-o", "--output", required=True)
    c.add_argument("--codec", choices=list(RATE_FLAGS), default="jpeg")
    c.add_argument("--qf", type=int, default=None, help="JPEG quality factor 1..100 (default 75)")
    c.add_argument("--quality", type=int, default=None, help="AVIF quality 0..100 (default 50)")
    c.add_argument("--lmbda", type=float, default=None, help="neural λ_rate in [0.0004, 0.016]")
    c.add_argument("--downscale", action="store_true", help="downscale images over the size limit")
    c.add_argument("--refine", type=int, default=0,
                   help="neural: optimise this image's latents for N iterations (SGA) before coding: "
                        "smaller files, same decoder, slower encoding (try 60)")
    c.add_argument("--protect", metavar="MASK", default=None,
                   help="mask image of regions the receiver keeps faithful (faces, text): it travels in "
                        "the file as a low-resolution bitmap, a few hundred bytes counted in the rate")

    d = sub.add_parser("decompress", help="decode a bitstream (.drc, or any JPEG or AVIF file) and enhance it with DIRAC")
    d.add_argument("bitstream")
    d.add_argument("-o", "--output", required=True, help="output PNG")
    d.add_argument("--steps", type=int, default=20,
                   help="late-start steps S, at most 100, spaced as the model's JSON says (0: base only)")
    d.add_argument("--stop", type=int, default=None, help="stop after K steps (default S)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--no-threshold", action="store_true", help="disable rate-dependent thresholding")
    d.add_argument("--eta", type=float, default=0.0,
                   help="DDIM stochasticity in [0, 1]: 0 (default) is the paper's deterministic sampler")
    d.add_argument("--protect", metavar="MASK", default=None,
                   help="mask image (bright or opaque = protect; resized to the output with nearest-"
                        "neighbour sampling): those regions take step --protect-step, the rest the "
                        "last step; overrides a mask in the file")
    d.add_argument("--protect-step", type=int, default=1,
                   help="the fidelity step protected regions show (default 1; 0 is the base)")
    d.add_argument("--feather", type=int, default=DEFAULT_FEATHER,
                   help=f"pixels of blending on each side of the mask's edge (default {DEFAULT_FEATHER})")
    d.add_argument("--ignore-mask", action="store_true", help="ignore a protect mask carried in the file")

    i = sub.add_parser("info", help="describe a bitstream (.drc, or any JPEG or AVIF file)")
    i.add_argument("bitstream")
    return p


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DiracError(f"Cannot read {path!r}: {exc.strerror}.") from exc


def _write(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise DiracError(f"Cannot write {path!r}: {exc.strerror}.") from exc


def _rate(args) -> float:
    """The rate flag of ``--codec`` (or its default); another codec's flag is refused."""
    flag, default = RATE_FLAGS[args.codec]
    for other, (other_flag, _) in RATE_FLAGS.items():
        if other_flag != flag and getattr(args, other_flag) is not None:
            raise DiracError(f"--{other_flag} is for {other}; {args.codec} takes --{flag}.")
    if args.refine and args.codec != "neural":
        raise DiracError("--refine is for the neural codec.")
    value = getattr(args, flag)
    return default if value is None else value


def _compress(args, pipe) -> None:
    rate = _rate(args)
    try:
        comp = pipe.compress(args.image, args.codec, rate, args.downscale, refine=args.refine,
                             protect=args.protect)
    except TooLargeError as exc:
        raise exc.advise("downscale it first, or pass --downscale") from None
    _write(args.output, comp.bitstream)
    refined = f", latents refined {args.refine} it." if args.refine else ""
    shrunk = " (downscaled from {}x{})".format(*comp.source_size) if comp.source_size else ""
    mask = f", protect mask {len(comp.encoded.mask)} bytes" if comp.encoded.mask else ""
    print(f"{args.output}: {args.codec} rate {rate:g}{refined}, {comp.encoded.width}x{comp.encoded.height}"
          f"{shrunk}, {comp.nbytes} bytes{mask}, {comp.bpp:.4f} bpp, base PSNR {comp.psnr:.2f} dB")


def _decompress(args, pipe) -> None:
    from .images import png_bytes, tensor_to_pil
    from .pipeline import Compressed, Finished, StepResult
    data = _read(args.bitstream)
    mask, fidelity = None, None
    for ev in pipe.run_bitstream(data, args.steps, args.stop, args.seed, not args.no_threshold, args.eta):
        if isinstance(ev, Compressed):
            print(f"decoded {ev.encoded.codec} {ev.encoded.width}x{ev.encoded.height} "
                  f"({ev.nbytes} bytes, {ev.bpp:.4f} bpp); no original here, so no PSNR", file=sys.stderr)
            mask = _mask(args, ev.encoded, args.steps if args.stop is None else min(args.stop, args.steps))
            fidelity = ev.base
        elif isinstance(ev, StepResult):
            print(f"step {ev.index}/{ev.total} t={ev.t} {ev.seconds:.2f}s", file=sys.stderr)
            fidelity = ev.image if ev.index == args.protect_step else fidelity
        elif isinstance(ev, Finished):
            image = ev.image if mask is None else compose(fidelity, ev.image, mask, args.feather)
            _write(args.output, png_bytes(tensor_to_pil(image)))
            kept = (f"; protected regions ({coverage(mask):.0%} of the image) at step {args.protect_step}"
                    if mask is not None else "")
            print(f"{args.output}: base + {ev.steps_run} of {ev.total} DIRAC steps{kept}")


def _mask(args, enc, stop: int):
    """The decode's protect mask: ``--protect``'s, else the file's (unless ignored), else None."""
    mask = read_mask(args.protect, enc.width, enc.height) if args.protect is not None else \
        None if args.ignore_mask else file_mask(enc)
    if mask is not None and not 0 <= args.protect_step <= stop:
        raise DiracError(f"--protect-step must be in 0..{stop} (the last step run).")
    return mask


def _info(args) -> None:
    from . import codecs
    from .codecs.avif import AVIF_FILE
    from .codecs.jpeg import JPEG_FILE
    from .quality import bits_per_pixel
    data = _read(args.bitstream)
    enc = codecs.read(data)
    bpp = bits_per_pixel(len(data), enc.width, enc.height)
    facts = enc.extra.get(JPEG_FILE)
    if facts:
        kind = "estimated quality" if not facts["quality_exact"] else "quality"
        print(f"JPEG file {enc.width}x{enc.height}, {len(data)} bytes, {bpp:.4f} bpp, {facts['subsampling']}, "
              f"{facts['scan']}, {kind} {enc.quality}" + ("" if facts["quality_exact"] else
                                                  " (not the IJG tables: nearest by table scale)"))
        return
    avif = enc.extra.get(AVIF_FILE)
    if avif:
        kind = "quality" if avif["quality_exact"] else "estimated quality"
        print(f"AVIF file {enc.width}x{enc.height}, {len(data)} bytes, {bpp:.4f} bpp, {kind} {enc.quality}"
              + ("" if avif["quality_exact"] else " (a quantiser this encoder does not use: the nearest one)"))
        return
    rate = f"quality {enc.quality}" if enc.codec != "neural" else f"lambda {enc.lmbda:.6g} (s={enc.scale_q}/1024)"
    mask = file_mask(enc)
    protect = f", protect mask {len(enc.mask)} bytes covering {coverage(mask):.1%}" if mask is not None else ""
    print(f"{enc.codec} {enc.width}x{enc.height} {rate}, {len(data)} bytes, {bpp:.4f} bpp{protect}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "info":
            _info(args)
            return 0
        from .pipeline import DiracPipeline
        pipe = DiracPipeline.from_pretrained(args.assets, args.hub_repo, device=args.device)
        if args.command == "compress":
            _compress(args, pipe)
        else:
            _decompress(args, pipe)
    except DiracError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
