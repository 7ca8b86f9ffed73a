"""The AMOS/COCO-LM authors' fairseq checkpoints (the releases' model.pt), read as amos_jax
TextEncoders.

  model.pt             a state dict: flat (the released files; the authors' trainer loads
                       them so) or fairseq's {"model": ..., "args" | "cfg": ...}
  sp.model, dict.txt   their tokenizer (data/authors_tokenizer.py)

The discriminator is under encoder.sentence_encoder.*: the same encoder as their Hugging Face
one under other names (formats/authors_hf.py converts both). Sizes come from the tensors'
shapes; the heads, from the relative position table ([bins, heads]); the bias's maximum
distance, which no tensor shows, from the checkpoint's arguments or, for a flat file, the
released models' value for its number of bins. The RTD head (encoder.binary_head) and the
AMOS generator (auxiliary.*) are not read. A new GLUE head uses their fairseq head's tanh.
"""

import os
import re

from amos_jax import errors
from amos_jax.data import authors_tokenizer
from amos_jax.formats import authors_hf
from amos_jax.formats import encoder_tree
from amos_jax.formats import loaded
from amos_jax.formats import torch_layout
from amos_jax.formats import weight_files

KIND = "authors_fairseq"
NAME = "AMOS/COCO-LM authors' fairseq checkpoint"
CHECKPOINT_FILE = "model.pt"
PREFIX = "encoder.sentence_encoder."
# Maximum relative distance of the released models by number of bins (AMOS base and COCO-LM
# base: 64 bins up to 128; COCO-LM large: 128 up to 256), for flat files without arguments.
RELEASED_MAX_DISTANCE = {64: 128, 128: 256}

# fairseq name -> the authors' Hugging Face name (a one-to-one renaming).
_TOP_NAMES = {
    "embed_tokens.weight": "embeddings.word_embeddings.weight",
    "embed_positions.weight": "embeddings.position_embeddings.weight",
    "emb_layer_norm.weight": "embeddings.LayerNorm.weight",
    "emb_layer_norm.bias": "embeddings.LayerNorm.bias",
    "relative_attention_bias.weight": "relative_attention_bias.weight",
}
_LAYER_NAMES = {
    "self_attn.in_proj": "attention.self_attn.in_proj",
    "self_attn.out_proj": "attention.self_attn.out_proj",
    "self_attn_layer_norm": "attention.LayerNorm",
    "fc1": "intermediate.dense",
    "fc2": "output.dense",
    "final_layer_norm": "output.LayerNorm",
}
_LAYER_PATTERN = re.compile(r"layers\.(\d+)\.(.+)\.(weight|bias)")


def recognise(path: str) -> bool:
  return (os.path.isfile(os.path.join(path, CHECKPOINT_FILE))
          and not os.path.isfile(os.path.join(path, "config.json")))


def _state_and_arguments(checkpoint, source: str):
  """(flat state dict, the checkpoint's arguments as a dict, or {})."""
  if not isinstance(checkpoint, dict):
    raise errors.InputError(f"{source} holds a {type(checkpoint).__name__}, not a state dict.")
  if "model" not in checkpoint:
    return checkpoint, {}
  arguments = checkpoint.get("args")
  if arguments is None and isinstance(checkpoint.get("cfg"), dict):
    arguments = checkpoint["cfg"].get("model")
  arguments = vars(arguments) if hasattr(arguments, "__dict__") else dict(arguments or {})
  return checkpoint["model"], arguments


def hf_names(tensors: dict, source: str) -> dict:
  """The discriminator's tensors under the authors' Hugging Face names; others unchanged."""
  renamed = {}
  for name, value in tensors.items():
    if not name.startswith(PREFIX):
      renamed[name] = value
      continue
    short = name[len(PREFIX):]
    match = _LAYER_PATTERN.fullmatch(short)
    if short in _TOP_NAMES:
      renamed[_TOP_NAMES[short]] = value
    elif match and match.group(2) in _LAYER_NAMES:
      renamed[f"encoder.layer.{match.group(1)}.{_LAYER_NAMES[match.group(2)]}."
              f"{match.group(3)}"] = value
    else:
      raise errors.InputError(f"{source}: {name!r} is not part of the authors' post-LN "
                              "encoder (another layout, e.g. pre-LN or segment embeddings?).")
  return renamed


