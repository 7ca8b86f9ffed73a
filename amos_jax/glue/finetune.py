"""GLUE fine-tuning: `finetune_and_evaluate(config, workdir)`, callable from a notebook.

For each seed: a SequenceClassifier whose encoder starts from the init checkpoint and whose
head is fresh, trained data-parallel with the task's recipe, scored on the dev split(s) after
every epoch (or every `eval_every_steps`). The best evaluation by the task's primary metric is
kept as a fine-tuned export in `workdir/seed_<s>/best` (inference.load reads it). After every
seed `workdir/results.json` is rewritten with the per-seed results and the median over seeds.
Like pretraining, the run holds the workdir's lock (train/workdir_lock.py) and ends with a
summary (amos_jax/summaries.py).
"""

import dataclasses
import logging
import os
import time

import jax
import ml_collections
import numpy as np

from amos_jax import errors
from amos_jax import export
from amos_jax import summaries
from amos_jax.glue import config as config_lib
from amos_jax.glue import evaluate
from amos_jax.glue import init_checkpoint
from amos_jax.glue import step as step_lib
from amos_jax.models import classifier
from amos_jax.train import step as train_step_lib
from amos_jax.train import workdir_lock
from amos_jax.train.state import create_train_state

RESULTS_FILE = "results.json"
BEST_DIR = "best"


def _train_set(config, task, tokenizer) -> dict[str, np.ndarray]:
  """The train split; with max_train_examples a fixed random subset, the same for every seed."""
  train = evaluate.load_split(config, task, "train", tokenizer)
  if config.max_train_examples and config.max_train_examples < len(train["labels"]):
    keep = np.sort(np.random.default_rng(0).permutation(len(train["labels"]))
                   [:config.max_train_examples])
    train = {name: column[keep] for name, column in train.items()}
  return train


def _host_copy(params):
  """Replicated params as host numpy (every host holds all of them)."""
  return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), params)


def _median(per_seed: list[dict]) -> dict:
  """{split: {metric: median over seeds}} of each seed's best evaluation."""
  first = per_seed[0]["best"]["metrics"]
  return {split: {name: float(np.median([s["best"]["metrics"][split][name] for s in per_seed]))
                  for name in first[split]} for split in first}


