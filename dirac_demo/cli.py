"""Command line: ``dirac-demo compress|decompress|enhance|info`` (also ``python -m dirac_demo``).

Errors for users (bad images, corrupt bitstreams, bad parameters, missing weights) print one
line on stderr and exit with status 2. ``enhance`` goes on past a file that fails, lists the
failures at the end and exits with status 1 when there was any.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .codecs import CODECS, by_rate_flag
from .errors import DiracError, InputError, TooLargeError
from .protect import DEFAULT_FEATHER, compose, coverage, file_mask
from .window import Window


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dirac-demo",
                                description="DIRAC: base codec + residual diffusion enhancement.")
    p.add_argument("--version", action="version", version=f"dirac-demo {__version__}")
    p.add_argument("--assets", default=None, help="folder with weights (default: the shipped assets/)")
    p.add_argument("--hub-repo", default=None, help="Hugging Face Hub repo id with weights (or DIRAC_HUB_REPO)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compress", help="encode an image to a .drc bitstream with a base codec ("
                       + ", ".join(codec.label for codec in CODECS.values()) + ")")
    c.add_argument("image")
    c.add_argument("-o", "--output", required=True)
    c.add_argument("--codec", choices=list(CODECS), default=next(iter(CODECS)),
                   help="; ".join(f"{name}: {codec.description}" for name, codec in CODECS.items()))
    _rate_flags(c)
    c.add_argument("--downscale", action="store_true", help="downscale images over the size limit")
    c.add_argument("--refine", type=int, default=0,
                   help="neural: optimise this image's latents for N iterations (SGA) before coding: "
                        "smaller files, same decoder, slower encoding (try 60)")
    c.add_argument("--protect", metavar="MASK", default=None,
                   help="mask image of regions the receiver keeps faithful (faces, text): it travels in "
                        "the file as a low-resolution bitmap, a few hundred bytes counted in the rate")

    d = sub.add_parser("decompress", help=f"decode a bitstream ({_files()}) and enhance it with DIRAC")
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
    d.add_argument("--window", metavar="X,Y,W,H", type=_window, default=None,
                   help="enhance only this full-resolution window (left, top, width, height in pixels) of a "
                        "file over the size limit; it is decoded whole, up to 64 MP for JPEG and AVIF")

    _enhance_parser(sub)

    i = sub.add_parser("info", help=f"describe a bitstream ({_files()})")
    i.add_argument("bitstream")
    return p


def _window(text: str) -> Window:
    """``--window``'s value, or argparse's one-line error (exit status 2)."""
    try:
        return Window.parse(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _enhance_parser(sub) -> None:
    """``enhance``: photos (JPEG, AVIF, .drc) at full size into a folder, colours and EXIF kept."""
    from .photos import DEFAULT_QUALITY, FORMATS
    e = sub.add_parser("enhance", help="enhance JPEG, AVIF and .drc photos at full size (files, globs or folders) "
                       "into a folder, keeping their ICC profile and EXIF")
    e.add_argument("inputs", nargs="+", metavar="FILE", help="files, quoted globs ('photos/*.jpg') or folders")
    e.add_argument("-o", "--output-dir", required=True, metavar="DIR",
                   help="where NAME.stepK.png (or .jpg, .webp, .avif) go; existing outputs are skipped")
    e.add_argument("--step", "--stop", dest="stop", type=int, default=1, metavar="K",
                   help="the step written: 1 (default) is the fidelity end, --steps the realism end")
    e.add_argument("--steps", type=int, default=20, help="late-start steps S that K is one of (default 20)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--no-threshold", action="store_true", help="disable rate-dependent thresholding")
    e.add_argument("--format", dest="fmt", choices=list(FORMATS), default="png",
                   help="output file format (default png, lossless)")
    e.add_argument("--quality", type=int, default=None,
                   help="jpeg/webp/avif output quality 0..100 (default "
                        + ", ".join(f"{k} {DEFAULT_QUALITY[v[0]]}" for k, v in FORMATS.items() if v[0] != "PNG") + ")")
    e.add_argument("--protect", metavar="MASK", default=None,
                   help="a mask image for every file, or a folder of masks named like the inputs (NAME.png): "
                        "bright or opaque regions take --protect-step; overrides a mask in a .drc")
    e.add_argument("--protect-step", type=int, default=1, help="the step protected regions show (default 1)")
    e.add_argument("--feather", type=int, default=DEFAULT_FEATHER,
                   help=f"pixels of blending on each side of the mask's edge (default {DEFAULT_FEATHER})")
    e.add_argument("--ignore-mask", action="store_true", help="ignore a protect mask carried in a .drc")
    e.add_argument("--overwrite", action="store_true", help="rewrite outputs that exist (inputs never)")
    e.add_argument("--tile", type=int, default=None, metavar="PIXELS",
                   help="tile side (default 544 above 1.5 MP, else the whole image): smaller uses less memory")


def _rate_flags(p: argparse.ArgumentParser) -> None:
    """One rate flag per codec of the table (codecs sharing a flag share it), e.g. --qf, --lmbda."""
    for flag, group in by_rate_flag().items():
        r = group[0].rates
        what = " / ".join(f"{c.rates.label} {c.rates.format(c.rates.low)}..{c.rates.format(c.rates.high)} "
                          f"(default {c.rates.format(c.rates.default)})" for c in group)
        p.add_argument(f"--{flag}", type=int if r.integer else float, default=None, help=what)


def _files() -> str:
    """The receiver's inputs in words: a .drc, or a plain file of any codec that has one."""
    plain = [c.label for c in CODECS.values() if c.plain_files]
    return ".drc" + "".join(f", or any {label} file" for label in plain)


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
    codec = CODECS[args.codec]
    flag = codec.rates.flag
    for other in CODECS.values():
        if other.rates.flag != flag and getattr(args, other.rates.flag) is not None:
            raise DiracError(f"--{other.rates.flag} is for {other.name}; {args.codec} takes --{flag}.")
    if args.refine and not codec.refines:
        raise DiracError(f"--refine is for a learned codec; {args.codec} has no latents.")
    value = getattr(args, flag)
    return codec.rates.default if value is None else value


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
    from .quality import psnr
    print(f"{args.output}: {args.codec} rate {rate:g}{refined}, {comp.encoded.width}x{comp.encoded.height}"
          f"{shrunk}, {comp.nbytes} bytes{mask}, {comp.bpp:.4f} bpp, base PSNR {psnr(comp.base, comp.original):.2f} dB")


