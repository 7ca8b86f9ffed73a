#!/usr/bin/env bash
# Pretrains on one NVIDIA GPU of this host.
#
# Usage (from the repository root): launch/gpu_single.sh CONFIG WORKDIR [--config.key=value ...]
#   e.g. launch/gpu_single.sh configs/small.py /ckpt/amos_small --config.batch_size=128
#
# Runs python -m amos_jax.main with bfloat16 compute (cuDNN attention is opt-in:
# --config.model.attention_implementation=cudnn --config.model.attention_dropout_rate=0, as it
# has no dropout), JAX preallocating 90% of the GPU's
# memory and XLA's latency-hiding scheduler. Needs: pip install -r requirements.txt
# "jax[cuda12]==0.10.2".
#
# Environment:
#   GPU=0                               which GPU (sets CUDA_VISIBLE_DEVICES)
#   PYTHON=python3                      the interpreter
#   XLA_PYTHON_CLIENT_MEM_FRACTION=0.90 share of GPU memory preallocated
#   XLA_FLAGS=...                       extra XLA flags, kept before ours
#   DRY_RUN=1                           print the command instead of running it
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

amos_require_config_and_workdir "$@"
amos_gpu_trainer "$@"
amos_exec env "CUDA_VISIBLE_DEVICES=${GPU:-0}" "${AMOS_GPU_ENV[@]}" "${AMOS_TRAINER[@]}"
