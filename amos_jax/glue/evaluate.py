"""GLUE splits as arrays, data-parallel prediction, dev scoring, and evaluation of an export.

Used by fine-tuning for its periodic dev evaluation, and alone (`eval_only`) to score a
fine-tuned export, so both compute the same numbers the same way.
"""

import json
import logging
import os

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from amos_jax import errors
from amos_jax import special_tokens
from amos_jax.glue import config as config_lib
from amos_jax.glue import data
from amos_jax.glue import features
from amos_jax.glue import init_checkpoint
from amos_jax.glue import metrics
from amos_jax.glue import step as step_lib
from amos_jax.glue import tasks
from amos_jax.models import classifier
from amos_jax.train import step as train_step_lib

EVAL_RESULTS_FILE = "eval_results.json"


def load_split(config: ml_collections.ConfigDict, task: tasks.TaskSpec, split: str,
               tokenizer, limit: int = 0) -> dict[str, np.ndarray]:
  """`input_ids` [N, seq_len] and `labels` [N] of one split, from TSV files or TFDS.

  Args:
    limit: keep the first `limit` examples (0: all).
  """
  if config.source == "tsv":
    examples = data.load_tsv(task, split, config.data_dir)
  else:
    examples = data.load_tfds(task, split, config.tfds_data_dir or None)
  if limit:
    examples = examples[:limit]
  return features.convert_examples(examples, tokenizer, config.seq_len, task.is_regression)


def host_rows(global_rows: np.ndarray) -> np.ndarray:
  """This process's contiguous slice of a global batch (every host holds the whole batch)."""
  per_host = global_rows.shape[0] // jax.process_count()
  start = jax.process_index() * per_host
  return global_rows[start:start + per_host]


def predict(predict_step, params, input_ids: np.ndarray, batch_size: int, mesh) -> np.ndarray:
  """Logits [N, num_labels] of every row, in batches padded to `batch_size` rows."""
  num_rows = input_ids.shape[0]
  padded = -(-num_rows // batch_size) * batch_size
  rows = np.full((padded, input_ids.shape[1]), special_tokens.PAD_ID, np.int32)
  # Filler rows hold [CLS] [SEP] so that no row is all padding.
  rows[:, :2] = (special_tokens.CLS_ID, special_tokens.SEP_ID)
  rows[:num_rows] = input_ids
  outputs = []
  for start in range(0, padded, batch_size):
    batch = train_step_lib.shard_batch(host_rows(rows[start:start + batch_size]), mesh)
    logits = predict_step(params, batch)
    outputs.append(multihost_utils.process_allgather(logits, tiled=True))
  return np.concatenate(outputs)[:num_rows]


def score(task: tasks.TaskSpec, predict_step, params, eval_sets: dict, batch_size: int,
          mesh) -> dict[str, dict[str, float]]:
  """{split: {metric: value}} over every dev split of the task (MNLI: matched, mismatched)."""
  return {split: metrics.compute(task, predict(predict_step, params, split_features["input_ids"],
                                               batch_size, mesh), split_features["labels"])
          for split, split_features in eval_sets.items()}


def load_eval_sets(config, task: tasks.TaskSpec, tokenizer) -> dict[str, dict]:
  """The task's dev split(s), each truncated to config.max_eval_examples."""
  return {split: load_split(config, task, split, tokenizer, config.max_eval_examples)
          for split in task.eval_splits}


def write_json(path: str, record: dict):
  """Writes JSON atomically (temporary file, then rename), from process 0 only."""
  if jax.process_index() != 0:
    return
  staging = f"{path}.tmp-{os.getpid()}"
  with open(staging, "w", encoding="utf-8") as f:
    json.dump(record, f, indent=2, sort_keys=True)
  os.replace(staging, path)


def evaluate_export(config: ml_collections.ConfigDict, workdir: str,
                    mesh: jax.sharding.Mesh | None = None) -> dict:
  """Scores the fine-tuned export config.init_checkpoint on the task's dev split(s).

  Writes and returns `workdir/eval_results.json`: task, checkpoint, metrics per split.
  """
  mesh = mesh or train_step_lib.make_mesh()
  task = config_lib.validate(config, mesh.size)
  init = init_checkpoint.load(config.init_checkpoint)
  if init.task is None:
    raise errors.InputError(
        f"eval_only: {init.path} has no task head (a pretrained encoder); pass a "
        "fine-tuned export such as <workdir>/seed_0/best.")
  if init.task.name != task.name or tuple(init.task.label_names) != task.label_names:
    raise errors.InputError(
        f"eval_only: {init.path} was fine-tuned for {init.task.name!r} with labels "
        f"{list(init.task.label_names)}, not for {task.name!r}.")
  model = classifier.SequenceClassifier(init.model_config, task.num_labels)
  params = train_step_lib.replicate(init.params, mesh)
  scores = score(task, step_lib.make_predict_step(model, mesh), params,
                 load_eval_sets(config, task, init.tokenizer), config.eval_batch_size, mesh)
  logging.info("%s dev: %s", task.name, scores)
  results = {"task": task.name, "checkpoint": init.path, "metrics": scores,
             "primary_metric": task.primary_metric, "seq_len": config.seq_len}
  os.makedirs(workdir, exist_ok=True)
  write_json(os.path.join(workdir, EVAL_RESULTS_FILE), results)
  return results
