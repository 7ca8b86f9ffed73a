"""SQuAD loading: the official JSON layout, bad input named, TFDS (mocked) giving the same."""

import json

import numpy as np
import pytest

from amos_jax.squad import data
from amos_jax.squad.data import Answer, Example

CONTEXT = "Netherfield Park is let at last."
RECORD = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": CONTEXT, "qas": [
    {"id": "a1", "question": "What is let?", "is_impossible": False,
     "answers": [{"text": "Netherfield Park", "answer_start": 0},
                 {"text": "Park", "answer_start": 12}]},
    {"id": "a2", "question": "Who let it?", "is_impossible": True, "answers": [],
     "plausible_answers": [{"text": "last", "answer_start": 26}]}]}]}]}
EXPECTED = [
    Example("a1", "What is let?", CONTEXT, (Answer("Netherfield Park", 0), Answer("Park", 12)),
            False),
    Example("a2", "Who let it?", CONTEXT, (), True)]


def write(tmp_path, record, name="dev-v2.0.json"):
  path = tmp_path / name
  path.write_text(json.dumps(record))
  return str(path)


def test_official_json_gives_every_question_and_gold_answer(tmp_path):
  assert data.load_json(write(tmp_path, RECORD)) == EXPECTED
  assert data.split_path("/d", "validation", "1.1") == "/d/dev-v1.1.json"


def test_v1_questions_without_is_impossible_are_answerable(tmp_path):
  record = json.loads(json.dumps(RECORD))
  paragraph = record["data"][0]["paragraphs"][0]
  paragraph["qas"] = paragraph["qas"][:1]
  del paragraph["qas"][0]["is_impossible"]
  assert data.load_json(write(tmp_path, record)) == EXPECTED[:1]


def broken(edit):
  record = json.loads(json.dumps(RECORD))
  edit(record)
  return record


@pytest.mark.parametrize("record, message", [
    ({"version": "v2.0"}, "expected a SQuAD JSON object with a 'data' list"),
    ([1, 2], "expected a SQuAD JSON object with a 'data' list"),
    (broken(lambda r: r["data"][0]["paragraphs"][0]["qas"][1].pop("id")),
     "article 0 paragraph 0 question 1 has no 'id'"),
    (broken(lambda r: r["data"][0]["paragraphs"][0]["qas"][0]["answers"][1].update(
        answer_start=11)),
     "question 'a1' has answer 'Park' at answer_start 11, but the context there reads ' Par'"),
    (broken(lambda r: r["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].pop("text")),
     "question 'a1' has an answer without text"),
])
def test_bad_input_is_named(tmp_path, record, message):
  path = write(tmp_path, record)
  with pytest.raises(ValueError, match=message) as error:
    data.load_json(path)
  assert path in str(error.value)


def test_missing_file_and_invalid_json_are_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="No SQuAD file at"):
    data.load_json(str(tmp_path / "train-v2.0.json"))
  path = tmp_path / "dev-v2.0.json"
  path.write_text("{")
  with pytest.raises(ValueError, match="is not valid JSON"):
    data.load_json(str(path))


def test_tfds_squad_v2_gives_the_same_examples(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  import tensorflow as tf

  def as_dataset(self, *args, **kwargs):
    rows = [{"id": e.qid, "title": "t", "context": e.context, "question": e.question,
             "is_impossible": e.is_impossible,
             "answers": {"text": [a.text for a in e.answers],
                         "answer_start": np.array([a.start for a in e.answers], np.int32)},
             "plausible_answers": {"text": [], "answer_start": np.zeros(0, np.int32)}}
            for e in EXPECTED]
    return tf.data.Dataset.from_generator(
        lambda: iter(rows), output_signature=self.info.features.get_tensor_spec())

  with tfds.testing.mock_data(as_dataset_fn=as_dataset):
    assert data.load_tfds("2.0", "validation", str(tmp_path)) == EXPECTED


def test_tfds_unprepared_is_a_clear_error(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises(FileNotFoundError, match="squad/v2.0 split 'train' is not prepared"):
    data.load_tfds("2.0", "train", str(tmp_path))