class _Run:
  """Everything shared by the seeds of one fine-tuning run (compiled once)."""

  def __init__(self, config, task, init, recipe, num_train_examples, mesh):
    self.config, self.task, self.init, self.recipe, self.mesh = (config, task, init, recipe,
                                                                 mesh)
    self.steps_per_epoch = num_train_examples // recipe.batch_size
    if self.steps_per_epoch == 0:
      raise errors.InputError(f"{task.name}: {num_train_examples} training examples are fewer than "
                              f"one batch (batch_size={recipe.batch_size}).")
    self.num_train_steps = self.steps_per_epoch * recipe.num_epochs
    warmup_steps = int(round(recipe.warmup_fraction * self.num_train_steps))
    model_config = ml_collections.ConfigDict(init.model_config.to_dict())
    model_config.dropout_rate = config.dropout_rate
    self.model_config = model_config
    self.model = classifier.SequenceClassifier(model_config, task.num_labels)
    self.optimizer, learning_rate_fn = step_lib.make_optimizer(
        config.optimizer, recipe.learning_rate, self.num_train_steps, warmup_steps)
    self.train_step = step_lib.make_train_step(
        self.model, self.optimizer, learning_rate_fn, mesh, recipe.batch_size,
        task.is_regression)
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

  def train_seed(self, seed: int, eval_sets: dict, train: dict, workdir: str) -> dict:
    """Trains one seed; keeps its best evaluation as an export; returns its record."""
    config, task, batch_size = self.config, self.task, self.recipe.batch_size
    state = train_step_lib.replicate(
        create_train_state(self.initial_params(seed), self.optimizer), self.mesh)
    dropout_key = jax.random.fold_in(jax.random.key(seed), 1)
    order_rng = np.random.default_rng(seed)
    best_dir = os.path.join(workdir, f"seed_{seed}", BEST_DIR)
    history, best, losses, step = [], None, [], 0
    start = time.perf_counter()
    for epoch in range(self.recipe.num_epochs):
      order = order_rng.permutation(len(train["labels"]))
      for batch_index in range(self.steps_per_epoch):
        rows = order[batch_index * batch_size:(batch_index + 1) * batch_size]
        batch = train_step_lib.shard_batch(
            {name: evaluate.host_rows(column[rows]) for name, column in train.items()},
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
        scores = evaluate.score(task, self.predict_step, state.params, eval_sets,
                                config.eval_batch_size, self.mesh)
        record = {"step": step, "epoch": epoch + 1, "train_loss": train_loss,
                  "metrics": scores}
        history.append(record)
        losses = []
        primary = scores[task.eval_splits[0]][task.primary_metric]
        logging.info("seed %d step %d: train loss %.4f, dev %s", seed, step, train_loss,
                     scores)
        if best is None or primary > best["metrics"][task.eval_splits[0]][task.primary_metric]:
          best = record
          if jax.process_index() == 0:
            export.export_encoder(_host_copy(state.params), self.model_config,
                                  self.init.tokenizer.model_path, best_dir, task=task,
                                  overwrite=True)
    return {"seed": seed, "best": best, "final": history[-1], "history": history,
            "checkpoint": best_dir, "num_train_steps": self.num_train_steps}


def finetune_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                          mesh: jax.sharding.Mesh | None = None) -> dict:
  """Fine-tunes every seed of `config` (configs/glue.py) and writes workdir/results.json.

  With `config.eval_only`, scores the fine-tuned export `config.init_checkpoint` instead
  (evaluate.evaluate_export). Returns the results record.
  """
  started = time.perf_counter()
  mesh = mesh or train_step_lib.make_mesh()
  if config.get("eval_only"):
    return evaluate.evaluate_export(config, workdir, mesh)
  task = config_lib.validate(config, mesh.size)
  recipe = config_lib.recipe(config, task)
  init = init_checkpoint.load(config.init_checkpoint, read_params=not config.random_init)
  if config.seq_len > init.model_config.max_position_embeddings:
    raise config_lib.ConfigError(
        f"config.seq_len={config.seq_len}: expected at most the encoder's "
        f"max_position_embeddings={init.model_config.max_position_embeddings}.")
  os.makedirs(workdir, exist_ok=True)
  with workdir_lock.hold(workdir):  # One run per workdir, as in pretraining.
    results = _finetune_seeds(config, task, recipe, init, workdir, mesh)
  if jax.process_index() == 0:
    logging.info("%s", summaries.finetuning(workdir, results, results_file=RESULTS_FILE,
                                            seconds=time.perf_counter() - started))
  return results


def _finetune_seeds(config, task, recipe, init, workdir: str, mesh) -> dict:
  """Trains every seed and rewrites results.json after each; returns the results record."""
  train = _train_set(config, task, init.tokenizer)
  eval_sets = evaluate.load_eval_sets(config, task, init.tokenizer)
  run = _Run(config, task, init, recipe, len(train["labels"]), mesh)
  logging.info("%s: %d train examples, %d steps per seed, recipe %s, from %s %s", task.name,
               len(train["labels"]), run.num_train_steps, recipe, init.kind, init.path)
  results = {
      "task": task.name,
      "init_checkpoint": init.path,
      "init_kind": "random_init" if config.random_init else init.kind,
      "init_step": init.step,
      "primary_metric": task.primary_metric,
      "primary_split": task.eval_splits[0],
      "recipe": dataclasses.asdict(recipe),
      "num_train_examples": len(train["labels"]),
      "num_eval_examples": {split: len(f["labels"]) for split, f in eval_sets.items()},
      "config": config.to_dict(),
      "seeds": [],
  }
  for seed in config.seeds:
    results["seeds"].append(run.train_seed(seed, eval_sets, train, workdir))
    results["median"] = _median(results["seeds"])
    evaluate.write_json(os.path.join(workdir, RESULTS_FILE), results)
  logging.info("%s median over seeds %s: %s", task.name, list(config.seeds),
               results["median"])
  return results
