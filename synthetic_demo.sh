#!/usr/bin/env bash
# The main job on the synthetic person world, end to end on a CPU:
#   1. write the world into data/synthetic (first use only, about a minute),
#   2. train the re-ID teacher on it from scratch and evaluate it (mAP, CMC, mINP),
#   3. draw a grid of the world's images (rows: identities; right: true rotated body views).
# Logs, checkpoints and figures go to logs/; watch them with `tensorboard --logdir logs`.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-.venv/bin/python}

$PY train.py --config configs/synthetic-teacher.yaml
$PY -m reid_data.synthetic.preview data/synthetic logs/synthetic-teacher/world_samples.png \
    --ids 12 --columns 10 --rotations
