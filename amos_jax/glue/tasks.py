"""One declarative spec per GLUE task: where its data lives, what it predicts, how it is scored.

Split names follow TFDS (`train`, `validation`, `test`; MNLI has `validation_matched`,
`validation_mismatched`, `test_matched`, `test_mismatched`) and are used for both sources:
the TSV files of the GLUE download and the TFDS `glue/<task>` builders.

Label ids match TFDS's ClassLabel order, so a model fine-tuned from either source predicts
the same ids. TSV files hold either the label name (MNLI `entailment`, RTE `not_entailment`)
or the id as a number (SST-2 `1`); both parse to the same id.

Primary metrics follow the AMOS/COCO-LM dev tables: Matthews correlation for CoLA,
Spearman for STS-B, accuracy for everything else (MRPC and QQP F1 is reported beside it).
"""

import dataclasses
from typing import Mapping

from amos_jax import errors
from amos_jax.finetune.recipes import Recipe

# Metric names, shared with metrics.py.
ACCURACY = "accuracy"
F1 = "f1"
MATTHEWS_CORR = "matthews_corr"
PEARSON = "pearson"
SPEARMAN = "spearman"

Column = str | int  # A header name, or a 0-based index in a header-less file.


@dataclasses.dataclass(frozen=True)
class TsvFile:
  """Layout of one split in the GLUE download.

  Columns are header names, or 0-based indices when the file has no header (CoLA train/dev);
  all columns of one file are of the same kind. `label_column` is None for the unlabeled
  test sets.
  """
  file_name: str
  text_columns: tuple[Column, ...]
  label_column: Column | None

  @property
  def has_header(self) -> bool:
    """Whether columns are named by a header line rather than by position."""
    return not isinstance(self.text_columns[0], int)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """Everything the data, feature and metric code needs to know about one task."""
  name: str  # Lower case, as in TFDS: "cola", "sst2", ...
  glue_dir: str  # Directory name in the GLUE download: "CoLA", "SST-2", ...
  tsv_files: Mapping[str, TsvFile]  # Split name -> layout.
  tfds_name: str  # "glue/cola", ...
  tfds_text_keys: tuple[str, ...]  # One key (single sentence) or two (pair).
  label_names: tuple[str, ...]  # In TFDS id order; empty for regression.
  metrics: tuple[str, ...]
  primary_metric: str  # For model selection, read on eval_splits[0].
  eval_splits: tuple[str, ...]
  recipe: Recipe  # The base-size recipe (AMOS.md, authors' base++ scripts).

  @property
  def is_regression(self) -> bool:
    """STS-B: a float score instead of a class id."""
    return not self.label_names

  @property
  def num_labels(self) -> int:
    """Output width of the task head: 1 for regression."""
    return len(self.label_names) or 1

  @property
  def is_pair(self) -> bool:
    """Whether examples are sentence pairs."""
    return len(self.tfds_text_keys) == 2

  @property
  def splits(self) -> tuple[str, ...]:
    """Every split name, in both sources."""
    return tuple(self.tsv_files)

  def has_labels(self, split: str) -> bool:
    """False for the GLUE test sets, whose labels are private."""
    return self.tsv_files[split].label_column is not None


def _standard_files(text_columns, label_column, test_text_columns=None):
  """train.tsv / dev.tsv / test.tsv, where the test file has the same text columns, no label."""
  test_text_columns = test_text_columns or text_columns
  return {
      "train": TsvFile("train.tsv", text_columns, label_column),
      "validation": TsvFile("dev.tsv", text_columns, label_column),
      "test": TsvFile("test.tsv", test_text_columns, None),
  }


_MNLI_PAIR = ("sentence1", "sentence2")

