"""The seeds loop every fine-tuning task shares: train, evaluate, keep the best, take medians.

For each seed: the task's model whose encoder starts from the init checkpoint and whose head
is fresh, trained data-parallel with the resolved recipe and scored on dev after every epoch
(or every `eval_every_steps`). The best evaluation by the task's primary metric is kept as a
fine-tuned export in `workdir/seed_<s>/best`, beside the files the task writes for it (SQuAD's
predictions). After every seed `workdir/results.json` is rewritten with the per-seed results
and the median over seeds; a rerun with the same settings keeps the seeds it holds and trains
only the others, so a killed run loses at most the seed it was training.

A task supplies (see `Task`): its model, per-example losses, dev evaluation and export.
"""

import hashlib
import json
import logging
import os
import time
from typing import Callable, Protocol

import jax
import ml_collections
import numpy as np

from amos_jax import atomic_file
from amos_jax import errors
from amos_jax import summaries
from amos_jax.finetune import config as config_lib
from amos_jax.finetune import predict as predict_lib
from amos_jax.finetune import recipes
from amos_jax.finetune import step as step_lib
from amos_jax.formats import json_files
from amos_jax.formats import loaded
from amos_jax.train import step as train_step_lib
from amos_jax.train import workdir_lock
from amos_jax.train.state import create_train_state

RESULTS_FILE = "results.json"
BEST_DIR = "best"

Scores = dict[str, dict[str, float]]  # {split: {metric: value}}.


class Task(Protocol):
  """What a task adds to the shared loop."""
  name: str
  primary_split: str  # Model selection reads scores[primary_split][primary_metric].
  primary_metric: str

  def build_model(self, model_config: ml_collections.ConfigDict):
    """The encoder-plus-head module, called as (token_ids, padding_mask, deterministic)."""

  def example_losses(self, outputs, batch) -> jax.Array:
    """Per-example losses [B] of the model's outputs against the batch's labels."""

  def evaluate(self, predict_fn: Callable) -> tuple[Scores, dict[str, dict]]:
    """Dev scores, and JSON files ({name: record}) to keep beside the best export.

    predict_fn(input_ids [N, L]) gives the model's outputs for every row as host numpy.
    """

  def export(self, params, model_config: ml_collections.ConfigDict, tokenizer,
             out_dir: str):
    """Writes the fine-tuned export to out_dir (replacing one there)."""


def write_json(path: str, record: dict):
  """Writes JSON whole (atomic_file.py), from process 0 only."""
  if jax.process_index() == 0:
    atomic_file.write_json(path, record)


def median(per_seed: list[dict]) -> Scores:
  """{split: {metric: median over seeds}} of each seed's best evaluation."""
  first = per_seed[0]["best"]["metrics"]
  return {split: {name: float(np.median([s["best"]["metrics"][split][name] for s in per_seed]))
                  for name in first[split]} for split in first}


def fine_tuned_model_config(config, init: loaded.Checkpoint) -> ml_collections.ConfigDict:
  """The init encoder's config with the fine-tuning dropout rates."""
  model_config = ml_collections.ConfigDict(init.model_config.to_dict())
  model_config.dropout_rate = config.dropout_rate
  model_config.attention_dropout_rate = config.attention_dropout_rate
  if model_config.attention_implementation == "cudnn":
    config_lib.require(config.attention_dropout_rate == 0.0, "attention_dropout_rate",
                       f"0: {init.path} uses cuDNN attention, which has no dropout",
                       config.attention_dropout_rate)
  return model_config


