#!/usr/bin/env bash
# Issue 13's table on one GPU, in one run: prepare a slice of the corpus, pretrain ELECTRA
# (and whatever else --arms names) for a few minutes, fine-tune it and a random-init encoder
# of the same size on SST-2 with 5 seeds (benchmarks/quality.py does all of it).
#
#   python benchmarks/corpus_slice.py --out=gpu_data \
#     --tokenizer=<a prepared dir>/tokenizer.model     # here, once (gpu_data/ is ignored)
#   bash benchmarks/gpu_quality.sh [more quality.py flags]   # there; carry gpu_data
#
# The device machine has no ../shared and no TensorFlow (its wheel is too large to carry):
# the input pipeline then gathers batches in threads and metrics go to metrics.jsonl alone
# (data/pipeline.py, train/metric_logging.py). Of the packages amos_jax needs, its image
# (jax 0.11.2, flax, optax, orbax, sentencepiece) lacks only ml-collections; it travels as a
# wheel in .whl/ (ignored through .git/info/exclude), installed from there when it exists:
#   python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 -d .whl ml-collections==1.1.0
# The device call then carries gpu_data and .whl: about 53 MB with the default slice.
#
# Sizes: the small preset (12x256) in bfloat16 at its batch of 128 x 128, STEPS steps
# (default 6000: docs/performance.md's H200 row measured 66.5 ms for a 512-row step, so a 128-row
# step should take well under 60 ms, i.e. under 6 minutes; the log's first ETA tells), with
# the tokenizer of gpu_data/ if it holds one (vocab_size then follows it: 8192 for mini's).
# Results land in $OUT (the device tool's folder that comes back), else in $WORK/results.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${GPU_DATA:-gpu_data}"
WORK="${WORK:-/tmp/amos_gpu_quality}"
RESULTS="${OUT:-$WORK/results}"
PRESET="${PRESET:-small}"
STEPS="${STEPS:-6000}"
PYTHON="${PYTHON:-python3}"
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$WORK/xla_cache}"
mkdir -p "$WORK" "$RESULTS"

if [ -d .whl ]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

OVERRIDES=(--pretrain_override=model.dtype=bfloat16)
if [ -f "$DATA/tokenizer.model" ]; then
  vocab=$("$PYTHON" -c "import sentencepiece as s, sys; print(s.SentencePieceProcessor(model_file=sys.argv[1]).vocab_size())" "$DATA/tokenizer.model")
  OVERRIDES+=("--pretrain_override=data.tokenizer_path=$DATA/tokenizer.model"
              "--pretrain_override=model.vocab_size=$vocab")
fi

status=0
PYTHONUNBUFFERED=1 "$PYTHON" benchmarks/quality.py --workdir="$WORK" --preset="$PRESET" \
  --pretrain_steps="$STEPS" --text_files="$DATA/text/*.txt.gz" --sst2_dir="$DATA/sst2" \
  --tasks=sst2 --arms=random,electra --equal_wallclock=false "${OVERRIDES[@]}" "$@" \
  2>&1 | grep -vE "^[IW][0-9]{4} .*(orbax|checkpoint|absl)" | tee "$RESULTS/gpu_quality.log" \
  || status=$?
for file in quality.json quality.png; do
  [ -f "$WORK/$file" ] && cp "$WORK/$file" "$RESULTS/" || true
done
for arm in "$WORK"/pretrain_*/; do
  [ -f "$arm/metrics.jsonl" ] && cp "$arm/metrics.jsonl" "$RESULTS/$(basename "$arm").jsonl"
done
echo "script: ${SECONDS} s"
exit "$status"
