"""Reads weight files into numpy: safetensors (numpy API, no torch needed) and PyTorch
pickles (`pytorch_model.bin`, fairseq's `model.pt`; these need torch, requirements-hf.txt)."""

import argparse
import os

import numpy as np

from amos_jax import errors


def read_safetensors(path: str) -> dict[str, np.ndarray]:
  """All tensors of a safetensors file as numpy arrays; a damaged file is an InputError."""
  try:
    from safetensors import numpy as safetensors_numpy  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise errors.InputError(f"Reading {path} needs the `safetensors` library: pip install -r "
                            "requirements-hf.txt -c requirements.txt.") from e
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} not found: the checkpoint has no weights.")
  try:
    return safetensors_numpy.load_file(path)
  except Exception as e:  # safetensors raises its own error types for malformed files.
    raise errors.InputError(f"{path} is not a readable safetensors file ({type(e).__name__}: "
                            f"{e}): truncated or a foreign file.") from e


def read_torch(path: str):
  """The object a PyTorch pickle holds, tensors left as torch tensors. Loaded with
  weights_only (no arbitrary code runs); fairseq's argparse.Namespace of arguments is allowed."""
  try:
    import torch
  except ImportError as e:
    raise errors.InputError(
        f"Reading {path} needs PyTorch (pip install -r requirements-hf.txt), or convert it to "
        "safetensors first.") from e
  torch.serialization.add_safe_globals([argparse.Namespace])
  try:
    return torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:  # torch raises many types (zipfile, pickle, EOF) for damaged files.
    raise errors.InputError(f"{path} is not a readable PyTorch checkpoint ({type(e).__name__}: "
                            f"{e}): truncated or a foreign file.") from e


def torch_to_numpy(state_dict: dict, path: str, notes: list[str]) -> dict[str, np.ndarray]:
  """{name: numpy array} of a state dict's tensors; bfloat16 arrives as float32 (numpy has no
  bfloat16 of torch's), said in `notes`; every other dtype unchanged."""
  import torch
  tensors = {}
  converted = 0
  for name, value in state_dict.items():
    if not isinstance(value, torch.Tensor):
      raise errors.InputError(f"{path}: {name!r} is a {type(value).__name__}, not a tensor.")
    if value.dtype == torch.bfloat16:
      value = value.float()
      converted += 1
    tensors[name] = value.numpy()
  if converted:
    notes.append("bfloat16 weights converted to float32")
  return tensors


def find(directory: str, names) -> str:
  """The first of `names` present in `directory`."""
  for name in names:
    if os.path.isfile(os.path.join(directory, name)):
      return os.path.join(directory, name)
  raise FileNotFoundError(f"No weights in {directory}: expected one of {list(names)}.")


def read_float32(path: str, notes: list[str]) -> dict[str, np.ndarray]:
  """A safetensors file's or a PyTorch state dict's tensors as float32 numpy; notes record
  fp16 or bf16 weights converted."""
  if path.endswith(".safetensors"):
    tensors = read_safetensors(path)
  else:
    state = read_torch(path)
    if not isinstance(state, dict):
      raise errors.InputError(f"{path} holds a {type(state).__name__}, not a state dict.")
    tensors = torch_to_numpy(state, path, notes)
  return float32(tensors, notes)


def float32(tensors: dict[str, np.ndarray], notes: list[str]) -> dict[str, np.ndarray]:
  """Floating tensors as float32 (fine-tuning and Adam want float32 master weights); notes
  record the conversion of fp16 or bf16 weights."""
  dtypes = sorted({np.dtype(t.dtype).name for t in tensors.values()
                   if np.issubdtype(t.dtype, np.floating) and t.dtype != np.float32})
  if dtypes:
    notes.append(f"{'/'.join(dtypes)} weights converted to float32")
  return {name: t.astype(np.float32) if np.issubdtype(t.dtype, np.floating) else t
          for name, t in tensors.items()}
