"""Checks a SQuAD fine-tuning config (configs/squad.py): its data, window and
post-processing keys, then the shared fine-tuning keys (amos_jax.finetune.config)."""

import ml_collections

from amos_jax.finetune import config as finetune_config
from amos_jax.finetune.config import require
from amos_jax.squad import data
from configs import squad as squad_configs


def validate(config: ml_collections.ConfigDict, device_count: int):
  """Raises ConfigError naming the first unknown key or bad value."""
  require(config.get("version") in data.VERSIONS, "version",
           f"one of {', '.join(data.VERSIONS)}", config.get("version"))
  finetune_config.check_known_keys(config, squad_configs.get_config(config.version),
                                   "configs/squad.py")
  require(config.source in ("json", "tfds"), "source", "'json' or 'tfds'", config.source)
  require(config.source != "json" or bool(config.data_dir), "data_dir",
           f"the directory holding train-v{config.version}.json and dev-v{config.version}.json "
           "when source='json'", config.data_dir)
  finetune_config.validate(config, device_count)
  for key in ("doc_stride", "max_query_length", "n_best_size", "max_answer_length"):
    require(isinstance(config[key], int) and config[key] > 0, key, "a positive integer",
             config[key])
  room = config.seq_len - config.max_query_length - 3
  require(room >= 1, "max_query_length",
           f"at most seq_len - 4 = {config.seq_len - 4} (room for context in each window)",
           config.max_query_length)
  # A longer stride would skip context tokens between windows.
  require(config.doc_stride <= room, "doc_stride",
           f"at most the {room} context tokens a window holds (seq_len - max_query_length - 3)",
           config.doc_stride)