def _sizes(tensors: dict, arguments: dict, source: str) -> dict:
  """The authors' config.json keys, from the tensors' shapes and the arguments."""
  embedding = tensors.get("embeddings.word_embeddings.weight")
  if embedding is None:
    raise errors.InputError(f"{source} has no {PREFIX}embed_tokens.weight: not an AMOS/COCO-LM "
                            "fairseq checkpoint.")
  layers = {int(m.group(1)) for m in map(re.compile(r"encoder\.layer\.(\d+)\.").match, tensors)
            if m}
  table = tensors.get("relative_attention_bias.weight")
  bins = table.shape[0] if table is not None else 0
  heads = arguments.get("encoder_attention_heads") or (table.shape[1] if bins else None)
  if not heads:
    raise errors.InputError(f"{source} has no relative position table and no arguments: the "
                            "number of attention heads cannot be told.")
  max_distance = arguments.get("max_rel_pos") or RELEASED_MAX_DISTANCE.get(bins)
  if bins and not max_distance:
    raise errors.InputError(
        f"{source}: {bins} relative position bins, and neither the checkpoint's arguments nor "
        f"a released model ({RELEASED_MAX_DISTANCE}) give their maximum distance.")
  def rows(name: str) -> int:
    if name not in tensors:
      raise errors.InputError(f"{source} lacks the tensor of {name!r} (fairseq's name under "
                              f"{PREFIX}): truncated, or another model's weights.")
    return tensors[name].shape[0]

  return {
      "vocab_size": embedding.shape[0], "hidden_size": embedding.shape[1],
      "num_hidden_layers": len(layers), "num_attention_heads": int(heads),
      "intermediate_size": rows("encoder.layer.0.intermediate.dense.weight"),
      "max_position_embeddings": rows("embeddings.position_embeddings.weight"),
      "rel_pos_bins": bins, "max_rel_pos": int(max_distance or 0), "layer_norm_eps": 1e-5,
      "hidden_dropout_prob": float(arguments.get("dropout", 0.1)),
      "attention_probs_dropout_prob": float(arguments.get("attention_dropout", 0.1)),
  }


def read(path: str, read_params: bool = True, step: int | None = None) -> loaded.Checkpoint:
  """A fairseq model.pt directory as an amos_jax encoder checkpoint (reading it needs torch
  even for the sizes, which are in the tensors)."""
  del step, read_params  # One set of weights; the sizes need the tensors anyway.
  source = os.path.join(path, CHECKPOINT_FILE)
  state, arguments = _state_and_arguments(weight_files.read_torch(source), source)
  notes = []
  tensors = hf_names(weight_files.float32(weight_files.torch_to_numpy(state, source, notes),
                                          notes), source)
  sizes = _sizes(tensors, arguments, source)
  tokenizer = authors_tokenizer.load(path, sizes["vocab_size"])
  model = authors_hf.model_config(sizes, tokenizer.special, "tanh", source)
  notes.insert(0, f"{model.relative_position_buckets} relative position buckets up to distance "
                  f"{model.relative_position_max_distance}"
                  f"{'' if 'max_rel_pos' in arguments else ' (the released models value)'}, "
                  "new heads use tanh (the authors' fairseq head)")
  state_dict = torch_layout.StateDict(tensors, source)
  params = authors_hf.encoder_params(state_dict, model)
  encoder_tree.check_tree_for(params, model, None, source, f"{source}'s tensor shapes")
  notes.append("dropped the attention key biases (no effect: softmax ignores them)")
  notes += torch_layout.dropped_note(state_dict, {
      "encoder.binary_head.": "the replaced-token head",
      "auxiliary.": "the AMOS generator (its MLMs and mixture)",
      "encoder.lm_head.": "COCO-LM's language-model head",
      "classification_heads.": "fine-tuned classification heads"})
  return loaded.Checkpoint(KIND, path, model, tokenizer, params, notes=tuple(notes))
