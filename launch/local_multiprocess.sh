#!/usr/bin/env bash
# Runs N JAX processes on this machine's CPU, as N hosts would: to try the multi-host code
# paths (coordinator, per-host data slices, checkpoints) without a cluster.
#
# Usage (from the repository root):
#   launch/local_multiprocess.sh CONFIG WORKDIR [--config.key=value ...]
#   e.g. NUM_PROCESSES=2 launch/local_multiprocess.sh configs/tiny.py /tmp/amos_hosts \
#          --config.num_train_steps=20 --config.batch_size=8
#
# Process i runs python -m amos_jax.main --coordinator_address=localhost:PORT
# --num_processes=N --process_id=i on CPU with DEVICES_PER_PROCESS emulated devices, its
# output in WORKDIR/logs/process_i.log. The script waits for all of them; when one fails it
# stops the others, prints the end of the failed one's log and exits with its status.
#
# Environment:
#   NUM_PROCESSES=2        processes ("hosts")
#   DEVICES_PER_PROCESS=4  emulated CPU devices in each
#   PORT=<a free port>     the coordinator's port
#   PYTHON=python3         the interpreter
#   XLA_FLAGS=...          extra XLA flags, kept before the device count
#   DRY_RUN=1              print the N commands instead of running them
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

amos_require_config_and_workdir "$@"
config="$1" workdir="$2"
shift 2
num_processes="${NUM_PROCESSES:-2}"
devices="${DEVICES_PER_PROCESS:-4}"
for value in "$num_processes" "$devices"; do
  [[ "$value" =~ ^[1-9][0-9]*$ ]] || amos_usage_error "expected a positive integer, got '$value'"
done
free_port='import socket; s = socket.socket(); s.bind(("localhost", 0)); print(s.getsockname()[1])'
port="${PORT:-$("$AMOS_PYTHON" -c "$free_port")}"

# Runs process $1 (exec: its pid is the trainer's), or prints its command with DRY_RUN=1.
process() {
  local index="$1"
  shift
  amos_exec env JAX_PLATFORMS=cpu \
    "XLA_FLAGS=${XLA_FLAGS:+$XLA_FLAGS }--xla_force_host_platform_device_count=$devices" \
    "$AMOS_PYTHON" -m amos_jax.main --config="$config" --workdir="$workdir" \
    --coordinator_address="localhost:$port" --num_processes="$num_processes" \
    --process_id="$index" "$@"
}

if [[ "${DRY_RUN:-0}" == 1 ]]; then
  for ((i = 0; i < num_processes; i++)); do
    process "$i" "$@"
  done
  exit 0
fi

logs="$workdir/logs"
mkdir -p "$logs"
pids=()
for ((i = 0; i < num_processes; i++)); do
  process "$i" "$@" >"$logs/process_$i.log" 2>&1 &
  pids+=("$!")
done
# Ctrl-C or SIGTERM reaches every process, which saves a checkpoint and exits.
trap 'kill -TERM "${pids[@]}" 2>/dev/null || true; wait; exit 143' INT TERM

running=("${pids[@]}")
while ((${#running[@]} > 0)); do
  status=0
  wait -n -p finished "${running[@]}" || status=$?
  still_running=()
  for pid in "${running[@]}"; do
    if [[ "$pid" != "$finished" ]]; then
      still_running+=("$pid")
    fi
  done
  running=("${still_running[@]}")
  if ((status != 0)); then
    # The others would wait for the lost peer until a timeout: stop them now.
    kill -KILL "${pids[@]}" 2>/dev/null || true
    wait || true
    for ((i = 0; i < num_processes; i++)); do
      if [[ "${pids[i]}" == "$finished" ]]; then
        tail -n 30 "$logs/process_$i.log" >&2
        echo "error: process $i exited with status $status; its log: $logs/process_$i.log" >&2
      fi
    done
    exit "$status"
  fi
done
echo "All $num_processes processes finished; logs in $logs."
