"""From start/end logits over windows to one answer per question, as the references do.

For each question: the best span over its windows among the n-best start and end positions
(end >= start, both inside the context, at most max_answer_length tokens, starting where
its window gives the token the most context), scored start + end logit. With unanswerable
questions (v2.0) it is compared with the no-answer score, the smallest [CLS] start + end
over the windows: the question is answered "" when no-answer beats the best span by more
than null_score_threshold.
"""

from typing import NamedTuple, Sequence

import numpy as np

from amos_jax.squad import data
from amos_jax.squad import features

# null_odds of a question whose windows hold no valid span: no-answer always wins.
NO_SPAN_ODDS = 1e9


class Prediction(NamedTuple):
  text: str  # "" for no answer.
  null_odds: float  # No-answer score minus the best span's; > threshold means no answer.
  span_text: str  # The best span, whether or not it was chosen.


def _best_span(start_L, end_L, char_start_L, max_context_L, n_best: int,
               max_answer_length: int) -> tuple[float, int, int] | None:
  """(score, start, end) of the best valid span of one window, or None."""
  starts = np.argsort(-start_L, kind="stable")[:n_best]
  ends = np.argsort(-end_L, kind="stable")[:n_best]
  valid = ((char_start_L[starts] >= 0) & max_context_L[starts])[:, None]
  valid = valid & (char_start_L[ends] >= 0)[None, :]
  length = ends[None, :] - starts[:, None] + 1
  valid &= (length >= 1) & (length <= max_answer_length)
  if not valid.any():
    return None
  scores = np.where(valid, start_L[starts][:, None] + end_L[ends][None, :], -np.inf)
  i, j = np.unravel_index(np.argmax(scores), scores.shape)
  return float(scores[i, j]), int(starts[i]), int(ends[j])


def predict(examples: Sequence[data.Example], eval_features: features.EvalFeatures,
            start_logits_WxL: np.ndarray, end_logits_WxL: np.ndarray, *, n_best: int = 20,
            max_answer_length: int = 30, null_score_threshold: float = 0.0,
            allow_no_answer: bool = True) -> dict[str, Prediction]:
  """{question id: Prediction} for every example (v1.1: allow_no_answer=False)."""
  windows_of = [[] for _ in examples]
  for w, index in enumerate(eval_features.example_index):
    windows_of[index].append(w)
  out = {}
  for example, window_ids in zip(examples, windows_of, strict=True):
    null_score, best, best_window = np.inf, None, None
    for w in window_ids:
      null_score = min(null_score, float(start_logits_WxL[w, features.NO_ANSWER_POSITION]
                                         + end_logits_WxL[w, features.NO_ANSWER_POSITION]))
      span = _best_span(start_logits_WxL[w], end_logits_WxL[w], eval_features.char_start[w],
                        eval_features.max_context[w], n_best, max_answer_length)
      if span is not None and (best is None or span[0] > best[0]):
        best, best_window = span, w
    if best is None:
      out[example.qid] = Prediction("", NO_SPAN_ODDS, "")
      continue
    _, s, e = best
    span_text = example.context[eval_features.char_start[best_window, s]:
                                eval_features.char_end[best_window, e]]
    null_odds = null_score - best[0]
    answered = not allow_no_answer or null_odds <= null_score_threshold
    out[example.qid] = Prediction(span_text if answered else "", null_odds, span_text)
  return out
