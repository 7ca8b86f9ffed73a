"""The training program end to end: metrics, checkpoints, exact resume, preemption, hosts."""

import json
import logging
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amos_jax import config_validation
from amos_jax import inference
from amos_jax.data import atomic_dir
from amos_jax.data import prepare as prepare_lib
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.train import checkpointing
from amos_jax.train import loop
from amos_jax.train import metric_logging
from configs import tiny
from tests import checkpoint_damage
from tests import helpers
from tests import xla_test_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Small enough for CPU: 8 sequences of 64 tokens per step on 8 emulated devices. Every run
# here but the non-finite one has this schedule (40 steps, 5 of warmup to 3e-3, which learns
# visibly in 40), shorter runs stopping early (--stop_at_step): the learning-rate schedule is
# part of the compiled step, so they all share one compiled program (conftest's cache).
OVERRIDES = {"num_train_steps": 40, "optimizer.learning_rate": 3e-3,
             "optimizer.warmup_steps": 5, "batch_size": 8, "seq_len": 64,
             "log_every_steps": 1, "eval_every_steps": 8, "checkpoint_every_steps": 4,
             "eval_batches": 2, "peak_flops_per_device": 1e11}
STRAIGHT_STEPS = 16  # The straight run's --stop_at_step.


def run_base(tmp_path_factory, worker_id: str):
  """The test run's own directory, which every xdist worker of the run shares."""
  base = tmp_path_factory.getbasetemp()
  return base if worker_id == "master" else base.parent  # pytest-N/, above popen-gwK/.


def once_per_run(tmp_path_factory, worker_id: str, name: str, make) -> str:
  """The path `make(path)` fills, made once for the whole test run: a lock in the run's
  shared directory makes the other workers wait for the first and reuse its result."""
  base = run_base(tmp_path_factory, worker_id)
  path, done = base / name, base / f"{name}.done"
  with atomic_dir.exclusive_lock(str(base / f"{name}.once-lock")):
    if not done.exists():
      make(str(path))
      done.touch()
  return str(path)


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory, worker_id):
  """The bundled sample, prepared once for every test here: prepare() itself lets one
  process prepare a directory while the others wait and then find it ready."""
  config = tiny.get_config()
  directory = str(run_base(tmp_path_factory, worker_id) / "test_loop_prepared")
  config.data.prepared_dir = directory
  prepare_lib.prepare(config.data, seq_len=OVERRIDES["seq_len"],
                      vocab_size=config.model.vocab_size, workdir=directory)
  return directory


def make_config(prepared_dir, **overrides):
  config = tiny.get_config()
  config.update_from_flattened_dict({**OVERRIDES, **overrides})
  config.data.prepared_dir = prepared_dir
  return config


def config_flags(prepared_dir, **overrides):
  """The --config flags of the same config as make_config."""
  return [f"--config.data.prepared_dir={prepared_dir}"] + [
      f"--config.{k}={v}" for k, v in {**OVERRIDES, **overrides}.items()]


def cli(workdir, prepared_dir, extra_flags=(), env=None, **overrides):
  """The command line of `python -m amos_jax.main` for the same config as make_config."""
  return ([sys.executable, "-m", "amos_jax.main", f"--config={REPO}/configs/tiny.py",
           f"--workdir={workdir}"] + config_flags(prepared_dir, **overrides) + list(extra_flags))