class _Run:
  """Everything shared by the seeds of one fine-tuning run (compiled once)."""

  def __init__(self, config, task: Task, init, recipe: recipes.Recipe, num_train_examples,
               mesh):
    self.config, self.task, self.init, self.recipe, self.mesh = (config, task, init, recipe,
                                                                 mesh)
    self.steps_per_epoch = num_train_examples // recipe.batch_size
    if self.steps_per_epoch == 0:
      raise errors.InputError(f"{task.name}: {num_train_examples} training examples are fewer than "
                              f"one batch (batch_size={recipe.batch_size}).")
    self.num_train_steps = self.steps_per_epoch * recipe.num_epochs
    warmup_steps = int(round(recipe.warmup_fraction * self.num_train_steps))
    self.model_config = fine_tuned_model_config(config, init)
    self.model = task.build_model(self.model_config)
    self.optimizer, learning_rate_fn = step_lib.make_optimizer(
        config.optimizer, recipe.learning_rate, self.num_train_steps, warmup_steps)
    self.train_step = step_lib.make_train_step(
        self.model, self.optimizer, learning_rate_fn, mesh, recipe.batch_size,
        task.example_losses)
    self.predict_step = step_lib.make_predict_step(self.model, mesh)
    token_ids = np.zeros((1, config.seq_len), np.int32)
    self._init_fn = jax.jit(lambda key: self.model.init(key, token_ids, token_ids)["params"])

  def initial_params(self, seed: int):
    """Fresh head (and encoder with random_init); otherwise the pretrained encoder."""
    params = self._init_fn(jax.random.fold_in(jax.random.key(seed), 0))
    params = jax.tree.map(np.asarray, jax.device_get(params))
    if not self.config.random_init:
      params["encoder"] = self.init.encoder_params
    return params

  def is_eval_step(self, step: int) -> bool:
    every = self.config.eval_every_steps or self.steps_per_epoch
    return step % every == 0 or step == self.num_train_steps

  def evaluate(self, params) -> tuple[Scores, dict]:
    return self.task.evaluate(lambda input_ids: predict_lib.predict(
        self.predict_step, params, input_ids, self.config.eval_batch_size, self.mesh))

  def train_seed(self, seed: int, train: dict, workdir: str) -> dict:
    """Trains one seed; keeps its best evaluation as an export; returns its record."""
    config, task, batch_size = self.config, self.task, self.recipe.batch_size
    state = train_step_lib.replicate(
        create_train_state(self.initial_params(seed), self.optimizer), self.mesh)
    dropout_key = jax.random.fold_in(jax.random.key(seed), 1)
    order_rng = np.random.default_rng(seed)
    best_dir = _best_dir(workdir, seed)
    seed_dir = os.path.dirname(best_dir)
    history, best, losses, step = [], None, [], 0
    start = time.perf_counter()
    for epoch in range(self.recipe.num_epochs):
      order = order_rng.permutation(len(train["input_ids"]))
      for batch_index in range(self.steps_per_epoch):
        rows = order[batch_index * batch_size:(batch_index + 1) * batch_size]
        batch = train_step_lib.shard_batch(
            {name: predict_lib.host_rows(column[rows]) for name, column in train.items()},
            self.mesh)
        state, metrics = self.train_step(state, batch, dropout_key)
        step += 1
        losses.append(metrics["loss"])
        if step % config.log_every_steps == 0:
          logging.info("seed %d step %d/%d | loss %.4f | %.1f steps/s", seed, step,
                       self.num_train_steps, float(metrics["loss"]),
                       step / (time.perf_counter() - start))
        if not self.is_eval_step(step):
          continue
        train_loss = float(np.mean(jax.device_get(losses)))
        if not np.isfinite(train_loss):
          raise FloatingPointError(
              f"seed {seed}: the training loss is {train_loss} at step {step}; lower "
              "config.learning_rate.")
        scores, files = self.evaluate(state.params)
        record = {"step": step, "epoch": epoch + 1, "train_loss": train_loss,
                  "metrics": scores}
        history.append(record)
        losses = []
        primary = scores[task.primary_split][task.primary_metric]
        logging.info("seed %d step %d: train loss %.4f, dev %s", seed, step, train_loss,
                     scores)
        if best is None or primary > best["metrics"][task.primary_split][task.primary_metric]:
          best = record
          if jax.process_index() == 0:
            task.export(predict_lib.host_copy(state.params), self.model_config,
                        self.init.tokenizer, best_dir)
            for name, content in files.items():
              write_json(os.path.join(seed_dir, name), content)
    return {"seed": seed, "best": best, "final": history[-1], "history": history,
            "checkpoint": best_dir, "num_train_steps": self.num_train_steps}


def resolve_recipe(config, task_recipe: recipes.Recipe, init: loaded.Checkpoint,
                   device_count: int) -> recipes.Resolved:
  """The recipe for init's encoder size with config's overrides, checked against the mesh."""
  resolved = recipes.resolve(config, task_recipe, init.model_config.hidden_size)
  config_lib.check_batch_size(resolved.recipe.batch_size, device_count)
  return resolved


def check_seq_len(config, init: loaded.Checkpoint):
  if config.seq_len > init.model_config.max_position_embeddings:
    raise config_lib.ConfigError(
        f"config.seq_len={config.seq_len}: expected at most the encoder's "
        f"max_position_embeddings={init.model_config.max_position_embeddings}.")


def run(config: ml_collections.ConfigDict, workdir: str, mesh, task: Task,
        init: loaded.Checkpoint, resolved: recipes.Resolved, train: dict[str, np.ndarray],
        extra_results: dict) -> dict:
  """Fine-tunes every seed of `config` on `train` ({"input_ids": [N, L], labels...}).

  Writes workdir/results.json after every seed and returns it: the run's settings,
  `extra_results`, each seed's record and the median over seeds. Like pretraining, the run
  holds the workdir's lock (train/workdir_lock.py) and ends with a summary.
  """
  started = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  with workdir_lock.hold(workdir):  # One run per workdir, as in pretraining.
    results = _train_seeds(config, workdir, mesh, task, init, resolved, train, extra_results)
  if jax.process_index() == 0:
    logging.info("%s", summaries.finetuning(workdir, results, results_file=RESULTS_FILE,
                                            seconds=time.perf_counter() - started))
  return results


