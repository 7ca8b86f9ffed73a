"""The AMOS paper's results row: its columns in the paper's order, each a task's dev metric.

GLUE scores are kept as fractions in every task's results.json; the row shows percents, as
the paper does. SQuAD's official metrics are percents already.
"""

import dataclasses

from amos_jax.glue import tasks

# The paper's GLUE eight, in its table's order (AMOS.md, "Published results").
GLUE_TASKS = ("mnli", "qqp", "qnli", "sst2", "cola", "rte", "mrpc", "stsb")
SQUAD = "squad"
# Fine-tuned when asked, never a column: WNLI only feeds its submission file.
EXTRA_TASKS = ("wnli",)
AVERAGE = "AVG"


@dataclasses.dataclass(frozen=True)
class Column:
  """One column: `task`'s `metric` on its dev `split`, times `scale`."""
  label: str
  task: str
  split: str
  metric: str
  scale: float


def _glue_column(task: str, split_index: int = 0, label: str | None = None) -> Column:
  spec = tasks.get_task(task)
  return Column(label or spec.glue_dir, task, spec.eval_splits[split_index], spec.primary_metric,
                100.0)


GLUE_COLUMNS = (
    _glue_column("mnli", 0, "MNLI-m"),
    _glue_column("mnli", 1, "MNLI-mm"),
    *(_glue_column(task) for task in GLUE_TASKS[1:]),
)
SQUAD_COLUMNS = (Column("SQuAD 2.0 EM", SQUAD, "validation", "exact", 1.0),
                 Column("SQuAD 2.0 F1", SQUAD, "validation", "f1", 1.0))
COLUMNS = GLUE_COLUMNS + SQUAD_COLUMNS
# The table's header: the scored columns with AVG between GLUE and SQuAD, as in the paper.
HEADER = tuple(c.label for c in GLUE_COLUMNS) + (AVERAGE,) + tuple(c.label for c in SQUAD_COLUMNS)

# The GLUE average as the AMOS and COCO-LM dev tables compute it: the mean of the eight
# tasks' primary metrics (MCC for CoLA, Spearman for STS-B, accuracy otherwise) with MNLI
# counted once, by its matched accuracy, as ELECTRA's dev table (Clark et al. 2020) reports
# MNLI. It reproduces the published averages: AMOS base++ 89.4 (89.36, below) and COCO-LM
# base++ 88.6 (88.61). Averaging MNLI-m and -mm first would round to the same two numbers, so
# the tables alone cannot tell the two apart; counting -m and -mm as two of nine (89.48)
# cannot be what they did.
AVERAGED = tuple(c.label for c in GLUE_COLUMNS if c.label != "MNLI-mm")

# AMOS base++ as published (authors' README; AMOS.md): GLUE dev medians of 5 seeds, SQuAD 2.0.
PUBLISHED_AMOS_BASE_PLUS_PLUS = {
    "MNLI-m": 90.5, "MNLI-mm": 90.4, "QQP": 92.4, "QNLI": 94.4, "SST-2": 95.5, "CoLA": 71.8,
    "RTE": 86.6, "MRPC": 91.7, "STS-B": 92.0, AVERAGE: 89.4, "SQuAD 2.0 EM": 85.0,
    "SQuAD 2.0 F1": 87.9}


def glue_average(medians: dict[str, float | None]) -> float | None:
  """The paper's GLUE average of {column label: median}; None unless all eight are there."""
  values = [medians.get(label) for label in AVERAGED]
  if any(value is None for value in values):
    return None
  return sum(values) / len(values)