def run_cli(*args, **kwargs):
  result = subprocess.run(cli(*args, **kwargs), cwd=REPO, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def losses(workdir):
  return {r["step"]: r["loss"] for r in metric_logging.read_metrics(workdir) if "loss" in r}


def final_params(workdir):
  return checkpointing.load_params(os.path.join(workdir, "checkpoints"))


@pytest.fixture(scope="session")
def straight_run(tmp_path_factory, worker_id, prepared_dir):
  """An uninterrupted CLI run of the first 16 steps (checkpoints 8, 12 and 16 kept): the
  reference that the resumed and the two-host runs must reproduce, run once for both."""
  return once_per_run(tmp_path_factory, worker_id, "test_loop_straight",
                      lambda workdir: run_cli(workdir, prepared_dir, extra_flags=[
                          f"--stop_at_step={STRAIGHT_STEPS}"]))


def assert_trees_equal(a, b):
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
    np.testing.assert_array_equal(x, y)


@pytest.mark.slow
def test_end_to_end_writes_metrics_checkpoints_and_learns(tmp_path, prepared_dir, caplog):
  workdir = str(tmp_path / "run")
  config = make_config(prepared_dir, eval_every_steps=20)
  caplog.set_level(logging.INFO)
  loop.train_and_evaluate(config, workdir)
  summary = caplog.records[-1].getMessage().splitlines()
  assert summary[0].startswith("Pretraining finished: steps 0->40 of 40 in ")
  assert summary[1].startswith("  Final eval:  step 40: loss ")
  assert summary[2].startswith("  Baselines:   RTD AUC ")
  assert "(always the most frequent masked token: " in summary[2]
  assert summary[3].startswith("  Mixture:     depth 1 ")
  assert summary[4:6] == [f"  Checkpoint:  {workdir}/checkpoints/40",
                          f"  Metrics:     {workdir}/metrics.jsonl"]
  assert f"  python -m amos_jax.plots --workdir={workdir}" in summary

  records = metric_logging.read_metrics(workdir)
  train = [r for r in records if "loss" in r]
  assert [r["step"] for r in train] == list(range(1, 41))
  for key in ("mlm_loss", "rtd_loss", "mixture_weight/depth_1", "tokens_per_s", "mfu",
              "learning_rate", "grad_norm", "mlm_accuracy/depth_3"):
    assert key in train[0], key
  assert np.mean([r["loss"] for r in train[-5:]]) < 0.8 * np.mean(
      [r["loss"] for r in train[:5]])
  evals = [r for r in records if "eval/rtd_auc" in r]
  assert [r["step"] for r in evals] == [20, 40]
  assert 0.5 < evals[-1]["eval/rtd_auc"] <= 1.0
  # Every evaluation masks the same slots, so the unigram baseline does not move.
  unigram = [r["eval/mlm_unigram_accuracy"] for r in evals]
  assert 0 < unigram[0] < 1 and unigram[0] == unigram[1]
  assert json.load(open(os.path.join(workdir, "config.json")))["batch_size"] == 8
  assert os.path.isfile(os.path.join(workdir, tokenizer_lib.MODEL_FILE))
  assert os.listdir(os.path.join(workdir, "tensorboard"))
  step, _ = final_params(workdir)
  assert step == 40
  assert sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints"))
                if d.isdigit()) == [32, 36, 40]  # keep_checkpoints=3

  # The export command of docs/export.md, then inference on the export.
  export_dir = str(tmp_path / "export")
  exported = subprocess.run([sys.executable, "-m", "amos_jax.export", f"--workdir={workdir}",
                             f"--out={export_dir}"], cwd=REPO, check=True, capture_output=True,
                            text=True, timeout=120)
  assert exported.stdout.startswith(f"Exported the encoder to {export_dir}.\n  From:  {workdir}")
  assert f"Read amos_jax pretraining workdir at {workdir}; 2 x 64, 2 heads; vocabulary 4096; " \
         "step 40" in exported.stderr
  encoded = inference.load(export_dir).encode(["In the beginning God created the heaven."])
  assert encoded.hidden_states.shape[2] == config.model.hidden_size
  assert np.isfinite(encoded.pooled).all()


@pytest.mark.slow
def test_resume_in_a_new_process_is_bitwise_identical_past_damaged_and_cut_off_saves(
    tmp_path, prepared_dir, straight_run):
  straight, halves = straight_run, str(tmp_path / "halves")
  run_cli(halves, prepared_dir, extra_flags=["--stop_at_step=12"])
  assert final_params(halves)[0] == 12
  # The newest checkpoint (12) becomes unreadable, and a later save was cut off half-way
  # (orbax's temporary directory, as a SIGKILL during a save leaves it): the next start
  # ignores the one, sets the other aside and resumes from step 8.
  checkpoints = os.path.join(halves, "checkpoints")
  checkpoint_damage.truncate_array_file(os.path.join(checkpoints, "12"))
  cut_off = os.path.join(checkpoints, "13.orbax-checkpoint-tmp-1234")
  os.makedirs(os.path.join(cut_off, "state"))
  result = run_cli(halves, prepared_dir, extra_flags=[f"--stop_at_step={STRAIGHT_STEPS}"])
  assert "Checkpoint step 12 (" in result.stderr and "resumed from step 8" in result.stderr
  assert [d for d in os.listdir(checkpoints) if d.startswith("12.unreadable-")]
  assert not os.path.exists(cut_off)  # Removed at start, never read as step 13.
  resumed = [r["step"] for r in metric_logging.read_metrics(halves) if "loss" in r]
  # Steps 9-12, logged before the damaged save, are logged again by the resumed run and
  # recorded once.
  assert resumed == list(range(1, 17))
  assert losses(halves) == losses(straight)
  assert len(losses(straight)) == 16
  step, params = final_params(halves)
  assert step == 16
  assert_trees_equal(params, final_params(straight)[1])


