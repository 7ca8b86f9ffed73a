"""amos_jax's Hugging Face export: a transformers model with its own code, read back without
torch.

  model.safetensors          the parameters in the layout of hf/modeling_amos_jax.py
  config.json                hf/hf_config.to_hf: model_type, architectures, auto_map, all sizes
  configuration_amos_jax.py  }  copied from hf/: transformers imports them with
  modeling_amos_jax.py       }  trust_remote_code=True
  tokenizer.json, tokenizer_config.json   AutoTokenizer's fast tokenizer
  tokenizer.model            the SentencePiece model, for amos_jax reading the export back
  README.md                  the model card
config.json's hf_config.TOKENIZER_KEY names the tokenizer when it is not amos_jax's own: a
converted BERT/ELECTRA model has WordPiece's tokenizer.json alone; a converted AMOS/COCO-LM
authors' model has their sp.model and dict.txt, read by tokenization_amos_jax.py and
authors_pieces.py (AutoTokenizer with trust_remote_code=True), in place of tokenizer.json and
tokenizer.model (hf/tokenizer_files.py).

Writing needs `tokenizers`, `safetensors` and transformers (requirements-hf.txt); reading
`safetensors`' numpy API (and `tokenizers` for a WordPiece export, sentencepiece for the
others).
"""

import json
import os
import shutil

from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.data import tokenizer_kinds
from amos_jax.data import wordpiece_tokenizer
from amos_jax.formats import encoder_tree
from amos_jax.formats import json_files
from amos_jax.formats import loaded
from amos_jax.formats import weight_files
from amos_jax.formats.hf import hf_config
from amos_jax.formats.hf import model_card
from amos_jax.formats.hf import tokenizer_files
from amos_jax.formats.hf import weights

KIND = "hf_export"
NAME = "amos_jax Hugging Face export"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
SENTENCEPIECE_FILE = tokenizer_lib.MODEL_FILE  # tokenizer_kinds.load reads it by this name.
CARD_FILE = "README.md"
CODE_FILES = (hf_config.CONFIGURATION_MODULE + ".py", hf_config.MODELING_MODULE + ".py")


def write(out_dir: str, tree, model: dict, tokenizer, task, card: dict | None):
  """Writes every file of the export into `out_dir` from a checked TextEncoder or
  SequenceClassifier tree of numpy arrays and its amos_jax model config (a dict)."""
  from safetensors import numpy as safetensors_numpy
  safetensors_numpy.save_file(weights.to_torch_tensors(tree),
                              os.path.join(out_dir, WEIGHTS_FILE), metadata={"format": "pt"})
  config = hf_config.to_hf(model, task, model["param_dtype"], tokenizer.kind)
  with open(os.path.join(out_dir, CONFIG_FILE), "w", encoding="utf-8") as f:
    json.dump(config, f, indent=2, sort_keys=True)
  code_dir = os.path.dirname(os.path.abspath(hf_config.__file__))
  for name in CODE_FILES:
    shutil.copyfile(os.path.join(code_dir, name), os.path.join(out_dir, name))
  max_length = model["max_position_embeddings"]
  if tokenizer.kind == tokenizer_kinds.SENTENCEPIECE:
    shutil.copyfile(tokenizer.model_path, os.path.join(out_dir, SENTENCEPIECE_FILE))
    tokenizer_files.write_tokenizer_files(tokenizer.model_path, out_dir, max_length)
  elif tokenizer.kind == wordpiece_tokenizer.KIND:
    tokenizer_files.write_wordpiece_files(tokenizer, out_dir, max_length)
  else:  # The AMOS authors' (authors_tokenizer.KIND), the last of tokenizer_kinds.KINDS.
    tokenizer_files.write_authors_files(tokenizer, out_dir, max_length)
  with open(os.path.join(out_dir, CARD_FILE), "w", encoding="utf-8") as f:
    f.write(model_card.render(config, task, card or {}))
  for name in os.listdir(out_dir):  # On disk before the directory is renamed into place.
    with open(os.path.join(out_dir, name), "rb") as f:
      os.fsync(f.fileno())


def _read_tokenizer(path: str, kind: str, vocab_size: int):
  tokenizer_path = os.path.join(path, SENTENCEPIECE_FILE)
  if kind == tokenizer_kinds.SENTENCEPIECE and not os.path.isfile(tokenizer_path):
    raise FileNotFoundError(
        f"{tokenizer_path} not found: amos_jax reads the SentencePiece model a Hugging Face "
        f"export carries beside tokenizer.json (an export of a BERT/ELECTRA model has "
        f"\"{hf_config.TOKENIZER_KEY}\": \"{wordpiece_tokenizer.KIND}\" in config.json "
        "instead).")
  # The files each kind's `save` writes, under the same names in an export.
  return tokenizer_kinds.load(kind, path, vocab_size)


def recognise(path: str) -> bool:
  """Whether `path` holds an amos_jax Hugging Face export (its config.json's model_type)."""
  config = json_files.read_dict_or_none(os.path.join(path, CONFIG_FILE))
  return config is not None and config.get("model_type") == hf_config.MODEL_TYPE


def read(path: str, read_params: bool = True, step: int | None = None) -> loaded.Checkpoint:
  """Reads and checks an export; errors name the file and what disagrees."""
  del step  # An export holds one set of weights (formats/registry.py refuses a step).
  config_path = os.path.join(path, CONFIG_FILE)
  config = json_files.read_dict(config_path)
  model_config, task = hf_config.from_hf(config, config_path)
  tokenizer = _read_tokenizer(path, hf_config.tokenizer_kind(config, config_path),
                              model_config.vocab_size)
  params = None
  if read_params:
    weights_path = os.path.join(path, WEIGHTS_FILE)
    tensors = weight_files.read_safetensors(weights_path)
    expected = encoder_tree.expected_params(encoder_tree.build_module(model_config, task))
    params = weights.from_torch_tensors(tensors, expected, weights_path, against=config_path)
  return loaded.Checkpoint(KIND, path, model_config, tokenizer, params, task)
