"""Scores prediction files as the official SQuAD 2.0 script does (squad/metrics.py).

python -m amos_jax.squad.evaluate --data_file=dev-v2.0.json \
  --predictions=OUT/seed_0/predictions.json --null_odds=OUT/seed_0/null_odds.json
With --always_no_answer instead of --predictions it scores the baseline that answers ""
to every question (for v2.0 dev, the share of unanswerable questions).
"""

import json

from amos_jax import errors
from amos_jax.squad import data
from amos_jax.squad import metrics


def _read(path: str) -> dict:
  with open(path, encoding="utf-8") as f:
    record = json.load(f)
  if not isinstance(record, dict):
    raise errors.InputError(f"{path}: expected a JSON object of question id -> value.")
  return record


def evaluate_files(data_file: str, predictions_file: str | None = None,
                   null_odds_file: str | None = None, null_odds_threshold: float = 1.0,
                   always_no_answer: bool = False) -> dict[str, float]:
  """The official metrics of a predictions file (or of answering "" everywhere)."""
  examples = data.load_json(data_file)
  if always_no_answer == bool(predictions_file):
    raise errors.InputError("Pass either a predictions file or always_no_answer.")
  predictions = ({e.qid: "" for e in examples} if always_no_answer
                 else _read(predictions_file))
  null_odds = _read(null_odds_file) if null_odds_file else None
  return metrics.evaluate(examples, predictions, null_odds, null_odds_threshold)


def _main():
  from absl import app, flags
  flags.DEFINE_string("data_file", None, "Official SQuAD JSON with the gold answers.")
  flags.DEFINE_string("predictions", None, "JSON of question id -> answer text.")
  flags.DEFINE_string("null_odds", None, "JSON of question id -> no-answer score (v2.0).")
  flags.DEFINE_float("null_odds_threshold", 1.0, "Above it a question counts as answered \"\".")
  flags.DEFINE_bool("always_no_answer", False, "Score answering \"\" to every question.")
  flags.mark_flag_as_required("data_file")

  def main(argv):
    del argv
    flag = flags.FLAGS
    print(json.dumps(evaluate_files(flag.data_file, flag.predictions, flag.null_odds,
                                    flag.null_odds_threshold, flag.always_no_answer),
                     indent=2))

  app.run(main)


if __name__ == "__main__":
  _main()
