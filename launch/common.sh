# Sourced by the launch scripts: usage errors, dry runs and the accelerator environment.
# Not run by itself.

# Prints the calling script's header comment (its usage), from line 2 to the first
# non-comment line, so the usage is written once.
amos_usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
}

# Exits 2 with a message and the usage on stderr.
amos_usage_error() {
  echo "error: $1" >&2
  echo >&2
  amos_usage >&2
  exit 2
}

# Checks the two positional arguments every script takes: CONFIG and WORKDIR; -h or --help
# prints the usage and exits 0.
amos_require_config_and_workdir() {
  if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
    amos_usage
    exit 0
  fi
  if [[ $# -lt 2 || "$1" == -* || "$2" == -* ]]; then
    amos_usage_error "expected CONFIG and WORKDIR before any --config.key=value overrides"
  fi
}

# With DRY_RUN=1 prints the command, shell-quoted so it can be pasted; else runs it in place
# of this shell (so signals such as SLURM's SIGTERM reach the trainer directly).
amos_exec() {
  if [[ "${DRY_RUN:-0}" == 1 ]]; then
    amos_quote "$@"
  else
    exec "$@"
  fi
}

# Like amos_exec, for a command that is not the last: runs it and returns.
amos_run() {
  if [[ "${DRY_RUN:-0}" == 1 ]]; then
    amos_quote "$@"
  else
    "$@"
  fi
}

# Prints the arguments as one shell-quoted command line.
amos_quote() {
  local quoted
  printf -v quoted '%q ' "$@"
  echo "${quoted% }"
}

# The environment for training on NVIDIA GPUs, as NAME=VALUE words for `env`. Each value can
# be overridden by setting it before calling the script.
amos_gpu_env() {
  # JAX preallocates this share of GPU memory at start: one big pool, no fragmentation.
  echo "XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-true}"
  echo "XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.90}"
  # Overlaps the gradient all-reduce with the backward pass; the user's XLA_FLAGS come first.
  echo "XLA_FLAGS=${XLA_FLAGS:+$XLA_FLAGS }--xla_gpu_enable_latency_hiding_scheduler=true"
}

# Config overrides for GPUs: bfloat16 compute (parameters stay float32). Attention stays
# XLA's: on an H200, cuDNN's was 9% slower for the small preset, and the base preset with
# cuDNN did not finish compiling and 20 steps within 110 s (XLA: 58 s to compile). The
# user's overrides come after these, so they win.
AMOS_GPU_OVERRIDES=(--config.model.dtype=bfloat16)

# The Python that runs the trainer.
AMOS_PYTHON="${PYTHON:-python3}"

# With CHECK_TOPOLOGY set (a slice such as v5e-64; python -m amos_jax.compile_check
# --helpfull lists them), first compiles the training step for it on this host and stops the
# script when it does not compile or does not fit, before anything is booked or started.
# Takes CONFIG, then the trainer's arguments, of which it passes the --config.* overrides.
amos_compile_check() {
  [[ -n "${CHECK_TOPOLOGY:-}" ]] || return 0
  local check=("$AMOS_PYTHON" -m amos_jax.compile_check --config="$1"
               --topology="$CHECK_TOPOLOGY") arg
  for arg in "${@:2}"; do
    if [[ "$arg" == --config.* ]]; then
      check+=("$arg")
    fi
  done
  amos_run "${check[@]}"
}

# Sets AMOS_GPU_ENV (amos_gpu_env's words) and AMOS_TRAINER, the trainer's command line for
# GPUs: CONFIG WORKDIR, then the GPU overrides, then the user's overrides (which win).
amos_gpu_trainer() {
  mapfile -t AMOS_GPU_ENV < <(amos_gpu_env)
  AMOS_TRAINER=("$AMOS_PYTHON" -m amos_jax.main --config="$1" --workdir="$2"
                "${AMOS_GPU_OVERRIDES[@]}" "${@:3}")
}
