"""Builders shared by test_export and test_inference: a tiny tokenizer, model and export."""

import functools
import os
import random

import jax

from amos_jax import export
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.models import amos
from tests import helpers

VOCAB_SIZE = 128


def sentences(count: int, seed: int = 0) -> list[str]:
  """English-like sentences: random runs of the words of helpers.TEXT."""
  words = [w.strip(",.?;") for w in helpers.TEXT.split()]
  rng = random.Random(seed)
  return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 20))).capitalize() + "."
          for _ in range(count)]


def train_tokenizer(directory: str, vocab_size: int = VOCAB_SIZE) -> str:
  """A SentencePiece model with the special tokens at amos_jax.special_tokens' ids."""
  path = os.path.join(directory, f"sp{vocab_size}.model")
  return tokenizer_lib.train_tokenizer(sentences(400), path, vocab_size=vocab_size).model_path


def model_config():
  """The tiny model, dropout off, with the test tokenizer's vocab size."""
  return helpers.tiny_config(vocab_size=VOCAB_SIZE).model


@functools.cache
def amos_params(seed: int = 0):
  """An initialised full AmosModel tree (generator and all) of model_config(); shared, so
  do not modify it."""
  init = jax.jit(lambda key: amos.init_params(amos.AmosModel(model_config()), key, seq_len=32))
  return init(jax.random.key(seed))


def export_pretrained(tmp_dir: str, tokenizer_path: str, **kwargs) -> str:
  """Exports a random AmosModel's encoder to tmp_dir/export."""
  config = model_config()
  return export.export_encoder(amos_params(), config, tokenizer_path,
                               os.path.join(tmp_dir, "export"), **kwargs)
