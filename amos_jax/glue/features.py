"""Turns GLUE examples into fixed-shape arrays: `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`.

The special tokens are the tokenizer's (`tokenizer.special`): a converted AMOS checkpoint
joins a pair as `<s> a </s> </s> b </s>`. Pairs are told apart by the separator (and, in
encoders with token-type embeddings, by the types the model derives from it). Sequences are
padded with the tokenizer's pad id on the right; the model derives its attention mask from
`input_ids != pad`.
"""

from typing import Protocol, Sequence

import numpy as np

from amos_jax import errors
from amos_jax import special_tokens
from amos_jax.glue import data


class Tokenizer(Protocol):
  special: special_tokens.SpecialTokens

  def encode(self, text: str) -> list[int]:
    """Token ids of `text`, without special tokens."""


def truncate_pair_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
  """Lengths kept by longest-first truncation of a pair to at most `budget` tokens.

  Equivalent to removing the last token of the longer side (of b on a tie) until the pair
  fits, as BERT's `_truncate_seq_pair` does, in closed form.
  """
  if len_a + len_b <= budget:
    return len_a, len_b
  shorter = min(len_a, len_b)
  if 2 * shorter <= budget:
    # Only the longer side is cut.
    return (budget - len_b, len_b) if len_a > len_b else (len_a, budget - len_a)
  # Both are cut to (almost) equal length; ties are broken by cutting b first.
  return (budget + 1) // 2, budget // 2


def encode_example(tokenizer: Tokenizer, example: data.Example, seq_len: int) -> list[int]:
  """Token ids with specials, truncated to at most `seq_len`; not padded."""
  special = tokenizer.special
  ids_a = tokenizer.encode(example.text_a)
  if example.text_b is None:
    if seq_len < 2:
      raise errors.InputError(f"seq_len={seq_len} leaves no room for [CLS] and [SEP].")
    return special.single(ids_a[:seq_len - 2])
  if seq_len < special.num_pair_specials:
    raise errors.InputError(f"seq_len={seq_len} leaves no room for the "
                            f"{special.num_pair_specials} special tokens of a pair.")
  ids_b = tokenizer.encode(example.text_b)
  len_a, len_b = truncate_pair_lengths(len(ids_a), len(ids_b),
                                       seq_len - special.num_pair_specials)
  return special.pair(ids_a[:len_a], ids_b[:len_b])


def convert_examples(examples: Sequence[data.Example], tokenizer: Tokenizer, seq_len: int,
                     is_regression: bool) -> dict[str, np.ndarray]:
  """Encodes, truncates and pads examples.

  Args:
    examples: from data.load_tsv or data.load_tfds.
    tokenizer: any object with `encode(text) -> list[int]` that adds no special tokens.
    seq_len: length of every output row, specials included.
    is_regression: labels are float32 (STS-B) instead of int32 class ids.

  Returns:
    `input_ids` int32 [N, seq_len] and `labels` [N] (int32, or float32 for regression).
    Unlabeled examples (a test set) give no `labels` key, so they cannot be trained on by
    mistake; a mix of labeled and unlabeled examples is an error.
  """
  if not examples:
    raise errors.InputError("No examples to convert.")
  input_ids = np.full((len(examples), seq_len), tokenizer.special.pad, dtype=np.int32)
  for row, example in enumerate(examples):
    ids = encode_example(tokenizer, example, seq_len)
    input_ids[row, :len(ids)] = ids
  features = {"input_ids": input_ids}
  num_unlabeled = sum(example.label is None for example in examples)
  if num_unlabeled == len(examples):
    return features
  if num_unlabeled:
    raise errors.InputError(
        f"{num_unlabeled} of {len(examples)} examples have no label: expected all or none.")
  dtype = np.float32 if is_regression else np.int32
  features["labels"] = np.array([example.label for example in examples], dtype=dtype)
  return features
