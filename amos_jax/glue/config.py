"""Checks a GLUE fine-tuning config (configs/glue.py) and resolves its recipe.

Like amos_jax.config_validation for pretraining: fail at start, naming the key, rather than
deep inside training.
"""

import ml_collections

# The pretraining validator's helpers, so both configs fail with the same kind of message.
from amos_jax.config_validation import ConfigError, flat_keys, require
from amos_jax.glue import tasks
from configs import glue as glue_configs


def validate(config: ml_collections.ConfigDict, device_count: int) -> tasks.TaskSpec:
  """Raises ConfigError naming the first unknown key or bad value; returns the task."""
  try:
    task = tasks.get_task(str(config.get("task", "")))
  except ValueError as e:
    raise ConfigError(f"config.task: {e}") from None
  unknown = sorted(flat_keys(config) - flat_keys(glue_configs.get_config(task.name)))
  if unknown:
    raise ConfigError(f"Unknown config keys: {', '.join('config.' + k for k in unknown)}. "
                      "See configs/glue.py for the keys that exist.")
  require(bool(config.init_checkpoint), "init_checkpoint",
           "a pretraining workdir or an export directory (with random_init=True only its "
           "size and tokenizer are used)", config.init_checkpoint)
  require(not (config.eval_only and config.random_init), "random_init",
           "False with eval_only (evaluation scores a fine-tuned export)", config.random_init)
  require(config.source in ("tsv", "tfds"), "source", "'tsv' or 'tfds'", config.source)
  require(config.source != "tsv" or bool(config.data_dir), "data_dir",
           f"the GLUE download directory (holding {task.glue_dir}/) when source='tsv'",
           config.data_dir)
  for key in ("seq_len", "eval_batch_size", "log_every_steps"):
    require(isinstance(config[key], int) and config[key] > 0, key, "a positive integer",
             config[key])
  for key in ("max_train_examples", "max_eval_examples", "eval_every_steps"):
    require(isinstance(config[key], int) and config[key] >= 0, key, "0 or more", config[key])
  require(config.seq_len >= 3, "seq_len", "at least 3 ([CLS] a [SEP] b [SEP])",
           config.seq_len)
  seeds = config.seeds
  require(isinstance(seeds, (tuple, list)) and len(seeds) > 0
           and all(isinstance(s, int) and s >= 0 for s in seeds) and len(set(seeds)) == len(seeds),
           "seeds", "distinct non-negative integers, e.g. (0, 1, 2)", seeds)
  require(config.eval_batch_size % device_count == 0, "eval_batch_size",
           f"a multiple of the {device_count} devices", config.eval_batch_size)
  for key in ("dropout_rate", "attention_dropout_rate"):
    require(0.0 <= config[key] < 1.0, key, "in [0, 1)", config[key])
  optimizer = config.optimizer
  require(0.0 <= optimizer.b1 < 1.0, "optimizer.b1", "in [0, 1)", optimizer.b1)
  require(0.0 <= optimizer.b2 < 1.0, "optimizer.b2", "in [0, 1)", optimizer.b2)
  require(optimizer.eps > 0, "optimizer.eps", "> 0", optimizer.eps)
  require(optimizer.weight_decay >= 0, "optimizer.weight_decay", ">= 0",
           optimizer.weight_decay)
  resolved = recipe(config, task)
  require(resolved.batch_size > 0 and resolved.batch_size % device_count == 0, "batch_size",
           f"a positive multiple of the {device_count} devices", resolved.batch_size)
  require(resolved.learning_rate > 0, "learning_rate", "> 0", resolved.learning_rate)
  require(resolved.num_epochs > 0, "num_epochs", "a positive integer", resolved.num_epochs)
  require(0.0 <= resolved.warmup_fraction <= 1.0, "warmup_fraction", "in [0, 1]",
           resolved.warmup_fraction)
  return task


def recipe(config: ml_collections.ConfigDict, task: tasks.TaskSpec) -> tasks.Recipe:
  """The task's recipe with every field the config sets (not None) overriding it."""
  default = task.recipe
  pick = lambda key, fallback: fallback if config[key] is None else config[key]
  return tasks.Recipe(
      batch_size=pick("batch_size", default.batch_size),
      learning_rate=float(pick("learning_rate", default.learning_rate)),
      num_epochs=pick("num_epochs", default.num_epochs),
      warmup_fraction=float(pick("warmup_fraction", default.warmup_fraction)))
