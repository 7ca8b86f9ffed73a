"""Reads safetensors files into numpy, without torch, for every format that stores them."""

import os

from amos_jax import errors


def read(path: str) -> dict:
  """All tensors of a safetensors file as numpy arrays; a damaged file is an InputError."""
  from safetensors import numpy as safetensors_numpy  # requirements-hf.txt.
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} not found: the checkpoint has no weights.")
  try:
    return safetensors_numpy.load_file(path)
  except Exception as e:  # safetensors raises its own error types for malformed files.
    raise errors.InputError(f"{path} is not a readable safetensors file ({type(e).__name__}: "
                            f"{e}): truncated or a foreign file.") from e
