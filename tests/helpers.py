"""Small builders shared by the tests: a tiny model config and real-text batches."""

import socket

import jax
import ml_collections
import numpy as np

from amos_jax import special_tokens
from configs import tiny

# A real paragraph (public domain: Jane Austen, Pride and Prejudice, 1813).
TEXT = (
    "It is a truth universally acknowledged, that a single man in possession of a good "
    "fortune, must be in want of a wife. However little known the feelings or views of such a "
    "man may be on his first entering a neighbourhood, this truth is so well fixed in the minds "
    "of the surrounding families, that he is considered the rightful property of some one or "
    "other of their daughters. My dear Mr. Bennet, said his lady to him one day, have you "
    "heard that Netherfield Park is let at last? Mr. Bennet replied that he had not. But it "
    "is, returned she; for Mrs. Long has just been here, and she told me all about it. Mr. "
    "Bennet made no answer. Do you not want to know who has taken it? cried his wife "
    "impatiently. You want to tell me, and I have no objection to hearing it.")


def free_localhost_address() -> str:
  """host:port of a port free on this machine, for a coordinator of JAX processes."""
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return f"localhost:{s.getsockname()[1]}"


def tiny_config(**model_overrides) -> ml_collections.ConfigDict:
  """The tiny preset with dropout off, a small vocab and short sequences."""
  config = tiny.get_config()
  config.model.vocab_size = 128
  config.model.dropout_rate = 0.0
  config.model.attention_dropout_rate = 0.0
  config.seq_len = 32
  config.model.update(model_overrides)
  return config


def word_ids(vocab_size: int) -> np.ndarray:
  """TEXT as word ids (hashed into the non-special part of the vocab)."""
  words = TEXT.split()
  first = len(special_tokens.NEVER_MASKED)
  vocab = {word: first + i % (vocab_size - first) for i, word in enumerate(dict.fromkeys(words))}
  return np.array([vocab[w] for w in words], np.int32)


def text_batch(batch_size: int, seq_len: int, vocab_size: int, padded_rows: int = 0):
  """[CLS] window [SEP] rows cut from TEXT; the last `padded_rows` rows end in padding."""
  ids = word_ids(vocab_size)
  rows = []
  for row in range(batch_size):
    start = (row * 7) % (len(ids) - seq_len)
    body = ids[start:start + seq_len - 2]
    sequence = np.concatenate([[special_tokens.CLS_ID], body, [special_tokens.SEP_ID]])
    if row >= batch_size - padded_rows:
      keep = seq_len // 2 + row % 5
      sequence[keep:] = special_tokens.PAD_ID
      sequence[keep - 1] = special_tokens.SEP_ID
    rows.append(sequence)
  return {"input_ids": np.stack(rows).astype(np.int32)}


def keys(seed: int, count: int):
  return jax.random.split(jax.random.key(seed), count)
