"""GLUE fine-tuning: `finetune_and_evaluate(config, workdir)`, callable from a notebook.

The GLUE task for the shared seeds loop (amos_jax.finetune.seeds): a SequenceClassifier,
cross-entropy (squared error for STS-B), the task's dev metrics, a classifier export.
"""

import dataclasses
import logging
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from amos_jax import errors
from amos_jax.finetune import seeds
from amos_jax.formats import registry
from amos_jax.glue import config as config_lib
from amos_jax.glue import evaluate
from amos_jax.glue import tasks
from amos_jax.models import classifier
from amos_jax.train import step as train_step_lib


def example_losses(logits_BxC, labels_B, is_regression: bool):
  """Cross-entropy per example, or squared error of the single output for regression."""
  if is_regression:
    return jnp.square(logits_BxC[:, 0] - labels_B)
  return optax.softmax_cross_entropy_with_integer_labels(logits_BxC, labels_B)


@dataclasses.dataclass(frozen=True, eq=False)
class GlueTask:
  """One GLUE task and its dev sets, as the seeds loop takes a task."""
  spec: tasks.TaskSpec
  eval_sets: dict

  @property
  def name(self) -> str:
    return self.spec.name

  @property
  def primary_split(self) -> str:
    return self.spec.eval_splits[0]

  @property
  def primary_metric(self) -> str:
    return self.spec.primary_metric

  def build_model(self, model_config):
    return classifier.SequenceClassifier(model_config, self.spec.num_labels)

  def example_losses(self, logits_BxC, batch):
    return example_losses(logits_BxC, batch["labels"], self.spec.is_regression)

  def evaluate(self, predict_fn):
    return evaluate.score(self.spec, predict_fn, self.eval_sets), {}

  def export(self, params, model_config, tokenizer, out_dir):
    registry.write_export(params, model_config, tokenizer, out_dir, task=self.spec,
                          overwrite=True)


def _train_set(config, task, tokenizer) -> dict[str, np.ndarray]:
  """The train split; with max_train_examples a fixed random subset, the same for every seed."""
  train = evaluate.load_split(config, task, "train", tokenizer)
  if config.max_train_examples and config.max_train_examples < len(train["labels"]):
    keep = np.sort(np.random.default_rng(0).permutation(len(train["labels"]))
                   [:config.max_train_examples])
    train = {name: column[keep] for name, column in train.items()}
  return train


def _evaluate_export(config: ml_collections.ConfigDict, workdir: str, mesh) -> dict:
  """Scores the fine-tuned export config.init_checkpoint on the task's dev split(s).

  Writes and returns `workdir/eval_results.json`: task, checkpoint, metrics per split.
  """
  task = config_lib.validate(config, mesh.size)
  init = registry.load(config.init_checkpoint)
  if init.task is None:
    raise errors.InputError(
        f"eval_only: {init.path} has no task head (a pretrained encoder); pass a "
        "fine-tuned export such as <workdir>/seed_0/best.")
  if init.task.name != task.name or tuple(init.task.label_names) != task.label_names:
    raise errors.InputError(
        f"eval_only: {init.path} was fine-tuned for {init.task.name!r} with labels "
        f"{list(init.task.label_names)}, not for {task.name!r}.")
  adapter = GlueTask(task, evaluate.load_eval_sets(config, task, init.tokenizer))
  scores, _ = seeds.evaluate_export(
      adapter, classifier.SequenceClassifier(init.model_config, task.num_labels), init.params,
      config, mesh)
  logging.info("%s dev: %s", task.name, scores)
  results = {"task": task.name, "checkpoint": init.path, "metrics": scores,
             "primary_metric": task.primary_metric, "seq_len": config.seq_len}
  os.makedirs(workdir, exist_ok=True)
  seeds.write_json(os.path.join(workdir, evaluate.EVAL_RESULTS_FILE), results)
  return results


def finetune_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                          mesh: jax.sharding.Mesh | None = None) -> dict:
  """Fine-tunes every seed of `config` (configs/glue.py) and writes workdir/results.json.

  With `config.eval_only`, scores the fine-tuned export `config.init_checkpoint` instead
  (writing workdir/eval_results.json). Returns the results record.
  """
  mesh = mesh or train_step_lib.make_mesh()
  if config.get("eval_only"):
    return _evaluate_export(config, workdir, mesh)
  spec = config_lib.validate(config, mesh.size)
  init = registry.load(config.init_checkpoint, read_params=not config.random_init,
                              step=config.init_checkpoint_step or None)
  resolved = seeds.resolve_recipe(config, spec.recipe, init, mesh.size)
  seeds.check_seq_len(config, init)
  train = _train_set(config, spec, init.tokenizer)
  eval_sets = evaluate.load_eval_sets(config, spec, init.tokenizer)
  extra = {"num_eval_examples": {split: len(f["labels"]) for split, f in eval_sets.items()}}
  return seeds.run(config, workdir, mesh, GlueTask(spec, eval_sets), init, resolved, train,
                   extra)
