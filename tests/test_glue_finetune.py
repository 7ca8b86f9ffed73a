"""GLUE fine-tuning end to end on fake tasks: learning, results, kept export, devices, errors."""

import json
import os
import random
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from amos_jax import config_validation
from amos_jax import errors
from amos_jax import export
from amos_jax.finetune import seeds
from amos_jax.formats import flax_export
from amos_jax.glue import config as config_lib
from amos_jax.glue import evaluate
from amos_jax.glue import finetune
from amos_jax.train import step as train_step_lib
from amos_jax.train import workdir_lock
from configs import glue as glue_configs
from tests import export_helpers
from tests import helpers
from tests import xla_test_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = sorted({w.strip(",.?;").lower() for w in helpers.TEXT.split()} - {"truth", "wife"})
# Quick runs: the tiny test encoder needs a far larger learning rate than the base recipe.
QUICK = dict(seq_len=32, seeds=(0,), num_epochs=2, learning_rate=3e-3, warmup_fraction=0.1,
             eval_batch_size=16)


def sentence(rng, keyword=None):
  words = [rng.choice(WORDS) for _ in range(rng.randint(3, 12))]
  if keyword:
    words.insert(0, keyword)  # Always first: quick to learn for a random tiny encoder.
  return " ".join(words)


def write_tsv(path, header, rows):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    f.write("\t".join(header) + "\n")
    f.writelines("\t".join(map(str, row)) + "\n" for row in rows)


def make_glue_dir(directory, num_train=256, num_dev=64):
  """SST-2, STS-B and MNLI whose labels follow one keyword: separable by the model."""
  rng = random.Random(0)
  for split, count in (("train", num_train), ("dev", num_dev)):
    labels = [rng.randint(0, 1) for _ in range(count)]
    write_tsv(os.path.join(directory, "SST-2", f"{split}.tsv"), ("sentence", "label"),
              [(sentence(rng, ("wife", "truth")[y]), y) for y in labels])
    write_tsv(os.path.join(directory, "STS-B", f"{split}.tsv"),
              ("index", "sentence1", "sentence2", "score"),
              [(i, sentence(rng), sentence(rng, ("wife", "truth")[y]), 5.0 * y)
               for i, y in enumerate(labels)])
  mnli_labels = ("entailment", "neutral", "contradiction")
  for file_name, count in (("train", num_train), ("dev_matched", num_dev),
                           ("dev_mismatched", num_dev)):
    labels = [rng.randint(0, 2) for _ in range(count)]
    write_tsv(os.path.join(directory, "MNLI", f"{file_name}.tsv"),
              ("index", "sentence1", "sentence2", "gold_label"),
              [(i, sentence(rng), sentence(rng, ("wife", "truth", "daughters")[y]),
                mnli_labels[y]) for i, y in enumerate(labels)])
  return directory


@pytest.fixture(scope="module")
def glue_dir(tmp_path_factory):
  return make_glue_dir(str(tmp_path_factory.mktemp("glue")))


def make_config(task, init_checkpoint, glue_dir, **overrides):
  config = glue_configs.get_config(task)
  config.update(dict(init_checkpoint=init_checkpoint, data_dir=glue_dir, **QUICK))
  config.update(overrides)
  return config


@pytest.fixture(scope="module")
def sst2_run(tmp_path_factory, workdir, glue_dir):
  out = str(tmp_path_factory.mktemp("sst2"))
  config = make_config("sst2", workdir, glue_dir, seeds=(0, 1, 2), num_epochs=5)
  return out, finetune.finetune_and_evaluate(config, out)


