"""Loads SQuAD questions from the official JSON files or from a prepared TFDS `squad/<v>`.

Both give the same `Example`s. Bad input fails here, naming the file and question id, rather
than as a wrong label deep in training: a JSON without `data`, a question without an id,
an answer whose `answer_start` does not point at its text in the context.
"""

import json
import os
from typing import NamedTuple

from amos_jax import errors

VERSIONS = ("2.0", "1.1")
SPLIT_FILES = {"train": "train-v{version}.json", "validation": "dev-v{version}.json"}


class Answer(NamedTuple):
  text: str
  start: int  # Character offset of `text` in the context.


class Example(NamedTuple):
  """One question about one context; unanswerable (v2.0) questions have no answers."""
  qid: str
  question: str
  context: str
  answers: tuple[Answer, ...]  # One in train, one or more (all gold ones) in dev.
  is_impossible: bool


def check_answers(example: Example, where: str):
  """Raises ValueError unless every answer's text sits at its answer_start in the context."""
  for answer in example.answers:
    found = example.context[answer.start:answer.start + len(answer.text)]
    if answer.start < 0 or found != answer.text:
      raise errors.InputError(
          f"{where}: question {example.qid!r} has answer {answer.text!r} at answer_start "
          f"{answer.start}, but the context there reads {found!r}.")
  if example.is_impossible and example.answers:
    raise errors.InputError(f"{where}: question {example.qid!r} is_impossible but has answers.")


def _json_answers(qa: dict, where: str) -> tuple[Answer, ...]:
  try:
    return tuple(Answer(str(a["text"]), int(a["answer_start"])) for a in qa.get("answers", ()))
  except (KeyError, TypeError, ValueError) as e:
    raise errors.InputError(f"{where}: question {qa['id']!r} has an answer without text and an "
                            f"integer answer_start ({e!r}).") from None


def parse_json(record, where: str) -> list[Example]:
  """Examples of a parsed SQuAD JSON record; `where` names it in errors."""
  if not isinstance(record, dict) or not isinstance(record.get("data"), list):
    raise errors.InputError(
        f"{where}: expected a SQuAD JSON object with a 'data' list of articles.")
  examples = []
  for a, article in enumerate(record["data"]):
    for p, paragraph in enumerate(article.get("paragraphs", ())):
      context = paragraph.get("context")
      if not isinstance(context, str):
        raise errors.InputError(f"{where}: article {a} paragraph {p} has no 'context' text.")
      for q, qa in enumerate(paragraph.get("qas", ())):
        if not qa.get("id"):
          raise errors.InputError(f"{where}: article {a} paragraph {p} question {q} has no 'id'.")
        if not isinstance(qa.get("question"), str):
          raise errors.InputError(f"{where}: question {qa['id']!r} has no 'question' text.")
        example = Example(str(qa["id"]), qa["question"], context, _json_answers(qa, where),
                          bool(qa.get("is_impossible", False)))
        check_answers(example, where)
        examples.append(example)
  if not examples:
    raise errors.InputError(f"{where}: no questions found.")
  return examples


def load_json(path: str) -> list[Example]:
  """Reads one official SQuAD file (train-v2.0.json, dev-v1.1.json, ...)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"No SQuAD file at {path!r}.")
  try:
    with open(path, encoding="utf-8") as f:
      record = json.load(f)
  except json.JSONDecodeError as e:
    raise errors.InputError(f"{path} is not valid JSON ({e}).") from e
  return parse_json(record, path)


def split_path(data_dir: str, split: str, version: str) -> str:
  """The official file name of a split: data_dir/train-v2.0.json, dev-v2.0.json, ..."""
  return os.path.join(data_dir, SPLIT_FILES[split].format(version=version))


def load_tfds(version: str, split: str, data_dir: str | None = None) -> list[Example]:
  """Reads `squad/v<version>` from a prepared TFDS directory; never downloads."""
  import tensorflow_datasets as tfds  # Heavy; only for this source.
  from amos_jax.data import tf_setup
  tf_setup.hide_gpus_from_tf()
  name = f"squad/v{version}"
  try:
    dataset = tfds.load(name, split=split, data_dir=data_dir, download=False)
  except Exception as e:  # TFDS raises several types for a dataset that is not prepared.
    raise FileNotFoundError(
        f"TFDS {name} split {split!r} is not prepared in {data_dir or 'the default data_dir'} "
        f"({type(e).__name__}: {e}). Prepare it with `tfds build {name}`, or use "
        "source='json' with the official files.") from e
  decode = lambda value: value.decode("utf-8") if isinstance(value, bytes) else str(value)
  examples = []
  for row in tfds.as_numpy(dataset):
    answers = tuple(Answer(decode(text), int(start)) for text, start in
                    zip(row["answers"]["text"], row["answers"]["answer_start"]))
    example = Example(decode(row["id"]), decode(row["question"]), decode(row["context"]),
                      answers, bool(row.get("is_impossible", False)))
    check_answers(example, f"TFDS {name} {split}")
    examples.append(example)
  return examples
