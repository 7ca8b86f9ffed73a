"""The official SQuAD 2.0 evaluation (v1.1 is its special case with no unanswerable questions).

As the official evaluate-v2.0.py defines it: answers are normalised (lower case, no
punctuation, no articles a/an/the, single spaces); a question scores the maximum exact match
and token F1 over its gold answers, and an unanswerable question has the single gold answer
"". Reported in percent, overall and split into HasAns / NoAns, and, given no-answer scores
(null_odds), `best_exact` / `best_f1` at the no-answer thresholds that maximise them.
"""

import collections
import re
import string
from typing import Mapping, Sequence

from amos_jax.squad import data

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
  """Lower case, punctuation removed, articles removed, whitespace collapsed."""
  text = "".join(char for char in text.lower() if char not in _PUNCTUATION)
  return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(gold: str, predicted: str) -> int:
  return int(normalize_answer(gold) == normalize_answer(predicted))


def f1_score(gold: str, predicted: str) -> float:
  """Token F1 of the normalised answers; 1 when both are empty, 0 when only one is."""
  gold_tokens = normalize_answer(gold).split()
  predicted_tokens = normalize_answer(predicted).split()
  if not gold_tokens or not predicted_tokens:
    return float(gold_tokens == predicted_tokens)
  common = sum((collections.Counter(gold_tokens) & collections.Counter(predicted_tokens))
               .values())
  if common == 0:
    return 0.0
  precision, recall = common / len(predicted_tokens), common / len(gold_tokens)
  return 2 * precision * recall / (precision + recall)


def gold_answers(example: data.Example) -> list[str]:
  """Answer texts that normalise to something; [""] for an unanswerable question."""
  return [a.text for a in example.answers if normalize_answer(a.text)] or [""]


def _best_threshold(examples, predictions, scores, null_odds) -> tuple[float, float]:
  """(best score in percent, its threshold) over no-answer thresholds.

  Start from answering nothing (every unanswerable question right), then answer questions
  in increasing order of null_odds, each changing the total by its own score (an
  unanswerable question answered with text loses its point).
  """
  total = sum(not _has_answer(e) for e in examples)
  best, best_threshold = total, 0.0
  for example in sorted(examples, key=lambda e: null_odds[e.qid]):
    if _has_answer(example):
      total += scores[example.qid]
    elif predictions[example.qid]:
      total -= 1
    if total > best:
      best, best_threshold = total, null_odds[example.qid]
  return 100.0 * best / len(examples), float(best_threshold)


def _has_answer(example: data.Example) -> bool:
  """As the official script splits HasAns / NoAns: by whether any answer is listed."""
  return bool(example.answers)


def _percent(values: Sequence[float]) -> float:
  return 100.0 * sum(values) / len(values)


def evaluate(examples: Sequence[data.Example], predictions: Mapping[str, str],
             null_odds: Mapping[str, float] | None = None,
             null_odds_threshold: float = 1.0) -> dict[str, float]:
  """The official metrics of `predictions` ({question id: text}) on `examples`.

  With `null_odds`, questions whose odds exceed null_odds_threshold count as answered ""
  (the official --na-prob-thresh, default 1.0), and best_exact / best_f1 are added.
  """
  if not examples:
    raise ValueError("No SQuAD questions to evaluate.")
  missing = [e.qid for e in examples if e.qid not in predictions]
  if missing:
    raise ValueError(f"No prediction for {len(missing)} question(s), e.g. {missing[0]!r}.")
  exact = {e.qid: max(exact_match(g, predictions[e.qid]) for g in gold_answers(e))
           for e in examples}
  f1 = {e.qid: max(f1_score(g, predictions[e.qid]) for g in gold_answers(e)) for e in examples}
  thresholded_exact, thresholded_f1 = dict(exact), dict(f1)
  if null_odds is not None:
    for e in examples:
      if null_odds[e.qid] > null_odds_threshold:
        thresholded_exact[e.qid] = thresholded_f1[e.qid] = float(not _has_answer(e))
  results = {"exact": _percent(list(thresholded_exact.values())),
             "f1": _percent(list(thresholded_f1.values())), "total": len(examples)}
  for name, subset in (("HasAns", [e for e in examples if _has_answer(e)]),
                       ("NoAns", [e for e in examples if not _has_answer(e)])):
    if subset:
      results[f"{name}_exact"] = _percent([thresholded_exact[e.qid] for e in subset])
      results[f"{name}_f1"] = _percent([thresholded_f1[e.qid] for e in subset])
      results[f"{name}_total"] = len(subset)
  if null_odds is not None:
    results["best_exact"], results["best_exact_thresh"] = _best_threshold(
        examples, predictions, exact, null_odds)
    results["best_f1"], results["best_f1_thresh"] = _best_threshold(
        examples, predictions, f1, null_odds)
  return results
