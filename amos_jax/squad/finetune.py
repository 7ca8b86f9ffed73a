"""SQuAD fine-tuning: `finetune_and_evaluate(config, workdir)`, callable from a notebook.

The SQuAD task for the shared seeds loop (amos_jax.finetune.seeds): a SpanExtractor, the
mean of the start and end cross-entropies, dev scored with the official metric after
post-processing, a span export. Besides results.json and seed_<s>/best, each seed keeps the
dev predictions of its best evaluation as the official script reads them:
seed_<s>/predictions.json (question id -> answer text, "" for no answer) and, for v2.0,
seed_<s>/null_odds.json (question id -> no-answer score minus best span score).
"""

import dataclasses
import logging
import os

import jax
import ml_collections
import numpy as np
import optax

from amos_jax import errors
from amos_jax.finetune import recipes
from amos_jax.finetune import seeds
from amos_jax.formats import encoder_tree
from amos_jax.formats import registry
from amos_jax.models import span
from amos_jax.squad import config as config_lib
from amos_jax.squad import data
from amos_jax.squad import features
from amos_jax.squad import metrics
from amos_jax.squad import postprocess
from amos_jax.train import step as train_step_lib

# AMOS's SQuAD recipe for base-size encoders (narrower ones: finetune/recipes.py).
RECIPE = recipes.Recipe(batch_size=16, learning_rate=2e-5, num_epochs=3, warmup_fraction=0.1)
PREDICTIONS_FILE = "predictions.json"
NULL_ODDS_FILE = "null_odds.json"
EVAL_RESULTS_FILE = "eval_results.json"
SPLIT = "validation"


def task_info(version: str) -> encoder_tree.TaskInfo:
  """What a fine-tuned SQuAD export records as its task."""
  return encoder_tree.TaskInfo(f"squad_v{version}", ("start", "end"), encoder_tree.SPAN_HEAD)


def span_losses(start_logits_BxL, end_logits_BxL, batch):
  """Mean of the start and end cross-entropies per example."""
  start = optax.softmax_cross_entropy_with_integer_labels(start_logits_BxL,
                                                          batch["start_positions"])
  end = optax.softmax_cross_entropy_with_integer_labels(end_logits_BxL, batch["end_positions"])
  return (start + end) / 2


@dataclasses.dataclass(frozen=True, eq=False)
class SquadTask:
  """SQuAD of one version and its dev questions, as the seeds loop takes a task."""
  config: ml_collections.ConfigDict
  examples: list  # Dev data.Examples.
  eval_features: features.EvalFeatures
  primary_split = SPLIT
  primary_metric = "f1"

  @property
  def name(self) -> str:
    return task_info(self.config.version).name

  def build_model(self, model_config):
    return span.SpanExtractor(model_config)

  def example_losses(self, outputs, batch):
    return span_losses(*outputs, batch)

  def evaluate(self, predict_fn):
    start_logits, end_logits = predict_fn(self.eval_features.input_ids)
    return score(self.config, self.examples, self.eval_features, start_logits, end_logits)

  def export(self, params, model_config, tokenizer, out_dir):
    registry.write_export(params, model_config, tokenizer, out_dir,
                          task=task_info(self.config.version), overwrite=True)


def score(config, examples, eval_features, start_logits, end_logits):
  """({split: official metrics}, {file name: predictions and null odds}) of dev logits."""
  with_no_answer = config.version == "2.0"
  predictions = postprocess.predict(
      examples, eval_features, start_logits, end_logits, n_best=config.n_best_size,
      max_answer_length=config.max_answer_length,
      null_score_threshold=config.null_score_threshold, allow_no_answer=with_no_answer)
  texts = {qid: p.text for qid, p in predictions.items()}
  files = {PREDICTIONS_FILE: texts}
  null_odds = None
  if with_no_answer:
    null_odds = {qid: p.null_odds for qid, p in predictions.items()}
    files[NULL_ODDS_FILE] = null_odds
  # The predictions already answer "" past null_score_threshold; the same threshold here
  # changes nothing and keeps the official semantics of exact/f1.
  scores = metrics.evaluate(examples, texts, null_odds, config.null_score_threshold)
  return {SPLIT: scores}, files


