"""The official SQuAD 2.0 metric against hand-computed cases."""

import json

import pytest

from amos_jax.squad import metrics
from amos_jax.squad.data import Answer, Example


def question(qid, *answers):
  return Example(qid, "?", "", tuple(Answer(a, 0) for a in answers), not answers)


# q1 has two gold answers, q2 one; q3 and q4 are unanswerable.
EXAMPLES = [question("q1", "Denver Broncos", "the Broncos"),
            question("q2", "Carolina Panthers"), question("q3"), question("q4")]
PREDICTIONS = {"q1": "Broncos", "q2": "Panthers team", "q3": "", "q4": "Santa Clara"}


@pytest.mark.parametrize("text, normalized", [
    ("The  Cat's, a hat!", "cats hat"), ("An apple\tthe end.", "apple end"),
    ("theatre", "theatre"), ("", "")])
def test_normalization_drops_case_punctuation_articles_and_extra_space(text, normalized):
  assert metrics.normalize_answer(text) == normalized


def test_f1_of_token_overlap():
  # gold {cat, sat}, predicted {cat, sat, on, mat}: precision 1/2, recall 1.
  assert metrics.f1_score("the cat sat", "cat sat on a mat") == pytest.approx(2 / 3)
  assert metrics.f1_score("", "") == 1.0 and metrics.f1_score("", "a cat") == 0.0
  assert metrics.f1_score("the", "") == 1.0  # Both normalise to nothing.
  assert metrics.exact_match("The Broncos!", "broncos")


def test_max_over_gold_answers_and_unanswerable_questions():
  # q1: "Broncos" matches "the Broncos" exactly; q2: F1 1/2; q3 right (""); q4 wrong.
  assert metrics.evaluate(EXAMPLES, PREDICTIONS) == pytest.approx({
      "exact": 50.0, "f1": 62.5, "total": 4,
      "HasAns_exact": 50.0, "HasAns_f1": 75.0, "HasAns_total": 2,
      "NoAns_exact": 50.0, "NoAns_f1": 50.0, "NoAns_total": 2})


def test_no_answer_threshold_and_best_thresholds():
  null_odds = {"q1": -3.0, "q2": 0.2, "q3": 0.5, "q4": 5.0}
  results = metrics.evaluate(EXAMPLES, PREDICTIONS, null_odds, 1.0)
  # Only q4's odds pass 1.0: it counts as answered "", which is right.
  assert results["exact"] == 75.0 and results["f1"] == 87.5
  assert results["NoAns_exact"] == 100.0 and results["HasAns_f1"] == 75.0
  # Answering in order of odds from none answered (2 points): q1 +1 (best exact, 3 of 4 at
  # -3.0), q2 +0.5 F1 (best F1, 3.5 of 4 at 0.2), q3 0, q4 -1.
  assert (results["best_exact"], results["best_exact_thresh"]) == (75.0, -3.0)
  assert (results["best_f1"], results["best_f1_thresh"]) == (87.5, 0.2)


def test_a_gold_answer_that_normalises_to_nothing_counts_as_empty():
  examples = [question("q", "The")]
  assert metrics.evaluate(examples, {"q": ""})["exact"] == 100.0
  assert metrics.evaluate(examples, {"q": ""})["HasAns_total"] == 1  # Listed, so HasAns.


def test_missing_prediction_is_named():
  with pytest.raises(ValueError, match="No prediction for 1 question.*'q4'"):
    metrics.evaluate(EXAMPLES, {k: v for k, v in PREDICTIONS.items() if k != "q4"})


def test_prediction_files_and_the_always_no_answer_baseline(tmp_path):
  from amos_jax.squad import evaluate  # The file-level entry point over this metric.
  paragraph = {"context": "Mr. Bennet made no answer.", "qas": [
      {"id": "a", "question": "Who?", "answers": [{"text": "Mr. Bennet", "answer_start": 0}]},
      {"id": "b", "question": "Why?", "answers": [], "is_impossible": True},
      {"id": "c", "question": "When?", "answers": [], "is_impossible": True}]}
  data_file = tmp_path / "dev.json"
  data_file.write_text(json.dumps({"data": [{"paragraphs": [paragraph]}]}))
  baseline = evaluate.evaluate_files(str(data_file), always_no_answer=True)
  assert baseline["exact"] == baseline["f1"] == pytest.approx(200 / 3)
  predictions = tmp_path / "predictions.json"
  predictions.write_text(json.dumps({"a": "Bennet", "b": "", "c": "no answer"}))
  scored = evaluate.evaluate_files(str(data_file), str(predictions))
  # a: "bennet" is not "mr bennet" (F1 2/3); b right; c wrong.
  assert scored["exact"] == pytest.approx(100 / 3) and scored["NoAns_exact"] == 50.0
  assert scored["f1"] == pytest.approx(100 * (2 / 3 + 1) / 3)
  with pytest.raises(ValueError, match="either a predictions file or always_no_answer"):
    evaluate.evaluate_files(str(data_file))
