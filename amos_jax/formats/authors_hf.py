"""The AMOS/COCO-LM authors' Hugging Face checkpoints (microsoft/amos, microsoft/cocolm-base,
microsoft/cocolm-large), read as amos_jax TextEncoders.

  config.json          the authors' keys: rel_pos_bins, max_rel_pos, layer_norm_type "post",
                       layer_norm_eps (1e-5), type_vocab_size 0, ...; no model_type
  pytorch_model.bin | model.safetensors   keys under "amos." or "cocolm." (or none)
  sp.model, dict.txt   their tokenizer (data/authors_tokenizer.py)

Their encoder is amos_jax's "amos" architecture: learned absolute positions from 0 plus one
relative position bias table shared by all layers with their buckets, an embedding LayerNorm,
post-LN blocks with exact GELU, no final LayerNorm. Their fused attention projection in_proj
[3H, H] (rows q, k, v) is split; the key bias is dropped (softmax ignores it). A new GLUE head
uses their Hugging Face head's GELU (classifier_activation "gelu"); fairseq checkpoints
(formats/authors_fairseq.py) get their fairseq head's tanh.
"""

import os

import ml_collections

from amos_jax import errors
from amos_jax.data import authors_tokenizer
from amos_jax.formats import encoder_tree
from amos_jax.formats import json_files
from amos_jax.formats import loaded
from amos_jax.formats import torch_layout
from amos_jax.formats import transformers_bert
from amos_jax.formats import weight_files

KIND = "authors_hf"
NAME = "AMOS/COCO-LM authors' Hugging Face checkpoint"
CONFIG_FILE = "config.json"
_PREFIXES = ("amos.", "cocolm.")
_MODEL_TYPES = (None, "amos", "cocolm")
# The parts of a block shared with every post-LN layout (torch_layout.POST_LN_PARTS).
_BLOCK_NAMES = {"attention_output": "attention.self_attn.out_proj",
                "attention_norm": "attention.LayerNorm", "ffn_in": "intermediate.dense",
                "ffn_out": "output.dense", "ffn_norm": "output.LayerNorm"}


def recognise(path: str) -> bool:
  """A config.json with the authors' relative-position keys."""
  config = json_files.read_dict_or_none(os.path.join(path, CONFIG_FILE))
  return (config is not None and "rel_pos_bins" in config
          and config.get("model_type") in _MODEL_TYPES)


def model_config(sizes: dict, special, classifier_activation: str,
                 source: str) -> ml_collections.ConfigDict:
  """amos_jax's model config of the authors' sizes (their config.json's keys)."""
  if sizes.get("layer_norm_type", "post") != "post":
    raise errors.InputError(f"{source}: layer_norm_type is {sizes['layer_norm_type']!r}; "
                            "amos_jax reads the post-LN encoder of every released checkpoint.")
  if sizes.get("type_vocab_size", 0):
    raise errors.InputError(f"{source}: type_vocab_size is {sizes['type_vocab_size']}; the "
                            "released checkpoints have none (0), and amos_jax reads only those.")
  if sizes.get("hidden_act", "gelu") != "gelu":
    raise errors.InputError(f"{source}: hidden_act is {sizes.get('hidden_act')!r}, expected "
                            "'gelu'.")
  integer = lambda key: encoder_tree.config_integer(sizes, key, source)
  return ml_collections.ConfigDict(dict(
      vocab_size=integer("vocab_size"),
      hidden_size=integer("hidden_size"),
      num_layers=integer("num_hidden_layers"),
      num_heads=integer("num_attention_heads"),
      ffn_size=integer("intermediate_size"),
      dropout_rate=float(sizes.get("hidden_dropout_prob", 0.1)),
      attention_dropout_rate=float(sizes.get("attention_probs_dropout_prob", 0.1)),
      init_std=float(sizes.get("initializer_range", 0.02)),
      max_position_embeddings=integer("max_position_embeddings"),
      relative_position_buckets=integer("rel_pos_bins"),
      relative_position_max_distance=integer("max_rel_pos"),
      relative_position_bucket_function="amos",
      # The authors' config class defaults to 1e-12, every released config.json says 1e-5.
      layer_norm_eps=float(sizes.get("layer_norm_eps", 1e-12)),
      type_vocab_size=0,
      pad_token_id=special.pad,
      sep_token_id=special.sep,
      embedding_size=0,
      classifier_activation=classifier_activation,
      dtype="float32",
      param_dtype="float32",
      attention_implementation=None,
  ))


def encoder_params(state: torch_layout.StateDict, config: ml_collections.ConfigDict) -> dict:
  """The TextEncoder tree from the authors' Hugging Face tensor names (after the prefix)."""
  hidden, heads = config.hidden_size, config.num_heads
  flat = torch_layout.embeddings(state, config.vocab_size, config.max_position_embeddings,
                                 hidden)
  if config.relative_position_buckets:
    flat["discriminator/relative_position_bias/table"] = state.take(
        "relative_attention_bias.weight", (config.relative_position_buckets, heads))
  for i in range(config.num_layers):
    torch_name = f"encoder.layer.{i}."
    block = f"discriminator/block_{i}/"
    take = lambda name, shape: state.take(torch_name + name, shape)  # pylint: disable=cell-var-from-loop
    in_weight = take("attention.self_attn.in_proj.weight", (3 * hidden, hidden))
    in_bias = take("attention.self_attn.in_proj.bias", (3 * hidden,))
    for index, part in enumerate(("query", "key", "value")):
      rows = slice(index * hidden, (index + 1) * hidden)
      flat[f"{block}attention/{part}/kernel"] = torch_layout.heads_in(in_weight[rows], heads)
      if part != "key":  # Softmax ignores the key bias: amos_jax's attention has none.
        flat[f"{block}attention/{part}/bias"] = torch_layout.heads_bias(in_bias[rows], heads)
    parts = torch_layout.post_ln_block(take, _BLOCK_NAMES, heads, hidden, config.ffn_size)
    flat.update({block + name: value for name, value in parts.items()})
  return torch_layout.unflatten(flat)


def read(path: str, read_params: bool = True, step: int | None = None) -> loaded.Checkpoint:
  """An authors' Hugging Face directory as an amos_jax encoder checkpoint."""
  del step  # One set of weights (formats/registry.py refuses a step).
  config_path = os.path.join(path, CONFIG_FILE)
  sizes = json_files.read_dict(config_path)
  tokenizer = authors_tokenizer.load(path, sizes.get("vocab_size"))
  model = model_config(sizes, tokenizer.special, "gelu", config_path)
  notes = [f"{model.relative_position_buckets} relative position buckets up to distance "
           f"{model.relative_position_max_distance}, new heads use GELU (the authors' "
           "Hugging Face head)"]
  params = None
  if read_params:
    weights_path = weight_files.find(path, transformers_bert.WEIGHT_FILES)
    tensors = weight_files.read_float32(weights_path, notes)
    prefix = next((p for p in _PREFIXES
                   if p + "embeddings.word_embeddings.weight" in tensors), "")
    state = torch_layout.StateDict(tensors, weights_path, prefix)
    params = encoder_params(state, model)
    encoder_tree.check_tree_for(params, model, None, weights_path, config_path)
    notes.append("dropped the attention key biases (no effect: softmax ignores them)")
    notes += torch_layout.dropped_note(state, {"classifier.": "a fine-tuned classifier"})
  return loaded.Checkpoint(KIND, path, model, tokenizer, params, notes=tuple(notes))
