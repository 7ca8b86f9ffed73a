"""Task specs: consistent with themselves, with AMOS.md's recipe table and with TFDS."""

import numpy as np
import pytest

from amos_jax.glue import tasks

# AMOS.md, authors' base++ scripts: (batch, lr, warmup fraction); epochs checked below.
AMOS_RECIPES = {
    "mnli": (32, 1e-5, 0.0625), "qqp": (32, 2e-5, 0.0625), "qnli": (32, 2e-5, 0.0625),
    "sst2": (32, 1e-5, 0.0625), "cola": (32, 2e-5, 0.1), "rte": (32, 4e-5, 0.1),
    "mrpc": (32, 4e-5, 0.0625), "stsb": (16, 4e-5, 0.0625),
}
AMOS_EPOCHS = {"mnli": (2, 3), "qqp": (5,), "qnli": (3,), "sst2": (5,), "cola": (10,),
               "rte": (5,), "mrpc": (10,), "stsb": (10,)}


def test_all_nine_glue_tasks_and_ag_news():
  assert sorted(tasks.TASKS) == sorted(
      ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "agnews"])


@pytest.mark.parametrize("name", sorted(AMOS_RECIPES))
def test_recipe_matches_amos_table(name):
  recipe = tasks.TASKS[name].recipe
  assert (recipe.batch_size, recipe.learning_rate, recipe.warmup_fraction) == AMOS_RECIPES[name]
  assert recipe.num_epochs in AMOS_EPOCHS[name]


@pytest.mark.parametrize("name", sorted(tasks.TASKS))
def test_spec_is_consistent(name):
  task = tasks.TASKS[name]
  assert task.primary_metric in task.metrics
  assert all(task.has_labels(split) for split in task.eval_splits)
  assert task.has_labels("train")
  assert not any(task.has_labels(split) for split in task.splits if split.startswith("test"))
  for layout in task.tsv_files.values():
    assert len(layout.text_columns) == len(task.tfds_text_keys)


def test_metrics_as_glue_defines_them():
  assert tasks.get_task("CoLA").metrics == (tasks.MATTHEWS_CORR,)
  assert tasks.get_task("MRPC").metrics == (tasks.F1, tasks.ACCURACY)
  assert tasks.get_task("QQP").metrics == (tasks.F1, tasks.ACCURACY)
  assert tasks.get_task("STS-B").metrics == (tasks.PEARSON, tasks.SPEARMAN)
  assert tasks.get_task("STS-B").is_regression and tasks.get_task("STS-B").num_labels == 1
  mnli = tasks.get_task("MNLI")
  assert mnli.eval_splits == ("validation_matched", "validation_mismatched")
  assert mnli.tsv_files["validation_mismatched"].file_name == "dev_mismatched.tsv"
  assert mnli.num_labels == 3


def test_get_task_accepts_glue_directory_names():
  assert [tasks.get_task(t.glue_dir).name for t in tasks.TASKS.values()] == list(tasks.TASKS)
  with pytest.raises(ValueError, match="Unknown GLUE task 'boolq'"):
    tasks.get_task("boolq")


@pytest.mark.parametrize("name", sorted(tasks.TASKS))
def test_spec_agrees_with_tfds_builder(name, tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  task = tasks.TASKS[name]
  builder = tfds.builder(task.tfds_name, data_dir=str(tmp_path))
  features = builder.info.features
  assert set(task.tfds_text_keys) < set(features)
  if task.is_regression:
    assert np.dtype(features["label"].np_dtype) == np.float32
  else:
    assert tuple(features["label"].names) == task.label_names
