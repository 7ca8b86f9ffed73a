#!/usr/bin/env bash
# GPU figures in one run, within one time budget (GPU_SCRIPT_BUDGET_S, default 540 s, so that
# the run fits a 10-minute slot): the GPU-sensitive tests (cuDNN attention against XLA's, the
# exact sampled-token lookup and f32 logits under the GPU's real matmul precision, dropout);
# the per-op-category profile of the small (512 x 128) and base (64 x 512) bf16 steps
# (benchmarks/profile_step.py); then train-step throughput and MFU (datasheet and measured
# peak) for small and base with XLA or cuDNN attention. jax's cuDNN attention has no dropout,
# so its rows (and an XLA row to compare with) run with attention dropout off.
#
#   [TRACE_ROOT=dir] bash benchmarks/gpu.sh [more flags, applied to every benchmark row] \
#     2>&1 | tee gpu.log
#
# (The whole log runs to ~15k characters; keep it in a file, not only a terminal's tail.)
# Each run is bounded by its own timeout and by what is left of the budget, so one failing or
# stalling setting cannot hide the others; rows that no longer fit say so. The runs share a
# persistent compilation cache: the profiled steps are the benchmarked ones (XLA runs command
# buffers op by op only while the profiler is on), so those two rows do not compile again.
# Left out to fit the budget: small in float32, and small with cuDNN at its preset's batch.
set -u
cd "$(dirname "$0")/.."
export JAX_PLATFORMS="${JAX_PLATFORMS:-cuda}"
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$(mktemp -d)}"
PYTHON="${PYTHON:-python3}"
BUDGET_S="${GPU_SCRIPT_BUDGET_S:-540}"
TRACE_ROOT="${TRACE_ROOT:-$(mktemp -d)}"

# timeout, shortened to what is left of the budget; refuses to start with under 30 s left.
bounded() {
  local limit=$1 left=$((BUDGET_S - SECONDS))
  shift
  if ((left < 30)); then
    echo "(skipped: ${left} s of the ${BUDGET_S} s budget left)"
    return 1
  fi
  timeout "$((limit < left ? limit : left))" "$@"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$PYTHON" -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"
bounded 150 "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_transformer.py \
  tests/test_heads.py tests/test_dropout.py \
  "tests/test_objective.py::test_discriminator_input_is_an_exact_lookup_under_accelerator_matmul_precision"

profile() {
  local name=$1
  shift
  echo "== profile $name: $*"
  bounded "$PROFILE_TIMEOUT_S" "$PYTHON" benchmarks/profile_step.py --steps=5 \
    --trace_dir="$TRACE_ROOT/$name" "$@" 2>&1 | grep -vE "^[IW][0-9]{4} " \
    || echo "(failed or timed out)"
}
PROFILE_TIMEOUT_S=150 profile small --config=configs/small.py --config.model.dtype=bfloat16 \
  --config.batch_size=512
PROFILE_TIMEOUT_S=180 profile base --config=configs/base.py --config.model.dtype=bfloat16 \
  --config.batch_size=64

benchmark() {
  echo "== $*"
  bounded 240 "$PYTHON" benchmarks/train_step.py --steps=20 "$@" "${EXTRA[@]}" 2>&1 \
    | grep -E "^(devices|batch|compile|step|tokens|model|matmul|mfu)|Error|error:|skipped" \
    || echo "(failed or timed out)"
}
EXTRA=("$@")
NO_ATTENTION_DROPOUT=(--config.model.attention_dropout_rate=0)
benchmark --config=configs/small.py --config.model.dtype=bfloat16 --config.batch_size=512
benchmark --config=configs/base.py --config.model.dtype=bfloat16 --config.batch_size=64
for attention in xla cudnn; do
  benchmark --config=configs/small.py --config.model.dtype=bfloat16 "${NO_ATTENTION_DROPOUT[@]}" \
    --config.model.attention_implementation=$attention --config.batch_size=512
done
# base with cuDNN last: it did not finish compiling in 110 s before, so it gets what is left.
for attention in xla cudnn; do
  benchmark --config=configs/base.py --config.model.dtype=bfloat16 "${NO_ATTENTION_DROPOUT[@]}" \
    --config.model.attention_implementation=$attention --config.batch_size=64
done
echo "script: ${SECONDS} s of the ${BUDGET_S} s budget"
