"""Writes a Hugging Face export's files into a (staging) directory; amos_jax.export commits it.

  model.safetensors          the parameters in the layout of modeling_amos_jax.py
  config.json                hf_config.to_hf: model_type, architectures, auto_map, all sizes
  configuration_amos_jax.py  }  this package's files, copied: transformers imports them
  modeling_amos_jax.py       }  with trust_remote_code=True
  tokenizer.json, tokenizer_config.json   AutoTokenizer's fast tokenizer
  tokenizer.model            the SentencePiece model, for amos_jax reading the export back
  README.md                  the model card
"""

import json
import os
import shutil

from amos_jax.hf import hf_config
from amos_jax.hf import model_card
from amos_jax.hf import tokenizer_files
from amos_jax.hf import weights

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
SENTENCEPIECE_FILE = "tokenizer.model"
CARD_FILE = "README.md"
CODE_FILES = (hf_config.CONFIGURATION_MODULE + ".py", hf_config.MODELING_MODULE + ".py")


def write(out_dir: str, tree, model: dict, tokenizer_path: str, task, card: dict | None):
  """Writes every file of the export into `out_dir` from a checked TextEncoder or
  SequenceClassifier tree of numpy arrays and its amos_jax model config (a dict)."""
  from safetensors import numpy as safetensors_numpy
  safetensors_numpy.save_file(weights.to_torch_tensors(tree),
                              os.path.join(out_dir, WEIGHTS_FILE), metadata={"format": "pt"})
  config = hf_config.to_hf(model, task, model["param_dtype"])
  with open(os.path.join(out_dir, CONFIG_FILE), "w", encoding="utf-8") as f:
    json.dump(config, f, indent=2, sort_keys=True)
  here = os.path.dirname(os.path.abspath(__file__))
  for name in CODE_FILES:
    shutil.copyfile(os.path.join(here, name), os.path.join(out_dir, name))
  shutil.copyfile(tokenizer_path, os.path.join(out_dir, SENTENCEPIECE_FILE))
  tokenizer_files.write_tokenizer_files(tokenizer_path, out_dir,
                                        model["max_position_embeddings"])
  with open(os.path.join(out_dir, CARD_FILE), "w", encoding="utf-8") as f:
    f.write(model_card.render(config, task, card or {}))
  for name in os.listdir(out_dir):  # On disk before amos_jax.export renames the directory.
    with open(os.path.join(out_dir, name), "rb") as f:
      os.fsync(f.fileno())
