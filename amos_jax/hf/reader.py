"""Reads a Hugging Face export (writer.py) back into amos_jax, without torch.

The weights come through safetensors' numpy API; the tokenizer is the SentencePiece model the
export carries beside tokenizer.json.
"""

import json
import os
from typing import NamedTuple

import ml_collections

from amos_jax import errors
from amos_jax import export
from amos_jax.hf import hf_config
from amos_jax.hf import weights
from amos_jax.hf import writer


class HfExport(NamedTuple):
  """A Hugging Face export, read."""
  model_config: ml_collections.ConfigDict  # amos_jax TextEncoder hyperparameters.
  task: export.TaskInfo | None  # The head's task of a sequence-classification export.
  tokenizer_path: str  # The SentencePiece model.
  params: dict | None  # TextEncoder, or SequenceClassifier {encoder, head} with a task.


def _read_config(path: str) -> dict | None:
  try:
    with open(path, "rb") as f:
      return json.loads(f.read().decode("utf-8"))
  except (OSError, UnicodeDecodeError, json.JSONDecodeError):
    return None


def is_hf_export(directory: str) -> bool:
  """Whether `directory` holds an amos_jax Hugging Face export (its config.json's model_type)."""
  config = _read_config(os.path.join(directory, writer.CONFIG_FILE))
  return isinstance(config, dict) and config.get("model_type") == hf_config.MODEL_TYPE


def read_tensors(path: str) -> dict:
  """All tensors of a safetensors file as numpy arrays; a damaged file is a ValueError."""
  from safetensors import numpy as safetensors_numpy
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} not found: the export has no weights.")
  try:
    return safetensors_numpy.load_file(path)
  except Exception as e:  # safetensors raises its own error types for malformed files.
    raise errors.InputError(f"{path} is not a readable safetensors file ({type(e).__name__}: {e}): "
                            "truncated or a foreign file.") from e


def read(directory: str, read_params: bool = True) -> HfExport:
  """Reads and checks an export; errors name the file and what disagrees."""
  config_path = os.path.join(directory, writer.CONFIG_FILE)
  config = _read_config(config_path)
  if not isinstance(config, dict):
    raise errors.InputError(f"{config_path} is not valid JSON: truncated or not an export.")
  model_config, task = hf_config.from_hf(config, config_path)
  tokenizer_path = os.path.join(directory, writer.SENTENCEPIECE_FILE)
  if not os.path.isfile(tokenizer_path):
    raise FileNotFoundError(f"{tokenizer_path} not found: amos_jax reads the SentencePiece "
                            "model a Hugging Face export carries beside tokenizer.json.")
  params = None
  if read_params:
    weights_path = os.path.join(directory, writer.WEIGHTS_FILE)
    tensors = read_tensors(weights_path)
    expected = export.expected_params(export.build_module(model_config, task))
    params = weights.from_torch_tensors(tensors, expected, weights_path, against=config_path)
  return HfExport(model_config, task, tokenizer_path, params)
