"""Reads what fine-tuning starts from: a pretraining workdir or an export directory (an
amos_jax export or a Hugging Face one).

Either gives the encoder's model config, its tokenizer and (unless only the size is wanted)
the TextEncoder parameters, checked against that config so a checkpoint of another size or
vocabulary fails here with the parameter path and both shapes.
"""

import json
import os
from typing import NamedTuple

import jax
import ml_collections
import numpy as np

from amos_jax import errors
from amos_jax import export
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.hf import reader as hf_reader
from amos_jax.models import amos

PRETRAINING_WORKDIR = "pretraining_workdir"
EXPORT = "export"
HF_EXPORT = "hf_export"


class Init(NamedTuple):
  """An init checkpoint, read."""
  kind: str  # PRETRAINING_WORKDIR, EXPORT or HF_EXPORT.
  path: str
  model_config: ml_collections.ConfigDict  # TextEncoder hyperparameters, no generator.
  tokenizer: tokenizer_lib.Tokenizer
  encoder_params: dict | None  # Host numpy TextEncoder tree; None when not read.
  step: int | None  # Pretraining step of a workdir checkpoint.
  task: export.TaskInfo | None  # The head's task of a fine-tuned export.
  params: dict | None  # The whole tree read: TextEncoder, or {encoder, head} with a task.


def _read_json(path: str) -> dict:
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise errors.InputError(f"{path} is not valid JSON ({e}).") from e


def _check_encoder(encoder_params, model_config, source: str, against: str):
  expected = export.expected_params(amos.TextEncoder(model_config))
  export.check_param_tree(encoder_params, expected, source, against=against)


def _from_workdir(path: str, read_params: bool, step: int | None) -> Init:
  from amos_jax.train import checkpointing  # Training code; export readers do not need it.
  config_path = os.path.join(path, export.CONFIG_FILE)
  model = dict(_read_json(config_path).get("model") or {})
  missing = [k for k in export.ENCODER_CONFIG_KEYS if k not in model]
  if missing:
    raise errors.InputError(
        f"{config_path}: model lacks {missing}; is {path} a pretraining workdir?")
  model.pop("generator", None)
  model_config = ml_collections.ConfigDict(model)
  tokenizer = tokenizer_lib.load_tokenizer(os.path.join(path, export.TOKENIZER_FILE),
                                           model_config.vocab_size)
  params = None
  if read_params:
    step, amos_params = checkpointing.load_params(os.path.join(path, "checkpoints"), step)
    missing = [k for k in amos.ENCODER_PARAMS if k not in amos_params]
    if missing:
      raise errors.InputError(
          f"The checkpoint in {path}/checkpoints (step {step}) lacks {missing}: "
          "not an amos_jax pretraining checkpoint.")
    params = jax.tree.map(np.asarray, jax.device_get(amos.encoder_params(amos_params)))
    _check_encoder(params, model_config, f"{path}/checkpoints step {step}",
                   f"{config_path}'s model")
  return Init(PRETRAINING_WORKDIR, path, model_config, tokenizer, params, step, None, params)


def _from_export(path: str, read_params: bool) -> Init:
  record, model_config, task = export.read_config(path)
  tokenizer = tokenizer_lib.load_tokenizer(export.check_file(path, record["tokenizer"]),
                                           model_config.vocab_size)
  params = encoder = None
  if read_params:
    params_path = export.check_file(path, record["params"])
    params = export.read_params(params_path)
    expected = export.expected_params(export.build_module(model_config, task))
    export.check_param_tree(params, expected, params_path)
    encoder = params["encoder"] if task is not None else params
  return Init(EXPORT, path, model_config, tokenizer, encoder, None, task, params)


def _from_hf_export(path: str, read_params: bool) -> Init:
  read = hf_reader.read(path, read_params)
  tokenizer = tokenizer_lib.load_tokenizer(read.tokenizer_path, read.model_config.vocab_size)
  params = read.params
  encoder = params["encoder"] if params is not None and read.task is not None else params
  return Init(HF_EXPORT, path, read.model_config, tokenizer, encoder, None, read.task, params)


def load(path: str, *, read_params: bool = True, step: int | None = None) -> Init:
  """Reads `path`, a pretraining workdir (config.json, tokenizer.model, checkpoints/) or an
  export (either format); `read_params=False` reads only the model config and tokenizer.

  step: a workdir's checkpoint step (None: its newest), e.g. to fine-tune points along a
  pretraining run; an export holds one set of weights and takes none.
  """
  path = os.path.abspath(path)
  config_path = os.path.join(path, export.CONFIG_FILE)
  if not os.path.isfile(config_path):
    raise FileNotFoundError(
        f"init_checkpoint {path!r} has no {export.CONFIG_FILE}: expected a pretraining "
        "workdir (config.json, tokenizer.model, checkpoints/) or an amos_jax export.")
  is_hf_export = hf_reader.is_hf_export(path)
  is_export = is_hf_export or _read_json(config_path).get("format") == export.FORMAT
  if is_export and step is not None:
    raise errors.InputError(
        f"init_checkpoint_step={step}, but {path} is an export, which holds one set of "
        "weights: set init_checkpoint_step=0, or give a pretraining workdir.")
  if is_hf_export:
    return _from_hf_export(path, read_params)
  if is_export:
    return _from_export(path, read_params)
  return _from_workdir(path, read_params, step)
