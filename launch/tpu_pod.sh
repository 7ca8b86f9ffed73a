#!/usr/bin/env bash
# Pretrains on a Cloud TPU VM pod slice: installs on every worker, prepares the data once,
# then starts one JAX process per worker over gcloud ssh.
#
# Usage: TPU_NAME=NAME ZONE=ZONE launch/tpu_pod.sh CONFIG WORKDIR [--config.key=value ...]
#   e.g. TPU_NAME=amos-v4-32 ZONE=us-central2-b launch/tpu_pod.sh configs/base.py \
#          /mnt/shared/amos_base --config.batch_size=1024
#
# WORKDIR must be a directory every worker sees (a Filestore NFS or gcsfuse mount). Steps:
#   1. every worker: clone REPO_URL into REMOTE_DIR (once), check out REF,
#      pip install -r requirements.txt "jax[tpu]==0.10.2";
#   2. worker 0: python -m amos_jax.main --mode=prepare (nothing to do when prepared);
#   3. every worker: python -m amos_jax.main --distributed, where
#      jax.distributed.initialize() finds the pod's workers by itself.
# Computes in bfloat16 (--config.model.dtype=bfloat16; override to change it).
#
# Environment:
#   TPU_NAME, ZONE      the TPU VM (required)
#   PROJECT             the Google Cloud project (default: gcloud's)
#   REPO_URL            git URL the workers clone (default: this checkout's origin)
#   REF                 commit or branch to run (default: this checkout's HEAD commit,
#                       which must be pushed to REPO_URL)
#   REMOTE_DIR=amos_jax where the workers keep the checkout (relative to home)
#   CHECK_TOPOLOGY=v5e-64  first compile the step for this slice here (needs
#                       requirements-tpu.txt) and stop if it does not fit
#   DRY_RUN=1           print the gcloud commands instead of running them
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/launch/common.sh"

amos_require_config_and_workdir "$@"
config="$1" workdir="$2"
shift 2
[[ -n "${TPU_NAME:-}" ]] || amos_usage_error "set TPU_NAME to the TPU VM's name"
[[ -n "${ZONE:-}" ]] || amos_usage_error "set ZONE to the TPU VM's zone"
repo_url="${REPO_URL:-$(git -C "$repo" remote get-url origin 2>/dev/null || true)}"
[[ -n "$repo_url" ]] || amos_usage_error "set REPO_URL: this checkout has no origin remote"
ref="${REF:-$(git -C "$repo" rev-parse HEAD)}"
remote_dir="${REMOTE_DIR:-amos_jax}"

ssh=(gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE")
if [[ -n "${PROJECT:-}" ]]; then
  ssh+=(--project="$PROJECT")
fi
trainer=(python3 -m amos_jax.main --config="$config" --workdir="$workdir"
         --config.model.dtype=bfloat16 "$@")
cd_remote="cd $(printf '%q' "$remote_dir")"
# One line, so that the printed command (DRY_RUN) stays one line too.
install="set -euo pipefail; if [ ! -d $(printf '%q' "$remote_dir")/.git ]; then git clone -q"
install+=" $(printf '%q' "$repo_url") $(printf '%q' "$remote_dir"); fi; $cd_remote"
install+=" && git fetch -q origin && git checkout -q $(printf '%q' "$ref")"
install+=" && python3 -m pip install -q -r requirements.txt 'jax[tpu]==0.10.2'"

amos_compile_check "$config" --config.model.dtype=bfloat16 "$@"
amos_run "${ssh[@]}" --worker=all --command="$install"
run_trainer="$cd_remote && $(amos_quote "${trainer[@]}")"
amos_run "${ssh[@]}" --worker=0 --command="$run_trainer --mode=prepare"
amos_exec "${ssh[@]}" --worker=all --command="$run_trainer --distributed"
