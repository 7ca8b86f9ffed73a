"""Parameter names and layouts between amos_jax (Flax) and the exported PyTorch model.

Flax kernels are [in, out] (attention: [H, N, D] in, [N, D, H] out); torch.nn.Linear weights
are [out, in] with heads flattened. Every name of the torch model is derived here from the
Flax path, so one table of rules defines both directions.
"""

import re

import flax.traverse_util
import numpy as np

from amos_jax import errors

# Base-model attribute of AmosJaxForSequenceClassification (modeling_amos_jax.py).
BASE_MODEL_PREFIX = "amos"

# Layout changes, keyed by kind: copy, linear ([in, out] <-> [out, in]), heads_in
# ([H, N, D] <-> [N*D, H]), heads_out ([N, D, H] <-> [H, N*D]), heads_bias ([N, D] <-> [N*D]).
_TO_TORCH_SHAPE = {
    "copy": lambda s: tuple(s),
    "linear": lambda s: (s[1], s[0]),
    "heads_in": lambda s: (s[1] * s[2], s[0]),
    "heads_out": lambda s: (s[2], s[0] * s[1]),
    "heads_bias": lambda s: (s[0] * s[1],),
}

_ENCODER_RULES = (
    # (Flax path regex within a TextEncoder tree, torch name template, kind)
    (r"token_embedding", "embeddings.word_embeddings.weight", "copy"),
    (r"discriminator/position_embedding", "embeddings.position_embeddings.weight", "copy"),
    (r"discriminator/token_type_embedding", "embeddings.token_type_embeddings.weight", "copy"),
    (r"discriminator/embedding_projection/kernel", "embeddings.projection.weight", "linear"),
    (r"discriminator/embedding_projection/bias", "embeddings.projection.bias", "copy"),
    (r"discriminator/embedding_norm/scale", "embeddings.layer_norm.weight", "copy"),
    (r"discriminator/embedding_norm/bias", "embeddings.layer_norm.bias", "copy"),
    (r"discriminator/relative_position_bias/table", "encoder.relative_position_bias.weight",
     "copy"),
    (r"discriminator/block_(\d+)/attention/(query|key|value)/kernel",
     r"encoder.layer.\1.attention.\2.weight", "heads_in"),
    (r"discriminator/block_(\d+)/attention/(query|value)/bias",
     r"encoder.layer.\1.attention.\2.bias", "heads_bias"),
    (r"discriminator/block_(\d+)/attention/output/kernel",
     r"encoder.layer.\1.attention.output.weight", "heads_out"),
    (r"discriminator/block_(\d+)/attention/output/bias",
     r"encoder.layer.\1.attention.output.bias", "copy"),
    (r"discriminator/block_(\d+)/(attention_norm|ffn_norm)/scale", r"encoder.layer.\1.\2.weight",
     "copy"),
    (r"discriminator/block_(\d+)/(attention_norm|ffn_norm)/bias", r"encoder.layer.\1.\2.bias",
     "copy"),
    (r"discriminator/block_(\d+)/(ffn_in|ffn_out)/kernel", r"encoder.layer.\1.\2.weight",
     "linear"),
    (r"discriminator/block_(\d+)/(ffn_in|ffn_out)/bias", r"encoder.layer.\1.\2.bias", "copy"),
)

_HEAD_RULES = (
    (r"head/(dense|projection)/kernel", r"classifier.\1.weight", "linear"),
    (r"head/(dense|projection)/bias", r"classifier.\1.bias", "copy"),
)


def torch_name(flax_path: str) -> tuple[str, str]:
  """(torch parameter name, layout kind) of a TextEncoder or SequenceClassifier path."""
  rules, path, prefix = _ENCODER_RULES, flax_path, ""
  if flax_path.startswith("encoder/"):
    path, prefix = flax_path[len("encoder/"):], BASE_MODEL_PREFIX + "."
  elif flax_path.startswith("head/"):
    rules = _HEAD_RULES
  for pattern, template, kind in rules:
    if re.fullmatch(pattern, path):
      return prefix + re.sub(pattern, template, path), kind
  raise ValueError(f"No Hugging Face name for amos_jax parameter {flax_path!r}.")


def _to_torch(value: np.ndarray, kind: str) -> np.ndarray:
  if kind == "linear":
    value = value.T
  elif kind == "heads_in":
    value = value.reshape(value.shape[0], -1).T
  elif kind == "heads_out":
    value = value.reshape(-1, value.shape[-1]).T
  elif kind == "heads_bias":
    value = value.reshape(-1)
  return np.ascontiguousarray(value)


def _from_torch(value: np.ndarray, kind: str, flax_shape) -> np.ndarray:
  if kind in ("linear", "heads_in", "heads_out"):
    value = value.T
  return np.ascontiguousarray(value.reshape(flax_shape))


def to_torch_tensors(params) -> dict[str, np.ndarray]:
  """Flat {torch name: array} of a TextEncoder or SequenceClassifier tree (numpy leaves)."""
  tensors = {}
  for path, value in flax.traverse_util.flatten_dict(params, sep="/").items():
    name, kind = torch_name(path)
    tensors[name] = _to_torch(np.asarray(value), kind)
  return tensors


def from_torch_tensors(tensors: dict[str, np.ndarray], expected, source: str,
                       against: str = "config.json"):
  """The Flax tree `expected` (ShapeDtypeStructs) describes, filled from `tensors`.

  Raises ValueError naming `source`, the tensor and both shapes when a tensor is missing,
  has another shape or dtype than `against` implies, or is not part of the tree.
  """
  flat = {}
  used = set()
  for path, spec in flax.traverse_util.flatten_dict(expected, sep="/").items():
    name, kind = torch_name(path)
    want_shape = _TO_TORCH_SHAPE[kind](spec.shape)
    if name not in tensors:
      raise errors.InputError(f"{source} lacks tensor {name!r} (shape {want_shape}) that {against} "
                              f"needs.")
    value = tensors[name]
    if tuple(value.shape) != want_shape:
      raise errors.InputError(f"{source}: tensor {name!r} has shape {tuple(value.shape)} but "
                              f"{against} needs {want_shape}.")
    if np.dtype(value.dtype) != np.dtype(spec.dtype):
      raise errors.InputError(f"{source}: tensor {name!r} is {np.dtype(value.dtype).name} but "
                              f"{against} needs {np.dtype(spec.dtype).name}.")
    flat[path] = _from_torch(value, kind, spec.shape)
    used.add(name)
  unused = sorted(set(tensors) - used)
  if unused:
    raise errors.InputError(f"{source} has tensor {unused[0]!r} that {against} does not describe "
                            f"({len(unused)} unexpected in all).")
  return flax.traverse_util.unflatten_dict(flat, sep="/")
