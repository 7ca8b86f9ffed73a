"""GLUE test-set predictions as the GLUE server takes them: one TSV per test set, zipped.

Each file is named as the server expects (CoLA.tsv, MNLI-m.tsv, AX.tsv, ...), holds
`index<TAB>prediction` and one row per test example in file order (the GLUE test files
number their rows 0, 1, ... in that order). Predictions come from each task's best seed on
dev (its kept export); MNLI-m, MNLI-mm and the diagnostic set AX from the MNLI model. WNLI
without a WNLI model gets the majority class of its training set, as BERT's and most later
submissions do. A test file that is missing leaves out its TSV with one log line; the rest
are written.
"""

import dataclasses
import logging
import os
import zipfile

import numpy as np

from amos_jax import atomic_file
from amos_jax import inference
from amos_jax.glue import data
from amos_jax.glue import tasks

SUBMISSION_DIR = "glue_submission"
ZIP_FILE = "submission.zip"
HEADER = "index\tprediction\n"
# The server reads these tasks' labels as names; the others as the class id (0/1), and STS-B
# as a number.
NAMED_LABELS = ("mnli", "ax", "qnli", "rte")


@dataclasses.dataclass(frozen=True)
class TestFile:
  """One file of a submission: `spec`'s `split`, predicted by the model of `model_task`."""
  name: str
  spec: tasks.TaskSpec
  split: str
  model_task: str


def _same_task(name: str, task: str, split: str = "test") -> TestFile:
  return TestFile(name, tasks.get_task(task), split, task)


TEST_FILES = (
    _same_task("CoLA.tsv", "cola"),
    _same_task("SST-2.tsv", "sst2"),
    _same_task("MRPC.tsv", "mrpc"),
    _same_task("STS-B.tsv", "stsb"),
    _same_task("QQP.tsv", "qqp"),
    _same_task("MNLI-m.tsv", "mnli", "test_matched"),
    _same_task("MNLI-mm.tsv", "mnli", "test_mismatched"),
    _same_task("QNLI.tsv", "qnli"),
    _same_task("RTE.tsv", "rte"),
    _same_task("WNLI.tsv", "wnli"),
    TestFile("AX.tsv", tasks.DIAGNOSTIC, "test", "mnli"),
)


def label_strings(spec: tasks.TaskSpec, predictions: inference.Predictions) -> list[str]:
  """The prediction column as the server reads it for `spec`."""
  if spec.is_regression:
    return [f"{score:.3f}" for score in predictions.scores]
  if spec.name in NAMED_LABELS:
    return list(predictions.labels)
  return [str(label_id) for label_id in predictions.label_ids]


def write(out_dir: str, glue_dir: str, models: dict[str, str],
          seq_lens: dict[str, int]) -> dict:
  """Writes out_dir/<file>.tsv for every test set it can, and out_dir/submission.zip.

  Args:
    models: {task: fine-tuned export} of the tasks that ran.
    seq_lens: {task: the seq_len it was fine-tuned with}; test inputs are truncated alike.

  Returns:
    {"files": [names written], "skipped": {name: why}, "zip": path or None}.
  """
  os.makedirs(out_dir, exist_ok=True)
  # A file this run does not write must not look like its own.
  for name in [test_file.name for test_file in TEST_FILES] + [ZIP_FILE]:
    if os.path.exists(os.path.join(out_dir, name)):
      os.remove(os.path.join(out_dir, name))
  written, skipped, loaded = [], {}, {}
  for test_file in TEST_FILES:
    path = os.path.join(out_dir, test_file.name)
    if test_file.model_task not in models and test_file.model_task != "wnli":
      skipped[test_file.name] = f"no {test_file.model_task} model in this run"
      continue
    try:
      examples = data.load_tsv(test_file.spec, test_file.split, glue_dir, allow_unlabeled=True)
      rows = _predict(test_file, examples, glue_dir, models, seq_lens, loaded)
    except FileNotFoundError as e:
      skipped[test_file.name] = str(e)
      logging.warning("GLUE submission: %s left out: %s", test_file.name, e)
      continue
    with atomic_file.replacing(path) as f:
      f.write(HEADER)
      f.writelines(f"{index}\t{label}\n" for index, label in enumerate(rows))
    written.append(test_file.name)
  not_run = [name for name, why in skipped.items() if why.startswith("no ")]
  if not_run:
    logging.info("GLUE submission: %s left out: their tasks did not run.", ", ".join(not_run))
  zip_path = _zip(out_dir, written) if written else None
  logging.info("GLUE submission: %d files in %s%s", len(written), out_dir,
               f", zipped in {zip_path}" if zip_path else "")
  return {"files": written, "skipped": skipped, "zip": zip_path}


def _predict(test_file: TestFile, examples, glue_dir, models, seq_lens, loaded):
  """The label strings of `examples` from the task's model (WNLI's majority class without)."""
  task = test_file.model_task
  if task not in models:
    return _majority_class(glue_dir, len(examples))
  if task not in loaded:
    loaded[task] = inference.load(models[task], max_length=seq_lens[task])
  texts = [example.text_a if example.text_b is None else (example.text_a, example.text_b)
           for example in examples]
  return label_strings(test_file.spec, loaded[task].predict(texts, batch_size=64))


def _majority_class(glue_dir: str, count: int) -> list[str]:
  """WNLI's most frequent training label, for every test row (FileNotFoundError if no
  training file)."""
  labels = [example.label for example in data.load_tsv("wnli", "train", glue_dir)]
  majority = int(np.bincount(labels).argmax())
  logging.info("GLUE submission: WNLI.tsv holds the training set's majority class %d (no WNLI "
               "model in this run).", majority)
  return [str(majority)] * count


def _zip(out_dir: str, names: list[str]) -> str:
  """The TSVs at the top level of one zip, as the server takes them."""
  path = os.path.join(out_dir, ZIP_FILE)
  with atomic_file.replacing(path, "wb") as f:
    with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as archive:
      for name in names:
        archive.write(os.path.join(out_dir, name), arcname=name)
  return path
