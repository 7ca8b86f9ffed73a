#!/usr/bin/env bash
# Pretrains on all NVIDIA GPUs of this host from one process (data parallel).
#
# Usage (from the repository root): launch/gpu_multi.sh CONFIG WORKDIR [--config.key=value ...]
#   e.g. launch/gpu_multi.sh configs/base.py /ckpt/amos_base --config.batch_size=256
#
# One JAX process drives every visible GPU: the train step is sharded over all of them and
# the gradients are summed with psum, so config.batch_size (global) must divide by the GPU
# count. bfloat16 compute, 90% of each GPU's memory preallocated and XLA's
# latency-hiding scheduler (overlaps the all-reduce with the backward pass). Needs:
# pip install -r requirements.txt "jax[cuda12]==0.10.2".
#
# Environment:
#   CUDA_VISIBLE_DEVICES=0,1,...        restrict to these GPUs (default: all)
#   PYTHON=python3                      the interpreter
#   XLA_PYTHON_CLIENT_MEM_FRACTION=0.90 share of each GPU's memory preallocated
#   XLA_FLAGS=...                       extra XLA flags, kept before ours
#   DRY_RUN=1                           print the command instead of running it
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

amos_require_config_and_workdir "$@"
amos_gpu_trainer "$@"
amos_exec env "${AMOS_GPU_ENV[@]}" "${AMOS_TRAINER[@]}"
