"""launch/: usage errors and the exact commands each script runs (DRY_RUN=1).

local_multiprocess.sh also trains for real in tests/test_loop.py (two hosts equal one)."""

import glob
import os
import shlex
import subprocess
import sys
import time

from absl import flags
from ml_collections import config_flags
# The error type is not re-exported by the package.
import pytest


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ["gpu_single.sh", "gpu_multi.sh", "slurm.sbatch", "tpu_pod.sh",
           "local_multiprocess.sh"]
TPU_ENV = dict(TPU_NAME="amos-v4-32", ZONE="us-central2-b", REPO_URL="https://example.org/a.git",
               REF="0123abc")


def launch(script, *args, env=None, timeout=60):
  """Runs launch/<script> from the repository root with extra environment `env`."""
  clean = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "DRY_RUN", "XLA_", "TPU_", "CUDA_"))}
  return subprocess.run(["bash", os.path.join("launch", script), *args], cwd=REPO,
                        env={**clean, **(env or {})}, capture_output=True, text=True,
                        timeout=timeout)


def dry_run(script, *args, **env):
  """The commands the script would run, each split into its words."""
  result = launch(script, *args, env={"DRY_RUN": "1", **env})
  assert result.returncode == 0, result.stderr
  return [shlex.split(line) for line in result.stdout.splitlines()]


def test_every_script_parses():
  files = sorted(glob.glob(os.path.join(REPO, "launch", "*")))
  assert {os.path.basename(f) for f in files} == {*SCRIPTS, "common.sh"}
  for path in files:
    result = subprocess.run(["bash", "-n", path], capture_output=True, text=True)
    assert result.returncode == 0, (path, result.stderr)


@pytest.mark.parametrize("script", SCRIPTS)
def test_usage_header_strict_mode_and_help(script):
  with open(os.path.join(REPO, "launch", script), encoding="utf-8") as file:
    text = file.read()
  assert "set -euo pipefail" in text
  result = launch(script, "--help")
  assert result.returncode == 0
  assert "Usage" in result.stdout
  assert f"launch/{script}" in result.stdout


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("args", [(), ("configs/tiny.py",),
                                  ("configs/tiny.py", "--config.batch_size=8")])
def test_missing_config_or_workdir_is_a_usage_error(script, args):
  result = launch(script, *args, env={"DRY_RUN": "1", **TPU_ENV})
  assert result.returncode == 2
  assert "error: expected CONFIG and WORKDIR" in result.stderr
  assert "Usage" in result.stderr
  assert not result.stdout


def test_gpu_single_runs_one_gpu_in_bf16_with_memory_settings():
  [command] = dry_run("gpu_single.sh", "configs/base.py", "/ckpt/a b", "--config.batch_size=64",
                      GPU="3", XLA_FLAGS="--xla_dump_to=/tmp/dump")
  env_words, python_words = command[:command.index("python3")], command[command.index("python3"):]
  assert env_words == [
      "env", "CUDA_VISIBLE_DEVICES=3", "XLA_PYTHON_CLIENT_PREALLOCATE=true",
      "XLA_PYTHON_CLIENT_MEM_FRACTION=0.90",
      "XLA_FLAGS=--xla_dump_to=/tmp/dump --xla_gpu_enable_latency_hiding_scheduler=true"]
  assert python_words == [
      "python3", "-m", "amos_jax.main", "--config=configs/base.py", "--workdir=/ckpt/a b",
      "--config.model.dtype=bfloat16", "--config.batch_size=64"]  # The user's last: they win.


