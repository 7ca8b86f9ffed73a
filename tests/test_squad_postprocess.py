"""From hand-set start/end logits to answers: span rules, windows, the null-score threshold."""

import numpy as np
import pytest

from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.squad import features
from amos_jax.squad import postprocess
from amos_jax.squad.data import Example
from tests import export_helpers
from tests import helpers

CONTEXT = "Mr. Bennet replied that he had not."


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
  path = export_helpers.train_tokenizer(str(tmp_path_factory.mktemp("tokenizer")))
  return tokenizer_lib.load_tokenizer(path)


def position_of(feats, window, text, context):
  """Input position of the context token that starts `text`."""
  start = context.index(text)
  # Not a whitespace-only piece, whose empty span also starts there.
  return int(np.flatnonzero((feats.char_start[window] == start)
                            & (feats.char_end[window] > start))[0])


def position_ending(feats, window, text, context):
  end = context.index(text) + len(text)
  return int(np.flatnonzero(feats.char_end[window] == end)[0])


def logits_for(feats, spans_and_scores, null=0.0):
  """Start/end logits of -10 everywhere but the given (start, end, score) and [CLS]."""
  start = np.full(feats.input_ids.shape, -10.0, np.float32)
  end = np.full(feats.input_ids.shape, -10.0, np.float32)
  start[:, 0] = end[:, 0] = null / 2
  for window, s, e, score in spans_and_scores:
    start[window, s] = end[window, e] = score / 2
  return start, end


@pytest.fixture(scope="module")
def one_window(tokenizer):
  example = Example("q", "Who replied?", CONTEXT, (), False)
  return example, features.eval_features([example], tokenizer, 64, 16, 16)


def test_the_best_span_maps_back_to_the_exact_text(one_window):
  example, feats = one_window
  s, e = position_of(feats, 0, "Bennet", CONTEXT), position_ending(feats, 0, "replied", CONTEXT)
  start, end = logits_for(feats, [(0, s, e, 8.0)], null=1.0)
  prediction = postprocess.predict([example], feats, start, end)["q"]
  assert prediction.text == prediction.span_text == "Bennet replied"
  assert prediction.null_odds == pytest.approx(1.0 - 8.0)


def test_no_answer_wins_past_the_threshold(one_window):
  example, feats = one_window
  s, e = position_of(feats, 0, "Bennet", CONTEXT), position_ending(feats, 0, "Bennet", CONTEXT)
  start, end = logits_for(feats, [(0, s, e, 2.0)], null=5.0)
  predict = lambda **kw: postprocess.predict([example], feats, start, end, **kw)["q"]
  assert predict().text == "" and predict().span_text == "Bennet"
  assert predict().null_odds == pytest.approx(3.0)
  assert predict(null_score_threshold=3.5).text == "Bennet"
  assert predict(allow_no_answer=False).text == "Bennet"  # SQuAD v1.1.


@pytest.mark.parametrize("case, expected", [
    ("end_before_start", "not"), ("too_long", "Mr"), ("in_the_question", "he")])
def test_invalid_spans_are_never_chosen(one_window, case, expected):
  example, feats = one_window
  start, end = logits_for(feats, [], null=-20.0)
  at = lambda text: position_of(feats, 0, text, CONTEXT)
  ending = lambda text: position_ending(feats, 0, text, CONTEXT)
  # The highest start and end logits form an invalid span; the answer is the best valid one.
  if case == "end_before_start":
    start[0, at("not")], end[0, ending("Mr")], end[0, ending("not")] = 5, 5, 1
  elif case == "too_long":  # Over max_answer_length=5 tokens.
    start[0, at("Mr")], end[0, ending("not")], end[0, ending("Mr")] = 5, 5, 1
  else:  # Positions 1-2 hold the question.
    start[0, 1], end[0, 2], start[0, at("he")], end[0, ending("he")] = 5, 5, 1, 1
  prediction = postprocess.predict([example], feats, start, end, max_answer_length=5)["q"]
  assert prediction.text == expected


def test_the_best_span_over_windows_and_the_smallest_null_score(tokenizer):
  example = Example("q", "Who?", helpers.TEXT, (), False)
  feats = features.eval_features([example], tokenizer, 40, 12, 16)
  assert len(feats.input_ids) > 3
  picks = []
  for text in ("single man", "impatiently"):
    # The window where the answer's first token has its most context scores it.
    window = next(w for w in range(len(feats.input_ids))
                  if (feats.char_start[w] == helpers.TEXT.index(text)).any()
                  and feats.max_context[w, position_of(feats, w, text, helpers.TEXT)])
    picks.append((window, position_of(feats, window, text, helpers.TEXT),
                  position_ending(feats, window, text, helpers.TEXT)))
  assert picks[0][0] != picks[1][0]
  start, end = logits_for(feats, [(*picks[0], 4.0), (*picks[1], 6.0)], null=0.0)
  start[3, 0] = end[3, 0] = -1.5  # The smallest null score over windows is the question's.
  prediction = postprocess.predict([example], feats, start, end)["q"]
  assert prediction.text == "impatiently"
  assert prediction.null_odds == pytest.approx(-3.0 - 6.0)
