"""Checks a GLUE fine-tuning config (configs/glue.py): its task and data keys, then the
shared fine-tuning keys (amos_jax.finetune.config)."""

import ml_collections

from amos_jax.finetune import config as finetune_config
from amos_jax.finetune.config import ConfigError, require
from amos_jax.glue import tasks
from configs import glue as glue_configs


def validate(config: ml_collections.ConfigDict, device_count: int) -> tasks.TaskSpec:
  """Raises ConfigError naming the first unknown key or bad value; returns the task."""
  try:
    task = tasks.get_task(str(config.get("task", "")))
  except ValueError as e:
    raise ConfigError(f"config.task: {e}") from None
  finetune_config.check_known_keys(config, glue_configs.get_config(task.name), "configs/glue.py")
  require(config.source in ("tsv", "tfds"), "source", "'tsv' or 'tfds'", config.source)
  require(config.source != "tsv" or bool(config.data_dir), "data_dir",
           f"the GLUE download directory (holding {task.glue_dir}/) when source='tsv'",
           config.data_dir)
  finetune_config.validate(config, device_count)
  require(config.seq_len >= 3, "seq_len", "at least 3 ([CLS] a [SEP] b [SEP])",
           config.seq_len)
  return task