@pytest.mark.slow
def test_sigterm_saves_the_step_it_reached_and_exits_cleanly(tmp_path, prepared_dir):
  workdir = str(tmp_path / "run")
  # More steps than run before the signal (40: seconds of them); a save every 5 steps, so the
  # preemption save is the loop's own, not a scheduled one.
  overrides = dict(checkpoint_every_steps=5, eval_every_steps=1000)
  process = subprocess.Popen(cli(workdir, prepared_dir, **overrides), cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  wait_for(lambda: max(losses(workdir)) >= 7)
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 0, stderr[-3000:]
  step, _ = final_params(workdir)
  assert f"Preempted: saved step {step}" in stderr
  assert 7 <= step < OVERRIDES["num_train_steps"]
  assert max(losses(workdir)) == step  # Saved where it stopped: no trained step is lost.


def test_the_host_runs_at_most_one_step_ahead_of_the_device(tmp_path, prepared_dir,
                                                            monkeypatch):
  """A SIGTERM's save waits for every dispatched step, so the loop must not queue many."""
  build = loop.build_lib.build
  losses_so_far, not_ready_at_dispatch = [], []

  @jax.jit
  def slow_on_device(loss):
    # Tens of milliseconds of device work that the loss depends on: slower than dispatch.
    x = jnp.full((384, 384), 1e-3, jnp.float32)
    for _ in range(4):
      x = jnp.tanh(x @ x)
    return loss + 0.0 * x[0, 0]

  def build_with_a_slow_step(config, *args, **kwargs):
    pretraining = build(config, *args, **kwargs)

    def train_step(state, batch, key):
      not_ready_at_dispatch.append(sum(not loss.is_ready() for loss in losses_so_far))
      state, metrics = pretraining.train_step(state, batch, key)
      metrics = dict(metrics, loss=slow_on_device(metrics["loss"]))
      losses_so_far.append(metrics["loss"])
      return state, metrics
    return pretraining._replace(train_step=train_step)

  monkeypatch.setattr(loop.build_lib, "build", build_with_a_slow_step)
  config = make_config(prepared_dir, log_every_steps=1000, eval_every_steps=1000,
                       checkpoint_every_steps=1000)
  loop.train_and_evaluate(config, str(tmp_path / "run"), stop_at_step=8)
  assert len(not_ready_at_dispatch) == 8
  # Only the step dispatched just before may still be running.
  assert max(not_ready_at_dispatch) <= 1, not_ready_at_dispatch


def wait_for(condition, timeout=240):
  deadline = time.time() + timeout
  while time.time() < deadline:
    try:
      if condition():
        return
    except (FileNotFoundError, ValueError, json.JSONDecodeError):
      pass
    time.sleep(0.2)
  raise TimeoutError("condition not met in time")


@pytest.mark.slow
def test_two_hosts_agree_with_one(tmp_path, prepared_dir, straight_run):
  """launch/local_multiprocess.sh's two processes of 4 devices train exactly like one of 8
  (the straight run, compared at its step-8 checkpoint)."""
  hosts = tmp_path / "hosts"
  env = xla_test_flags.subprocess_env()  # The script adds its devices after these flags.
  result = subprocess.run(
      ["bash", "launch/local_multiprocess.sh", "configs/tiny.py", str(hosts),
       *config_flags(prepared_dir), "--stop_at_step=8"], cwd=REPO,
      env={**env, "PYTHON": sys.executable, "NUM_PROCESSES": "2", "DEVICES_PER_PROCESS": "4"},
      capture_output=True, text=True, timeout=400)
  assert result.returncode == 0, result.stderr[-3000:]
  for index in range(2):
    log = (hosts / "logs" / f"process_{index}.log").read_text()
    assert f"JAX process {index}/2, 4 local / 8 global devices." in log
  steps = list(range(1, 9))
  host_losses = losses(str(hosts))
  single_losses = {step: loss for step, loss in losses(straight_run).items() if step <= 8}
  assert sorted(host_losses) == sorted(single_losses) == steps
  np.testing.assert_allclose([host_losses[s] for s in steps],
                             [single_losses[s] for s in steps], rtol=1e-5)
  host_step, host_params = final_params(str(hosts))
  assert host_step == 8
  _, single_params = checkpointing.load_params(os.path.join(straight_run, "checkpoints"), step=8)
  for x, y in zip(jax.tree_util.tree_leaves(host_params),
                  jax.tree_util.tree_leaves(single_params), strict=True):
    np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_a_machine_without_tensorflow_trains_exactly_the_same(tmp_path, prepared_dir,
                                                              straight_run):
  """Accelerator images may lack TF (the H200's does, and TF's wheel is too large to bring):
  with `import tensorflow` failing, batches come from the thread pool instead of tf.data and
  metrics from JsonlWriter alone; the run's losses equal the straight run's to the bit."""
  hidden = tmp_path / "hidden"
  hidden.mkdir()
  for module in ("tensorflow", "tensorflow_datasets"):
    (hidden / f"{module}.py").write_text(f"raise ImportError('{module} hidden by the test')\n")
  workdir = tmp_path / "run"
  env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hidden), REPO])}
  result = subprocess.run(cli(str(workdir), prepared_dir, extra_flags=["--stop_at_step=4"]),
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "no TensorBoard events" in result.stderr
  assert "TensorBoard: none (TensorFlow is not installed)" in result.stdout + result.stderr
  assert not (workdir / "tensorboard").exists()
  steps = [1, 2, 3, 4]
  run_losses = losses(str(workdir))
  assert sorted(run_losses) == steps
  np.testing.assert_array_equal([run_losses[s] for s in steps],
                                [losses(straight_run)[s] for s in steps])


@pytest.mark.parametrize("overrides, message", [
    (dict(batch_size=12), "config.batch_size=12: expected a multiple of 8 devices"),
    (dict(num_train_steps=-5), "config.num_train_steps=-5: expected a positive integer"),
    (dict(seq_len=256), "config.seq_len=256: expected at most model.max_position_embeddings"),
    (dict(gradient_accumulation_steps=-1),
     "config.gradient_accumulation_steps=-1: expected 0 \\(automatic\\) or a positive"),
    (dict(batch_size=16, gradient_accumulation_steps=3),
     "config.batch_size=16: expected a multiple of 8 devices x 3 accumulation steps = 24"),
])
def test_bad_config_values_fail_fast_naming_the_key(tmp_path, prepared_dir, overrides,
                                                    message):
  with pytest.raises(config_validation.ConfigError, match=message):
    loop.train_and_evaluate(make_config(prepared_dir, **overrides), str(tmp_path))


def test_unknown_config_key_is_named(tmp_path, prepared_dir):
  config = make_config(prepared_dir)
  config.optimizer.learning_rte = 1e-3
  with pytest.raises(config_validation.ConfigError, match="config.optimizer.learning_rte"):
    loop.train_and_evaluate(config, str(tmp_path))


def test_cli_rejects_an_unknown_override(tmp_path, prepared_dir):
  result = subprocess.run(cli(str(tmp_path), prepared_dir, num_trian_steps=3), cwd=REPO,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  assert result.stderr.splitlines()[-1].startswith(
      f"error: --config.num_trian_steps: {REPO}/configs/tiny.py has no key 'num_trian_steps'; "
      "the closest existing keys are num_train_steps, ")


@pytest.mark.slow
def test_a_run_that_keeps_producing_non_finite_gradients_stops_without_saving_them(
    tmp_path, prepared_dir):
  # A learning rate of 1e30 blows the parameters up in one update; every later gradient is
  # non-finite, so every later update is skipped until the run gives up.
  config = make_config(prepared_dir, num_train_steps=12, max_consecutive_nonfinite_steps=3,
                       checkpoint_every_steps=1)
  config.optimizer.learning_rate = 1e30
  config.optimizer.warmup_steps = 0
  workdir = str(tmp_path / "run")
  with pytest.raises(loop.NonFiniteError, match="3 consecutive updates had non-finite"):
    loop.train_and_evaluate(config, workdir)
  records = [r for r in metric_logging.read_metrics(workdir) if "loss" in r]
  assert records[-1]["consecutive_skipped_updates"] == 3
  assert records[-1]["step"] < 12


def test_a_workdir_from_before_an_architecture_option_keeps_its_old_behaviour(tmp_path):
  """Its config.json lacks relative_position_bucket_function: it was trained with T5's
  buckets, and a restart must not record (or build) the new default."""
  config = helpers.tiny_config()
  recorded = config.to_dict()
  del recorded["model"]["relative_position_bucket_function"]
  (tmp_path / "config.json").write_text(json.dumps(recorded))
  loop._keep_recorded_architecture(config, str(tmp_path))  # pylint: disable=protected-access
  assert config.model.relative_position_bucket_function == "t5_bidirectional"
  assert config.model.layer_norm_eps == 1e-5  # Recorded keys keep the config's value.
  fresh = helpers.tiny_config()
  loop._keep_recorded_architecture(fresh, str(tmp_path / "new"))  # pylint: disable=protected-access
  assert fresh.model.relative_position_bucket_function == "amos"
