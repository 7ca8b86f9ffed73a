#!/usr/bin/env bash
# GPU figures in one run: the GPU-sensitive tests (cuDNN attention against XLA's, the exact
# sampled-token lookup and f32 logits under the GPU's real matmul precision, dropout), then
# train-step throughput and MFU (datasheet and measured peak) for the small and base presets
# with bf16 or fp32 compute and XLA or cuDNN attention. jax's cuDNN attention has no
# dropout, so its rows (and an XLA row to compare with) run with attention dropout off.
#
#   bash benchmarks/gpu.sh [more train_step.py flags, applied to every run]
#
# Each run is bounded by a timeout, so one failing setting cannot hide the others.
set -u
cd "$(dirname "$0")/.."
export JAX_PLATFORMS="${JAX_PLATFORMS:-cuda}"
PYTHON="${PYTHON:-python3}"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$PYTHON" -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"
timeout 300 "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_transformer.py \
  tests/test_heads.py tests/test_dropout.py \
  "tests/test_objective.py::test_discriminator_input_is_an_exact_lookup_under_accelerator_matmul_precision"

benchmark() {
  echo "== $*"
  timeout 240 "$PYTHON" benchmarks/train_step.py --steps=20 "$@" "${EXTRA[@]}" 2>&1 \
    | grep -E "^(devices|batch|compile|step|tokens|model|matmul|mfu)|Error|error:" \
    || echo "(failed or timed out)"
}
EXTRA=("$@")
NO_ATTENTION_DROPOUT=(--config.model.attention_dropout_rate=0)
benchmark --config=configs/small.py --config.model.dtype=bfloat16 --config.batch_size=512
benchmark --config=configs/base.py --config.model.dtype=bfloat16 --config.batch_size=64
for attention in xla cudnn; do
  benchmark --config=configs/small.py --config.model.dtype=bfloat16 "${NO_ATTENTION_DROPOUT[@]}" \
    --config.model.attention_implementation=$attention --config.batch_size=512
  benchmark --config=configs/base.py --config.model.dtype=bfloat16 "${NO_ATTENTION_DROPOUT[@]}" \
    --config.model.attention_implementation=$attention --config.batch_size=64
done
benchmark --config=configs/small.py --config.model.dtype=float32 --config.batch_size=512
benchmark --config=configs/small.py --config.model.dtype=bfloat16 "${NO_ATTENTION_DROPOUT[@]}" \
  --config.model.attention_implementation=cudnn
