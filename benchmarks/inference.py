"""Inference throughput of an export: sentences/s at a fixed sequence length and batch size.

python -m benchmarks.inference --config=configs/small.py

Randomly initialised weights (speed does not depend on them) and a SentencePiece model
trained on the fly on generated words go through the real path: write_export, load,
encode. Every sentence is long enough to be truncated to --seq_len, so all batches are full.
Two figures: the jitted forward alone, and encode end to end (tokenize, pad, copy back).
"""

import os
import tempfile
import time

from absl import app
from absl import flags
import jax
from ml_collections import config_flags
import numpy as np
import sentencepiece as spm

from amos_jax import inference
from amos_jax import special_tokens
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.formats import registry
from amos_jax.models import amos

_CONFIG = config_flags.DEFINE_config_file("config", "configs/small.py", "Model config.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Sentences per forward pass.")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 128, "Tokens per sentence, specials included.")
_NUM_BATCHES = flags.DEFINE_integer("num_batches", 10, "Timed batches after one warm-up.")
_VOCAB_SIZE = flags.DEFINE_integer("vocab_size", 1000, "Pieces of the generated tokenizer.")


def generated_sentences(count: int, words_per_sentence: int, seed: int = 0) -> list[str]:
  """Sentences of random lowercase words from a fixed 2,000-word lexicon."""
  rng = np.random.default_rng(seed)
  letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
  lexicon = ["".join(rng.choice(letters, rng.integers(2, 9))) for _ in range(2000)]
  return [" ".join(rng.choice(lexicon, words_per_sentence)) for _ in range(count)]


def train_tokenizer(directory: str, vocab_size: int) -> str:
  prefix = os.path.join(directory, "benchmark")
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(generated_sentences(2000, 20, seed=1)), model_prefix=prefix,
      vocab_size=vocab_size, pad_id=special_tokens.PAD_ID, pad_piece=special_tokens.PAD,
      unk_id=special_tokens.UNK_ID, unk_piece=special_tokens.UNK,
      bos_id=special_tokens.CLS_ID, bos_piece=special_tokens.CLS,
      eos_id=special_tokens.SEP_ID, eos_piece=special_tokens.SEP,
      control_symbols=[special_tokens.MASK], minloglevel=2)
  return prefix + ".model"


def sentences_per_second(run, num_batches: int, batch_size: int) -> float:
  jax.block_until_ready(run())  # Compile.
  start = time.perf_counter()
  for _ in range(num_batches):
    jax.block_until_ready(run())
  return num_batches * batch_size / (time.perf_counter() - start)


def main(argv):
  del argv
  config = _CONFIG.value.model
  config.vocab_size = _VOCAB_SIZE.value
  config.dropout_rate = 0.0
  batch_size, seq_len = _BATCH_SIZE.value, _SEQ_LEN.value
  with tempfile.TemporaryDirectory() as directory:
    tokenizer_path = train_tokenizer(directory, config.vocab_size)
    token_ids = np.zeros((1, 8), np.int32)
    params = jax.jit(amos.TextEncoder(config).init)(jax.random.key(0), token_ids, token_ids)
    out = registry.write_export(params["params"], config,
                                tokenizer_lib.load_tokenizer(tokenizer_path),
                                os.path.join(directory, "export"))
    encoder = inference.load(out, buckets=(seq_len,), max_length=seq_len)
  # Long enough that every sentence is truncated to exactly seq_len tokens.
  texts = generated_sentences(batch_size, seq_len, seed=2)
  assert all(len(row) == seq_len for row in encoder.tokenize(texts))
  batch_ids = np.array(encoder.tokenize(texts), np.int32)

  forward = sentences_per_second(
      lambda: encoder._encode_fn(encoder.params, batch_ids),  # pylint: disable=protected-access
      _NUM_BATCHES.value, batch_size)
  end_to_end = sentences_per_second(
      lambda: encoder.encode(texts, batch_size=batch_size), _NUM_BATCHES.value, batch_size)
  print(f"{jax.devices()[0].platform} x{jax.device_count()}, "
        f"{config.num_layers}x{config.hidden_size}, batch {batch_size}, seq {seq_len}: "
        f"forward {forward:.1f} sentences/s, encode (with tokenization) "
        f"{end_to_end:.1f} sentences/s")


if __name__ == "__main__":
  app.run(main)
