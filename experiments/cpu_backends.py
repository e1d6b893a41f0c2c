"""Can another CPU runtime or precision make one DIRAC step twice as fast with the same images?

Command: python experiments/cpu_backends.py --data DIR [--size 768x512 --threads 2 --images 3]
         (after pip install onnx onnxruntime openvino; without them those rows say "not installed")
Answer:  No. The shipped bf16 path already runs the network's 142 GFLOP at the CPU's bf16 matmul rate,
         so only fewer or cheaper operations can halve a step, and int8 costs half a dB. 768×512,
         2 threads on the 2-core AMD EPYC VM (matmul fp32 120, bf16 317 GFLOP/s), 3 held-out images:
         backend                          ms   eff GFLOP  of bf16 peak  max |ΔPSNR|  last SWD Δ
         torch fp32                      862     103.4         52 %       0.014 dB     +0.0 %
         torch bf16 (shipped)            426      51.1        105 %       0            +0.0 %
         torch.compile bf16              452      54.3         99 %       0.007        −0.1 %
         OpenVINO fp32                   857     102.8         52 %       0.014        +0.0 %
         OpenVINO bf16                   447      53.6        100 %       0.011        +0.1 %
         ONNX Runtime fp32               895     107.3         50 %       0.014        +0.0 %
         OpenVINO int8 (bf16 elsewhere)  316      37.9        142 %       0.487       +36.5 %
         ONNX Runtime int8               397      47.6        113 %       0.482       +38.7 %

Runs one network call at SIZE through each backend: torch fp32; torch bf16 as the pipeline runs
it (bf16 weights and activations, channels-last); that module under ``torch.compile``; the same
network exported to ONNX and run by OpenVINO (fp32 and bf16 inference precision) and by ONNX
Runtime (fp32); and an int8 model (ONNX Runtime's static post-training quantisation of every
convolution, QDQ format, per-channel weights, calibrated on late-start inputs from training
crops, never the held-out files) run by both runtimes. Prints, per backend, the median time of
a call, the effective GFLOP (seconds × this machine's fp32 matmul GFLOP/s, measured in the same
run), the share of the bf16 matmul rate the network's FLOPs reach, and the quality against the
shipped bf16 path: 20 late-start steps on the held-out training images (every 40th file, centre
crops of SIZE) at JPEG quality 10, the largest |ΔPSNR| over all steps and images and the
change of the last steps' SWD (4096 patches, over the set of images). Backends that are not installed are listed as such.
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's dirac_demo, installed or not
from dirac_demo import RunSettings, with_metrics  # noqa: E402
from dirac_demo.diffusion.schedule import Schedule  # noqa: E402
from dirac_demo.eval.benchmark import matmul_samples, parse_size  # noqa: E402
from dirac_demo.images import pil_to_tensor  # noqa: E402
from dirac_demo.pipeline import DiracPipeline  # noqa: E402
from dirac_demo.swd import swd  # noqa: E402
from dirac_demo.train.data import heldout_images, list_images  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="training folder: calibration crops and its held-out files")
    p.add_argument("--size", default="768x512")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--images", type=int, default=3, help="held-out images for the quality columns")
    p.add_argument("--steps", type=int, default=20)
    return p.parse_args()


def centre_crop(path: Path, w: int, h: int) -> Image.Image:
    img = Image.open(path).convert("RGB")
    scale = max(w / img.width, h / img.height)
    if scale > 1:
        img = img.resize((round(img.width * scale + 0.5), round(img.height * scale + 0.5)), Image.BICUBIC)
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return img.crop((left, top, left + w, top + h))


def jpeg_pair(img: Image.Image, quality: int) -> tuple[np.ndarray, np.ndarray]:
    """(original, JPEG decode), both (1, 3, H, W) float32 in [−1, 1]."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    dec = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    arr = lambda im: np.asarray(im, np.float32).transpose(2, 0, 1)[None] / 127.5 - 1  # noqa: E731
    return arr(img), arr(dec)