def _train_seeds(config, workdir: str, mesh, task: Task, init: loaded.Checkpoint,
                 resolved: recipes.Resolved, train: dict[str, np.ndarray],
                 extra_results: dict) -> dict:
  num_train = len(train["input_ids"])
  runner = _Run(config, task, init, resolved.recipe, num_train, mesh)
  logging.info("%s: %d train rows, %d steps per seed, recipe %s, from %s %s", task.name,
               num_train, runner.num_train_steps, resolved.describe(), init.kind, init.path)
  results = {
      "task": task.name,
      "init_checkpoint": init.path,
      "init_kind": "random_init" if config.random_init else init.kind,
      "init_step": init.step,
      "primary_metric": task.primary_metric,
      "primary_split": task.primary_split,
      "recipe": resolved.record(),
      "num_train_examples": num_train,
      # What the path, step and row count do not tell apart: a checkpoint exported again into
      # the same directory, other rows of the same number.
      "init_sha256": None if config.random_init else fingerprint(init.encoder_params),
      "train_sha256": fingerprint(train),
      **extra_results,
      "config": config.to_dict(),
      "seeds": [],
  }
  results_path = os.path.join(workdir, RESULTS_FILE)
  finished = {}
  if jax.process_index() == 0:
    finished = _finished_seeds(results_path, results)
    # From here results.json holds only what this run keeps: a seed about to be trained
    # (its export overwritten) has no record that a later rerun could take as finished.
    kept = [finished[seed] for seed in config.seeds if seed in finished]
    if kept:
      write_json(results_path, dict(results, seeds=kept, median=median(kept)))
    elif os.path.exists(results_path):
      os.remove(results_path)
  # Every host trains the same seeds (the collectives would wait forever otherwise), as
  # process 0 decided from its disk.
  finished = {record["seed"]: record
              for record in share_from_process_0(list(finished.values()))}
  for seed in config.seeds:
    if seed in finished:
      logging.info("seed %d: kept from %s (same settings; best dev %s)", seed, results_path,
                   finished[seed]["best"]["metrics"])
      results["seeds"].append(finished[seed])
    else:
      results["seeds"].append(runner.train_seed(seed, train, workdir))
    results["median"] = median(results["seeds"])
    write_json(results_path, results)
  logging.info("%s median over seeds %s: %s", task.name, list(config.seeds),
               results["median"])
  return results


def fingerprint(tree) -> str:
  """sha256 of a tree of arrays (a params tree, a dict of columns): every leaf's path, dtype,
  shape and bytes."""
  digest = hashlib.sha256()
  leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
  for path, leaf in sorted(leaves, key=lambda item: jax.tree_util.keystr(item[0])):
    array = np.ascontiguousarray(np.asarray(leaf)).reshape(-1)
    digest.update(f"{jax.tree_util.keystr(path)} {array.dtype} {np.shape(leaf)}\n".encode())
    digest.update(array.view(np.uint8))
  return digest.hexdigest()


def share_from_process_0(value):
  """Process 0's `value` (anything JSON can hold) on every process."""
  if jax.process_count() == 1:
    return value
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  data = np.frombuffer(json.dumps(value).encode("utf-8"), np.uint8)
  size = int(multihost_utils.broadcast_one_to_all(np.int32(data.size)))
  padded = np.zeros(size, np.uint8)
  if jax.process_index() == 0:
    padded[:] = data
  return json.loads(bytes(multihost_utils.broadcast_one_to_all(padded)).decode("utf-8"))


def _finished_seeds(results_path: str, results: dict) -> dict[int, dict]:
  """{seed: record} of an earlier run into this workdir with the same settings, so that a run
  killed mid-way (or rerun with more seeds) trains only the seeds it has not finished.

  Same settings: every field of results.json but the seed list and the seeds' records,
  including the whole fine-tuning config, the init checkpoint's path, step and weights and
  the training rows. A seed counts only if its kept export is still where the record says,
  in this workdir. An earlier run with other settings is replaced, and the log says so.
  """
  if not os.path.exists(results_path):
    return {}
  try:
    earlier = json_files.read_dict(results_path)
  except errors.InputError as e:
    raise errors.InputError(f"{e} It records the seeds an earlier run finished: delete it to "
                            "train every seed again.") from e
  current = json.loads(json.dumps(results))  # Tuples become lists, as in the file.

  def settings(record):
    kept = {k: v for k, v in record.items() if k not in ("seeds", "median", "config")}
    kept["config"] = {k: v for k, v in record.get("config", {}).items() if k != "seeds"}
    return kept

  if settings(earlier) != settings(current):
    logging.warning("%s holds results of other settings; this run replaces them.", results_path)
    return {}
  workdir = os.path.dirname(results_path)
  return {record["seed"]: record for record in earlier.get("seeds", [])
          if record.get("checkpoint") == _best_dir(workdir, record["seed"])
          and os.path.isdir(record["checkpoint"])}


def _best_dir(workdir: str, seed: int) -> str:
  return os.path.join(workdir, f"seed_{seed}", BEST_DIR)


def evaluate_export(task: Task, model, params, config, mesh) -> tuple[Scores, dict]:
  """Scores a fine-tuned model's params (host tree) with the task's dev evaluation."""
  predict_step = step_lib.make_predict_step(model, mesh)
  replicated = train_step_lib.replicate(params, mesh)
  return task.evaluate(lambda input_ids: predict_lib.predict(
      predict_step, replicated, input_ids, config.eval_batch_size, mesh))