TASKS: dict[str, TaskSpec] = {
    spec.name: spec for spec in [
        TaskSpec(
            name="cola",
            glue_dir="CoLA",
            # train/dev: source, label, original label mark, sentence; no header.
            # test: a header "index\tsentence".
            tsv_files=_standard_files((3,), 1, test_text_columns=("sentence",)),
            tfds_name="glue/cola",
            tfds_text_keys=("sentence",),
            label_names=("unacceptable", "acceptable"),
            metrics=(MATTHEWS_CORR,),
            primary_metric=MATTHEWS_CORR,
            eval_splits=("validation",),
            recipe=Recipe(32, 2e-5, 10, 0.1),
        ),
        TaskSpec(
            name="sst2",
            glue_dir="SST-2",
            tsv_files=_standard_files(("sentence",), "label"),
            tfds_name="glue/sst2",
            tfds_text_keys=("sentence",),
            label_names=("negative", "positive"),
            metrics=(ACCURACY,),
            primary_metric=ACCURACY,
            eval_splits=("validation",),
            recipe=Recipe(32, 1e-5, 5, 0.0625),
        ),
        TaskSpec(
            name="mrpc",
            glue_dir="MRPC",
            tsv_files=_standard_files(("#1 String", "#2 String"), "Quality"),
            tfds_name="glue/mrpc",
            tfds_text_keys=("sentence1", "sentence2"),
            label_names=("not_equivalent", "equivalent"),
            metrics=(F1, ACCURACY),
            primary_metric=ACCURACY,
            eval_splits=("validation",),
            recipe=Recipe(32, 4e-5, 10, 0.0625),
        ),
        TaskSpec(
            name="stsb",
            glue_dir="STS-B",
            tsv_files=_standard_files(("sentence1", "sentence2"), "score"),
            tfds_name="glue/stsb",
            tfds_text_keys=("sentence1", "sentence2"),
            label_names=(),
            metrics=(PEARSON, SPEARMAN),
            primary_metric=SPEARMAN,
            eval_splits=("validation",),
            recipe=Recipe(16, 4e-5, 10, 0.0625),
        ),
        TaskSpec(
            name="qqp",
            glue_dir="QQP",
            tsv_files=_standard_files(("question1", "question2"), "is_duplicate"),
            tfds_name="glue/qqp",
            tfds_text_keys=("question1", "question2"),
            label_names=("not_duplicate", "duplicate"),
            metrics=(F1, ACCURACY),
            primary_metric=ACCURACY,
            eval_splits=("validation",),
            recipe=Recipe(32, 2e-5, 5, 0.0625),
        ),
        TaskSpec(
            name="mnli",
            glue_dir="MNLI",
            tsv_files={
                "train": TsvFile("train.tsv", _MNLI_PAIR, "gold_label"),
                "validation_matched": TsvFile("dev_matched.tsv", _MNLI_PAIR, "gold_label"),
                "validation_mismatched": TsvFile(
                    "dev_mismatched.tsv", _MNLI_PAIR, "gold_label"),
                "test_matched": TsvFile("test_matched.tsv", _MNLI_PAIR, None),
                "test_mismatched": TsvFile("test_mismatched.tsv", _MNLI_PAIR, None),
            },
            tfds_name="glue/mnli",
            tfds_text_keys=("premise", "hypothesis"),
            label_names=("entailment", "neutral", "contradiction"),
            metrics=(ACCURACY,),
            primary_metric=ACCURACY,
            eval_splits=("validation_matched", "validation_mismatched"),
            # The authors' scripts use 2-3 epochs; 3 is the upper end, as in BERT/RoBERTa.
            recipe=Recipe(32, 1e-5, 3, 0.0625),
        ),
        TaskSpec(
            name="qnli",
            glue_dir="QNLI",
            tsv_files=_standard_files(("question", "sentence"), "label"),
            tfds_name="glue/qnli",
            tfds_text_keys=("question", "sentence"),
            label_names=("entailment", "not_entailment"),
            metrics=(ACCURACY,),
            primary_metric=ACCURACY,
            eval_splits=("validation",),
            recipe=Recipe(32, 2e-5, 3, 0.0625),
        ),
        TaskSpec(
            name="rte",
            glue_dir="RTE",
            tsv_files=_standard_files(("sentence1", "sentence2"), "label"),
            tfds_name="glue/rte",
            tfds_text_keys=("sentence1", "sentence2"),
            label_names=("entailment", "not_entailment"),
            metrics=(ACCURACY,),
            primary_metric=ACCURACY,
            eval_splits=("validation",),
            recipe=Recipe(32, 4e-5, 5, 0.1),
        ),
        TaskSpec(
            name="wnli",
            glue_dir="WNLI",
            tsv_files=_standard_files(("sentence1", "sentence2"), "label"),
            tfds_name="glue/wnli",
            tfds_text_keys=("sentence1", "sentence2"),
            # Note the order: TFDS (and the TSV's 0/1) put not_entailment first, unlike RTE.
            label_names=("not_entailment", "entailment"),
            metrics=(ACCURACY,),
            primary_metric=ACCURACY,
            eval_splits=("validation",),
            # Not in the authors' table (AMOS, like ELECTRA and RoBERTa, leaves WNLI out).
            # RTE's recipe: the closest task in format and size (635 training pairs). Its dev
            # set is adversarial to memorisation, so expect scores near the 56.3% majority
            # baseline.
            recipe=Recipe(32, 4e-5, 5, 0.1),
        ),
        # Not GLUE: AG News topic classification (Zhang et al., 2015) in the same layout, a
        # second single-sentence task for quality checks (benchmarks/quality.py). The TSVs
        # hold text and the label name, no header.
        TaskSpec(
            name="agnews",
            glue_dir="AGNews",
            tsv_files={"train": TsvFile("train.tsv", (0,), 1),
                       "validation": TsvFile("dev.tsv", (0,), 1)},
            tfds_name="ag_news_subset",
            tfds_text_keys=("description",),
            label_names=("World", "Sports", "Business", "Sci/Tech"),
            metrics=(ACCURACY,),
            primary_metric=ACCURACY,
            eval_splits=("validation",),
            recipe=Recipe(32, 2e-5, 3, 0.1),
        ),
    ]
}


def get_task(name: str) -> TaskSpec:
  """Looks a task up by its TFDS-style name ("cola") or GLUE directory name ("CoLA")."""
  key = name.lower().replace("-", "")
  if key not in TASKS:
    raise errors.InputError(f"Unknown GLUE task {name!r}: expected one of {', '.join(TASKS)}.")
  return TASKS[key]


# GLUE's diagnostic set (AX on the GLUE server): MNLI-style pairs with no training or dev data,
# scored by the server from an MNLI model's predictions. Not in TASKS, since nothing fine-tunes
# on it; its one split is read like any GLUE test set.
DIAGNOSTIC = dataclasses.replace(
    TASKS["mnli"],
    name="ax",
    glue_dir="diagnostic",
    tsv_files={"test": TsvFile("diagnostic.tsv", _MNLI_PAIR, None)},
    tfds_name="glue/ax",
    metrics=(),
    eval_splits=(),
)
