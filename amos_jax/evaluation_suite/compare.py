"""Two evaluation runs side by side: each column's median and range, and the difference."""

import os

from amos_jax import errors
from amos_jax.evaluation_suite import columns
from amos_jax.evaluation_suite import table
from amos_jax.formats import json_files


def read(run_dir: str) -> dict:
  """A run's results.json; one InputError line naming the file when it is missing or not one."""
  path = os.path.join(run_dir, table.RESULTS_JSON)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"No {path}: expected the workdir of an amos_jax.benchmark run.")
  record = json_files.read_dict(path)
  entries = record.get("columns")
  if not isinstance(entries, list) or not all(
      isinstance(entry, dict) and {"label", "median", "min", "max"} <= set(entry)
      for entry in entries):
    raise errors.InputError(f"{path} has no results row (a 'columns' list): it is damaged, or "
                            "not written by amos_jax.benchmark.")
  return record


def compare(run_a: str, run_b: str) -> str:
  """The text `--compare=A,B` prints: one line per column, B - A last."""
  a, b = read(run_a), read(run_b)
  rows = [("column", "A median", "A range", "B median", "B range", "B - A")]
  entries_a = {entry["label"]: entry for entry in a["columns"]}
  entries_b = {entry["label"]: entry for entry in b["columns"]}
  for label in columns.HEADER:
    if label == columns.AVERAGE:
      first, second = a.get("average"), b.get("average")
      rows.append((label, table.number(first), "", table.number(second), "",
                   _difference(first, second)))
      continue
    entry_a, entry_b = entries_a.get(label, {}), entries_b.get(label, {})
    first, second = entry_a.get("median"), entry_b.get("median")
    rows.append((label, table.number(first), table.spread(entry_a), table.number(second),
                 table.spread(entry_b), _difference(first, second)))
  widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
  lines = [f"A: {run_a} ({_origin(a)})", f"B: {run_b} ({_origin(b)})", ""]
  lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in rows]
  return "\n".join(lines)


def _difference(first, second) -> str:
  return "-" if first is None or second is None else f"{second - first:+.1f}"


def _origin(record: dict) -> str:
  return (f"{record.get('init_checkpoint')}, seeds {record.get('seeds')}, "
          f"{record.get('date')}, commit {record.get('git_commit')}")
