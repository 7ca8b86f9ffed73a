"""PyTorch state dicts -> amos_jax parameter trees: the layout changes every reader of a
transformers or fairseq checkpoint makes, and bookkeeping of which tensors were used.

torch.nn.Linear weights are [out, in]; Flax kernels [in, out], attention projections
[H, N, D] (query, key, value) and [N, D, H] (output).
"""

import flax.traverse_util
import numpy as np

from amos_jax import errors


def linear(weight: np.ndarray) -> np.ndarray:
  """[out, in] -> [in, out]."""
  return np.ascontiguousarray(weight.T)


def heads_in(weight: np.ndarray, num_heads: int) -> np.ndarray:
  """A query/key/value weight [N*D, H] -> [H, N, D]."""
  return np.ascontiguousarray(weight.T.reshape(weight.shape[1], num_heads, -1))


def heads_bias(bias: np.ndarray, num_heads: int) -> np.ndarray:
  """[N*D] -> [N, D]."""
  return bias.reshape(num_heads, -1)


def heads_out(weight: np.ndarray, num_heads: int) -> np.ndarray:
  """The attention output weight [H, N*D] -> [N, D, H]."""
  return np.ascontiguousarray(weight.T.reshape(num_heads, -1, weight.shape[0]))


def embeddings(state: "StateDict", vocab_size: int, max_positions: int, width: int) -> dict:
  """Token and position embeddings and their LayerNorm, in amos_jax's names, from the
  `embeddings.*` names BERT, ELECTRA and the AMOS authors' Hugging Face code share."""
  return {
      "token_embedding": state.take("embeddings.word_embeddings.weight", (vocab_size, width)),
      "discriminator/position_embedding": state.take("embeddings.position_embeddings.weight",
                                                     (max_positions, width)),
      "discriminator/embedding_norm/scale": state.take("embeddings.LayerNorm.weight", (width,)),
      "discriminator/embedding_norm/bias": state.take("embeddings.LayerNorm.bias", (width,)),
  }


# Where a post-LN block's parts are in a state dict: the attention output projection, the two
# LayerNorms and the FFN's two layers, each a torch module name (".weight"/".bias" follow).
POST_LN_PARTS = ("attention_output", "attention_norm", "ffn_in", "ffn_out", "ffn_norm")


def post_ln_block(take, names: dict, num_heads: int, hidden: int, ffn_size: int) -> dict:
  """A block's attention output, LayerNorms and FFN in amos_jax's names (under block_i/),
  from `take(name, shape)` and the torch module `names` of POST_LN_PARTS."""
  weight = lambda part, shape: take(names[part] + ".weight", shape)
  bias = lambda part, size: take(names[part] + ".bias", (size,))
  flat = {
      "attention/output/kernel": heads_out(weight("attention_output", (hidden, hidden)),
                                           num_heads),
      "attention/output/bias": bias("attention_output", hidden),
      "ffn_in/kernel": linear(weight("ffn_in", (ffn_size, hidden))),
      "ffn_in/bias": bias("ffn_in", ffn_size),
      "ffn_out/kernel": linear(weight("ffn_out", (hidden, ffn_size))),
      "ffn_out/bias": bias("ffn_out", hidden),
  }
  for norm in ("attention_norm", "ffn_norm"):
    flat[f"{norm}/scale"] = weight(norm, (hidden,))
    flat[f"{norm}/bias"] = bias(norm, hidden)
  return flat


class StateDict:
  """Tensors of one file, taken by name; names never taken are reported, not lost silently."""

  def __init__(self, tensors: dict[str, np.ndarray], source: str, prefix: str = ""):
    self.tensors = tensors
    self.source = source
    self.prefix = prefix
    self.taken: set[str] = set()

  def has(self, name: str) -> bool:
    return self.prefix + name in self.tensors

  def take(self, name: str, shape=None) -> np.ndarray:
    """The tensor `prefix + name`; an InputError naming the file if it is missing or has
    another shape than `shape` (the checkpoint's config implies it)."""
    key = self.prefix + name
    if key not in self.tensors:
      raise errors.InputError(f"{self.source} lacks tensor {key!r}, which its config implies: "
                              "truncated, or another model's weights.")
    value = self.tensors[key]
    if shape is not None and tuple(value.shape) != tuple(shape):
      raise errors.InputError(f"{self.source}: tensor {key!r} has shape {tuple(value.shape)} "
                              f"but the checkpoint's config implies {tuple(shape)}.")
    self.taken.add(key)
    return value

  def untaken(self) -> list[str]:
    """Names of the tensors no reader took, sorted."""
    return sorted(set(self.tensors) - self.taken)


def dropped_note(state: StateDict, what: dict[str, str]) -> list[str]:
  """Notes on the tensors left behind: each group in `what` (name prefix -> description) that
  is present, and a count of anything else."""
  left = state.untaken()
  notes = []
  for prefix, description in what.items():
    group = [name for name in left if name.startswith(prefix)]
    if group:
      notes.append(f"dropped {description} ({len(group)} tensors)")
      left = [name for name in left if name not in group]
  if left:
    notes.append(f"dropped {len(left)} other tensors ({', '.join(left[:3])}"
                 f"{', ...' if len(left) > 3 else ''})")
  return notes


def unflatten(flat: dict[str, np.ndarray]) -> dict:
  """{"a/b": x} -> {"a": {"b": x}}."""
  return flax.traverse_util.unflatten_dict(flat, sep="/")