def test_learns_a_separable_task_and_records_every_seed(sst2_run, workdir):
  out, results = sst2_run
  with open(os.path.join(out, seeds.RESULTS_FILE)) as f:
    assert json.load(f) == json.loads(json.dumps(results))
  assert results["task"] == "sst2" and results["init_kind"] == "pretraining_workdir"
  assert results["init_checkpoint"] == workdir and results["init_step"] == 5
  # The tiny encoder's recipe where the config does not override it.
  assert results["recipe"]["name"] == "tiny_encoder" and results["recipe"]["batch_size"] == 32
  assert results["recipe"]["overridden"] == ["learning_rate", "num_epochs", "warmup_fraction"]
  assert [s["seed"] for s in results["seeds"]] == [0, 1, 2]
  for seed in results["seeds"]:
    assert seed["num_train_steps"] == 5 * (256 // 32)
    assert [r["step"] for r in seed["history"]] == [8, 16, 24, 32, 40]  # Once per epoch.
    assert seed["history"][-1]["train_loss"] < 0.5 * seed["history"][0]["train_loss"]
    assert seed["best"]["metrics"]["validation"]["accuracy"] >= 0.95
    assert seed["checkpoint"] == os.path.join(out, f"seed_{seed['seed']}", "best")
  accuracies = [s["best"]["metrics"]["validation"]["accuracy"] for s in results["seeds"]]
  assert results["median"] == {"validation": {"accuracy": float(np.median(accuracies))}}


def test_a_rerun_trains_only_the_seeds_it_has_not_finished(sst2_run, workdir, glue_dir,
                                                           tmp_path, monkeypatch, caplog):
  out, results = sst2_run
  rerun = str(tmp_path / "rerun")
  shutil.copytree(out, rerun)
  # As if killed while training seed 2: results.json holds seeds 0 and 1.
  finished = [dict(record, checkpoint=os.path.join(rerun, f"seed_{record['seed']}", "best"))
              for record in results["seeds"][:2]]
  seeds.write_json(os.path.join(rerun, seeds.RESULTS_FILE),
                   dict(results, seeds=finished, median=seeds.median(finished)))
  trained = []
  train_seed = seeds._Run.train_seed

  def recording_train_seed(self, seed, *args):
    trained.append(seed)
    return train_seed(self, seed, *args)

  monkeypatch.setattr(seeds._Run, "train_seed", recording_train_seed)
  config = make_config("sst2", workdir, glue_dir, seeds=(0, 1, 2), num_epochs=5)
  resumed = finetune.finetune_and_evaluate(config, rerun)
  assert trained == [2]
  assert resumed["seeds"][:2] == json.loads(json.dumps(finished))
  assert resumed["seeds"][2]["best"] == results["seeds"][2]["best"]  # Deterministic seeds.
  assert resumed["median"] == results["median"]

  # Other weights at the same path and step (an export written again): every seed trains
  # again, and the log says the old results are replaced.
  record = json.loads((tmp_path / "rerun" / seeds.RESULTS_FILE).read_text())
  assert record["init_sha256"] == results["init_sha256"] and len(record["train_sha256"]) == 64
  seeds.write_json(os.path.join(rerun, seeds.RESULTS_FILE), dict(record, init_sha256="0" * 64))
  trained.clear()
  finetune.finetune_and_evaluate(make_config("sst2", workdir, glue_dir, seeds=(0,),
                                             num_epochs=5), rerun)
  assert trained == [0]
  assert "holds results of other settings; this run replaces them" in caplog.text

  # A run of other settings killed in its first seed leaves no record of the old run, whose
  # seed_0/best it was overwriting: rerunning the old command must not keep that seed.
  def killed(self, seed, *args):
    raise KeyboardInterrupt

  monkeypatch.setattr(seeds._Run, "train_seed", killed)
  with pytest.raises(KeyboardInterrupt):
    finetune.finetune_and_evaluate(make_config("sst2", workdir, glue_dir, seeds=(0,),
                                               num_epochs=1), rerun)
  assert not os.path.exists(os.path.join(rerun, seeds.RESULTS_FILE))

  # A damaged results.json is named, not silently replaced.
  with open(os.path.join(rerun, seeds.RESULTS_FILE), "w") as f:
    f.write('{"task": "ss')
  with pytest.raises(errors.InputError, match=f"{rerun}/results.json is not valid JSON.*delete "
                                              "it to train every seed again"):
    finetune.finetune_and_evaluate(make_config("sst2", workdir, glue_dir), rerun)


_SHARE = """
import json, sys
import jax
jax.distributed.initialize(coordinator_address=sys.argv[1], num_processes=2,
                           process_id=int(sys.argv[2]))
from amos_jax.finetune import seeds
# Each process found other records on its own disk; all must use process 0's.
print("SHARED " + json.dumps(seeds.share_from_process_0(
    [{"seed": 3, "host": int(sys.argv[2]), "text": "é" * (1 + int(sys.argv[2]))}])))
"""


def test_every_host_keeps_the_seeds_process_0_found():
  address = helpers.free_localhost_address()
  env = xla_test_flags.subprocess_env()
  processes = [subprocess.Popen([sys.executable, "-c", _SHARE, address, str(i)], cwd=REPO,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for i in range(2)]
  outputs = [p.communicate(timeout=240) for p in processes]
  for process, (_, stderr) in zip(processes, outputs):
    assert process.returncode == 0, stderr[-3000:]
  shared = [line for out, _ in outputs for line in out.splitlines() if line.startswith("SHARED")]
  assert shared == ['SHARED [{"seed": 3, "host": 0, "text": "\\u00e9"}]'] * 2


def test_eval_only_on_the_kept_export_reproduces_the_best_score(sst2_run, glue_dir, tmp_path):
  out, results = sst2_run
  best = results["seeds"][1]
  config = make_config("sst2", best["checkpoint"], glue_dir, eval_only=True)
  evaluated = finetune.finetune_and_evaluate(config, str(tmp_path))
  assert evaluated["metrics"] == best["best"]["metrics"]
  with open(tmp_path / evaluate.EVAL_RESULTS_FILE) as f:
    assert json.load(f)["metrics"] == best["best"]["metrics"]


@pytest.mark.slow
def test_eight_devices_train_exactly_like_one(workdir, glue_dir, tmp_path):
  config = make_config("sst2", workdir, glue_dir, dropout_rate=0.0, num_epochs=1,
                       eval_every_steps=4)
  one = finetune.finetune_and_evaluate(
      config, str(tmp_path / "one"), mesh=train_step_lib.make_mesh(jax.devices()[:1]))
  eight = finetune.finetune_and_evaluate(config, str(tmp_path / "eight"))
  assert jax.device_count() == 8
  for a, b in zip(one["seeds"][0]["history"], eight["seeds"][0]["history"], strict=True):
    np.testing.assert_allclose(a["train_loss"], b["train_loss"], rtol=1e-5)
    assert a["metrics"] == b["metrics"]
  params = [flax_export.read_params_file(os.path.join(r["seeds"][0]["checkpoint"], flax_export.PARAMS_FILE))
            for r in (one, eight)]
  for x, y in zip(*map(jax.tree_util.tree_leaves, params), strict=True):
    np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)


def test_regression_task_from_an_export(workdir, glue_dir, tmp_path):
  exported = export.export_checkpoint(workdir, str(tmp_path / "export"))
  results = finetune.finetune_and_evaluate(
      make_config("sts-b", exported, glue_dir, num_epochs=5, batch_size=16),
      str(tmp_path / "out"))
  assert results["init_kind"] == "export" and results["recipe"]["batch_size"] == 16
  metrics = results["seeds"][0]["best"]["metrics"]["validation"]
  assert sorted(metrics) == ["pearson", "spearman"]
  assert metrics["spearman"] > 0.8


def test_mnli_scores_matched_and_mismatched(workdir, glue_dir, tmp_path):
  results = finetune.finetune_and_evaluate(
      make_config("mnli", workdir, glue_dir, num_epochs=1, random_init=True), str(tmp_path))
  assert results["init_kind"] == "random_init"
  assert sorted(results["median"]) == ["validation_matched", "validation_mismatched"]


@pytest.mark.parametrize("model_overrides, vocab_size, message", [
    (dict(hidden_size=32), None,
     r"checkpoints step 5: '.*' has shape \(.*\) but .*config.json's model needs \(.*\)"),
    ({}, 256, "has 128 pieces but config.model.vocab_size is 256"),
])
def test_init_checkpoint_of_another_size_fails_clearly(tmp_path, tokenizer_path, glue_dir,
                                                       model_overrides, vocab_size, message):
  directory = export_helpers.make_pretraining_workdir(str(tmp_path / "run"), tokenizer_path,
                                                      **model_overrides)
  # config.json describes a model other than the one the checkpoint holds.
  config_path = os.path.join(directory, "config.json")
  with open(config_path) as f:
    record = json.load(f)
  record["model"].update(hidden_size=64, vocab_size=vocab_size or 128)
  with open(config_path, "w") as f:
    json.dump(record, f)
  with pytest.raises(ValueError, match=message):
    finetune.finetune_and_evaluate(make_config("sst2", directory, glue_dir), str(tmp_path))


def test_init_checkpoint_step_chooses_the_checkpoint(workdir, glue_dir, tmp_path):
  # The workdir holds step 5 only: asking for another fails before any training.
  config = make_config("sst2", workdir, glue_dir, init_checkpoint_step=7)
  with pytest.raises(FileNotFoundError, match=r"No checkpoint of step 7 .* holds steps \[5\]"):
    finetune.finetune_and_evaluate(config, str(tmp_path))


def test_missing_column_is_named(workdir, tmp_path):
  write_tsv(str(tmp_path / "SST-2" / "train.tsv"), ("text", "label"), [("a b", 1)])
  with pytest.raises(ValueError, match="missing column.*'sentence'"):
    finetune.finetune_and_evaluate(make_config("sst2", workdir, str(tmp_path)),
                                   str(tmp_path / "out"))


@pytest.mark.parametrize("overrides, message", [
    (dict(batch_size=12), "config.batch_size=12: expected a positive multiple of the 8"),
    (dict(data_dir=""), "config.data_dir='': expected the GLUE download directory"),
    (dict(seeds=()), "config.seeds=()"),
    (dict(source="csv"), "config.source='csv'"),
    (dict(init_checkpoint_step=-1), "config.init_checkpoint_step=-1: expected 0 or more"),
])
def test_bad_config_values_are_named(overrides, message):
  config = make_config("sst2", "/some/checkpoint", "/some/glue", **overrides)
  with pytest.raises(config_validation.ConfigError, match=message):
    config_lib.validate(config, 8)


def test_unknown_task_and_key_are_named():
  config = make_config("sst2", "/ckpt", "/glue")
  config.learning_rte = 1.0
  with pytest.raises(config_validation.ConfigError, match="config.learning_rte"):
    config_lib.validate(config, 8)
  config = make_config("sst2", "/ckpt", "/glue")
  config.task = "sst3"
  with pytest.raises(config_validation.ConfigError, match="Unknown GLUE task 'sst3'"):
    config_lib.validate(config, 8)


def test_cli_fine_tunes_with_the_issue_command(workdir, glue_dir, tmp_path):
  out = str(tmp_path / "out")
  command = [sys.executable, "-m", "amos_jax.main", f"--config={REPO}/configs/glue.py:sst2",
             f"--config.init_checkpoint={workdir}", f"--workdir={out}",
             f"--config.data_dir={glue_dir}", "--config.seeds=(0,)", "--config.num_epochs=1",
             "--config.learning_rate=3e-3", "--config.seq_len=32"]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(out, seeds.RESULTS_FILE)) as f:
    results = json.load(f)
  assert results["task"] == "sst2" and results["seeds"][0]["num_train_steps"] == 8
  assert os.path.isfile(os.path.join(out, "seed_0", "best", flax_export.PARAMS_FILE))
  summary = result.stderr[result.stderr.index("Fine-tuning sst2 finished: 1 seed(s) x 8 steps"):]
  assert f"  Results:           {out}/results.json\n" in summary
  assert f"--config.eval_only=True --config.init_checkpoint={out}/seed_0/best" in summary


def test_a_second_run_into_the_same_workdir_fails_at_once(workdir, glue_dir, tmp_path):
  out = str(tmp_path / "out")
  os.makedirs(out)
  with workdir_lock.hold(out):
    with pytest.raises(workdir_lock.WorkdirInUseError, match=f"in use by another run \\(pid "
                                                             f"{os.getpid()} on host "):
      finetune.finetune_and_evaluate(make_config("sst2", workdir, glue_dir), out)
  assert not os.path.exists(os.path.join(out, seeds.RESULTS_FILE))
