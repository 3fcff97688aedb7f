#!/usr/bin/env bash
# The main job on the synthetic person world, end to end on a CPU:
#   1. write the world into data/synthetic (first use only, about a minute),
#   2. train the re-ID teacher on it from scratch and evaluate it (mAP, CMC, mINP),
#   3. train DG-Net with the fp16 config (bfloat16 where the CPU has it, else float32) and the
#      teacher's soft labels, and evaluate its appearance encoder,
#   4. draw DG-Net's swap grid, measure SSIM / FID / LPIPS of its images and score its swaps against
#      the world's true swaps beside three no-learning baselines (the swap table),
#   5. draw a grid of the world's images (rows: identities; right: true rotated body views).
# Logs, checkpoints and figures go to logs/; watch them with `tensorboard --logdir logs`.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-.venv/bin/python}

$PY train.py --config configs/synthetic-teacher.yaml
$PY train.py --config configs/synthetic-dgnet.yaml
DGNET=logs/synthetic-dgnet/checkpoints/last.pt
$PY visual_tools/figures.py --checkpoint "$DGNET" --figures swap --num 8 --output logs/synthetic-dgnet/figures
# Offline, the FID Inception and LPIPS AlexNet weights cannot be fetched: these runs use seeded
# random weights and say so in their output (the figures then only compare runs of this suite).
# With the weight files at hand, pass --inception FILE --lpips-backbone FILE for published-style
# figures.
$PY visual_tools/generation_metrics.py --checkpoint "$DGNET" --limit 64 --metrics ssim fid lpips swap \
    --inception false --lpips-backbone false
$PY -m reid_data.synthetic.preview data/synthetic logs/synthetic-teacher/world_samples.png \
    --ids 12 --columns 10 --rotations
