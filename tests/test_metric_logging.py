"""metrics.jsonl: one record per step, also across restarts."""

import json
import os

from amos_jax.train import metric_logging


def _write(path, lines):
  path.write_text("".join(lines), encoding="utf-8")


def test_a_restarted_run_replaces_the_records_after_its_start_step(tmp_path):
  # Logged to step 40, checkpointed at 20, killed mid-line: the rerun resumes at 20.
  path = tmp_path / "metrics.jsonl"
  _write(path, [json.dumps({"step": s, "loss": float(s)}) + "\n" for s in (10, 20, 30, 40)]
         + ['{"step": 50, "lo'])
  writer = metric_logging.JsonlWriter(str(path), start_step=20)
  writer.write_scalars(30, {"loss": -30.0})
  records = metric_logging.read_metrics(str(tmp_path))
  assert records == [{"step": 10, "loss": 10.0}, {"step": 20, "loss": 20.0},
                     {"step": 30, "loss": -30.0}]
  writer.close()
  assert os.listdir(tmp_path) == ["metrics.jsonl"]  # No temporary file left beside it.


def test_a_run_resuming_where_its_records_end_leaves_the_file_as_it_was(tmp_path):
  path = tmp_path / "metrics.jsonl"
  lines = [json.dumps({"step": s, "loss": 1.0}) + "\n" for s in (10, 20)]
  _write(path, lines)
  before = path.stat().st_mtime_ns
  metric_logging.JsonlWriter(str(path), start_step=20)
  assert path.read_text(encoding="utf-8") == "".join(lines)
  assert path.stat().st_mtime_ns == before  # Not rewritten.
  # A fresh run (start_step 0) in a workdir whose last attempt saved no checkpoint.
  metric_logging.JsonlWriter(str(path), start_step=0)
  assert path.read_text(encoding="utf-8") == ""