def calibration(args, w: int, h: int, n: int = 12) -> list[dict]:
    """Network inputs as the late-start sampler makes them, from training crops (held-out files excluded)."""
    held = set(heldout_images(args.data))
    files = [f for f in list_images(args.data) if f not in held][:: max(1, 300 // n)][:n]
    sched, rng = Schedule(), np.random.default_rng(0)
    feeds = []
    for i, f in enumerate(files):
        x, xb = jpeg_pair(centre_crop(f, w, h), int(rng.integers(5, 51)))
        t = int(rng.integers(0, 200))
        ab = float(sched.alphas_cumprod[t])
        r_t = np.sqrt(ab) * (x - xb) + np.sqrt(1 - ab) * rng.standard_normal(x.shape).astype(np.float32)
        feeds.append({"r": r_t.astype(np.float32), "t": np.array([t], np.int64), "xb": xb})
    return feeds


def export_onnx(net: torch.nn.Module, w: int, h: int, folder: Path) -> Path:
    path = folder / "unet.onnx"
    example = (torch.zeros(1, 3, h, w), torch.zeros(1, dtype=torch.long), torch.zeros(1, 3, h, w))
    with torch.no_grad():
        torch.onnx.export(net, example, str(path), input_names=["r", "t", "xb"], output_names=["r0"],
                          opset_version=17, dynamo=False)
    return path


def quantise(onnx_path: Path, feeds: list[dict]) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    pre, out = onnx_path.with_name("unet_pre.onnx"), onnx_path.with_name("unet_int8.onnx")
    quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=True)
    quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"])
    return out


def openvino_call(path: Path, precision: str, threads: int):
    import openvino as ov
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": precision,
                                                          "INFERENCE_NUM_THREADS": threads,
                                                          "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    return lambda feed: next(iter(request.infer(feed).values()))


def onnxruntime_call(path: Path, threads: int):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return lambda feed: session.run(None, feed)[0]


def torch_call(net: torch.nn.Module, dtype: torch.dtype):
    def call(feed):
        r, xb = (torch.from_numpy(feed[k]).to(dtype).contiguous(memory_format=torch.channels_last) for k in ("r", "xb"))
        with torch.no_grad():
            return net(r, torch.from_numpy(feed["t"]), xb).float().numpy()
    return call


def backends(pipe: DiracPipeline, args, w: int, h: int, folder: Path) -> dict:
    """name -> a call feed -> r̂0 (numpy), or the reason it is unavailable."""
    shipped = pipe.dirac["jpeg"].net                  # bf16, channels-last, as the pipeline runs it
    fp32 = type(shipped)(shipped.config)
    fp32.load_state_dict({k: v.float() for k, v in shipped.state_dict().items()})
    fp32 = fp32.eval().to(memory_format=torch.channels_last)
    out = {"torch fp32": torch_call(fp32, torch.float32), "torch bf16 (shipped)": torch_call(shipped, torch.bfloat16)}
    out["torch.compile bf16"] = torch_call(torch.compile(shipped), torch.bfloat16)
    try:
        onnx_path = export_onnx(fp32, w, h, folder)
        int8_path = quantise(onnx_path, calibration(args, w, h))
    except ImportError as exc:
        return {**out, "ONNX models": f"not installed ({exc.name})"}
    for name, make in (("OpenVINO fp32", lambda: openvino_call(onnx_path, "f32", args.threads)),
                       ("OpenVINO bf16", lambda: openvino_call(onnx_path, "bf16", args.threads)),
                       ("ONNX Runtime fp32", lambda: onnxruntime_call(onnx_path, args.threads)),
                       ("OpenVINO int8 (bf16 elsewhere)", lambda: openvino_call(int8_path, "bf16", args.threads)),
                       ("ONNX Runtime int8", lambda: onnxruntime_call(int8_path, args.threads))):
        try:
            out[name] = make()
        except ImportError as exc:
            out[name] = f"not installed ({exc.name})"
    return out


def median_seconds(call, feed: dict, repeats: int) -> float:
    call(feed)
    call(feed)                       # warm-up: compilation, first-touch allocations
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call(feed)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def trajectories(pipe: DiracPipeline, call, images: list[tuple[Image.Image, np.ndarray, np.ndarray]], steps: int):
    """Per image: each step's PSNR and the last step's image, with ``call`` as the network."""
    original = pipe._net

    def net(_net, r, t, xb):
        feed = {"r": r.float().numpy(), "t": np.array([t], np.int64), "xb": xb.float().numpy()}
        return torch.from_numpy(np.ascontiguousarray(call(feed))).float()
    pipe._net = net
    try:
        out = []
        for img, _, _ in images:
            psnrs, last = [], None
            for ev in with_metrics(pipe.run(img, RunSettings(codec="jpeg", rate=10, steps=steps))):
                if getattr(ev, "k", 0):
                    psnrs.append(ev.psnr)
                    last = ev.image
            out.append((psnrs, last))
        return out
    finally:
        pipe._net = original


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    w, h = parse_size(args.size)
    pipe = DiracPipeline.from_pretrained(device="cpu", precision="bf16")
    if "jpeg" not in pipe.dirac:
        print("error: no JPEG+DIRAC model in assets/", file=sys.stderr)
        return 2
    files = heldout_images(args.data)[:args.images]
    images = [(centre_crop(f, w, h), *jpeg_pair(centre_crop(f, w, h), 10)) for f in files]
    feed = calibration(args, w, h, 1)[0]
    with FlopCounterMode(display=False) as counter:
        torch_call(pipe.dirac["jpeg"].net, torch.bfloat16)(feed)
    gflop = counter.get_total_flops() / 1e9
    rates = {"fp32": [], "bf16": []}
    for dtype, key in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        rates[key] += matmul_samples(dtype=dtype, repeats=8)
    with tempfile.TemporaryDirectory() as tmp:
        calls = backends(pipe, args, w, h, Path(tmp))
        reference = None
        rows = []
        for name, call in calls.items():
            if isinstance(call, str):
                rows.append((name, call))
                continue
            secs = median_seconds(call, feed, args.repeats)
            traj = trajectories(pipe, call, images, args.steps)
            if name == "torch bf16 (shipped)":
                reference = traj
            rows.append((name, secs, traj))
    for key in rates:
        rates[key] += matmul_samples(dtype=torch.float32 if key == "fp32" else torch.bfloat16, repeats=8)
    fp32_rate, bf16_rate = (statistics.median(rates[k]) for k in ("fp32", "bf16"))
    originals = [pil_to_tensor(pil) for pil, _, _ in images]
    set_swd = lambda traj: swd(originals, [last for _, last in traj]).mean  # noqa: E731
    ref_swd = set_swd(reference)
    print(f"{args.size}, {args.threads} threads, {gflop:.1f} GFLOP a call; matmul fp32 {fp32_rate:.0f}, "
          f"bf16 {bf16_rate:.0f} GFLOP/s; quality: {len(images)} held-out images, JPEG QF 10, {args.steps} steps")
    print(f"{'backend':32s} {'ms':>7s} {'eff GFLOP':>9s} {'of bf16 peak':>12s} {'max |ΔPSNR| dB':>14s} {'last SWD Δ':>10s}")
    for row in rows:
        if len(row) == 2:
            print(f"{row[0]:32s} {row[1]}")
            continue
        name, secs, traj = row
        dpsnr = max(abs(a - b) for (pa, _), (pb, _) in zip(traj, reference) for a, b in zip(pa, pb))
        dswd = set_swd(traj) / ref_swd - 1
        print(f"{name:32s} {secs * 1e3:7.0f} {secs * fp32_rate:9.1f} {gflop / secs / bf16_rate:12.0%} "
              f"{dpsnr:14.3f} {dswd:+10.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
