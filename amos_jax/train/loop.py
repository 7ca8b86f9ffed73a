"""The pretraining program: `train_and_evaluate(config, workdir)`, callable from a notebook.

Holds the workdir's lock (one run per workdir), prepares the data if needed, initialises or
resumes from the newest readable checkpoint (model, optimizer, step and data-stream
position), trains with periodic logging, evaluation and asynchronous checkpoints, and on
SIGTERM (or a multi-host preemption notice) saves at the next step boundary and returns.
"""

import itertools
import logging
import os
import signal
import threading
import time

import jax
import jax.numpy as jnp
import ml_collections

from amos_jax import config_validation
from amos_jax import errors
from amos_jax import summaries
from amos_jax.data import pipeline
from amos_jax.data import prepare as prepare_lib
from amos_jax.formats import json_files
from amos_jax.models import amos
from amos_jax.train import build as build_lib
from amos_jax.train import checkpointing
from amos_jax.train import evaluation
from amos_jax.train import flops as flops_lib
from amos_jax.train import metric_logging
from amos_jax.train import step as step_lib
from amos_jax.train import warm_start
from amos_jax.train import workdir_lock


class NonFiniteError(RuntimeError):
  pass


class _PreemptionNotice:
  """Turns SIGTERM into a flag read at step boundaries (single host).

  With several hosts, JAX's distributed runtime owns SIGTERM and the checkpoint manager's
  preemption sync point makes every host stop at the same step.
  """

  def __init__(self):
    self.received = False
    self._previous = None
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    logging.warning("SIGTERM received: saving a checkpoint at the next step boundary.")
    self.received = True

  def restore(self):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def _write_config(config: ml_collections.ConfigDict, workdir: str):
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as file:
      file.write(config.to_json_best_effort(indent=2, sort_keys=True))


