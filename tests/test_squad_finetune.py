"""SQuAD fine-tuning end to end on synthetic questions: learning, files, export, CLI, devices."""

import json
import os
import random
import subprocess
import sys

import jax
import numpy as np
import pytest

from amos_jax import config_validation
from amos_jax import inference
from amos_jax.finetune import seeds
from amos_jax.squad import config as config_lib
from amos_jax.squad import data
from amos_jax.squad import finetune
from amos_jax.squad import metrics
from amos_jax.train import step as train_step_lib
from configs import squad as squad_configs
from tests import helpers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Answers are runs of these words, which no context holds otherwise (single SentencePiece
# pieces of the test tokenizer); an unanswerable question's context has none of them.
ANSWER_WORDS = ("acknowledged", "considered", "cried", "bennet")
FILLER = sorted({w.strip(",.?;").lower() for w in helpers.TEXT.split()} - set(ANSWER_WORDS))
QUICK = dict(seq_len=48, doc_stride=16, max_query_length=8, seeds=(0,), eval_batch_size=16)


def synthetic_squad(num_questions: int, seed: int) -> dict:
  """SQuAD v2.0 JSON: one question per context, a third unanswerable."""
  rng = random.Random(seed)
  paragraphs = []
  for q in range(num_questions):
    words = [rng.choice(FILLER) for _ in range(rng.randint(6, 16))]
    answers, impossible = [], q % 3 == 0
    if not impossible:
      where = rng.randint(0, len(words))
      span = " ".join(rng.choice(ANSWER_WORDS) for _ in range(rng.randint(1, 3)))
      prefix = " ".join(words[:where])
      context = " ".join(filter(None, [prefix, span, " ".join(words[where:])])) + "."
      answers = [{"text": span, "answer_start": len(prefix) + 1 if prefix else 0}]
    else:
      context = " ".join(words) + "."
    paragraphs.append({"context": context.capitalize() if not answers or answers[0][
        "answer_start"] else context, "qas": [{
            "id": f"q{seed}_{q}", "question": "What was said of him?", "answers": answers,
            "is_impossible": impossible}]})
  return {"version": "v2.0", "data": [{"title": "synthetic", "paragraphs": paragraphs}]}


def write_squad_dir(directory, num_train=384, num_dev=96):
  """v2.0 files, and v1.1 files holding their answerable questions."""
  os.makedirs(directory, exist_ok=True)
  for split, count, seed in (("train", num_train, 0), ("validation", num_dev, 1)):
    record = synthetic_squad(count, seed)
    with open(data.split_path(directory, split, "2.0"), "w") as f:
      json.dump(record, f)
    for paragraph in record["data"][0]["paragraphs"]:
      paragraph["qas"] = [qa for qa in paragraph["qas"] if not qa.pop("is_impossible")]
    with open(data.split_path(directory, split, "1.1"), "w") as f:
      json.dump(record, f)
  return directory


@pytest.fixture(scope="module")
def squad_dir(tmp_path_factory):
  return write_squad_dir(str(tmp_path_factory.mktemp("squad")))


def make_config(init_checkpoint, squad_dir, **overrides):
  config = squad_configs.get_config()
  config.update(dict(init_checkpoint=init_checkpoint, data_dir=squad_dir, **QUICK))
  config.update(overrides)
  return config


@pytest.fixture(scope="module")
def squad_run(tmp_path_factory, workdir, squad_dir):
  out = str(tmp_path_factory.mktemp("squad_out"))
  return out, finetune.finetune_and_evaluate(make_config(workdir, squad_dir, num_epochs=3), out)


def test_synthetic_answers_are_learned_and_every_file_is_written(squad_run, squad_dir):
  out, results = squad_run
  with open(os.path.join(out, seeds.RESULTS_FILE)) as f:
    assert json.load(f) == json.loads(json.dumps(results))
  assert results["task"] == "squad_v2.0" and results["recipe"]["name"] == "tiny_encoder"
  best = results["seeds"][0]["best"]["metrics"]["validation"]
  assert best["f1"] > 80 and best["HasAns_total"] == 64 and best["NoAns_total"] == 32
  assert results["median"]["validation"]["f1"] == best["f1"]
  seed_dir = os.path.join(out, "seed_0")
  with open(os.path.join(seed_dir, finetune.PREDICTIONS_FILE)) as f:
    predictions = json.load(f)
  with open(os.path.join(seed_dir, finetune.NULL_ODDS_FILE)) as f:
    null_odds = json.load(f)
  dev = data.load_json(data.split_path(squad_dir, "validation", "2.0"))
  assert set(predictions) == set(null_odds) == {e.qid for e in dev}
  # The kept files rescore to the recorded best, as the official script would read them.
  assert metrics.evaluate(dev, predictions, null_odds, 0.0) == pytest.approx(best)



def test_the_kept_export_answers_as_dev_was_scored(squad_run, squad_dir, tmp_path):
  out, results = squad_run
  best = results["seeds"][0]["checkpoint"]
  with open(os.path.join(out, "seed_0", finetune.PREDICTIONS_FILE)) as f:
    predictions = json.load(f)
  qa = inference.load(best)
  dev = data.load_json(data.split_path(squad_dir, "validation", "2.0"))
  options = dict(seq_len=QUICK["seq_len"], doc_stride=QUICK["doc_stride"],
                 max_query_length=QUICK["max_query_length"])
  for example in dev[:12]:
    assert qa.answer(example.question, example.context, **options).text == predictions[
        example.qid]
  with pytest.raises(ValueError, match="use answer"):
    qa.predict(["a sentence"])
  evaluated = finetune.finetune_and_evaluate(
      make_config(best, squad_dir, eval_only=True), str(tmp_path))
  assert evaluated["metrics"] == results["seeds"][0]["best"]["metrics"]


def test_v1_on_eight_devices_trains_like_one_with_dropout(workdir, squad_dir, tmp_path):
  config = make_config(workdir, squad_dir, version="1.1", num_epochs=1, max_train_examples=64,
                       max_eval_examples=24, eval_every_steps=1)
  one = finetune.finetune_and_evaluate(
      config, str(tmp_path / "one"), mesh=train_step_lib.make_mesh(jax.devices()[:1]))
  eight = finetune.finetune_and_evaluate(config, str(tmp_path / "eight"))
  assert jax.device_count() == 8 and config.dropout_rate > 0
  for a, b in zip(one["seeds"][0]["history"], eight["seeds"][0]["history"], strict=True):
    np.testing.assert_allclose(a["train_loss"], b["train_loss"], rtol=1e-5)
    assert a["metrics"]["validation"] == pytest.approx(b["metrics"]["validation"], abs=1e-3)
  # v1.1 has no unanswerable questions: always a span, no NoAns scores or null odds.
  assert eight["task"] == "squad_v1.1" and "NoAns_total" not in a["metrics"]["validation"]
  seed_dir = tmp_path / "eight" / "seed_0"
  assert (seed_dir / finetune.PREDICTIONS_FILE).is_file()
  assert not (seed_dir / finetune.NULL_ODDS_FILE).exists()
  with open(seed_dir / finetune.PREDICTIONS_FILE) as f:
    assert all(json.load(f).values())


def test_cli_fine_tunes_with_the_issue_command(workdir, squad_dir, tmp_path):
  out = str(tmp_path / "out")
  command = [sys.executable, "-m", "amos_jax.main", f"--config={REPO}/configs/squad.py",
             f"--config.init_checkpoint={workdir}", f"--config.data_dir={squad_dir}",
             f"--workdir={out}", "--config.seeds=(0,)", "--config.num_epochs=1",
             "--config.max_train_examples=64", "--config.seq_len=48", "--config.doc_stride=16",
             "--config.max_query_length=8", "--config.eval_batch_size=16"]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(out, seeds.RESULTS_FILE)) as f:
    results = json.load(f)
  assert results["task"] == "squad_v2.0" and results["seeds"][0]["num_train_steps"] == 2
  for name in (finetune.PREDICTIONS_FILE, finetune.NULL_ODDS_FILE, "best/params.msgpack"):
    assert os.path.isfile(os.path.join(out, "seed_0", name))


@pytest.mark.parametrize("overrides, message", [
    (dict(doc_stride=64), "config.doc_stride=64: expected at most the 37 context tokens"),
    (dict(max_query_length=45), "config.max_query_length=45: expected at most seq_len - 4"),
    (dict(version="3.0"), "config.version='3.0': expected one of 2.0, 1.1"),
    (dict(data_dir=""), "config.data_dir='': expected the directory holding train-v2.0.json"),
    (dict(batch_size=12), "config.batch_size=12: expected a positive multiple of the 8"),
])
def test_bad_config_values_are_named(overrides, message):
  config = make_config("/some/checkpoint", "/some/squad", **overrides)
  with pytest.raises(config_validation.ConfigError, match=message):
    config_lib.validate(config, 8)
