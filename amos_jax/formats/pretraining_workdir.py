"""A pretraining workdir as a checkpoint: config.json, its tokenizer (tokenizer.model, or a
converted checkpoint's that pretraining continued from) and orbax checkpoints/.

Only the discriminator (the TextEncoder part of the AmosModel tree) is read; the generator,
mixture and RTD head stay behind.
"""

import os

import jax
import ml_collections
import numpy as np

from amos_jax import errors
from amos_jax.data import tokenizer_kinds
from amos_jax.formats import encoder_tree
from amos_jax.formats import json_files
from amos_jax.formats import loaded
from amos_jax.models import amos

KIND = "pretraining_workdir"
NAME = "amos_jax pretraining workdir"
CONFIG_FILE = "config.json"
CHECKPOINTS_DIR = "checkpoints"


def recognise(path: str) -> bool:
  """A config.json with a `model` and an `objective` section: what train/loop.py writes."""
  record = json_files.read_dict_or_none(os.path.join(path, CONFIG_FILE))
  return record is not None and "model" in record and "objective" in record


def read(path: str, read_params: bool = True, step: int | None = None) -> loaded.Checkpoint:
  """The encoder of the newest checkpoint (or `step`) with its model config and tokenizer."""
  from amos_jax.train import checkpointing  # orbax; only reading parameters needs it.
  config_path = os.path.join(path, CONFIG_FILE)
  model = dict(json_files.read_dict(config_path).get("model") or {})
  missing = [k for k in encoder_tree.ENCODER_CONFIG_KEYS if k not in model]
  if missing:
    raise errors.InputError(
        f"{config_path}: model lacks {missing}; is {path} a pretraining workdir?")
  model.pop("generator", None)
  model_config = amos.with_architecture_defaults(ml_collections.ConfigDict(model))
  tokenizer = tokenizer_kinds.load(tokenizer_kinds.detect(path), path, model_config.vocab_size)
  params = None
  if read_params:
    step, amos_params = checkpointing.load_params(os.path.join(path, CHECKPOINTS_DIR), step)
    missing = [k for k in amos.ENCODER_PARAMS if k not in amos_params]
    if missing:
      raise errors.InputError(
          f"The checkpoint in {path}/{CHECKPOINTS_DIR} (step {step}) lacks {missing}: "
          "not an amos_jax pretraining checkpoint.")
    params = jax.tree.map(np.asarray, jax.device_get(amos.encoder_params(amos_params)))
    encoder_tree.check_tree_for(params, model_config, None,
                                f"{path}/{CHECKPOINTS_DIR} step {step}",
                                f"{config_path}'s model")
  return loaded.Checkpoint(KIND, path, model_config, tokenizer, params, None, step)
