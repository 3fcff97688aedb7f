#!/usr/bin/env bash
# GCL on the synthetic person world, end to end on a CPU, with no oracle in the pipeline:
#   1. a source teacher on another world (seed 1), the role ImageNet plays on real data,
#   2. Cluster Contrast on this world without its labels (the identity encoder's start),
#   3. HMR trained on a third world's people (seed 1, 1,200 identities: SPIN's role), then the
#      bodies it regresses from this world's images rendered as seen and turned (GCL's meshes),
#   4. GCL stage 2 (generator; identity encoder frozen) and stage 3 (everything, with the memory),
#   5. scores: HMR against the world's true bodies and oracle renders (orientation, silhouette IoU),
#      the turned views against the world's true views beside the copy and mesh-warp baselines
#      (judged by the synthetic teacher), and the views figure.
# Each step leaves a mark in $STEPS when it ends well and is skipped on the next run; a training cut
# short resumes from its last.pt. Logs, checkpoints and figures go to logs/.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-.venv/bin/python}
STEPS=${STEPS:-logs/synthetic-gcl-pipeline}
RENDERS=data/synthetic-hmr-renders
ORACLE=data/synthetic-renders
STAGE2=logs/synthetic-gcl-hmr-stage2
STAGE3=logs/synthetic-gcl-hmr-stage3
GCL_WORLD="data.root=data data.world.seed=0 data.world.ids=500"  # HMR's config trains on another world
started=$SECONDS

step() {  # step NAME COMMAND...: runs COMMAND unless step NAME ended well before
    local name=$1 start=$SECONDS
    shift
    if [[ -f $STEPS/$name.done ]]; then
        echo "[$name] done before ($(cat "$STEPS/$name.done") s), skipped"
        return
    fi
    echo "[$name] $*"
    "$@"
    mkdir -p "$STEPS"
    echo $((SECONDS - start)) > "$STEPS/$name.done"
    echo "[$name] $((SECONDS - start)) s"
}

train() {  # train NAME RUN_DIR ARGS...: train.py ARGS, or --resume RUN_DIR's last.pt where it was cut short
    local name=$1 run=$2
    shift 2
    if [[ ! -f $STEPS/$name.done && -f $run/checkpoints/last.pt ]]; then
        step "$name" "$PY" train.py --resume "$run/checkpoints/last.pt"
    else
        step "$name" "$PY" train.py "$@"
    fi
}

train teacher logs/synthetic-teacher --config configs/synthetic-teacher.yaml
train source-teacher logs/synthetic-source-teacher --config configs/synthetic-teacher.yaml \
    --opts data.root=data/synthetic-source "data.world={seed: 1}" run.name=synthetic-source-teacher
train cluster-contrast logs/synthetic-cc --config configs/synthetic-cc.yaml
train hmr logs/synthetic-hmr --config configs/synthetic-hmr.yaml
step hmr-errors "$PY" reid_eval/evaluate_checkpoint.py --checkpoint logs/synthetic-hmr/checkpoints/last.pt \
    --opts $GCL_WORLD
step hmr-renders "$PY" -m mesh.precompute --config configs/synthetic-hmr.yaml --out "$RENDERS" \
    --checkpoint logs/synthetic-hmr/checkpoints/last.pt --opts $GCL_WORLD
step oracle-renders "$PY" -m mesh.precompute --config configs/synthetic-gcl-stage2.yaml --out "$ORACLE" --oracle
step render-agreement "$PY" -m mesh.render_agreement --renders "$RENDERS" --truth "$ORACLE" \
    --json logs/synthetic-hmr/render_agreement.json
train stage2 "$STAGE2" --config configs/synthetic-gcl-stage2.yaml \
    --opts gcl.renders="$RENDERS" run.name=synthetic-gcl-hmr-stage2
train stage3 "$STAGE3" --config configs/synthetic-gcl-stage3.yaml \
    --opts gcl.renders="$RENDERS" gcl.init_from="$STAGE2/checkpoints/last.pt" run.name=synthetic-gcl-hmr-stage3
step view-metrics "$PY" visual_tools/view_metrics.py --checkpoint "$STAGE2/checkpoints/last.pt" \
    --judge logs/synthetic-teacher/checkpoints/last.pt --limit 256 --lpips-backbone false \
    --output "$STAGE2/view_metrics.json"
step views-figure "$PY" visual_tools/views_figure.py --checkpoint "$STAGE2/checkpoints/last.pt" --truth \
    --output "$STAGE2/views.jpg"
echo "synthetic GCL pipeline: $((SECONDS - started)) s this run; each step's own time in $STEPS/*.done"
