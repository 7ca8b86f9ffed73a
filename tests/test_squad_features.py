"""SQuAD windows: character offsets, stride, no-answer labels, max context, bad input."""

import numpy as np
import pytest

from amos_jax import special_tokens
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.squad import features
from amos_jax.squad.data import Answer, Example
from tests import export_helpers
from tests import helpers

QUESTION = "Who said it?"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
  path = export_helpers.train_tokenizer(str(tmp_path_factory.mktemp("tokenizer")))
  return tokenizer_lib.load_tokenizer(path)


def example_with_answer(context, answer_text, occurrence=0):
  start = -1
  for _ in range(occurrence + 1):
    start = context.index(answer_text, start + 1)
  return Example("q", QUESTION, context, (Answer(answer_text, start),), False)


def test_offsets_map_every_token_back_to_the_text(tokenizer):
  text = "It is  a truth,\tMr. Bennet's wife  café\u00a0x."
  ids, spans = tokenizer.encode_with_offsets(text)
  assert ids == tokenizer.encode(text)
  assert "".join(text[s:e] for s, e in spans) == "".join(text.split())
  assert all(0 <= s <= e <= len(text) for s, e in spans)
  assert [s for s, _ in spans] == sorted(s for s, _ in spans)


def test_train_labels_point_at_the_answer_tokens(tokenizer):
  context = helpers.TEXT[:200]
  example = example_with_answer(context, "single man")
  feats = features.train_features([example], tokenizer, 128, 64, 64)
  start, end = feats["start_positions"][0], feats["end_positions"][0]
  assert start > len(tokenizer.encode(QUESTION)) + 1  # In the context, after the question.
  assert tokenizer.decode(feats["input_ids"][0, start:end + 1]).strip() == "single man"


def test_windows_cover_a_long_context_with_the_stride(tokenizer):
  context = helpers.TEXT
  example = example_with_answer(context, "Netherfield Park")
  seq_len, stride = 40, 12
  tokenized = features.tokenize(tokenizer, example, 64)
  room = features.window_room(len(tokenized.question_ids), seq_len, tokenizer.special)
  windows = features.windows(tokenized, seq_len, stride, "q", tokenizer.special)
  assert [w.context_start for w in windows] == list(range(0, stride * len(windows), stride))
  assert windows[-1].context_start + windows[-1].num_context == len(tokenized.context_ids)
  assert windows[-2].context_start + room < len(tokenized.context_ids)  # No extra window.
  for window in windows:
    assert len(window.input_ids) <= seq_len
    assert window.input_ids[0] == special_tokens.CLS_ID
    assert window.input_ids[window.context_offset - 1] == special_tokens.SEP_ID
    assert window.input_ids[-1] == special_tokens.SEP_ID
  # Windows holding the whole answer point at it; all others are no-answer at [CLS].
  feats = features.train_features([example], tokenizer, seq_len, stride, 64)
  answered = feats["start_positions"] > 0
  assert 1 <= answered.sum() < len(windows)
  for row in np.flatnonzero(answered):
    span = feats["input_ids"][row, feats["start_positions"][row]:feats["end_positions"][row] + 1]
    assert tokenizer.decode(span).strip() == "Netherfield Park"
  assert not feats["end_positions"][~answered].any()


def test_unanswerable_questions_are_labelled_at_cls_in_every_window(tokenizer):
  example = Example("q", QUESTION, helpers.TEXT, (), True)
  feats = features.train_features([example], tokenizer, 40, 12, 64)
  assert len(feats["input_ids"]) > 1
  assert not feats["start_positions"].any() and not feats["end_positions"].any()


def test_eval_windows_map_context_tokens_to_characters_and_max_context(tokenizer):
  example = example_with_answer(helpers.TEXT, "Netherfield Park")
  feats = features.eval_features([example], tokenizer, 40, 12, 64)
  for w in range(len(feats.input_ids)):
    on_context = feats.char_start[w] >= 0
    assert not on_context[0] and not on_context[feats.input_ids[w] == special_tokens.SEP_ID].any()
    assert not (feats.max_context[w] & ~on_context).any()
  # Every context token has its most context in exactly one window.
  assert feats.max_context.sum() == len(tokenizer.encode(helpers.TEXT))
  assert features.max_context_mask([0, 4, 8], 6, 14).sum(axis=0).tolist() == [1] * 14
  # Token 5 sits in windows [0, 6) and [4, 10): min(5, 0) context in the first, min(1, 4) in
  # the second.
  assert features.max_context_mask([0, 4], 6, 10)[:, 5].tolist() == [False, True]


def test_a_stride_longer_than_a_window_is_an_error_naming_the_question(tokenizer):
  example = Example("q-17", QUESTION, helpers.TEXT, (), True)
  with pytest.raises(ValueError, match="'q-17'.*doc_stride=64 skips tokens"):
    features.train_features([example], tokenizer, 40, 64, 64)
  short = Example("q-18", QUESTION, "Mr. Bennet replied.", (), True)
  assert len(features.train_features([short], tokenizer, 40, 64, 64)["input_ids"]) == 1
  with pytest.raises(ValueError, match="'q-19': no room for context"):
    features.train_features([short._replace(qid="q-19")], tokenizer, 6, 1, 64)
