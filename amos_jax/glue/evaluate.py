"""GLUE splits as arrays and their dev scores.

Used by fine-tuning for its periodic dev evaluation and by `eval_only` to score a
fine-tuned export, so both compute the same numbers the same way.
"""

import ml_collections
import numpy as np

from amos_jax.finetune import seeds
from amos_jax.glue import data
from amos_jax.glue import features
from amos_jax.glue import metrics
from amos_jax.glue import tasks

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


def score(task: tasks.TaskSpec, predict_fn, eval_sets: dict) -> seeds.Scores:
  """{split: {metric: value}} over every dev split of the task (MNLI: matched, mismatched).

  predict_fn(input_ids) gives the logits of every row.
  """
  return {split: metrics.compute(task, predict_fn(split_features["input_ids"]),
                                 split_features["labels"])
          for split, split_features in eval_sets.items()}


def load_eval_sets(config, task: tasks.TaskSpec, tokenizer) -> dict[str, dict]:
  """The task's dev split(s), each truncated to config.max_eval_examples."""
  return {split: load_split(config, task, split, tokenizer, config.max_eval_examples)
          for split in task.eval_splits}