def _keep_recorded_architecture(config: ml_collections.ConfigDict, workdir: str):
  """A workdir whose config.json predates an architecture option was trained with the option's
  old behaviour (models/amos.py ARCHITECTURE_DEFAULTS): the run keeps it, so that config.json
  (rewritten at start) and the checkpoints keep describing the same model."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    return
  recorded = json_files.read_dict(path).get("model") or {}  # Damaged: an error naming it.
  for key, legacy in amos.ARCHITECTURE_DEFAULTS.items():
    if key not in recorded and config.model.get(key) != legacy:
      logging.warning("%s predates model.%s: keeping %r, the value its run was trained with.",
                      path, key, legacy)
      config.model[key] = legacy


def _format_eta(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _peak_flops(config) -> flops_lib.Peak:
  device = jax.devices()[0]
  peak = flops_lib.peak_flops(device, jnp.dtype(config.model.dtype),
                              config.peak_flops_per_device)
  if peak.source == "measured" and device.platform != "cpu":
    logging.warning("No datasheet peak for %r in %s: MFU is against the measured matmul "
                    "rate (%.1f TFLOP/s); set --config.peak_flops_per_device to override.",
                    device.device_kind, config.model.dtype, peak.per_device / 1e12)
  return peak


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       stop_at_step: int | None = None):
  """Runs (or resumes) pretraining in `workdir`; returns the final TrainState.

  Args:
    stop_at_step: save and return after this step (a time-limited job); the next call
      resumes from there as if the run had never stopped.
  """
  # An init checkpoint sets the model's architecture, which the checks below then see.
  init = warm_start.configure(config)
  _keep_recorded_architecture(config, workdir)
  config_validation.validate(config, jax.device_count())
  os.makedirs(workdir, exist_ok=True)
  with workdir_lock.hold(workdir):
    return _train(config, workdir, stop_at_step, init)


def _train(config: ml_collections.ConfigDict, workdir: str, stop_at_step: int | None,
           init=None):
  """train_and_evaluate, once the config is checked and the workdir is this run's; `init`
  the checkpoint that pretraining continues from (warm_start.configure), or None."""
  started = time.perf_counter()
  _write_config(config, workdir)

  prepared = prepare_lib.prepare(config.data, seq_len=config.seq_len,
                                 vocab_size=config.model.vocab_size, workdir=workdir,
                                 batch_size=config.batch_size,
                                 tokenizer=init.tokenizer if init else None)
  if init:
    warm_start.check_data(init, prepared)
  if jax.process_index() == 0:
    # The tokenizer travels with the checkpoints and exports.
    tokenizer_files = prepared.load_tokenizer().save(workdir)
  pretraining = build_lib.build(config, special=prepared.special)
  checkpointer = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints"),
                                            config.checkpoint_every_steps,
                                            config.keep_checkpoints)
  restored = checkpointer.restore(build_lib.abstract_state(pretraining, config))
  if restored is None:
    state = build_lib.initial_state(pretraining, config)
    if init:
      state = warm_start.apply(state, init)
  else:
    state, data_state = restored
    if data_state.get("fingerprint") != prepared.fingerprint:
      raise errors.InputError(
          f"The checkpoint in {checkpointer.directory} was trained on other data "
          f"(fingerprint {data_state.get('fingerprint')}) than {prepared.directory} "
          f"({prepared.fingerprint}); resume with the same data or use a new workdir.")
  start_step = int(state.step)
  logging.info("%s at step %d of %d.", "Resuming" if restored else "Starting", start_step,
               config.num_train_steps)

  host = dict(process_index=jax.process_index(), process_count=jax.process_count())
  # The step the loop below ends at (unless preempted): the iterator makes no batch past it.
  last_step = config.num_train_steps
  if stop_at_step is not None and start_step < stop_at_step < last_step:
    last_step = stop_at_step
  train_batches = pipeline.train_iterator(prepared, global_batch_size=config.batch_size,
                                          seed=config.seed, start_step=start_step,
                                          num_steps=last_step - start_step,
                                          prefetch_batches=config.data.prefetch_batches, **host)
  eval_step = evaluation.make_eval_step(pretraining.model, config, pretraining.mesh,
                                        prepared.special)
  seed_key = build_lib.step_seed_key(config)
  eval_key = jax.random.fold_in(jax.random.key(config.seed), 2)
  final_eval = None  # (step, results) of the latest evaluation, for the summary.

  def run_evaluation(step):
    nonlocal final_eval
    batches = pipeline.eval_iterator(prepared, global_batch_size=config.batch_size, **host)
    batches = itertools.islice(batches, config.eval_batches or None)
    results = evaluation.evaluate(eval_step, state.params, batches, eval_key,
                                  pretraining.mesh)
    writer.write_scalars(step, results)
    final_eval = step, results
    logging.info("eval at step %d: %s", step,
                 ", ".join(f"{k.split('/', 1)[1]} {v:.4f}" for k, v in results.items()))

  def save(step, force):
    return checkpointer.save(step, state, {"step": step, "fingerprint": prepared.fingerprint},
                             force=force)

  writer = metric_logging.create_writer(workdir, start_step)
  flops_per_token = sum(flops_lib.flops_per_token(config).values())
  peak = _peak_flops(config)
  tokens_per_step = config.batch_size * config.seq_len
  notice = _PreemptionNotice()
  last_log_time, last_log_step, consecutive_skipped = time.perf_counter(), start_step, 0
  previous_loss = None
  try:
    for step in range(start_step + 1, config.num_train_steps + 1):
      batch = step_lib.shard_batch(next(train_batches), pretraining.mesh)
      state, metrics = pretraining.train_step(state, batch, seed_key)
      # Keep at most one step queued ahead of the device. SIGTERM is seen at the next Python
      # step boundary, but the save there waits for every step already dispatched: with free
      # run-ahead that was about 30 steps, 38 s after the signal on this CPU, longer than some
      # preemption grace periods. One queued step still keeps the device busy.
      if previous_loss is not None:
        previous_loss.block_until_ready()
      previous_loss = metrics["loss"]

      if step % config.log_every_steps == 0 or step == config.num_train_steps:
        metrics = {name: float(value) for name, value in jax.device_get(metrics).items()}
        consecutive_skipped = int(metrics["consecutive_skipped_updates"])
        now = time.perf_counter()
        tokens_per_s = (step - last_log_step) * tokens_per_step / (now - last_log_time)
        metrics["tokens_per_s"] = tokens_per_s
        metrics["mfu"] = flops_lib.mfu(tokens_per_s, flops_per_token,
                                       peak.per_device * jax.device_count())
        if peak.measured_per_device:
          metrics["mfu_measured_peak"] = flops_lib.mfu(
              tokens_per_s, flops_per_token, peak.measured_per_device * jax.device_count())
        writer.write_scalars(step, metrics)
        eta = (config.num_train_steps - step) * (now - last_log_time) / (step - last_log_step)
        logging.info("step %d/%d | loss %.4f | %.0f tokens/s | mfu %.1f%% | eta %s", step,
                     config.num_train_steps, metrics["loss"], tokens_per_s,
                     100 * metrics["mfu"], _format_eta(eta))
        last_log_time, last_log_step = now, step
      if consecutive_skipped >= config.max_consecutive_nonfinite_steps:
        raise NonFiniteError(
            f"{consecutive_skipped} consecutive updates had non-finite gradients (skipped); "
            f"stopping at step {step}. The newest checkpoint "
            f"({checkpointer.latest_step()}) holds finite parameters. Lower "
            "optimizer.learning_rate or check the data.")

      if step % config.eval_every_steps == 0 or step == config.num_train_steps:
        run_evaluation(step)
      preempted = notice.received or checkpointer.reached_preemption(step)
      if step in (config.num_train_steps, stop_at_step) or preempted:
        _check_finite_to_save(state, step)
        save(step, force=True)
        if preempted:
          logging.warning("Preempted: saved step %d; the next start resumes from it.", step)
        if step != config.num_train_steps:
          break
      elif step % config.checkpoint_every_steps == 0:
        _check_finite_to_save(state, step)
        save(step, force=False)
  finally:
    notice.restore()
    checkpointer.wait_until_finished()
    checkpointer.close()
    writer.flush()
  if jax.process_index() == 0:
    logging.info("%s", summaries.pretraining(
        workdir, start_step=start_step, step=int(state.step),
        num_train_steps=config.num_train_steps, seconds=time.perf_counter() - started,
        final_eval=final_eval, checkpoint_step=checkpointer.latest_step(),
        tokenizer_file=tokenizer_files[0]))
  return state


def _check_finite_to_save(state, step):
  """Skipped updates leave the parameters finite; this guards the invariant anyway."""
  finite = jax.tree_util.tree_reduce(
      lambda ok, x: ok & jnp.all(jnp.isfinite(x)), state.params, jnp.bool_(True))
  if not bool(finite):
    raise NonFiniteError(f"Parameters are not finite at step {step}; not saving them.")
