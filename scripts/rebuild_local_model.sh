#!/usr/bin/env bash
# Rebuild the shipped local CSP model (src/deepcsp/data/local_csp.safetensors) from a clean checkout
# and the dev meshes: seeded, one CPU thread per process, about 1.8 hours on one core.
#   scripts/rebuild_local_model.sh [MESH_DIR]          # default $DEEPCSP_MESHES or ../shared/data/meshes
#   NPROC=2 scripts/rebuild_local_model.sh             # torchrun, one process per CPU core (gloo)
#   on a GPU machine the same command trains on CUDA (93 s on one H200; nccl when NPROC > 1, at most one process per GPU)
# The run folder (RUN, default runs/local_csp) keeps checkpoints: rerun after an interruption to resume.
# The split (training / validation for model selection / evaluation meshes never seen) is in
# src/deepcsp/cli/train_local.py and src/deepcsp/data/local_csp.md.
set -euo pipefail
cd "$(dirname "$0")/.."
MESHES="${1:-${DEEPCSP_MESHES:-../shared/data/meshes}}"
RUN="${RUN:-runs/local_csp}"
NPROC="${NPROC:-1}"
PY="${PYTHON:-.venv/bin/python}"
ARGS=(train-local "$MESHES" -o "$RUN" --config.epochs 8 --config.threads 1 --config.seed 0 --quiet)
if [ "$NPROC" -gt 1 ]; then
  "$PY" -m torch.distributed.run --standalone --nproc_per_node="$NPROC" -m deepcsp "${ARGS[@]}"
else
  "$PY" -m deepcsp "${ARGS[@]}"
fi
cp "$RUN/model.safetensors" src/deepcsp/data/local_csp.safetensors.tmp
mv src/deepcsp/data/local_csp.safetensors.tmp src/deepcsp/data/local_csp.safetensors
echo "wrote src/deepcsp/data/local_csp.safetensors (best validation epoch of $RUN/history.json)"
