"""The results row of an evaluation run: each column's median and range over seeds, the
paper's GLUE average, the recipes, and where the numbers came from; as results.json (read
back by compare.py) and results.md (for people)."""

import datetime
import os
import subprocess

import numpy as np

from amos_jax import atomic_file
from amos_jax.evaluation_suite import columns
from amos_jax.finetune import recipes

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"


def summarize(task_results: dict[str, dict], *, init_checkpoint: str, init_sha256: str,
              seeds, from_mnli, commit: str | None) -> dict:
  """The run's record from {task: that task's results.json}; `commit` is the code's when the
  run started (git_commit())."""
  row = [_column(column, task_results.get(column.task)) for column in columns.COLUMNS]
  medians = {entry["label"]: entry["median"] for entry in row}
  return {
      "date": datetime.date.today().isoformat(),
      "git_commit": commit,
      "init_checkpoint": init_checkpoint,
      "init_sha256": init_sha256,
      "seeds": list(seeds),
      "from_mnli": list(from_mnli),
      "columns": row,
      "average": columns.glue_average(medians),
      "average_of": list(columns.AVERAGED),
      "tasks": {task: _task(results) for task, results in task_results.items()},
  }


def _column(column: columns.Column, results: dict | None) -> dict:
  entry = {"label": column.label, "task": column.task, "split": column.split,
           "metric": column.metric, "median": None, "min": None, "max": None, "per_seed": {}}
  if results is None:
    return entry
  per_seed = {str(record["seed"]): record["best"]["metrics"][column.split][column.metric]
              * column.scale for record in results["seeds"]}
  values = list(per_seed.values())
  entry.update(median=float(np.median(values)), min=min(values), max=max(values),
               per_seed=per_seed)
  return entry


def best_seed(results: dict) -> dict:
  """The seed record with the best dev score by the task's primary metric (the first on ties):
  the model whose test predictions are submitted and that --from_mnli starts from."""
  split, metric = results["primary_split"], results["primary_metric"]
  return max(results["seeds"], key=lambda record: record["best"]["metrics"][split][metric])


def _task(results: dict) -> dict:
  best = best_seed(results)
  return {"workdir": os.path.dirname(os.path.dirname(best["checkpoint"])),
          "init_checkpoint": results["init_checkpoint"], "recipe": results["recipe"],
          "num_train_examples": results["num_train_examples"],
          "best_seed": best["seed"], "best_checkpoint": best["checkpoint"]}


def git_commit(ignore: tuple[str, ...] = ()) -> str | None:
  """The checkout's short commit, `-dirty` when files other than `ignore` (paths, e.g. the
  results file the caller is writing) differ from it; None outside git."""
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  excluded = [f":(exclude){os.path.abspath(path)}" for path in ignore]
  try:
    head = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, timeout=30, check=False)
    dirty = subprocess.run(["git", "-C", repo, "diff", "--quiet", "HEAD", "--", repo, *excluded],
                           capture_output=True, timeout=30, check=False)
  except (OSError, subprocess.TimeoutExpired):
    return None
  if head.returncode != 0:
    return None
  return head.stdout.strip() + ("-dirty" if dirty.returncode == 1 else "")


def number(value: float | None) -> str:
  return "-" if value is None else f"{value:.1f}"


def spread(entry: dict) -> str:
  """A column's range over seeds, e.g. `88.1 to 89.0`."""
  if entry.get("min") is None:
    return "-"
  return f"{number(entry['min'])} to {number(entry['max'])}"


def markdown(record: dict) -> str:
  """results.md: the row beside the published AMOS row, then each task's recipe."""
  by_label = {entry["label"]: entry for entry in record["columns"]}
  medians = [number(record["average"]) if label == columns.AVERAGE
             else number(by_label[label]["median"]) for label in columns.HEADER]
  ranges = ["" if label == columns.AVERAGE else spread(by_label[label])
            for label in columns.HEADER]
  published = [number(columns.PUBLISHED_AMOS_BASE_PLUS_PLUS[label]) for label in columns.HEADER]
  seeds = ", ".join(map(str, record["seeds"]))
  lines = [
      f"# Dev results of {record['init_checkpoint']}",
      "",
      f"{record['date']}, commit {record['git_commit'] or 'unknown'}; init weights sha256 "
      f"{record['init_sha256'][:16]}. Each task's median over seeds {seeds} of its best dev "
      "evaluation, and the range over seeds; GLUE in percent. AVG is the paper's GLUE "
      f"average: the mean of {', '.join(record['average_of'])} (MNLI counted once, matched).",
      "",
      "| | " + " | ".join(columns.HEADER) + " |",
      "| --- " * (len(columns.HEADER) + 1) + "|",
      "| median | " + " | ".join(medians) + " |",
      "| range | " + " | ".join(ranges) + " |",
      "| AMOS base++, published | " + " | ".join(published) + " |",
      "",
      "| task | recipe | training examples | started from | best seed | workdir |",
      "| --- | --- | --- | --- | --- | --- |",
  ]
  for task, info in record["tasks"].items():
    recipe = info["recipe"]
    described = recipes.Resolved(
        recipe["name"], recipes.Recipe(*(recipe[field] for field in recipes.FIELDS)),
        tuple(recipe["overridden"])).describe()
    lines.append(f"| {task} | {described} | {info['num_train_examples']} | "
                 f"{info['init_checkpoint']} | {info['best_seed']} | {info['workdir']} |")
  skipped = (record.get("submission") or {}).get("skipped")
  if skipped:
    lines += ["", "GLUE submission files left out: " + "; ".join(
        f"{name} ({why})" for name, why in skipped.items()) + "."]
  return "\n".join(lines) + "\n"


def write(workdir: str, record: dict):
  """workdir/results.json and workdir/results.md, each written whole."""
  atomic_file.write_json(os.path.join(workdir, RESULTS_JSON), record)
  with atomic_file.replacing(os.path.join(workdir, RESULTS_MD)) as f:
    f.write(markdown(record))