def test_gpu_multi_uses_every_visible_gpu_from_one_process():
  [command] = dry_run("gpu_multi.sh", "configs/base.py", "/ckpt/base",
                      XLA_PYTHON_CLIENT_MEM_FRACTION="0.8", PYTHON="/venv/bin/python")
  assert not any(word.startswith("CUDA_VISIBLE_DEVICES") for word in command)
  assert "XLA_PYTHON_CLIENT_MEM_FRACTION=0.8" in command
  assert "XLA_FLAGS=--xla_gpu_enable_latency_hiding_scheduler=true" in command
  assert command[command.index("/venv/bin/python"):][:3] == ["/venv/bin/python", "-m",
                                                             "amos_jax.main"]
  assert "--config.model.dtype=bfloat16" in command
  assert not {"--distributed", "--coordinator_address"} & {w.split("=")[0] for w in command}


def test_gpu_overrides_parse_against_the_real_config():
  [command] = dry_run("gpu_single.sh", "configs/base.py", "/ckpt/base")
  argv = ["main"] + [w for w in command if w.startswith("--config")]
  flag_values = flags.FlagValues()
  # ml_collections reads the overrides from sys_argv, not from the parsed list.
  config_flags.DEFINE_config_file("config", flag_values=flag_values, sys_argv=argv)
  flag_values(argv)
  assert flag_values.config.model.dtype == "bfloat16"
  assert flag_values.config.model.attention_implementation is None


def test_slurm_prepares_on_one_task_then_starts_every_task_distributed():
  prepare, train = dry_run("slurm.sbatch", "configs/base.py", "/shared/amos",
                           "--config.batch_size=512")
  assert prepare[:3] == ["srun", "--nodes=1", "--ntasks=1"]
  assert prepare[-1] == "--mode=prepare"
  assert train[:2] == ["srun", "--kill-on-bad-exit=1"]
  assert train[-1] == "--distributed"
  for command in (prepare, train):
    for word in ("XLA_PYTHON_CLIENT_MEM_FRACTION=0.90", "--config.model.dtype=bfloat16",
                 "--workdir=/shared/amos",
                 "--config.batch_size=512"):
      assert word in command, word


def test_slurm_directives_give_one_task_per_gpu():
  """jax.distributed gives each SLURM task the GPU of its SLURM_LOCALID."""
  with open(os.path.join(REPO, "launch", "slurm.sbatch"), encoding="utf-8") as file:
    directives = dict(line.split()[1].lstrip("-").split("=", 1) for line in file
                      if line.startswith("#SBATCH"))
  assert directives["ntasks-per-node"] == directives["gpus-per-node"]
  assert "gpus-per-task" not in directives
  assert directives["signal"].startswith("TERM@")


def test_slurm_outside_an_allocation_is_an_error():
  result = launch("slurm.sbatch", "configs/base.py", "/shared/amos")
  assert result.returncode == 2
  assert "not inside a SLURM allocation" in result.stderr


def test_tpu_pod_installs_prepares_on_worker_0_then_trains_on_all():
  install, prepare, train = dry_run("tpu_pod.sh", "configs/base.py", "/mnt/shared/a b",
                                    "--config.batch_size=1024", PROJECT="my-project", **TPU_ENV)
  ssh = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "amos-v4-32", "--zone=us-central2-b",
         "--project=my-project"]
  remote = {}
  for name, command, worker in (("install", install, "all"), ("prepare", prepare, "0"),
                                ("train", train, "all")):
    assert command[:len(ssh)] == ssh
    assert command[len(ssh)] == f"--worker={worker}"
    assert command[-1].startswith("--command=")
    remote[name] = command[-1][len("--command="):]
  assert "if [ ! -d amos_jax/.git ]; then git clone -q https://example.org/a.git amos_jax; fi" \
      in remote["install"]
  assert "git checkout -q 0123abc" in remote["install"]
  assert "pip install -q -r requirements.txt 'jax[tpu]==0.10.2'" in remote["install"]
  for name, mode in (("prepare", "--mode=prepare"), ("train", "--distributed")):
    cd, trainer = remote[name].split(" && ")
    assert cd == "cd amos_jax"
    assert shlex.split(trainer) == [
        "python3", "-m", "amos_jax.main", "--config=configs/base.py",
        "--workdir=/mnt/shared/a b", "--config.model.dtype=bfloat16",
        "--config.batch_size=1024", mode]


