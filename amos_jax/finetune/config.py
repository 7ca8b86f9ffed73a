"""Checks the keys every fine-tuning config has (configs/glue.py, configs/squad.py).

Like amos_jax.config_validation for pretraining: fail at start, naming the key, rather than
deep inside training. Each task's config module checks its own keys and calls validate.
"""

import ml_collections

# The pretraining validator's helpers, so every config fails with the same kind of message.
from amos_jax.config_validation import ConfigError, flat_keys, require


def check_known_keys(config: ml_collections.ConfigDict, reference: ml_collections.ConfigDict,
                     config_file: str):
  """Raises ConfigError naming every key of `config` that `reference` lacks."""
  unknown = sorted(flat_keys(config) - flat_keys(reference))
  if unknown:
    raise ConfigError(f"Unknown config keys: {', '.join('config.' + k for k in unknown)}. "
                      f"See {config_file} for the keys that exist.")


def validate(config: ml_collections.ConfigDict, device_count: int):
  """Raises ConfigError naming the first bad value among the shared keys."""
  require(bool(config.init_checkpoint), "init_checkpoint",
           "a pretraining workdir or an export directory (with random_init=True only its "
           "size and tokenizer are used)", config.init_checkpoint)
  require(not (config.eval_only and config.random_init), "random_init",
           "False with eval_only (evaluation scores a fine-tuned export)", config.random_init)
  for key in ("seq_len", "eval_batch_size", "log_every_steps"):
    require(isinstance(config[key], int) and config[key] > 0, key, "a positive integer",
             config[key])
  for key in ("max_train_examples", "max_eval_examples", "eval_every_steps",
              "init_checkpoint_step"):
    require(isinstance(config[key], int) and config[key] >= 0, key, "0 or more", config[key])
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
  # Overrides are checked here; the recipe they override depends on the encoder's size.
  if config.batch_size is not None:
    check_batch_size(config.batch_size, device_count)
  if config.learning_rate is not None:
    require(config.learning_rate > 0, "learning_rate", "> 0", config.learning_rate)
  if config.num_epochs is not None:
    require(config.num_epochs > 0, "num_epochs", "a positive integer", config.num_epochs)
  if config.warmup_fraction is not None:
    require(0.0 <= config.warmup_fraction <= 1.0, "warmup_fraction", "in [0, 1]",
             config.warmup_fraction)


def check_batch_size(batch_size: int, device_count: int):
  """The global batch must split evenly over the devices (also the size recipes' 32)."""
  require(isinstance(batch_size, int) and batch_size > 0 and batch_size % device_count == 0,
           "batch_size", f"a positive multiple of the {device_count} devices", batch_size)