def load_examples(config, split: str) -> list[data.Example]:
  if config.source == "json":
    return data.load_json(data.split_path(config.data_dir, split, config.version))
  return data.load_tfds(config.version, split, config.tfds_data_dir or None)


def _train_examples(config) -> list[data.Example]:
  """The train questions; with max_train_examples a fixed random subset, for every seed."""
  examples = load_examples(config, "train")
  if config.max_train_examples and config.max_train_examples < len(examples):
    keep = np.sort(np.random.default_rng(0).permutation(len(examples))
                   [:config.max_train_examples])
    examples = [examples[i] for i in keep]
  return examples


def _dev(config, tokenizer):
  examples = load_examples(config, SPLIT)
  if config.max_eval_examples:
    examples = examples[:config.max_eval_examples]
  return examples, features.eval_features(examples, tokenizer, config.seq_len,
                                          config.doc_stride, config.max_query_length)


def _evaluate_export(config, workdir: str, mesh) -> dict:
  """Scores the fine-tuned SQuAD export config.init_checkpoint on dev; writes
  workdir/eval_results.json, predictions.json and null_odds.json."""
  config_lib.validate(config, mesh.size)
  init = registry.load(config.init_checkpoint)
  expected = task_info(config.version)
  if init.task is None or init.task.head != encoder_tree.SPAN_HEAD or init.task.name != expected.name:
    found = "no task head" if init.task is None else f"task {init.task.name!r}"
    raise errors.InputError(
        f"eval_only: {init.path} has {found}; expected a {expected.name} export "
        "such as <workdir>/seed_0/best.")
  seeds.check_seq_len(config, init)
  examples, eval_features = _dev(config, init.tokenizer)
  task = SquadTask(config, examples, eval_features)
  scores, files = seeds.evaluate_export(task, span.SpanExtractor(init.model_config),
                                        init.params, config, mesh)
  logging.info("%s dev: %s", task.name, scores)
  results = {"task": task.name, "checkpoint": init.path, "metrics": scores,
             "primary_metric": task.primary_metric, "seq_len": config.seq_len}
  os.makedirs(workdir, exist_ok=True)
  for name, content in files.items():
    seeds.write_json(os.path.join(workdir, name), content)
  seeds.write_json(os.path.join(workdir, EVAL_RESULTS_FILE), results)
  return results


def finetune_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                          mesh: jax.sharding.Mesh | None = None) -> dict:
  """Fine-tunes every seed of `config` (configs/squad.py) and writes workdir/results.json.

  With `config.eval_only`, scores the fine-tuned export `config.init_checkpoint` instead.
  Returns the results record.
  """
  mesh = mesh or train_step_lib.make_mesh()
  if config.get("eval_only"):
    return _evaluate_export(config, workdir, mesh)
  config_lib.validate(config, mesh.size)
  init = registry.load(config.init_checkpoint, read_params=not config.random_init,
                              step=config.init_checkpoint_step or None)
  resolved = seeds.resolve_recipe(config, RECIPE, init, mesh.size)
  seeds.check_seq_len(config, init)
  train_examples = _train_examples(config)
  train = features.train_features(train_examples, init.tokenizer, config.seq_len,
                                  config.doc_stride, config.max_query_length)
  examples, eval_features = _dev(config, init.tokenizer)
  extra = {"version": config.version, "num_train_questions": len(train_examples),
           "num_eval_examples": {SPLIT: len(examples)},
           "num_eval_windows": {SPLIT: len(eval_features.input_ids)}}
  return seeds.run(config, workdir, mesh, SquadTask(config, examples, eval_features), init,
                   resolved, train, extra)
