"""Builders shared by the export, inference and fine-tuning tests: a tiny tokenizer, model,
export and pretraining workdir."""

import functools
import os
import random
import shutil

import jax
import optax

from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.formats import flax_export
from amos_jax.formats import registry
from amos_jax.models import amos
from amos_jax.train import checkpointing
from amos_jax.train.state import create_train_state
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
  tokenizer = tokenizer_lib.load_tokenizer(tokenizer_path)
  return registry.write_export(amos_params(), model_config(), tokenizer,
                               os.path.join(tmp_dir, "export"), **kwargs)


def make_pretraining_workdir(directory, tokenizer_path, steps=(5,), **model_overrides):
  """A pretraining workdir as loop.train_and_evaluate leaves it, without running it: one
  checkpoint per step of `steps`, the i-th (from 0) holding the initial parameters plus i."""
  os.makedirs(directory)
  shutil.copyfile(tokenizer_path, os.path.join(directory, flax_export.TOKENIZER_FILE))
  config = helpers.tiny_config(vocab_size=VOCAB_SIZE, **model_overrides)
  with open(os.path.join(directory, "config.json"), "w") as f:
    f.write(config.to_json_best_effort())
  model = amos.AmosModel(config.model)
  params = jax.jit(lambda key: amos.init_params(model, key, 8))(jax.random.key(0))
  checkpointer = checkpointing.Checkpointer(os.path.join(directory, "checkpoints"), 1,
                                            len(steps))
  for index, step in enumerate(steps):
    shifted = jax.tree.map(lambda p, i=index: p + i, params)
    checkpointer.save(step, create_train_state(shifted, optax.sgd(0.1)), {"step": step},
                      force=True)
    checkpointer.wait_until_finished()
  checkpointer.close()
  return directory
