"""Loads one GLUE split as a list of examples, from the GLUE TSV download or from TFDS.

Both sources give the same `Example`s with the same label ids (those of TFDS's ClassLabel,
see tasks.py). Bad input fails here, with the file and what was expected, rather than as a
shape error deep in training.
"""

import csv
import os
from typing import NamedTuple

from amos_jax import errors
from amos_jax.glue import tasks

Label = int | float | None


class Example(NamedTuple):
  """One GLUE example; `text_b` is None for single-sentence tasks, `label` None if unlabeled."""
  text_a: str
  text_b: str | None
  label: Label


def _resolve_split(task: tasks.TaskSpec, split: str) -> tasks.TsvFile:
  if split not in task.tsv_files:
    raise errors.InputError(
        f"{task.name} has no split {split!r}: expected one of {', '.join(task.splits)}.")
  return task.tsv_files[split]


def _check_labeled(task: tasks.TaskSpec, split: str, allow_unlabeled: bool):
  if not task.has_labels(split) and not allow_unlabeled:
    raise errors.InputError(
        f"{task.name} split {split!r} has no labels (a GLUE test set); pass "
        "allow_unlabeled=True to load it for prediction.")


def _parse_label(task: tasks.TaskSpec, value: str, where: str) -> int | float:
  """Parses a TSV label: a float for regression, else a label name or its id as a number."""
  if task.is_regression:
    try:
      return float(value)
    except ValueError:
      raise errors.InputError(f"{where}: label {value!r} is not a number.") from None
  if value in task.label_names:
    return task.label_names.index(value)
  ids = [str(i) for i in range(task.num_labels)]
  if value in ids:
    return int(value)
  raise errors.InputError(
      f"{where}: unknown label {value!r}; allowed labels are "
      f"{', '.join(task.label_names)} or their ids {', '.join(ids)}.")


def _column_indices(layout: tasks.TsvFile, header: list[str] | None, path: str) -> list[int]:
  """Indices of the text columns, then the label column if any, in each row."""
  columns = list(layout.text_columns)
  if layout.label_column is not None:
    columns.append(layout.label_column)
  if header is None:
    return columns
  missing = [c for c in columns if c not in header]
  if missing:
    raise errors.InputError(
        f"{path}: missing column(s) {', '.join(map(repr, missing))}; the header has "
        f"{', '.join(map(repr, header))}.")
  return [header.index(c) for c in columns]


def load_tsv(task: tasks.TaskSpec | str, split: str, data_dir: str, *,
             allow_unlabeled: bool = False) -> list[Example]:
  """Reads `data_dir/<glue_dir>/<file>.tsv` of the standard GLUE download.

  GLUE files are tab-separated with no quoting: quote characters are part of the text, so
  they are read with csv.QUOTE_NONE. Each line is one row; blank lines are skipped. Errors
  name 1-based file lines, the header included.

  Args:
    task: a TaskSpec or a task name.
    split: "train", "validation", "test" (MNLI: "validation_matched", ...).
    data_dir: the directory holding CoLA/, SST-2/, ...
    allow_unlabeled: whether a split without labels (test) may be loaded; labels are None.

  Returns:
    The examples in file order.
  """
  if isinstance(task, str):
    task = tasks.get_task(task)
  layout = _resolve_split(task, split)
  _check_labeled(task, split, allow_unlabeled)
  task_dir = os.path.join(data_dir, task.glue_dir)
  path = os.path.join(task_dir, layout.file_name)
  if not os.path.isdir(task_dir):
    raise FileNotFoundError(
        f"No {task.glue_dir}/ directory in {data_dir!r}: expected the GLUE download layout "
        f"{data_dir}/{task.glue_dir}/{layout.file_name}.")
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"Missing {path}: the {split!r} split of {task.name} is expected in this file.")
  examples = []
  # utf-8-sig: MRPC's files can start with a byte-order mark that would glue onto "Quality".
  with open(path, encoding="utf-8-sig", newline="") as f:
    reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None) if layout.has_header else None
    if layout.has_header and header is None:
      raise errors.InputError(f"{path} is empty: expected a header line and examples.")
    indices = _column_indices(layout, header, path)
    num_fields = len(header) if header is not None else max(indices) + 1
    for row in reader:
      if not row:
        continue
      where = f"{path}, line {reader.line_num}"
      # With a header, every row must match it: a stray tab would silently shift columns.
      if len(row) < num_fields or (header is not None and len(row) != num_fields):
        raise errors.InputError(
            f"{where}: expected {num_fields} tab-separated fields, found {len(row)}.")
      texts = [row[i] for i in indices[:len(layout.text_columns)]]
      label = None
      if layout.label_column is not None:
        label = _parse_label(task, row[indices[-1]], where)
      examples.append(Example(texts[0], texts[1] if len(texts) > 1 else None, label))
  if not examples:
    raise errors.InputError(f"{path} has no examples: the {split!r} split of {task.name} is empty.")
  return examples


def load_tfds(task: tasks.TaskSpec | str, split: str, data_dir: str | None = None, *,
              allow_unlabeled: bool = False) -> list[Example]:
  """Reads a prepared TFDS `glue/<task>` split; never downloads.

  Args:
    task: a TaskSpec or a task name.
    split: a TFDS split name: "train", "validation", "test" (MNLI: "validation_matched", ...).
    data_dir: TFDS data directory; None means TFDS's default (~/tensorflow_datasets).
    allow_unlabeled: whether a split without labels (test) may be loaded; labels are None.

  Returns:
    The examples in TFDS order.
  """
  # Imported here so that the TSV path does not pay for TensorFlow.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  if isinstance(task, str):
    task = tasks.get_task(task)
  _resolve_split(task, split)
  _check_labeled(task, split, allow_unlabeled)
  # TF only reads data here; keep it off any accelerator JAX will use.
  tf.config.set_visible_devices([], "GPU")
  try:
    dataset = tfds.load(task.tfds_name, split=split, data_dir=data_dir, download=False)
  except AssertionError as e:  # How TFDS reports an unprepared dataset with download=False.
    raise FileNotFoundError(
        f"{task.tfds_name} is not prepared in data_dir={data_dir!r} and download=False: "
        f"prepare it first (tfds build {task.tfds_name}). TFDS said: {e}") from None
  examples = []
  for record in tfds.as_numpy(dataset):
    texts = [record[key].decode("utf-8") for key in task.tfds_text_keys]
    label = None
    if task.has_labels(split):
      label = float(record["label"]) if task.is_regression else int(record["label"])
    examples.append(Example(texts[0], texts[1] if len(texts) > 1 else None, label))
  if not examples:
    raise errors.InputError(f"{task.tfds_name} split {split!r} in {data_dir!r} has no examples.")
  return examples
