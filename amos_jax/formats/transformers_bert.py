"""Hugging Face transformers' BERT and ELECTRA encoders (BertModel, ElectraModel, their
pre-training and classification variants), read as amos_jax TextEncoders.

  config.json                        model_type "bert" or "electra", the sizes
  model.safetensors | pytorch_model.bin
  tokenizer.json | vocab.txt (+ tokenizer_config.json)   data/wordpiece_tokenizer.py

Absolute positions only (no relative bias), token-type embeddings, BERT's LayerNorm epsilon,
and for ELECTRA-Small an embedding narrower than the hidden size with its projection. What the
encoder does not use is dropped and said so: BERT's pooler, ELECTRA's discriminator and
generator heads, any fine-tuned classifier; and the attention's key bias, which adds the same
q . b to every logit of a query and so changes nothing after the softmax.
"""

import os

import ml_collections

from amos_jax import errors
from amos_jax.data import wordpiece_tokenizer
from amos_jax.formats import encoder_tree
from amos_jax.formats import json_files
from amos_jax.formats import loaded
from amos_jax.formats import torch_layout
from amos_jax.formats import weight_files

KIND = "hf_bert"
NAME = "Hugging Face BERT/ELECTRA"
MODEL_TYPES = ("bert", "electra")
CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# The parts of a block shared with every post-LN layout (torch_layout.POST_LN_PARTS).
_BLOCK_NAMES = {"attention_output": "attention.output.dense",
                "attention_norm": "attention.output.LayerNorm", "ffn_in": "intermediate.dense",
                "ffn_out": "output.dense", "ffn_norm": "output.LayerNorm"}
# Prefixes of the encoder in the task models (BertForPreTraining, ElectraForPreTraining, ...).
_PREFIXES = ("bert.", "electra.")


def recognise(path: str) -> bool:
  config = json_files.read_dict_or_none(os.path.join(path, CONFIG_FILE))
  return config is not None and config.get("model_type") in MODEL_TYPES


def model_config(config: dict, special, source: str) -> ml_collections.ConfigDict:
  """amos_jax's model config of a BERT/ELECTRA config.json."""
  if config.get("hidden_act", "gelu") != "gelu":
    raise errors.InputError(f"{source}: hidden_act is {config.get('hidden_act')!r}; amos_jax's "
                            "encoder has exact GELU ('gelu') only.")
  if config.get("position_embedding_type", "absolute") != "absolute":
    raise errors.InputError(f"{source}: position_embedding_type is "
                            f"{config.get('position_embedding_type')!r}; amos_jax reads "
                            "'absolute' only.")
  integer = lambda key, default=None: encoder_tree.config_integer(config, key, source, default)
  hidden = integer("hidden_size")
  embedding = integer("embedding_size", hidden)
  return ml_collections.ConfigDict(dict(
      vocab_size=integer("vocab_size"),
      hidden_size=hidden,
      num_layers=integer("num_hidden_layers"),
      num_heads=integer("num_attention_heads"),
      ffn_size=integer("intermediate_size"),
      dropout_rate=float(config.get("hidden_dropout_prob", 0.1)),
      attention_dropout_rate=float(config.get("attention_probs_dropout_prob", 0.1)),
      init_std=float(config.get("initializer_range", 0.02)),
      max_position_embeddings=integer("max_position_embeddings"),
      relative_position_buckets=0,
      relative_position_max_distance=0,
      relative_position_bucket_function="amos",
      layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
      type_vocab_size=integer("type_vocab_size", 2),
      pad_token_id=special.pad,
      sep_token_id=special.sep,
      embedding_size=embedding if embedding != hidden else 0,
      classifier_activation="tanh",
      dtype="float32",
      param_dtype="float32",
      attention_implementation=None,
  ))


def encoder_params(state: torch_layout.StateDict, config: ml_collections.ConfigDict) -> dict:
  """The TextEncoder tree from BERT/ELECTRA tensor names (after the model prefix)."""
  hidden, heads = config.hidden_size, config.num_heads
  width = config.embedding_size or hidden
  flat = torch_layout.embeddings(state, config.vocab_size, config.max_position_embeddings,
                                 width)
  if config.type_vocab_size:
    flat["discriminator/token_type_embedding"] = state.take(
        "embeddings.token_type_embeddings.weight", (config.type_vocab_size, width))
  if config.embedding_size:
    flat["discriminator/embedding_projection/kernel"] = torch_layout.linear(
        state.take("embeddings_project.weight", (hidden, width)))
    flat["discriminator/embedding_projection/bias"] = state.take("embeddings_project.bias",
                                                                 (hidden,))
  for i in range(config.num_layers):
    torch_name = f"encoder.layer.{i}."
    block = f"discriminator/block_{i}/"
    take = lambda name, shape: state.take(torch_name + name, shape)  # pylint: disable=cell-var-from-loop
    for part in ("query", "key", "value"):
      flat[f"{block}attention/{part}/kernel"] = torch_layout.heads_in(
          take(f"attention.self.{part}.weight", (hidden, hidden)), heads)
      bias = take(f"attention.self.{part}.bias", (hidden,))
      if part != "key":  # Softmax ignores the key bias: amos_jax's attention has none.
        flat[f"{block}attention/{part}/bias"] = torch_layout.heads_bias(bias, heads)
    parts = torch_layout.post_ln_block(take, _BLOCK_NAMES, heads, hidden, config.ffn_size)
    flat.update({block + name: value for name, value in parts.items()})
  return torch_layout.unflatten(flat)


def read(path: str, read_params: bool = True, step: int | None = None) -> loaded.Checkpoint:
  """A BERT/ELECTRA directory as an amos_jax encoder checkpoint."""
  del step  # One set of weights (formats/registry.py refuses a step).
  config_path = os.path.join(path, CONFIG_FILE)
  config = json_files.read_dict(config_path)
  tokenizer = wordpiece_tokenizer.load(path, config.get("vocab_size"))
  model = model_config(config, tokenizer.special, config_path)
  notes = [f"{config['model_type']} encoder, absolute positions, "
           f"{model.type_vocab_size} token types, new heads use tanh"]
  params = None
  if read_params:
    weights_path = weight_files.find(path, WEIGHT_FILES)
    tensors = weight_files.read_float32(weights_path, notes)
    prefix = next((p for p in _PREFIXES
                   if p + "embeddings.word_embeddings.weight" in tensors), "")
    state = torch_layout.StateDict(tensors, weights_path, prefix)
    params = encoder_params(state, model)
    encoder_tree.check_tree_for(params, model, None, weights_path, f"{config_path}")
    notes.append("dropped the attention key biases (no effect: softmax ignores them)")
    notes += torch_layout.dropped_note(state, {
        prefix + "pooler.": "BERT's pooler", "cls.": "BERT's pre-training heads",
        "discriminator_predictions.": "ELECTRA's replaced-token head",
        "generator_": "ELECTRA's generator head", "classifier.": "a fine-tuned classifier"})
  return loaded.Checkpoint(KIND, path, model, tokenizer, params, notes=tuple(notes))