def test_tpu_pod_compile_checks_its_slice_before_anything_is_started():
  check, install, _, _ = dry_run("tpu_pod.sh", "configs/base.py", "/mnt/shared/a",
                                 "--config.batch_size=1024", "--stop_at_step=5",
                                 CHECK_TOPOLOGY="v5e-64", PYTHON="/venv/bin/python", **TPU_ENV)
  assert check == ["/venv/bin/python", "-m", "amos_jax.compile_check",
                   "--config=configs/base.py", "--topology=v5e-64",
                   "--config.model.dtype=bfloat16", "--config.batch_size=1024"]
  assert install[0] == "gcloud"


def test_tpu_pod_stops_when_the_compile_check_fails():
  """Run for real: the check refuses the slice name, and no gcloud command follows."""
  result = launch("tpu_pod.sh", "configs/tiny.py", "/mnt/shared/a",
                  env={"CHECK_TOPOLOGY": "v5e-7", "PYTHON": sys.executable, **TPU_ENV},
                  timeout=300)
  assert result.returncode == 2, result.stderr[-2000:]
  assert "error: --topology=v5e-7: unknown" in result.stderr
  assert "gcloud" not in result.stderr


@pytest.mark.parametrize("missing", ["TPU_NAME", "ZONE"])
def test_tpu_pod_needs_a_name_and_zone(missing):
  env = {k: v for k, v in TPU_ENV.items() if k != missing}
  result = launch("tpu_pod.sh", "configs/base.py", "/mnt/shared/a", env={"DRY_RUN": "1", **env})
  assert result.returncode == 2
  assert f"set {missing}" in result.stderr


def test_local_multiprocess_commands_share_a_coordinator():
  commands = dry_run("local_multiprocess.sh", "configs/tiny.py", "/tmp/hosts",
                     "--config.num_train_steps=4", NUM_PROCESSES="3", DEVICES_PER_PROCESS="2",
                     PORT="4321")
  assert len(commands) == 3
  for index, command in enumerate(commands):
    assert command[:3] == ["env", "JAX_PLATFORMS=cpu",
                           "XLA_FLAGS=--xla_force_host_platform_device_count=2"]
    assert command[-4:] == ["--coordinator_address=localhost:4321", "--num_processes=3",
                            f"--process_id={index}", "--config.num_train_steps=4"]
  [command] = dry_run("local_multiprocess.sh", "configs/tiny.py", "/tmp/hosts",
                      NUM_PROCESSES="1", XLA_FLAGS="--xla_dump_to=/tmp/dump")
  assert command[2] == "XLA_FLAGS=--xla_dump_to=/tmp/dump --xla_force_host_platform_device_count=4"


@pytest.mark.parametrize("name, value", [("NUM_PROCESSES", "0"), ("DEVICES_PER_PROCESS", "x")])
def test_local_multiprocess_rejects_bad_counts(name, value):
  result = launch("local_multiprocess.sh", "configs/tiny.py", "/tmp/hosts",
                  env={"DRY_RUN": "1", name: value})
  assert result.returncode == 2
  assert f"expected a positive integer, got '{value}'" in result.stderr


def test_local_multiprocess_stops_the_others_when_one_fails(tmp_path):
  fake_python = tmp_path / "python"
  fake_python.write_text("#!/usr/bin/env bash\n"
                         'if [[ " $* " == *" --process_id=1 "* ]]; then echo boom; exit 3; fi\n'
                         "sleep 120\n")
  fake_python.chmod(0o755)
  start = time.time()
  result = launch("local_multiprocess.sh", "configs/tiny.py", str(tmp_path / "run"),
                  env={"PYTHON": str(fake_python), "PORT": "4321"})
  assert result.returncode == 3
  assert time.time() - start < 30  # Process 0 did not sleep on.
  assert "boom" in result.stderr
  assert "error: process 1 exited with status 3" in result.stderr
