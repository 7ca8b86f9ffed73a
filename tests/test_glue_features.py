"""Special-token layout, truncation, padding, shapes and dtypes of GLUE features."""

import numpy as np
import pytest

from amos_jax import special_tokens
from amos_jax.glue import features
from amos_jax.glue.data import Example

PAD, CLS, SEP = 0, 2, 3


class WhitespaceTokenizer:
  """Word "wN" -> id N; ids start at 10 in the tests so they never collide with specials."""
  special = special_tokens.AMOS_JAX

  def encode(self, text):
    return [int(word[1:]) for word in text.split()]


def words(*ids):
  return " ".join(f"w{i}" for i in ids)


TOKENIZER = WhitespaceTokenizer()


def test_single_sentence_layout_and_padding():
  out = features.convert_examples([Example(words(10, 11, 12), None, 1)], TOKENIZER, 8, False)
  np.testing.assert_array_equal(out["input_ids"], [[CLS, 10, 11, 12, SEP, PAD, PAD, PAD]])
  np.testing.assert_array_equal(out["labels"], [1])


def test_pair_layout():
  out = features.convert_examples([Example(words(10, 11), words(20), 0)], TOKENIZER, 7, False)
  np.testing.assert_array_equal(out["input_ids"], [[CLS, 10, 11, SEP, 20, SEP, PAD]])


def test_a_tokenizer_with_its_own_specials_gets_its_own_layout():
  """The AMOS authors' ids and RoBERTa-style pairs: <s>=0 a </s>=2 </s> b </s>, <pad>=1."""
  authors = WhitespaceTokenizer()
  authors.special = special_tokens.SpecialTokens(pad=1, unk=3, cls=0, sep=2, mask=9,
                                                 pair_separator=(2, 2))
  out = features.convert_examples([Example(words(10, 11), words(20), 0),
                                   Example(words(*range(10, 20)), words(*range(20, 30)), 0)],
                                  authors, 9, False)
  np.testing.assert_array_equal(out["input_ids"], [[0, 10, 11, 2, 2, 20, 2, 1, 1],
                                                   [0, 10, 11, 12, 2, 2, 20, 21, 2]])


def test_single_sentence_truncation_keeps_the_start():
  out = features.convert_examples([Example(words(*range(10, 20)), None, 0)], TOKENIZER, 5,
                                  False)
  np.testing.assert_array_equal(out["input_ids"], [[CLS, 10, 11, 12, SEP]])


def test_pair_truncation_is_longest_first():
  # Budget 10 - 3 = 7 tokens; a has 8, b has 2: only a is cut, to 5.
  out = features.convert_examples(
      [Example(words(*range(10, 18)), words(20, 21), 0)], TOKENIZER, 10, False)
  np.testing.assert_array_equal(
      out["input_ids"], [[CLS, 10, 11, 12, 13, 14, SEP, 20, 21, SEP]])
  # Both long: a keeps ceil(7 / 2) = 4, b keeps 3.
  out = features.convert_examples(
      [Example(words(*range(10, 16)), words(*range(20, 29)), 0)], TOKENIZER, 10, False)
  np.testing.assert_array_equal(
      out["input_ids"], [[CLS, 10, 11, 12, 13, SEP, 20, 21, 22, SEP]])


def _pop_longest(len_a, len_b, budget):
  """Reference: drop one token at a time from the longer side (b on a tie)."""
  while len_a + len_b > budget:
    if len_a > len_b:
      len_a -= 1
    else:
      len_b -= 1
  return len_a, len_b


def test_truncate_pair_lengths_matches_token_by_token_reference():
  for len_a in range(9):
    for len_b in range(9):
      for budget in range(12):
        assert features.truncate_pair_lengths(len_a, len_b, budget) == _pop_longest(
            len_a, len_b, budget), (len_a, len_b, budget)


def test_shapes_and_dtypes():
  examples = [Example(words(10), words(11, 12), 2), Example(words(13, 14, 15), words(16), 0)]
  out = features.convert_examples(examples, TOKENIZER, 16, is_regression=False)
  assert out["input_ids"].shape == (2, 16) and out["input_ids"].dtype == np.int32
  assert out["labels"].shape == (2,) and out["labels"].dtype == np.int32
  np.testing.assert_array_equal(out["labels"], [2, 0])


def test_regression_labels_are_float32():
  out = features.convert_examples([Example(words(10), words(11), 3.8)], TOKENIZER, 6,
                                  is_regression=True)
  assert out["labels"].dtype == np.float32
  np.testing.assert_allclose(out["labels"], [3.8])


def test_empty_text_still_gets_specials():
  out = features.convert_examples([Example("", "", 0)], TOKENIZER, 5, False)
  np.testing.assert_array_equal(out["input_ids"], [[CLS, SEP, SEP, PAD, PAD]])


def test_unlabeled_examples_have_no_labels_and_mixing_is_an_error():
  out = features.convert_examples([Example(words(10), None, None)], TOKENIZER, 4, False)
  assert set(out) == {"input_ids"}
  with pytest.raises(ValueError, match="1 of 2 examples have no label"):
    features.convert_examples(
        [Example(words(10), None, None), Example(words(11), None, 1)], TOKENIZER, 4, False)


def test_seq_len_too_short_for_specials():
  with pytest.raises(ValueError, match="seq_len=2"):
    features.convert_examples([Example(words(10), words(11), 0)], TOKENIZER, 2, False)
  with pytest.raises(ValueError, match="No examples"):
    features.convert_examples([], TOKENIZER, 8, False)