def _decompress(args, pipe) -> None:
    from .images import png_bytes, tensor_to_pil
    data = _read(args.bitstream)
    try:
        mask, fidelity, last = _decoded_steps(args, pipe, data)
    except TooLargeError as exc:
        raise exc.advise("enhance a window of it with --window X,Y,W,H, or all of it with dirac-demo enhance") \
            from None
    image = last.image if mask is None else compose(fidelity, last.image, mask, args.feather)
    _write(args.output, png_bytes(tensor_to_pil(image)))
    kept = (f"; protected regions ({coverage(mask):.0%} of the image) at step {args.protect_step}"
            if mask is not None else "")
    print(f"{args.output}: base + {last.k} of {last.total} DIRAC steps{kept}")


def _decoded_steps(args, pipe, data: bytes):
    """Decode and step through ``data``, reporting each step on stderr: the protect mask, the
    protected step's image and the last frame."""
    from .pipeline import Compressed, RunSettings
    settings = RunSettings(steps=args.steps, stop=args.stop, seed=args.seed, threshold=not args.no_threshold,
                           eta=args.eta, window=args.window)
    mask, fidelity, last = None, None, None
    for ev in pipe.run_bitstream(data, settings):
        if isinstance(ev, Compressed):
            part = f", window {ev.window} at full size" if ev.window is not None else ""
            print(f"decoded {ev.encoded.codec} {ev.encoded.width}x{ev.encoded.height}{part} "
                  f"({ev.nbytes} bytes, {ev.bpp:.4f} bpp); no original here, so no PSNR", file=sys.stderr)
            mask = _mask(args, ev, settings.last_step())
            continue
        if ev.k:
            print(f"step {ev.k}/{ev.total} t={ev.t} {ev.seconds:.2f}s", file=sys.stderr)
        fidelity = ev.image if ev.k == args.protect_step else fidelity
        last = ev
    return mask, fidelity, last


def _mask(args, comp, stop: int):
    """The decode's protect mask: ``--protect``'s, else the file's (unless ignored), else None."""
    mask = None if args.ignore_mask and args.protect is None else comp.protect_mask(args.protect)
    if mask is not None and not 0 <= args.protect_step <= stop:
        raise DiracError(f"--protect-step must be in 0..{stop} (the last step run).")
    return mask


def _enhance_options(args):
    """The batch's options, checked (before any weights load)."""
    from .photos import EnhanceOptions
    options = EnhanceOptions(stop=args.stop, steps=args.steps, seed=args.seed, threshold=not args.no_threshold,
                             fmt=args.fmt, quality=args.quality, protect=args.protect, protect_step=args.protect_step,
                             feather=args.feather, ignore_mask=args.ignore_mask, overwrite=args.overwrite,
                             tile=args.tile)
    options.check()
    return options


def _enhance(args, options, pipe) -> int:
    """Run the batch; 1 when any file failed (listed at the end on stderr), else 0."""
    from .photos import enhance_batch
    report = enhance_batch(pipe, args.inputs, args.output_dir, options)
    print(f"{len(report.written)} written, {len(report.skipped)} skipped (done already), {len(report.failed)} failed")
    for name, reason in report.failed:
        print(f"failed: {name}: {reason}", file=sys.stderr)
    return 1 if report.failed else 0


def _info(args) -> None:
    from . import codecs
    data = _read(args.bitstream)
    enc = codecs.read(data)
    mask = file_mask(enc)
    protect = f", protect mask {len(enc.mask)} bytes covering {coverage(mask):.1%}" if mask is not None else ""
    print(CODECS[enc.codec].describe(enc, len(data)) + protect)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "info":
            _info(args)
            return 0
        from .pipeline import DiracPipeline
        options = _enhance_options(args) if args.command == "enhance" else None
        pipe = DiracPipeline.from_pretrained(args.assets, args.hub_repo, device=args.device)
        if args.command == "enhance":
            return _enhance(args, options, pipe)
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
