#!/usr/bin/env bash
# Regenerates every result file in results/ (JSON, plots/, RESULTS.md) on the Kodak images.
# Usage: bash results/run_all.sh KODAK_DIR   (about 3 hours on 2 CPU cores; SWD with 4096
# patches per image and level is a good part of it). What each file holds: results/README.md.
set -euo pipefail
D=${1:?usage: bash results/run_all.sh KODAK_DIR}
cd "$(dirname "$0")/.."
# the diffusion network in fp32, as in the files here (auto would pick bf16 on a CPU with bf16 units)
E="python -m dirac_demo.eval.evaluate --data $D --threads 1 --precision fp32 --quiet"
# two evaluations at a time, one thread each; the base codecs first (minutes, not tens of them)
{ $E --codec webp --quality 5 10 20 30 50 70 90 --json results/webp.json
  $E --codec avif --quality 25 30 40 50 60 70 85 --json results/avif.json; } &
$E --codec neural --lmbda 0.0004 0.0008 0.0016 0.003 0.006 0.016 --steps 0 --json results/neural_base.json &
wait
# the targets' rates (QF 10, λ 0.0016) beside the paper's uniform late start, on all 24 images; the other rates alone
$E --codec jpeg --qf 10 --steps 20 --step-every 5 --spacing-compare --json results/jpeg_spacing.json &
$E --codec neural --lmbda 0.0016 --steps 20 --step-every 5 --spacing-compare --json results/neural_spacing.json &
wait
$E --codec jpeg --qf 5 20 40 --steps 20 --step-every 5 --json results/jpeg.json &
$E --codec neural --lmbda 0.0004 0.006 --steps 20 --step-every 5 --json results/neural.json &
wait
$E --codec neural --lmbda 0.0016 --steps 20 --step-every 5 --threshold-compare --limit 8 --json results/neural_threshold.json &
$E --codec jpeg --qf 10 --steps 20 --step-every 5 --threshold-compare --limit 8 --json results/jpeg_threshold.json &
wait
$E --codec jpeg --qf 10 --steps 20 --full-steps-compare --step-every 5 --limit 4 --json results/jpeg_full.json
# the neural codec with encoder-side latent refinement (SGA, 60 iterations: ~40 s per image and λ)
python -m dirac_demo.eval.evaluate --data $D --threads 2 --quiet --codec neural --lmbda 0.0004 0.0016 0.006 0.016 \
    --steps 0 --refine 60 --json results/neural_refined.json
python -m dirac_demo.eval.evaluate --data $D --threads 2 --quiet --codec neural --lmbda 0.0008 0.003 \
    --steps 0 --refine 60 --json results/neural_refined_mid.json
python -m dirac_demo.eval.benchmark --threads 2 --precision bf16 --json results/bench.json
python -m dirac_demo.eval.benchmark --threads 2 --precision fp32 --sizes 768x512 --json results/bench_fp32.json
python -m dirac_demo.eval.plots --from results/*.json --out results/plots
python -m dirac_demo.eval.report --from results/*.json --out results/RESULTS.md
